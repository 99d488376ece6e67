//! A module key rotated through the API reaches the module's secret (issue #18, finding 7):
//! the new key is written into `plinth/module/{module}/api-key` while the old one keeps
//! working for the overlap; a rotation whose secret cannot be written is undone.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use plinth_module_sdk::ModuleName;
use plinth_registry::deploy::DeployError;
use plinth_registry::deploy::module_secrets::{ModuleKeySecrets, SecretsManagerKeys};
use plinth_registry::events::local::LocalBus;
use plinth_registry::identity::{Caller, ContextSigner, PlatformRole, TokenVerifier, User};
use plinth_registry::ids::UserId;
use plinth_registry::queue::LocalQueue;
use plinth_registry::{App, Error, Identity, Ports, Settings};
use serde_json::json;
use tempfile::TempDir;

use crate::moto::{sdk, unique_module};

/// A platform on an embedded store whose rotations write to `keys`, with `module` published.
async fn platform(keys: Arc<dyn ModuleKeySecrets>, module: &str) -> (App, TempDir) {
    let (store, dir) = crate::support::embedded();
    let (queue, _worker) = tokio::sync::mpsc::unbounded_channel();
    let ports = Ports::new(
        Arc::new(store),
        Arc::new(LocalBus::default()),
        Arc::new(LocalQueue(queue)),
    )
    .with_module_keys(keys);
    let identity = Identity {
        tokens: TokenVerifier::hs256(b"plinth-tests-secret-0123456789abcdef", None, None).unwrap(),
        context: Arc::new(ContextSigner::generate().unwrap()),
    };
    let app = App::build(ports, identity, Settings::default());
    let document = json!({
        "name": module, "display_name": "Rotation test", "version": "1.0.0",
        "backend": {"type": "lambda", "api_prefix": format!("/api/v1/{module}"), "image": format!("{module}:1.0.0")}
    });
    app.plane
        .catalog
        .publish(&admin(), &document)
        .await
        .expect("publish");
    (app, dir)
}

fn admin() -> Caller {
    Caller::User(User {
        id: UserId::parse("operator").unwrap(),
        tenant: None,
        company: None,
        companies: Default::default(),
        roles: BTreeSet::from([PlatformRole::PlatformAdmin]),
    })
}

#[tokio::test]
async fn a_rotated_module_key_is_written_to_the_modules_secret_and_the_old_one_overlaps() {
    let test = "a_rotated_module_key_is_written_to_the_modules_secret_and_the_old_one_overlaps";
    let Some(sdk) = sdk(test).await else {
        return;
    };
    let name = unique_module("rot");
    let module = ModuleName::parse(&name).unwrap();
    let keys = SecretsManagerKeys::new(&sdk);
    let (app, _dir) = platform(Arc::new(keys.clone()), &name).await;
    let api_keys = &app.plane.api_keys;

    // What the installer does on AWS: issue the key, store it in the module's secret.
    let old = api_keys.issue(&admin(), &module, None).await.unwrap();
    let arn = keys.store(&module, &old.key).await.expect("store the key");

    let new = api_keys
        .issue(&admin(), &module, Some(600))
        .await
        .expect("rotate");
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let current = secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .expect("read the secret");
    assert_eq!(current.secret_string(), Some(new.key.as_str()));
    assert_eq!(
        api_keys.authenticate(&old.key).await.unwrap(),
        module,
        "the overlap"
    );
    assert_eq!(api_keys.authenticate(&new.key).await.unwrap(), module);

    // A key issued without rotating is an extra one: the secret keeps the module's key.
    let extra = api_keys.issue(&admin(), &module, None).await.unwrap();
    let current = secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(current.secret_string(), Some(new.key.as_str()));
    assert_ne!(extra.key, new.key);
    keys.delete(&module).await.unwrap();
}

#[tokio::test]
async fn a_module_without_a_secret_is_rotated_without_creating_one() {
    let Some(sdk) = sdk("a_module_without_a_secret_is_rotated_without_creating_one").await else {
        return;
    };
    let name = unique_module("rot");
    let module = ModuleName::parse(&name).unwrap();
    let keys = SecretsManagerKeys::new(&sdk);
    let (app, _dir) = platform(Arc::new(keys.clone()), &name).await;
    app.plane
        .api_keys
        .issue(&admin(), &module, None)
        .await
        .unwrap();
    app.plane
        .api_keys
        .issue(&admin(), &module, Some(0))
        .await
        .expect("rotate");
    assert_eq!(keys.arn(&module).await.unwrap(), None);
}

/// A secret store that refuses every write.
#[derive(Debug)]
struct Refusing;

#[async_trait]
impl ModuleKeySecrets for Refusing {
    async fn rotate(&self, module: &ModuleName, _key: &str) -> Result<bool, DeployError> {
        Err(DeployError(format!(
            "writing secret `plinth/module/{module}/api-key`: AccessDeniedException: not allowed"
        )))
    }
}

#[tokio::test]
async fn a_rotation_whose_secret_cannot_be_written_is_undone_and_says_so() {
    let (app, _dir) = platform(Arc::new(Refusing), "billing").await;
    let module = ModuleName::parse("billing").unwrap();
    let api_keys = &app.plane.api_keys;
    let old = api_keys.issue(&admin(), &module, None).await.unwrap();

    let error = api_keys
        .issue(&admin(), &module, Some(0))
        .await
        .expect_err("the secret refused the new key");
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    assert_eq!(
        error.chain(),
        "the key of billing was not rotated: its new key could not be written to the module's \
         secret: writing secret `plinth/module/billing/api-key`: AccessDeniedException: not allowed"
    );
    // The old key still works and does not expire; only it is listed.
    assert_eq!(api_keys.authenticate(&old.key).await.unwrap(), module);
    let listed = api_keys.list(&module).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, old.id);
    assert_eq!(listed[0].expires_at, None);
}
