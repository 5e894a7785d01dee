//! Where captures go once they leave the queue: a sink runs on its own
//! thread so that serialization, compression and disk I/O never touch the
//! proxy's request path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapwire_model::segment::{SegmentError, SegmentWriter, CAPTURE_ZSTD_LEVEL, SUFFIX};
use tapwire_model::view::ExchangeView;
use tapwire_model::Exchange;

use crate::capture::{CaptureReceiver, Captured};
use crate::metrics::{DropLabels, DropReason, Metrics};

/// A sink failed to store captures.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing a segment failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// The output directory could not be prepared.
    #[error("cannot create capture directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Stores exchanges. Called from one dedicated thread, so implementations
/// may block.
pub trait CaptureSink: Send + 'static {
    /// Called once on the sink thread before the first write, with the
    /// proxy's metrics, for sinks that count drops of their own.
    fn attach(&mut self, _metrics: &Arc<Metrics>) {}
    /// Stores one exchange (it may be buffered until `flush`).
    fn write(&mut self, exchange: Exchange) -> Result<(), SinkError>;
    /// Stores one capture as it left the queue. The default builds its
    /// exchange for [`CaptureSink::write`]; a sink that only encodes can
    /// write the capture's view and skip building it.
    fn write_captured(&mut self, capture: Captured) -> Result<(), SinkError> {
        self.write(capture.into_exchange())
    }
    /// Called about once a second when idle, for time-based rotation.
    fn tick(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Makes everything written so far durable and visible.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Writes segment files into a local directory, rotating by count, size
/// and age so that captures become visible within seconds.
#[derive(Debug)]
pub struct SegmentDirSink {
    dir: PathBuf,
    current: Option<(SegmentWriter, Instant)>,
    seq: u64,
    max_age: Duration,
    max_count: u64,
    max_raw_bytes: u64,
}

impl SegmentDirSink {
    /// A sink writing into `dir`, which is created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| SinkError::Dir {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            current: None,
            seq: 0,
            max_age: Duration::from_secs(2),
            max_count: 10_000,
            max_raw_bytes: 64 << 20,
        })
    }

    /// The directory segments are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_path(&mut self) -> PathBuf {
        self.seq += 1;
        let ts = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        self.dir.join(format!(
            "{ts}-{}-{:06}{SUFFIX}",
            std::process::id(),
            self.seq
        ))
    }

    fn append(&mut self, exchange: &ExchangeView<'_>) -> Result<(), SinkError> {
        if self.current.is_none() {
            let path = self.next_path();
            self.current = Some((
                SegmentWriter::create_with_level(path, CAPTURE_ZSTD_LEVEL)?,
                Instant::now(),
            ));
        }
        let full = match &mut self.current {
            Some((w, _)) => {
                w.append_view(exchange)?;
                w.count() >= self.max_count || w.raw_bytes() >= self.max_raw_bytes
            }
            None => false,
        };
        if full {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        if let Some((w, _)) = self.current.take() {
            let path = w.finish()?;
            tracing::debug!(path = %path.display(), "segment finished");
        }
        Ok(())
    }
}

impl CaptureSink for SegmentDirSink {
    fn write(&mut self, exchange: Exchange) -> Result<(), SinkError> {
        self.append(&exchange.view())
    }

    fn write_captured(&mut self, capture: Captured) -> Result<(), SinkError> {
        capture.with_view(|view| self.append(view))
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        let old = matches!(&self.current, Some((_, since)) if since.elapsed() >= self.max_age);
        if old {
            self.rotate()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.rotate()
    }
}

/// How long the writer sleeps between drains when traffic is light; this
/// bounds how late a capture reaches the sink, not how late a request is.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Drains the capture queue into `sink` until `stopping` is set, then takes
/// what is left, closes the queue and flushes.
pub(crate) fn run(
    rx: CaptureReceiver,
    mut sink: Box<dyn CaptureSink>,
    metrics: Arc<Metrics>,
    alive: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
) {
    rx.attach();
    sink.attach(&metrics);
    let drop_err = metrics
        .captures_dropped
        .get_or_create(&DropLabels {
            reason: DropReason::SinkError,
        })
        .clone();
    let write = |c: Captured, sink: &mut Box<dyn CaptureSink>| {
        metrics.queue_depth.dec();
        match sink.write_captured(c) {
            Ok(()) => {
                metrics.captures_written.inc();
            }
            Err(e) => {
                drop_err.inc();
                tracing::error!(error = %e, "capture sink failed; capture dropped");
            }
        }
    };
    let mut last_tick = Instant::now();
    loop {
        while let Some(c) = rx.pop() {
            write(c, &mut sink);
        }
        if last_tick.elapsed() >= Duration::from_millis(500) {
            last_tick = Instant::now();
            if let Err(e) = sink.tick() {
                tracing::error!(error = %e, "capture sink failed to rotate");
            }
        }
        if stopping.load(Ordering::Acquire) {
            rx.close();
            while let Some(c) = rx.pop() {
                write(c, &mut sink);
            }
            break;
        }
        rx.wait(DRAIN_EVERY);
    }
    if let Err(e) = sink.flush() {
        tracing::error!(error = %e, "capture sink failed to flush at shutdown");
    }
    alive.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapwire_model::{Direction, Protocol, Service, Upstream};

    #[test]
    fn segments_appear_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SegmentDirSink::new(dir.path()).unwrap();
        let ex = Exchange::new(
            Direction::Inbound,
            Protocol::Http1,
            Service::default(),
            Upstream {
                host: "h".into(),
                port: 1,
            },
        );
        s.write(ex.clone()).unwrap();
        assert!(tapwire_model::segment::list(dir.path()).unwrap().is_empty());
        s.flush().unwrap();
        let back = tapwire_model::segment::read_dir(dir.path()).unwrap();
        assert_eq!(back, vec![ex]);
    }
}
