//! The inbound listener: a reverse proxy in front of the app. HTTP/1.1 and
//! HTTP/2 with prior knowledge (h2c) are told apart per connection; with
//! `--proxy-protocol tcp` each connection is relayed as an opaque flow.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tapwire_model::{Direction, Upstream};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::appconn::AppSlot;
use crate::capture::Origin;
use crate::forward::forward_fixed;
use crate::io::PrefixedIo;
use crate::server::{serve_http, Shared};
use crate::{lane, tunnel};

/// Serves one client connection of the inbound listener: in the HTTP/1.1
/// fast lane (see [`crate::lane`]) while its requests allow, and on the
/// general path (hyper) from the first request that does not.
pub(crate) async fn serve<S>(
    mut client: S,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let origin = Origin {
        direction: Direction::Inbound,
        service: shared.service.clone(),
        client_addr: Some(peer),
        server_addr: local,
        tls: None,
    };
    let app = shared.config.app_addr;
    if let Some(read) = lane::run(&mut client, &origin, &shared, app).await {
        let io = TokioIo::new(PrefixedIo::new(read, client));
        serve_general(io, origin, shared).await;
    }
}

/// The general path: hyper's server, HTTP/1.x and h2c.
async fn serve_general<I>(io: I, origin: Origin, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // HTTP/1.x requests of this connection reuse one app connection of
    // its own (see `appconn`).
    let own = AppSlot::default();
    serve_http(io, origin, shared, move |req, origin, shared| {
        let own = own.clone();
        async move {
            forward_fixed(
                req,
                "http",
                &shared.clients.app,
                &origin,
                &shared,
                Some(&own),
            )
            .await
        }
    })
    .await;
}

/// Relays one connection to the app as an opaque TCP flow
/// (`--proxy-protocol tcp`).
pub(crate) async fn relay<S>(
    client: S,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    shared: Arc<Shared>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let origin = Origin {
        direction: Direction::Inbound,
        service: shared.service.clone(),
        client_addr: Some(peer),
        server_addr: local,
        tls: None,
    };
    let app = shared.config.app_addr;
    let target = Upstream {
        host: app.ip().to_string(),
        port: app.port(),
    };
    tunnel::relay_opaque(client, target, origin, shared).await;
}
