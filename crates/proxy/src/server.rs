//! Listeners, connection handling and lifecycle.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tapwire_model::Service;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::capture::{CaptureQueue, Origin};
use crate::config::{Mode, Wire};
use crate::forward::Clients;
use crate::metrics::{Dir, ErrorKind, ErrorLabels, Listener, ListenerLabels, Metrics};
use crate::sink::CaptureSink;
use crate::{inbound, outbound, transparent, ProxyConfig};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error(transparent)]
    Bind(#[from] tapwire_admin::BindError),
    /// Upstream TLS could not be configured.
    #[error("cannot configure TLS to upstreams: {0}")]
    Tls(#[from] tapwire_ca::CaError),
    /// The sink thread could not be started.
    #[error("cannot start the capture sink thread: {0}")]
    Thread(std::io::Error),
    /// The settings contradict each other.
    #[error("{0}")]
    Config(String),
}

/// State shared by every connection of one proxy.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ProxyConfig,
    pub(crate) service: Arc<Service>,
    pub(crate) queue: CaptureQueue,
    pub(crate) clients: Clients,
    pub(crate) upstream_tls: Arc<rustls::ClientConfig>,
    pub(crate) leaf_issuer: Option<Arc<tapwire_ca::LeafIssuer>>,
    /// Flips to true when the proxy is shutting down.
    pub(crate) stop: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        self.queue.metrics()
    }
}

/// Entry point: [`Proxy::start`].
#[derive(Debug)]
pub struct Proxy;

/// A started proxy: its bound addresses, metrics, and a handle to stop it.
#[derive(Debug)]
pub struct RunningProxy {
    /// Bound inbound address, when the mode runs it.
    pub inbound_addr: Option<SocketAddr>,
    /// Bound outbound address, when the mode runs it.
    pub outbound_addr: Option<SocketAddr>,
    /// Bound admin address, when enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The proxy's metrics.
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    sink: std::thread::JoinHandle<()>,
    sink_stopping: Arc<AtomicBool>,
}

impl Proxy {
    /// Binds the listeners of `config.mode`, starts the sink thread, and
    /// serves until [`RunningProxy::shutdown`]. Metrics are registered in
    /// `registry`, which the admin listener then serves.
    pub async fn start(
        config: ProxyConfig,
        sink: Box<dyn CaptureSink>,
        mut registry: Registry,
    ) -> Result<RunningProxy, StartError> {
        config
            .protocol
            .check(config.mode)
            .map_err(StartError::Config)?;
        let metrics = Metrics::register(&mut registry);
        let upstream_tls = tapwire_ca::client_config(
            config.extra_ca_bundle.as_deref(),
            vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        )?;
        let inbound_l = match config.mode.inbound() {
            true => Some(tapwire_admin::bind(config.inbound_addr, "inbound", "--in-port").await?),
            false => None,
        };
        let outbound_l = match config.mode.outbound() {
            true => {
                Some(tapwire_admin::bind(config.outbound_addr, "outbound", "--out-port").await?)
            }
            false => None,
        };
        // IPv6 connections redirected by ip6tables need a listener too.
        let v6_twins = config.mode == Mode::Transparent
            && config.inbound_addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let inbound_v6 = (v6_twins && inbound_l.is_some())
            .then(|| bind_v6_twin(config.inbound_addr.port()))
            .flatten();
        let outbound_v6 = (v6_twins && outbound_l.is_some())
            .then(|| bind_v6_twin(config.outbound_addr.port()))
            .flatten();
        let admin_l = match config.admin_addr {
            Some(a) => Some(tapwire_admin::bind(a, "admin", "--admin-port").await?),
            None => None,
        };

        let (queue, rx) =
            CaptureQueue::new(config.queue_capacity, config.capture_limit, metrics.clone());
        let sink_alive = Arc::new(AtomicBool::new(true));
        let sink_stopping = Arc::new(AtomicBool::new(false));
        let sink = {
            let metrics = metrics.clone();
            let (alive, stopping) = (sink_alive.clone(), sink_stopping.clone());
            std::thread::Builder::new()
                .name("tapwire-sink".into())
                .spawn(move || crate::sink::run(rx, sink, metrics, alive, stopping))
                .map_err(StartError::Thread)?
        };
        let leaf_issuer = config
            .tls_intercept
            .clone()
            .map(|ca| Arc::new(tapwire_ca::LeafIssuer::new(ca)));
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            clients: Clients::new(&config, upstream_tls.clone()),
            service: Arc::new(config.service.clone()),
            config,
            queue,
            upstream_tls,
            leaf_issuer,
            stop: stop_rx.clone(),
        });

        let mut tasks = JoinSet::new();
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        let (inbound_addr, outbound_addr, admin_addr) =
            (addr(&inbound_l), addr(&outbound_l), addr(&admin_l));
        if let Some(l) = inbound_l {
            tasks.spawn(accept_loop(
                l,
                Listener::Inbound,
                shared.clone(),
                stop_rx.clone(),
            ));
        }
        if let Some(l) = outbound_l {
            tasks.spawn(accept_loop(
                l,
                Listener::Outbound,
                shared.clone(),
                stop_rx.clone(),
            ));
        }
        for (l, which) in [
            (inbound_v6, Listener::Inbound),
            (outbound_v6, Listener::Outbound),
        ] {
            if let Some(l) = l {
                tasks.spawn(accept_loop(l, which, shared.clone(), stop_rx.clone()));
            }
        }
        if let Some(l) = admin_l {
            let ready: tapwire_admin::Readiness = Arc::new(move || {
                if sink_alive.load(std::sync::atomic::Ordering::Acquire) {
                    Ok(())
                } else {
                    Err("capture sink stopped".to_owned())
                }
            });
            tasks.spawn(tapwire_admin::serve(l, Arc::new(registry), ready, stop_rx));
        }
        tracing::info!(
            mode = %shared.config.mode,
            protocol = %shared.config.protocol,
            inbound = ?inbound_addr,
            outbound = ?outbound_addr,
            admin = ?admin_addr,
            app = %shared.config.app_addr,
            tls_intercept = shared.leaf_issuer.is_some(),
            "proxy listening"
        );
        Ok(RunningProxy {
            inbound_addr,
            outbound_addr,
            admin_addr,
            metrics,
            stop,
            tasks,
            shared,
            sink,
            sink_stopping,
        })
    }
}

impl RunningProxy {
    /// Stops accepting, lets open requests finish for up to `grace`, then
    /// flushes every capture still queued to the sink.
    pub async fn shutdown(mut self, grace: Duration) {
        tapwire_admin::drain(&self.stop, &mut self.tasks, grace).await;
        // Connections still open past the grace period (long tunnels) may
        // still offer captures; once the writer closes the queue those are
        // counted as dropped. Wait for the writer off the runtime.
        drop(self.shared);
        self.sink_stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.sink.thread().unpark();
        let sink = self.sink;
        let _ = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !sink.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await;
    }
}

/// How long a client may take to send a whole request head.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP server settings shared by all proxy listeners.
pub(crate) fn http_server(config: &ProxyConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .preserve_header_case(true)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(config.max_header_fields())
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(1024)
        .timer(hyper_util::rt::TokioTimer::new());
    b
}

/// Counts and logs a connection that ended with an error. Parse errors
/// were already answered by hyper with 400 or 431.
pub(crate) fn connection_error(
    metrics: &Metrics,
    direction: tapwire_model::Direction,
    peer: Option<SocketAddr>,
    e: &(dyn std::error::Error + 'static),
) {
    let hyper_err = e.downcast_ref::<hyper::Error>();
    let kind = match hyper_err {
        Some(h) if h.is_parse_too_large() => ErrorKind::HeaderTooLarge,
        Some(h) if h.is_parse() || h.is_parse_status() => ErrorKind::Malformed,
        _ => ErrorKind::Io,
    };
    metrics
        .downstream_errors
        .get_or_create(&ErrorLabels {
            direction: Dir::from(direction),
            kind,
        })
        .inc();
    let msg = crate::error::chain(e);
    match kind {
        ErrorKind::Io => {
            tracing::debug!(side = "downstream", peer = ?peer, error = %msg, "client connection ended with an error")
        }
        _ => {
            tracing::warn!(side = "downstream", peer = ?peer, error = %msg, kind = ?kind, "rejected malformed request from client")
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    which: Listener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let labels = ListenerLabels { listener: which };
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, listener = ?which, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let metrics = shared.metrics().clone();
        metrics.connections.get_or_create(&labels).inc();
        let open = metrics.open_connections.get_or_create(&labels).clone();
        open.inc();
        let local = stream.local_addr().ok();
        let shared = shared.clone();
        conns.spawn(async move {
            if shared.config.mode == Mode::Transparent {
                transparent::serve(stream, peer, local, which, shared).await;
            } else {
                serve_direct(stream, peer, local, which, shared).await;
            }
            open.dec();
        });
    }
    drop(listener);
    // Connections saw the stop signal too and are finishing their requests.
    while conns.join_next().await.is_some() {}
}

/// Serves a connection sent to the listener itself (every connection
/// outside transparent mode): the inbound listener forwards to the app,
/// as HTTP or, with `--proxy-protocol tcp`, as an opaque flow; the
/// outbound listener is an explicit forward proxy.
pub(crate) async fn serve_direct(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    which: Listener,
    shared: Arc<Shared>,
) {
    match which {
        Listener::Inbound if shared.config.protocol.inbound == Wire::Tcp => {
            inbound::relay(stream, peer, local, shared).await
        }
        Listener::Inbound => inbound::serve(stream, peer, local, shared).await,
        Listener::Outbound => outbound::serve(TokioIo::new(stream), peer, local, shared).await,
    }
}

/// `[::]:port`, IPv6 only, for transparent mode bound to `0.0.0.0`; `None`
/// (logged) where the pod has no IPv6, whose connections then never come.
fn bind_v6_twin(port: u16) -> Option<TcpListener> {
    if port == 0 {
        return None;
    }
    let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let bind = || -> std::io::Result<TcpListener> {
        let s = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        s.set_only_v6(true)?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        TcpListener::from_std(s.into())
    };
    match bind() {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::info!(%addr, error = %e, "no IPv6 listener; IPv6 connections are not proxied");
            None
        }
    }
}

/// Serves one client connection, answering each request with `handler`,
/// until it closes; on shutdown, finishes in-flight requests and closes it.
pub(crate) async fn serve_http<I, H, Fut>(io: I, origin: Origin, shared: Arc<Shared>, handler: H)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(http::Request<hyper::body::Incoming>, Origin, Arc<Shared>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<crate::body::ProxyBody>> + Send + 'static,
{
    let (direction, peer) = (origin.direction, origin.client_addr);
    let mut stop = shared.stop.clone();
    let handler = Arc::new(handler);
    let svc = {
        let shared = shared.clone();
        hyper::service::service_fn(move |req| {
            let fut = handler(req, origin.clone(), shared.clone());
            async move { Ok::<_, std::convert::Infallible>(fut.await) }
        })
    };
    let builder = http_server(&shared.config);
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        Ok(()) = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        connection_error(shared.metrics(), direction, peer, e.as_ref());
    }
}
