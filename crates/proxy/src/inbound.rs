//! The inbound listener: a reverse proxy in front of the app. HTTP/1.1 and
//! HTTP/2 with prior knowledge (h2c) are told apart per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, Request, Response, Uri, Version};
use hyper::body::Incoming;
use tapwire_model::{Direction, Upstream};

use crate::body::ProxyBody;
use crate::capture::Origin;
use crate::forward::{forward, Hop};
use crate::server::{serve_http, Shared};

pub(crate) async fn serve<I>(
    io: I,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    shared: Arc<Shared>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let origin = Origin {
        direction: Direction::Inbound,
        service: shared.service.clone(),
        client_addr: Some(peer),
        server_addr: local,
        tls: None,
    };
    serve_http(io, origin, shared, |req, origin, shared| async move {
        handle(req, &origin, &shared).await
    })
    .await;
}

async fn handle(req: Request<Incoming>, origin: &Origin, shared: &Shared) -> Response<ProxyBody> {
    let app = shared.config.app_addr;
    // Keep the authority the client used (Host or :authority) so the app
    // sees exactly what it would without the proxy; the connector ignores it.
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| app.to_string());
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let target = Uri::builder()
        .scheme("http")
        .authority(authority.as_str())
        .path_and_query(pq)
        .build()
        .or_else(|_| {
            Uri::builder()
                .scheme("http")
                .authority(app.to_string())
                .path_and_query(pq)
                .build()
        })
        .unwrap_or_default();
    let hop = Hop {
        scheme: "http",
        authority,
        upstream: Upstream {
            host: app.ip().to_string(),
            port: app.port(),
        },
        target,
    };
    if req.version() == Version::HTTP_2 {
        forward(&shared.clients.app_h2, req, hop, origin, shared, None).await
    } else {
        forward(&shared.clients.app_h1, req, hop, origin, shared, None).await
    }
}
