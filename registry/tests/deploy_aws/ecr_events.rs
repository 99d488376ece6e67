//! The EventBridge "ECR Image Action" events, read from real-shaped fixtures.

use plinth_registry::deploy::ecr::{
    ActionResult, ActionType, EcrEventError, EcrImageAction, ImagePush, image_pushed,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn a_successful_push_gives_the_repository_tag_and_digest() {
    let event = EcrImageAction::from_event(fixture("ecr-image-action.json")).unwrap();
    assert_eq!(event.account, "123456789012");
    assert_eq!(event.region, "eu-west-1");
    assert_eq!(event.detail.action_type, ActionType::Push);
    assert_eq!(event.time.unix_timestamp(), 1_763_258_074);
    let push = image_pushed(&event).expect("a push");
    assert_eq!(
        push,
        ImagePush {
            repository: "plinth-financial".into(),
            tag: "1.2.0".into(),
            digest: "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678"
                .into(),
        }
    );
    assert!(push.matches("plinth-financial:1.2.0"));
}

#[test]
fn a_delete_is_not_a_push() {
    let event = EcrImageAction::from_event(fixture("ecr-image-action-delete.json")).unwrap();
    assert_eq!(event.detail.action_type, ActionType::Delete);
    assert_eq!(image_pushed(&event), None);
}

#[test]
fn a_failed_push_is_not_a_push() {
    let event = EcrImageAction::from_event(fixture("ecr-image-action-failed.json")).unwrap();
    assert_eq!(event.detail.result, ActionResult::Failure);
    assert_eq!(event.detail.image_digest, None);
    assert_eq!(image_pushed(&event), None);
}

#[test]
fn an_untagged_push_is_not_a_version() {
    let mut event = fixture("ecr-image-action.json");
    event["detail"].as_object_mut().unwrap().remove("image-tag");
    let event = EcrImageAction::from_event(event).unwrap();
    assert_eq!(image_pushed(&event), None);
}

#[test]
fn other_events_are_refused_with_their_type() {
    let mut event = fixture("ecr-image-action.json");
    event["detail-type"] = "ECR Image Scan".into();
    let error = EcrImageAction::from_event(event).unwrap_err();
    assert!(matches!(error, EcrEventError::OtherEvent { .. }));
    assert_eq!(
        error.to_string(),
        "not an ECR image action: source `aws.ecr`, detail-type `ECR Image Scan`"
    );
}

#[test]
fn an_image_action_without_its_repository_is_malformed() {
    let mut event = fixture("ecr-image-action.json");
    event["detail"]
        .as_object_mut()
        .unwrap()
        .remove("repository-name");
    let error = EcrImageAction::from_event(event).unwrap_err();
    assert!(error.to_string().contains("repository-name"), "{error}");
}
