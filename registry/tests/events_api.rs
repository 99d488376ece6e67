//! Subscription patterns through the HTTP API: publishing a version whose manifest subscribes
//! with a pattern EventBridge would refuse is a 422 naming the subscription and the reason.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;

use support::api::{TestPlatform, fixture, operator};

#[tokio::test]
async fn a_manifest_with_an_invalid_subscription_pattern_is_not_published() {
    let p = TestPlatform::embedded();
    let broken =
        fixture("module-sdk/tests/fixtures/manifests/broken/invalid-subscription-pattern.json");
    let refused = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(broken))
        .await;
    let body = refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "problem");
    assert_eq!(
        body["errors"],
        json!([
            {
                "path": "events.subscribes[1].pattern",
                "message": "Event pattern is not valid. Reason: Bottom must be less than top (at `detail.amount[0].numeric`)"
            },
            {
                "path": "events.subscribes[2].pattern",
                "message": "Event pattern is not valid. Reason: There must have at least 2 Objects in $or relationship. (at `$or`)"
            }
        ])
    );
    let list = p
        .call(Method::GET, "/api/v1/modules", operator(), None)
        .await;
    assert_eq!(
        list.expect(StatusCode::OK),
        &json!([]),
        "nothing was published"
    );
    assert!(p.events().is_empty());
}
