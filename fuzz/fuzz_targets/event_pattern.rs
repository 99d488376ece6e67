//! The event-pattern parser and matcher on any pattern and any event (JSON texts split at
//! the first 0xFF byte, which no JSON text holds; without one, the text is the pattern and
//! the event is EventBridge's EC2 sample): no panic, no unbounded recursion; a valid pattern
//! keeps the source it was parsed from, parses again from it as the same pattern, and
//! matches an event the same way twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_module_sdk::events::pattern::Pattern;
use serde_json::Value;

const SAMPLE: &str = r#"{"version":"0","id":"ddddd4-aaaa-7777-4444-345dd43cc333",
"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2",
"account":"012345679012","time":"2017-10-02T16:24:49Z","region":"us-east-1",
"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
"detail":{"c-count":5,"d-count":3,"x-limit":301.8,"source-ip":"10.0.0.33",
"instance-id":"i-000000aaaaaa00000","state":"running"}}"#;

fuzz_target!(|data: &[u8]| {
    let (pattern, event) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, SAMPLE.as_bytes()),
    };
    let Ok(pattern) = serde_json::from_slice::<Value>(pattern) else {
        return;
    };
    let Ok(parsed) = Pattern::parse(&pattern) else {
        return;
    };
    assert_eq!(parsed.as_value(), &pattern);
    assert_eq!(Pattern::parse(parsed.as_value()).as_ref(), Ok(&parsed));
    let Ok(event) = serde_json::from_slice::<Value>(event) else {
        return;
    };
    let matched = parsed.matches(&event);
    assert_eq!(parsed.matches(&event), matched);
});
