//! The bundled demo: "orders", a small HTTP service, and "payments", the
//! HTTPS dependency it calls through a forward proxy, whose payloads carry
//! realistic personal data. Both run in-process on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The demo services could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A listener could not be bound.
    #[error("cannot listen on loopback: {0}")]
    Bind(#[source] std::io::Error),
    /// TLS could not be configured.
    #[error("cannot set up TLS for the demo: {0}")]
    Tls(String),
}

/// A running demo server; dropping it stops it.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Stops accepting and closes open connections.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

type Body = Full<Bytes>;

fn json_response(status: StatusCode, doc: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(doc.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = stop.changed() => return,
        };
        let (handler, tls, mut stop) = (handler.clone(), tls.clone(), stop.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let h = handler.clone();
                async move { Ok::<_, Infallible>(h(req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let served = async {
                match tls {
                    Some(cfg) => {
                        if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            };
            tokio::select! {
                _ = served => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn bind() -> Result<TcpListener, DemoError> {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(DemoError::Bind)
}

/// The customers the demo knows: fictitious, but shaped like real personal
/// data (names, emails, phones, addresses, card numbers that pass Luhn).
fn customer(id: u64) -> Value {
    const PEOPLE: [(&str, &str, &str, &str, &str); 4] = [
        (
            "Jane Doe",
            "jane.doe@example.com",
            "+1 415 555 0132",
            "4111 1111 1111 1111",
            "1 Market St, San Francisco, CA 94105",
        ),
        (
            "Arjun Patel",
            "arjun.patel@example.org",
            "+44 20 7946 0958",
            "5555 5555 5555 4444",
            "10 Downing Ln, London SW1A 2AA",
        ),
        (
            "Maria Garcia",
            "m.garcia@example.net",
            "+34 912 345 678",
            "3782 822463 10005",
            "Calle Mayor 5, 28013 Madrid",
        ),
        (
            "Kenji Sato",
            "kenji.sato@example.jp",
            "+81 3-1234-5678",
            "2223 0031 2200 3222",
            "1-1 Chiyoda, Tokyo 100-0001",
        ),
    ];
    let (name, email, phone, card, address) = PEOPLE[(id % 4) as usize];
    json!({"name": name, "email": email, "phone": phone, "card": card, "address": address})
}

/// The payments dependency: HTTPS, answers `GET /payments/{id}` and
/// `POST /charges`, deterministically so that replays can be compared.
pub async fn payments(tls: Arc<rustls::ServerConfig>) -> Result<Server, DemoError> {
    let listener = bind().await?;
    let addr = listener.local_addr().map_err(DemoError::Bind)?;
    let (stop, rx) = watch::channel(false);
    tokio::spawn(serve(
        listener,
        Some(tls),
        rx,
        |req: Request<Incoming>| async move {
            let path = req.uri().path().to_owned();
            match (req.method().clone(), path.strip_prefix("/payments/")) {
                (Method::GET, Some(id)) => {
                    let n: u64 = id.parse().unwrap_or(0);
                    let c = customer(n);
                    json_response(
                        StatusCode::OK,
                        &json!({"payment_id": format!("pay_{n:06}"), "status": "settled", "amount_cents": 1250 + n * 100,
                            "payer": c}),
                    )
                }
                (Method::POST, _) if path == "/charges" => {
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let order = doc["order"].as_u64().unwrap_or(0);
                    json_response(
                        StatusCode::CREATED,
                        &json!({"payment_id": format!("pay_{order:06}"), "status": "authorized",
                            "amount_cents": doc["amount_cents"], "card_last4": doc["card"].as_str().map(|c| c[c.len().saturating_sub(4)..].to_owned())}),
                    )
                }
                _ => json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "no such payment route"}),
                ),
            }
        },
    ));
    Ok(Server { addr, stop })
}

/// How orders reaches payments.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// Base URL of payments, e.g. `https://localhost:PORT`.
    pub payments_url: String,
    /// Forward proxy every payments call goes through (tapwire's outbound
    /// listener while recording, the mock responder while replaying).
    pub proxy: SocketAddr,
    /// CAs trusted for payments' certificate (tapwire's CA: the proxy
    /// presents leaves minted from it).
    pub trust: rustls::RootCertStore,
    /// Misbehave, to show what a failing replay looks like.
    pub broken: bool,
}

type PaymentsClient = Client<hyper_rustls::HttpsConnector<Tunnel<HttpConnector>>, Full<Bytes>>;

/// The orders service: `GET /orders/{id}` and `POST /orders`, each calling
/// payments once.
pub async fn orders(cfg: OrdersConfig) -> Result<Server, DemoError> {
    let listener = bind().await?;
    let addr = listener.local_addr().map_err(DemoError::Bind)?;
    let proxy: Uri = format!("http://{}", cfg.proxy)
        .parse()
        .map_err(|e| DemoError::Tls(format!("{e}")))?;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| DemoError::Tls(e.to_string()))?
    .with_root_certificates(cfg.trust.clone())
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(Tunnel::new(proxy, HttpConnector::new()));
    let client: PaymentsClient = Client::builder(TokioExecutor::new()).build(https);
    let (stop, rx) = watch::channel(false);
    let cfg = Arc::new(cfg);
    tokio::spawn(serve(listener, None, rx, move |req| {
        let (client, cfg) = (client.clone(), cfg.clone());
        async move { handle_order(req, &client, &cfg).await }
    }));
    Ok(Server { addr, stop })
}

async fn call(
    client: &PaymentsClient,
    cfg: &OrdersConfig,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", cfg.payments_url))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(
            body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        ))
        .map_err(|e| e.to_string())?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("payments unreachable: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("payments answered {status}"));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("payments sent bad JSON: {e}"))
}

async fn handle_order(
    req: Request<Incoming>,
    client: &PaymentsClient,
    cfg: &OrdersConfig,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.strip_prefix("/orders/")) {
        (Method::GET, Some(id)) => {
            let Ok(n) = id.parse::<u64>() else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "order id must be a number"}),
                );
            };
            match call(client, cfg, Method::GET, &format!("/payments/{n}"), None).await {
                Ok(p) => {
                    let mut total = p["amount_cents"].as_u64().unwrap_or(0);
                    if cfg.broken && n.is_multiple_of(2) {
                        total += 1; // the bug --break plants: an off-by-one-cent total
                    }
                    json_response(
                        StatusCode::OK,
                        &json!({"order": n, "total_cents": total, "paid": p["status"] == "settled",
                                "customer": {"name": p["payer"]["name"], "email": p["payer"]["email"]}}),
                    )
                }
                Err(e) => json_response(StatusCode::BAD_GATEWAY, &json!({"error": e})),
            }
        }
        (Method::POST, _) if path == "/orders" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let order = doc["id"].as_u64().unwrap_or(0);
            if cfg.broken && order.is_multiple_of(3) {
                return json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": "order store unavailable"}),
                );
            }
            let charge = json!({"order": order, "amount_cents": doc["amount_cents"], "card": doc["card"], "email": doc["email"]});
            match call(client, cfg, Method::POST, "/charges", Some(charge)).await {
                Ok(p) => json_response(StatusCode::CREATED, &json!({"order": order, "payment": p})),
                Err(e) => json_response(StatusCode::BAD_GATEWAY, &json!({"error": e})),
            }
        }
        (Method::GET, _) if path == "/healthz" => {
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "no such route"})),
    }
}

/// The inbound traffic the demo sends to orders: (method, path, body).
pub fn traffic() -> Vec<(Method, String, Option<Value>)> {
    let mut out = Vec::new();
    for n in 1..=8u64 {
        out.push((Method::GET, format!("/orders/{n}"), None));
        let c = customer(n);
        out.push((
            Method::POST,
            "/orders".to_owned(),
            Some(json!({"id": 100 + n, "amount_cents": 999 + n, "card": c["card"], "email": c["email"]})),
        ));
    }
    out
}
