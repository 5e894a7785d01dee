//! The outbound listener: a forward proxy for the app's calls. Absolute-form
//! requests are forwarded directly; CONNECT opens a tunnel (see `tunnel`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tapwire_model::{Direction, Upstream};
use tokio::net::TcpStream;

use crate::body::{full, ProxyBody};
use crate::capture::Origin;
use crate::error::{chain, ProxyError};
use crate::forward::{error_response, forward_external, Hop};
use crate::metrics::{Dir, ErrorKind, ErrorLabels};
use crate::server::{serve_http, Shared};
use crate::tunnel;

pub(crate) async fn serve<I>(
    io: I,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    shared: Arc<Shared>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let origin = Origin {
        direction: Direction::Outbound,
        service: shared.service.clone(),
        client_addr: Some(peer),
        server_addr: local,
        tls: None,
    };
    serve_http(io, origin, shared, |req, origin, shared| async move {
        handle(req, origin, shared).await
    })
    .await;
}

/// Splits an authority into host (without IPv6 brackets) and port.
pub(crate) fn host_port(auth: &http::uri::Authority, default_port: u16) -> Upstream {
    Upstream {
        host: auth
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: auth.port_u16().unwrap_or(default_port),
    }
}

/// True when a request would come straight back into this proxy.
fn is_self(shared: &Shared, up: &Upstream) -> bool {
    let Ok(ip) = up.host.parse::<IpAddr>() else {
        return false;
    };
    let ours = [
        Some(shared.config.outbound_addr),
        Some(shared.config.inbound_addr),
        shared.config.admin_addr,
    ];
    ours.into_iter().flatten().any(|a| {
        a.port() == up.port && (a.ip() == ip || (a.ip().is_unspecified() && ip.is_loopback()))
    })
}

fn plain(status: StatusCode, msg: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(msg));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    origin: Origin,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    if req.method() == Method::CONNECT {
        return connect(req, origin, shared).await;
    }
    let uri = req.uri().clone();
    let (Some(scheme), Some(auth)) = (uri.scheme_str(), uri.authority()) else {
        let err = ProxyError::BadRequest(format!(
            "the outbound proxy needs absolute-form targets such as http://host/path, got {:?}; \
             point HTTP_PROXY at this port, or send app traffic to the inbound port instead",
            uri.to_string()
        ));
        return error_response(&err);
    };
    let https = scheme.eq_ignore_ascii_case("https");
    let upstream = host_port(auth, if https { 443 } else { 80 });
    if is_self(&shared, &upstream) {
        return plain(
            StatusCode::LOOP_DETECTED,
            format!("tapwire: request to {upstream} would loop back into the proxy\n"),
        );
    }
    let hop = Hop {
        scheme: if https { "https" } else { "http" },
        authority: auth.as_str().to_owned(),
        upstream,
        target: uri,
    };
    forward_external(req, hop, &origin, &shared).await
}

async fn connect(
    mut req: Request<Incoming>,
    origin: Origin,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    let Some(auth) = req.uri().authority().cloned() else {
        return error_response(&ProxyError::BadRequest(
            "CONNECT needs a host:port target".to_owned(),
        ));
    };
    let target = host_port(&auth, 443);
    if is_self(&shared, &target) {
        return plain(
            StatusCode::LOOP_DETECTED,
            format!("tapwire: tunnel to {target} would loop back into the proxy\n"),
        );
    }
    // Without interception the tunnel is a plain relay: connect first, so
    // an unreachable host is a clear 502 rather than a tunnel that dies.
    let upstream = if shared.leaf_issuer.is_none() {
        match connect_tcp(&target, &shared).await {
            Ok(s) => Some(s),
            Err(err) => {
                shared
                    .metrics()
                    .upstream_errors
                    .get_or_create(&ErrorLabels {
                        direction: Dir::Outbound,
                        kind: match err {
                            ProxyError::UpstreamTimeout { .. } => ErrorKind::Timeout,
                            _ => ErrorKind::Connect,
                        },
                    })
                    .inc();
                tracing::warn!(side = %err.side(), error = %err, "CONNECT failed");
                return error_response(&err);
            }
        }
    } else {
        None
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                tunnel::run(
                    TokioIo::new(up),
                    target,
                    upstream,
                    origin,
                    shared,
                    tunnel::Route::Named,
                )
                .await
            }
            Err(e) => {
                tracing::debug!(upstream = %target, error = %e, "client left before the tunnel opened")
            }
        }
    });
    Response::new(full(""))
}

/// Opens a TCP connection to an upstream within the configured timeout.
pub(crate) async fn connect_tcp(
    target: &Upstream,
    shared: &Shared,
) -> Result<TcpStream, ProxyError> {
    let timeout = shared.config.connect_timeout;
    match tokio::time::timeout(
        timeout,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(ProxyError::UpstreamUnreachable {
            target: target.to_string(),
            reason: chain(&e),
        }),
        Err(_) => Err(ProxyError::UpstreamTimeout {
            target: target.to_string(),
            secs: timeout.as_secs(),
        }),
    }
}
