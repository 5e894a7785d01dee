//! The matching engine: recorded outbound exchanges indexed by signature,
//! answered in recorded order per sequence scope, and misses explained.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapwire_model::{Exchange, ExchangeId, Response};

use crate::signature::{host_port, BodyKey, MatchConfig, RequestView, Signature};

/// Headers whose value scopes sequences when `scope_headers` is not set.
pub const DEFAULT_SCOPE_HEADERS: &[&str] = &["authorization", "cookie"];

/// How requests are matched and sequences scoped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// What goes into a signature.
    pub matching: MatchConfig,
    /// Request headers whose values (together) name a sequence scope; see
    /// `docs/mock.md`. Empty turns scoping off: one sequence per signature.
    pub scope_headers: Vec<String>,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        Self {
            matching: MatchConfig::default(),
            scope_headers: DEFAULT_SCOPE_HEADERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// One recorded answer.
#[derive(Debug)]
pub struct Recorded {
    /// The exchange it came from.
    pub id: ExchangeId,
    /// Its traffic key, `service:host:port`.
    pub key: String,
    /// The recorded response.
    pub response: Response,
    /// How long the real upstream took.
    pub duration: Duration,
    /// The recorded URL scheme (`http` or `https`).
    pub scheme: String,
}

/// What the responder decided for one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A recorded response answers it.
    Hit(Arc<Recorded>),
    /// Nothing recorded matches.
    Miss {
        /// Traffic key of the request (`service:host:port`).
        key: String,
        /// Why, naming what differs from the nearest recorded request.
        reason: String,
    },
}

#[derive(Debug)]
struct Group {
    sig: Signature,
    /// Entries in recorded order.
    all: Vec<usize>,
    /// Entries per recorded scope value, in recorded order.
    by_scope: HashMap<String, Vec<usize>>,
}

/// Answers requests from recorded exchanges. Lookup is one hash of the
/// request's signature, however many exchanges were recorded.
#[derive(Debug)]
pub struct Responder {
    config: ResponderConfig,
    entries: Vec<Arc<Recorded>>,
    groups: Vec<Group>,
    index: HashMap<Signature, usize>,
    /// Groups by (method, host, path) and by host: only used to explain misses.
    by_route: HashMap<(String, String, String), Vec<usize>>,
    by_host: HashMap<String, Vec<usize>>,
    /// Traffic key per `host:port`.
    keys: HashMap<String, String>,
    default_service: String,
    /// Next position per (group, scope value).
    cursors: Mutex<HashMap<(usize, String), usize>>,
}

impl Responder {
    /// Indexes the outbound HTTP exchanges among `exchanges` (others, and
    /// exchanges without a response, are skipped) in the order given,
    /// which should be recorded order.
    pub fn new<'a>(
        exchanges: impl IntoIterator<Item = &'a Exchange>,
        config: ResponderConfig,
    ) -> Self {
        let mut r = Self {
            config,
            entries: Vec::new(),
            groups: Vec::new(),
            index: HashMap::new(),
            by_route: HashMap::new(),
            by_host: HashMap::new(),
            keys: HashMap::new(),
            default_service: String::new(),
            cursors: Mutex::new(HashMap::new()),
        };
        for ex in exchanges {
            if ex.direction != tapwire_model::Direction::Outbound {
                continue;
            }
            let (Some(req), Some(resp)) = (&ex.request, &ex.response) else {
                continue;
            };
            if r.default_service.is_empty() {
                r.default_service = ex.service.name.clone();
            }
            let view = RequestView {
                method: &req.method,
                host: &ex.upstream.host,
                port: ex.upstream.port,
                path: &req.path,
                query: req.query.as_deref(),
                headers: &req.headers.0,
                body: &req.body.data,
                body_truncated: req.body.truncated,
            };
            let sig = Signature::of(&view, &r.config.matching);
            let scope = r.scope_of(&req.headers.0);
            let n = r.entries.len();
            r.entries.push(Arc::new(Recorded {
                id: ex.id,
                key: ex.key(),
                response: resp.clone(),
                duration: Duration::from_micros(ex.duration_us),
                scheme: req.scheme.clone(),
            }));
            r.keys.entry(sig.host.clone()).or_insert_with(|| ex.key());
            let gid = match r.index.get(&sig) {
                Some(&g) => g,
                None => {
                    let g = r.groups.len();
                    r.by_route
                        .entry((sig.method.clone(), sig.host.clone(), sig.path.clone()))
                        .or_default()
                        .push(g);
                    r.by_host.entry(sig.host.clone()).or_default().push(g);
                    r.index.insert(sig.clone(), g);
                    r.groups.push(Group {
                        sig,
                        all: Vec::new(),
                        by_scope: HashMap::new(),
                    });
                    g
                }
            };
            let group = &mut r.groups[gid];
            group.all.push(n);
            if !scope.is_empty() {
                group.by_scope.entry(scope).or_default().push(n);
            }
        }
        if r.default_service.is_empty() {
            r.default_service = "unknown".to_owned();
        }
        r
    }

    /// How many recorded responses can be served.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing can be served.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The matching and scoping settings.
    pub fn config(&self) -> &ResponderConfig {
        &self.config
    }

    /// True when traffic to `host:port` was recorded.
    pub fn knows_host(&self, host: &str, port: u16) -> bool {
        self.keys.contains_key(&host_port(host, port))
    }

    /// Every recorded traffic key, sorted: the bounded label set of the metrics.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.keys.values().cloned().collect();
        k.sort_unstable();
        k.dedup();
        k
    }

    /// The scheme recorded for `host:port` (the first exchange's), if any.
    pub fn recorded_scheme(&self, host: &str, port: u16) -> Option<&str> {
        let hp = host_port(host, port);
        let g = *self.by_host.get(&hp)?.first()?;
        let e = *self.groups[g].all.first()?;
        Some(&self.entries[e].scheme)
    }

    /// The traffic key of a request to `host:port`: the recorded one, or
    /// the recording's first service with this host and port.
    pub fn key_for(&self, host: &str, port: u16) -> String {
        let hp = host_port(host, port);
        self.keys
            .get(&hp)
            .cloned()
            .unwrap_or_else(|| format!("{}:{}:{port}", self.default_service, host))
    }

    /// The sequence scope of a request with these headers: the values of the
    /// configured scope headers, or empty when none is present.
    pub fn scope_of(&self, headers: &[(String, String)]) -> String {
        let mut out = String::new();
        for name in &self.config.scope_headers {
            for (n, v) in headers {
                if n.eq_ignore_ascii_case(name) {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(v);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Answers `req`: the next recorded response for its signature in its
    /// sequence scope (cycling when the sequence is used up), or a miss.
    pub fn respond(&self, req: &RequestView<'_>) -> Answer {
        let sig = Signature::of(req, &self.config.matching);
        let gid = self.index.get(&sig).copied().or_else(|| {
            // A recorded request body that was truncated cannot be compared;
            // such exchanges match on everything else.
            let loose = Signature {
                body: BodyKey::Unknown,
                ..sig.clone()
            };
            self.index.get(&loose).copied()
        });
        let Some(gid) = gid else {
            return Answer::Miss {
                key: self.key_for(req.host, req.port),
                reason: self.explain(&sig),
            };
        };
        let group = &self.groups[gid];
        let scope = self.scope_of(req.headers);
        // The recording tells this client's calls apart: serve only its own.
        // Otherwise every scope still walks the whole sequence on its own.
        let list = group.by_scope.get(&scope).unwrap_or(&group.all);
        let pos = {
            let mut cursors = self
                .cursors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let c = cursors.entry((gid, scope)).or_insert(0);
            let pos = *c % list.len();
            *c = c.wrapping_add(1);
            pos
        };
        Answer::Hit(self.entries[list[pos]].clone())
    }

    /// Why nothing matched `sig`, in words.
    fn explain(&self, sig: &Signature) -> String {
        let route = (sig.method.clone(), sig.host.clone(), sig.path.clone());
        let candidates = match self.by_route.get(&route) {
            Some(c) => c,
            None => match self.by_host.get(&sig.host) {
                Some(c) => c,
                None => {
                    return format!("no traffic to {} was recorded", sig.host);
                }
            },
        };
        let nearest = candidates
            .iter()
            .map(|&g| {
                let d = self.groups[g].sig.differences(sig);
                (d.len(), g, d)
            })
            .min_by_key(|(n, g, _)| (*n, *g));
        match nearest {
            Some((_, g, diffs)) => {
                let near = &self.groups[g].sig;
                format!(
                    "nearest recorded request {} {}{}: {}",
                    near.method,
                    near.host,
                    near.path,
                    diffs.join("; ")
                )
            }
            None => format!("no traffic to {} was recorded", sig.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tapwire_model::{Body, Direction, Protocol, Request, Service, Upstream};

    use super::*;

    pub(crate) fn exchange(
        method: &str,
        path_query: &str,
        headers: &[(&str, &str)],
        body: &str,
        response: &str,
    ) -> Exchange {
        let mut ex = Exchange::new(
            Direction::Outbound,
            Protocol::Http1,
            Service {
                name: "shop".into(),
                ..Service::default()
            },
            Upstream {
                host: "payments.internal".into(),
                port: 443,
            },
        );
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path_query, None),
        };
        ex.request = Some(Request {
            method: method.into(),
            scheme: "https".into(),
            authority: "payments.internal".into(),
            path: path.into(),
            query,
            version: "HTTP/1.1".into(),
            headers: tapwire_model::Headers(
                headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            body: Body::complete(Bytes::from(body.to_owned())),
            trailers: Default::default(),
        });
        ex.response = Some(Response {
            status: 200,
            version: "HTTP/1.1".into(),
            body: Body::complete(Bytes::from(response.to_owned())),
            ..Response::default()
        });
        ex
    }

    fn ask(
        r: &Responder,
        method: &str,
        pq: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Answer {
        let (path, query) = pq.split_once('?').map_or((pq, None), |(p, q)| (p, Some(q)));
        r.respond(&RequestView {
            method,
            host: "payments.internal",
            port: 443,
            path,
            query,
            headers,
            body: body.as_bytes(),
            body_truncated: false,
        })
    }

    fn body_of(a: &Answer) -> String {
        match a {
            Answer::Hit(r) => String::from_utf8_lossy(&r.response.body.data).into_owned(),
            Answer::Miss { reason, .. } => format!("MISS {reason}"),
        }
    }

    #[test]
    fn sequences_are_served_in_order_then_cycle() {
        let ex = [
            exchange("GET", "/status", &[], "", "pending"),
            exchange("GET", "/other", &[], "", "x"),
            exchange("GET", "/status", &[], "", "processing"),
            exchange("GET", "/status", &[], "", "done"),
        ];
        let r = Responder::new(&ex, ResponderConfig::default());
        let got: Vec<String> = (0..7)
            .map(|_| body_of(&ask(&r, "GET", "/status", &[], "")))
            .collect();
        assert_eq!(
            got,
            [
                "pending",
                "processing",
                "done",
                "pending",
                "processing",
                "done",
                "pending"
            ]
        );
        assert_eq!(body_of(&ask(&r, "GET", "/other", &[], "")), "x");
    }

    #[test]
    fn concurrent_scoped_clients_each_get_their_own_sequence() {
        let auth = |v: &str| vec![("Authorization".to_owned(), format!("Bearer {v}"))];
        // The recording interleaves two clients polling the same URL.
        let ex = [
            exchange("GET", "/poll", &[("authorization", "Bearer a")], "", "a1"),
            exchange("GET", "/poll", &[("authorization", "Bearer b")], "", "b1"),
            exchange("GET", "/poll", &[("authorization", "Bearer b")], "", "b2"),
            exchange("GET", "/poll", &[("authorization", "Bearer a")], "", "a2"),
        ];
        let r = Arc::new(Responder::new(&ex, ResponderConfig::default()));
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let run = |who: &'static str| {
            let (r, barrier) = (r.clone(), barrier.clone());
            std::thread::spawn(move || {
                let h = auth(who);
                (0..3)
                    .map(|_| {
                        barrier.wait();
                        body_of(&ask(&r, "GET", "/poll", &h, ""))
                    })
                    .collect::<Vec<_>>()
            })
        };
        let (a, b) = (run("a"), run("b"));
        assert_eq!(a.join().unwrap(), ["a1", "a2", "a1"]);
        assert_eq!(b.join().unwrap(), ["b1", "b2", "b1"]);
        // Clients the recording never saw each walk the whole sequence.
        assert_eq!(body_of(&ask(&r, "GET", "/poll", &auth("c"), "")), "a1");
        assert_eq!(body_of(&ask(&r, "GET", "/poll", &auth("d"), "")), "a1");
        assert_eq!(body_of(&ask(&r, "GET", "/poll", &auth("c"), "")), "b1");
    }

    #[test]
    fn a_miss_explains_the_nearest_candidate() {
        let json = [("content-type", "application/json")];
        let ex = [
            exchange(
                "POST",
                "/v1/charges?currency=eur",
                &json,
                r#"{"amount":10,"card":{"last4":"4242"}}"#,
                "ok",
            ),
            exchange("GET", "/v1/charges", &[], "", "list"),
        ];
        let r = Responder::new(&ex, ResponderConfig::default());
        let h = vec![("content-type".to_owned(), "application/json".to_owned())];
        let hit = ask(
            &r,
            "POST",
            "/v1/charges?currency=eur",
            &h,
            r#"{ "card": {"last4": "4242"}, "amount": 10 }"#,
        );
        assert_eq!(body_of(&hit), "ok");

        let miss = body_of(&ask(
            &r,
            "POST",
            "/v1/charges?currency=eur",
            &h,
            r#"{"amount":10,"card":{"last4":"0000"}}"#,
        ));
        assert!(
            miss.contains("JSON body field $.card.last4 differs"),
            "{miss}"
        );
        let miss = body_of(&ask(
            &r,
            "POST",
            "/v1/charges?currency=usd",
            &h,
            r#"{"amount":10,"card":{"last4":"4242"}}"#,
        ));
        assert!(
            miss.contains("query param currency differs: recorded \"eur\", got \"usd\""),
            "{miss}"
        );
        let miss = body_of(&ask(&r, "DELETE", "/v1/charges", &[], ""));
        assert!(
            miss.contains("method differs: recorded GET, got DELETE"),
            "{miss}"
        );
        match r.respond(&RequestView {
            method: "GET",
            host: "nowhere.internal",
            port: 80,
            path: "/",
            query: None,
            headers: &[],
            body: b"",
            body_truncated: false,
        }) {
            Answer::Miss { key, reason } => {
                assert_eq!(key, "shop:nowhere.internal:80");
                assert_eq!(reason, "no traffic to nowhere.internal:80 was recorded");
            }
            Answer::Hit(_) => panic!("unexpected hit"),
        }
    }

    #[test]
    fn lookup_is_indexed_not_scanned() {
        // 1,000 distinct mocks: each request is answered by one hash lookup
        // (see `respond`); this checks every one still finds its own answer.
        let ex: Vec<Exchange> = (0..1000)
            .map(|i| exchange("GET", &format!("/items/{i}"), &[], "", &format!("item {i}")))
            .collect();
        let r = Responder::new(&ex, ResponderConfig::default());
        assert_eq!(r.groups.len(), 1000);
        assert_eq!(r.index.len(), 1000);
        for i in (0..1000).rev() {
            assert_eq!(
                body_of(&ask(&r, "GET", &format!("/items/{i}"), &[], "")),
                format!("item {i}")
            );
        }
    }

    #[test]
    fn truncated_recorded_bodies_match_on_the_rest() {
        let mut ex = exchange("POST", "/upload", &[], "partial", "stored");
        if let Some(req) = ex.request.as_mut() {
            req.body.truncated = true;
            req.body.size = 1 << 20;
        }
        let r = Responder::new([&ex], ResponderConfig::default());
        assert_eq!(
            body_of(&ask(&r, "POST", "/upload", &[], "the whole body")),
            "stored"
        );
    }
}
