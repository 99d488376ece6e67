//! What the AWS tests set up on the emulator: a network, an ECR repository with pushed
//! images, an ECS cluster, an IAM role, an S3 object; and the manifests they deploy.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use plinth_module_sdk::Manifest;
use plinth_registry::aws;
use plinth_registry::deploy::DeploySpec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ecs_cluster::call;
pub use crate::ecs_cluster::{CRASHED, EcsScheduler, Fate, TaskFate, ecs_config, running_tasks};

/// The emulator's SDK configuration, or `None` (the test skips) when there is none.
pub async fn sdk(test: &str) -> Option<SdkConfig> {
    if !crate::support::emulator_configured(test) {
        return None;
    }
    Some(aws::config_from_env().await)
}

/// A module name no other test uses: `{prefix}-{pid}-{nanos}-{n}`, within the 40 characters a
/// module name may have.
pub fn unique_module(prefix: &str) -> String {
    let name = crate::support::unique_table(prefix);
    assert!(name.len() <= 40, "{name} is too long for a module name");
    name
}

/// Creates an ECR repository and gives back its URI.
pub async fn ecr_repository(sdk: &SdkConfig, name: &str) -> String {
    let created = aws_sdk_ecr::Client::new(sdk)
        .create_repository()
        .repository_name(name)
        .send()
        .await
        .expect("create repository");
    created
        .repository()
        .and_then(|r| r.repository_uri())
        .expect("repository uri")
        .to_owned()
}

/// Pushes an image manifest (as `docker push` ends) under `tag` and gives back its digest.
pub async fn push_image(sdk: &SdkConfig, repository: &str, tag: &str) -> String {
    let layer = Sha256::digest(format!("{repository}:{tag}"));
    let hex: String = layer.iter().map(|b| format!("{b:02x}")).collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": format!("sha256:{}", "c".repeat(64))
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 2_811_969,
            "digest": format!("sha256:{hex}")
        }]
    });
    let pushed = aws_sdk_ecr::Client::new(sdk)
        .put_image()
        .repository_name(repository)
        .image_tag(tag)
        .image_manifest(manifest.to_string())
        .send()
        .await
        .expect("put image");
    let digest = pushed
        .image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest());
    digest.expect("image digest").to_owned()
}

/// A valid manifest for `name` with `backend` (and `database` when given).
pub fn manifest(name: &str, version: &str, backend: Value, database: Option<Value>) -> Manifest {
    let mut document = json!({
        "name": name,
        "display_name": "Deployer test module",
        "version": version,
    });
    document["backend"] = backend;
    document["backend"]["api_prefix"] = json!(format!("/api/v1/{name}"));
    if let Some(database) = database {
        document["database"] = database;
    }
    Manifest::from_json_str(&document.to_string()).expect("valid manifest")
}

/// What the installer hands a deployer: the platform's variables plus the manifest's `env`.
pub fn spec(manifest: &Manifest, image_digest: Option<&str>) -> DeploySpec {
    let mut env = BTreeMap::from([
        (
            "PLINTH_URL".to_owned(),
            "https://api.plinth.example".to_owned(),
        ),
        ("PLINTH_MODULE".to_owned(), manifest.name.to_string()),
        ("PLINTH_API_KEY".to_owned(), "pk_test_secret".to_owned()),
    ]);
    env.extend(manifest.backend.env.clone());
    DeploySpec {
        manifest: manifest.clone(),
        image_digest: image_digest.map(String::from),
        endpoint: None,
        dev_dir: None,
        env,
        role_arn: None,
        alongside: false,
    }
}

/// Creates an IAM role Lambda may assume and gives back its ARN; moto's Lambda refuses roles
/// it does not know. (No IAM SDK in the workspace: this is the Query API, as the CLI sends it.)
pub async fn iam_role(name: &str) -> String {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
        percent_encode(policy)
    );
    let content = "application/x-www-form-urlencoded";
    let answer = call("iam", "POST", "/", content, body.as_bytes()).await;
    let arn = answer
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next());
    arn.unwrap_or_else(|| panic!("no role ARN in {answer}"))
        .to_owned()
}

/// Puts `body` at `s3://{bucket}/{key}`, creating the bucket.
pub async fn s3_object(bucket: &str, key: &str, body: &[u8]) {
    call("s3", "PUT", &format!("/{bucket}"), "application/xml", b"").await;
    call(
        "s3",
        "PUT",
        &format!("/{bucket}/{key}"),
        "application/zip",
        body,
    )
    .await;
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
