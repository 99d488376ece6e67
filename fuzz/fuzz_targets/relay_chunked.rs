//! The relay's chunked-body parser (where a chunked body ends) on any bytes, however they are
//! split across reads: no panic, and the same answer — bytes taken, ended or not, refused or
//! not — whole, in two pieces, in pieces of the first byte's length, and byte by byte; it
//! never takes more than it was given, and the part it took as a whole body is one again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_local::gateway::fuzzing::chunked_body;

fuzz_target!(|data: &[u8]| {
    let Some((&stride, body)) = data.split_first() else {
        return;
    };
    let whole = chunked_body(&[body]);
    let split = usize::from(stride).min(body.len());
    let (a, b) = body.split_at(split);
    assert_eq!(chunked_body(&[a, b]), whole, "split at {split}");
    let strided: Vec<&[u8]> = body.chunks(usize::from(stride).max(1)).collect();
    assert_eq!(chunked_body(&strided), whole, "in pieces of {stride}");
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(chunked_body(&bytes), whole, "byte by byte");
    if let Ok((taken, done)) = whole {
        assert!(taken <= body.len());
        assert!(done || taken == body.len(), "an open body takes everything");
        if done {
            assert_eq!(chunked_body(&[&body[..taken]]), Ok((taken, true)));
        }
    }
});
