//! Module UI bundles published with their versions (docs/console.md, "Module frontends"):
//! checked, stored content-addressed in the bundle store — a folder, or S3 on the emulator —
//! listed with each file's SHA-384 in the version's record on both stores, and named by the
//! installed version's `frontend`.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use plinth_registry::bundles::BundleStore;
use plinth_registry::bundles::folder::FolderBundles;
use plinth_registry::bundles::s3::S3Bundles;
use plinth_registry::{Ports, Result};
use serde_json::{Value, json};

use support::api::{TestPlatform, operator, tenant_admin};
use support::fakes::Backend;

/// The router the support's scenarios use.
const ROUTER: support::api::MakeRouter = plinth_registry::App::api;

/// A bundle store that remembers every key written, over another.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn BundleStore>,
    written: Mutex<Vec<String>>,
}

impl Recording {
    fn over(inner: Arc<dyn BundleStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            written: Mutex::default(),
        })
    }

    fn written(&self) -> Vec<String> {
        self.written.lock().unwrap().clone()
    }
}

#[async_trait]
impl BundleStore for Recording {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.written.lock().unwrap().push(key.to_owned());
        self.inner.put(key, body, content_type).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }

    async fn presigned_get(&self, key: &str, expires: Duration) -> Result<Option<String>> {
        self.inner.presigned_get(key, expires).await
    }
}

fn manifest(name: &str) -> Value {
    json!({
        "name": name, "display_name": "Ledger", "version": "1.0.0",
        "backend": {"type": "microservice", "api_prefix": format!("/api/v1/{name}"), "health_check": "/health"},
        "frontend": {"type": "spa-module", "bundle": "ui"}
    })
}

fn file(path: &str, body: &[u8]) -> Value {
    json!({"path": path, "content_base64": STANDARD.encode(body)})
}

fn sha384(body: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, body);
    format!("sha384-{}", STANDARD.encode(digest.as_ref()))
}

const ENTRY: &[u8] = b"import './lib/list.js'; export default {};";
const LIST: &[u8] = b"export const list = [];";

/// Publishes `ledger` 1.0.0 with two files, then checks the record, the stored bytes and
/// what a bad bundle leaves behind.
async fn published_and_stored(p: &TestPlatform, store: &Recording) {
    let body = json!({
        "manifest": manifest("ledger"),
        "bundle": {"files": [file("module.js", ENTRY), file("lib/list.js", LIST)]}
    });
    let published = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(body))
        .await;
    let version = published.expect(StatusCode::CREATED).clone();
    let digest = version["bundle"]["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        version["bundle"]["files"],
        json!([
            {"path": "module.js", "integrity": sha384(ENTRY), "size": ENTRY.len()},
            {"path": "lib/list.js", "integrity": sha384(LIST), "size": LIST.len()},
        ])
    );
    // The record as read back from the store lists the same.
    let versions = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/versions",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        versions.expect(StatusCode::OK)[0]["bundle"],
        version["bundle"]
    );
    // Stored content-addressed, the bytes as sent.
    let key = format!("bundles/ledger/1.0.0/{digest}/lib/list.js");
    assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(LIST));
    assert_eq!(
        store.written(),
        [
            format!("bundles/ledger/1.0.0/{digest}/module.js"),
            key.clone()
        ]
    );

    // A bundle escaping its folder: refused naming the file, nothing written.
    let escaping = json!({
        "manifest": manifest("journal"),
        "bundle": {"files": [file("module.js", ENTRY), file("../../ledger/1.0.0/x.js", LIST)]}
    });
    let refused = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(escaping))
        .await;
    refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "bundle.files[1].path");
    assert_eq!(store.written().len(), 2, "nothing more was written");
    let journal = p
        .call(
            Method::GET,
            "/api/v1/modules/journal/versions",
            operator(),
            None,
        )
        .await;
    assert_eq!(journal.status, StatusCode::NOT_FOUND, "no version recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_published_with_its_bundle_lists_each_file_s_sha384_and_the_folder_store_holds_its_bytes()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = Recording::over(Arc::new(FolderBundles::new(dir.path())));
    let bundles: Arc<dyn BundleStore> = store.clone();
    let p = TestPlatform::embedded_adapted(|ports: Ports| ports.with_bundles(bundles));
    published_and_stored(&p, &store).await;
    assert!(
        dir.path()
            .join("bundles/ledger/1.0.0")
            .read_dir()
            .unwrap()
            .count()
            == 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_published_with_its_bundle_is_recorded_in_dynamodb_and_stored_in_s3() {
    let test = "a_version_published_with_its_bundle_is_recorded_in_dynamodb_and_stored_in_s3";
    if !support::emulator_configured(test) {
        return;
    }
    let sdk = plinth_registry::aws::config_from_env().await;
    let bucket = support::unique_table("plinth-bundles").to_lowercase();
    let s3 = S3Bundles::new(&sdk, &bucket);
    s3.create_bucket()
        .await
        .expect("the bucket on the emulator");
    let store = Recording::over(Arc::new(s3));
    let bundles: Arc<dyn BundleStore> = store.clone();
    let p = TestPlatform::dynamo_adapted(test, |ports: Ports| ports.with_bundles(bundles))
        .await
        .expect("an emulator");
    published_and_stored(&p, &store).await;

    // Each object carries its media type and a year's immutable cache, so S3 or CloudFront
    // serves it as the console does.
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let key = store.written()[0].clone();
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/javascript; charset=utf-8"));
    assert_eq!(
        head.cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(store.get("bundles/nothing/here.js").await.unwrap(), None);

    // A pre-signed link reads the object with no credentials at all.
    let link = store
        .presigned_get(&key, Duration::from_secs(300))
        .await
        .unwrap()
        .expect("S3 signs links");
    assert!(link.contains("X-Amz-Signature="), "{link}");
    let read = reqwest::get(&link).await.unwrap();
    assert_eq!(read.status(), 200, "{link}");
    assert_eq!(
        read.bytes().await.unwrap().as_ref(),
        store.get(&key).await.unwrap().unwrap().as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_version_s_frontend_names_its_entry_its_served_base_and_each_file_s_integrity()
 {
    let dir = tempfile::tempdir().unwrap();
    let bundles: Arc<dyn BundleStore> = Arc::new(FolderBundles::new(dir.path()));
    let p = TestPlatform::embedded_adapted(|ports: Ports| ports.with_bundles(bundles));
    let body = json!({
        "manifest": manifest("ledger"),
        "bundle": {"files": [file("module.js", ENTRY), file("lib/list.js", LIST)]}
    });
    let published = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(body))
        .await;
    let digest = published.expect(StatusCode::CREATED)["bundle"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/frontend",
            tenant_admin("acme"),
            None,
        )
        .await;
    before.expect_problem(StatusCode::NOT_FOUND, "ledger has never been installed");

    let backend = Backend::default();
    let url = backend.start().await;
    p.call(
        Method::POST,
        "/api/v1/modules/ledger/install",
        operator(),
        Some(json!({"version": "1.0.0", "endpoint": url})),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    assert_eq!(p.settled("ledger").await["status"], "installed");
    let frontend = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/frontend",
            tenant_admin("acme"),
            None,
        )
        .await;
    assert_eq!(
        frontend.expect(StatusCode::OK),
        &json!({
            "module": "ledger", "version": "1.0.0", "type": "spa-module",
            "entry_point": "module.js",
            "base": format!("/console/bundles/ledger/1.0.0/{digest}/"),
            "files": [
                {"path": "module.js", "integrity": sha384(ENTRY), "size": ENTRY.len()},
                {"path": "lib/list.js", "integrity": sha384(LIST), "size": LIST.len()},
            ]
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_without_its_entry_or_without_a_frontend_section_or_without_a_store_is_refused_naming_the_field()
 {
    // No bundle store (the default): refused naming `bundle`, no version recorded.
    let p = TestPlatform::embedded_with(ROUTER);
    let body =
        json!({"manifest": manifest("ledger"), "bundle": {"files": [file("module.js", ENTRY)]}});
    let refused = p
        .call(Method::POST, "/api/v1/modules", operator(), Some(body))
        .await;
    refused.expect_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "this platform keeps no module bundles",
    );
    assert_eq!(refused.body["errors"][0]["path"], "bundle");
    let versions = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/versions",
            operator(),
            None,
        )
        .await;
    assert_eq!(versions.status, StatusCode::NOT_FOUND);

    let dir = tempfile::tempdir().unwrap();
    let store = Recording::over(Arc::new(FolderBundles::new(dir.path())));
    let bundles: Arc<dyn BundleStore> = store.clone();
    let p = TestPlatform::embedded_adapted(|ports: Ports| ports.with_bundles(bundles));
    let mut no_frontend = manifest("ledger");
    no_frontend.as_object_mut().unwrap().remove("frontend");
    for (body, field, detail) in [
        (
            json!({"manifest": manifest("ledger"), "bundle": {"files": [file("other.js", ENTRY)]}}),
            "bundle.files",
            "has no module.js",
        ),
        (
            json!({"manifest": no_frontend, "bundle": {"files": [file("module.js", ENTRY)]}}),
            "bundle",
            "no frontend section",
        ),
        (
            json!({"manifest": manifest("ledger"), "bundle": {"files": []}}),
            "bundle.files",
            "has no file",
        ),
        (
            json!({"manifest": manifest("ledger"), "bundle": {"files": [{"path": "module.js", "content_base64": "%%%"}]}}),
            "bundle.files[0].content_base64",
            "is not base64",
        ),
        (
            json!({"manifest": manifest("ledger"), "bundle": {"files": [file("module.js", ENTRY)]}, "extra": 1}),
            "extra",
            "is not a field",
        ),
    ] {
        let refused = p
            .call(Method::POST, "/api/v1/modules", operator(), Some(body))
            .await;
        refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, detail);
        assert_eq!(refused.body["errors"][0]["path"], field, "{}", refused.body);
    }
    assert!(store.written().is_empty(), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_the_console_cannot_load_is_refused_at_publish_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Recording::over(Arc::new(FolderBundles::new(dir.path())));
    let bundles: Arc<dyn BundleStore> = store.clone();
    let p = TestPlatform::embedded_adapted(|ports: Ports| ports.with_bundles(bundles));
    let frontend = |frontend: Value| {
        let mut manifest = manifest("ledger");
        manifest["frontend"] = frontend;
        json!({"manifest": manifest, "bundle": {"files": [file("module.js", ENTRY), file("index.html", b"<p>")]}})
    };
    for (body, field, detail) in [
        (
            frontend(json!({"type": "react", "bundle": "ui"})),
            "frontend.type",
            "`react` is not a frontend the console loads",
        ),
        (
            frontend(
                json!({"type": "spa-module", "entry_point": "../../etc/passwd", "bundle": "ui"}),
            ),
            "frontend.entry_point",
            "is not a plain path inside the bundle's folder",
        ),
        (
            frontend(json!({"type": "iframe", "entry_point": "/index.html", "bundle": "ui"})),
            "frontend.entry_point",
            "is not a plain path",
        ),
    ] {
        let refused = p
            .call(Method::POST, "/api/v1/modules", operator(), Some(body))
            .await;
        refused.expect_problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the manifest has 1 problem",
        );
        assert_eq!(refused.body["errors"][0]["path"], field, "{}", refused.body);
        let message = refused.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(detail), "{message}");
    }
    assert!(store.written().is_empty(), "nothing was stored");
    let versions = p
        .call(
            Method::GET,
            "/api/v1/modules/ledger/versions",
            operator(),
            None,
        )
        .await;
    assert_eq!(versions.status, StatusCode::NOT_FOUND);
}

/// Review finding: the folder store wrote each file beside itself as `{name}.partial`, so a
/// bundle with `lib.partial` and `lib.js` lost `lib.partial` (its bytes replaced by `lib.js`'s,
/// then renamed away) — listed in the version, never served, and not repaired by publishing
/// again (the same content is the same version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_file_named_like_another_s_partial_write_is_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Recording::over(Arc::new(FolderBundles::new(dir.path())));
    let bundles: Arc<dyn BundleStore> = store.clone();
    let p = TestPlatform::embedded_adapted(|ports: Ports| ports.with_bundles(bundles));
    let body = json!({
        "manifest": manifest("ledger"),
        "bundle": {"files": [
            file("lib.partial", b"kept as published"),
            file("lib.js", b"export const lib = 1;"),
            file("module.js", ENTRY),
        ]}
    });
    p.call(Method::POST, "/api/v1/modules", operator(), Some(body))
        .await
        .expect(StatusCode::CREATED);
    for (path, body) in [
        ("lib.partial", &b"kept as published"[..]),
        ("lib.js", &b"export const lib = 1;"[..]),
    ] {
        let key = store
            .written()
            .into_iter()
            .find(|k| k.ends_with(&format!("/{path}")))
            .expect("stored");
        assert_eq!(
            store.get(&key).await.unwrap().as_deref(),
            Some(body),
            "{path}"
        );
    }
}
