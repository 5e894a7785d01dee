//! Round trips and failure modes of the exchange codecs: JSON Lines, zstd
//! segments and HAR.

// Clippy only exempts `#[test]` functions themselves; in the fixture helpers
// too, a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use tapwire_model::{
    har, jsonl, segment, Body, Direction, Exchange, ExchangeId, Headers, Protocol, Request,
    Response, Service, TcpFlow, TlsInfo, Upstream,
};

fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, nanos).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn service(name: &str) -> Service {
    Service {
        name: name.to_owned(),
        namespace: Some("shop".to_owned()),
        pod: Some(format!("{name}-7d9f-abcde")),
        node: None,
        cluster: None,
    }
}

/// A plain outbound HTTP/1.1 GET with query, cookies and repeated headers.
fn outbound_get() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        service("checkout"),
        Upstream {
            host: "payments.internal".to_owned(),
            port: 8443,
        },
    );
    ex.start = at(0, 123_000_000);
    ex.duration_us = 12_345;
    ex.client_addr = Some("10.0.0.7:51234".parse().unwrap());
    ex.server_addr = Some("10.0.3.9:8443".parse().unwrap());
    ex.tls = Some(TlsInfo {
        sni: Some("payments.internal".to_owned()),
        alpn: vec!["http/1.1".to_owned()],
        intercepted: true,
    });
    ex.request = Some(Request {
        method: "GET".to_owned(),
        scheme: "https".to_owned(),
        authority: "payments.internal:8443".to_owned(),
        path: "/v1/charges".to_owned(),
        query: Some("customer=c%2F42&limit=10&q=a+b&flag".to_owned()),
        version: "HTTP/1.1".to_owned(),
        headers: headers(&[
            ("Host", "payments.internal:8443"),
            ("Accept", "application/json"),
            ("Cookie", "session=abc123; theme=dark"),
            ("X-Trace", "1"),
            ("X-Trace", "2"),
        ]),
        body: Body::default(),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/1.1".to_owned(),
        headers: headers(&[
            ("Content-Type", "application/json"),
            ("Set-Cookie", "session=def456; Path=/; HttpOnly"),
            ("Set-Cookie", "seen=1"),
        ]),
        body: Body::complete(r#"{"charges":[{"id":"ch_1","amount":1299}]}"#),
        trailers: Headers::new(),
    });
    ex.tags = BTreeMap::from([
        ("proxy_mode".to_owned(), "outbound".to_owned()),
        ("team".to_owned(), "payments".to_owned()),
    ]);
    ex
}

/// Inbound h2 POST: binary request body, truncated text response, IPv6.
fn inbound_binary_h2() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Inbound,
        Protocol::Http2,
        service("catalog"),
        Upstream {
            host: "::1".to_owned(),
            port: 8080,
        },
    );
    ex.start = at(5, 987_654_321);
    ex.duration_us = 3;
    ex.client_addr = Some("[fd00::2]:40000".parse().unwrap());
    ex.request = Some(Request {
        method: "POST".to_owned(),
        scheme: "http".to_owned(),
        authority: "[::1]:8080".to_owned(),
        path: "/upload".to_owned(),
        query: None,
        version: "HTTP/2.0".to_owned(),
        headers: headers(&[
            ("content-type", "application/octet-stream"),
            ("content-length", "6"),
        ]),
        body: Body::complete(vec![0u8, 159, 146, 150, 255, 1]),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 201,
        version: "HTTP/2.0".to_owned(),
        headers: headers(&[("content-type", "text/plain"), ("location", "/upload/9")]),
        body: Body {
            data: Bytes::from_static(b"created: lorem ipsum"),
            size: 10_000,
            truncated: true,
        },
        trailers: Headers::new(),
    });
    ex
}

/// gRPC with trailers and binary bodies, one truncated mid-character.
fn grpc_with_trailers() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Grpc,
        service("checkout"),
        Upstream {
            host: "inventory".to_owned(),
            port: 50051,
        },
    );
    ex.start = at(2, 0);
    ex.duration_us = 1_500;
    ex.request = Some(Request {
        method: "POST".to_owned(),
        scheme: "http".to_owned(),
        authority: "inventory:50051".to_owned(),
        path: "/inventory.v1.Stock/Reserve".to_owned(),
        query: None,
        version: "HTTP/2.0".to_owned(),
        headers: headers(&[("content-type", "application/grpc"), ("te", "trailers")]),
        body: Body::complete(vec![0u8, 0, 0, 0, 3, 8, 1, 16]),
        trailers: headers(&[("x-client-checksum", "42")]),
    });
    // "é" is two bytes; keeping only the first makes the prefix non-UTF-8.
    let cut = "résumé".as_bytes()[..2].to_vec();
    ex.response = Some(Response {
        status: 200,
        version: "HTTP/2.0".to_owned(),
        headers: headers(&[("content-type", "application/grpc+proto")]),
        body: Body {
            data: cut.into(),
            size: 8,
            truncated: true,
        },
        trailers: headers(&[("grpc-status", "0"), ("grpc-message", "")]),
    });
    ex
}

/// No response: the upstream refused; the request body was not kept at all.
fn no_response() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Http1,
        service("checkout"),
        Upstream {
            host: "mail.example.com".to_owned(),
            port: 80,
        },
    );
    ex.start = at(1, 500_000);
    ex.duration_us = 30_000_000;
    ex.request = Some(Request {
        method: "PUT".to_owned(),
        scheme: "http".to_owned(),
        authority: "mail.example.com".to_owned(),
        path: "/outbox".to_owned(),
        query: Some(String::new()),
        version: "HTTP/1.0".to_owned(),
        headers: headers(&[("Content-Type", "message/rfc822")]),
        body: Body {
            data: Bytes::new(),
            size: 2_000_000,
            truncated: true,
        },
        trailers: Headers::new(),
    });
    ex.error = Some("upstream unreachable: connection refused".to_owned());
    ex
}

/// Odd but legal values: a `?` inside the path, status without a reason
/// phrase, headers that differ only in case, an empty header value.
fn odd_corners() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Inbound,
        Protocol::Http1,
        Service {
            name: "legacy".to_owned(),
            ..Service::default()
        },
        Upstream {
            host: "127.0.0.1".to_owned(),
            port: 3000,
        },
    );
    ex.v = 1;
    ex.id = ExchangeId(uuid::Uuid::nil());
    ex.start = at(-100, 1);
    ex.duration_us = u64::MAX;
    ex.request = Some(Request {
        method: "OPTIONS".to_owned(),
        scheme: "http".to_owned(),
        authority: "127.0.0.1:3000".to_owned(),
        path: "/a?b".to_owned(),
        query: Some("c=d?e".to_owned()),
        version: "HTTP/1.1".to_owned(),
        headers: headers(&[("X-A", "1"), ("x-a", ""), ("X-A", "3")]),
        body: Body::complete("plain text with \"quotes\" and \u{2603}"),
        trailers: Headers::new(),
    });
    ex.response = Some(Response {
        status: 299,
        version: "HTTP/1.1".to_owned(),
        headers: Headers::new(),
        body: Body::default(),
        trailers: Headers::new(),
    });
    ex
}

fn tcp_flow() -> Exchange {
    let mut ex = Exchange::new(
        Direction::Outbound,
        Protocol::Tcp,
        service("checkout"),
        Upstream {
            host: "db".to_owned(),
            port: 5432,
        },
    );
    ex.start = at(3, 0);
    ex.tcp = Some(TcpFlow {
        client_bytes: Body::complete(vec![0u8, 0, 0, 8, 4, 210, 22, 47]),
        server_bytes: Body::complete("N"),
    });
    ex
}

fn http_fixtures() -> Vec<Exchange> {
    vec![
        outbound_get(),
        inbound_binary_h2(),
        grpc_with_trailers(),
        no_response(),
        odd_corners(),
    ]
}

fn all_fixtures() -> Vec<Exchange> {
    let mut v = http_fixtures();
    v.push(tcp_flow());
    v
}

mod jsonl_codec {
    use super::*;

    #[test]
    fn every_fixture_round_trips() {
        for ex in all_fixtures() {
            let line = jsonl::encode(&ex);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            assert_eq!(jsonl::decode_line(&line, 1).unwrap(), ex);
        }
    }

    /// The encoder (sonic-rs) writes exactly what serde_json writes: every
    /// control character, quotes, backslashes, `/`, DEL, non-ASCII, line and
    /// paragraph separators, in bodies, headers, tags and names.
    #[test]
    fn encoding_matches_serde_json_byte_for_byte() {
        let mut nasty: String = (0u8..0x20).map(char::from).collect();
        nasty.push_str("\"\\/\u{7f}\u{80}\u{2028}\u{2029}\u{fffd}\u{10ffff}</script>");
        // Long runs with one escape at every position across 16/32/64-byte
        // vector blocks.
        let long: String = (0..200)
            .map(|i| {
                if i % 37 == 0 {
                    '"'
                } else if i % 53 == 0 {
                    '\n'
                } else {
                    'x'
                }
            })
            .collect();
        let mut fixtures = all_fixtures();
        for text in [nasty, long, String::new()] {
            let mut ex = odd_corners();
            ex.service.name.clone_from(&text);
            ex.tags.insert(text.clone(), text.clone());
            ex.error = Some(text.clone());
            if let Some(req) = ex.request.as_mut() {
                req.headers.push(text.clone(), text.clone());
                req.body = Body::complete(text.clone());
            }
            fixtures.push(ex);
        }
        for ex in fixtures {
            let mut want = serde_json::to_vec(&ex).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(jsonl::encode(&ex)).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    /// Random parts of exchanges.
    struct Rng(fastrand::Rng);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.u64(..)
        }

        fn below(&mut self, n: u64) -> usize {
            self.0.usize(..n as usize)
        }

        fn coin(&mut self) -> bool {
            self.0.bool()
        }

        /// Bytes drawn from the ones JSON escapes, mixed case, non-ASCII
        /// and, unless `utf8`, sequences that are not UTF-8.
        fn bytes(&mut self, utf8: bool) -> Vec<u8> {
            const PIECES: [&[u8]; 16] = [
                b"a",
                b"Z",
                b"Host",
                b"\"",
                b"\\",
                b"/",
                b"\n",
                b"\x01",
                b"\x1f",
                b"\x7f",
                "\u{e9}".as_bytes(),
                "\u{2028}".as_bytes(),
                "\u{1f600}".as_bytes(),
                b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                b"\xff",
                b"\xc3",
            ];
            let n = if self.below(8) == 0 {
                60
            } else {
                self.below(6)
            };
            let mut out = Vec::new();
            for _ in 0..n {
                out.extend_from_slice(PIECES[self.below(if utf8 { 14 } else { 16 })]);
            }
            out
        }

        fn text(&mut self) -> String {
            String::from_utf8(self.bytes(true)).unwrap()
        }

        fn maybe(&mut self) -> Option<String> {
            self.coin().then(|| self.text())
        }

        fn body(&mut self) -> Body {
            let data = match self.below(3) {
                0 => Vec::new(),
                1 => self.text().into_bytes(),
                _ => self.bytes(false),
            };
            let extra = if self.coin() {
                self.below(5000) as u64
            } else {
                0
            };
            Body {
                size: data.len() as u64 + extra,
                truncated: extra > 0,
                data: data.into(),
            }
        }

        fn headers(&mut self) -> Headers {
            (0..self.below(5))
                .map(|_| (self.text(), self.text()))
                .collect()
        }

        /// Usually none.
        fn trailers(&mut self) -> Headers {
            if self.coin() {
                self.headers()
            } else {
                Headers::new()
            }
        }

        fn addr(&mut self) -> Option<std::net::SocketAddr> {
            match self.below(3) {
                0 => None,
                1 => Some(std::net::SocketAddr::from((
                    (self.next() as u32).to_be_bytes(),
                    self.next() as u16,
                ))),
                _ => Some(std::net::SocketAddr::from((
                    (u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes(),
                    self.next() as u16,
                ))),
            }
        }

        fn exchange(&mut self) -> Exchange {
            let protocols = [
                Protocol::Http1,
                Protocol::Http2,
                Protocol::Grpc,
                Protocol::Tcp,
            ];
            let mut ex = Exchange::new(
                if self.coin() {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                protocols[self.below(4)],
                Service {
                    name: self.text(),
                    namespace: self.maybe(),
                    pod: self.maybe(),
                    node: self.maybe(),
                    cluster: self.maybe(),
                },
                Upstream {
                    host: self.text(),
                    port: self.next() as u16,
                },
            );
            ex.v = self.next() as u32;
            ex.id = ExchangeId(uuid::Uuid::from_u128(
                u128::from(self.next()) << 64 | u128::from(self.next()),
            ));
            // Years 1970 to past 9999, every count of fraction digits.
            let nanos = [0, 1_000_000, 1_000, 1][self.below(4)] * (self.next() % 1000) as u32;
            ex.start = Utc
                .timestamp_opt((self.next() % 260_000_000_000) as i64, nanos)
                .unwrap();
            ex.duration_us = self.next() >> self.below(64);
            ex.client_addr = self.addr();
            ex.server_addr = self.addr();
            ex.tls = self.coin().then(|| TlsInfo {
                sni: self.maybe(),
                alpn: (0..self.below(3)).map(|_| self.text()).collect(),
                intercepted: self.coin(),
            });
            ex.request = self.coin().then(|| Request {
                method: self.text(),
                scheme: self.text(),
                authority: self.text(),
                path: self.text(),
                query: self.maybe(),
                version: self.text(),
                headers: self.headers(),
                body: self.body(),
                trailers: self.trailers(),
            });
            ex.response = self.coin().then(|| Response {
                status: self.next() as u16,
                version: self.text(),
                headers: self.headers(),
                body: self.body(),
                trailers: self.trailers(),
            });
            ex.tcp = self.coin().then(|| TcpFlow {
                client_bytes: self.body(),
                server_bytes: self.body(),
            });
            ex.error = self.maybe();
            ex.tags = (0..self.below(4))
                .map(|_| (self.text(), self.text()))
                .collect();
            ex
        }
    }

    /// The hand-written encoder against serde_json on random exchanges,
    /// owned and with fields as raw wire bytes (names lower-cased on the
    /// way out, values that are not UTF-8 replaced).
    #[test]
    fn random_exchanges_encode_as_serde_json_does() {
        use tapwire_model::view::{Fields, Tags};
        let mut rng = Rng(fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d));
        for _ in 0..20_000 {
            let ex = rng.exchange();
            let mut want = serde_json::to_vec(&ex).unwrap();
            want.push(b'\n');
            assert_eq!(jsonl::encode(&ex), want, "{ex:?}");

            let raw: Vec<(String, Vec<u8>)> = (0..rng.below(5))
                .map(|_| (rng.text(), rng.bytes(false)))
                .collect();
            let raw: Vec<(&str, &[u8])> = raw.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
            let tags: Vec<(&str, &str)> = ex.tags.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            let mut view = ex.view();
            view.tags = Tags::Sorted(&tags);
            if let Some(req) = view.request.as_mut() {
                req.headers = Fields::Raw(&raw);
            }
            if let Some(resp) = view.response.as_mut() {
                resp.trailers = Fields::Raw(&raw);
            }
            let mut want = serde_json::to_vec(&view).unwrap();
            want.push(b'\n');
            let mut got = Vec::new();
            jsonl::encode_view_into(&mut got, &view);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    #[test]
    fn newer_version_says_to_upgrade() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&jsonl::encode(&outbound_get())).unwrap();
        v["v"] = 2.into();
        // A newer writer may also add fields; the version error must win.
        v["added_in_v2"] = true.into();
        let line = serde_json::to_vec(&v).unwrap();
        let err = jsonl::decode_line(&line, 7).unwrap_err();
        assert!(
            matches!(err, jsonl::DecodeError::Version { line: 7, found: 2 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "line 7: exchange schema version 2 is newer than this build understands (1); upgrade tapwire"
        );
    }

    #[test]
    fn bad_line_is_named_and_reading_goes_on() {
        let mut stream = Vec::new();
        stream.extend(jsonl::encode(&outbound_get()));
        stream.extend(b"\n");
        stream.extend(b"{\"v\":1,\"id\":\"nope\"}\n");
        stream.extend(jsonl::encode(&no_response()));
        let got: Vec<_> = jsonl::read(stream.as_slice()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap(), &outbound_get_like(&got[0]));
        let err = got[1].as_ref().unwrap_err();
        assert!(
            matches!(err, jsonl::DecodeError::Json { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("line 3: not a valid exchange: "),
            "{err}"
        );
        assert_eq!(got[2].as_ref().unwrap().request, no_response().request);
    }

    /// `outbound_get()` makes a fresh id each call; compare without it.
    fn outbound_get_like(got: &Result<Exchange, jsonl::DecodeError>) -> Exchange {
        let mut want = outbound_get();
        want.id = got.as_ref().unwrap().id;
        want
    }

    #[test]
    fn read_skips_blank_lines() {
        let a = outbound_get();
        let b = tcp_flow();
        let mut stream = Vec::new();
        stream.extend(b"\n   \n\t\r\n");
        stream.extend(jsonl::encode(&a));
        stream.extend(b"\n\n");
        // CRLF line endings from an editor must not break the record.
        let mut crlf = jsonl::encode(&b);
        crlf.pop();
        crlf.extend(b"\r\n");
        stream.extend(crlf);
        stream.extend(b"  ");
        let got: Vec<Exchange> = jsonl::read(stream.as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, vec![a, b]);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut v: serde_json::Value = serde_json::from_slice(&jsonl::encode(&tcp_flow())).unwrap();
        v["surprise"] = 1.into();
        let err = jsonl::decode_line(&serde_json::to_vec(&v).unwrap(), 1).unwrap_err();
        assert!(err.to_string().contains("surprise"), "{err}");
    }
}

mod segment_files {
    use super::*;

    fn tmp_of(path: &Path) -> std::path::PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(".tmp");
        s.into()
    }

    #[test]
    fn writer_round_trips_and_publishes_only_on_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("seg-0001{}", segment::SUFFIX));
        let fixtures = all_fixtures();

        let mut w = segment::SegmentWriter::create(&path).unwrap();
        for ex in &fixtures {
            w.append(ex).unwrap();
        }
        assert_eq!(w.count(), fixtures.len() as u64);
        let raw: u64 = fixtures.iter().map(|e| jsonl::encode(e).len() as u64).sum();
        assert_eq!(w.raw_bytes(), raw);

        // Before finish only the temporary file exists, and listing skips it.
        assert!(!path.exists());
        assert!(tmp_of(&path).exists());
        assert!(segment::list(dir.path()).unwrap().is_empty());
        assert!(segment::read_dir(dir.path()).unwrap().is_empty());

        assert_eq!(w.finish().unwrap(), path);
        assert!(path.exists());
        assert!(!tmp_of(&path).exists());
        assert_eq!(segment::list(dir.path()).unwrap(), vec![path.clone()]);
        assert_eq!(segment::read_file(&path).unwrap(), fixtures);

        // The file is zstd of exactly the JSON Lines.
        let bytes = std::fs::read(&path).unwrap();
        let plain = zstd::decode_all(bytes.as_slice()).unwrap();
        let lines: Vec<u8> = fixtures.iter().flat_map(jsonl::encode).collect();
        assert_eq!(plain, lines);
    }

    /// A segment larger than the writer's staging buffer is several zstd
    /// frames; every reader (ours, the `zstd` crate's, the CLI's) reads
    /// them all. An empty segment is still valid zstd.
    #[test]
    fn large_segments_are_several_frames_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("big{}", segment::SUFFIX));
        let mut w = segment::SegmentWriter::create_with_level(&path, 1).unwrap();
        let mut written = Vec::new();
        for i in 0..400u32 {
            let mut ex = odd_corners();
            ex.id = ExchangeId(uuid::Uuid::from_u128(u128::from(i)));
            // Varied text, so that frames do not compress to nothing.
            let text: String = (0..4000u32)
                .map(|k| char::from(b'a' + ((k * 7 + i * 13) % 26) as u8))
                .collect();
            ex.request.as_mut().unwrap().body = Body::complete(text);
            w.append(&ex).unwrap();
            written.push(ex);
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let first = zstd::zstd_safe::find_frame_compressed_size(&bytes).unwrap();
        assert!(first < bytes.len(), "expected more than one frame");
        assert_eq!(segment::read_file(&path).unwrap(), written);
        assert_eq!(segment::decode(&bytes, usize::MAX).unwrap(), written);
        let plain = zstd::decode_all(bytes.as_slice()).unwrap();
        let lines: Vec<u8> = written.iter().flat_map(jsonl::encode).collect();
        assert_eq!(plain, lines);

        let empty = dir.path().join(format!("empty{}", segment::SUFFIX));
        segment::SegmentWriter::create(&empty)
            .unwrap()
            .finish()
            .unwrap();
        assert!(segment::read_file(&empty).unwrap().is_empty());
        assert!(zstd::decode_all(std::fs::read(&empty).unwrap().as_slice())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn read_dir_merges_nested_segments_by_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("2023/11/14");
        std::fs::create_dir_all(&nested).unwrap();
        let mut early = tcp_flow();
        early.start = at(-50, 0);
        let mut tie_a = tcp_flow();
        let mut tie_b = tcp_flow();
        tie_a.start = at(10, 0);
        tie_b.start = at(10, 0);
        tie_a.id = ExchangeId(uuid::Uuid::from_u128(1));
        tie_b.id = ExchangeId(uuid::Uuid::from_u128(2));
        let mut late = outbound_get();
        late.start = at(20, 0);

        // Each file is internally out of order, and the files interleave.
        let mut w = segment::SegmentWriter::create(dir.path().join("b.jsonl.zst")).unwrap();
        w.append(&late).unwrap();
        w.append(&tie_b).unwrap();
        w.finish().unwrap();
        let mut w = segment::SegmentWriter::create(nested.join("a.jsonl.zst")).unwrap();
        w.append(&tie_a).unwrap();
        w.append(&early).unwrap();
        w.finish().unwrap();
        // Neither an unfinished segment nor a foreign file is read.
        let pending = segment::SegmentWriter::create(dir.path().join("c.jsonl.zst")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not a segment").unwrap();

        let got = segment::read_dir(dir.path()).unwrap();
        assert_eq!(got, vec![early, tie_a, tie_b, late]);
        drop(pending);
    }

    #[test]
    fn bad_record_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl.zst");
        let mut raw = jsonl::encode(&tcp_flow());
        raw.extend(b"{not json}\n");
        std::fs::write(&path, zstd::encode_all(raw.as_slice(), 3).unwrap()).unwrap();
        let err = segment::read_file(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("bad.jsonl.zst: line 2: not a valid exchange"),
            "{msg}"
        );
    }

    #[test]
    fn decode_reads_encoded_bytes() {
        let fixtures = all_fixtures();
        let bytes = segment::encode(&fixtures);
        assert_eq!(segment::decode(&bytes, 1 << 20).unwrap(), fixtures);
        // Concatenated segments are one valid zstd stream of frames.
        let mut two = bytes.clone();
        two.extend(segment::encode(&fixtures[..1]));
        assert_eq!(
            segment::decode(&two, 1 << 20).unwrap().len(),
            fixtures.len() + 1
        );
    }

    #[test]
    fn decode_enforces_the_size_limit_exactly() {
        let fixtures = all_fixtures();
        let plain: usize = fixtures.iter().map(|e| jsonl::encode(e).len()).sum();
        let bytes = segment::encode(&fixtures);
        assert_eq!(
            segment::decode(&bytes, plain).unwrap().len(),
            fixtures.len()
        );
        let err = segment::decode(&bytes, plain - 1).unwrap_err();
        assert!(matches!(err, segment::BytesError::TooLarge { max_len } if max_len == plain - 1));
        assert_eq!(
            err.to_string(),
            format!("segment decompresses to more than {} bytes", plain - 1)
        );
    }

    #[test]
    fn decode_rejects_garbage_and_bad_records() {
        let err = segment::decode(b"definitely not zstd", 1 << 20).unwrap_err();
        assert!(matches!(err, segment::BytesError::Decompress(_)), "{err:?}");

        let mut raw = jsonl::encode(&tcp_flow());
        raw.extend(b"\n[1,2]\n");
        let err =
            segment::decode(&zstd::encode_all(raw.as_slice(), 3).unwrap(), 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                segment::BytesError::Record(jsonl::DecodeError::Json { line: 3, .. })
            ),
            "{err:?}"
        );

        assert!(segment::decode(&segment::encode(&[]), 0)
            .unwrap()
            .is_empty());
    }
}

mod har_codec {
    use super::*;
    use serde_json::{json, Value};

    fn import(bytes: &[u8]) -> Result<har::Import, har::HarError> {
        har::import(bytes, &har::ImportOptions::default())
    }

    #[test]
    fn export_then_import_is_identity() {
        let fixtures = all_fixtures();
        let out = har::export(&fixtures, "0.1.0");
        assert_eq!(out.skipped_tcp, 1);
        assert_eq!(out.har.log.entries.len(), fixtures.len() - 1);

        let text = har::to_string(&out.har);
        let back = import(text.as_bytes()).unwrap();
        assert!(back.skipped.is_empty());
        let http: Vec<Exchange> = fixtures
            .into_iter()
            .filter(|e| e.request.is_some())
            .collect();
        assert_eq!(back.exchanges, http);

        let mut buf = Vec::new();
        har::to_writer(&mut buf, &out.har).unwrap();
        assert_eq!(buf, text.as_bytes());
    }

    #[test]
    fn export_fills_standard_fields() {
        let out = har::export(
            &[outbound_get(), inbound_binary_h2(), no_response()],
            "9.9.9",
        );
        let v: Value = serde_json::from_str(&har::to_string(&out.har)).unwrap();
        assert_eq!(v["log"]["version"], "1.2");
        assert_eq!(
            v["log"]["creator"],
            json!({"name": "tapwire", "version": "9.9.9"})
        );

        let e = &v["log"]["entries"][0];
        assert_eq!(e["startedDateTime"], "2023-11-14T22:13:20.123Z");
        assert_eq!(e["time"], 12.345);
        assert_eq!(
            e["timings"],
            json!({"send": 0.0, "wait": 12.345, "receive": 0.0})
        );
        assert_eq!(e["cache"], json!({}));
        assert_eq!(e["serverIPAddress"], "10.0.3.9");
        assert_eq!(e["connection"], "51234");
        let req = &e["request"];
        assert_eq!(
            req["url"],
            "https://payments.internal:8443/v1/charges?customer=c%2F42&limit=10&q=a+b&flag"
        );
        assert_eq!(req["httpVersion"], "HTTP/1.1");
        assert_eq!(
            req["queryString"],
            json!([
                {"name": "customer", "value": "c/42"},
                {"name": "limit", "value": "10"},
                {"name": "q", "value": "a b"},
                {"name": "flag", "value": ""},
            ])
        );
        assert_eq!(
            req["cookies"],
            json!([{"name": "session", "value": "abc123"}, {"name": "theme", "value": "dark"}])
        );
        assert_eq!(req["headers"][3], json!({"name": "X-Trace", "value": "1"}));
        assert_eq!(req["headers"][4], json!({"name": "X-Trace", "value": "2"}));
        assert_eq!(req["headersSize"], -1);
        assert_eq!(req["bodySize"], 0);
        assert!(req.get("postData").is_none());
        let resp = &e["response"];
        assert_eq!(resp["status"], 200);
        assert_eq!(resp["statusText"], "OK");
        assert_eq!(
            resp["cookies"],
            json!([{"name": "session", "value": "def456"}, {"name": "seen", "value": "1"}])
        );
        assert_eq!(resp["content"]["mimeType"], "application/json");
        assert_eq!(resp["content"]["size"], 41);
        assert!(resp["content"].get("encoding").is_none());
        assert_eq!(resp["redirectURL"], "");
        assert_eq!(e["_tapwire"]["direction"], "outbound");
        assert_eq!(e["_tapwire"]["tags"]["team"], "payments");

        let e = &v["log"]["entries"][1];
        assert_eq!(e["startedDateTime"], "2023-11-14T22:13:25.987654321Z");
        assert_eq!(e["time"], 0.003);
        let post = &e["request"]["postData"];
        assert_eq!(post["mimeType"], "application/octet-stream");
        assert_eq!(post["encoding"], "base64");
        assert_eq!(post["text"], "AJ+Slv8B");
        assert_eq!(e["response"]["statusText"], "Created");
        assert_eq!(e["response"]["redirectURL"], "/upload/9");
        assert_eq!(e["response"]["content"]["size"], 10_000);
        assert_eq!(e["response"]["bodySize"], 10_000);
        assert_eq!(e["response"]["content"]["text"], "created: lorem ipsum");
        assert_eq!(
            e["_tapwire"]["response"],
            json!({"size": 10_000, "truncated": true})
        );

        let e = &v["log"]["entries"][2];
        assert_eq!(e["response"]["status"], 0);
        assert_eq!(
            e["response"]["_error"],
            "upstream unreachable: connection refused"
        );
        assert!(e["_tapwire"].get("response").is_none());
        assert_eq!(e["request"]["bodySize"], 2_000_000);
    }

    /// What Chrome's "Save all as HAR" writes, trimmed by hand: an h2 page
    /// load with pseudo-headers and a gzip response stored decoded, a JSON
    /// POST, a base64 image, a data: URL and a blocked request.
    const BROWSER_HAR: &str = r#"{
      "log": {
        "version": "1.2",
        "creator": {"name": "WebInspector", "version": "537.36"},
        "pages": [{"startedDateTime": "2024-03-01T09:15:02.101Z", "id": "page_1", "title": "https://shop.example.com/", "pageTimings": {"onContentLoad": 412.5, "onLoad": 630.2}}],
        "entries": [
          {
            "_initiator": {"type": "other"},
            "_priority": "VeryHigh",
            "_resourceType": "document",
            "cache": {},
            "connection": "443",
            "pageref": "page_1",
            "request": {
              "method": "GET",
              "url": "https://shop.example.com/products?category=shoes&sort=price%20asc#top",
              "httpVersion": "http/2.0",
              "headers": [
                {"name": ":authority", "value": "shop.example.com"},
                {"name": ":method", "value": "GET"},
                {"name": ":path", "value": "/products?category=shoes&sort=price%20asc"},
                {"name": ":scheme", "value": "https"},
                {"name": "accept", "value": "text/html"},
                {"name": "accept-encoding", "value": "gzip, deflate, br"},
                {"name": "cookie", "value": "sid=xyz"}
              ],
              "queryString": [{"name": "category", "value": "shoes"}, {"name": "sort", "value": "price%20asc"}],
              "cookies": [{"name": "sid", "value": "xyz", "path": "/", "domain": "shop.example.com", "expires": "2025-01-01T00:00:00.000Z", "httpOnly": true, "secure": true}],
              "headersSize": -1,
              "bodySize": 0
            },
            "response": {
              "status": 200,
              "statusText": "",
              "httpVersion": "http/2.0",
              "headers": [
                {"name": "content-encoding", "value": "gzip"},
                {"name": "content-length", "value": "18"},
                {"name": "content-type", "value": "text/html; charset=utf-8"},
                {"name": "vary", "value": "Accept-Encoding"}
              ],
              "cookies": [],
              "content": {"size": 33, "mimeType": "text/html", "compression": 15, "text": "<html><body>shoes</body></html>\n"},
              "redirectURL": "",
              "headersSize": -1,
              "bodySize": 18,
              "_transferSize": 120,
              "_error": null
            },
            "serverIPAddress": "[2606:4700::6810:84e5]",
            "startedDateTime": "2024-03-01T09:15:02.101Z",
            "time": 87.42199999,
            "timings": {"blocked": 1.2, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1, "wait": 80.0, "receive": 6.1, "_blocked_queueing": 0.8}
          },
          {
            "cache": {},
            "request": {
              "method": "POST",
              "url": "https://api.example.com:8443/v2/cart/items",
              "httpVersion": "HTTP/1.1",
              "headers": [
                {"name": "Host", "value": "api.example.com:8443"},
                {"name": "Content-Type", "value": "application/json"}
              ],
              "queryString": [],
              "cookies": [],
              "headersSize": 210,
              "bodySize": 26,
              "postData": {"mimeType": "application/json", "text": "{\"sku\":\"SH-42\",\"qty\":1}"}
            },
            "response": {
              "status": 201,
              "statusText": "Created",
              "httpVersion": "HTTP/1.1",
              "headers": [{"name": "Content-Type", "value": "application/json"}],
              "cookies": [],
              "content": {"size": 11, "mimeType": "application/json", "text": "{\"id\":7001}"},
              "redirectURL": "",
              "headersSize": 96,
              "bodySize": 11
            },
            "serverIPAddress": "93.184.216.34",
            "startedDateTime": "2024-03-01T10:15:02.500+01:00",
            "time": 120,
            "timings": {"send": 1, "wait": 118, "receive": 1}
          },
          {
            "request": {"method": "GET", "url": "http://cdn.example.com/img/logo.png", "httpVersion": "HTTP/1.1", "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {
              "status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
              "headers": [{"name": "Content-Type", "value": "image/png"}],
              "cookies": [],
              "content": {"size": 8, "mimeType": "image/png", "text": "iVBORw0KGgo=", "encoding": "base64"},
              "redirectURL": "", "headersSize": -1, "bodySize": 8
            },
            "startedDateTime": "2024-03-01T09:15:02.700Z",
            "time": 5.5,
            "timings": {"send": 0, "wait": 5.5, "receive": 0}
          },
          {
            "request": {"method": "GET", "url": "data:image/gif;base64,R0lGODlhAQABAAAAACw=", "httpVersion": "", "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "", "headers": [], "cookies": [], "content": {"size": 14, "mimeType": "image/gif"}, "redirectURL": "", "headersSize": -1, "bodySize": -1},
            "startedDateTime": "2024-03-01T09:15:02.710Z",
            "time": 0,
            "timings": {"send": 0, "wait": 0, "receive": 0}
          },
          {
            "request": {"method": "GET", "url": "https://tracker.example.net/pixel", "httpVersion": "", "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [], "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": -1, "bodySize": -1, "_error": "net::ERR_BLOCKED_BY_CLIENT"},
            "startedDateTime": "2024-03-01T09:15:02.720Z",
            "time": -1,
            "timings": {"send": 0, "wait": 0, "receive": 0}
          }
        ]
      }
    }"#;

    #[test]
    fn imports_a_browser_har() {
        let opts = har::ImportOptions {
            service: Service {
                name: "storefront".to_owned(),
                ..Service::default()
            },
            ..har::ImportOptions::default()
        };
        let got = har::import(BROWSER_HAR.as_bytes(), &opts).unwrap();
        assert_eq!(got.skipped, vec![3]);
        let [page, post, image, blocked] = got.exchanges.as_slice() else {
            panic!("expected 4 exchanges, got {:#?}", got.exchanges);
        };

        assert_eq!(page.direction, Direction::Outbound);
        assert_eq!(page.service.name, "storefront");
        assert_eq!(page.protocol, Protocol::Http2);
        assert_eq!(page.key(), "storefront:shop.example.com:443");
        assert_eq!(
            page.start,
            Utc.with_ymd_and_hms(2024, 3, 1, 9, 15, 2).unwrap()
                + chrono::Duration::milliseconds(101)
        );
        assert_eq!(page.duration_us, 87_422);
        assert_eq!(
            page.server_addr,
            Some("[2606:4700::6810:84e5]:443".parse().unwrap())
        );
        assert_eq!(
            page.tags.get("har_creator").map(String::as_str),
            Some("WebInspector")
        );
        let tls = page.tls.as_ref().unwrap();
        assert_eq!(tls.sni.as_deref(), Some("shop.example.com"));
        assert_eq!(tls.alpn, vec!["h2".to_owned()]);
        // Ids are v7 and stamped with the start time.
        let (secs, _) = page.id.0.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, page.start.timestamp() as u64);
        let req = page.request.as_ref().unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.scheme, "https");
        assert_eq!(req.authority, "shop.example.com");
        assert_eq!(req.path, "/products");
        assert_eq!(
            req.query.as_deref(),
            Some("category=shoes&sort=price%20asc")
        );
        assert_eq!(req.version, "HTTP/2.0");
        assert_eq!(
            req.headers,
            headers(&[
                ("accept", "text/html"),
                ("accept-encoding", "gzip, deflate, br"),
                ("cookie", "sid=xyz"),
            ])
        );
        assert!(req.body.is_empty());
        let resp = page.response.as_ref().unwrap();
        assert_eq!(resp.status, 200);
        // The body is stored decoded, so the encoding header is dropped and
        // the length made true.
        assert_eq!(
            resp.headers,
            headers(&[
                ("content-length", "32"),
                ("content-type", "text/html; charset=utf-8"),
                ("vary", "Accept-Encoding"),
            ])
        );
        assert_eq!(
            resp.body,
            Body::complete("<html><body>shoes</body></html>\n")
        );

        assert_eq!(post.protocol, Protocol::Http1);
        assert_eq!(
            post.upstream,
            Upstream {
                host: "api.example.com".to_owned(),
                port: 8443
            }
        );
        assert_eq!(post.start.to_rfc3339(), "2024-03-01T09:15:02.500+00:00");
        assert_eq!(post.duration_us, 120_000);
        let req = post.request.as_ref().unwrap();
        assert_eq!(req.authority, "api.example.com:8443");
        assert_eq!(req.path, "/v2/cart/items");
        assert_eq!(req.query, None);
        assert_eq!(req.body, Body::complete(r#"{"sku":"SH-42","qty":1}"#));
        assert_eq!(
            post.response.as_ref().unwrap().body.as_text(),
            Some(r#"{"id":7001}"#)
        );
        assert_eq!(post.tls.as_ref().unwrap().alpn, vec!["http/1.1".to_owned()]);

        assert_eq!(image.upstream.port, 80);
        assert_eq!(image.tls, None);
        assert_eq!(
            image.response.as_ref().unwrap().body.data.as_ref(),
            &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
        );

        assert!(blocked.response.is_none());
        assert_eq!(blocked.error.as_deref(), Some("net::ERR_BLOCKED_BY_CLIENT"));
        assert_eq!(blocked.duration_us, 0);
        assert_eq!(blocked.request.as_ref().unwrap().version, "HTTP/1.1");
    }

    #[test]
    fn imported_browser_exchanges_survive_a_tapwire_round_trip() {
        let first = import(BROWSER_HAR.as_bytes()).unwrap().exchanges;
        let text = har::to_string(&har::export(&first, "0.1.0").har);
        assert_eq!(import(text.as_bytes()).unwrap().exchanges, first);
    }

    #[test]
    fn inbound_default_and_grpc_detection() {
        let doc = json!({"log": {"entries": [{
            "startedDateTime": "2024-01-01T00:00:00Z",
            "request": {"method": "POST", "url": "http://svc:9000/pkg.Svc/Call", "httpVersion": "h2",
                        "headers": [{"name": "content-type", "value": "application/grpc+proto"}]},
            "response": {"status": 200, "content": {"size": 3}}
        }]}});
        let opts = har::ImportOptions {
            default_direction: Direction::Inbound,
            ..har::ImportOptions::default()
        };
        let got = har::import(doc.to_string().as_bytes(), &opts)
            .unwrap()
            .exchanges;
        assert_eq!(got[0].direction, Direction::Inbound);
        assert_eq!(got[0].service.name, "har");
        assert_eq!(got[0].protocol, Protocol::Grpc);
        // Content without text but with a size: known to exist, not kept.
        let body = &got[0].response.as_ref().unwrap().body;
        assert_eq!((body.data.len(), body.size, body.truncated), (0, 3, true));
    }

    fn import_err(doc: &Value) -> String {
        import(doc.to_string().as_bytes()).unwrap_err().to_string()
    }

    fn entry_with(f: impl FnOnce(&mut Value)) -> Value {
        let mut e = json!({
            "startedDateTime": "2024-01-01T00:00:00Z",
            "time": 1,
            "request": {"method": "GET", "url": "http://a.example/x", "httpVersion": "HTTP/1.1", "headers": []},
            "response": {"status": 200, "httpVersion": "HTTP/1.1", "headers": [], "content": {"size": 0, "mimeType": ""}}
        });
        f(&mut e);
        json!({"log": {"entries": [entry_with_ok(), e]}})
    }

    fn entry_with_ok() -> Value {
        json!({
            "startedDateTime": "2024-01-01T00:00:00Z",
            "request": {"method": "GET", "url": "http://ok.example/"},
            "response": {"status": 204, "content": {}}
        })
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        assert_eq!(
            import_err(&entry_with(|e| {
                e["request"].as_object_mut().unwrap().remove("method");
            })),
            "log.entries[1].request.method: missing"
        );
        assert_eq!(
            import_err(&entry_with(|e| e["request"]["headers"] =
                json!([{"name": "a", "value": "b"}, {"name": "c", "value": 5}]))),
            "log.entries[1].request.headers[1].value: expected a string, found a number"
        );
        assert_eq!(
            import_err(&entry_with(
                |e| e["response"]["content"] = json!({"text": "@@@", "encoding": "base64"})
            )),
            "log.entries[1].response.content.text: not valid base64: Invalid symbol 64, offset 0."
        );
        assert_eq!(
            import_err(&entry_with(|e| e["response"]["content"] = json!({"text": "x", "encoding": "quoted-printable"}))),
            "log.entries[1].response.content.encoding: unsupported encoding `quoted-printable` (only base64 is understood)"
        );
        assert_eq!(
            import_err(&entry_with(|e| e["startedDateTime"] = json!("yesterday"))),
            "log.entries[1].startedDateTime: not an RFC 3339 date-time"
        );
        assert_eq!(
            import_err(&entry_with(
                |e| e["request"]["url"] = json!("http://a.example:99999/")
            )),
            "log.entries[1].request.url: has port `99999`, which is not a number 0-65535"
        );
        assert_eq!(
            import_err(&entry_with(|e| e["request"]["url"] = json!("/relative"))),
            "log.entries[1].request.url: not an absolute URL"
        );
        assert_eq!(
            import_err(&entry_with(|e| e["response"]["status"] = json!(-1))),
            "log.entries[1].response.status: expected a status code 0-65535, found -1"
        );
        assert_eq!(
            import_err(&entry_with(|e| e["time"] = json!("fast"))),
            "log.entries[1].time: expected a number, found a string"
        );
        assert_eq!(
            import_err(&entry_with(|e| *e = json!(3))),
            "log.entries[1]: expected an object, found a number"
        );
        assert_eq!(
            import_err(&json!({"log": {}})),
            "not a HAR file: log.entries: missing"
        );
        assert_eq!(import_err(&json!([])), "not a HAR file: log: missing");
        assert_eq!(
            import_err(&json!({"log": {"entries": {}}})),
            "not a HAR file: log.entries: expected an array, found an object"
        );
        let err = import(b"{\"log\":").unwrap_err();
        assert!(matches!(err, har::HarError::Json(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("not a HAR file: invalid JSON: "),
            "{err}"
        );
    }

    fn exported_value() -> Value {
        let out = har::export(&[outbound_get(), grpc_with_trailers()], "0.1.0");
        serde_json::from_str(&har::to_string(&out.har)).unwrap()
    }

    #[test]
    fn newer_tapwire_entries_say_to_upgrade() {
        let mut v = exported_value();
        v["log"]["entries"][1]["_tapwire"]["v"] = json!(2);
        v["log"]["entries"][1]["_tapwire"]["added_in_v2"] = json!(true);
        let err = import_err(&v);
        assert_eq!(
            err,
            "log.entries[1]._tapwire.v: exchange schema version 2 is newer than this build understands (1); upgrade tapwire"
        );
    }

    #[test]
    fn tampered_tapwire_entries_are_rejected_precisely() {
        let mut v = exported_value();
        v["log"]["entries"][0]["request"]["url"] = json!("https://elsewhere/v1/charges");
        assert_eq!(
            import_err(&v),
            "log.entries[0].request.url: does not start with `https://payments.internal:8443` (from _tapwire.scheme and _tapwire.authority)"
        );

        let mut v = exported_value();
        v["log"]["entries"][0]["response"]["content"]["text"] = json!("x".repeat(100));
        assert_eq!(
            import_err(&v),
            "log.entries[0].response.content.text: holds 100 bytes but _tapwire says the body had 41"
        );

        let mut v = exported_value();
        v["log"]["entries"][1]["_tapwire"]["direction"] = json!("sideways");
        let err = import_err(&v);
        assert!(
            err.starts_with("log.entries[1]._tapwire: unknown variant `sideways`"),
            "{err}"
        );
    }

    #[test]
    fn edited_text_of_tapwire_entries_is_taken() {
        // A redaction tool that rewrites a body in place keeps it importable;
        // the shorter text becomes a prefix of the recorded size.
        let mut v = exported_value();
        v["log"]["entries"][0]["response"]["content"]["text"] = json!("{}");
        v["log"]["entries"][0]["request"]["url"] =
            json!("https://payments.internal:8443/v1/charges?customer=REDACTED");
        let got = import(v.to_string().as_bytes()).unwrap().exchanges;
        let body = &got[0].response.as_ref().unwrap().body;
        assert_eq!(
            (body.data.as_ref(), body.size, body.truncated),
            (&b"{}"[..], 41, true)
        );
        assert_eq!(
            got[0].request.as_ref().unwrap().query.as_deref(),
            Some("customer=REDACTED")
        );
    }
}

/// The examples in the spec are real: they decode, and the `_tapwire`
/// example is what export writes for the first of them.
mod spec_examples {
    use super::*;

    const SPEC: &str = include_str!("../../../docs/specs/exchange.md");

    fn blocks(lang: &str) -> Vec<&'static str> {
        let fence = format!("```{lang}\n");
        SPEC.split(fence.as_str())
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap())
            .collect()
    }

    #[test]
    fn examples_decode_and_export_as_documented() {
        let lines = blocks("jsonl");
        assert_eq!(
            lines.len(),
            2,
            "the spec shows one HTTP and one TCP example"
        );
        let http = jsonl::decode_line(lines[0].as_bytes(), 1).unwrap();
        let tcp = jsonl::decode_line(lines[1].as_bytes(), 1).unwrap();
        assert_eq!(http.protocol, Protocol::Http1);
        assert_eq!(tcp.protocol, Protocol::Tcp);
        // The examples are written exactly as an encoder writes them.
        assert_eq!(jsonl::encode(&http), lines[0].as_bytes());
        assert_eq!(jsonl::encode(&tcp), lines[1].as_bytes());

        let ext = blocks("json")
            .into_iter()
            .find_map(|b| b.trim().strip_prefix("\"_tapwire\": "))
            .expect("the spec shows a _tapwire example");
        let documented: serde_json::Value = serde_json::from_str(ext).unwrap();
        let exported =
            serde_json::to_value(&har::export(&[http], "0.1.0").har.log.entries[0].tapwire)
                .unwrap();
        assert_eq!(exported, documented);
    }
}
