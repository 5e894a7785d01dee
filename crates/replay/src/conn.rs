//! One HTTP/1.1 connection per virtual user, driven inside the VU's own
//! task.
//!
//! The pooled client (`hyper_util`'s legacy `Client`) costs about half of
//! the generator's per-request work on HTTP/1.1: a pool checkout that
//! hashes the key and walks the idle list, a channel hop to the
//! connection's task and a oneshot back, one more task wake-up per request,
//! and connect races that open more connections than there are VUs (see
//! docs/benchmarks.md). A closed-model VU sends one request at a time, so it
//! needs exactly one connection: here it owns a `hyper::client::conn::http1`
//! connection and polls it itself while it waits for the answer. `--vus N`
//! then means N connections, as `-c N` does for wrk.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service as _;

use crate::run::error_chain;

type Io = <HttpsConnector<HttpConnector> as tower_service::Service<Uri>>::Response;
type Connection = http1::Connection<Io, Full<Bytes>>;
/// The request half and the connection it needs polled.
type Live = (http1::SendRequest<Full<Bytes>>, Pin<Box<Connection>>);

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

impl VuConn {
    /// Sends `req` (absolute URI) and reads the whole answer, at most
    /// `max_body` bytes of body. Any failure closes the connection, so
    /// that the next request starts on a fresh one.
    pub(crate) async fn exchange(
        &mut self,
        target: &Target,
        mut req: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<(http::response::Parts, Bytes), String> {
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
    ) -> Result<(http::response::Parts, Bytes), String> {
        if self
            .live
            .as_ref()
            .is_none_or(|(sender, _)| sender.is_closed())
        {
            self.live = Some(open(target).await?);
        }
        let Some((sender, conn)) = self.live.as_mut() else {
            return Err("no connection to the target".into());
        };
        let work = async {
            sender
                .ready()
                .await
                .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| format!("reading the response body failed: {e}"))?
                .to_bytes();
            Ok((parts, body))
        };
        let (result, closed) = drive(conn.as_mut(), work).await;
        if closed {
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
    Ok((sender, Box::pin(conn)))
}

/// Polls `work` to completion while also polling the connection that
/// serves it, in the same task. Returns `work`'s output and whether the
/// connection finished meanwhile (it is not polled again once it has).
async fn drive<F: Future>(mut conn: Pin<&mut Connection>, work: F) -> (F::Output, bool) {
    let mut work = std::pin::pin!(work);
    let mut closed = false;
    let out = std::future::poll_fn(|cx| {
        if !closed && conn.as_mut().poll(cx).is_ready() {
            closed = true;
        }
        work.as_mut().poll(cx)
    })
    .await;
    (out, closed)
}
