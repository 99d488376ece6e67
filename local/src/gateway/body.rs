//! A client's request body on its way to a backend over hyper's path ([`ClientBody`]): when
//! it fails — broken coding, cut short, or stalled past the body timeout — the failure is the
//! client's ([`ClientFault`]: a 400 or 408 to that client), never taken for the backend's,
//! which would mark the module's instances stale and so rebuild every tenant's passes.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use plinth_module_sdk::ProblemDocument;
use plinth_registry::Error;

use super::proxy::RequestBody;

/// Why a module request got no backend's response.
#[derive(Debug)]
pub enum NotForwarded {
    /// The gateway's refusal, or the backend's failure.
    Refused(Error),
    /// The client's body failed on the way.
    Client(ClientFault),
}

impl From<Error> for NotForwarded {
    fn from(error: Error) -> Self {
        Self::Refused(error)
    }
}

impl IntoResponse for NotForwarded {
    fn into_response(self) -> axum::response::Response {
        match self {
            Self::Refused(error) => error.into_response(),
            Self::Client(fault) => fault.into_response(),
        }
    }
}

/// What went wrong with a client's request body on its way to a backend.
#[derive(Debug, Clone)]
pub enum ClientFault {
    /// It did not parse (broken chunked coding) or ended before its length.
    Broken(String),
    /// Nothing of it arrived for this long.
    Stalled(Duration),
}

impl IntoResponse for ClientFault {
    /// The client's problem: a 400 for a broken body, a 408 for a stalled one (never logged
    /// as the gateway's error).
    fn into_response(self) -> axum::response::Response {
        let (status, detail) = match self {
            Self::Broken(why) => (
                StatusCode::BAD_REQUEST,
                format!("the request body is broken ({why}); it was not passed on whole"),
            ),
            Self::Stalled(after) => (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body stalled: nothing of it arrived for {} s",
                    after.as_secs()
                ),
            ),
        };
        ProblemDocument::new(status, detail, Vec::new()).into_response_with(status)
    }
}

/// A client's request body on its way to a backend: what fails in it is recorded as the
/// client's fault (so that the gateway does not take it for the backend's), and a pause
/// longer than the body timeout ends it.
pub struct ClientBody<B> {
    body: B,
    timeout: Duration,
    /// Armed while a frame is awaited; reset whenever one arrives.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    fault: Arc<OnceLock<ClientFault>>,
    /// Its bytes passed on so far (usage counts a chunked upload's).
    received: Arc<std::sync::atomic::AtomicU64>,
}

impl<B> ClientBody<B> {
    /// Its bytes passed on so far, as they arrive.
    pub(super) fn received(&self) -> Arc<std::sync::atomic::AtomicU64> {
        Arc::clone(&self.received)
    }

    pub(super) fn new(body: B, timeout: Duration) -> (Self, Arc<OnceLock<ClientFault>>) {
        let fault = Arc::default();
        let body = Self {
            body,
            timeout,
            pause: None,
            fault: Arc::clone(&fault),
            received: Arc::default(),
        };
        (body, fault)
    }
}

impl<B> std::fmt::Debug for ClientBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBody")
            .field("timeout", &self.timeout)
            .field("fault", &self.fault.get())
            .finish_non_exhaustive()
    }
}

impl<B> HttpBody for ClientBody<B>
where
    B: RequestBody + Unpin,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Err(error))) => {
                let error: Self::Error = error.into();
                let _ = this.fault.set(ClientFault::Broken(error.to_string()));
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(frame) => {
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
                    && let Some(data) = data
                {
                    let bytes = bytes::Buf::remaining(data) as u64;
                    this.received
                        .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                }
                if let Some(pause) = this.pause.as_mut() {
                    pause
                        .as_mut()
                        .reset(tokio::time::Instant::now() + this.timeout);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let pause = this
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let _ = this.fault.set(ClientFault::Stalled(timeout));
                Poll::Ready(Some(Err(format!(
                    "the client sent nothing of its body for {} s",
                    timeout.as_secs()
                )
                .into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
