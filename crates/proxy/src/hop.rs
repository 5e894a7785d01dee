//! Hop-by-hop header handling (RFC 9110 §7.6.1): these fields describe one
//! connection and must not be forwarded; everything else passes unchanged.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Fields that describe one connection whatever `Connection` lists: the
/// RFC's own and the proxy-era ones. `Connection` and `Upgrade` are
/// handled beside them, since an upgrade keeps both.
const HOP_FIELDS: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "transfer-encoding",
];

/// True for a field that never passes a hop as it is (case-insensitive):
/// the fields above, `Connection` and `Upgrade`.
pub(crate) fn is_hop_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("connection")
        || name.eq_ignore_ascii_case("upgrade")
        || HOP_FIELDS.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// True when the request asks to switch protocols (WebSocket and the like).
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| tokens(v.as_bytes()))
        .filter_map(|t| std::str::from_utf8(t).ok())
}

/// True for a `TE` value that lists `trailers`, the one part of `TE` that
/// is forwarded (gRPC needs it end to end).
pub(crate) fn asks_trailers(te: &[u8]) -> bool {
    tokens(te).any(|t| t.eq_ignore_ascii_case(b"trailers"))
}

/// The items of a comma-separated field value, trimmed, empty ones skipped.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop fields before forwarding. With `keep_upgrade`, the
/// `Connection: upgrade` and `Upgrade` fields survive so the upstream can
/// switch protocols. `TE: trailers` is kept because gRPC needs it end to end.
pub(crate) fn strip(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| !(keep_upgrade && t.eq_ignore_ascii_case("upgrade")))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    let te_trailers = headers
        .get_all(header::TE)
        .iter()
        .any(|v| asks_trailers(v.as_bytes()));
    for n in HOP_FIELDS {
        headers.remove(n);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(*n, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn strips_listed_and_standard_hop_fields() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("transfer-encoding", "chunked"),
            ("te", "gzip, trailers"),
            ("x-end-to-end", "kept"),
            ("accept", "a"),
            ("accept", "b"),
        ]);
        strip(&mut h, false);
        // HeaderMap removal may reorder distinct names; order between
        // different names carries no meaning (RFC 9110 §5.3).
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "te", "x-end-to-end"]);
        assert_eq!(h["te"], "trailers");
        assert_eq!(h.get_all("accept").iter().count(), 2);
    }

    #[test]
    fn keeps_upgrade_when_switching_protocols() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade(&h));
        strip(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "k");
    }

    #[test]
    fn te_without_trailers_is_dropped() {
        let mut h = map(&[("te", "gzip")]);
        strip(&mut h, false);
        assert!(h.get("te").is_none());
        assert!(!is_upgrade(&map(&[("upgrade", "h2c")])));
    }
}
