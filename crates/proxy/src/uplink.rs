//! Sends captures to a forwarder (`tapwire proxy --forwarder URL`).
//!
//! The sink thread packs captures into batches (by count and age) and hands
//! them to a bounded buffer; a sender thread posts them with the ingest
//! protocol (`tapwire_model::ingest`), retrying with capped exponential
//! backoff while the forwarder is down or slow. The app never waits on any
//! of this: when the buffer is full the oldest batch is dropped and its
//! exchanges are counted (`captures_dropped{reason="forwarder_overflow"}`).
//! A batch keeps its id across retries, so the forwarder overwrites rather
//! than duplicates a batch that was delivered twice.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tapwire_model::{ingest, segment, Exchange};

use crate::metrics::{DropReason, Metrics};
use crate::sink::{CaptureSink, SinkError};

/// Where and how captures are sent.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// The forwarder's base URL (`http://tapwire-forwarder:4150`, or https).
    pub url: Uri,
    /// The API key sent as a bearer token.
    pub api_key: String,
    /// Exchanges held while the forwarder is unreachable; beyond this the
    /// oldest batches are dropped and counted.
    pub buffer_exchanges: usize,
    /// A batch is sent when it holds this many exchanges…
    pub batch_exchanges: usize,
    /// …or when its first exchange is this old.
    pub batch_age: Duration,
    /// How long shutdown waits for buffered batches to be delivered.
    pub flush_timeout: Duration,
    /// Extra CA certificates to trust for an https forwarder.
    pub extra_ca_bundle: Option<PathBuf>,
}

impl UplinkConfig {
    /// Defaults for `url` and `api_key`: 100,000 buffered exchanges, batches
    /// of up to 1,000 exchanges or 1 s, 5 s to drain at shutdown.
    pub fn new(url: Uri, api_key: String) -> Self {
        Self {
            url,
            api_key,
            buffer_exchanges: 100_000,
            batch_exchanges: 1_000,
            batch_age: Duration::from_secs(1),
            flush_timeout: Duration::from_secs(5),
            extra_ca_bundle: None,
        }
    }
}

/// The uplink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The URL is not http(s) with a host.
    #[error("forwarder URL {0}: expected http://HOST:PORT or https://HOST:PORT")]
    Url(String),
    /// TLS roots could not be loaded.
    #[error(transparent)]
    Tls(#[from] tapwire_ca::CaError),
    /// The sender thread could not start.
    #[error("cannot start the forwarder sender thread: {0}")]
    Thread(#[source] std::io::Error),
}

#[derive(Debug, Clone)]
struct Batch {
    id: uuid::Uuid,
    body: Bytes,
    count: u64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Batch>,
    buffered: u64,
    in_flight: Option<uuid::Uuid>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the sender when a batch is queued or it must stop.
    wake: tokio::sync::Notify,
    /// Signalled when the queue empties, for `flush`.
    drained: Condvar,
    metrics: OnceLock<Arc<Metrics>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count_dropped(&self, reason: DropReason, n: u64) {
        if let Some(m) = self.metrics.get() {
            m.count_dropped(reason, n);
        }
    }

    fn set_buffered(&self, st: &State) {
        if let Some(m) = self.metrics.get() {
            m.forwarder_buffered
                .set(i64::try_from(st.buffered).unwrap_or(i64::MAX));
        }
    }
}

/// A [`CaptureSink`] that delivers to a forwarder.
#[derive(Debug)]
pub struct ForwarderSink {
    config: UplinkConfig,
    current: Vec<Exchange>,
    since: Instant,
    shared: Arc<Shared>,
    sender: Option<std::thread::JoinHandle<()>>,
}

impl ForwarderSink {
    /// Checks the URL, loads TLS roots and starts the sender thread.
    pub fn new(mut config: UplinkConfig) -> Result<Self, UplinkError> {
        match (config.url.scheme_str(), config.url.host()) {
            (Some("http" | "https"), Some(_)) => {}
            _ => return Err(UplinkError::Url(config.url.to_string())),
        }
        config.buffer_exchanges = config.buffer_exchanges.max(1);
        config.batch_exchanges = config.batch_exchanges.clamp(1, config.buffer_exchanges);
        let tls = tapwire_ca::client_config(config.extra_ca_bundle.as_deref(), Vec::new())?;
        let shared = Arc::new(Shared::default());
        let sender = {
            let (shared, config) = (shared.clone(), config.clone());
            std::thread::Builder::new()
                .name("tapwire-uplink".into())
                .spawn(move || send_loop(&shared, &config, tls))
                .map_err(UplinkError::Thread)?
        };
        Ok(Self {
            config,
            current: Vec::new(),
            since: Instant::now(),
            shared,
            sender: Some(sender),
        })
    }

    /// Packs the open batch and queues it, dropping the oldest batches that
    /// no longer fit.
    fn seal(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let exchanges = std::mem::take(&mut self.current);
        let batch = Batch {
            id: uuid::Uuid::now_v7(),
            body: Bytes::from(segment::encode_with_level(
                &exchanges,
                segment::CAPTURE_ZSTD_LEVEL,
            )),
            count: exchanges.len() as u64,
        };
        let cap = self.config.buffer_exchanges as u64;
        let mut st = self.shared.lock();
        st.buffered += batch.count;
        st.queue.push_back(batch);
        while st.buffered > cap {
            // The batch on the wire is left alone: it may yet arrive.
            let in_flight = st.in_flight;
            let Some(i) = st.queue.iter().position(|b| Some(b.id) != in_flight) else {
                break;
            };
            if let Some(old) = st.queue.remove(i) {
                st.buffered -= old.count;
                self.shared
                    .count_dropped(DropReason::ForwarderOverflow, old.count);
            }
        }
        self.shared.set_buffered(&st);
        drop(st);
        self.shared.wake.notify_one();
    }
}

impl CaptureSink for ForwarderSink {
    fn attach(&mut self, metrics: &Arc<Metrics>) {
        let _ = self.shared.metrics.set(metrics.clone());
    }

    fn write(&mut self, exchange: Exchange) -> Result<(), SinkError> {
        if self.current.is_empty() {
            self.since = Instant::now();
        }
        self.current.push(exchange);
        if self.current.len() >= self.config.batch_exchanges {
            self.seal();
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        if self.since.elapsed() >= self.config.batch_age {
            self.seal();
        }
        Ok(())
    }

    /// Sends the open batch and waits, up to the flush timeout, until every
    /// buffered batch has been delivered.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.seal();
        let deadline = Instant::now() + self.config.flush_timeout;
        let mut st = self.shared.lock();
        while !st.queue.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    exchanges = st.buffered,
                    "forwarder did not take every buffered capture in time"
                );
                break;
            }
            st = match self.shared.drained.wait_timeout(st, left) {
                Ok((st, _)) => st,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        Ok(())
    }
}

impl Drop for ForwarderSink {
    /// Stops the sender; whatever is still buffered is counted as dropped.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
        let mut st = self.shared.lock();
        let lost = st.buffered + self.current.len() as u64;
        if lost > 0 {
            self.shared.count_dropped(DropReason::SinkClosed, lost);
            tracing::warn!(
                exchanges = lost,
                "captures not delivered to the forwarder before shutdown"
            );
        }
        st.queue.clear();
        st.buffered = 0;
        self.shared.set_buffered(&st);
    }
}

/// How one delivery attempt ended.
enum Outcome {
    Delivered,
    /// Worth trying again later (forwarder down, overloaded, 5xx).
    Retry(String),
    /// The forwarder refused the batch for good (bad key, malformed batch).
    Rejected(String),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// While failures continue, a warning at most this often.
const WARN_EVERY: Duration = Duration::from_secs(30);

fn send_loop(shared: &Shared, config: &UplinkConfig, tls: Arc<rustls::ClientConfig>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the forwarder sender; captures will be dropped at shutdown");
            return;
        }
    };
    let https = tapwire_ca::https_connector(&tls, Duration::from_secs(5));
    let client: HttpsClient = Client::builder(TokioExecutor::new()).build(https);
    let url = format!(
        "{}{}",
        config.url.to_string().trim_end_matches('/'),
        ingest::PATH
    );
    rt.block_on(async {
        let mut backoff = BACKOFF_MIN;
        let mut failing_since: Option<Instant> = None;
        let mut last_warn = Instant::now();
        loop {
            let next = {
                let mut st = shared.lock();
                match st.queue.front().cloned() {
                    Some(b) => {
                        st.in_flight = Some(b.id);
                        Some(b)
                    }
                    None if st.stop => return,
                    None => None,
                }
            };
            let Some(batch) = next else {
                shared.wake.notified().await;
                continue;
            };
            let outcome = post(&client, &url, &config.api_key, &batch).await;
            match settle(shared, &batch, outcome) {
                Settled::Done => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(after = ?since.elapsed(), "forwarder reachable again");
                    }
                    backoff = BACKOFF_MIN;
                }
                Settled::Retry { why, buffered, stop } => {
                    if failing_since.is_none() || last_warn.elapsed() >= WARN_EVERY {
                        tracing::warn!(error = %why, buffered, retry_in = ?backoff, "cannot deliver captures to the forwarder; retrying");
                        last_warn = Instant::now();
                    }
                    failing_since.get_or_insert_with(Instant::now);
                    if stop {
                        return;
                    }
                    // Sleeps, but wakes early to stop.
                    let _ = tokio::time::timeout(jitter(backoff), async {
                        loop {
                            shared.wake.notified().await;
                            if shared.lock().stop {
                                return;
                            }
                        }
                    })
                    .await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    });
}

/// What is left to do after one attempt.
enum Settled {
    /// Delivered or refused for good: the batch is gone.
    Done,
    /// Try again after a pause.
    Retry {
        why: String,
        buffered: u64,
        stop: bool,
    },
}

/// Books the outcome of one attempt under the lock.
fn settle(shared: &Shared, batch: &Batch, outcome: Outcome) -> Settled {
    let mut st = shared.lock();
    st.in_flight = None;
    let metrics = shared.metrics.get();
    let why = match outcome {
        Outcome::Retry(why) => {
            if let Some(m) = metrics {
                m.forwarder_send_failures.inc();
            }
            return Settled::Retry {
                why,
                buffered: st.buffered,
                stop: st.stop,
            };
        }
        Outcome::Delivered => None,
        Outcome::Rejected(why) => Some(why),
    };
    if let Some(i) = st.queue.iter().position(|b| b.id == batch.id) {
        st.queue.remove(i);
        st.buffered -= batch.count;
    }
    shared.set_buffered(&st);
    if st.queue.is_empty() {
        shared.drained.notify_all();
    }
    match why {
        Some(why) => {
            shared.count_dropped(DropReason::ForwarderRejected, batch.count);
            tracing::error!(batch = %batch.id, exchanges = batch.count, error = %why, "forwarder refused a batch; its captures are dropped");
        }
        None => {
            if let Some(m) = metrics {
                m.forwarder_batches_sent.inc();
                m.forwarder_exchanges_sent.inc_by(batch.count);
            }
        }
    }
    Settled::Done
}

/// Spreads retries of many proxies over time: 50–100% of `d`.
fn jitter(d: Duration) -> Duration {
    let r = uuid::Uuid::now_v7().as_u128() as u64 % 1000;
    d.mul_f64(0.5 + r as f64 / 2000.0)
}

async fn post(client: &HttpsClient, url: &str, key: &str, batch: &Batch) -> Outcome {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, ingest::CONTENT_TYPE)
        .header(ingest::BATCH_ID, batch.id.to_string())
        .header(
            header::USER_AGENT,
            concat!("tapwire/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(batch.body.clone()));
    let req = match req {
        Ok(r) => r,
        Err(e) => return Outcome::Rejected(format!("cannot build request: {e}")),
    };
    let resp = match tokio::time::timeout(REQUEST_TIMEOUT, client.request(req)).await {
        Err(_) => return Outcome::Retry(format!("{url}: no answer within {REQUEST_TIMEOUT:?}")),
        Ok(Err(e)) => return Outcome::Retry(format!("{url}: {}", crate::error::chain(&e))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let body = Limited::new(resp.into_body(), 4096)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let why = format!("{url}: {status}: {}", body.trim());
    if ingest::retryable(status.as_u16()) {
        Outcome::Retry(why)
    } else {
        Outcome::Rejected(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use tapwire_model::{Direction, Protocol, Service, Upstream};

    fn exchange() -> Exchange {
        Exchange::new(
            Direction::Inbound,
            Protocol::Http1,
            Service::default(),
            Upstream {
                host: "h".into(),
                port: 1,
            },
        )
    }

    #[test]
    fn an_unreachable_forwarder_costs_the_oldest_batches_and_every_loss_is_counted() {
        // A port nothing listens on: every attempt is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut config = UplinkConfig::new(
            format!("http://127.0.0.1:{port}").parse().unwrap(),
            "k".into(),
        );
        config.buffer_exchanges = 10;
        config.batch_exchanges = 5;
        config.flush_timeout = Duration::from_millis(200);
        let metrics = Metrics::register(&mut Registry::default());
        let mut sink = ForwarderSink::new(config).unwrap();
        sink.attach(&metrics);
        for _ in 0..32 {
            sink.write(exchange()).unwrap();
        }
        assert_eq!(metrics.dropped(DropReason::ForwarderOverflow), 20);
        assert_eq!(metrics.forwarder_buffered.get(), 10);
        // Two exchanges are still in the open batch; flushing seals them and
        // makes room by dropping the oldest batch.
        sink.flush().unwrap();
        assert_eq!(metrics.dropped(DropReason::ForwarderOverflow), 25);
        drop(sink);
        assert_eq!(metrics.dropped(DropReason::SinkClosed), 7);
        assert_eq!(
            metrics.dropped_total(),
            32,
            "every capture is accounted for"
        );
        assert_eq!(metrics.forwarder_buffered.get(), 0);
        assert!(metrics.forwarder_send_failures.get() > 0);
    }

    #[test]
    fn urls_that_are_not_http_are_refused() {
        for url in ["ftp://x:1", "/just/a/path"] {
            let config = UplinkConfig::new(url.parse().unwrap(), "k".into());
            let e = ForwarderSink::new(config).unwrap_err();
            assert!(e.to_string().contains("expected http://HOST:PORT"), "{e}");
        }
    }
}
