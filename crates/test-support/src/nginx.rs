//! nginx started by the test itself: a temporary prefix, `daemon off`,
//! `master_process off` (so it stays one process, running as us).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::{free_port, local, wait_for_port};

/// A running nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    tmp: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with `server_body` (the inside of one `server { }`
    /// block, without `listen`) listening on a free port with the given
    /// `listen` parameters (e.g. `"http2"` for h2c prior knowledge on 1.22).
    pub fn start(listen_params: &str, server_body: &str) -> Self {
        let bin = crate::require::find_tool("nginx").expect("nginx is installed");
        let tmp = tempfile::Builder::new()
            .prefix("tapwire-nginx-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let p = tmp.path().display().to_string();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  default_type text/plain;\n\
               client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
               fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port} {listen_params};\n{server_body}\n  }}\n}}\n"
        );
        let conf_path = tmp.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(tmp.path())
            .arg("-e")
            .arg(tmp.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut n = Self {
            child,
            addr: local(port),
            tmp,
        };
        if !wait_for_port(n.addr, Duration::from_secs(10)) {
            let _ = n.child.kill();
            panic!(
                "nginx did not listen on {} within 10s; error.log:\n{}",
                n.addr,
                std::fs::read_to_string(n.error_log()).unwrap_or_default()
            );
        }
        n
    }

    /// Starts nginx serving TLS (plus `extra_listen`, e.g. `"http2"`) with
    /// `ca`'s server certificate, valid for `localhost` and `127.0.0.1`.
    pub fn start_tls(extra_listen: &str, ca: &crate::TestCa, server_body: &str) -> Self {
        Self::start(
            &format!("ssl {extra_listen}"),
            &format!(
                "    ssl_certificate {};\n    ssl_certificate_key {};\n{server_body}",
                ca.server_cert.display(),
                ca.server_key.display()
            ),
        )
    }

    /// nginx's error log.
    pub fn error_log(&self) -> PathBuf {
        self.tmp.path().join("error.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
