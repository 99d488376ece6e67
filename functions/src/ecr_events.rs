//! The ECR-event handler: a pushed image that carries its Plinth manifest (the OCI annotation
//! `dev.plinth.manifest`) publishes it as a version with the image's digest; one that carries
//! none records its digest on the published versions that name it, so installs run exactly
//! the image that was pushed. A push that would change a published version is refused and
//! reported (`module.image.refused`), never applied: see `plinth_registry::catalog`.

use plinth_registry::catalog::PushOutcome;
use plinth_registry::deploy::ecr::{EcrImageAction, PushedImages};
use plinth_registry::{App, Error, Result};
use serde_json::Value;

/// Handles one "ECR Image Action" event; deletes, failures and untagged pushes change nothing.
///
/// # Errors
/// `BadRequest` for an event that is not an ECR image action; `Unavailable` when the image or
/// the store cannot be read (the event is delivered again).
pub async fn handle(app: &App, images: &dyn PushedImages, event: Value) -> Result<PushOutcome> {
    let action = EcrImageAction::from_event(event).map_err(|e| Error::BadRequest(e.to_string()))?;
    app.plane.catalog.image_action(images, &action).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture, operator};
    use async_trait::async_trait;
    use axum::http::{Method, StatusCode};
    use base64::Engine;
    use plinth_module_sdk::ModuleName;
    use plinth_registry::catalog::RecordedImage;
    use plinth_registry::deploy::DeployError;
    use plinth_registry::deploy::ecr::ImagePush;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";
    const OTHER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    /// An image registry whose images carry this annotation (or none).
    #[derive(Debug)]
    struct Carrying(Option<String>);

    #[async_trait]
    impl PushedImages for Carrying {
        async fn carried_manifest(&self, _: &ImagePush) -> Result<Option<String>, DeployError> {
            Ok(self.0.clone())
        }
    }

    const PLAIN: Carrying = Carrying(None);

    fn carrying(manifest: &Value) -> Carrying {
        let text = manifest.to_string();
        Carrying(Some(base64::engine::general_purpose::STANDARD.encode(text)))
    }

    /// The push fixture, re-tagged as `tag` with `digest`.
    fn pushed(tag: &str, digest: &str) -> Value {
        let mut event = fixture("ecr-image-action.json");
        event["detail"]["image-tag"] = tag.into();
        event["detail"]["image-digest"] = digest.into();
        event
    }

    fn financial_at(version: &str) -> Value {
        let mut manifest = crate::testkit::financial();
        manifest["version"] = version.into();
        manifest["backend"]["image"] = format!("plinth-financial:{version}").into();
        manifest
    }

    async fn image_digest(kit: &Kit, version: &str) -> Option<String> {
        let module = ModuleName::parse("financial").unwrap();
        kit.app
            .plane
            .catalog
            .version(&module, version)
            .await
            .unwrap()
            .image_digest
    }

    fn events(kit: &Kit, detail_type: &str) -> Vec<Value> {
        kit.bus
            .recent()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| Value::Object(e.detail))
            .collect()
    }

    #[tokio::test]
    async fn a_push_is_recorded_against_the_version_that_names_the_image() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        let outcome = handle(&kit.app, &PLAIN, fixture("ecr-image-action.json"))
            .await
            .unwrap();
        let expected = RecordedImage {
            module: "financial".into(),
            version: "1.0.0".into(),
            image_digest: DIGEST.into(),
        };
        assert_eq!(outcome.recorded, vec![expected]);
        let module = ModuleName::parse("financial").unwrap();
        let version = kit
            .app
            .plane
            .catalog
            .version(&module, "1.0.0")
            .await
            .unwrap();
        assert_eq!(version.image_digest.as_deref(), Some(DIGEST));
        // The same event again (EventBridge delivers at least once) changes nothing.
        assert_eq!(
            handle(&kit.app, &PLAIN, fixture("ecr-image-action.json"))
                .await
                .unwrap(),
            PushOutcome::default()
        );
    }

    #[tokio::test]
    async fn deletes_and_failed_pushes_record_nothing() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        for name in [
            "ecr-image-action-delete.json",
            "ecr-image-action-failed.json",
        ] {
            assert_eq!(
                handle(&kit.app, &PLAIN, fixture(name)).await.unwrap(),
                PushOutcome::default(),
                "{name}"
            );
        }
        let module = ModuleName::parse("financial").unwrap();
        assert_eq!(
            kit.app
                .plane
                .catalog
                .version(&module, "1.0.0")
                .await
                .unwrap()
                .image_digest,
            None
        );
    }

    #[tokio::test]
    async fn another_event_is_refused() {
        let kit = Kit::new();
        let error = handle(&kit.app, &PLAIN, fixture("eventbridge-schedule.json"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::BadRequest(_)), "{error}");
    }

    /// Finding 11: a plain re-push of a tag no longer rewrites a recorded digest.
    #[tokio::test]
    async fn a_plain_repush_with_another_digest_is_refused_and_the_digest_kept() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        let tag = fixture("ecr-image-action.json")["detail"]["image-tag"].clone();
        let tag = tag.as_str().unwrap();
        handle(&kit.app, &PLAIN, pushed(tag, DIGEST)).await.unwrap();
        let outcome = handle(&kit.app, &PLAIN, pushed(tag, OTHER)).await.unwrap();
        assert!(outcome.recorded.is_empty(), "{outcome:?}");
        assert_eq!(outcome.refused.len(), 1, "{outcome:?}");
        assert_eq!(outcome.refused[0].recorded_digest.as_deref(), Some(DIGEST));
        assert_eq!(image_digest(&kit, "1.0.0").await.as_deref(), Some(DIGEST));
        let refused = events(&kit, "module.image.refused");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0]["recorded_digest"], DIGEST);
        assert_eq!(refused[0]["image_digest"], OTHER);
    }

    /// Finding 11: the manifest an image carries becomes a published version, by its
    /// repository's push; invalid ones and strangers' are refused and nothing is written.
    #[tokio::test]
    async fn a_pushed_image_carrying_its_manifest_publishes_the_next_version() {
        let mut kit = Kit::new();
        kit.install_requested().await; // financial 1.0.0, published by an admin
        let next = financial_at("1.1.0");
        let outcome = handle(&kit.app, &carrying(&next), pushed("1.1.0", DIGEST))
            .await
            .unwrap();
        let published = outcome.published.expect("published");
        assert_eq!(
            (published.version.as_str(), published.image_digest.as_str()),
            ("1.1.0", DIGEST)
        );
        let module = ModuleName::parse("financial").unwrap();
        let version = kit
            .app
            .plane
            .catalog
            .version(&module, "1.1.0")
            .await
            .unwrap();
        assert_eq!(version.image_digest.as_deref(), Some(DIGEST));
        assert_eq!(version.published_by, "ecr:123456789012/plinth-financial");
        assert_eq!(version.manifest, next);
        assert_eq!(events(&kit, "module.version.published").len(), 2);
        // Delivered again: nothing changes.
        let again = handle(&kit.app, &carrying(&next), pushed("1.1.0", DIGEST))
            .await
            .unwrap();
        assert_eq!(again, PushOutcome::default());

        // An invalid manifest is refused, nothing written.
        let mut invalid = financial_at("1.2.0");
        invalid["backend"]["api_prefix"] = "no-slash".into();
        let outcome = handle(&kit.app, &carrying(&invalid), pushed("1.2.0", OTHER))
            .await
            .unwrap();
        assert!(
            outcome.refused[0].reason.contains("backend.api_prefix"),
            "{outcome:?}"
        );
        let (status, _) = kit
            .call(
                Method::GET,
                "/api/v1/modules/financial/versions",
                &operator(),
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            kit.app
                .plane
                .catalog
                .version(&module, "1.2.0")
                .await
                .is_err()
        );

        // A manifest that names another image than the one pushed is refused.
        let outcome = handle(
            &kit.app,
            &carrying(&financial_at("1.3.0")),
            pushed("1.2.0", OTHER),
        )
        .await
        .unwrap();
        assert!(
            outcome.refused[0]
                .reason
                .contains("not the image it was pushed as"),
            "{outcome:?}"
        );
        // A first version is an admin's to publish.
        let mut stranger = financial_at("1.0.0");
        stranger["name"] = "payroll".into();
        stranger["backend"]["api_prefix"] = "/api/v1/payroll".into();
        stranger["permissions"] = serde_json::json!(["payroll:runs.read"]);
        stranger["routes"] = serde_json::json!([{"path": "/status", "methods": ["GET"]}]);
        let outcome = handle(&kit.app, &carrying(&stranger), pushed("1.0.0", OTHER))
            .await
            .unwrap();
        assert!(
            outcome.refused[0]
                .reason
                .starts_with("payroll has no published version"),
            "{outcome:?}"
        );
        assert_eq!(events(&kit, "module.image.refused").len(), 3);
        assert_eq!(events(&kit, "module.version.published").len(), 2);
    }
}
