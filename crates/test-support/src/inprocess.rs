//! The proxy library started inside the test process, on its own runtime,
//! so a test can drive it with ordinary blocking clients and read its
//! metrics and captures directly.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tapwire_model::{Exchange, Service};
use tapwire_proxy::{CaptureSink, Metrics, Proxy, ProxyConfig, RunningProxy, SinkError};

/// A config for tests: every listener on 127.0.0.1 port 0, forwarding to `app`.
pub fn test_config(app: SocketAddr) -> ProxyConfig {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    ProxyConfig {
        inbound_addr: any,
        outbound_addr: any,
        admin_addr: Some(any),
        app_addr: app,
        service: Service {
            name: "transparency".into(),
            ..Service::default()
        },
        connect_timeout: Duration::from_secs(5),
        ..ProxyConfig::default()
    }
}

/// A running in-process proxy; shut down on drop if the test did not.
#[derive(Debug)]
pub struct InProcessProxy {
    rt: tokio::runtime::Runtime,
    running: Option<RunningProxy>,
    /// Bound inbound address.
    pub inbound: SocketAddr,
    /// Bound outbound address (when the mode runs it).
    pub outbound: Option<SocketAddr>,
    /// Bound admin address.
    pub admin: Option<SocketAddr>,
    /// The proxy's metrics.
    pub metrics: Arc<Metrics>,
}

impl InProcessProxy {
    /// Starts the proxy on a fresh two-worker runtime.
    pub fn start(config: ProxyConfig, sink: Box<dyn CaptureSink>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let running = rt
            .block_on(Proxy::start(config, sink, Registry::default()))
            .expect("start the proxy");
        Self {
            inbound: running.inbound_addr.expect("inbound listener"),
            outbound: running.outbound_addr,
            admin: running.admin_addr,
            metrics: running.metrics.clone(),
            running: Some(running),
            rt,
        }
    }

    /// Starts the proxy with [`test_config`] in front of `app`, its
    /// captures kept in memory.
    pub fn recording(app: SocketAddr) -> (Self, Stored) {
        let (sink, stored) = MemorySink::new();
        (Self::start(test_config(app), Box::new(sink)), stored)
    }

    /// Stops the proxy and waits until every capture reached the sink.
    pub fn shutdown(&mut self, grace: Duration) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), r.shutdown(grace))
                    .await
                    .expect("proxy shutdown took longer than 30s")
            });
        }
    }
}

impl Drop for InProcessProxy {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(15), r.shutdown(Duration::from_secs(1)))
                    .await
            });
        }
    }
}

/// Exchanges a [`MemorySink`] received, shared with the test.
pub type Stored = Arc<Mutex<Vec<Exchange>>>;

/// The exchanges stored so far, in the order they started.
pub fn in_start_order(stored: &Stored) -> Vec<Exchange> {
    let mut v = stored.lock().unwrap_or_else(|p| p.into_inner()).clone();
    v.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
    v
}

/// Keeps exchanges in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    stored: Stored,
}

impl MemorySink {
    /// A sink and the handle the test reads it through.
    pub fn new() -> (Self, Stored) {
        let s = Self::default();
        let stored = s.stored.clone();
        (s, stored)
    }
}

impl CaptureSink for MemorySink {
    fn write(&mut self, exchange: Exchange) -> Result<(), SinkError> {
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(exchange);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A gate a [`GatedSink`] waits on before each write: a stand-in for a
/// sink that has stalled (a full disk, a slow object store).
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// Lets every waiting and future write through.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    fn wait(&self, limit: Duration) {
        let guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // The limit keeps a failing test from hanging the sink thread forever.
        let _ = self
            .cv
            .wait_timeout_while(guard, limit, |open| !*open)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// A [`MemorySink`] whose writes block until its [`Gate`] opens.
#[derive(Debug)]
pub struct GatedSink {
    inner: MemorySink,
    gate: Arc<Gate>,
}

impl GatedSink {
    /// A closed sink, its gate, and the handle to what it stored.
    pub fn new() -> (Self, Arc<Gate>, Stored) {
        let (inner, stored) = MemorySink::new();
        let gate = Arc::new(Gate::default());
        (
            Self {
                inner,
                gate: gate.clone(),
            },
            gate,
            stored,
        )
    }
}

impl CaptureSink for GatedSink {
    fn write(&mut self, exchange: Exchange) -> Result<(), SinkError> {
        self.gate.wait(Duration::from_secs(120));
        self.inner.write(exchange)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
