//! `GET /openapi.json` names every route the router serves, with its methods.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::events::local::LocalBus;
use crate::identity::TokenVerifier;
use crate::plane::{ControlPlane, Identity};
use crate::queue::LocalQueue;
use crate::store::embedded::EmbeddedStore;
use crate::{Ports, Settings};

/// The router's source: every `.route("…", get(…).post(…))` of the API's files.
const SOURCES: [&str; 9] = [
    include_str!("mod.rs"),
    include_str!("modules.rs"),
    include_str!("install.rs"),
    include_str!("tenants.rs"),
    include_str!("rbac.rs"),
    include_str!("events.rs"),
    include_str!("usage.rs"),
    include_str!("versions.rs"),
    include_str!("rollouts.rs"),
];

/// `(method, path)` of each route registered in `source`, however rustfmt wrapped the calls.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let mut routes = Vec::new();
    for call in compact.split(".route(\"").skip(1) {
        let Some((path, rest)) = call.split_once('"') else {
            continue;
        };
        // Handlers are named, never called: the route's call ends at the first `))` or `,)`.
        let end = [rest.find("))"), rest.find(",)")]
            .into_iter()
            .flatten()
            .min();
        let handlers = &rest[..end.unwrap_or(rest.len())];
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = |prefix: &str| handlers.contains(&format!("{prefix}{method}("));
            if called(",") || called(".") {
                routes.push((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

fn platform(dir: &std::path::Path) -> Arc<ControlPlane> {
    let store = EmbeddedStore::open(dir.join("plinth.redb")).expect("store opens");
    let (queue, _worker) = tokio::sync::mpsc::unbounded_channel();
    let ports = Ports::new(
        Arc::new(store),
        Arc::new(LocalBus::default()),
        Arc::new(LocalQueue(queue)),
    );
    let tokens =
        TokenVerifier::hs256(b"openapi-test-secret-0123456789abcdef", None, None).expect("secret");
    let identity = Identity {
        tokens,
        context: Arc::new(crate::identity::ContextSigner::generate().expect("key")),
    };
    Arc::new(ControlPlane::build(ports, identity, Settings::default()))
}

async fn fetch_document() -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let router = super::super::router(platform(dir.path()));
    let request = Request::get("/openapi.json")
        .body(Body::empty())
        .expect("request");
    let response = router.oneshot(request).await.expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test]
async fn every_route_of_the_router_is_described_with_its_methods() {
    let document = fetch_document().await;
    let paths = document["paths"].as_object().expect("paths");
    let routes: Vec<_> = SOURCES.iter().flat_map(|s| routes_in(s)).collect();
    assert!(
        routes.len() >= 30,
        "found only {} routes in the router's source",
        routes.len()
    );
    let missing: Vec<String> = routes
        .iter()
        .filter(|(method, path)| {
            paths
                .get(path.as_str())
                .and_then(|p| p.get(method.as_str()))
                .is_none()
        })
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(missing.is_empty(), "not in /openapi.json: {missing:?}");
    let described: BTreeSet<_> = paths.keys().cloned().collect();
    let served: BTreeSet<_> = routes.iter().map(|(_, path)| path.clone()).collect();
    assert_eq!(
        described, served,
        "/openapi.json describes paths the router does not serve"
    );
}

#[tokio::test]
async fn the_document_names_its_schemas_security_and_problem_answers() {
    let document = fetch_document().await;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    let schemas = &document["components"]["schemas"];
    for name in [
        "ModuleChange",
        "ResolvedConfig",
        "InstallRequest",
        "ProblemDocument",
    ] {
        assert!(schemas.get(name).is_some(), "schema {name} missing");
    }
    assert!(
        document["components"]["securitySchemes"]
            .get("bearer")
            .is_some()
    );
    let install = &document["paths"]["/api/v1/modules/{module}/install"]["post"];
    assert!(install["responses"].get("202").is_some());
    assert!(
        install["responses"]["422"]["content"]
            .get("application/problem+json")
            .is_some()
    );
}

#[test]
fn the_route_scanner_reads_chained_methods() {
    let source =
        ".route(\"/a/{x}\", get(one).delete(two))\n.route(\n    \"/b\",\n    post(three),\n)\n";
    let routes = routes_in(source);
    assert_eq!(
        routes,
        vec![
            ("get".into(), "/a/{x}".into()),
            ("delete".into(), "/a/{x}".into()),
            ("post".into(), "/b".into())
        ]
    );
}

/// The property-based run found answers the document did not admit: problem documents of
/// another shape, a `null` body documented as valid, a 422 on a route documented 200/401.
/// Each operation documents every status its shape can answer, in the shape it is answered.
#[tokio::test]
async fn every_operation_documents_each_status_its_shape_can_answer() {
    let document = fetch_document().await;
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let in_path = parameters.iter().any(|p| p["in"] == "path");
            let body = operation.get("requestBody");
            let mut wanted = Vec::new();
            if secured {
                wanted.extend(["401", "503"]);
            }
            if in_path {
                wanted.push("404");
            }
            if !parameters.is_empty() {
                wanted.push("422");
            }
            if let Some(body) = body {
                wanted.extend(["400", "413", "415", "422"]);
                for (media, content) in body["content"].as_object().expect("content") {
                    let schema = &content["schema"];
                    let object = schema["type"] == "object" || schema.get("$ref").is_some();
                    if !object {
                        missing.push(format!("{method} {path}: {media} body admits {schema}"));
                    }
                }
            }
            for status in wanted {
                if !responses.contains_key(status) {
                    missing.push(format!("{method} {path}: {status}"));
                }
            }
            for (status, response) in responses {
                let Some(problem) = response["content"].get("application/problem+json") else {
                    continue;
                };
                let shape = if status == "422" {
                    "#/components/schemas/ValidationProblem"
                } else {
                    "#/components/schemas/ProblemDocument"
                };
                if problem["schema"]["$ref"] != shape {
                    missing.push(format!("{method} {path}: {status} is not a {shape}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
    let problem = &document["components"]["schemas"]["ProblemDocument"];
    assert_eq!(
        problem["required"],
        serde_json::json!(["type", "title", "status", "detail"])
    );
    let validation = document["components"]["schemas"]["ValidationProblem"].to_string();
    assert!(
        validation.contains("\"required\":[\"errors\"]"),
        "{validation}"
    );
}

/// The property-based run sent requests the document admitted and the handlers refused: `{}`
/// to create a tenant, ids of any characters, a page `limit` past `usize`. The document now
/// says what the handlers take.
#[tokio::test]
async fn the_document_admits_only_what_the_handlers_take() {
    let document = fetch_document().await;
    let body = |path: &str, method: &str| {
        document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
            .clone()
    };
    let tenant = body("/api/v1/tenants", "post");
    assert_eq!(
        tenant["required"],
        serde_json::json!(["id", "name"]),
        "{tenant}"
    );
    assert_eq!(tenant["additionalProperties"], false);
    let verify = body("/api/v1/rbac/verify", "post");
    assert_eq!(
        verify["required"],
        serde_json::json!(["tenant_id", "user_id", "permission"])
    );
    assert_eq!(
        body("/api/v1/modules", "post")["$ref"],
        "#/components/schemas/Manifest"
    );
    assert!(document["components"]["schemas"]["Manifest_backend"].is_object());
    let audit = &document["paths"]["/api/v1/tenants/{tenant}/audit"]["get"]["parameters"];
    let find = |name: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap_or_default()
    };
    assert_eq!(find("limit")["maximum"], 100);
    let id = find("tenant")["pattern"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        id.contains("[A-Za-z0-9_-]"),
        "a tenant id of only dots is admitted: {id}"
    );
    let tier = &document["paths"]["/api/v1/modules"]["get"]["parameters"][2]["schema"]["enum"];
    assert_eq!(
        *tier,
        serde_json::json!(["free", "basic", "premium", "enterprise"])
    );
    let operations: Vec<_> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().unwrap_or_default())
        .collect();
    let unique: BTreeSet<_> = operations.iter().collect();
    assert_eq!(unique.len(), operations.len(), "operation ids are unique");
}

/// docs/api.md's route table, as `(METHOD, path)` with every path parameter written `{}`: each
/// code span of a row's first cell that starts with methods (`GET/POST /api/v1/…?query=`).
fn routes_in_the_docs() -> BTreeSet<(String, String)> {
    let docs = include_str!("../../../docs/api.md");
    let section = docs
        .split("\n## Routes\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/api.md has a `## Routes` section");
    let mut routes = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = row.split(" | ").next().unwrap_or_default();
        for span in first_cell.split('`').skip(1).step_by(2) {
            let Some((methods, path)) = span.split_once(' ') else {
                continue;
            };
            if !path.starts_with('/') || methods == "ANY" {
                continue;
            }
            let path = path.split('?').next().unwrap_or(path);
            for method in methods.split('/') {
                routes.insert((method.to_owned(), parameters_blank(path)));
            }
        }
    }
    routes
}

/// `/api/v1/tenants/{tenant}` → `/api/v1/tenants/{}`: the docs name parameters shorter.
fn parameters_blank(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Finding 11 of "The first hour": docs/api.md lacked `POST /api/v1/events` and
/// `GET …/roles`, which /openapi.json had. The two lists are compared both ways.
#[tokio::test]
async fn docs_api_md_lists_exactly_the_routes_of_openapi_json() {
    let document = fetch_document().await;
    let mut described = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            described.insert((method.to_uppercase(), parameters_blank(path)));
        }
    }
    let documented = routes_in_the_docs();
    let undocumented: Vec<_> = described.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&described).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "in /openapi.json, not in docs/api.md: {undocumented:?}\n\
         in docs/api.md, not in /openapi.json: {unserved:?}"
    );
}

#[test]
fn the_served_document_is_the_one_the_handlers_generate() {
    let generated = super::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/openapi.json");
    if std::env::var_os("PLINTH_WRITE_OPENAPI").is_some() {
        let mut text = serde_json::to_string_pretty(&generated).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
        return;
    }
    let served: Value = serde_json::from_str(super::SERVED).expect("openapi.json is JSON");
    assert!(
        served == generated,
        "registry/src/api/openapi.json is not the document the handlers generate: write it \
         again with `PLINTH_WRITE_OPENAPI=1 cargo test -p plinth-registry --lib openapi`"
    );
}
