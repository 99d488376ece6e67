//! Entry points for the coverage-guided fuzz targets (`fuzz/`): the relay's parsers, which are
//! private to the gateway, driven on arbitrary bytes. Not an API: nothing else calls them.

use plinth_registry::gateway::{Upstream, canonical_path};

use super::chunked::ChunkedEnd;
use super::message::{self, RequestParse};

/// What the relay made of a request head it relays.
#[derive(Debug)]
pub struct RelayedHead {
    /// The head's length; the body follows.
    pub len: usize,
    pub content_length: u64,
    /// The head the backend gets, or `None` when the path is refused (a 400).
    pub forwarded: Option<Vec<u8>>,
}

/// Parses a client's request head as the relay does: `None` when it is partial or hyper's to
/// serve; otherwise the head written again for a backend at `http://127.0.0.1:9/base`.
pub fn request_head(bytes: &[u8]) -> Option<RelayedHead> {
    let mut slots = message::header_slots();
    let RequestParse::Relayed(head) = message::parse_request(bytes, &mut slots) else {
        return None;
    };
    let forwarded = canonical_path(head.path).ok().map(|path| {
        let upstream = Upstream::new("http://127.0.0.1:9/base".to_owned());
        let mut out = Vec::new();
        head.write_forwarded(&upstream, &path, b"signed", b"10.0.0.1", &mut out);
        out
    });
    Some(RelayedHead {
        len: head.len,
        content_length: head.content_length,
        forwarded,
    })
}

/// What the relay made of a backend's response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub len: usize,
    pub status: u16,
    /// How its body is delimited: `Empty`, `Length(n)`, `Chunked` or `UntilClose`.
    pub framing: String,
    /// The head the client gets when the relay rewrites it (`close`: with `Connection: close`).
    pub rewritten: Vec<u8>,
}

/// Parses a backend's response head as the relay does (`to_head`: the request was `HEAD`):
/// `Ok(None)` when partial, an error when the relay refuses it (a 502).
pub fn response_head(
    bytes: &[u8],
    to_head: bool,
    close: bool,
) -> Result<Option<ResponseHead>, String> {
    let Some(head) = message::parse_response(bytes, to_head)? else {
        return Ok(None);
    };
    let mut rewritten = Vec::new();
    message::write_response_head(&bytes[..head.len], close, &mut rewritten);
    Ok(Some(ResponseHead {
        len: head.len,
        status: head.status,
        framing: format!("{:?}", head.framing),
        rewritten,
    }))
}

/// Feeds a chunked body to the relay's parser in `pieces`: the bytes it took as the body's,
/// and whether the body ended; why not, when the coding is broken.
pub fn chunked_body(pieces: &[&[u8]]) -> Result<(usize, bool), String> {
    let mut end = ChunkedEnd::default();
    let mut taken = 0;
    for piece in pieces {
        if end.is_done() {
            break;
        }
        taken += end.feed(piece).map_err(|e| e.to_string())?;
    }
    Ok((taken, end.is_done()))
}
