//! The relay: how the served gateway passes module requests on, byte for byte.
//!
//! Every client connection starts here. A request head is parsed where it was read
//! (httparse, no header map); a module route's request is decided by
//! [`Decide`](plinth_registry::gateway::Decide) on the canonical form of its path
//! ([`canonical_path`], or refused with a 400), its head written again for the backend with
//! that path (hop-by-hop fields and those only the gateway sends dropped — credentials,
//! method overrides, the client's claimed address, forged `X-Plinth-*`, underscore
//! spellings — the backend's `Host`, the signed context and the client's address added),
//! and its body and the backend's response passed on
//! as they are framed — the response head unchanged unless a hop-by-hop field must go. The
//! connection keeps one backend connection, reused while the backend keeps it open.
//!
//! Whatever the relay does not handle — the platform API, another HTTP version, a chunked
//! upload, `Expect`, an upgrade, a head that does not parse — hands the connection, with the
//! bytes already read, to hyper's server ([`super::proxy`]) for the rest of its life.

mod buffer;
mod chunked;
#[doc(hidden)]
pub mod fuzzing;
pub(super) mod message;
mod prefixed;

use std::future::Future;
use std::io::{self, Write as _};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use plinth_registry::Error;
use plinth_registry::gateway::{Decide, Forward, GatewayRequest, Upstream, canonical_path};
use plinth_registry::usage::Served;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::proxy::Gateway;
use buffer::Buffer;
use chunked::ChunkedEnd;
use message::{Framing, RequestHead, RequestParse, ResponseHead};
pub(super) use prefixed::Prefixed;

/// A client connection's buffer to start with.
const CLIENT_BUFFER: usize = 8 * 1024;
/// The longest request head the relay reads; past it, hyper takes the connection (and
/// answers 431 past its own limit).
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// A backend connection's buffer to start with.
const BACKEND_BUFFER: usize = 16 * 1024;
/// The longest response head accepted from a backend.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The head buffer's capacity to keep between requests.
const OUT_CAPACITY: usize = 4 * 1024;
/// How long a client connection may idle between requests (nginx's `keepalive_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a client may take to send a request head once it has begun (hyper's default).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long either side may stall mid-exchange: the backend before its response head or
/// between reads of its body (a 504 before the head), a client taking the response or
/// sending its body (nginx's `proxy_read_timeout`, `send_timeout`, `client_body_timeout`).
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long, and for how many bytes, a closing connection still reads what its client sends
/// (see [`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// Serves a client connection until it closes, the gateway stops, or a request the relay
/// does not handle hands it to hyper.
pub(super) async fn serve<D: Decide>(
    gateway: Arc<Gateway<D>>,
    client: TcpStream,
    closing: watch::Receiver<bool>,
) {
    // The address as seen here, for `X-Forwarded-For`: made once per connection.
    let address = client
        .peer_addr()
        .map(|peer| peer.ip().to_string())
        .unwrap_or_default();
    let mut relay = Relay {
        gateway,
        client,
        address,
        inbox: Buffer::new(CLIENT_BUFFER),
        backend: None,
        response: Buffer::new(BACKEND_BUFFER),
        out: Vec::with_capacity(2048),
        served: Served::default(),
    };
    // Resolves once the gateway is stopping; kept for the connection's life, so that waiting
    // on it costs nothing per request.
    let mut stopping = closing.clone();
    let stop = stopping.wait_for(|stop| *stop);
    tokio::pin!(stop);
    loop {
        match relay.exchange(stop.as_mut()).await {
            After::KeepOpen if !*closing.borrow() => relay.shrink(),
            After::HandOver => {
                let Relay {
                    gateway,
                    client,
                    inbox,
                    address,
                    ..
                } = relay;
                let client = Prefixed::new(inbox.filled(), client);
                let address = HeaderValue::try_from(address).ok();
                return super::proxy::serve_with_hyper(gateway, client, address, closing).await;
            }
            After::KeepOpen | After::Close => {
                let _ = relay.client.shutdown().await;
                return;
            }
            After::CloseUnread => return linger(relay.client).await,
        }
    }
}

/// What becomes of the client connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepOpen,
    Close,
    /// Close while the client may still be sending the request's body.
    CloseUnread,
    HandOver,
}

/// One client connection and what it keeps between requests.
struct Relay<D> {
    gateway: Arc<Gateway<D>>,
    client: TcpStream,
    /// The client's IP address, as text (empty when unknown).
    address: String,
    /// What the client sent that is not handled yet.
    inbox: Buffer,
    backend: Option<Backend>,
    /// What the backend sent that is not passed on yet.
    response: Buffer,
    /// A head being written for the backend or the client.
    out: Vec<u8>,
    /// The request being answered, as usage counts it.
    served: Served,
}

/// The connection to the backend the client connection last called.
struct Backend {
    upstream: Arc<Upstream>,
    stream: TcpStream,
}

/// A request head read, its forwarded head (when allowed) in `Relay::out`.
struct Prepared {
    head_len: usize,
    content_length: u64,
    /// The client asked to close after this exchange.
    close: bool,
    to_head: bool,
    idempotent: bool,
}

/// Where an allowed request goes, or why it is refused.
type Decided<A> = Result<(A, Arc<Upstream>), Error>;

impl Prepared {
    /// What becomes of the client connection after this request's answer: `unread`, its
    /// body is not all read.
    fn after(&self, unread: bool) -> After {
        if unread {
            After::CloseUnread
        } else if self.close {
            After::Close
        } else {
            After::KeepOpen
        }
    }
}

/// What became of a response.
enum Responded {
    /// Passed on whole.
    Whole(ResponseHead),
    /// The backend closed the connection before sending a byte of a response.
    Unanswered(String),
    /// Nothing was passed on: the backend's response is not valid HTTP/1.1.
    Invalid(String),
    /// No response head within [`IO_TIMEOUT`] of the request's end.
    TimedOut,
    /// Part of it went, then the backend or the client failed (or the client left while
    /// its request was still uploading): the client connection cannot go on.
    CutShort,
}

impl<D: Decide> Relay<D> {
    /// Reads a request and answers it.
    /// `stop` resolves when the gateway is stopping, which closes a connection waiting for
    /// its next request.
    async fn exchange(&mut self, mut stop: Pin<&mut impl Future>) -> After {
        let mut head_deadline = None;
        // From the head read to the answer passed on: the request's latency.
        let started;
        let (prepared, decided) = loop {
            let mut slots = message::header_slots();
            match message::parse_request(self.inbox.filled(), &mut slots) {
                RequestParse::Partial => {}
                RequestParse::Other => return After::HandOver,
                RequestParse::Relayed(head) => {
                    started = Instant::now();
                    let kept = self.backend.as_ref();
                    break prepare(&self.gateway, kept, &head, &self.address, &mut self.out).await;
                }
            }
            if self.inbox.len() >= MAX_REQUEST_HEAD {
                return After::HandOver;
            }
            // Idle between requests, or within a head: a client too slow is closed.
            let deadline = if self.inbox.is_empty() {
                Instant::now() + IDLE_TIMEOUT
            } else {
                *head_deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT)
            };
            let read = self.inbox.read_from(&mut self.client, MAX_REQUEST_HEAD);
            let read = tokio::select! {
                biased;
                read = tokio::time::timeout_at(deadline, read) => read.unwrap_or(Ok(0)),
                _ = stop.as_mut() => return After::Close,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return After::Close;
            }
        };
        self.inbox.consume(prepared.head_len);
        match decided {
            Ok((decision, upstream)) => {
                self.served = Served {
                    request_bytes: prepared.content_length,
                    ..Served::default()
                };
                let after = self.forward(&decision, &upstream, &prepared).await;
                self.served.latency = started.elapsed();
                let meter = self.gateway.meter.as_deref();
                super::metering::count(meter, &decision, &self.served);
                after
            }
            Err(error) => {
                // A body still on its way would be read as the next request: skip one that
                // is all here already, else close after answering.
                let body_here = prepared.content_length <= self.inbox.len() as u64;
                if body_here {
                    self.inbox.consume(prepared.content_length as usize);
                }
                let then = prepared.after(!body_here);
                self.answer(error, then).await
            }
        }
    }

    /// Sends an allowed request to the backend and its response to the client.
    async fn forward(
        &mut self,
        decision: &D::Allowed,
        upstream: &Arc<Upstream>,
        request: &Prepared,
    ) -> After {
        tracing::debug!(module = decision.module(), "relay");
        // The body goes with the head when the client has sent all of it already.
        let here = usize::try_from(request.content_length)
            .map_or(self.inbox.len(), |length| length.min(self.inbox.len()));
        self.out.extend_from_slice(&self.inbox.filled()[..here]);
        self.inbox.consume(here);
        let body_left = request.content_length - here as u64;
        // Sent again on a new connection when a kept one turns out closed: only what can be.
        let replayable = request.idempotent && body_left == 0;
        let unsent = request.after(body_left > 0);
        let (responded, uploaded) = loop {
            let kept = match self.connect(upstream).await {
                Ok(kept) => kept,
                Err(e) => return self.bad_gateway(decision, &e, unsent).await,
            };
            let backend = &mut self.backend.as_mut().expect("connected").stream;
            if let Err(e) = timed(backend.write_all(&self.out)).await {
                if kept && replayable {
                    self.backend = None;
                    continue;
                }
                return self.bad_gateway(decision, &e.to_string(), unsent).await;
            }
            let reply = Reply {
                response: &mut self.response,
                out: &mut self.out,
                to_head: request.to_head,
                close: request.close,
                served: &mut self.served,
            };
            if body_left > 0 {
                let client = &mut self.client;
                let upload = Upload {
                    inbox: &mut self.inbox,
                    left: body_left,
                    timeout: self.gateway.body_timeout,
                };
                break duplex(client, upload, backend, reply).await;
            }
            match reply.pass(backend, &mut self.client).await {
                Responded::Unanswered(_) if kept && replayable => self.backend = None,
                responded => break (responded, true),
            }
        };
        match responded {
            Responded::Whole(head) => {
                // Kept only when idle: the response whole and nothing after it, the request
                // all sent, and the backend keeping the connection open.
                if !(head.keep_alive && uploaded && self.response.is_empty()) {
                    self.backend = None;
                    self.response.clear();
                }
                match request.after(!uploaded) {
                    After::KeepOpen if head.framing == Framing::UntilClose => After::Close,
                    after => after,
                }
            }
            Responded::Unanswered(e) | Responded::Invalid(e) => {
                self.bad_gateway(decision, &e, request.after(!uploaded))
                    .await
            }
            Responded::TimedOut => {
                let module = decision.module();
                let error = Error::GatewayTimeout(format!(
                    "{module} did not answer within {} s",
                    IO_TIMEOUT.as_secs()
                ));
                self.upstream_failed(decision, error, request.after(!uploaded))
                    .await
            }
            Responded::CutShort => {
                self.backend = None;
                self.response.clear();
                After::Close
            }
        }
    }

    /// The connection to `upstream`: the kept one while it is open (`Ok(true)`), else a new
    /// one (`Ok(false)`).
    async fn connect(&mut self, upstream: &Arc<Upstream>) -> Result<bool, String> {
        if let Some(backend) = &self.backend
            && backend.upstream.url == upstream.url
            && is_open(&backend.stream)
        {
            return Ok(true);
        }
        self.backend = None;
        self.response.clear();
        self.backend = Some(Backend {
            upstream: Arc::clone(upstream),
            stream: super::connect(upstream).await?,
        });
        Ok(false)
    }

    /// Answers 502 for `decision`'s module, whose backend failed.
    async fn bad_gateway(&mut self, decision: &D::Allowed, error: &str, then: After) -> After {
        let error = super::backend_failed(decision.module(), error);
        self.upstream_failed(decision, error, then).await
    }

    /// Answers `error` for `decision`'s module, whose backend failed: its connection is
    /// dropped and its routes read again (the instance may be gone).
    async fn upstream_failed(&mut self, decision: &D::Allowed, error: Error, then: After) -> After {
        self.served.status = error.status().as_u16();
        self.backend = None;
        self.response.clear();
        self.gateway.decide.backend_failed(decision);
        self.answer(error, then).await
    }

    /// Answers with the gateway's own problem response, then `then` (`KeepOpen`, `Close` or
    /// `CloseUnread`).
    async fn answer(&mut self, error: Error, then: After) -> After {
        write_problem(error, then != After::KeepOpen, &mut self.out).await;
        match timed(self.client.write_all(&self.out)).await {
            Ok(()) => then,
            Err(_) => After::Close,
        }
    }

    /// Gives back memory a large message took, before the connection idles.
    fn shrink(&mut self) {
        self.inbox.shrink_to(CLIENT_BUFFER);
        self.response.shrink_to(BACKEND_BUFFER);
        if self.out.capacity() > OUT_CAPACITY {
            self.out.clear();
            self.out.shrink_to(OUT_CAPACITY);
        }
    }
}

/// A response head within [`IO_TIMEOUT`], else [`Responded::TimedOut`].
async fn answered(
    head: impl Future<Output = Result<ResponseHead, Responded>>,
) -> Result<ResponseHead, Responded> {
    tokio::time::timeout(IO_TIMEOUT, head)
        .await
        .unwrap_or(Err(Responded::TimedOut))
}

/// `io` within [`IO_TIMEOUT`]: a peer stalled longer is an error (`TimedOut`).
async fn timed<T>(io: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(IO_TIMEOUT, io)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Closes a connection whose client may still be sending a body nobody will read: this side
/// first, then what arrives is read and dropped for a while (bounded in time and bytes), so
/// that unread bytes do not make the kernel reset the connection under the answer.
async fn linger(mut client: TcpStream) {
    let _ = client.shutdown().await;
    let drain = async {
        let mut sink = vec![0; 16 * 1024];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Where a response goes through: the buffers it is read into and written from, and what
/// the request asked of it.
struct Reply<'a> {
    response: &'a mut Buffer,
    out: &'a mut Vec<u8>,
    /// The request was `HEAD`: the response has no body, whatever its head says.
    to_head: bool,
    /// The client asked to close the connection after it.
    close: bool,
    /// Its status and body bytes, for usage.
    served: &'a mut Served,
}

impl Reply<'_> {
    /// Reads a response from `backend`, its head within [`IO_TIMEOUT`] (the request is all
    /// sent), and passes it on to `client`.
    async fn pass(
        mut self,
        backend: &mut (impl AsyncRead + Unpin),
        client: &mut (impl AsyncWrite + Unpin),
    ) -> Responded {
        match answered(self.head(backend, client)).await {
            Ok(head) => self.body(head, backend, client).await,
            Err(responded) => responded,
        }
    }

    /// Passes on the response whose `head` was read, and its body.
    async fn body(
        self,
        head: ResponseHead,
        backend: &mut (impl AsyncRead + Unpin),
        client: &mut (impl AsyncWrite + Unpin),
    ) -> Responded {
        let close = self.close || head.framing == Framing::UntilClose;
        self.served.status = head.status;
        let mut body = BodyEnd::new(head.framing);
        let first = match body.take(&self.response.filled()[head.len..]) {
            Ok(first) => first,
            Err(e) => return Responded::Invalid(format!("sent an {e}")),
        };
        let sent = if head.verbatim && !close {
            // The head as it came and the body's first bytes, in one write.
            timed(client.write_all(&self.response.filled()[..head.len + first])).await
        } else {
            self.out.clear();
            let filled = self.response.filled();
            message::write_response_head(&filled[..head.len], close, self.out);
            self.out
                .extend_from_slice(&filled[head.len..head.len + first]);
            timed(client.write_all(self.out)).await
        };
        self.response.consume(head.len + first);
        self.served.response_bytes += first as u64;
        if sent.is_err() {
            return Responded::CutShort;
        }
        while !body.is_done() {
            let read = timed(self.response.read_from(backend, BACKEND_BUFFER)).await;
            if !matches!(read, Ok(n) if n > 0) {
                // The end of a body that runs until the close; any other is cut short.
                return if body.ends_at_close() {
                    Responded::Whole(head)
                } else {
                    Responded::CutShort
                };
            }
            let Ok(part) = body.take(self.response.filled()) else {
                return Responded::CutShort;
            };
            if timed(client.write_all(&self.response.filled()[..part]))
                .await
                .is_err()
            {
                return Responded::CutShort;
            }
            self.response.consume(part);
            self.served.response_bytes += part as u64;
        }
        Responded::Whole(head)
    }

    /// Reads the response head, passing interim (1xx) responses on to the client; as long as
    /// it takes (the caller bounds the wait).
    async fn head(
        &mut self,
        backend: &mut (impl AsyncRead + Unpin),
        client: &mut (impl AsyncWrite + Unpin),
    ) -> Result<ResponseHead, Responded> {
        let mut received = !self.response.is_empty();
        loop {
            match message::parse_response(self.response.filled(), self.to_head) {
                Ok(Some(head)) if head.status == 101 => {
                    return Err(Responded::Invalid(
                        "switched protocols unasked for (101)".to_owned(),
                    ));
                }
                Ok(Some(head)) if head.status < 200 => {
                    let interim = &self.response.filled()[..head.len];
                    if timed(client.write_all(interim)).await.is_err() {
                        return Err(Responded::CutShort);
                    }
                    self.response.consume(head.len);
                    continue;
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(Responded::Invalid(format!("sent {e}"))),
            }
            match self.response.read_from(backend, MAX_RESPONSE_HEAD).await {
                Ok(n) if n > 0 => received = true,
                Ok(_) if !received => {
                    return Err(Responded::Unanswered("the connection closed".to_owned()));
                }
                Err(e) if !received => return Err(Responded::Unanswered(e.to_string())),
                Ok(_) => {
                    return Err(Responded::Invalid(
                        "the connection closed within a response head".to_owned(),
                    ));
                }
                Err(e) => return Err(Responded::Invalid(e.to_string())),
            }
        }
    }
}

/// What is left of a request body to upload: `left` bytes, those in `inbox` first, the client
/// pausing no longer than `timeout` between reads.
struct Upload<'a> {
    inbox: &'a mut Buffer,
    left: u64,
    timeout: Duration,
}

/// Sends the rest of a request body while passing the response on: both at
/// once, since a backend may stream its answer as it reads, or answer before reading it
/// all. The backend's time to answer ([`IO_TIMEOUT`]) counts from the body's end, however
/// long a client takes to send it. Returns what became of the response and whether the
/// whole body went.
async fn duplex(
    client: &mut TcpStream,
    body: Upload<'_>,
    backend: &mut TcpStream,
    mut reply: Reply<'_>,
) -> (Responded, bool) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_backend, mut to_backend) = backend.split();
    let mut upload = pin!(upload(&mut from_client, body, &mut to_backend));
    // Whether the body all went, once the upload is over.
    let mut uploaded = None;
    let head = {
        let mut head = pin!(reply.head(&mut from_backend, &mut to_client));
        tokio::select! {
            done = &mut upload => {
                let Some(all) = Gone::went_on(done) else {
                    return (Responded::CutShort, false);
                };
                uploaded = Some(all);
                answered(head).await
            }
            head = &mut head => head,
        }
    };
    let head = match head {
        Ok(head) => head,
        Err(responded) => return (responded, uploaded == Some(true)),
    };
    let mut body = pin!(reply.body(head, &mut from_backend, &mut to_client));
    if let Some(all) = uploaded {
        return (body.await, all);
    }
    tokio::select! {
        done = &mut upload => match Gone::went_on(done) {
            Some(all) => (body.await, all),
            None => (Responded::CutShort, false),
        },
        responded = &mut body => (responded, false),
    }
}

/// Which side of an upload went away.
#[derive(Clone, Copy)]
enum Gone {
    Client,
    Backend,
}

impl Gone {
    /// Whether the response can still go on after an upload ended so (`None`: the client
    /// left), and if so whether the whole body went (`false`: the backend stopped reading
    /// it, and its answer is whatever it sent before).
    fn went_on(uploaded: Result<(), Gone>) -> Option<bool> {
        match uploaded {
            Ok(()) => Some(true),
            Err(Gone::Backend) => Some(false),
            Err(Gone::Client) => None,
        }
    }
}

/// Copies the rest of a request body from the client to the backend. A client pausing
/// longer than the body timeout is gone: the backend's connection then closes under the
/// part it got, which it so cannot take for a whole request.
async fn upload(
    client: &mut (impl AsyncRead + Unpin),
    body: Upload<'_>,
    backend: &mut (impl AsyncWrite + Unpin),
) -> Result<(), Gone> {
    let Upload {
        inbox,
        mut left,
        timeout,
    } = body;
    while left > 0 {
        if inbox.is_empty() {
            let read = tokio::time::timeout(timeout, inbox.read_from(client, CLIENT_BUFFER));
            if !matches!(read.await, Ok(Ok(n)) if n > 0) {
                return Err(Gone::Client);
            }
        }
        let part = usize::try_from(left).map_or(inbox.len(), |left| left.min(inbox.len()));
        let written = timed(backend.write(&inbox.filled()[..part]))
            .await
            .map_err(|_| Gone::Backend)?;
        if written == 0 {
            return Err(Gone::Backend);
        }
        inbox.consume(written);
        left -= written as u64;
    }
    Ok(())
}

/// Decides a request on the canonical form of its path and, when it is allowed, writes its
/// head for the backend into `out`, with that path and the client's `address`.
async fn prepare<D: Decide>(
    gateway: &Gateway<D>,
    kept: Option<&Backend>,
    head: &RequestHead<'_, '_>,
    address: &str,
    out: &mut Vec<u8>,
) -> (Prepared, Decided<D::Allowed>) {
    let decided = match canonical_path(head.path) {
        Err(refused) => Err(refused),
        Ok(path) => {
            let request = GatewayRequest {
                method: head.method,
                path: &path,
                query: head.query(),
                authorization: head.authorization,
                api_key: head.api_key,
                company: head.company,
                tenant: head.tenant,
                context: head.context,
            };
            gateway.decide.decide(request).await.map(|decision| {
                let upstream = choose(&decision, kept);
                out.clear();
                let context = decision.context().as_bytes();
                head.write_forwarded(&upstream, &path, context, address.as_bytes(), out);
                (decision, upstream)
            })
        }
    };
    let prepared = Prepared {
        head_len: head.len,
        content_length: head.content_length,
        close: head.close,
        to_head: head.method == "HEAD",
        idempotent: head.is_idempotent(),
    };
    (prepared, decided)
}

/// The instance the kept connection goes to while it is healthy, else the decision's:
/// requests spread over instances by client connection, as keep-alive clients do.
fn choose(decision: &impl Forward, kept: Option<&Backend>) -> Arc<Upstream> {
    if let Some(kept) = kept
        && decision.upstreams().len() > 1
        && let Some(same) = decision
            .upstreams()
            .iter()
            .find(|u| u.url == kept.upstream.url)
    {
        return Arc::clone(same);
    }
    Arc::clone(decision.upstream())
}

/// Whether a kept backend connection is still open, as far as the runtime has seen: nothing
/// has arrived on it since its last response (a close would have), or what has is not a
/// close. Costs no system call while nothing has arrived.
fn is_open(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        // Bytes nobody asked for, or the close: either way the connection is done.
        Poll::Ready(Ok(())) => {
            matches!(stream.try_read(&mut [0; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }
}

/// Where a response body ends.
enum BodyEnd {
    Length(u64),
    Chunked(ChunkedEnd),
    UntilClose,
}

impl BodyEnd {
    fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => Self::Length(0),
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::Chunked(ChunkedEnd::default()),
            Framing::UntilClose => Self::UntilClose,
        }
    }

    /// How many of `bytes` (the next ones from the backend) belong to the body.
    fn take(&mut self, bytes: &[u8]) -> Result<usize, chunked::InvalidChunked> {
        match self {
            Self::Length(left) => {
                let part = usize::try_from(*left).map_or(bytes.len(), |l| l.min(bytes.len()));
                *left -= part as u64;
                Ok(part)
            }
            Self::Chunked(end) => end.feed(bytes),
            Self::UntilClose => Ok(bytes.len()),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Self::Length(left) => *left == 0,
            Self::Chunked(end) => end.is_done(),
            Self::UntilClose => false,
        }
    }

    /// Whether the backend closing the connection ends this body whole.
    fn ends_at_close(&self) -> bool {
        matches!(self, Self::UntilClose)
    }
}

/// Writes the gateway's problem response for `error` into `out` (RFC 9457, as the platform
/// API answers).
async fn write_problem(error: Error, close: bool, out: &mut Vec<u8>) {
    let (parts, body) = error.into_response().into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    out.clear();
    let status = parts.status;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or_default()
    );
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    let date = httpdate::fmt_http_date(SystemTime::now());
    let _ = write!(out, "content-length: {}\r\ndate: {date}\r\n", body.len());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
}
