//! What the AWS tests set up on the emulator: a network, an ECR repository with pushed
//! images, an ECS cluster, an IAM role, an S3 object; and the manifests they deploy.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use plinth_module_sdk::Manifest;
use plinth_registry::aws;
use plinth_registry::deploy::DeploySpec;
use plinth_registry::deploy::ecs::EcsSettings;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// A VPC with one subnet and one security group, and an ECS cluster: what a deployer needs.
pub async fn ecs_config(sdk: &SdkConfig, name: &str) -> EcsSettings {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .expect("create subnet");
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id");
    let group = ec2
        .create_security_group()
        .group_name(name)
        .description("plinth deployer test")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("create security group");
    let cluster = aws_sdk_ecs::Client::new(sdk)
        .create_cluster()
        .cluster_name(name)
        .send()
        .await
        .expect("create cluster");
    EcsSettings {
        cluster: cluster
            .cluster()
            .and_then(|c| c.cluster_name())
            .expect("cluster")
            .to_owned(),
        subnets: vec![subnet_id.to_owned()],
        security_groups: vec![group.group_id().expect("group id").to_owned()],
        execution_role_arn: "arn:aws:iam::123456789012:role/plinth-ecs-execution".into(),
        task_role_arn: "arn:aws:iam::123456789012:role/plinth-module-task".into(),
        namespace: "plinth.internal".into(),
        log_group: Some("/plinth/modules".into()),
        desired_count: 1,
    }
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
        env,
        role_arn: None,
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

/// One HTTP/1.1 request to the emulator; moto routes it by the service named in the
/// credential scope and does not check the signature. Panics unless it answers 200; gives
/// back the whole answer.
async fn call(service: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the emulator");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream.write_all(body).await.expect("send body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{service} {method} {path}: {answer}"
    );
    answer
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
