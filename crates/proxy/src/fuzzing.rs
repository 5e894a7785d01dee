//! Entry points for the fuzz targets in `fuzz/`: every parser of untrusted
//! bytes in the proxy, reachable without sockets. Not a stable API.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::capture::CaptureQueue;
use crate::forward::Clients;
use crate::server::Shared;
use crate::{Metrics, ProxyConfig};

/// Protocol sniffing and ClientHello parsing on arbitrary bytes.
pub fn sniff(data: &[u8]) {
    let _ = crate::sniff::sniff(data);
    let _ = crate::sniff::client_hello(data);
}

/// The ignore lists of `tapwire init` (IPs/CIDRs and ports/ranges) on
/// arbitrary text: parse or fail, never panic; what parses prints back to
/// the same list, and renders into rules.
pub fn ignore_lists(data: &[u8]) {
    use crate::transparent::{Family, IpList, PortList, Redirect};
    let text = String::from_utf8_lossy(data);
    let ips = text.parse::<IpList>();
    let ports = text.parse::<PortList>();
    if let Ok(l) = &ips {
        assert_eq!(l.to_string().parse::<IpList>().as_ref(), Ok(l));
    }
    if let Ok(l) = &ports {
        assert_eq!(l.to_string().parse::<PortList>().as_ref(), Ok(l));
    }
    let r = Redirect {
        proxy_uid: 1477,
        in_port: 4143,
        out_port: 4140,
        admin_port: Some(4145),
        ignore_src_ips: ips.clone().unwrap_or_default(),
        ignore_dst_ips: ips.unwrap_or_default(),
        ignore_inbound_ports: ports.clone().unwrap_or_default(),
        ignore_outbound_ports: ports.unwrap_or_default(),
    };
    for family in [Family::V4, Family::V6] {
        let installed = crate::transparent::Installed::parse(&text);
        let _ = crate::transparent::install_script(&r, family, &installed);
        let _ = crate::transparent::remove_script(&installed);
    }
}

/// Hop-by-hop stripping on headers built from arbitrary `name: value` lines.
pub fn hop_headers(data: &[u8]) {
    let mut map = http::HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let mut parts = line.splitn(2, |b| *b == b':');
        let (Some(n), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(n),
            http::HeaderValue::from_bytes(v),
        ) {
            map.append(n, v);
        }
    }
    let upgrade = crate::hop::is_upgrade(&map);
    crate::hop::strip(&mut map, upgrade);
    for (n, _) in map.iter() {
        assert!(n != http::header::TRANSFER_ENCODING && n != http::header::PROXY_AUTHORIZATION);
    }
}

/// Chunked framing on arbitrary bytes: the first byte is a split stride;
/// the rest is fed whole to one decoder and in stride-sized pieces to
/// another, and both must agree on the consumed count, the payload, the
/// trailers and the error.
pub fn chunked(data: &[u8]) {
    let Some((&stride, stream)) = data.split_first() else {
        return;
    };
    let whole = chunked_decode([stream]);
    let pieces = chunked_decode(stream.chunks(usize::from(stride.max(1))));
    assert_eq!(whole, pieces, "stride {stride}");
}

/// What a chunked decoder made of a stream fed in pieces: the consumed count
/// or error, the payload, the trailers, and whether it finished.
type ChunkedOutcome = (
    Result<usize, crate::chunked::ChunkError>,
    Vec<u8>,
    Vec<u8>,
    bool,
);

fn chunked_decode<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> ChunkedOutcome {
    // Small limits, so that inputs reach them.
    const MAX_LINE: usize = 32;
    const MAX_TRAILERS: usize = 64;
    let mut dec = crate::chunked::Chunked::new(MAX_LINE, MAX_TRAILERS);
    let mut payload = Vec::new();
    let mut consumed = 0usize;
    for piece in pieces {
        let mut end = 0;
        let result = dec.feed(piece, |r| {
            assert!(!r.is_empty() && r.start >= end, "range {r:?} after {end}");
            end = r.end;
            match piece.get(r) {
                Some(bytes) => payload.extend_from_slice(bytes),
                None => panic!("payload range outside the buffer"),
            }
        });
        match result {
            Ok(n) => {
                assert!(end <= n && n <= piece.len());
                assert!(n == piece.len() || dec.is_done());
                consumed += n;
            }
            Err(e) => {
                assert_eq!(dec.feed(b"0\r\n\r\n", |_| {}), Err(e.clone()), "sticky");
                return (Err(e), payload, dec.trailers().to_vec(), dec.is_done());
            }
        }
    }
    assert!(dec.trailers().len() <= MAX_TRAILERS);
    (
        Ok(consumed),
        payload,
        dec.trailers().to_vec(),
        dec.is_done(),
    )
}

struct Harness {
    rt: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    _stop: tokio::sync::watch::Sender<bool>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fuzz runtime");
        // Port 9 (discard) on loopback is closed: every forward fails fast
        // with a 502, which exercises the error path too.
        let config = ProxyConfig {
            app_addr: ([127, 0, 0, 1], 9).into(),
            connect_timeout: Duration::from_millis(200),
            ..ProxyConfig::default()
        };
        let metrics = Metrics::register(&mut Registry::default());
        // The receiver is dropped: captures count as dropped, as designed.
        let (queue, _rx) = CaptureQueue::new(16, 1024, metrics);
        let tls = tapwire_ca::client_config_from_roots(rustls::RootCertStore::empty(), vec![])
            .expect("empty-root TLS config");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            clients: rt.block_on(async { Clients::new(&config, tls.clone()) }),
            service: Arc::new(config.service.clone()),
            config,
            queue,
            upstream_tls: tls,
            leaf_issuer: None,
            stop: stop_rx,
        });
        Harness {
            rt,
            shared,
            _stop: stop,
        }
    })
}

/// Feeds `data` as one client connection to the inbound (`outbound ==
/// false`) or outbound listener and reads whatever the proxy answers.
pub fn connection(data: &[u8], outbound: bool) {
    let h = harness();
    let shared = h.shared.clone();
    let data = data.to_vec();
    h.rt.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let peer = ([127, 0, 0, 1], 40000).into();
        let serve = async move {
            if outbound {
                crate::outbound::serve(TokioIo::new(server), peer, None, shared).await;
            } else {
                crate::inbound::serve(server, peer, None, shared).await;
            }
        };
        let drive = async move {
            let _ = client.write_all(&data).await;
            let _ = client.shutdown().await;
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), async { tokio::join!(serve, drive) })
            .await;
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn harness_survives_valid_and_hostile_connections() {
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"\x00\x01garbage\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
            b"CONNECT [::1 HTTP/1.1\r\n\r\n",
        ] {
            super::connection(input, false);
            super::connection(input, true);
        }
        super::sniff(b"\x16\x03\x01\x00\x10");
        super::ignore_lists(b"10.0.0.0/8,*,fd00::/8");
        super::ignore_lists(b"22,8000:8100\n*nat\n-A OUTPUT -j TAPWIRE_X");
        super::hop_headers(b"connection: x-a, upgrade\nx-a: 1\nupgrade: ws\nte: trailers");
        for input in [
            &b""[..],
            b"\x03",
            b"\x034;a=b\r\nWiki\r\n0\r\nx-a: b\r\n\r\nGET / HTTP/1.1\r\n",
            b"\x014\r\nWi",
            b"\x00zz\r\n",
            b"\x074\nWiki\r\n0\r\n\r\n",
            b"\x0510000000000000000\r\n",
        ] {
            super::chunked(input);
        }
    }
}
