//! Stream adapters: replaying bytes read while sniffing, and copying a
//! flow's bytes into a capture as they pass.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::capture::BodyCapture;

/// A stream whose first bytes were already read (to sniff the protocol) and
/// are handed out again before the rest of the stream.
#[derive(Debug)]
pub(crate) struct PrefixedIo<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> PrefixedIo<S> {
    pub(crate) fn new(prefix: impl Into<Bytes>, inner: S) -> Self {
        Self {
            prefix: prefix.into(),
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Wraps the client side of an opaque flow: what is read from it is what
/// the client sent, what is written to it is what the server sent.
#[derive(Debug)]
pub(crate) struct TeeIo<S> {
    inner: S,
    limit: usize,
    pub(crate) from_client: BodyCapture,
    pub(crate) from_server: BodyCapture,
}

impl<S> TeeIo<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            limit,
            from_client: BodyCapture::default(),
            from_server: BodyCapture::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TeeIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res {
            let limit = self.limit;
            let new = &buf.filled()[before..];
            if new.is_empty() {
                self.from_client.complete = true;
            }
            self.from_client.push_slice(new, limit);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TeeIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            let limit = self.limit;
            self.from_server.push_slice(&buf[..*n], limit);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.from_server.complete = true;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefix_is_replayed_before_the_stream() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b" world").await.unwrap();
        drop(b);
        let mut p = PrefixedIo::new(Bytes::from_static(b"hello"), a);
        let mut s = String::new();
        p.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }

    #[tokio::test]
    async fn tee_records_both_directions_up_to_the_limit() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut t = TeeIo::new(a, 4);
        b.write_all(b"ping!!").await.unwrap();
        let mut buf = [0u8; 6];
        t.read_exact(&mut buf).await.unwrap();
        t.write_all(b"pong").await.unwrap();
        assert_eq!(t.from_client.size, 6);
        assert_eq!(t.from_server.size, 4);
    }
}
