//! The gateway on one machine: the platform API, plus every other `/api/v1/{m}/…` request
//! decided by [`Decide`] and forwarded to the module's backend with the tenant context.
//!
//! [`Gateway::serve`] accepts client connections and gives each to the relay
//! ([`super::relay`]), which passes module requests on byte for byte. A connection the relay
//! hands over (the platform API, or a request it does not relay) is served here by hyper's
//! HTTP/1.1 server: module requests go straight to the proxy, everything else to the platform
//! API's router. Each such connection keeps its own connection to the backend it last called
//! ([`UpstreamLink`]): HTTP/1 carries one request at a time, so a client connection never
//! needs more than one, and a request needs no pool, no lock shared with other connections
//! and no other task: the client connection's task drives the backend connection too.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Response, Uri, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use http_body_util::Either;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use plinth_module_sdk::wire::CONTEXT_HEADER;
use plinth_registry::api;
use plinth_registry::gateway::{
    Authorizer, Decide, Forward, GatewayRequest, Upstream, canonical_path, is_module_path,
};
use plinth_registry::{App, Error};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use super::body::{ClientBody, NotForwarded};
use super::fields::{FORWARDED_FOR, is_gateway_only, remove_hop_by_hop};
use super::metering::{Metered, Tally};
use super::relay::Prefixed;

/// What the gateway answers: a backend's response as it streams in, or one of its own.
pub type GatewayBody = Either<Metered<LinkedBody<ClientBody<Incoming>>>, Body>;

/// How long a client may pause while sending a request body, on either path, before the
/// request is given up (nginx's `client_body_timeout`): `PLINTH_GATEWAY_BODY_TIMEOUT_SECS`.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The platform API and the module proxy, served by [`Gateway::serve`]: module requests
/// decided by `D`, every other request answered by the platform API's router.
#[derive(Debug)]
pub struct Gateway<D> {
    pub(super) decide: Arc<D>,
    api: Router,
    /// How long a client may pause mid-body ([`BODY_TIMEOUT`] unless set).
    pub(super) body_timeout: Duration,
    /// This thread's usage counts (`None`: not metered).
    pub(super) meter: Option<Arc<super::metering::Meters>>,
}

/// The platform API and the module proxy in one router, for callers that drive a router
/// in-process (tests): each proxied request opens its own backend connection.
pub fn router(app: &App) -> Router {
    api::router_with_fallback(
        Arc::clone(&app.plane),
        Router::new()
            .fallback(forward_alone::<Authorizer>)
            .with_state(Arc::clone(&app.authorizer)),
    )
}

async fn forward_alone<D: Decide>(
    State(decide): State<Arc<D>>,
    request: Request,
) -> Response<Body> {
    // A path under a platform prefix that no platform route takes is the platform's 404, as
    // when served: never a module's.
    if !is_module_path(request.uri().path()) {
        return plinth_registry::Error::NotFound(format!("no route for {}", request.uri().path()))
            .into_response();
    }
    match forward(
        &*decide,
        &UpstreamLink::default(),
        None,
        BODY_TIMEOUT,
        request,
        &mut None,
    )
    .await
    {
        Ok(response) => response.map(Body::new),
        Err(refused) => refused.into_response(),
    }
}

impl Gateway<Authorizer> {
    /// The platform's gateway, as `plinth up` serves it: the platform's authorizer decides
    /// module requests, its API answers the rest; a client may pause mid-body for
    /// `PLINTH_GATEWAY_BODY_TIMEOUT_SECS` (default [`BODY_TIMEOUT`]).
    pub fn of(app: &App) -> Arc<Self> {
        Self::of_with(app, Router::new())
    }

    /// The same, with `beside` answering the paths the platform API does not take (the
    /// console's); module requests never reach it.
    pub fn of_with(app: &App, beside: Router) -> Arc<Self> {
        let body_timeout = std::env::var("PLINTH_GATEWAY_BODY_TIMEOUT_SECS")
            .ok()
            .and_then(|secs| secs.parse::<u64>().ok())
            .filter(|secs| *secs > 0)
            .map_or(BODY_TIMEOUT, Duration::from_secs);
        let mut gateway = Self::with_body_timeout(
            Arc::clone(&app.authorizer),
            app.api().merge(beside),
            body_timeout,
        );
        if let Some(gateway) = Arc::get_mut(&mut gateway) {
            gateway.meter = super::metering::shard(app);
        }
        gateway
    }
}

impl<D: Decide> Gateway<D> {
    /// Module requests decided by `decide`, the rest answered by `api` (the platform API).
    pub fn new(decide: Arc<D>, api: Router) -> Arc<Self> {
        Self::with_body_timeout(decide, api, BODY_TIMEOUT)
    }

    /// The same, a client pausing mid-body for longer than `body_timeout` given up.
    pub fn with_body_timeout(decide: Arc<D>, api: Router, body_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            decide,
            api,
            body_timeout,
            meter: None,
        })
    }

    /// Serves `listener` until `shutdown` resolves, then lets each open connection finish the
    /// request it is on and returns once all are closed. Connections start with the relay.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let (closing, closed) = tokio::sync::watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(%error, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(super::relay::serve(
                Arc::clone(&self),
                stream,
                closed.clone(),
            ));
        }
        drop(listener);
        let _ = closing.send(true);
        drop(closed);
        closing.closed().await;
        Ok(())
    }
}

/// Serves a client connection the relay handed over with hyper's HTTP/1.1 server, until it
/// closes or, once `closed` says the gateway is stopping, until it finishes its request.
/// `address`: the client's, as the gateway saw it (`X-Forwarded-For`).
pub(super) async fn serve_with_hyper<D: Decide>(
    gateway: Arc<Gateway<D>>,
    client: Prefixed,
    address: Option<HeaderValue>,
    mut closed: tokio::sync::watch::Receiver<bool>,
) {
    let service = ClientConnection {
        gateway,
        link: UpstreamLink::default(),
        address,
    };
    // With a timer, hyper closes a connection that takes over 30 s to send a request head.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(client), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        // First: a request the relay handed over is read before the stop is looked at.
        biased;
        _ = connection.as_mut() => return,
        _ = closed.wait_for(|closing| *closing) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// One client connection, as hyper's service.
struct ClientConnection<D> {
    gateway: Arc<Gateway<D>>,
    link: UpstreamLink<ClientBody<Incoming>>,
    /// The client's address, for `X-Forwarded-For`.
    address: Option<HeaderValue>,
}

impl<D: Decide> hyper::service::Service<Request<Incoming>> for ClientConnection<D> {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // Two futures, each boxed at its own size: a proxied request does not carry the
        // platform API's router future in its state (and moves less into its box).
        if is_module_path(request.uri().path()) {
            let gateway = Arc::clone(&self.gateway);
            let link = self.link.clone();
            let address = self.address.clone();
            return Box::pin(async move {
                let (started, mut tally) = (std::time::Instant::now(), None);
                let timeout = gateway.body_timeout;
                let request_bytes = super::metering::request_bytes(request.headers());
                let forwarded = forward(
                    &*gateway.decide,
                    &link,
                    address,
                    timeout,
                    request,
                    &mut tally,
                )
                .await;
                let meter = gateway.meter.as_ref();
                Ok(super::metering::answer(
                    forwarded,
                    meter,
                    tally,
                    request_bytes,
                    started,
                ))
            });
        }
        let api = self.gateway.api.clone();
        Box::pin(async move {
            Ok(match api.oneshot(request).await {
                Ok(response) => response.map(Either::Right),
                Err(never) => match never {},
            })
        })
    }
}

/// Decides a module request and sends it to the module's backend over `link`, in the
/// canonical form of its path, with `address` (the client's) as `X-Forwarded-For`; the
/// client pausing mid-body for `body_timeout` gives the request up. `tally`: who the request
/// is counted for, once allowed.
async fn forward<D, B>(
    decide: &D,
    link: &UpstreamLink<ClientBody<B>>,
    address: Option<HeaderValue>,
    body_timeout: Duration,
    request: Request<B>,
    tally: &mut Option<Tally>,
) -> Result<Response<LinkedBody<ClientBody<B>>>, NotForwarded>
where
    D: Decide,
    B: RequestBody + Unpin,
{
    let (mut parts, body) = request.into_parts();
    if let Cow::Owned(canonical) = canonical_path(parts.uri.path())? {
        parts.uri = with_path(&parts.uri, &canonical)?;
    }
    let allowed = decide
        .decide(GatewayRequest::new(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
        ))
        .await?;
    *tally = Tally::of(&allowed);
    let upstream = link.choose(allowed.upstream(), allowed.upstreams());
    parts.uri = upstream.target_for(parts.uri)?;
    strip_request_headers(&mut parts.headers);
    match &upstream.host {
        Some(host) => parts.headers.insert(header::HOST, host.clone()),
        None => parts.headers.remove(header::HOST),
    };
    parts
        .headers
        .insert(CONTEXT_HEADER, allowed.context().clone());
    if let Some(address) = address {
        parts.headers.insert(FORWARDED_FOR, address);
    }
    // A body of unknown length goes on chunked, whatever the method: left to itself, hyper's
    // client sends a GET's as no body at all.
    if !body.is_end_stream()
        && body.size_hint().exact().is_none()
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        parts.headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    }
    tracing::debug!(module = allowed.module(), "forward");
    let (body, fault) = ClientBody::new(body, body_timeout);
    if let Some(tally) = tally.as_mut() {
        tally.uploaded = Some(body.received());
    }
    let response = link
        .send(&upstream, Request::from_parts(parts, body))
        .await
        .map_err(|e| match fault.get() {
            // The client's body failed, not the backend: the client's 4xx, and what is
            // known of the module's instances stays.
            Some(fault) => NotForwarded::Client(fault.clone()),
            None => {
                decide.backend_failed(&allowed);
                super::backend_failed(allowed.module(), e).into()
            }
        })?;
    let (mut parts, body) = response.into_parts();
    strip_response_headers(&mut parts.headers);
    Ok(Response::from_parts(parts, body))
}

/// `uri` with its path replaced by `path` (its query kept).
fn with_path(uri: &Uri, path: &str) -> Result<Uri, Error> {
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    target
        .parse()
        .map_err(|e| Error::BadRequest(format!("the request target {target} is invalid: {e}")))
}

/// Drops what must not reach a module: hop-by-hop headers and those only the gateway sends
/// (the caller's credentials, method overrides, the client's claimed address, any
/// `X-Plinth-*` a client sent, underscore spellings of framing fields): the gateway adds its
/// own context and the address it saw.
pub(super) fn strip_request_headers(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers, |name| is_gateway_only(name.as_str()));
}

/// Drops what must not reach the client: hop-by-hop headers (hyper frames the body anew).
pub(super) fn strip_response_headers(headers: &mut HeaderMap) {
    remove_hop_by_hop(headers, |_| false);
}

/// What a proxied request's body can be: the client's (served gateway) or axum's (tests).
pub trait RequestBody:
    HttpBody<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

impl<B> RequestBody for B where
    B: HttpBody<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

/// A client connection's connection to the backend it last called.
///
/// The connection has no task of its own: whoever uses it drives it — the request waiting
/// for its response head, then the response body as the client connection writes it out
/// ([`LinkedBody`]), then the next request making sure it is still open. A proxied request
/// so wakes one task, the client connection's, rather than handing over to a backend task
/// and back.
pub struct UpstreamLink<B: RequestBody> {
    open: Arc<Mutex<Option<Open<B>>>>,
    quiet: Arc<Quiet>,
}

impl<B: RequestBody> Clone for UpstreamLink<B> {
    fn clone(&self) -> Self {
        Self {
            open: Arc::clone(&self.open),
            quiet: Arc::clone(&self.quiet),
        }
    }
}

impl<B: RequestBody> Default for UpstreamLink<B> {
    fn default() -> Self {
        Self {
            open: Arc::new(Mutex::new(None)),
            quiet: Arc::default(),
        }
    }
}

impl<B: RequestBody> std::fmt::Debug for UpstreamLink<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLink").finish_non_exhaustive()
    }
}

impl<B> UpstreamLink<B>
where
    B: RequestBody,
{
    /// The instance this connection already talks to, while it is healthy; else `picked`.
    /// (Requests spread over instances by client connection, as keep-alive clients do.)
    fn choose(&self, picked: &Arc<Upstream>, healthy: &[Arc<Upstream>]) -> Arc<Upstream> {
        if healthy.len() > 1
            && let Ok(open) = self.open.lock()
            && let Some(open) = open.as_ref()
            && let Some(current) = healthy.iter().find(|u| u.url == open.url)
        {
            return Arc::clone(current);
        }
        Arc::clone(picked)
    }

    /// Sends `request` on the open connection when it goes to the same backend and is still
    /// usable, else on a new one (also when the open one turns out closed before the request
    /// was written).
    async fn send(
        &self,
        upstream: &Upstream,
        mut request: Request<B>,
    ) -> Result<Response<LinkedBody<B>>, String> {
        // A request with a body may still be uploading when its response ends (a backend can
        // answer before reading it): its connection then cannot take the next request.
        let reusable = request.body().is_end_stream();
        if let Some(mut open) = self.take(&upstream.url)
            && std::future::poll_fn(|cx| self.quiet.poll(cx, |cx| open.poll_ready(cx))).await
        {
            match open.exchange(request, &self.quiet).await {
                Ok(response) => return Ok(self.keep(open, response, reusable)),
                Err(Unanswered::Unsent(unsent)) => request = unsent,
                Err(Unanswered::Failed(error)) => return Err(error),
            }
        }
        // Boxed: the cold path keeps its state out of every request's future.
        let mut open = Box::pin(connect(upstream)).await?;
        match open.exchange(request, &self.quiet).await {
            Ok(response) => Ok(self.keep(open, response, reusable)),
            Err(Unanswered::Unsent(_)) => Err("the connection closed at once".to_owned()),
            Err(Unanswered::Failed(error)) => Err(error),
        }
    }

    fn take(&self, url: &str) -> Option<Open<B>> {
        let open = self.open.lock().ok()?.take()?;
        (open.url == url).then_some(open)
    }

    /// Keeps `open` for the next request; the response body drives it until then (and lets
    /// it go when the connection cannot be `reusable`).
    fn keep(
        &self,
        open: Open<B>,
        response: Response<Incoming>,
        reusable: bool,
    ) -> Response<LinkedBody<B>> {
        if let Ok(mut slot) = self.open.lock() {
            *slot = Some(open);
        }
        response.map(|body| LinkedBody {
            body,
            link: self.clone(),
            ended: false,
            reusable,
        })
    }
}

type BackendConnection<B> = Pin<Box<Connection<TokioIo<TcpStream>, B>>>;

/// An open backend connection.
struct Open<B: RequestBody> {
    url: String,
    sender: SendRequest<B>,
    /// `None` once it has closed.
    connection: Option<BackendConnection<B>>,
}

/// Why a request got no response head.
enum Unanswered<B> {
    /// The connection closed before the request was written: it may go on another.
    Unsent(Request<B>),
    Failed(String),
}

impl<B> Open<B>
where
    B: RequestBody,
{
    /// Lets the connection do what it can now: write, read, or notice that it closed (and
    /// then drop it, which answers whatever it still held).
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(connection) = self.connection.as_mut()
            && let Poll::Ready(closed) = connection.as_mut().poll(cx)
        {
            if let Err(error) = closed {
                tracing::debug!(%error, "backend connection closed");
            }
            self.connection = None;
        }
    }

    /// Whether the connection can take a request (`false`: it has closed).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        self.drive(cx);
        if self.connection.is_none() {
            return Poll::Ready(false);
        }
        self.sender.poll_ready(cx).map(|ready| ready.is_ok())
    }

    /// Sends `request` and waits for the response head, driving the connection meanwhile.
    async fn exchange(
        &mut self,
        request: Request<B>,
        quiet: &Arc<Quiet>,
    ) -> Result<Response<Incoming>, Unanswered<B>> {
        // Queuing the request wakes the connection, which is driven right below anyway.
        let answer = quiet.hushed(|| self.sender.try_send_request(request));
        let mut answer = std::pin::pin!(answer);
        let answer = std::future::poll_fn(|cx| {
            quiet.poll(cx, |cx| {
                if let Poll::Ready(answer) = answer.as_mut().poll(cx) {
                    return Poll::Ready(Some(answer));
                }
                self.drive(cx);
                match answer.as_mut().poll(cx) {
                    Poll::Ready(answer) => Poll::Ready(Some(answer)),
                    // Dropping a closed connection answers every request it held.
                    Poll::Pending if self.connection.is_none() => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
        })
        .await;
        match answer {
            Some(Ok(response)) => Ok(response),
            Some(Err(mut error)) => Err(match error.take_message() {
                Some(unsent) => Unanswered::Unsent(unsent),
                None => Unanswered::Failed(error.into_error().to_string()),
            }),
            None => Err(Unanswered::Failed("the connection closed".to_owned())),
        }
    }
}

/// A new HTTP/1 connection to `upstream`.
async fn connect<B>(upstream: &Upstream) -> Result<Open<B>, String>
where
    B: RequestBody,
{
    let stream = super::connect(upstream).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Open {
        url: upstream.url.clone(),
        sender,
        connection: Some(Box::pin(connection)),
    })
}

/// A backend's response body, driving the backend connection it arrives on.
pub struct LinkedBody<B: RequestBody> {
    body: Incoming,
    link: UpstreamLink<B>,
    ended: bool,
    /// The request had no body, so the connection is idle once this body has ended.
    reusable: bool,
}

impl<B> HttpBody for LinkedBody<B>
where
    B: RequestBody,
{
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = this.link.quiet.poll(cx, |cx| {
            let frame = Pin::new(&mut this.body).poll_frame(cx);
            if frame.is_ready() {
                return frame;
            }
            if let Ok(mut open) = this.link.open.lock()
                && let Some(open) = open.as_mut()
            {
                open.drive(cx);
            }
            Pin::new(&mut this.body).poll_frame(cx)
        });
        match &frame {
            Poll::Ready(None | Some(Err(_))) => this.ended = true,
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => this.ended = true,
            _ => {}
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

impl<B: RequestBody> std::fmt::Debug for LinkedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedBody")
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl<B: RequestBody> Drop for LinkedBody<B> {
    /// A body dropped half-read leaves its connection mid-response, and a request body may
    /// still be uploading: no request can follow on that connection, so it closes (and the
    /// client connection drains or closes what is left of its request).
    fn drop(&mut self) {
        let idle = self.reusable && (self.ended || self.body.is_end_stream());
        if !idle && let Ok(mut open) = self.link.open.lock() {
            *open = None;
        }
    }
}

/// The waker a link polls its backend connection with, so that what the connection does
/// while the link is polling it does not wake the client connection's task again.
///
/// The backend connection and the client connection's task talk through hyper's channels
/// (request queue, response callback, body, readiness), and each message wakes the other
/// side — here, the same task, already running: a woken task is polled once more for
/// nothing, twice per request. Wakes that happen while the link polls ([`Quiet::poll`]) are
/// remembered instead and answered by polling again at once; wakes from elsewhere (the
/// sockets, through Tokio's I/O driver) go to the task as usual.
#[derive(Default)]
struct Quiet {
    task: futures_util::task::AtomicWaker,
    /// [`IDLE`], [`POLLING`], or [`WOKEN`] (woken while polling): one atomic, so that a wake
    /// from another thread is either seen by the poller or sent to the task, never lost.
    state: std::sync::atomic::AtomicU8,
}

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

impl Quiet {
    /// Polls `poll` with this waker, again while it woke itself, until it is ready or waits
    /// for something outside.
    fn poll<T>(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.task.register(cx.waker());
        let waker = std::task::Waker::from(Arc::clone(self));
        let mut quiet = Context::from_waker(&waker);
        loop {
            self.state.store(POLLING, Ordering::Release);
            let polled = poll(&mut quiet);
            let woken = self.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if polled.is_ready() || !woken {
                return polled;
            }
        }
    }

    /// Runs `f` with this link's wakes dropped: for what is polled right after anyway.
    fn hushed<T>(&self, f: impl FnOnce() -> T) -> T {
        self.state.store(POLLING, Ordering::Release);
        let out = f();
        self.state.store(IDLE, Ordering::Release);
        out
    }
}

impl std::task::Wake for Quiet {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderName;

    use super::*;

    #[test]
    fn module_paths_are_those_no_platform_route_takes() {
        assert!(is_module_path("/api/v1/financial/invoices"));
        assert!(is_module_path("/api/v1/financial"));
        assert!(!is_module_path("/api/v1/modules/financial"));
        assert!(!is_module_path("/api/v1/tenants/acme/modules/financial"));
        assert!(!is_module_path("/api/v1/"));
        assert!(!is_module_path("/health"));
        assert!(!is_module_path("/api/v2/financial"));
    }

    #[test]
    fn responses_lose_hop_by_hop_headers_only() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authenticate", "Basic"),
            ("content-type", "application/json"),
            (
                "x-plinth-request",
                "kept: a response header of the module's own",
            ),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        headers.append(header::TRAILER, "x-checksum".parse().unwrap());
        headers.append(header::TRAILER, "x-other".parse().unwrap());
        strip_response_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-plinth-request"]);

        let mut end_to_end = HeaderMap::new();
        end_to_end.insert(header::CONTENT_LENGTH, "2".parse().unwrap());
        end_to_end.insert(
            header::DATE,
            "Wed, 02 Dec 2026 08:00:00 GMT".parse().unwrap(),
        );
        let before = end_to_end.clone();
        strip_response_headers(&mut end_to_end);
        assert_eq!(end_to_end, before);
    }

    #[test]
    fn requests_lose_credentials_hop_by_hop_and_forged_context_headers() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer t"),
            ("x-module-api-key", "k"),
            ("x-plinth-context", "forged"),
            ("x-plinth-tenant", "other"),
            ("x_plinth_context", "forged"),
            ("connection", "keep-alive"),
            ("te", "trailers"),
            ("accept", "application/json"),
            ("x-request-id", "r1"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        strip_request_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-request-id"]);

        let mut only_token = HeaderMap::new();
        only_token.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        only_token.insert(header::ACCEPT, "*/*".parse().unwrap());
        strip_request_headers(&mut only_token);
        assert_eq!(only_token.len(), 1);
        assert!(only_token.contains_key(header::ACCEPT));
    }
}
