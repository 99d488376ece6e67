//! The ECR-event handler: when a module team pushes a tag, the digest is recorded against
//! every published version whose `backend.image` names that repository and tag, so installs
//! run exactly the image that was pushed.

use plinth_module_sdk::ModuleName;
use plinth_registry::catalog::ListFilter;
use plinth_registry::deploy::ecr::{EcrImageAction, ImagePush, image_pushed};
use plinth_registry::store::{Condition, Update, keys};
use plinth_registry::{Error, Platform, Result};
use serde::Serialize;
use serde_json::Value;

/// A version whose image digest was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub module: String,
    pub version: String,
    pub image_digest: String,
}

/// Handles one "ECR Image Action" event; deletes, failures and untagged pushes record nothing.
///
/// # Errors
/// `BadRequest` for an event that is not an ECR image action.
pub async fn handle(platform: &Platform, event: Value) -> Result<Vec<Recorded>> {
    let action = EcrImageAction::from_event(event).map_err(|e| Error::BadRequest(e.to_string()))?;
    let Some(push) = image_pushed(&action) else {
        tracing::info!(repository = %action.detail.repository_name, "not a successful tagged push: nothing to record");
        return Ok(Vec::new());
    };
    record(platform, &push).await
}

/// Records `push` against the matching published versions.
pub async fn record(platform: &Platform, push: &ImagePush) -> Result<Vec<Recorded>> {
    let mut recorded = Vec::new();
    for entry in platform.list_modules(&ListFilter::default()).await? {
        let Ok(module) = ModuleName::parse(&entry.name) else {
            continue;
        };
        for version in platform.versions(&module).await? {
            let image = version
                .manifest
                .pointer("/backend/image")
                .and_then(Value::as_str);
            if !image.is_some_and(|image| push.matches(image))
                || version.image_digest.as_deref() == Some(&push.digest)
            {
                continue;
            }
            let update = Update::default().set("image_digest", Value::String(push.digest.clone()));
            let key = keys::module_version(module.as_str(), &version.version);
            platform
                .store
                .update(&key, update, Condition::Exists)
                .await?;
            tracing::info!(%module, version = %version.version, digest = %push.digest, "image digest recorded");
            recorded.push(Recorded {
                module: module.to_string(),
                version: version.version,
                image_digest: push.digest.clone(),
            });
        }
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

    #[tokio::test]
    async fn a_push_is_recorded_against_the_version_that_names_the_image() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        let recorded = handle(&kit.platform, fixture("ecr-image-action.json"))
            .await
            .unwrap();
        let expected = Recorded {
            module: "financial".into(),
            version: "1.0.0".into(),
            image_digest: DIGEST.into(),
        };
        assert_eq!(recorded, vec![expected]);
        let module = ModuleName::parse("financial").unwrap();
        let version = kit.platform.version(&module, "1.0.0").await.unwrap();
        assert_eq!(version.image_digest.as_deref(), Some(DIGEST));
        // The same event again (EventBridge delivers at least once) changes nothing.
        assert!(
            handle(&kit.platform, fixture("ecr-image-action.json"))
                .await
                .unwrap()
                .is_empty()
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
            assert!(
                handle(&kit.platform, fixture(name))
                    .await
                    .unwrap()
                    .is_empty(),
                "{name}"
            );
        }
        let module = ModuleName::parse("financial").unwrap();
        assert_eq!(
            kit.platform
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
        let error = handle(&kit.platform, fixture("eventbridge-schedule.json"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::BadRequest(_)), "{error}");
    }
}
