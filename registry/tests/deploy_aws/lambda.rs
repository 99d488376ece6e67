//! `LambdaDeployer` on the emulator: functions from a digest-pinned image or from a zip
//! package in S3, updated in place, deleted on undeploy. (moto manages functions without
//! Docker; invoking them would need it, so nothing here invokes.)

use aws_config::SdkConfig;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use plinth_module_sdk::Manifest;
use plinth_registry::deploy::lambda::{LambdaDeployer, LambdaHandle, LambdaSettings};
use plinth_registry::deploy::{Deployer, Deployment};
use serde_json::json;

use crate::moto::{
    ecr_repository, iam_role, manifest, push_image, s3_object, sdk, spec, unique_module,
};

/// An empty zip archive: the package's bytes do not matter to the emulator.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

struct Setup {
    sdk: SdkConfig,
    deployer: LambdaDeployer,
    name: String,
    bucket: String,
}

async fn setup(test: &str) -> Option<Setup> {
    let sdk = sdk(test).await?;
    let name = unique_module("fn");
    let config = LambdaSettings {
        role_arn: Some(iam_role(&name).await),
        package_bucket: Some(name.clone()),
        architecture: "arm64".into(),
        timeout_seconds: 30,
        max_concurrency: 100,
    };
    Some(Setup {
        deployer: LambdaDeployer::new(&sdk, config),
        sdk,
        bucket: name.clone(),
        name,
    })
}

impl Setup {
    fn image_module(&self, version: &str) -> Manifest {
        let backend = json!({
            "type": "lambda",
            "image": format!("{}:{version}", self.name),
            "memory": 1024,
            "health_check": "/health",
            "env": {"RUST_LOG": "info"}
        });
        manifest(&self.name, version, backend, None)
    }

    fn zip_module(&self, version: &str) -> Manifest {
        let backend = json!({
            "type": "lambda",
            "runtime": "provided.al2023",
            "entry_point": "bootstrap",
            "env": {"RUST_LOG": "debug"}
        });
        manifest(&self.name, version, backend, None)
    }

    async fn function(&self) -> Option<GetFunctionOutput> {
        let lambda = aws_sdk_lambda::Client::new(&self.sdk);
        lambda
            .get_function()
            .function_name(format!("plinth-{}", self.name))
            .send()
            .await
            .ok()
    }
}

fn handle(deployment: &Deployment) -> LambdaHandle {
    serde_json::from_value(deployment.handle.clone()).expect("a Lambda handle")
}

#[tokio::test]
async fn an_image_module_becomes_a_function_pinned_by_digest() {
    let Some(setup) = setup("an_image_module_becomes_a_function_pinned_by_digest").await else {
        return;
    };
    let repository_uri = ecr_repository(&setup.sdk, &setup.name).await;
    let digest = push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let manifest = setup.image_module("1.0.0");

    let deployment = setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    let handle = handle(&deployment);
    assert_eq!(handle.function_name, format!("plinth-{}", setup.name));
    assert_eq!(
        deployment.endpoint,
        format!("lambda:{}", handle.function_arn)
    );
    assert_eq!(
        deployment.health_url,
        format!("lambda:{}/health", handle.function_arn)
    );
    let function = setup.function().await.expect("the function");
    let configuration = function.configuration().expect("configuration");
    assert_eq!(
        configuration.function_arn(),
        Some(handle.function_arn.as_str())
    );
    assert_eq!(
        configuration.package_type().map(|p| p.as_str()),
        Some("Image")
    );
    assert_eq!(configuration.memory_size(), Some(1024));
    assert_eq!(configuration.timeout(), Some(30));
    let arch: Vec<_> = configuration
        .architectures()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(arch, ["arm64"]);
    let variables = configuration
        .environment()
        .and_then(|e| e.variables())
        .expect("env");
    assert_eq!(variables.get("RUST_LOG").map(String::as_str), Some("info"));
    assert_eq!(variables.get("PLINTH_MODULE"), Some(&setup.name));
    let image = function.code().and_then(|c| c.image_uri());
    assert_eq!(image, Some(format!("{repository_uri}@{digest}").as_str()));
}

#[tokio::test]
async fn deploying_again_changes_nothing() {
    let test = "deploying_again_changes_nothing";
    let Some(setup) = setup(test).await else {
        return;
    };
    ecr_repository(&setup.sdk, &setup.name).await;
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let v1 = setup.image_module("1.0.0");
    let first = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy");
    let modified = setup
        .function()
        .await
        .unwrap()
        .configuration()
        .unwrap()
        .last_modified()
        .map(String::from);

    let again = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy again");

    assert_eq!(again, first);
    let unchanged = setup
        .function()
        .await
        .unwrap()
        .configuration()
        .unwrap()
        .last_modified()
        .map(String::from);
    assert_eq!(unchanged, modified, "the function was not touched");
}

#[tokio::test]
async fn an_upgrade_updates_the_function_in_place() {
    let Some(setup) = setup("an_upgrade_updates_the_function_in_place").await else {
        return;
    };
    let repository_uri = ecr_repository(&setup.sdk, &setup.name).await;
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    let v1 = setup.image_module("1.0.0");
    let first = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy");

    let digest = push_image(&setup.sdk, &setup.name, "1.1.0").await;
    let mut v2 = setup.image_module("1.1.0");
    v2.backend.env.insert("RUST_LOG".into(), "warn".into());
    let upgraded = setup
        .deployer
        .deploy(&spec(&v2, None))
        .await
        .expect("upgrade");

    assert_eq!(handle(&upgraded).function_arn, handle(&first).function_arn);
    assert_ne!(handle(&upgraded).fingerprint, handle(&first).fingerprint);
    let function = setup.function().await.expect("the function");
    let image = function.code().and_then(|c| c.image_uri());
    assert_eq!(image, Some(format!("{repository_uri}@{digest}").as_str()));
    let configuration = function.configuration().unwrap();
    let variables = configuration
        .environment()
        .and_then(|e| e.variables())
        .unwrap();
    assert_eq!(variables.get("RUST_LOG").map(String::as_str), Some("warn"));
    assert_eq!(
        configuration.description(),
        Some(format!("Plinth module {} 1.1.0", setup.name).as_str())
    );
    let tags = function.tags().expect("tags");
    assert_eq!(
        tags.get("plinth:version").map(String::as_str),
        Some("1.1.0")
    );
}

#[tokio::test]
async fn a_module_without_image_runs_its_zip_package_from_s3() {
    let Some(setup) = setup("a_module_without_image_runs_its_zip_package_from_s3").await else {
        return;
    };
    let manifest = setup.zip_module("1.0.0");
    let key = LambdaDeployer::package_key(&manifest);
    assert_eq!(key, format!("modules/{}/1.0.0/lambda.zip", setup.name));
    s3_object(&setup.bucket, &key, &EMPTY_ZIP).await;

    setup
        .deployer
        .deploy(&spec(&manifest, None))
        .await
        .expect("deploy");

    let function = setup.function().await.expect("the function");
    let configuration = function.configuration().unwrap();
    assert_eq!(
        configuration.package_type().map(|p| p.as_str()),
        Some("Zip")
    );
    assert_eq!(configuration.handler(), Some("bootstrap"));
    assert_eq!(
        configuration.runtime().map(|r| r.as_str()),
        Some("provided.al2023")
    );
    assert_eq!(configuration.memory_size(), Some(512), "the default memory");
}

#[tokio::test]
async fn a_zip_module_needs_the_package_bucket() {
    let Some(sdk) = sdk("a_zip_module_needs_the_package_bucket").await else {
        return;
    };
    let name = unique_module("fn");
    let config = LambdaSettings {
        role_arn: Some("arn:aws:iam::123456789012:role/any".into()),
        package_bucket: None,
        architecture: "x86_64".into(),
        timeout_seconds: 30,
        max_concurrency: 100,
    };
    let backend =
        json!({"type": "lambda", "runtime": "provided.al2023", "entry_point": "bootstrap"});
    let manifest = manifest(&name, "1.0.0", backend, None);

    let error = LambdaDeployer::new(&sdk, config)
        .deploy(&spec(&manifest, None))
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "module `{name}` has no `backend.image`, so its zip package needs PLINTH_LAMBDA_PACKAGE_BUCKET"
        )
    );
}

#[tokio::test]
async fn undeploy_deletes_the_function_and_tolerates_it_gone() {
    let Some(setup) = setup("undeploy_deletes_the_function_and_tolerates_it_gone").await else {
        return;
    };
    ecr_repository(&setup.sdk, &setup.name).await;
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    push_image(&setup.sdk, &setup.name, "2.0.0").await;
    let (v1, v2) = (setup.image_module("1.0.0"), setup.image_module("2.0.0"));
    let old = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy v1");
    let new = setup
        .deployer
        .deploy(&spec(&v2, None))
        .await
        .expect("deploy v2");

    setup
        .deployer
        .undeploy(&v1, &old)
        .await
        .expect("undeploy the replaced v1");
    assert!(setup.function().await.is_some(), "v2 is still running");

    setup
        .deployer
        .undeploy(&v2, &new)
        .await
        .expect("undeploy v2");
    assert!(setup.function().await.is_none(), "the function is gone");
    setup
        .deployer
        .undeploy(&v2, &new)
        .await
        .expect("undeploy again");
}

/// Deliver 9: `backend.reserved_concurrency` is reserved for the function, capped by the
/// platform (the deployment says so), and removed when a later version drops it.
#[tokio::test]
async fn reserved_concurrency_is_set_capped_and_removed_when_dropped() {
    let Some(setup) = setup("reserved_concurrency_is_set_capped_and_removed_when_dropped").await
    else {
        return;
    };
    ecr_repository(&setup.sdk, &setup.name).await;
    push_image(&setup.sdk, &setup.name, "1.0.0").await;
    push_image(&setup.sdk, &setup.name, "1.1.0").await;
    let mut v1 = setup.image_module("1.0.0");
    v1.backend.reserved_concurrency = Some(500);
    let lambda = aws_sdk_lambda::Client::new(&setup.sdk);
    let reserved = || async {
        lambda
            .get_function_concurrency()
            .function_name(format!("plinth-{}", setup.name))
            .send()
            .await
            .expect("get concurrency")
            .reserved_concurrent_executions()
    };

    let deployment = setup
        .deployer
        .deploy(&spec(&v1, None))
        .await
        .expect("deploy");

    assert_eq!(reserved().await, Some(100), "capped at the platform's 100");
    let applied = handle(&deployment).reserved_concurrency.expect("reserved");
    assert_eq!((applied.reserved, applied.capped_from), (100, Some(500)));

    let v2 = setup.image_module("1.1.0");
    let upgraded = setup
        .deployer
        .deploy(&spec(&v2, None))
        .await
        .expect("upgrade");
    assert_eq!(
        reserved().await,
        None,
        "none reserved without the manifest's"
    );
    assert_eq!(handle(&upgraded).reserved_concurrency, None);
}

/// Versions side by side (`versions`): a version installed alongside is a function of its own,
/// `plinth-{module}-v{version}`; deploying it leaves the first version's function as it was,
/// and undeploying either leaves the other.
#[tokio::test]
async fn two_versions_are_two_functions_and_undeploying_one_leaves_the_other() {
    let test = "two_versions_are_two_functions_and_undeploying_one_leaves_the_other";
    let Some(setup) = setup(test).await else {
        return;
    };
    ecr_repository(&setup.sdk, &setup.name).await;
    push_image(&setup.sdk, &setup.name, "1.2.0").await;
    push_image(&setup.sdk, &setup.name, "1.3.0").await;
    let (first, second) = (setup.image_module("1.2.0"), setup.image_module("1.3.0"));
    let serving = setup
        .deployer
        .deploy(&spec(&first, None))
        .await
        .expect("deploy 1.2.0");
    let mut alongside = spec(&second, None);
    alongside.alongside = true;
    let beside = setup
        .deployer
        .deploy(&alongside)
        .await
        .expect("deploy 1.3.0 alongside");

    let (first_handle, second_handle) = (handle(&serving), handle(&beside));
    assert_eq!(first_handle.function_name, format!("plinth-{}", setup.name));
    assert_eq!(
        second_handle.function_name,
        format!("plinth-{}-v1-3-0", setup.name)
    );
    assert_ne!(serving.endpoint, beside.endpoint);
    let lambda = aws_sdk_lambda::Client::new(&setup.sdk);
    let description = |name: String| {
        let lambda = lambda.clone();
        async move {
            lambda
                .get_function()
                .function_name(name)
                .send()
                .await
                .ok()
                .and_then(|f| f.configuration()?.description().map(str::to_owned))
        }
    };
    assert_eq!(
        description(first_handle.function_name.clone())
            .await
            .as_deref(),
        Some(format!("Plinth module {} 1.2.0", setup.name).as_str()),
        "the first version's function still runs 1.2.0"
    );

    setup
        .deployer
        .undeploy(&second, &beside)
        .await
        .expect("undeploy 1.3.0");
    assert!(
        description(second_handle.function_name.clone())
            .await
            .is_none(),
        "1.3.0's function is gone"
    );
    assert!(
        setup.function().await.is_some(),
        "1.2.0's function is still there"
    );
}
