//! The header fields a forwarded message loses, once for both forwarding paths (the relay
//! and hyper's): those that belong to one connection rather than to the message, and, on the
//! way to a module, those only the gateway may send ([`is_gateway_only`]): the caller's
//! credentials, method overrides, the client's address, the platform's own `X-Plinth-*`,
//! and the underscore spellings of all of these and of the framing fields.

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

/// Request fields a module gets from the gateway alone, never from a client
/// ([`plinth_module_sdk::wire::GATEWAY_ONLY_FIELDS`]; here the gateway sends
/// `X-Forwarded-For` with the address it saw). Matched in any case and with `_` for `-`.
pub(super) const GATEWAY_ONLY: [&str; 14] = plinth_module_sdk::wire::GATEWAY_ONLY_FIELDS;

/// The fields that frame a message's body: their underscore spellings are dropped too (the
/// real ones are the transport's to read and write).
const FRAMING: [&str; 2] = ["content-length", "transfer-encoding"];

/// The field the gateway sends with the client's address, as it saw it.
pub(super) const FORWARDED_FOR: &str = "x-forwarded-for";

/// Whether `name` is `known` (lower case) in any case, with `_` for `-`: CGI-style servers
/// (and older WSGI ones) read `Content_Length` and `X_Module_API_Key` as the same variable
/// as `Content-Length` and `X-Module-API-Key`.
fn same_name(name: &str, known: &str) -> bool {
    name.len() == known.len()
        && name
            .bytes()
            .zip(known.bytes())
            .all(|(b, k)| b.eq_ignore_ascii_case(&k) || (k == b'-' && b == b'_'))
}

/// Whether a client's request field `name` must not reach a module: one of
/// [`GATEWAY_ONLY`] or `X-Plinth-*`, in any spelling, or an underscore spelling of a framing
/// or hop-by-hop field. (The real hop-by-hop fields are [`is_hop_by_hop`].)
pub(super) fn is_gateway_only(name: &str) -> bool {
    if is_plinth_field(name) {
        return true;
    }
    // Runs for every field of every forwarded request: a length outside every name's is
    // settled at once.
    if !(9..=22).contains(&name.len()) {
        return false;
    }
    GATEWAY_ONLY.iter().any(|known| same_name(name, known))
        || (name.contains('_')
            && FRAMING
                .iter()
                .chain(&HOP_BY_HOP)
                .any(|known| same_name(name, known)))
}

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
        let upstream = Upstream::new("http://b".into());
        head.write_forwarded(&upstream, head.path, b"signed", b"10.0.0.7", &mut relayed);
        let mut relayed = names_in_head(&relayed);
        // ... and adds what the gateway sends (so does hyper's path, after stripping).
        assert!(
            relayed.remove("host")
                && relayed.remove("x-plinth-context")
                && relayed.remove("x-forwarded-for")
        );
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
    fn fields_only_the_gateway_sends_are_known_in_any_spelling() {
        for name in [
            "Authorization",
            "X-Module-API-Key",
            "X_Module_API_Key",
            "x_module-api_key",
            "Transfer_Encoding",
            "Content_Length",
            "Proxy_Authorization",
            "Keep_Alive",
            "Proxy_Connection",
            "X-HTTP-Method-Override",
            "X_HTTP_Method_Override",
            "x-http-method",
            "X-Method-Override",
            "Forwarded",
            "X-Forwarded-For",
            "X_Forwarded_For",
            "X-Forwarded-Host",
            "X-Real-IP",
            "x_real_ip",
            "True-Client-IP",
            "X-Plinth-Context",
            "X_Plinth_Anything_At_All_However_Long",
        ] {
            assert!(is_gateway_only(name), "{name}");
        }
        for name in [
            "content-length",
            "transfer-encoding",
            "x-custom_field",
            "x-request-id",
            "accept",
            "x-forwarded",
            "x-plinth",
            "content_type",
        ] {
            assert!(!is_gateway_only(name), "{name}");
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
