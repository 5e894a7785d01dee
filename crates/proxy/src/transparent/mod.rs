//! Transparent mode: iptables sends the pod's TCP to the proxy, and each
//! redirected connection goes on to where it was going, recorded like any
//! other. `tapwire init` installs the rules ([`Redirect`],
//! [`install_script`]); the listeners recover each connection's original
//! destination (`orig_dst`) and hand it to the same code that serves
//! CONNECT tunnels: HTTP is proxied request by request, outbound TLS is
//! intercepted or relayed with its SNI, anything else is a TCP flow.
//!
//! This is a module of the proxy rather than a crate of its own: the rules
//! and the listeners share one contract (the ports, the proxy's UID, what
//! a connection that was not redirected looks like), kept in one place;
//! the rule code is small, needs nothing beyond std, and ships in the same
//! binary, so a crate boundary would buy neither reuse nor build time.

mod iptables;
mod lists;
mod orig_dst;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tapwire_model::{Direction, Upstream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use iptables::{
    install_script, remove_script, Family, Installed, Iptables, IptablesError, Redirect,
    INBOUND_CHAIN, IN_REDIRECT_CHAIN, OUTBOUND_CHAIN, OUT_REDIRECT_CHAIN,
};
pub use lists::{IpList, IpNet, List, ListError, PortList, PortRange};

use crate::capture::Origin;
use crate::config::Wire;
use crate::metrics::Listener;
use crate::server::{serve_direct, Shared};
use crate::tunnel::{self, Route};
use crate::ProxyConfig;

/// Serves one connection accepted in transparent mode. A connection that
/// was not redirected (sent to the proxy's port itself) is served as in
/// dual mode: the inbound listener forwards it to the app, the outbound
/// one acts as an explicit forward proxy.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    which: Listener,
    shared: Arc<Shared>,
) {
    let orig = match orig_dst::original_dst(&stream) {
        Ok(orig) if !is_own(orig, local, &shared.config) => orig,
        Ok(_) => return serve_direct(stream, peer, local, which, shared).await,
        Err(e) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if e.kind() != std::io::ErrorKind::NotFound && !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, listener = ?which, "cannot read the original destination of a connection (is conntrack available?); serving such connections as if sent to the proxy directly");
            } else {
                tracing::debug!(error = %e, ?peer, listener = ?which, "connection has no original destination; serving it directly");
            }
            return serve_direct(stream, peer, local, which, shared).await;
        }
    };
    let direction = match which {
        Listener::Inbound => Direction::Inbound,
        Listener::Outbound => Direction::Outbound,
    };
    serve_redirected(stream, peer, orig, direction, shared).await;
}

/// Serves a connection that was on its way to `orig`: relayed as a TCP
/// flow when `--proxy-protocol` says `tcp` for its direction, else told
/// apart by its first bytes.
pub(crate) async fn serve_redirected<S>(
    client: S,
    peer: SocketAddr,
    orig: SocketAddr,
    direction: Direction,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let origin = Origin {
        direction,
        service: shared.service.clone(),
        client_addr: Some(peer),
        server_addr: Some(orig),
        tls: None,
    };
    let target = Upstream {
        host: orig.ip().to_string(),
        port: orig.port(),
    };
    match shared.config.protocol.side(direction) {
        Wire::Tcp => tunnel::relay_opaque(client, target, origin, shared).await,
        Wire::Http => tunnel::run(client, target, None, origin, shared, Route::Fixed(orig)).await,
    }
}

/// True when `orig` is one of the proxy's own listeners: the connection
/// was sent to the proxy itself, not redirected to it.
fn is_own(orig: SocketAddr, local: Option<SocketAddr>, config: &ProxyConfig) -> bool {
    if Some(orig) == local {
        return true;
    }
    let ports = [
        Some(config.inbound_addr.port()),
        Some(config.outbound_addr.port()),
        config.admin_addr.map(|a| a.port()),
    ];
    ports.contains(&Some(orig.port()))
        && (orig.ip().is_loopback() || local.is_some_and(|l| l.ip() == orig.ip()))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use prometheus_client::registry::Registry;
    use tapwire_model::{Exchange, Protocol};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::capture::{CaptureQueue, CaptureReceiver};
    use crate::config::ProxyProtocol;
    use crate::forward::Clients;
    use crate::Metrics;

    struct Harness {
        shared: Arc<Shared>,
        rx: CaptureReceiver,
        _stop: tokio::sync::watch::Sender<bool>,
    }

    fn harness(protocol: ProxyProtocol, intercept: bool) -> Harness {
        let config = ProxyConfig {
            protocol,
            connect_timeout: Duration::from_secs(2),
            ..ProxyConfig::default()
        };
        let metrics = Metrics::register(&mut Registry::default());
        let (queue, rx) = CaptureQueue::new(16, 1024, metrics);
        let tls = tapwire_ca::client_config_from_roots(rustls::RootCertStore::empty(), vec![])
            .expect("TLS config");
        let leaf_issuer = intercept.then(|| {
            let ca = tapwire_ca::CertificateAuthority::generate("transparent test CA").expect("CA");
            Arc::new(tapwire_ca::LeafIssuer::new(Arc::new(ca)))
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            clients: Clients::new(&config, tls.clone()),
            service: Arc::new(config.service.clone()),
            config,
            queue,
            upstream_tls: tls,
            leaf_issuer,
            stop: stop_rx,
        });
        Harness {
            shared,
            rx,
            _stop: stop,
        }
    }

    impl Harness {
        fn next_capture(&self) -> Exchange {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(c) = self.rx.pop() {
                    return c.into_exchange();
                }
                assert!(Instant::now() < deadline, "no capture within 5 s");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// An upstream that answers an HTTP request with `200 ok` and echoes
    /// anything else back until the client closes.
    async fn upstream() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if buf[..n].starts_with(b"GET ") {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                        let _ = s.read(&mut buf).await;
                        return;
                    }
                    let _ = s.write_all(&buf[..n]).await;
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Runs one redirected connection that sends `data`, reads until
    /// `until` has arrived, then closes; returns what the client read.
    async fn exchange(
        h: &Harness,
        orig: SocketAddr,
        direction: Direction,
        data: &[u8],
        until: &[u8],
    ) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = ([10, 0, 0, 9], 40000).into();
        let task = tokio::spawn(serve_redirected(
            server,
            peer,
            orig,
            direction,
            h.shared.clone(),
        ));
        client.write_all(data).await.expect("write");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(until.len()).any(|w| w == until) {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
                .await
                .expect("an answer within 5 s")
                .expect("read");
            assert!(n > 0, "closed early after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        got
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn http_goes_to_the_original_destination_under_the_clients_name() {
        let h = harness(ProxyProtocol::default(), false);
        let orig = upstream().await;
        let req = b"GET /stock/1?x=2 HTTP/1.1\r\nHost: stock.shop.svc:8081\r\n\r\n";
        let got = exchange(&h, orig, Direction::Outbound, req, b"ok").await;
        assert!(got.starts_with(b"HTTP/1.1 200 OK"), "{got:?}");
        let ex = h.next_capture();
        assert_eq!(
            (ex.direction, ex.protocol),
            (Direction::Outbound, Protocol::Http1)
        );
        assert_eq!(
            (ex.upstream.host.as_str(), ex.upstream.port),
            ("127.0.0.1", orig.port())
        );
        assert_eq!(ex.server_addr, Some(orig));
        let r = ex.request.expect("request");
        assert_eq!(
            (r.authority.as_str(), r.path.as_str()),
            ("stock.shop.svc:8081", "/stock/1")
        );
        assert_eq!(ex.response.map(|r| r.status), Some(200));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn text_protocols_and_binary_bytes_are_relayed_as_tcp_flows() {
        let h = harness(ProxyProtocol::default(), false);
        let orig = upstream().await;
        for data in [
            &b"SET key value\r\n"[..],
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        ] {
            let got = exchange(&h, orig, Direction::Outbound, data, data).await;
            assert_eq!(got, data);
            let ex = h.next_capture();
            assert_eq!(ex.protocol, Protocol::Tcp, "{data:?}");
            assert_eq!(ex.upstream.port, orig.port());
            let flow = ex.tcp.expect("flow");
            assert_eq!(flow.client_bytes.data.as_ref(), data);
            assert_eq!(flow.server_bytes.data.as_ref(), data);
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn inbound_tls_is_relayed_with_its_sni_even_with_interception_on() {
        let h = harness(ProxyProtocol::default(), true);
        let orig = upstream().await;
        let tls = tapwire_ca::client_config_from_roots(rustls::RootCertStore::empty(), vec![])
            .expect("TLS config");
        let name = rustls::pki_types::ServerName::try_from("app.internal").expect("name");
        let mut conn = rustls::ClientConnection::new(tls, name).expect("client");
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).expect("ClientHello");
        let got = exchange(&h, orig, Direction::Inbound, &hello, &hello).await;
        assert_eq!(got, hello, "relayed untouched");
        let ex = h.next_capture();
        assert_eq!(
            (ex.direction, ex.protocol),
            (Direction::Inbound, Protocol::Tcp)
        );
        let info = ex.tls.expect("TLS facts");
        assert_eq!(info.sni.as_deref(), Some("app.internal"));
        assert!(!info.intercepted);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn proxy_protocol_tcp_relays_inbound_http_without_parsing_it() {
        let h = harness("tcp".parse().expect("protocol"), false);
        let orig = upstream().await;
        let req = b"GET / HTTP/1.1\r\nHost: app\r\n\r\n";
        let got = exchange(&h, orig, Direction::Inbound, req, b"ok").await;
        assert!(got.starts_with(b"HTTP/1.1 200 OK"));
        let ex = h.next_capture();
        assert_eq!(
            (ex.direction, ex.protocol),
            (Direction::Inbound, Protocol::Tcp)
        );
        assert_eq!(ex.tcp.expect("flow").client_bytes.data.as_ref(), req);
    }

    #[test]
    fn connections_to_the_proxys_own_ports_are_not_redirected_ones() {
        let config = ProxyConfig {
            inbound_addr: ([0, 0, 0, 0], 4143).into(),
            outbound_addr: ([0, 0, 0, 0], 4140).into(),
            admin_addr: Some(([0, 0, 0, 0], 4145).into()),
            ..ProxyConfig::default()
        };
        let local: SocketAddr = ([10, 1, 2, 3], 4143).into();
        let own = |a: [u8; 4], p: u16| is_own((a, p).into(), Some(local), &config);
        assert!(own([10, 1, 2, 3], 4143), "sent to the listener itself");
        assert!(own([127, 0, 0, 1], 4145), "loopback to the admin port");
        assert!(
            own([10, 1, 2, 3], 4140),
            "the pod's own IP, another of our ports"
        );
        assert!(!own([10, 1, 2, 3], 8080), "the app's port: redirected");
        assert!(!own([10, 9, 9, 9], 4143), "a peer that happens to use 4143");
    }
}
