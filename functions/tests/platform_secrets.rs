//! The platform's secrets read from Secrets Manager on the emulator (issue #18, finding 7):
//! the JWT secret and the context key by ARN, and the context key generated once however many
//! functions start at the same time.
//!
//! moto enforces `ClientRequestToken` as Secrets Manager does: a second `PutSecretValue` with
//! a token already used and another value is refused (`ResourceExistsException`), the same
//! value is accepted as a repeat. These tests rely on that.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use base64::Engine;
use plinth_functions::platform_secrets::{
    CONTEXT_KEY_PLACEHOLDER, PlatformSecrets, decode_context_key,
};
use plinth_registry::identity::ContextSigner;

/// The emulator's SDK configuration; `None` (the test skips) without one, except under CI.
async fn emulator(test: &str) -> Option<SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
        );
        eprintln!("{test}: skipped, no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
        return None;
    }
    Some(plinth_registry::aws::config_from_env().await)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("plinth-test/{prefix}-{}-{nanos}", std::process::id())
}

async fn secret(sdk: &SdkConfig, prefix: &str, value: &str) -> String {
    let created = Client::new(sdk)
        .create_secret()
        .name(unique(prefix))
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    created.arn().expect("arn").to_owned()
}

async fn current(sdk: &SdkConfig, arn: &str) -> String {
    let read = Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .expect("get secret value");
    read.secret_string().expect("a string").to_owned()
}

async fn versions(sdk: &SdkConfig, arn: &str) -> usize {
    let listed = Client::new(sdk)
        .list_secret_version_ids()
        .secret_id(arn)
        .send()
        .await
        .expect("list secret versions");
    listed.versions().len()
}

#[tokio::test]
async fn platform_functions_read_the_jwt_secret_and_the_context_key_by_arn() {
    let Some(sdk) =
        emulator("platform_functions_read_the_jwt_secret_and_the_context_key_by_arn").await
    else {
        return;
    };
    let jwt = secret(&sdk, "jwt", "generated-by-secrets-manager-0123456789").await;
    let key = ContextSigner::generate().unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(key.pkcs8());
    let context = secret(&sdk, "context", &encoded).await;

    let secrets = PlatformSecrets::new(&sdk);
    assert_eq!(
        secrets.jwt_secret(&jwt).await.unwrap(),
        "generated-by-secrets-manager-0123456789"
    );
    let signer = secrets.context_signer(&context).await.unwrap();
    assert_eq!(signer.kid(), key.kid(), "the stored key, not a new one");
    assert_eq!(versions(&sdk, &context).await, 1, "nothing was written");

    let garbage = secret(&sdk, "garbage", "not a key").await;
    let error = secrets.context_signer(&garbage).await.unwrap_err();
    assert!(format!("{error:#}").contains("is not base64"), "{error:#}");
    assert_eq!(
        current(&sdk, &garbage).await,
        "not a key",
        "never overwritten"
    );
}

#[tokio::test]
async fn concurrent_first_starts_store_one_context_key() {
    let Some(sdk) = emulator("concurrent_first_starts_store_one_context_key").await else {
        return;
    };
    let arn = secret(&sdk, "first-start", CONTEXT_KEY_PLACEHOLDER).await;

    // Two cold starts at once, each with its own client.
    let (one, two) = (PlatformSecrets::new(&sdk), PlatformSecrets::new(&sdk));
    let (one, two) = tokio::join!(one.context_signer(&arn), two.context_signer(&arn));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.kid(), two.kid(), "both sign with the same key");
    let stored = decode_context_key(&current(&sdk, &arn).await).unwrap();
    assert_eq!(
        stored.kid(),
        one.kid(),
        "the key stored is the one they use"
    );
    assert_eq!(versions(&sdk, &arn).await, 2, "the placeholder and one key");

    // Both saw the placeholder before either wrote: the second write is refused and the
    // second starter takes the first one's key.
    let raced = secret(&sdk, "raced", CONTEXT_KEY_PLACEHOLDER).await;
    let placeholder = PlatformSecrets::new(&sdk).current(&raced).await.unwrap();
    let version = placeholder.version_id.as_deref();
    let secrets = PlatformSecrets::new(&sdk);
    let first = secrets.store_first_key(&raced, version).await.unwrap();
    let second = secrets.store_first_key(&raced, version).await.unwrap();
    assert_eq!(first.kid(), second.kid(), "the loser uses the winner's key");
    assert_eq!(
        decode_context_key(&current(&sdk, &raced).await)
            .unwrap()
            .kid(),
        first.kid()
    );
    assert_eq!(versions(&sdk, &raced).await, 2, "one key was stored");

    // A later start reads it; no new key.
    let later = PlatformSecrets::new(&sdk)
        .context_signer(&raced)
        .await
        .unwrap();
    assert_eq!(later.kid(), first.kid());
}
