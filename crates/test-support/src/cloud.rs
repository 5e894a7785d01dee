//! Real object-store protocol servers on loopback: moto's S3 server from
//! PyPI. It hands back the configuration (as the `AWS_*` environment
//! tapwire reads) that points a client at it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, local, wait_for_port};
use crate::process::clean_env;

/// How long a server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running object-store server; killed on drop.
#[derive(Debug)]
pub struct ObjectServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The bucket created for the test.
    pub bucket: String,
    /// URL scheme (`s3`).
    pub scheme: &'static str,
    /// Environment that points tapwire (object_store) at the server.
    pub env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl ObjectServer {
    /// `SCHEME://BUCKET/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("{}://{}/{prefix}", self.scheme, self.bucket)
    }

    /// Applies [`env`](Self::env) to a command.
    pub fn configure<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn spawn(mut cmd: Command, port: u16, what: &str, dir: &tempfile::TempDir) -> Child {
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        if !wait_for_port(local(port), START_TIMEOUT) {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("{what} did not listen on {port} within {START_TIMEOUT:?}:\n{log}");
        }
        child
    }

    /// Starts moto's S3 server (`python3 -m moto.server`) and creates
    /// `bucket`.
    pub fn moto_s3(bucket: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut cmd = Command::new("python3");
        clean_env(&mut cmd).args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        let child = Self::spawn(cmd, port, "moto S3 server", &dir);
        // moto does not check signatures on bucket creation.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut conn = crate::http::HttpConn::connect(local(port)).expect("connect moto");
            let created = conn
                .request("PUT", &format!("/{bucket}"), &[("Host", "127.0.0.1")], b"")
                .map(|r| r.status);
            match created {
                Ok(200) => break,
                other if Instant::now() > deadline => {
                    panic!("creating bucket {bucket} on moto: {other:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let env = [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{port}")),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ];
        Self {
            child,
            port,
            bucket: bucket.to_owned(),
            scheme: "s3",
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            _dir: dir,
        }
    }
}

impl Drop for ObjectServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
