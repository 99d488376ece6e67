//! The header fields a forwarded message loses, once for both forwarding paths (the relay
//! and hyper's): those that belong to one connection rather than to the message, and, on the
//! way to a module, the caller's credentials and the platform's own `X-Plinth-*`.

use axum::http::header::CONNECTION;
use axum::http::{HeaderMap, HeaderName};

/// The fields that belong to one connection, not to the message: never forwarded either way
/// (RFC 9110 §7.6.1; `Trailer` and the `Proxy-Authenticate`/`-Authorization` pair as RFC 2616
/// §13.5.1 lists them). So is every field a message's `Connection` names
/// ([`connection_options`]).
pub(super) const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is one of [`HOP_BY_HOP`], in any case.
pub(super) fn is_hop_by_hop(name: &str) -> bool {
    // Runs for every field of every forwarded message: most names are longer than any of
    // these, and `eq_ignore_ascii_case` compares lengths first.
    name.len() <= 19 && HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
}

/// The options a `Connection` value lists (`close`, `keep-alive`, or the name of a field
/// that is hop-by-hop in this message).
pub(super) fn connection_options(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|option| !option.is_empty())
}

/// A header in the platform's namespace, `X-Plinth-*`, also spelt with underscores
/// (`X_Plinth_Context`), which CGI-style backends read as the same variable: only the
/// gateway sends these to a module.
pub(super) fn is_plinth_field(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() >= 9
        && name[..9]
            .iter()
            .zip(b"x-plinth-")
            .all(|(&b, &p)| b.eq_ignore_ascii_case(&p) || (p == b'-' && b == b'_'))
}

/// Removes the hop-by-hop fields of `headers` — [`HOP_BY_HOP`] and those its `Connection`
/// names — and every other field `also` names. One pass over the names present, which is
/// cheaper than a look-up per name that might be: usually nothing is removed, and then
/// nothing is allocated either.
pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    let named: Vec<HeaderName> = match headers.get(CONNECTION) {
        None => Vec::new(),
        Some(_) => headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(|value| connection_options(value.as_bytes()))
            .filter_map(|option| HeaderName::from_bytes(option).ok())
            .collect(),
    };
    let doomed =
        |name: &HeaderName| is_hop_by_hop(name.as_str()) || named.contains(name) || also(name);
    if !headers.keys().any(doomed) {
        return;
    }
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| doomed(name))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use plinth_registry::gateway::Upstream;

    use super::*;
    use crate::gateway::proxy::{strip_request_headers, strip_response_headers};
    use crate::gateway::relay::message::{self, RequestParse};

    /// Every hop-by-hop field of the table, one named by `Connection`, and two that stay.
    const RESPONSE: &str = "HTTP/1.1 200 OK\r\nconnection: keep-alive, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nproxy-connection: keep-alive\r\nproxy-authenticate: Basic\r\nproxy-authorization: Basic x\r\nte: trailers\r\ntrailer: x-sum\r\nupgrade: h2c\r\ncontent-type: text/plain\r\nx-kept: 1\r\n";

    fn names_in_head(head: &[u8]) -> BTreeSet<String> {
        String::from_utf8_lossy(head)
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, _)| name.to_ascii_lowercase())
            .collect()
    }

    fn header_map(head: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in head.lines().skip(1).filter_map(|l| l.split_once(": ")) {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    fn names_in_map(headers: &HeaderMap) -> BTreeSet<String> {
        headers
            .keys()
            .map(|name| name.as_str().to_owned())
            .collect()
    }

    /// What a response keeps of `fields` through the relay, and through hyper's path.
    fn response_through_both(fields: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let head = format!("{RESPONSE}{fields}\r\n");
        let parsed = message::parse_response(head.as_bytes(), false)
            .unwrap()
            .unwrap();
        assert!(
            !parsed.verbatim,
            "a head with hop-by-hop fields is rewritten"
        );
        let mut relayed = Vec::new();
        message::write_response_head(head.as_bytes(), false, &mut relayed);
        let mut proxied = header_map(&head);
        strip_response_headers(&mut proxied);
        (names_in_head(&relayed), names_in_map(&proxied))
    }

    #[test]
    fn the_table_is_what_both_paths_drop_from_responses() {
        let kept = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let (relayed, proxied) = response_through_both("content-length: 2\r\n");
        assert_eq!(relayed, proxied);
        assert_eq!(relayed, kept(&["content-length", "content-type", "x-kept"]));

        // A coded body: the relay passes its bytes on as they came, so their coding stays
        // with them; hyper decodes the body and frames it again, with a coding of its own.
        let (relayed, proxied) = response_through_both("transfer-encoding: chunked\r\n");
        assert_eq!(
            relayed,
            kept(&["content-type", "transfer-encoding", "x-kept"])
        );
        assert_eq!(proxied, kept(&["content-type", "x-kept"]));
    }

    #[test]
    fn the_table_is_what_both_paths_drop_from_requests() {
        let kept = ["accept", "x-custom"];
        // The relay forwards this one, without its hop-by-hop fields ...
        let request = "GET /api/v1/financial/x HTTP/1.1\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\nproxy-connection: keep-alive\r\nproxy-authenticate: Basic\r\nproxy-authorization: Basic x\r\nte: trailers\r\ntrailer: x-sum\r\naccept: */*\r\nx-custom: 1\r\n\r\n";
        let mut slots = message::header_slots();
        let RequestParse::Relayed(head) = message::parse_request(request.as_bytes(), &mut slots)
        else {
            panic!("relayed");
        };
        let mut relayed = Vec::new();
        head.write_forwarded(&Upstream::new("http://b".into()), b"signed", &mut relayed);
        let mut relayed = names_in_head(&relayed);
        // ... and adds what the gateway sends (so does hyper's path, after stripping).
        assert!(relayed.remove("host") && relayed.remove("x-plinth-context"));
        let mut proxied = header_map(request);
        strip_request_headers(&mut proxied);
        assert_eq!(relayed, names_in_map(&proxied));
        assert_eq!(relayed, kept.map(String::from).into());

        // ... and leaves these to hyper's path, which drops them as well: a body framed by
        // chunks, a protocol change, a field named by `Connection`.
        for fields in [
            "transfer-encoding: chunked\r\n",
            "upgrade: websocket\r\nconnection: upgrade\r\n",
            "connection: x-hop\r\nx-hop: 1\r\n",
        ] {
            let request = format!(
                "POST /api/v1/financial/x HTTP/1.1\r\naccept: */*\r\nx-custom: 1\r\n{fields}\r\n"
            );
            let mut slots = message::header_slots();
            assert!(
                matches!(
                    message::parse_request(request.as_bytes(), &mut slots),
                    RequestParse::Other
                ),
                "{fields}"
            );
            let mut proxied = header_map(&request);
            strip_request_headers(&mut proxied);
            assert_eq!(
                names_in_map(&proxied),
                kept.map(String::from).into(),
                "{fields}"
            );
        }
    }

    #[test]
    fn hop_by_hop_names_match_in_any_case() {
        for hop in HOP_BY_HOP {
            assert!(is_hop_by_hop(hop));
            assert!(is_hop_by_hop(&hop.to_ascii_uppercase()));
        }
        for end_to_end in ["content-length", "trailers", "tes", "host", "x-keep-alive"] {
            assert!(!is_hop_by_hop(end_to_end), "{end_to_end}");
        }
        let options: Vec<&[u8]> = connection_options(b" close,, X-Hop ,keep-alive").collect();
        assert_eq!(options, [&b"close"[..], b"X-Hop", b"keep-alive"]);
    }
}
