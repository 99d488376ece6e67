//! Message heads as the relay reads and writes them: a request head taken apart just enough
//! to decide it and pass it on, and a response head checked for how its body is framed.

use std::io::Write as _;
use std::mem::MaybeUninit;

use httparse::{Header, Status};
use plinth_module_sdk::wire::{API_KEY_HEADER, CONTEXT_HEADER, TENANT_HEADER};
use plinth_registry::gateway::{Upstream, is_module_path};
use plinth_registry::identity::COMPANY_HEADER;

use crate::gateway::fields::{FORWARDED_FOR, connection_options, is_gateway_only, is_hop_by_hop};

/// The most header fields in a head the relay handles (as many as hyper's client takes); hyper
/// takes a request with more.
pub(in crate::gateway) const MAX_HEADERS: usize = 100;

/// Room for a head's fields, filled by the parser (nothing to initialise per request).
pub(in crate::gateway) type HeaderSlots<'b> = [MaybeUninit<Header<'b>>; MAX_HEADERS];

pub(in crate::gateway) fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// What a client's bytes are to the relay.
#[derive(Debug)]
pub(in crate::gateway) enum RequestParse<'h, 'b> {
    /// The head is not complete yet.
    Partial,
    /// A module request the relay passes on.
    Relayed(RequestHead<'h, 'b>),
    /// Anything else, which hyper's server serves: a platform route, another HTTP version,
    /// a target not in origin form (or with bytes RFC 3986 does not allow, a fragment among
    /// them), a chunked upload, `Expect`, `Upgrade`, other `Connection` options, or a head
    /// that does not parse (hyper answers it with the right 4xx).
    Other,
}

/// A module request's head, borrowed from the client connection's buffer.
#[derive(Debug)]
pub(in crate::gateway) struct RequestHead<'h, 'b> {
    /// Its length in bytes; the body follows.
    pub len: usize,
    pub method: &'b str,
    /// The request target (origin form: path and query).
    pub target: &'b str,
    pub path: &'b str,
    pub authorization: Option<&'b [u8]>,
    pub api_key: Option<&'b [u8]>,
    /// `X-Plinth-Company`: read for the decision, never forwarded (the context says it).
    pub company: Option<&'b [u8]>,
    /// A module's call: `X-Plinth-Tenant` and the `X-Plinth-Context` it passes on; read for
    /// the decision, never forwarded.
    pub tenant: Option<&'b [u8]>,
    pub context: Option<&'b [u8]>,
    pub content_length: u64,
    /// The client asked for the connection to close after this exchange.
    pub close: bool,
    fields: &'h [Header<'b>],
}

/// How the relay treats a request header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Forwarded,
    /// Dropped on the way: `Host` (the backend's is sent), hop-by-hop fields and those only
    /// the gateway sends ([`crate::gateway::fields`]: forged `X-Plinth-*`, method
    /// overrides, the client's claimed address, underscore spellings of framing and
    /// credential fields).
    Dropped,
    Authorization,
    ApiKey,
    Company,
    Tenant,
    Context,
    ContentLength,
    Connection,
    /// Framing or protocol changes the relay leaves to hyper.
    NotRelayed,
}

fn request_field(name: &str) -> Field {
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        4 if is("host") => Field::Dropped,
        6 if is("expect") => Field::NotRelayed,
        7 if is("upgrade") => Field::NotRelayed,
        10 if is("connection") => Field::Connection,
        13 if is("authorization") => Field::Authorization,
        14 if is("content-length") => Field::ContentLength,
        16 if is(API_KEY_HEADER) => Field::ApiKey,
        16 if is(COMPANY_HEADER) => Field::Company,
        16 if is(CONTEXT_HEADER) => Field::Context,
        15 if is(TENANT_HEADER) => Field::Tenant,
        17 if is("transfer-encoding") => Field::NotRelayed,
        _ if is_hop_by_hop(name) || is_gateway_only(name) => Field::Dropped,
        _ => Field::Forwarded,
    }
}

/// Whether `target` is in origin form with only the bytes RFC 3986 allows in a path and
/// query: no fragment, no bytes a backend might read another way.
fn is_origin_form(target: &str) -> bool {
    target.starts_with('/')
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

/// Parses the request head at the start of `bytes`.
pub(in crate::gateway) fn parse_request<'h, 'b>(
    bytes: &'b [u8],
    slots: &'h mut HeaderSlots<'b>,
) -> RequestParse<'h, 'b> {
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(bytes, slots) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return RequestParse::Partial,
        Err(_) => return RequestParse::Other,
    };
    let (Some(method), Some(target), Some(1)) = (request.method, request.path, request.version)
    else {
        return RequestParse::Other;
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if !is_origin_form(target) || !is_module_path(path) {
        return RequestParse::Other;
    }
    let mut head = RequestHead {
        len,
        method,
        target,
        path,
        authorization: None,
        api_key: None,
        company: None,
        tenant: None,
        context: None,
        content_length: 0,
        close: false,
        fields: request.headers,
    };
    let mut length = None;
    for field in head.fields {
        match request_field(field.name) {
            Field::Forwarded | Field::Dropped => {}
            Field::Authorization => {
                head.authorization.get_or_insert(field.value);
            }
            Field::ApiKey => {
                head.api_key.get_or_insert(field.value);
            }
            Field::Company => {
                head.company.get_or_insert(field.value);
            }
            Field::Tenant => {
                head.tenant.get_or_insert(field.value);
            }
            Field::Context => {
                head.context.get_or_insert(field.value);
            }
            // One length, digits only: anything else is hyper's to refuse.
            Field::ContentLength => match (length, decimal(field.value)) {
                (None, Some(n)) => length = Some(n),
                _ => return RequestParse::Other,
            },
            // Fields named as hop-by-hop here are hyper's path's to drop.
            Field::Connection => {
                for option in connection_options(field.value) {
                    if option.eq_ignore_ascii_case(b"close") {
                        head.close = true;
                    } else if !option.eq_ignore_ascii_case(b"keep-alive") {
                        return RequestParse::Other;
                    }
                }
            }
            Field::NotRelayed => return RequestParse::Other,
        }
    }
    head.content_length = length.unwrap_or(0);
    RequestParse::Relayed(head)
}

/// A `Content-Length` value: ASCII digits that fit in a `u64`.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0, |n, digit| n * 10 + u64::from(digit - b'0')),
    )
}

impl RequestHead<'_, '_> {
    /// Writes the head the backend gets into `out`: the same request line (the backend's
    /// base path first, if its URL has one; `path`, the canonical form of the one sent, with
    /// the query as sent) and fields, without the caller's credentials, hop-by-hop fields
    /// and those only the gateway sends; with the backend's `Host`, the signed context and
    /// the `client`'s address (`X-Forwarded-For`).
    pub fn write_forwarded(
        &self,
        upstream: &Upstream,
        path: &str,
        context: &[u8],
        client: &[u8],
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(upstream.base_path().as_bytes());
        out.extend_from_slice(path.as_bytes());
        // `?` and the query as sent, or nothing.
        out.extend_from_slice(&self.target.as_bytes()[self.path.len()..]);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if let Some(host) = &upstream.host {
            write_field(out, b"host", host.as_bytes());
        }
        for field in self.fields {
            match request_field(field.name) {
                Field::Forwarded => write_field(out, field.name.as_bytes(), field.value),
                // The length as parsed, so that the backend reads the body the relay sends.
                Field::ContentLength => {
                    let _ = write!(out, "content-length: {}\r\n", self.content_length);
                }
                _ => {}
            }
        }
        write_field(out, CONTEXT_HEADER.as_bytes(), context);
        if !client.is_empty() {
            write_field(out, FORWARDED_FOR.as_bytes(), client);
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The query, without its `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.strip_prefix(self.path)?.strip_prefix('?')
    }

    /// Whether the request may be sent again when a kept backend connection turns out
    /// closed before answering (RFC 9110 §9.2.2).
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::gateway) enum Framing {
    /// No body: a response to `HEAD`, 1xx, 204 or 304.
    Empty,
    Length(u64),
    Chunked,
    /// The body runs until the backend closes the connection.
    UntilClose,
}

/// What the relay needs of a backend's response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::gateway) struct ResponseHead {
    /// Its length in bytes; the body follows.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The backend keeps the connection open for another request.
    pub keep_alive: bool,
    /// The head can go to the client as it came: HTTP/1.1, no hop-by-hop field to drop.
    pub verbatim: bool,
}

/// Parses the response head at the start of `bytes`; `to_head`: the request was `HEAD`.
pub(in crate::gateway) fn parse_response(
    bytes: &[u8],
    to_head: bool,
) -> Result<Option<ResponseHead>, String> {
    let mut slots = header_slots();
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        bytes,
        &mut slots,
    );
    let len = match parsed {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("an invalid response head ({e})")),
    };
    let (Some(version), Some(status @ 100..)) = (response.version, response.code) else {
        return Err("an invalid response head".into());
    };
    let mut head = ResponseHead {
        len,
        status,
        framing: Framing::UntilClose,
        keep_alive: version == 1,
        verbatim: version == 1,
    };
    let (mut length, mut chunked) = (None, None);
    for field in response.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            match (length, decimal(field.value)) {
                (None, Some(n)) => length = Some(n),
                (Some(seen), Some(n)) if seen == n => {}
                _ => return Err("an invalid Content-Length".into()),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides: chunked, or a body that runs until the close.
            let last = field
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            head.verbatim = false;
            for option in connection_options(field.value) {
                if option.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    head.keep_alive = true;
                }
            }
        } else if is_hop_by_hop(name) {
            head.verbatim = false;
        }
    }
    head.framing = if to_head || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if let Some(chunked) = chunked {
        // A length beside a coding is dropped (RFC 9112 §6.3, item 3).
        head.verbatim &= length.is_none();
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    if head.framing == Framing::UntilClose {
        head.keep_alive = false;
    }
    Ok(Some(head))
}

/// Writes the client's version of a complete response head (`head` is its bytes) into
/// `out`: HTTP/1.1, hop-by-hop fields dropped (those `Connection` names too) but for
/// `Transfer-Encoding` and `Content-Length` (unless coded), which stay with the body they
/// frame (passed on as it came);
/// `Connection: close` when `close`.
pub(in crate::gateway) fn write_response_head(head: &[u8], close: bool, out: &mut Vec<u8>) {
    let mut slots = header_slots();
    let mut response = httparse::Response::new(&mut []);
    // Parsed once already by `parse_response`: the same bytes parse the same way.
    let _ = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        head,
        &mut slots,
    );
    let status = response.code.unwrap_or(502);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\n",
        response.reason.unwrap_or_default()
    );
    let coded = response
        .headers
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("transfer-encoding"));
    let named: Vec<&[u8]> = response
        .headers
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
        .flat_map(|f| connection_options(f.value))
        .collect();
    for field in response.headers.iter() {
        let name = field.name;
        // The framing fields stay as the body is framed, whatever `Connection` names: the
        // relay passes the body on by them.
        let dropped = if name.eq_ignore_ascii_case("transfer-encoding") {
            false
        } else if name.eq_ignore_ascii_case("content-length") {
            coded
        } else {
            is_hop_by_hop(name)
                || named
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        };
        if !dropped {
            write_field(out, name.as_bytes(), field.value);
        }
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relayed(bytes: &[u8]) -> Option<(usize, u64, bool, Option<Vec<u8>>)> {
        let mut slots = header_slots();
        match parse_request(bytes, &mut slots) {
            RequestParse::Relayed(head) => Some((
                head.len,
                head.content_length,
                head.close,
                head.authorization.map(<[u8]>::to_vec),
            )),
            _ => None,
        }
    }

    #[test]
    fn a_module_request_is_relayed_with_its_credentials_and_length() {
        let request = b"POST /api/v1/financial/invoices?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\nContent-Length: 12\r\n\r\n{\"total\": 1}";
        assert_eq!(
            relayed(request),
            Some((request.len() - 12, 12, false, Some(b"Bearer t".to_vec())))
        );
        let closing = b"GET /api/v1/financial/ HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
        assert_eq!(relayed(closing), Some((closing.len(), 0, true, None)));
    }

    #[test]
    fn what_the_relay_does_not_handle_goes_to_hyper() {
        for request in [
            &b"GET /api/v1/tenants/acme HTTP/1.1\r\n\r\n"[..],
            b"GET /health HTTP/1.1\r\n\r\n",
            b"GET /api/v1/financial/x HTTP/1.0\r\n\r\n",
            b"GET http://a/api/v1/financial/x HTTP/1.1\r\n\r\n",
            b"POST /api/v1/financial/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /api/v1/financial/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST /api/v1/financial/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST /api/v1/financial/x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /api/v1/financial/x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET /api/v1/financial/x HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /api/v1/financial/public/# HTTP/1.1\r\n\r\n",
            b"GET /api/v1/financial/a<b> HTTP/1.1\r\n\r\n",
            b"CONNECT backend:443 HTTP/1.1\r\n\r\n",
        ] {
            let mut slots = header_slots();
            assert!(
                matches!(parse_request(request, &mut slots), RequestParse::Other),
                "{}",
                String::from_utf8_lossy(request)
            );
        }
        let mut slots = header_slots();
        assert!(matches!(
            parse_request(b"GET /api/v1/financial/x HTTP/1.1\r\nHost:", &mut slots),
            RequestParse::Partial
        ));
    }

    #[test]
    fn the_forwarded_head_drops_credentials_hop_by_hop_and_forged_context() {
        let request = b"GET /api/v1/financial/invoices/42?expand=lines HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer t\r\nX-Module-API-Key: k\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\nX-Plinth-Context: forged\r\nx-plinth-tenant: globex\r\nX_Plinth_Context: forged\r\nX-Custom: kept\r\nContent-Length: 002\r\n\r\n{}";
        let mut slots = header_slots();
        let RequestParse::Relayed(head) = parse_request(request, &mut slots) else {
            panic!("relayed");
        };
        assert_eq!(head.path, "/api/v1/financial/invoices/42");
        let mut out = Vec::new();
        let upstream = Upstream::new("http://127.0.0.1:9000/base/".into());
        head.write_forwarded(&upstream, head.path, b"signed", b"10.0.0.7", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /base/api/v1/financial/invoices/42?expand=lines HTTP/1.1\r\nhost: 127.0.0.1:9000\r\nX-Custom: kept\r\ncontent-length: 2\r\nx-plinth-context: signed\r\nx-forwarded-for: 10.0.0.7\r\n\r\n"
        );
    }

    fn framing(head: &[u8], to_head: bool) -> Result<Option<(Framing, bool, bool)>, String> {
        parse_response(head, to_head).map(|h| h.map(|h| (h.framing, h.keep_alive, h.verbatim)))
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        use Framing::*;
        let ok = |fields: &str| format!("HTTP/1.1 200 OK\r\n{fields}\r\n").into_bytes();
        assert_eq!(
            framing(&ok("content-length: 2\r\ndate: x\r\n"), false),
            Ok(Some((Length(2), true, true)))
        );
        assert_eq!(
            framing(&ok("content-length: 2\r\n"), true),
            Ok(Some((Empty, true, true)))
        );
        assert_eq!(
            framing(&ok("transfer-encoding: gzip, chunked\r\n"), false),
            Ok(Some((Chunked, true, true)))
        );
        assert_eq!(
            framing(
                &ok("transfer-encoding: chunked\r\ncontent-length: 5\r\n"),
                false
            ),
            Ok(Some((Chunked, true, false))),
            "the length is dropped"
        );
        assert_eq!(
            framing(&ok("transfer-encoding: gzip\r\n"), false),
            Ok(Some((UntilClose, false, true)))
        );
        assert_eq!(framing(&ok(""), false), Ok(Some((UntilClose, false, true))));
        assert_eq!(
            framing(&ok("content-length: 2\r\nconnection: close\r\n"), false),
            Ok(Some((Length(2), false, false)))
        );
        assert_eq!(
            framing(b"HTTP/1.1 204 No Content\r\n\r\n", false),
            Ok(Some((Empty, true, true)))
        );
        assert_eq!(
            framing(
                b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
                false
            ),
            Ok(Some((Empty, true, true)))
        );
        assert_eq!(
            framing(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n", false),
            Ok(Some((Length(2), false, false)))
        );
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\ncontent-le", false), Ok(None));
        assert!(framing(&ok("content-length: 2\r\ncontent-length: 3\r\n"), false).is_err());
        assert!(framing(&ok("content-length: 2x\r\n"), false).is_err());
        assert!(framing(b"HTTP/1.1 2000 OK\r\n\r\n", false).is_err());
        assert!(framing(b"HTTP/1.1 099 Early\r\n\r\n", false).is_err());
    }

    /// The property of fuzz/fuzz_targets/relay_response_head.rs: a backend's
    /// `Connection: content-length` dropped the length the relay still framed the body by, so
    /// the client read the body until a close that never came, and the next response as it.
    #[test]
    fn a_rewritten_response_head_keeps_the_length_that_frames_its_body() {
        let head = b"HTTP/1.1 200 OK\r\nConnection: Content-Length, x-trace\r\nx-trace: 1\r\nContent-Length: 2\r\n\r\n";
        let mut out = Vec::new();
        write_response_head(head, false, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
        );
        assert_eq!(
            parse_response(&out, false).unwrap().unwrap().framing,
            Framing::Length(2)
        );
    }

    #[test]
    fn a_rewritten_response_head_is_http_1_1_without_hop_by_hop_fields() {
        let head = b"HTTP/1.0 200 Fine\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        let mut out = Vec::new();
        write_response_head(head, true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n"
        );
    }
}
