//! The manifest validator on any text: no panic; a refused document names at least one
//! problem, never the "passed validation but could not be read" one (the two passes and the
//! types disagreeing); an accepted manifest, written out again, is accepted as the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_module_sdk::manifest::{Manifest, ManifestError, validate_manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::from_json_str(text) {
        Ok(manifest) => {
            let written = serde_json::to_value(&manifest).expect("a manifest serialises");
            assert_eq!(
                validate_manifest(&written),
                Ok(manifest),
                "round trip of {written}"
            );
        }
        Err(ManifestError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "refused without a problem");
            // The passes and the types disagreeing is a problem at `$` with this wording (a
            // document's own text is quoted inside a message, never at its start).
            for problem in &problems {
                assert!(
                    !(problem.path == "$"
                        && problem
                            .message
                            .starts_with("the manifest passed validation")),
                    "{}",
                    problem.message
                );
            }
        }
        Err(_) => {}
    }
});
