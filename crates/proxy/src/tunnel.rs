//! What happens on a stream whose destination is already known (a CONNECT
//! tunnel, or a connection redirected in transparent mode): the first bytes
//! decide. TLS is terminated with a minted leaf when interception is on and
//! the stream is outbound (and relayed with its SNI recorded otherwise);
//! plaintext HTTP is proxied request by request; anything else is relayed
//! and recorded as an opaque TCP flow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tapwire_model::{Direction, Protocol, TlsInfo, Upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use crate::body::ProxyBody;
use crate::capture::{Captured, Clock, Origin, Payload};
use crate::forward::{forward_external, forward_fixed, FixedClients, Hop};
use crate::io::{PrefixedIo, TeeIo};
use crate::lane;
use crate::metrics::{Dir, ErrorKind, ErrorLabels};
use crate::outbound::connect_tcp;
use crate::server::{serve_http, Shared};
use crate::sniff::{client_hello, sniff, Hello, HelloParse, Sniffed};

/// How long to wait for a client's first bytes before treating the stream
/// as a server-speaks-first protocol and relaying it opaquely.
const SNIFF_TIMEOUT: Duration = Duration::from_millis(1500);

/// Most bytes read while sniffing (a ClientHello with many extensions fits).
const SNIFF_MAX: usize = 16 * 1024;

/// Reads the first bytes of `client` until their protocol is known.
async fn read_prefix<S: AsyncRead + Unpin>(
    client: &mut S,
    want_hello: bool,
) -> (BytesMut, Sniffed, Option<Hello>) {
    let mut buf = BytesMut::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + SNIFF_TIMEOUT;
    loop {
        let kind = sniff(&buf);
        let need_hello = want_hello && kind == Sniffed::Tls;
        if kind != Sniffed::NeedMore && !need_hello {
            return (buf, kind, None);
        }
        if need_hello {
            match client_hello(&buf) {
                HelloParse::Done(h) => return (buf, kind, Some(h)),
                HelloParse::Invalid => return (buf, Sniffed::Opaque, None),
                HelloParse::NeedMore => {}
            }
        }
        if buf.len() >= SNIFF_MAX {
            return (
                buf,
                if kind == Sniffed::NeedMore {
                    Sniffed::Opaque
                } else {
                    kind
                },
                None,
            );
        }
        match tokio::time::timeout_at(deadline, client.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            // EOF, error, or silence: nothing more to learn.
            _ => {
                let k = if kind == Sniffed::NeedMore {
                    Sniffed::Opaque
                } else {
                    kind
                };
                return (buf, k, None);
            }
        }
    }
}

/// Where the HTTP requests found on a stream are sent.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// A CONNECT tunnel: to the tunnel's target by name, through the
    /// proxy's shared clients.
    Named,
    /// A redirected connection (transparent mode): to its original
    /// destination, whatever name the requests carry.
    Fixed(SocketAddr),
}

/// Runs one stream to `target`: the upgraded client side of a CONNECT
/// tunnel, or a redirected connection. Only outbound TLS is intercepted:
/// the proxy holds no key the app's own clients would trust.
pub(crate) async fn run<S>(
    mut client: S,
    target: Upstream,
    upstream: Option<TcpStream>,
    mut origin: Origin,
    shared: Arc<Shared>,
    route: Route,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let intercept = shared.leaf_issuer.is_some() && origin.direction == Direction::Outbound;
    let (prefix, kind, hello) = read_prefix(&mut client, !intercept).await;
    let client = PrefixedIo::new(prefix.freeze(), client);
    match kind {
        Sniffed::Tls if intercept => intercept_tls(client, target, origin, shared, route).await,
        // Plaintext HTTP/1.1 on a redirected connection takes the fast
        // lane to its original destination, as the inbound listener's does.
        Sniffed::Http1 => match route {
            Route::Fixed(to) => {
                let mut client = client;
                if let Some(read) = lane::run(&mut client, &origin, &shared, to).await {
                    let client = PrefixedIo::new(read, client);
                    serve_tunnel_http(client, target, "http", origin, shared, route).await
                }
            }
            Route::Named => serve_tunnel_http(client, target, "http", origin, shared, route).await,
        },
        Sniffed::Http2 => serve_tunnel_http(client, target, "http", origin, shared, route).await,
        _ => {
            if let Some(h) = hello {
                origin.tls = Some(TlsInfo {
                    sni: h.sni,
                    alpn: h.alpn,
                    intercepted: false,
                });
            }
            relay(client, target, upstream, None, origin, shared).await;
        }
    }
}

async fn intercept_tls<S>(
    client: S,
    target: Upstream,
    mut origin: Origin,
    shared: Arc<Shared>,
    route: Route,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(issuer) = shared.leaf_issuer.as_ref() else {
        return;
    };
    let handshake_failed = |e: &dyn std::fmt::Display| {
        shared
            .metrics()
            .downstream_errors
            .get_or_create(&ErrorLabels {
                direction: Dir::Outbound,
                kind: ErrorKind::TlsHandshake,
            })
            .inc();
        tracing::warn!(side = "downstream", upstream = %target, error = %e, "client TLS handshake with the proxy failed; does the client trust the tapwire CA?");
    };
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), client);
    let start = match acceptor.await {
        Ok(s) => s,
        Err(e) => return handshake_failed(&e),
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_owned);
    let offered: Vec<Vec<u8>> = hello
        .alpn()
        .map(|it| it.map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    // Prefer HTTP (which we can record per request), then echo whatever
    // else the client offered so non-HTTP TLS protocols still negotiate.
    let mut alpn: Vec<Vec<u8>> = [b"h2".as_slice(), b"http/1.1".as_slice()]
        .into_iter()
        .filter(|p| offered.iter().any(|o| o == p))
        .map(<[u8]>::to_vec)
        .collect();
    alpn.extend(
        offered
            .iter()
            .filter(|o| !alpn.contains(o))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let config = match issuer.server_config_for(sni.as_deref().unwrap_or(&target.host), alpn) {
        Ok(c) => c,
        Err(e) => return handshake_failed(&e),
    };
    let tls = match start.into_stream(config).await {
        Ok(t) => t,
        Err(e) => return handshake_failed(&e),
    };
    shared.metrics().tls_intercepted.inc();
    let negotiated = tls
        .get_ref()
        .1
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    origin.tls = Some(TlsInfo {
        sni: sni.clone(),
        alpn: negotiated.iter().cloned().collect(),
        intercepted: true,
    });
    match negotiated.as_deref() {
        Some("h2") | Some("http/1.1") => {
            serve_tunnel_http(tls, target, "https", origin, shared, route).await
        }
        Some(_) => relay(tls, target, None, Some((sni, negotiated)), origin, shared).await,
        None => {
            let mut tls = tls;
            let (prefix, kind, _) = read_prefix(&mut tls, false).await;
            let tls = PrefixedIo::new(prefix.freeze(), tls);
            match kind {
                Sniffed::Http1 | Sniffed::Http2 => {
                    serve_tunnel_http(tls, target, "https", origin, shared, route).await
                }
                _ => relay(tls, target, None, Some((sni, None)), origin, shared).await,
            }
        }
    }
}

/// Serves HTTP requests arriving on the stream, each forwarded by `route`.
async fn serve_tunnel_http<S>(
    client: S,
    target: Upstream,
    scheme: &'static str,
    origin: Origin,
    shared: Arc<Shared>,
    route: Route,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let target = Arc::new(target);
    // One set of clients per stream: its requests reuse upstream connections.
    let fixed = match route {
        Route::Named => None,
        Route::Fixed(addr) => Some(Arc::new(FixedClients::new(
            addr,
            &shared.config,
            &shared.upstream_tls,
        ))),
    };
    serve_http(
        TokioIo::new(client),
        origin,
        shared,
        move |req, origin, shared| {
            let (target, fixed) = (target.clone(), fixed.clone());
            async move {
                match fixed {
                    None => handle_tunnel_request(req, &target, scheme, &origin, &shared).await,
                    Some(clients) => {
                        forward_fixed(req, scheme, &clients, &origin, &shared, None).await
                    }
                }
            }
        },
    )
    .await;
}

async fn handle_tunnel_request(
    req: Request<Incoming>,
    target: &Upstream,
    scheme: &'static str,
    origin: &Origin,
    shared: &Shared,
) -> Response<ProxyBody> {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let authority = if target.port == default_port {
        host
    } else {
        format!("{host}:{}", target.port)
    };
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query(pq)
        .build()
        .unwrap_or_default();
    let hop = Hop {
        scheme,
        authority,
        upstream: target.clone(),
        target: uri,
    };
    forward_external(req, hop, origin, shared).await
}

/// Relays `client` to `target` byte for byte, without looking at the
/// bytes, and records it as a TCP exchange.
pub(crate) async fn relay_opaque<S>(
    client: S,
    target: Upstream,
    origin: Origin,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    relay(client, target, None, None, origin, shared).await;
}

/// Relays an opaque flow to `target` and records it as a TCP exchange.
/// With `tls_upstream`, the upstream side is re-originated over TLS (the
/// client side was intercepted) with the given SNI and ALPN.
async fn relay<S>(
    client: S,
    target: Upstream,
    upstream: Option<TcpStream>,
    tls_upstream: Option<(Option<String>, Option<String>)>,
    origin: Origin,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::start();
    let metrics = shared.metrics().clone();
    metrics.dir(origin.direction).requests(Protocol::Tcp).inc();
    let mut captured = Captured::new(
        &origin,
        Protocol::Tcp,
        target.clone(),
        Payload::Tcp {
            client: Default::default(),
            server: Default::default(),
        },
    );
    let mut tee = TeeIo::new(client, shared.queue.limit());
    let result: Result<(), String> = async {
        let tcp = match upstream {
            Some(s) => s,
            None => connect_tcp(&target, &shared)
                .await
                .map_err(|e| e.to_string())?,
        };
        match tls_upstream {
            None => {
                let mut tcp = tcp;
                tokio::io::copy_bidirectional(&mut tee, &mut tcp)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Some((sni, alpn)) => {
                let name = sni.unwrap_or_else(|| target.host.clone());
                let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("upstream name {name:?} is not valid for TLS: {e}"))?;
                let mut cfg = (*shared.upstream_tls).clone();
                cfg.alpn_protocols = alpn.map(|a| vec![a.into_bytes()]).unwrap_or_default();
                let mut up = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                    .connect(server_name, tcp)
                    .await
                    .map_err(|e| format!("upstream {target} TLS handshake failed: {e}"))?;
                tokio::io::copy_bidirectional(&mut tee, &mut up)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    }
    .await;
    if let Err(e) = &result {
        tracing::debug!(upstream = %target, error = %e, "tunnel relay ended with an error");
        captured.error = Some(e.clone());
    }
    captured.duration = clock.elapsed();
    let (mut from_client, mut from_server) = (
        std::mem::take(&mut tee.from_client),
        std::mem::take(&mut tee.from_server),
    );
    if result.is_ok() {
        from_client.complete = true;
        from_server.complete = true;
    }
    captured.payload = Payload::Tcp {
        client: from_client,
        server: from_server,
    };
    shared.queue.offer(captured);
}
