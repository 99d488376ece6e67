//! The relay's backend-response head parser, and the head it writes for the client when it
//! rewrites one, on any bytes: no panic; the head parsed lies within the bytes; the rewritten
//! head parses again, with the same status and the same body framing (the relay passes the
//! body on as the backend framed it, so the client must read the same framing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_local::gateway::fuzzing::response_head;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let (to_head, close) = (flags & 1 == 1, flags & 2 == 2);
    let Ok(Some(head)) = response_head(bytes, to_head, close) else {
        return;
    };
    assert!(head.len <= bytes.len());
    let again = match response_head(&head.rewritten, to_head, close) {
        Ok(Some(again)) => again,
        // A head of the relay's most fields (100) with `connection: close` added has one more
        // than the relay itself takes from a backend; HTTP sets no limit, so it must parse.
        Err(e) if e.contains("too many headers") => {
            let mut fields = [httparse::EMPTY_HEADER; 128];
            let parsed = httparse::Response::new(&mut fields).parse(&head.rewritten);
            assert_eq!(parsed, Ok(httparse::Status::Complete(head.rewritten.len())));
            return;
        }
        other => panic!(
            "the rewritten head {:?} does not parse: {other:?}",
            String::from_utf8_lossy(&head.rewritten)
        ),
    };
    assert_eq!(again.len, head.rewritten.len());
    assert_eq!(again.status, head.status);
    assert_eq!(
        again.framing,
        head.framing,
        "the client reads another framing than the relay forwards: {:?} -> {:?}",
        String::from_utf8_lossy(&bytes[..head.len]),
        String::from_utf8_lossy(&head.rewritten)
    );
});
