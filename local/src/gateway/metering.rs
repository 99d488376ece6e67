//! Usage metering at the gateway (`plinth_registry::usage`): each gateway thread counts the
//! module requests it lets through into a shard of its own, in memory; `plinth up` flushes
//! the shards to the store every few seconds and when it stops. `PLINTH_METERING=off` turns
//! usage counting off (the benchmark compares both).
//!
//! Each request is also counted per (module, version) for the rollout driver
//! (`plinth_registry::rollout::VersionHealth`), whatever `PLINTH_METERING` says: a rollout
//! judges the version it moves tenants to on those figures.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body_util::Either;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use plinth_registry::App;
use plinth_registry::gateway::Forward;
use plinth_registry::rollout::HealthShard;
use plinth_registry::usage::{Served, Shard};

use super::body::NotForwarded;

/// What one gateway thread counts into: usage (unless `PLINTH_METERING` is `off`), and each
/// version's figures for rollouts.
#[derive(Debug)]
pub(crate) struct Meters {
    usage: Option<Arc<Shard>>,
    health: Arc<HealthShard>,
}

impl Meters {
    fn served(&self, tenant: &str, module: &str, version: Option<&str>, served: &Served) {
        if let Some(usage) = &self.usage {
            usage.served(tenant, module, served);
        }
        if let Some(version) = version {
            self.health
                .served(module, version, served.status, served.latency);
        }
    }
}

/// New shards of `app`'s meters for one gateway thread.
pub(super) fn shard(app: &App) -> Option<Arc<Meters>> {
    let off = std::env::var("PLINTH_METERING").is_ok_and(|v| v == "off" || v == "0");
    Some(Arc::new(Meters {
        usage: (!off).then(|| app.plane.usage.meter().shard()),
        health: app.plane.rollouts.health().shard(),
    }))
}

/// Counts a request `decision` let through, as it ended.
pub(super) fn count(meters: Option<&Meters>, decision: &impl Forward, served: &Served) {
    if let (Some(meters), Some(tenant)) = (meters, decision.tenant()) {
        meters.served(tenant, decision.module(), decision.version(), served);
    }
}

/// Who a request on hyper's path is counted for, once its decision let it through.
#[derive(Debug)]
pub(super) struct Tally {
    pub(super) tenant: String,
    pub(super) module: String,
    /// The module's version the request went to.
    pub(super) version: Option<Arc<str>>,
    /// The request body's bytes as they are passed on (for a chunked upload's length).
    pub(super) uploaded: Option<Arc<AtomicU64>>,
}

impl Tally {
    pub(super) fn of(decision: &impl Forward) -> Option<Self> {
        decision.tenant().map(|tenant| Self {
            tenant: tenant.to_owned(),
            module: decision.module().to_owned(),
            version: decision.version().map(Arc::from),
            uploaded: None,
        })
    }
}

/// A request's declared body length (0 without one; a chunked upload's is not known).
pub(super) fn request_bytes(headers: &HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The answer to a module request on hyper's path: the backend's, its body counted as it is
/// sent, or the gateway's refusal — counted too when the decision had let the request
/// through (`tally`: a backend that failed, a client body that broke).
pub(super) fn answer<B>(
    forwarded: Result<Response<B>, NotForwarded>,
    meter: Option<&Arc<Meters>>,
    tally: Option<Tally>,
    request_bytes: u64,
    started: Instant,
) -> Response<Either<Metered<B>, Body>> {
    let served = |status: StatusCode| Served {
        status: status.as_u16(),
        request_bytes,
        ..Served::default()
    };
    match forwarded {
        Ok(response) => {
            let served = served(response.status());
            response.map(|body| Either::Left(Metered::new(body, meter, tally, served, started)))
        }
        Err(refused) => {
            let response = refused.into_response();
            drop(Metered::new(
                (),
                meter,
                tally,
                served(response.status()),
                started,
            ));
            response.map(Either::Right)
        }
    }
}

/// A response body on hyper's path, counting its bytes; the request is counted when the body
/// is done with (sent, or dropped when the client left).
#[derive(Debug)]
pub struct Metered<B> {
    body: B,
    count: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    shard: Arc<Meters>,
    tally: Tally,
    served: Served,
    started: Instant,
}

impl<B> Metered<B> {
    /// `body`, counted into `shard` for `tally` when both are given.
    pub(super) fn new(
        body: B,
        shard: Option<&Arc<Meters>>,
        tally: Option<Tally>,
        served: Served,
        started: Instant,
    ) -> Self {
        let count = match (shard, tally) {
            (Some(shard), Some(tally)) => Some(Pending {
                shard: Arc::clone(shard),
                tally,
                served,
                started,
            }),
            _ => None,
        };
        Self { body, count }
    }
}

impl<B> Drop for Metered<B> {
    fn drop(&mut self) {
        if let Some(mut pending) = self.count.take() {
            pending.served.latency = pending.started.elapsed();
            if pending.served.request_bytes == 0
                && let Some(uploaded) = &pending.tally.uploaded
            {
                pending.served.request_bytes = uploaded.load(Ordering::Relaxed);
            }
            let Tally {
                tenant,
                module,
                version,
                ..
            } = &pending.tally;
            let version = version.as_deref();
            pending
                .shard
                .served(tenant, module, version, &pending.served);
        }
    }
}

impl<B> HttpBody for Metered<B>
where
    B: HttpBody<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(pending)) = (&frame, this.count.as_mut())
            && let Some(data) = frame.data_ref()
        {
            pending.served.response_bytes += data.len() as u64;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
