//! Finding 11 (issue 18), on the emulator: a pushed image that carries its manifest (the OCI
//! annotation `dev.plinth.manifest`, as `docker buildx build --annotation` writes it) becomes a
//! published version with the pushed digest, read back from ECR with `BatchGetImage`; a push
//! that would change the digest of a published version is refused and reported, never applied.

use aws_config::SdkConfig;
use axum::http::{Method, StatusCode};
use base64::Engine;
use plinth_registry::catalog::{IMAGE_REFUSED, PushOutcome};
use plinth_registry::deploy::ecr::{EcrImageAction, EcrImages};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::moto::{ecr_repository, sdk, unique_module};
use crate::support::api::{TestPlatform, financial, operator};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The example financial module at `version`, its image in `repository`.
fn financial_at(repository: &str, version: &str) -> Value {
    let mut manifest = financial();
    manifest["version"] = version.into();
    manifest["backend"]["image"] = format!("{repository}:{version}").into();
    manifest
}

/// Pushes an OCI image whose manifest carries `carried` (and `build`, so that two builds of
/// one version are two images), as buildx does; gives back the digest ECR reports.
async fn push_carrying(
    sdk: &SdkConfig,
    repository: &str,
    tag: &str,
    carried: &Value,
    build: &str,
) -> String {
    let mut image = fixture("oci-image-manifest-annotated.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(carried.to_string());
    image["annotations"]["dev.plinth.manifest"] = encoded.into();
    let layer: String = Sha256::digest(format!("{repository}:{tag}:{build}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    image["layers"][1]["digest"] = format!("sha256:{layer}").into();
    let pushed = aws_sdk_ecr::Client::new(sdk)
        .put_image()
        .repository_name(repository)
        .image_tag(tag)
        .image_manifest(image.to_string())
        .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("put image");
    pushed
        .image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .expect("image digest")
        .to_owned()
}

/// The event ECR sends for that push.
fn push_event(repository: &str, tag: &str, digest: &str) -> EcrImageAction {
    let mut event = fixture("ecr-image-action-oci.json");
    event["detail"]["repository-name"] = repository.into();
    event["detail"]["image-tag"] = tag.into();
    event["detail"]["image-digest"] = digest.into();
    EcrImageAction::from_event(event).expect("an image action")
}

/// The published version as the API shows it.
async fn version(p: &TestPlatform, number: &str) -> Value {
    let versions = p
        .call(
            Method::GET,
            "/api/v1/modules/financial/versions",
            operator(),
            None,
        )
        .await;
    versions
        .expect(StatusCode::OK)
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == number)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn finding_11_a_pushed_image_carrying_its_manifest_is_published_with_its_digest() {
    let test = "finding_11_a_pushed_image_carrying_its_manifest_is_published_with_its_digest";
    let Some(sdk) = sdk(test).await else { return };
    let repository = unique_module("plinth-pub");
    ecr_repository(&sdk, &repository).await;
    let images = EcrImages::new(&sdk);
    let p = TestPlatform::embedded();
    // The first version is an admin's; its image is pushed afterwards and carries the same
    // manifest: the digest is recorded on it.
    let first = financial_at(&repository, "1.0.0");
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(first.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
    let digest = push_carrying(&sdk, &repository, "1.0.0", &first, "a").await;
    let catalog = &p.app.plane.catalog;
    let outcome = catalog
        .image_action(&images, &push_event(&repository, "1.0.0", &digest))
        .await
        .unwrap();
    assert_eq!(outcome.recorded.len(), 1, "{outcome:?}");
    assert_eq!(version(&p, "1.0.0").await["image_digest"], digest);

    // The next version comes with its image alone.
    let next = financial_at(&repository, "1.1.0");
    let digest = push_carrying(&sdk, &repository, "1.1.0", &next, "a").await;
    let event = push_event(&repository, "1.1.0", &digest);
    let outcome = catalog.image_action(&images, &event).await.unwrap();
    assert_eq!(
        outcome.published.as_ref().map(|v| v.version.as_str()),
        Some("1.1.0"),
        "{outcome:?}"
    );
    let published = version(&p, "1.1.0").await;
    assert_eq!(published["image_digest"], digest, "{published}");
    assert_eq!(published["manifest"], next);
    assert_eq!(
        published["published_by"],
        format!("ecr:123456789012/{repository}")
    );
    assert!(p.events().contains(&"module.version.published".to_string()));
    // EventBridge delivers at least once: the same event again changes nothing.
    let again = catalog.image_action(&images, &event).await.unwrap();
    assert_eq!(again, PushOutcome::default());
}

#[tokio::test]
async fn finding_11_a_repush_that_would_change_a_published_digest_is_refused_and_reported() {
    let test = "finding_11_a_repush_that_would_change_a_published_digest_is_refused_and_reported";
    let Some(sdk) = sdk(test).await else { return };
    let repository = unique_module("plinth-rep");
    ecr_repository(&sdk, &repository).await;
    let images = EcrImages::new(&sdk);
    let p = TestPlatform::embedded();
    let first = financial_at(&repository, "1.0.0");
    p.call(
        Method::POST,
        "/api/v1/modules",
        operator(),
        Some(first.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
    let next = financial_at(&repository, "1.1.0");
    let original = push_carrying(&sdk, &repository, "1.1.0", &next, "a").await;
    let catalog = &p.app.plane.catalog;
    catalog
        .image_action(&images, &push_event(&repository, "1.1.0", &original))
        .await
        .unwrap();

    // Another build of 1.1.0 pushed under the same tag: a new digest.
    let rebuilt = push_carrying(&sdk, &repository, "1.1.0", &next, "b").await;
    assert_ne!(
        rebuilt, original,
        "the emulator gives the rebuild its own digest"
    );
    let outcome = catalog
        .image_action(&images, &push_event(&repository, "1.1.0", &rebuilt))
        .await
        .unwrap();
    assert!(
        outcome.published.is_none() && outcome.recorded.is_empty(),
        "{outcome:?}"
    );
    let refusal = &outcome.refused[0];
    assert_eq!(refusal.recorded_digest.as_deref(), Some(original.as_str()));
    assert!(
        refusal.reason.contains("would change a published version"),
        "{refusal:?}"
    );
    assert_eq!(
        version(&p, "1.1.0").await["image_digest"],
        original,
        "unchanged"
    );

    let reported: Vec<Value> = p
        .bus
        .recent()
        .into_iter()
        .filter(|e| e.detail_type == IMAGE_REFUSED)
        .map(|e| Value::Object(e.detail))
        .collect();
    assert_eq!(reported.len(), 1);
    assert_eq!(
        (
            &reported[0]["recorded_digest"],
            &reported[0]["image_digest"]
        ),
        (&json!(original), &json!(rebuilt))
    );
    assert_eq!(reported[0]["module"], "financial");
    assert_eq!(reported[0]["version"], "1.1.0");
}

#[tokio::test]
async fn finding_11_an_image_index_with_provenance_publishes_from_its_platform_image() {
    let test = "finding_11_an_image_index_with_provenance_publishes_from_its_platform_image";
    let Some(sdk) = sdk(test).await else { return };
    let repository = unique_module("plinth-idx");
    ecr_repository(&sdk, &repository).await;
    let p = TestPlatform::embedded();
    let first = financial_at(&repository, "1.0.0");
    p.call(Method::POST, "/api/v1/modules", operator(), Some(first))
        .await
        .expect(StatusCode::CREATED);
    // buildx with provenance pushes the platform image by digest, then an index listing it
    // and its attestation under the tag; `manifest:` annotations sit on the platform image.
    let next = financial_at(&repository, "1.2.0");
    let platform_image = push_carrying(&sdk, &repository, "1.2.0-linux-arm64", &next, "a").await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": platform_image,
             "size": 1187, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": format!("sha256:{}", "d".repeat(64)), "size": 566,
             "annotations": {"vnd.docker.reference.digest": platform_image,
                             "vnd.docker.reference.type": "attestation-manifest"},
             "platform": {"architecture": "unknown", "os": "unknown"}}
        ]
    });
    let pushed = aws_sdk_ecr::Client::new(&sdk)
        .put_image()
        .repository_name(&repository)
        .image_tag("1.2.0")
        .image_manifest(index.to_string())
        .image_manifest_media_type("application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .expect("put index");
    let digest = pushed
        .image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .expect("index digest")
        .to_owned();
    let outcome = p
        .app
        .plane
        .catalog
        .image_action(
            &EcrImages::new(&sdk),
            &push_event(&repository, "1.2.0", &digest),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.published.map(|v| (v.version, v.image_digest)),
        Some(("1.2.0".to_owned(), digest.clone())),
        "the version runs the index the tag names"
    );
    assert_eq!(version(&p, "1.2.0").await["image_digest"], digest);
}
