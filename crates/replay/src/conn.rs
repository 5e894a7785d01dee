//! One HTTP/1.1 connection per virtual user, driven inside the VU's own
//! task (see `tapwire_conn`).
//!
//! The pooled client (`hyper_util`'s legacy `Client`) costs about half of
//! the generator's per-request work on HTTP/1.1, and its connect races open
//! more connections than there are VUs (see docs/benchmarks.md). A
//! closed-model VU sends one request at a time, so it needs exactly one
//! connection: here it owns a `hyper::client::conn::http1` connection and
//! polls it itself while it waits for the answer. `--vus N` then means N
//! connections, as `-c N` does for wrk.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tapwire_conn::{drive, dropped_under_request, Owned};
use tower_service::Service as _;

use crate::run::error_chain;

type Io = <HttpsConnector<HttpConnector> as tower_service::Service<Uri>>::Response;
type Connection = http1::Connection<Io, Full<Bytes>>;
/// The request half and the connection it needs polled.
type Live = (http1::SendRequest<Full<Bytes>>, Owned<Connection>);

/// A VU's connection to the target; opened on first use and again after
/// the target closed it or a request on it failed.
#[derive(Default)]
pub(crate) struct VuConn {
    live: Option<Live>,
}

impl std::fmt::Debug for VuConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuConn")
            .field("open", &self.live.is_some())
            .finish()
    }
}

/// What a VU needs to open its connection and address requests on it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The connector the pooled client uses too (TCP, or TLS for https://).
    pub(crate) connector: HttpsConnector<HttpConnector>,
    /// The target's base URI (scheme and authority), what is connected to.
    pub(crate) base: Uri,
    /// The `Host` header for requests that do not carry the recorded one.
    pub(crate) host: Option<HeaderValue>,
}

/// Why an exchange on a VU's connection failed.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What to report.
    pub(crate) message: String,
    /// The connection closed before the answer was complete: a kept-alive
    /// connection the target closed just as the request went out, which
    /// an idempotent request may be sent again for (RFC 9110 §9.2.2).
    pub(crate) unanswered: bool,
    /// The connection closed before the request was written at all: any
    /// request may be sent again.
    pub(crate) unsent: bool,
}

impl Failure {
    /// Whether sending the request again on a new connection is safe.
    pub(crate) fn retryable(&self, method: &http::Method) -> bool {
        self.unsent || (self.unanswered && method.is_idempotent())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            message,
            unanswered: false,
            unsent: false,
        }
    }
}

impl VuConn {
    /// Sends `req` (absolute URI) and reads the whole answer, at most
    /// `max_body` bytes of body. Any failure closes the connection, so
    /// that the next request starts on a fresh one.
    pub(crate) async fn exchange(
        &mut self,
        target: &Target,
        mut req: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), Failure> {
        // On its own connection a request is sent in origin form, with the
        // Host header the pooled client would have added.
        let pq = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        *req.uri_mut() = pq
            .parse()
            .map_err(|e| format!("cannot build the request: {e}"))?;
        if let Some(host) = &target.host {
            req.headers_mut()
                .entry(header::HOST)
                .or_insert_with(|| host.clone());
        }
        let result = self.exchange_on(target, req, max_body).await;
        if result.is_err() {
            self.live = None;
        }
        result
    }

    async fn exchange_on(
        &mut self,
        target: &Target,
        req: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), Failure> {
        if self
            .live
            .as_ref()
            .is_none_or(|(sender, conn)| conn.is_none() || sender.is_closed())
        {
            self.live = Some(open(target).await?);
        }
        let Some((sender, conn)) = self.live.as_mut() else {
            return Err(String::from("no connection to the target").into());
        };
        // A kept-alive connection the target closed while it was idle shows
        // here, before anything was sent: the request goes on a new one.
        if drive(conn, sender.ready()).await.is_err() {
            self.live = Some(open(target).await?);
        }
        let Some((sender, conn)) = self.live.as_mut() else {
            return Err(String::from("no connection to the target").into());
        };
        let work = async {
            sender.ready().await.map_err(|e| Failure {
                message: format!("request failed: {}", error_chain(&e)),
                unanswered: true,
                unsent: true,
            })?;
            let resp = sender.send_request(req).await.map_err(|e| Failure {
                message: format!("request failed: {}", error_chain(&e)),
                unanswered: e.is_canceled() || dropped_under_request(&e),
                unsent: e.is_canceled(),
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| format!("reading the response body failed: {e}"))?
                .to_bytes();
            Ok((parts, body))
        };
        let result = drive(conn, work).await;
        if conn.is_none() {
            // The target closed the connection (or it failed) after this
            // answer: the next request opens a new one.
            self.live = None;
        }
        result
    }
}

async fn open(target: &Target) -> Result<Live, String> {
    let io = target
        .connector
        .clone()
        .call(target.base.clone())
        .await
        .map_err(|e| format!("request failed: cannot connect: {}", error_chain(&*e)))?;
    let (sender, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
    Ok((sender, Some(Box::pin(conn))))
}
