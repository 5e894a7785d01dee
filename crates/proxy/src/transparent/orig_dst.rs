//! The address a redirected connection was sent to, before iptables'
//! `REDIRECT` rewrote it: `SO_ORIGINAL_DST` (IPv4) or
//! `IP6T_SO_ORIGINAL_DST` (IPv6), read from conntrack by the kernel.
//!
//! socket2 wraps both getsockopt calls (its `all` feature, which tokio
//! already enables), so no `unsafe` is needed here.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

/// The original destination of an accepted connection. For a connection
/// that was not redirected this is the local address itself (or
/// `NotFound` when conntrack does not track it).
pub(crate) fn original_dst(stream: &TcpStream) -> io::Result<SocketAddr> {
    let sock = socket2::SockRef::from(stream);
    let addr = match stream.local_addr()? {
        SocketAddr::V4(_) => sock.original_dst_v4()?,
        SocketAddr::V6(_) => sock.original_dst_v6()?,
    };
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the original destination is not an IP address",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a redirect the kernel answers with the local address, or
    /// ENOENT when nothing tracks the connection; never something else.
    #[tokio::test]
    async fn an_unredirected_connection_reports_itself_or_nothing() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        match original_dst(&server) {
            Ok(a) => assert_eq!(a, addr),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}"),
        }
    }
}
