//! The one canonical form of a module request's path, decided before authorization and
//! forwarded as decided: the gateway's permission check and the backend's router must read
//! the same route. (docs/api.md, "Paths", argues the rule.)
//!
//! [`canonicalize`] is pure (bytes in, canonical text or a [`Refusal`] out), the same on the
//! relay, hyper's path and the authorizer Lambda. It decodes percent-escapes of unreserved
//! characters (RFC 3986 §2.3: `%65xport` is `export`) and writes every other escape's hex in
//! upper case (§6.2.2.1); it refuses what a backend could read as another path: a `;` (path
//! parameters), an escaped delimiter (`%2F`, `%5C`, `%3F`, `%23`, `%3B`), an escaped `%`
//! (decoded twice by some), an escaped control character or NUL, any byte past ASCII
//! (raw, escaped, or an overlong form such as `%C0%AE`), a byte RFC 3986 does not allow in a
//! path, a `.` or `..` segment, a segment ending in `.` or starting or ending with a space,
//! and an empty segment (`//`). A canonical path is its own canonical form, borrowed: the
//! hot path allocates nothing.

use std::borrow::Cow;

/// What in a path a backend could read otherwise than the gateway did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A byte RFC 3986 does not allow in a path (a space, a backslash, a control byte, any
    /// byte past ASCII).
    Byte(u8),
    /// A `;`: path parameters, which some servers (Tomcat, Jetty, Spring) strip before routing.
    Semicolon,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// An escaped `/`, `\`, `?`, `#` or `;`: a backend that decodes before splitting reads a
    /// delimiter there.
    EscapedDelimiter(u8),
    /// `%25`: decoded twice by some, into an escape the gateway never saw.
    DoubleEncoding,
    /// An escaped control character (NUL among them).
    EscapedControl,
    /// An escaped byte past ASCII: UTF-8 a backend may normalise (full-width letters), or an
    /// invalid (overlong) form some decoders read as ASCII.
    NonAscii,
    /// A `.` or `..` segment, after decoding.
    DotSegment,
    /// A segment ending in `.` (`export.`): some servers drop it.
    TrailingDot,
    /// A segment starting or ending with a space (`export%20`): some servers trim it.
    EdgeSpace,
    /// An empty segment (`//`): some servers merge it, others do not.
    EmptySegment,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("no leading `/`"),
            Self::Byte(b'\\') => f.write_str("a backslash"),
            Self::Byte(b) if b.is_ascii_graphic() => write!(f, "a raw `{}`", *b as char),
            Self::Byte(b) if b.is_ascii() => write!(f, "a raw control byte 0x{b:02X}"),
            Self::Byte(b) => write!(f, "a raw byte 0x{b:02X} past ASCII"),
            Self::Semicolon => f.write_str("a `;` (path parameters)"),
            Self::BadEscape => f.write_str("a `%` not followed by two hex digits"),
            Self::EscapedDelimiter(b'/' | b'\\') => f.write_str("an encoded `/` or `\\`"),
            Self::EscapedDelimiter(b) => write!(f, "an encoded `{}`", *b as char),
            Self::DoubleEncoding => f.write_str("an encoded `%` (double encoding)"),
            Self::EscapedControl => f.write_str("an encoded control character"),
            Self::NonAscii => f.write_str("an encoded byte past ASCII"),
            Self::DotSegment => f.write_str("a `.` or `..` segment"),
            Self::TrailingDot => f.write_str("a segment ending in `.`"),
            Self::EdgeSpace => f.write_str("a segment starting or ending with a space"),
            Self::EmptySegment => f.write_str("an empty segment (`//`)"),
        }
    }
}

/// The canonical form of `path` (no query): borrowed when `path` already is it.
pub fn canonicalize(path: &str) -> Result<Cow<'_, str>, Refusal> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(Refusal::NotAbsolute);
    }
    // Written only from the first byte that changes.
    let mut out: Option<String> = None;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'%' {
            let decoded = match (bytes.get(at + 1), bytes.get(at + 2)) {
                (Some(&high), Some(&low)) => hex(high).zip(hex(low)).map(|(h, l)| h << 4 | l),
                _ => None,
            }
            .ok_or(Refusal::BadEscape)?;
            match decoded {
                b'/' | b'\\' | b'?' | b'#' | b';' => {
                    return Err(Refusal::EscapedDelimiter(decoded));
                }
                b'%' => return Err(Refusal::DoubleEncoding),
                0..=0x1F | 0x7F => return Err(Refusal::EscapedControl),
                0x80.. => return Err(Refusal::NonAscii),
                _ if is_unreserved(decoded) => {
                    out.get_or_insert_with(|| path[..at].to_owned())
                        .push(decoded as char);
                }
                _ => {
                    let upper = [
                        b'%',
                        HEX[usize::from(decoded >> 4)],
                        HEX[usize::from(decoded & 15)],
                    ];
                    let upper = std::str::from_utf8(&upper).unwrap_or_default();
                    if let Some(out) = out.as_mut() {
                        out.push_str(upper);
                    } else if &path[at..at + 3] != upper {
                        out = Some(path[..at].to_owned() + upper);
                    }
                }
            }
            at += 3;
            continue;
        }
        if byte == b';' {
            return Err(Refusal::Semicolon);
        }
        if !(is_unreserved(byte) || b"/!$&'()*+,=:@".contains(&byte)) {
            return Err(Refusal::Byte(byte));
        }
        if let Some(out) = out.as_mut() {
            out.push(byte as char);
        }
        at += 1;
    }
    let canonical = out.map_or(Cow::Borrowed(path), Cow::Owned);
    check_segments(&canonical)?;
    Ok(canonical)
}

/// The segment rules, on the decoded path (`/` first, checked): a trailing `/` is kept.
fn check_segments(path: &str) -> Result<(), Refusal> {
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            if segments.peek().is_some() {
                return Err(Refusal::EmptySegment);
            }
            continue;
        }
        if segment == "." || segment == ".." {
            return Err(Refusal::DotSegment);
        }
        if segment.ends_with('.') {
            return Err(Refusal::TrailingDot);
        }
        if segment.starts_with("%20") || segment.ends_with("%20") {
            return Err(Refusal::EdgeSpace);
        }
    }
    Ok(())
}

/// The query parameters a backend may read as the request's method (`_method`, as
/// method-override middleware does), while the gateway authorized the request line's.
pub fn check_query(query: &str) -> Result<(), &'static str> {
    // Cheap first: most queries name no `method` at all.
    if !query
        .as_bytes()
        .windows(6)
        .any(|w| w.eq_ignore_ascii_case(b"method"))
    {
        return Ok(());
    }
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        let name = name.replace("%5F", "_").replace("%5f", "_");
        if name.eq_ignore_ascii_case("_method") {
            return Err("_method");
        }
    }
    Ok(())
}

/// RFC 3986 §2.3.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

const HEX: [u8; 16] = *b"0123456789ABCDEF";

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(path: &str) -> Result<String, Refusal> {
        canonicalize(path).map(Cow::into_owned)
    }

    #[test]
    fn a_canonical_path_is_borrowed_as_it_is() {
        for path in [
            "/",
            "/invoices/42",
            "/invoices/",
            "/reports/2026.12",
            "/files/a%20b",
            "/v1.0/x..y",
            "/a-b_c~d/!$&'()*+,=:@",
            "/x%3A%20y",
        ] {
            assert!(
                matches!(canonicalize(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_written_in_upper_case() {
        assert_eq!(canonical("/entries/%65xport"), Ok("/entries/export".into()));
        assert_eq!(canonical("/%7E%41%2D%5f%30"), Ok("/~A-_0".into()));
        assert_eq!(canonical("/a%3a%2cb"), Ok("/a%3A%2Cb".into()));
        assert_eq!(canonical("/%2e%2e.x"), Ok("/...x".into()));
    }

    #[test]
    fn paths_a_backend_could_resolve_elsewhere_are_refused() {
        for (path, refusal) in [
            ("invoices", Refusal::NotAbsolute),
            ("", Refusal::NotAbsolute),
            ("/reports/x/../../invoices", Refusal::DotSegment),
            ("/reports/./x", Refusal::DotSegment),
            ("/reports/%2E%2e/invoices", Refusal::DotSegment),
            ("/reports/..", Refusal::DotSegment),
            ("/reports/x%2Finvoices", Refusal::EscapedDelimiter(b'/')),
            ("/reports/x%5cinvoices", Refusal::EscapedDelimiter(b'\\')),
            ("/reports/x%3Fy", Refusal::EscapedDelimiter(b'?')),
            ("/reports/x%23y", Refusal::EscapedDelimiter(b'#')),
            ("/reports/x%3By", Refusal::EscapedDelimiter(b';')),
            ("/reports\\..\\invoices", Refusal::Byte(b'\\')),
            ("/entries/export;x", Refusal::Semicolon),
            ("/public/..;/entries/export", Refusal::Semicolon),
            ("/public/%2e%2e;/entries", Refusal::Semicolon),
            ("/entries/export.", Refusal::TrailingDot),
            ("/entries/export%2E", Refusal::TrailingDot),
            ("/entries/...", Refusal::TrailingDot),
            ("/entries/export%20", Refusal::EdgeSpace),
            ("/entries/%20export", Refusal::EdgeSpace),
            ("/entries/export%09", Refusal::EscapedControl),
            ("/entries/..%00", Refusal::EscapedControl),
            ("/entries/%7f", Refusal::EscapedControl),
            ("/entries/%EF%BD%85xport", Refusal::NonAscii),
            ("/entries/%c0%ae%c0%ae", Refusal::NonAscii),
            ("/entries/%252e%252e", Refusal::DoubleEncoding),
            ("/entries/%2", Refusal::BadEscape),
            ("/entries/%zz", Refusal::BadEscape),
            ("/entries/%", Refusal::BadEscape),
            ("/entries/éxport", Refusal::Byte(0xC3)),
            ("/entries/ex port", Refusal::Byte(b' ')),
            ("/entries/x\0", Refusal::Byte(0)),
            ("/entries//export", Refusal::EmptySegment),
            ("//entries", Refusal::EmptySegment),
            ("/entries/a\"b", Refusal::Byte(b'"')),
        ] {
            assert_eq!(canonical(path), Err(refusal), "{path}");
        }
    }

    #[test]
    fn the_refusals_say_what_in_words() {
        assert_eq!(Refusal::DotSegment.to_string(), "a `.` or `..` segment");
        assert_eq!(
            Refusal::EscapedDelimiter(b'\\').to_string(),
            "an encoded `/` or `\\`"
        );
        assert_eq!(Refusal::Byte(b'\\').to_string(), "a backslash");
        assert_eq!(
            Refusal::Byte(0xC3).to_string(),
            "a raw byte 0xC3 past ASCII"
        );
    }

    #[test]
    fn the_canonical_form_is_its_own() {
        for path in ["/entries/%65xport", "/a%3a%2cb", "/%7E%41", "/x/%2e%2e.y/"] {
            let once = canonical(path).unwrap();
            assert!(
                matches!(canonicalize(&once), Ok(Cow::Borrowed(_))),
                "{path}"
            );
        }
    }

    /// What `cargo fuzz` will ask of it, over paths made of the bytes that matter: it never
    /// panics, its output is its own canonical form, and it refuses or keeps every dot segment.
    #[test]
    fn any_path_is_canonical_once_or_refused() {
        const BYTES: &[u8] = b"%/.;2eEfF5cC0a~ \\\x80:";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let len = (next() % 14) as usize;
            let bytes: Vec<u8> = std::iter::once(b'/')
                .chain((0..len).map(|_| BYTES[(next() % BYTES.len() as u64) as usize]))
                .collect();
            let path = String::from_utf8_lossy(&bytes);
            if let Ok(canonical) = canonicalize(&path) {
                assert!(
                    matches!(canonicalize(&canonical), Ok(Cow::Borrowed(_))),
                    "{path} → {canonical}"
                );
                assert!(
                    !canonical.split('/').any(|s| s == "." || s == ".."),
                    "{path} → {canonical}"
                );
            }
        }
    }

    #[test]
    fn a_method_override_in_the_query_is_found_however_spelt() {
        for query in [
            "_method=DELETE",
            "a=1&_METHOD=put",
            "%5Fmethod=DELETE",
            "x&_method",
        ] {
            assert_eq!(check_query(query), Err("_method"), "{query}");
        }
        for query in ["", "method=card", "payment_method=card", "a=_method"] {
            assert_eq!(check_query(query), Ok(()), "{query}");
        }
    }
}
