//! Body plumbing: the tee that copies frames into a capture as they stream
//! past, and the shared record that turns two tees into one exchange.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use prometheus_client::metrics::counter::Counter;

use crate::capture::{BodyCapture, CaptureQueue, Captured, Clock, Heads, Payload, ResponseHead};

/// Error type of proxied bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type every proxy service answers with.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

/// A complete body from static or owned bytes (error pages, CONNECT replies).
pub(crate) fn full(data: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An exchange being captured. Each tee and the request handler hold a
/// reference; when the last one lets go, the capture is complete and is
/// offered to the queue. Dropping (rather than an explicit "done" call)
/// makes every path — normal end, client gone, upstream error, body never
/// polled — produce exactly one capture.
#[derive(Debug)]
pub(crate) struct Pending {
    state: Mutex<Option<Captured>>,
    clock: Clock,
    queue: CaptureQueue,
}

/// Which body of the exchange a tee copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Request,
    Response,
}

impl Pending {
    pub(crate) fn new(captured: Captured, clock: Clock, queue: CaptureQueue) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Some(captured)),
            clock,
            queue,
        })
    }

    pub(crate) fn queue(&self) -> &CaptureQueue {
        &self.queue
    }

    fn with<F: FnOnce(&mut Captured)>(&self, f: F) {
        // A poisoned lock means a panic elsewhere already lost this capture;
        // carrying on with the inner value is still correct.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = guard.as_mut() {
            f(c);
        }
    }

    pub(crate) fn set_response(&self, head: ResponseHead) {
        self.with(|c| {
            if let Payload::Http {
                heads: Heads::Typed { response, .. },
                ..
            } = &mut c.payload
            {
                *response = Some(head);
            }
        });
    }

    /// Sets the raw response head of a fast-lane exchange.
    pub(crate) fn set_raw_response(&self, head: Bytes) {
        self.with(|c| {
            if let Payload::Http {
                heads: Heads::Raw { response, .. },
                ..
            } = &mut c.payload
            {
                *response = Some(head);
            }
        });
    }

    pub(crate) fn set_error(&self, error: String) {
        let elapsed = self.clock.elapsed();
        self.with(|c| {
            c.error = Some(error);
            c.duration = elapsed;
        });
    }

    /// The request as received, when it can be sent again: its body ended
    /// within the capture limit and had no trailers. Used to retry a
    /// request the upstream provably did not process.
    pub(crate) fn replayable_request(&self) -> Option<(http::request::Parts, Bytes)> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Captured {
            payload:
                Payload::Http {
                    heads: Heads::Typed { request, .. },
                    request_body,
                    ..
                },
            ..
        }) = guard.as_ref()
        else {
            return None;
        };
        if !request_body.complete || request_body.truncated() || request_body.trailers.is_some() {
            return None;
        }
        let (mut parts, ()) = http::Request::builder()
            .method(request.method.clone())
            .version(request.version)
            .body(())
            .ok()?
            .into_parts();
        parts.headers = request.headers.clone();
        Some((parts, request_body.bytes()))
    }

    pub(crate) fn tag(&self, key: &'static str, value: impl Into<String>) {
        let value = value.into();
        self.with(|c| c.tags.push((key, value)));
    }

    /// Records one body once it ended; the response body's end is the
    /// exchange's end.
    pub(crate) fn set_body(&self, slot: Slot, cap: BodyCapture) {
        let elapsed = self.clock.elapsed();
        self.with(|c| {
            if let Payload::Http {
                request_body,
                response_body,
                ..
            } = &mut c.payload
            {
                match slot {
                    Slot::Request => *request_body = cap,
                    Slot::Response => {
                        *response_body = cap;
                        c.duration = elapsed;
                    }
                }
            }
        });
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let taken = self
            .state
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut c) = taken {
            if c.duration.is_zero() {
                c.duration = self.clock.elapsed();
            }
            self.queue.offer(c);
        }
    }
}

pin_project! {
    /// Streams a body through unchanged while copying up to the capture
    /// limit. Frames are forwarded as soon as they arrive; nothing is buffered.
    pub(crate) struct TeeBody<B>
    where
        B: Body,
    {
        #[pin]
        inner: B,
        cap: BodyCapture,
        slot: Slot,
        limit: usize,
        bytes: Counter,
        pending: Option<Arc<Pending>>,
    }

    impl<B> PinnedDrop for TeeBody<B>
    where
        B: Body,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(p) = this.pending.take() {
                // hyper may stop polling once a sized body says it is at
                // its end, so "dropped at end of stream" is complete too.
                this.cap.complete = this.inner.as_ref().get_ref().is_end_stream();
                p.set_body(*this.slot, std::mem::take(this.cap));
            }
        }
    }
}

impl<B: Body> TeeBody<B> {
    pub(crate) fn new(inner: B, slot: Slot, pending: Arc<Pending>, bytes: Counter) -> Self {
        Self {
            inner,
            cap: BodyCapture::default(),
            slot,
            limit: pending.queue().limit(),
            bytes,
            pending: Some(pending),
        }
    }
}

impl<B> Body for TeeBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes.inc_by(data.len() as u64);
                    if this.pending.is_some() {
                        this.cap.push(data, *this.limit);
                    }
                } else if let Some(t) = frame.trailers_ref() {
                    this.cap.trailers = Some(t.clone());
                }
            }
            Poll::Ready(None) => {
                if let Some(p) = this.pending.take() {
                    this.cap.complete = true;
                    p.set_body(*this.slot, std::mem::take(this.cap));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(p) = this.pending.take() {
                    this.cap.complete = false;
                    p.set_body(*this.slot, std::mem::take(this.cap));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
