//! Transparent mode with real iptables. Network namespaces stand in for a
//! pod and its peers:
//!
//! ```text
//!  client 10.77.0.1 ──veth── 10.77.0.2 pod 10.77.0.5 ──veth── 10.77.0.6 backend
//!  (curl)                    app :8080 (root)                  HTTP :8081
//!                            tapwire init                      TCP echo :9000
//!                            tapwire proxy (UID 1477)
//! ```
//!
//! The app answers GET /order by calling the backend over HTTP and over a
//! raw TCP connection; neither the client nor the app knows the proxy is
//! there. Needs root and `ip netns`: skipped with a reason outside CI,
//! failed in CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tapwire_model::{Direction, Exchange, Protocol};
use tapwire_test_support::captures::summary;
use tapwire_test_support::netns::{link, require_netns, Background, Netns};
use tapwire_test_support::{read_captures, wait_for_captures, MetricsText};

const PROXY_UID: u32 = 1477;
const CLIENT: &str = "10.77.0.1";
const POD: &str = "10.77.0.2";
const POD_TO_BACKEND: &str = "10.77.0.5";
const BACKEND: &str = "10.77.0.6";
const APP_PORT: u16 = 8080;
const BACKEND_HTTP: u16 = 8081;
const BACKEND_ECHO: u16 = 9000;
const STARTUP: Duration = Duration::from_secs(20);

/// The dependency: JSON over HTTP, and a TCP echo.
const BACKEND_PY: &str = r#"
import http.server, json, socketserver, sys, threading

http_port, echo_port = int(sys.argv[1]), int(sys.argv[2])

class Stock(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"item": self.path, "in_stock": 7}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)

socketserver.ThreadingTCPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.allow_reuse_address = True
web = http.server.ThreadingHTTPServer(("0.0.0.0", http_port), Stock)
echo = socketserver.ThreadingTCPServer(("0.0.0.0", echo_port), Echo)
threading.Thread(target=echo.serve_forever, daemon=True).start()
print("READY", http_port, flush=True)
web.serve_forever()
"#;

/// The app in the pod: GET /order calls the backend over HTTP, then over
/// a raw TCP connection, and reports both answers.
const APP_PY: &str = r#"
import http.server, json, socket, sys, urllib.request

port, backend, http_port, echo_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/order":
            self.send_error(404)
            return
        try:
            with urllib.request.urlopen(f"http://{backend}:{http_port}/stock/42", timeout=10) as r:
                stock = json.load(r)
            with socket.create_connection((backend, echo_port), timeout=10) as s:
                s.sendall(b"hello tcp\n")
                echo = b""
                while not echo.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    echo += chunk
            body = json.dumps({"order": 42, "stock": stock, "echo": echo.decode()}).encode()
            self.send_response(200)
        except Exception as e:
            body = json.dumps({"error": repr(e)}).encode()
            self.send_response(502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), App)
print("READY", port, flush=True)
srv.serve_forever()
"#;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tapwire"))
}

/// The three namespaces, wired, with the backend and the app running.
struct World {
    client: Netns,
    pod: Netns,
    _backend_ns: Netns,
    _servers: Vec<Background>,
    dir: tempfile::TempDir,
    /// Where the proxy writes, owned by the proxy's UID.
    captures: PathBuf,
    _captures_dir: tempfile::TempDir,
}

impl World {
    fn start() -> Self {
        let (client, pod, backend) = (
            Netns::create("client"),
            Netns::create("pod"),
            Netns::create("backend"),
        );
        link(
            &client,
            "eth0",
            &format!("{CLIENT}/30"),
            &pod,
            "eth0",
            &format!("{POD}/30"),
        );
        link(
            &pod,
            "eth1",
            &format!("{POD_TO_BACKEND}/30"),
            &backend,
            "eth0",
            &format!("{BACKEND}/30"),
        );
        let dir = tempfile::Builder::new()
            .prefix("tapwire-transparent-")
            .tempdir()
            .expect("temp dir");
        let script = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write script");
            p
        };
        let (backend_py, app_py) = (script("backend.py", BACKEND_PY), script("app.py", APP_PY));
        let mut backend_srv = Background::spawn(
            "backend",
            backend
                .command("python3")
                .arg("-u")
                .arg(&backend_py)
                .args([BACKEND_HTTP.to_string(), BACKEND_ECHO.to_string()]),
            dir.path(),
        );
        let mut app = Background::spawn(
            "app",
            pod.command("python3").arg("-u").arg(&app_py).args([
                APP_PORT.to_string(),
                BACKEND.to_owned(),
                BACKEND_HTTP.to_string(),
                BACKEND_ECHO.to_string(),
            ]),
            dir.path(),
        );
        backend_srv.wait_for_output("READY", STARTUP);
        app.wait_for_output("READY", STARTUP);
        // The proxy runs as its own UID, as in the pod: it needs a
        // directory of its own to write to.
        let captures_dir = tempfile::Builder::new()
            .prefix("tapwire-transparent-captures-")
            .tempdir()
            .expect("temp dir");
        std::os::unix::fs::chown(captures_dir.path(), Some(PROXY_UID), Some(PROXY_UID))
            .expect("chown the capture directory");
        let captures = captures_dir.path().join("out");
        Self {
            client,
            pod,
            _backend_ns: backend,
            _servers: vec![backend_srv, app],
            dir,
            captures,
            _captures_dir: captures_dir,
        }
    }

    /// Runs `tapwire init ARGS` in the pod namespace as root.
    fn init(&self, args: &[&str]) -> std::process::Output {
        self.pod
            .run(bin(), std::iter::once("init").chain(args.iter().copied()))
    }

    /// Starts the sidecar as the operator would: UID 1477, bound to
    /// 0.0.0.0, identity from the environment; waits for /readyz.
    fn start_proxy(&self, name: &str, extra_env: &[(&str, &str)]) -> Background {
        let mut cmd = self.pod.command_as(PROXY_UID, bin());
        cmd.env_remove("TAPWIRE_LOG")
            .env("HOME", self.captures.parent().expect("captures parent"))
            .envs([
                ("TAPWIRE_SERVICE", "orders"),
                ("TAPWIRE_POD_NAMESPACE", "shop"),
                ("TAPWIRE_POD_NAME", "orders-7d9f"),
                ("TAPWIRE_NODE_NAME", "node-a"),
                ("TAPWIRE_CLUSTER", "test-cluster"),
            ])
            .envs(extra_env.iter().copied())
            .args([
                "proxy",
                "--mode",
                "transparent",
                "--bind",
                "0.0.0.0",
                "--out",
            ])
            .arg(&self.captures);
        let proxy = Background::spawn(name, &mut cmd, self.dir.path());
        self.pod
            .wait_http_ok("http://127.0.0.1:4145/readyz", STARTUP, || proxy.log());
        proxy
    }

    /// The client's call to the app, by its pod IP, knowing nothing of the proxy.
    fn order(&self) -> tapwire_test_support::netns::NsCurl {
        self.client.curl(&format!("http://{POD}:{APP_PORT}/order"))
    }

    fn metrics(&self) -> MetricsText {
        let r = self.pod.curl("http://127.0.0.1:4145/metrics");
        assert_eq!(r.status, 200, "{r:?}");
        MetricsText(r.body)
    }

    /// Waits for exactly `n` captures: `n` appear, then nothing more for
    /// longer than the writer takes to flush (so a looped connection, which
    /// would add exchanges, cannot hide).
    fn exactly(&self, n: usize, proxy: &Background) -> Vec<Exchange> {
        let got = std::panic::catch_unwind(|| {
            wait_for_captures(&self.captures, n, Duration::from_secs(15))
        })
        .unwrap_or_else(|_| panic!("captures did not appear; {}", proxy.log()));
        std::thread::sleep(Duration::from_millis(2500));
        let all = read_captures(&self.captures);
        assert_eq!(all.len(), n, "captures: {:#?}", summary(&all));
        assert_eq!(got.len(), n);
        all
    }
}

fn assert_order_ok(r: &tapwire_test_support::netns::NsCurl) {
    assert_eq!((r.exit, r.status), (0, 200), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON from the app");
    assert_eq!(v["stock"]["in_stock"], 7, "{v}");
    assert_eq!(v["echo"], "hello tcp\n", "{v}");
}

fn one<'a>(all: &'a [Exchange], what: &str, f: impl Fn(&Exchange) -> bool) -> &'a Exchange {
    let found: Vec<&Exchange> = all.iter().filter(|e| f(e)).collect();
    assert_eq!(found.len(), 1, "{what}: {:#?}", summary(all));
    found[0]
}

fn ip_of(e: &Exchange) -> String {
    e.client_addr
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// Checks one /order round: the inbound call, the outbound HTTP call and
/// the outbound TCP flow, each with its original destination and the
/// pod's identity. `inbound` is the protocol the inbound side recorded.
fn assert_round(all: &[Exchange], inbound: Protocol) {
    for e in all {
        let s = &e.service;
        assert_eq!(
            (
                s.name.as_str(),
                s.namespace.as_deref(),
                s.pod.as_deref(),
                s.node.as_deref(),
                s.cluster.as_deref()
            ),
            (
                "orders",
                Some("shop"),
                Some("orders-7d9f"),
                Some("node-a"),
                Some("test-cluster")
            ),
            "identity of {e:#?}"
        );
        assert_eq!(e.error, None, "{e:#?}");
        assert_eq!(e.tags.get("incomplete"), None, "{e:#?}");
    }
    let app = format!("{POD}:{APP_PORT}");
    let inb = one(all, "inbound exchange", |e| {
        e.direction == Direction::Inbound
    });
    assert_eq!(inb.protocol, inbound, "{inb:#?}");
    assert_eq!(
        (inb.upstream.host.as_str(), inb.upstream.port),
        (POD, APP_PORT)
    );
    assert_eq!(inb.server_addr.map(|a| a.to_string()), Some(app.clone()));
    assert_eq!(ip_of(inb), CLIENT, "client of {inb:#?}");
    match inbound {
        Protocol::Tcp => {
            let flow = inb.tcp.as_ref().expect("a TCP flow");
            let sent = String::from_utf8_lossy(&flow.client_bytes.data);
            assert!(sent.starts_with("GET /order HTTP/1.1\r\n"), "{sent}");
            let answer = String::from_utf8_lossy(&flow.server_bytes.data);
            assert!(answer.contains("hello tcp"), "{answer}");
        }
        _ => {
            let req = inb.request.as_ref().expect("a request");
            assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/order"));
            assert_eq!(req.authority, app, "the Host the client sent");
            assert_eq!(inb.response.as_ref().map(|r| r.status), Some(200));
        }
    }

    let http = one(all, "outbound HTTP exchange", |e| {
        e.direction == Direction::Outbound && e.protocol == Protocol::Http1
    });
    assert_eq!(
        (http.upstream.host.as_str(), http.upstream.port),
        (BACKEND, BACKEND_HTTP)
    );
    assert_eq!(
        http.server_addr.map(|a| a.to_string()),
        Some(format!("{BACKEND}:{BACKEND_HTTP}"))
    );
    assert_eq!(ip_of(http), POD_TO_BACKEND, "the app's source address");
    let req = http.request.as_ref().expect("a request");
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/stock/42")
    );
    let resp = http.response.as_ref().expect("a response");
    assert_eq!(resp.status, 200);
    assert!(
        String::from_utf8_lossy(&resp.body.data).contains("\"in_stock\": 7"),
        "{resp:?}"
    );

    let tcp = one(all, "outbound TCP flow", |e| {
        e.direction == Direction::Outbound && e.protocol == Protocol::Tcp
    });
    assert_eq!(
        (tcp.upstream.host.as_str(), tcp.upstream.port),
        (BACKEND, BACKEND_ECHO)
    );
    let flow = tcp.tcp.as_ref().expect("a TCP flow");
    assert_eq!(flow.client_bytes.data.as_ref(), b"hello tcp\n");
    assert_eq!(flow.server_bytes.data.as_ref(), b"hello tcp\n");
}

#[test]
fn redirected_traffic_is_captured_once_with_its_original_destination() {
    if !require_netns(&[
        "iptables-restore",
        "iptables-save",
        "setpriv",
        "curl",
        "python3",
    ]) {
        return;
    }
    let w = World::start();
    // Without the rules the app is reached directly.
    assert_order_ok(&w.order());

    let init = w.init(&[]);
    assert!(
        init.status.success(),
        "tapwire init failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );

    let mut proxy = w.start_proxy("proxy", &[]);
    assert_order_ok(&w.order());
    let all = w.exactly(3, &proxy);
    assert_round(&all, Protocol::Http1);
    // One connection per listener and call: the proxy's own connections to
    // the app and the backend were not redirected back into it.
    let m = w.metrics();
    let conns = |l: &str| m.value("tapwire_proxy_connections_total", &[("listener", l)]);
    assert_eq!((conns("inbound"), conns("outbound")), (1.0, 2.0), "{}", m.0);
    // Both plaintext HTTP calls (the client's, and the app's to the
    // backend) were relayed by the fast lane.
    assert_eq!(
        m.value("tapwire_proxy_fast_lane_requests_total", &[]),
        2.0,
        "{}",
        m.0
    );

    // The rules stay when the proxy dies, so the pod's TCP has nowhere to
    // go: calls fail fast (refused) until the sidecar is back, as with any
    // iptables-based sidecar; Kubernetes restarts it.
    assert!(proxy.signal_and_wait("KILL").code().is_none());
    let down = w.order();
    assert_eq!(
        (down.exit, down.status),
        (7, 0),
        "refused while down: {down:?}"
    );

    let mut proxy = w.start_proxy("proxy-restarted", &[]);
    assert_order_ok(&w.order());
    let all = w.exactly(6, &proxy);
    let second: Vec<Exchange> = all.iter().skip(3).cloned().collect();
    assert_round(&second, Protocol::Http1);
    assert!(proxy.signal_and_wait("TERM").success(), "{}", proxy.log());

    // `--proxy-protocol tcp`: the inbound side is relayed as an opaque flow,
    // the outbound side is still told apart per connection.
    let proxy = w.start_proxy("proxy-tcp", &[("TAPWIRE_PROXY_PROTOCOL", "tcp")]);
    assert_order_ok(&w.order());
    let all = w.exactly(9, &proxy);
    let third: Vec<Exchange> = all.iter().skip(6).cloned().collect();
    assert_round(&third, Protocol::Tcp);
}

#[test]
fn init_is_idempotent_updates_and_removes_only_its_own_rules() {
    if !require_netns(&["iptables-restore", "iptables-save", "setpriv"]) {
        return;
    }
    let pod = Netns::create("init");
    let init = |args: &[&str]| {
        let out = pod.run(bin(), std::iter::once("init").chain(args.iter().copied()));
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Someone else's rule in a built-in chain must survive everything below.
    let theirs = pod.run(
        "iptables",
        ["-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", "RETURN"],
    );
    assert!(theirs.status.success(), "{theirs:?}");

    let args = [
        "--ignore-outbound-ports",
        "5432,9000:9100",
        "--ignore-dst-ips",
        "169.254.169.254,fd00::/8",
        "--ignore-inbound-ports",
        "22",
    ];
    let (status, _, stderr) = init(&args);
    assert!(status.success(), "{stderr}");
    let first = pod.nat_table("iptables-save");
    for rule in [
        "-A PREROUTING -p tcp -j TAPWIRE_INBOUND",
        "-A OUTPUT -p udp -j RETURN",
        "-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND",
        "-A TAPWIRE_OUTBOUND -m owner --uid-owner 1477 -j RETURN",
        "-A TAPWIRE_OUTBOUND -o lo -j RETURN",
        "-A TAPWIRE_OUTBOUND -d 127.0.0.0/8 -j RETURN",
        "-A TAPWIRE_OUTBOUND -p tcp -m tcp --dport 9000:9100 -j RETURN",
        "-A TAPWIRE_OUTBOUND -d 169.254.169.254/32 -j RETURN",
        "-A TAPWIRE_INBOUND -p tcp -m tcp --dport 22 -j RETURN",
        "-A TAPWIRE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
        "-A TAPWIRE_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 4140",
    ] {
        assert!(
            first.contains(&format!("{rule}\n")),
            "{rule} missing from:\n{first}"
        );
    }
    assert!(
        !first.contains("fd00"),
        "IPv6 items stay out of IPv4:\n{first}"
    );
    let v6 = pod.nat_table("ip6tables-save");
    assert!(
        v6.contains("-A TAPWIRE_OUTBOUND -d fd00::/8 -j RETURN"),
        "{v6}"
    );
    assert!(
        v6.contains("-A TAPWIRE_OUTBOUND -d ::1/128 -j RETURN"),
        "{v6}"
    );

    // Twice: the same rules, not twice the rules.
    let (status, _, stderr) = init(&args);
    assert!(status.success(), "{stderr}");
    assert_eq!(pod.nat_table("iptables-save"), first);
    assert_eq!(pod.nat_table("ip6tables-save"), v6);

    // New settings replace the old ones; the jumps stay single.
    let (status, _, stderr) = init(&["--in-port", "5143", "--ignore-dst-ips", "*"]);
    assert!(status.success(), "{stderr}");
    let changed = pod.nat_table("iptables-save");
    assert!(changed.contains("--to-ports 5143\n"), "{changed}");
    assert!(!changed.contains("--dport 22 "), "{changed}");
    assert_eq!(
        changed.matches("-j TAPWIRE_INBOUND").count(),
        1,
        "{changed}"
    );
    assert!(
        !changed.contains("-A OUTPUT -p tcp -j TAPWIRE_OUTBOUND"),
        "`*` bypasses all outbound:\n{changed}"
    );

    // Removal takes tapwire's chains and jumps, and nothing else.
    let (status, _, stderr) = init(&["--remove"]);
    assert!(status.success(), "{stderr}");
    for (save, table) in [
        ("iptables-save", pod.nat_table("iptables-save")),
        ("ip6tables-save", pod.nat_table("ip6tables-save")),
    ] {
        assert!(!table.contains("TAPWIRE"), "{save}:\n{table}");
    }
    assert!(pod
        .nat_table("iptables-save")
        .contains("-A OUTPUT -p udp -j RETURN\n"));
    let (status, _, stderr) = init(&["--remove"]);
    assert!(
        status.success() && stderr.contains("no tapwire rules to remove"),
        "{stderr}"
    );

    // Without privileges: a message that says what is missing.
    let out = pod
        .command_as(PROXY_UID, bin())
        .arg("init")
        .output()
        .expect("run tapwire init as 1477");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("NET_ADMIN") && stderr.contains("cannot install the IPv4 rules"),
        "{stderr}"
    );
    assert!(!pod.nat_table("iptables-save").contains("TAPWIRE"));
}

#[test]
fn init_names_the_bad_item_and_dry_run_needs_no_privileges() {
    let out = Command::new(bin())
        .args(["init", "--dry-run", "--ignore-inbound-ports", "22,80x,443"])
        .output()
        .expect("run tapwire init");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--ignore-inbound-ports") && stderr.contains("\"80x\""),
        "{stderr}"
    );

    let out = Command::new(bin())
        .args(["init", "--ignore-src-ips", "10.0.0.0/33"])
        .output()
        .expect("run tapwire init");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"10.0.0.0/33\""), "{stderr}");

    let out = Command::new(bin())
        .args([
            "init",
            "--dry-run",
            "--ipv6",
            "false",
            "--proxy-uid",
            "2000",
        ])
        .env("TAPWIRE_IGNORE_OUTBOUND_PORTS", "*")
        .output()
        .expect("run tapwire init");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("# IPv4: input for `iptables-restore --noflush`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-A PREROUTING -p tcp -j TAPWIRE_INBOUND"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("-A OUTPUT"),
        "outbound bypassed:\n{stdout}"
    );
    assert!(!stdout.contains("IPv6"), "{stdout}");
}
