//! The relay's client-request head parser, and the head it writes for a module's backend, on
//! any bytes: no panic; the head lies within the bytes; the forwarded head parses, in one
//! piece, with the same method, a path under the backend's base, one `Host`, one signed
//! context, the gateway's own `X-Forwarded-For`, at most one `Content-Length` equal to the
//! one the relay frames the body with, and none of the fields only the gateway sends or that
//! frame or belong to one connection, in any spelling (`_` for `-`, any case).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_local::gateway::fuzzing::request_head;

/// Fields a client's request must never carry to a backend, named with `-`, lower case.
const NEVER_FORWARDED: [&str; 21] = [
    "authorization",
    "proxy-authorization",
    "x-module-api-key",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

fuzz_target!(|data: &[u8]| {
    let Some(relayed) = request_head(data) else {
        return;
    };
    assert!(relayed.len <= data.len());
    let Some(forwarded) = relayed.forwarded else {
        return;
    };
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    let parsed = request.parse(&forwarded);
    let text = || String::from_utf8_lossy(&forwarded).into_owned();
    assert_eq!(
        parsed,
        Ok(httparse::Status::Complete(forwarded.len())),
        "{}",
        text()
    );
    assert!(
        request.path.unwrap().starts_with("/base/api/v1/"),
        "{}",
        text()
    );
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    let line = &data[data
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()..];
    let method = line.split(|&b| b == b' ').next().unwrap_or_default();
    assert_eq!(request.method.map(str::as_bytes), Some(method));
    let (mut hosts, mut contexts, mut forwarded_for, mut lengths) = (0, 0, 0, 0);
    for field in request.headers.iter() {
        let name = field.name.to_ascii_lowercase().replace('_', "-");
        assert!(
            !NEVER_FORWARDED.contains(&name.as_str()),
            "{} forwarded: {}",
            field.name,
            text()
        );
        match name.as_str() {
            "host" => hosts += 1,
            "x-plinth-context" => {
                contexts += 1;
                assert_eq!(field.value, b"signed");
            }
            _ if name.starts_with("x-plinth-") => panic!("{} forwarded", field.name),
            "x-forwarded-for" => {
                forwarded_for += 1;
                assert_eq!(field.value, b"10.0.0.1");
            }
            "content-length" => {
                lengths += 1;
                assert_eq!(field.name, "content-length", "the relay's own spelling");
                assert_eq!(field.value, relayed.content_length.to_string().as_bytes());
            }
            _ => {}
        }
    }
    assert_eq!((hosts, contexts, forwarded_for), (1, 1, 1), "{}", text());
    assert!(lengths <= 1);
});
