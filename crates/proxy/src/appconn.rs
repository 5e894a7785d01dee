//! One app connection per inbound HTTP/1.1 connection, driven inside the
//! inbound connection's own task.
//!
//! An HTTP/1.1 client sends one request at a time on a connection, so the
//! inbound side needs exactly one connection to the app per client
//! connection (see `tapwire_conn` for why not the pooled client). The
//! inbound connection owns a `hyper::client::conn::http1` connection to
//! the app and polls it itself: while it waits for the app's response
//! head, and then from the response body it hands to hyper's server (see
//! [`Leased`]). When that body ends, the connection goes back to its slot
//! for the client's next request; if the body is dropped half-read (the
//! client went away), the connection is dropped with it, since its state
//! is unknown.
//!
//! Upgrades (WebSocket) and HTTP/2 keep using the pooled clients.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tapwire_conn::{drive, Owned};
use tokio::net::TcpStream;

use crate::forward::UpBody;

type Connection = http1::Connection<TokioIo<TcpStream>, UpBody>;

/// An open connection to the app: the request half and the connection
/// future that must be polled for anything to move.
pub(crate) struct AppConn {
    sender: http1::SendRequest<UpBody>,
    conn: Owned<Connection>,
}

/// The idle connection of one inbound connection, if it has one.
#[derive(Clone, Default)]
pub(crate) struct AppSlot(Arc<Mutex<Option<AppConn>>>);

impl std::fmt::Debug for AppSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSlot")
    }
}

/// Why a request on an own connection failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection to the app could not be opened.
    Connect(std::io::Error),
    /// Opening it took longer than the connect timeout.
    ConnectTimeout,
    /// The HTTP exchange failed.
    Http(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "tcp connect error: {e}"),
            Self::ConnectTimeout => f.write_str("tcp connect error: connect timed out"),
            Self::Http(e) => write!(f, "{}", crate::error::chain(e)),
        }
    }
}

impl SendError {
    /// Whether the connection was never opened.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::ConnectTimeout)
    }

    /// Whether the request may be sent again on a fresh connection, and
    /// why: a kept-alive connection the app closed or reset before
    /// answering is retried for idempotent methods (RFC 9110 §9.2.2).
    pub(crate) fn retry_safe(&self, method: &http::Method) -> Option<&'static str> {
        let Self::Http(e) = self else { return None };
        ((e.is_canceled() || tapwire_conn::dropped_under_request(e)) && method.is_idempotent())
            .then_some("upstream closed the connection before answering")
    }
}

/// How to reach the app and speak to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppTarget {
    pub(crate) addr: SocketAddr,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_headers: usize,
}

impl AppSlot {
    /// Sends `req` (origin-form URI, Host set) on this slot's connection,
    /// opening one when there is none or the last one closed. Returns the
    /// response head with the connection leased to its body.
    pub(crate) async fn send(
        &self,
        target: AppTarget,
        req: Request<UpBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let idle = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let mut app = match idle {
            Some(c) if c.conn.is_some() && !c.sender.is_closed() => c,
            _ => open(target).await?,
        };
        // Ready once the previous exchange on it is done (polling the
        // connection gets it there); a connection the app closed while idle
        // is replaced once.
        let AppConn { sender, conn } = &mut app;
        if drive(conn, sender.ready()).await.is_err() {
            app = open(target).await?;
        }
        let AppConn { sender, conn } = &mut app;
        match drive(conn, sender.send_request(req)).await {
            Ok(resp) => Ok((
                resp,
                Lease {
                    app: Some(app),
                    home: self.clone(),
                },
            )),
            Err(e) => Err(SendError::Http(e)),
        }
    }
}

/// Opens a TCP connection to the app (no delay), within the connect timeout.
pub(crate) async fn connect(
    addr: SocketAddr,
    connect_timeout: Duration,
) -> Result<TcpStream, SendError> {
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(SendError::Connect(e)),
        Err(_) => return Err(SendError::ConnectTimeout),
    };
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn open(target: AppTarget) -> Result<AppConn, SendError> {
    let tcp = connect(target.addr, target.connect_timeout).await?;
    let (sender, conn) = http1::Builder::new()
        .preserve_header_case(true)
        .title_case_headers(false)
        .max_headers(target.max_headers)
        .handshake(TokioIo::new(tcp))
        .await
        .map_err(SendError::Http)?;
    Ok(AppConn {
        sender,
        conn: Some(Box::pin(conn)),
    })
}

/// The app connection while its response body streams to the client.
pub(crate) struct Lease {
    app: Option<AppConn>,
    home: AppSlot,
}

impl Lease {
    /// Gives the connection back for the client's next request.
    fn give_back(&mut self) {
        if let Some(app) = self.app.take() {
            if app.conn.is_some() {
                *self
                    .home
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(app);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps the app connection moving while it is
    /// read, and returns the connection to its slot when it ends.
    pub(crate) struct Leased<B>
    where
        B: Body,
    {
        #[pin]
        inner: B,
        lease: Lease,
    }

    impl<B> PinnedDrop for Leased<B>
    where
        B: Body,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // hyper stops polling a sized body once it says it is at its
            // end, so the end may never be seen as a `None` frame.
            if this.inner.as_ref().get_ref().is_end_stream() {
                this.lease.give_back();
            }
        }
    }
}

impl<B: Body> Leased<B> {
    pub(crate) fn new(inner: B, lease: Lease) -> Self {
        Self { inner, lease }
    }
}

impl<B> Body for Leased<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Some(app) = this.lease.app.as_mut() {
            tapwire_conn::poll(&mut app.conn, cx);
        }
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.lease.give_back(),
            Poll::Ready(Some(Err(_))) => this.lease.app = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
