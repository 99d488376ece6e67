//! The ECR-event handler: when a module team pushes a tag, the digest is recorded against
//! every published version whose `backend.image` names that repository and tag, so installs
//! run exactly the image that was pushed.

use plinth_registry::catalog::RecordedImage;
use plinth_registry::deploy::ecr::{EcrImageAction, image_pushed};
use plinth_registry::{App, Error, Result};
use serde_json::Value;

/// Handles one "ECR Image Action" event; deletes, failures and untagged pushes record nothing.
///
/// # Errors
/// `BadRequest` for an event that is not an ECR image action.
pub async fn handle(app: &App, event: Value) -> Result<Vec<RecordedImage>> {
    let action = EcrImageAction::from_event(event).map_err(|e| Error::BadRequest(e.to_string()))?;
    let Some(push) = image_pushed(&action) else {
        tracing::info!(repository = %action.detail.repository_name, "not a successful tagged push: nothing to record");
        return Ok(Vec::new());
    };
    app.plane.catalog.record_image_push(&push).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture};
    use plinth_module_sdk::ModuleName;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678";

    #[tokio::test]
    async fn a_push_is_recorded_against_the_version_that_names_the_image() {
        let mut kit = Kit::new();
        kit.install_requested().await;
        let recorded = handle(&kit.app, fixture("ecr-image-action.json"))
            .await
            .unwrap();
        let expected = RecordedImage {
            module: "financial".into(),
            version: "1.0.0".into(),
            image_digest: DIGEST.into(),
        };
        assert_eq!(recorded, vec![expected]);
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
        assert!(
            handle(&kit.app, fixture("ecr-image-action.json"))
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
                handle(&kit.app, fixture(name)).await.unwrap().is_empty(),
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
        let error = handle(&kit.app, fixture("eventbridge-schedule.json"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::BadRequest(_)), "{error}");
    }
}
