//! An HTTP/1.1 client connection owned and polled by the task that sends on
//! it, for the proxy's app connections and the replay generator's virtual
//! users.
//!
//! A task that sends one request at a time needs exactly one connection,
//! and going through a pooled client costs it a pool checkout, a channel
//! hop to the connection's own task, a oneshot back and a wake-up per
//! request (docs/benchmarks.md has the profiles). Instead the task holds
//! the connection future from `hyper::client::conn::http1::handshake` as
//! an [`Owned`] and polls it beside its own work with [`drive`] (or
//! [`poll`], from inside another future's `poll`).

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

/// The connection future of a handshake, boxed; `None` once it has
/// finished (the peer closed the connection, or it failed). Dropping it
/// then is what tells the request half that the connection is closed.
pub type Owned<C> = Option<Pin<Box<C>>>;

/// Moves the connection along; drops it once it has finished.
pub fn poll<C: Future + ?Sized>(conn: &mut Owned<C>, cx: &mut Context<'_>) {
    if let Some(c) = conn.as_mut() {
        if c.as_mut().poll(cx).is_ready() {
            *conn = None;
        }
    }
}

/// Polls `work` to completion while polling the connection that serves
/// it, in the same task. A connection that finishes meanwhile is dropped
/// at once, so that `work`, waiting on the request half, learns that it
/// closed instead of waiting forever.
pub async fn drive<C: Future + ?Sized, F: Future>(conn: &mut Owned<C>, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        poll(conn, cx);
        work.as_mut().poll(cx)
    })
    .await
}

/// Whether the peer dropped the connection under a request it had not
/// answered: closed it (an incomplete message) or reset it. Both happen
/// when a kept-alive connection is closed by the peer just as a request
/// goes out; an idempotent request may then be sent again on a new
/// connection (RFC 9110 §9.2.2).
pub fn dropped_under_request(e: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    e.is_incomplete_message()
        || std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_connection_is_dropped_and_work_still_completes() {
        let mut conn: Owned<dyn Future<Output = ()> + Send> = Some(Box::pin(async {}));
        let out = drive(&mut conn, async {
            tokio::task::yield_now().await;
            7
        })
        .await;
        assert_eq!(out, 7);
        assert!(conn.is_none(), "the finished connection is dropped");
    }

    #[tokio::test]
    async fn a_live_connection_is_kept() {
        let mut conn: Owned<dyn Future<Output = ()> + Send> =
            Some(Box::pin(std::future::pending()));
        assert_eq!(drive(&mut conn, async { 1 }).await, 1);
        assert!(conn.is_some());
    }
}
