//! Real object-store protocol servers on loopback: moto's S3 server from
//! PyPI and Azurite's Blob server from npm. Each hands back the
//! configuration (as the `AWS_*` or `AZURE_*` environment tapwire reads)
//! that points a client at it.

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
    /// URL scheme (`s3` or `az`).
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

/// Azurite's port: object_store's emulator mode reads any other one from
/// the process environment (`AZURITE_BLOB_STORAGE_URL`), which a test must
/// not change while other tests run.
pub const AZURITE_PORT: u16 = 10000;

/// Where `.ci/deps.sh` installs Azurite (`npm install --prefix`).
pub const AZURITE_PREFIX: &str = "/var/cache/tapwire-npm";

/// Azurite's Blob server: `TAPWIRE_AZURITE_BLOB`, else the one `.ci/deps.sh`
/// installed, else `azurite-blob` on `PATH`.
pub fn find_azurite() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("TAPWIRE_AZURITE_BLOB") {
        return Some(p.into());
    }
    let cached = std::path::Path::new(AZURITE_PREFIX).join("node_modules/.bin/azurite-blob");
    if cached.exists() {
        return Some(cached);
    }
    crate::require::find_tool("azurite-blob")
}

/// True when Azurite, Node and the Python Azure client (which creates the
/// container) are installed; see [`crate::require::unmet`] otherwise.
pub fn require_azurite() -> bool {
    if find_azurite().is_none() {
        return crate::require::unmet(&format!(
            "Azurite is not installed (npm install --prefix {AZURITE_PREFIX} azurite@3)"
        ));
    }
    crate::require::require_tool("node")
        && crate::require::require_python_modules(&["azure.storage.blob"])
}

impl ObjectServer {
    /// Starts Azurite's Blob server on [`AZURITE_PORT`] with its
    /// well-known development account, and creates `container` with the
    /// Python Azure client. tapwire reaches it through object_store's
    /// emulator mode (`AZURE_STORAGE_USE_EMULATOR=true`).
    pub fn azurite(container: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = AZURITE_PORT;
        if std::net::TcpStream::connect(local(port)).is_ok() {
            panic!("port {port} is taken; Azurite needs it (object_store's emulator default)");
        }
        let bin = find_azurite().expect("azurite-blob (see require_azurite)");
        let mut cmd = Command::new(bin);
        clean_env(&mut cmd).args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--skipApiVersionCheck",
            "--silent",
            "--inMemoryPersistence",
        ]);
        let child = Self::spawn(cmd, port, "Azurite", &dir);
        let create = Command::new("python3")
            .arg("-c")
            .arg(
                "import sys\n\
                 from azure.storage.blob import BlobServiceClient\n\
                 BlobServiceClient.from_connection_string(sys.argv[1]).create_container(sys.argv[2])",
            )
            .arg(format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
                 AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
                 BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            ))
            .arg(container)
            .output()
            .expect("python3");
        assert!(
            create.status.success(),
            "creating container {container} on Azurite: {}",
            String::from_utf8_lossy(&create.stderr)
        );
        Self {
            child,
            port,
            bucket: container.to_owned(),
            scheme: "az",
            env: vec![("AZURE_STORAGE_USE_EMULATOR".to_owned(), "true".to_owned())],
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
