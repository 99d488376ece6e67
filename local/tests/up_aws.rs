//! `plinth up --aws` (finding 12 of "Modules on AWS"): the store, the modules' tables, the bus
//! and the modules' event queues are AWS's (here moto, started by `./tests/run`), read back
//! from the emulator; what stays on this machine is said at start.

use std::time::Duration;

use plinth_local::platform::{self, AwsNames, Options};
use plinth_registry::aws;
use plinth_registry::identity::{Claims, mint_token};
use serde_json::{Value, json};

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000)
}

/// Publishes `manifest` as the platform's admin (201 expected).
async fn publish(client: &reqwest::Client, url: &str, token: &str, manifest: &Value) {
    let published = client
        .post(format!("{url}/api/v1/modules"))
        .bearer_auth(token)
        .json(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(
        published.status(),
        201,
        "{}",
        published.text().await.unwrap()
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn operator_token(secret: &str) -> String {
    let claims = Claims::user(
        "operator",
        None,
        None,
        &["platform:admin"],
        std::time::Duration::from_secs(600),
    );
    mint_token(secret.as_bytes(), &claims).unwrap()
}

#[tokio::test]
async fn up_with_aws_keeps_state_and_events_on_aws_and_says_what_stays_local() {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
        );
        eprintln!("skipped: no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("plinth_local=info,plinth_registry=warn")
        .with_test_writer()
        .try_init();
    let data = tempfile::tempdir().unwrap();
    let names = AwsNames {
        table: unique("plinth-up"),
        event_bus: unique("plinth-up"),
    };
    let options = Options {
        port: 0,
        data_dir: data.path().to_path_buf(),
        demo: false,
        aws: Some(names.clone()),
        working_dir: data.path().to_path_buf(),
    };
    let running = platform::start(&options)
        .await
        .expect("plinth up --aws starts");
    let url = format!("http://{}", running.addr);
    let secret = platform::jwt_secret(data.path()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(running.serve(async {
        let _ = stopped.await;
    }));

    // A module that subscribes to an event, backed by an endpoint that is already running.
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", backend.local_addr().unwrap());
    let module = unique("probe").replace('-', "");
    let module = format!("p{}", &module[module.len() - 10..]);
    let manifest = json!({
        "name": module, "display_name": "Probe", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{module}")},
        "events": {"subscribes": [{"name": "paid", "pattern": {"detail-type": ["financial.invoice.paid"]},
                                    "path": "/_plinth/events/paid"}]}
    });
    let client = reqwest::Client::new();
    let token = operator_token(&secret);
    publish(&client, &url, &token, &manifest).await;
    let install = client
        .post(format!("{url}/api/v1/modules/{module}/install"))
        .bearer_auth(&token)
        .json(&json!({"version": "1.0.0", "endpoint": endpoint}))
        .send()
        .await
        .unwrap();
    assert_eq!(install.status(), 202, "{}", install.text().await.unwrap());
    let mut state = Value::Null;
    for _ in 0..100 {
        state = client
            .get(format!("{url}/api/v1/modules/{module}/installation"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state["status"] != "pending" && state["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["status"], "installed", "{state}");

    // Read back from the emulator: the control plane's table holds the installation…
    let sdk = aws::config_from_env().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let items = dynamo.scan().table_name(&names.table).send().await.unwrap();
    assert!(
        items.items().iter().any(|item| {
            item.values()
                .any(|v| v.as_s().is_ok_and(|s| s.contains(&module)))
        }),
        "the installation is in DynamoDB table {}",
        names.table
    );
    // …the module's subscription is a rule on the EventBridge bus, delivering to its queue…
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let rules = events
        .list_rules()
        .event_bus_name(&names.event_bus)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rules
            .rules()
            .iter()
            .filter(|r| r.name().unwrap_or_default().contains(&module))
            .count(),
        1,
        "{rules:?}"
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .get_queue_url()
        .queue_name(format!("plinth-{module}-events"))
        .send()
        .await
        .expect("the module's queue exists on the emulator");
    let queue_url = queue.queue_url().unwrap().to_owned();
    // …and an event put on the bus lands in it.
    events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&names.event_bus)
                .source("module.financial")
                .detail_type("financial.invoice.paid")
                .detail(r#"{"tenant_id":"acme","invoice":"ACME-DE-1"}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let body = received.messages()[0].body().unwrap_or_default();
    assert!(body.contains("ACME-DE-1"), "{body}");

    // An image pushed to ECR carrying its next version's manifest publishes it, as ECR's push
    // event (on the default bus) reaches the platform.
    let repository = format!("plinth-{module}");
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    ecr.create_repository()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    let mut next = manifest.clone();
    next["version"] = json!("1.1.0");
    next["backend"]["image"] = json!(format!("{repository}:1.1.0"));
    let mut first = manifest.clone();
    first["version"] = json!("1.0.1");
    first["backend"]["image"] = json!(format!("{repository}:1.0.1"));
    publish(&client, &url, &token, &first).await;
    let digest = push_an_image_carrying(&sdk, &repository, &next).await;
    let versions = versions_until(&client, &url, &token, &module, "1.1.0").await;
    assert!(
        versions.to_string().contains("1.1.0") && versions.to_string().contains(&digest),
        "the pushed version is published with its digest: {versions}"
    );

    // What stays local is said, with why.
    assert!(platform::ON_AWS.contains("ECR"), "{}", platform::ON_AWS);
    for local in ["local processes", "gateway", "installer"] {
        assert!(
            platform::STAYS_LOCAL.contains(local),
            "{}",
            platform::STAYS_LOCAL
        );
    }
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

/// Puts an image into `repository` (tag = the manifest's version) whose annotation carries
/// `manifest`, then ECR's push event on the default bus, as ECR does; returns its digest.
async fn push_an_image_carrying(
    sdk: &aws_config::SdkConfig,
    repository: &str,
    manifest: &Value,
) -> String {
    let tag = manifest["version"].as_str().expect("a version").to_owned();
    let ecr = aws_sdk_ecr::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let annotated = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:6e1a7bd1a6c2b8b4ef8e4b6c1b0cbb8f58a9b1a0f3b5c9c1d2e3f4a5b6c7d8e9", "size": 1470},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:1e1a7bd1a6c2b8b4ef8e4b6c1b0cbb8f58a9b1a0f3b5c9c1d2e3f4a5b6c7d8e9", "size": 2811969}],
        "annotations": {"dev.plinth.manifest": base64_of(&manifest.to_string())}
    });
    let pushed = ecr
        .put_image()
        .repository_name(repository)
        .image_tag(&tag)
        .image_manifest(annotated.to_string())
        .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let digest = pushed
        .image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .unwrap()
        .to_owned();
    let push = json!({"result": "SUCCESS", "repository-name": repository, "image-digest": digest,
                      "action-type": "PUSH", "image-tag": tag});
    events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.ecr")
                .detail_type("ECR Image Action")
                .detail(push.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    digest
}

/// Polls the versions of `module` on the platform at `url` until `version` is there.
async fn versions_until(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    module: &str,
    version: &str,
) -> Value {
    let mut versions = Value::Null;
    for _ in 0..100 {
        versions = client
            .get(format!("{url}/api/v1/modules/{module}/versions"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if versions.to_string().contains(version) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    versions
}

/// Found when a test's `plinth up --aws` had stopped: every platform on the account read one
/// queue of ECR pushes (`plinth-local-ecr-events`), so a push went to whichever read first —
/// another platform, or a stopped one's last read — and this one never published it. Each
/// platform now has its own rule and queue, named after its table.
#[tokio::test]
async fn an_image_push_reaches_every_platform_on_the_account() {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but AWS_ENDPOINT_URL is not; run the tests with ./tests/run"
        );
        eprintln!("skipped: no emulator (AWS_ENDPOINT_URL unset); ./tests/run starts one");
        return;
    }
    let sdk = aws::config_from_env().await;
    let client = reqwest::Client::new();
    let module = unique("push").replace('-', "");
    let module = format!("q{}", &module[module.len() - 10..]);
    let repository = format!("plinth-{module}");
    // A version from the repository is published: pushes to it are the module's.
    let manifest = json!({
        "name": module, "display_name": "Pushed", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{module}"),
                    "image": format!("{repository}:1.0.0")}
    });
    let mut platforms = Vec::new();
    for _ in 0..2 {
        let data = tempfile::tempdir().unwrap();
        let names = AwsNames {
            table: unique("plinth-push"),
            event_bus: unique("plinth-push"),
        };
        let options = Options {
            port: 0,
            data_dir: data.path().to_path_buf(),
            demo: false,
            aws: Some(names),
            working_dir: data.path().to_path_buf(),
        };
        let running = platform::start(&options)
            .await
            .expect("plinth up --aws starts");
        let url = format!("http://{}", running.addr);
        let token = operator_token(&platform::jwt_secret(data.path()).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(running.serve(async {
            let _ = stopped.await;
        }));
        publish(&client, &url, &token, &manifest).await;
        platforms.push((data, url, token, stop, served));
    }
    aws_sdk_ecr::Client::new(&sdk)
        .create_repository()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    let mut next = manifest.clone();
    next["version"] = json!("1.1.0");
    next["backend"]["image"] = json!(format!("{repository}:1.1.0"));
    let digest = push_an_image_carrying(&sdk, &repository, &next).await;
    for (n, (_, url, token, _, _)) in platforms.iter().enumerate() {
        let versions = versions_until(&client, url, token, &module, "1.1.0").await;
        assert!(
            versions.to_string().contains(&digest),
            "platform {n} published the pushed version with its digest: {versions}"
        );
    }
    for (_, _, _, stop, served) in platforms {
        let _ = stop.send(());
        served.await.unwrap().unwrap();
    }
}
