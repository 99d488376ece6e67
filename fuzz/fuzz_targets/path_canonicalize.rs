//! `plinth_registry::gateway::path::canonicalize` on any path: no panic, and its answer is
//! the one canonical form — canonical again as it is (borrowed), written only when it
//! differs, ASCII with no `;` and upper-case escapes of reserved bytes only, naming the same
//! resource as the path sent (both decode to the same bytes).
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use plinth_registry::gateway::canonical_path;
use plinth_registry::gateway::path::canonicalize;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    // The 400 the gateway answers names the path: building it must not panic either.
    let _ = canonical_path(path).map_err(|e| e.to_string());
    let Ok(canonical) = canonicalize(path) else {
        return;
    };
    if let Cow::Owned(owned) = &canonical {
        assert_ne!(owned, path, "an unchanged path is borrowed, not copied");
    }
    match canonicalize(&canonical) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, &*canonical, "idempotent"),
        other => panic!("{canonical:?} is not canonical again: {other:?}"),
    }
    let bytes = canonical.as_bytes();
    assert_eq!(bytes.first(), Some(&b'/'));
    for (i, &byte) in bytes.iter().enumerate() {
        assert!(
            byte.is_ascii_graphic(),
            "byte 0x{byte:02X} in {canonical:?}"
        );
        assert_ne!(byte, b';');
        if byte == b'%' {
            let escape = &bytes[i + 1..i + 3];
            assert!(
                escape
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)),
                "escape not upper-case hex in {canonical:?}"
            );
            let decoded = u8::from_str_radix(std::str::from_utf8(escape).unwrap(), 16).unwrap();
            assert!(
                !(decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded)),
                "an unreserved byte left escaped in {canonical:?}"
            );
        }
    }
    assert_eq!(
        decode(path),
        decode(&canonical),
        "{path:?} -> {canonical:?}"
    );
});

/// Every escape decoded, as a backend that decodes before routing reads the path.
fn decode(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            if let Some(byte) = bytes
                .get(at + 1..at + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}
