//! The API Gateway HTTP API Lambda authorizer (payload format 2.0, simple responses): the
//! gateway's decision for a module route, with the tenant context the route maps onto the
//! `X-Plinth-Context` header (`$context.authorizer.context`).

use aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use plinth_registry::App;
use plinth_registry::gateway::GatewayRequest;
use serde::{Deserialize, Serialize};

/// What an allowed request carries on to its integration (`$context.authorizer.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    /// The signed tenant context, for the `X-Plinth-Context` header.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub module: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The healthy instance the platform would pick.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// The module's version serving the tenant (its pin, else the module's default): the
    /// integration sends it as `X-Plinth-Version`, which the module listener's rules route
    /// on, and the access log records it for the rollout driver's figures
    /// (`$context.authorizer.version`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The request body's length as the client declared it (`Content-Length`; 0 without
    /// one), for the access log's usage metering (`$context.authorizer.request_bytes`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_bytes: String,
    /// Why a request was refused (API Gateway answers 403 either way; this is for logs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

pub type AuthorizerResponse = ApiGatewayV2CustomAuthorizerSimpleResponse<AuthorizerContext>;

/// Decides one request: path, identity, route, enablement, permission, rate limit, healthy
/// instance. API Gateway forwards the path as the client sent it and an authorizer cannot
/// rewrite it, so only a path already in its canonical form is allowed (the same canonical
/// form as on one machine, where the gateway forwards the form it decided on): any other is
/// refused with the form to send instead, or with what in it a backend could read otherwise.
pub async fn authorize(
    app: &App,
    request: ApiGatewayV2CustomAuthorizerV2Request,
) -> AuthorizerResponse {
    let method = request.request_context.http.method.to_string();
    let path = request.raw_path.clone().unwrap_or_else(|| {
        request
            .request_context
            .http
            .path
            .clone()
            .unwrap_or_default()
    });
    let decision = app
        .authorizer
        .authorize(GatewayRequest::new(
            &method,
            &path,
            request
                .raw_query_string
                .as_deref()
                .filter(|q| !q.is_empty()),
            &request.headers,
        ))
        .await;
    let mut response = AuthorizerResponse::default();
    match decision {
        Ok(decision) => {
            response.is_authorized = true;
            response.context = AuthorizerContext {
                context: decision.context().to_owned(),
                module: decision.module().to_string(),
                tenant: decision.tenant().to_string(),
                upstream: decision.upstream.url.clone(),
                version: decision.version().to_owned(),
                request_bytes: request
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
                    .to_string(),
                reason: String::new(),
            };
        }
        Err(e) if e.status().is_server_error() => {
            tracing::error!(%method, %path, status = e.status().as_u16(), error = %e.chain(), "request failed");
            response.context.reason = e.to_string();
        }
        Err(e) => {
            tracing::info!(%method, %path, status = e.status().as_u16(), reason = %e, "request refused");
            response.context.reason = e.to_string();
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Kit, fixture, token};

    fn request(bearer: Option<&str>, path: &str) -> ApiGatewayV2CustomAuthorizerV2Request {
        let mut payload = fixture("authorizer-v2-request.json");
        payload["rawPath"] = path.into();
        payload["requestContext"]["http"]["path"] = path.into();
        match bearer {
            Some(bearer) => payload["headers"]["authorization"] = format!("Bearer {bearer}").into(),
            None => {
                payload["headers"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorization");
            }
        }
        serde_json::from_value(payload).unwrap()
    }

    #[tokio::test]
    async fn the_fixture_parses_as_payload_2_0() {
        let request: ApiGatewayV2CustomAuthorizerV2Request =
            serde_json::from_value(fixture("authorizer-v2-request.json")).unwrap();
        assert_eq!(request.version.as_deref(), Some("2.0"));
        assert_eq!(request.request_context.http.method, http::Method::GET);
        assert_eq!(
            request.raw_path.as_deref(),
            Some("/api/v1/financial/status")
        );
        // The stack names no identity source: API Gateway sends none.
        assert_eq!(request.identity_source.map(|s| s.len()).unwrap_or(0), 0);
    }

    /// Finding of the identity issue: each warm authorizer instance kept its own token
    /// buckets, so a tenant got up to n× its tier's rate. With shared limits (AWS's default),
    /// two instances admit a free tenant's 20 requests a second together; each alone would
    /// admit its whole burst of 40.
    #[tokio::test]
    async fn a_tenants_rate_limit_holds_across_authorizer_instances() {
        for shared in [true, false] {
            let mut kit = Kit::with_settings(plinth_registry::Settings {
                public_url: "http://127.0.0.1:1".into(),
                shared_rate_limits: shared,
                ..plinth_registry::Settings::default()
            });
            kit.installed_and_enabled().await;
            let instances = [kit.app.clone(), kit.another_instance()];
            let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
            let unix = || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            let started = unix();
            let mut allowed = 0;
            let mut refused = None;
            for n in 0..80 {
                let response = authorize(
                    &instances[n % 2],
                    request(Some(&alice), "/api/v1/financial/status"),
                )
                .await;
                if response.is_authorized {
                    allowed += 1;
                } else {
                    refused = Some(response.context.reason);
                }
            }
            let seconds = unix() - started + 1;
            if shared {
                assert!(allowed <= 20 * seconds, "{allowed} allowed in {seconds} s");
                let reason = refused.unwrap_or_default();
                assert!(reason.contains("rate limit"), "{reason}");
            } else {
                assert_eq!(allowed, 80, "each instance's own burst of 40: {refused:?}");
            }
        }
    }

    #[tokio::test]
    async fn an_enabled_tenant_is_allowed_with_a_signed_context() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
        let response = authorize(&kit.app, request(Some(&alice), "/api/v1/financial/status")).await;
        assert!(response.is_authorized, "{:?}", response.context.reason);
        assert_eq!(
            (
                response.context.module.as_str(),
                response.context.tenant.as_str()
            ),
            ("financial", "acme")
        );
        assert_eq!(response.context.context.split('.').count(), 3, "a JWT");
        assert!(response.context.upstream.starts_with("http://127.0.0.1:"));
        // The serialized shape API Gateway reads.
        let wire = serde_json::to_value(&response).unwrap();
        assert_eq!(wire["isAuthorized"], true);
        assert!(wire["context"]["context"].is_string());
        assert_eq!(
            wire["context"]["request_bytes"], "0",
            "a GET without a body"
        );
    }

    /// Issue 23 on AWS: the module listener's rules route on `X-Plinth-Version`, which the
    /// integration sets from `$context.authorizer.version`; so the context must name the
    /// version serving the tenant, its pin when it has one.
    #[tokio::test]
    async fn a_pinned_tenant_s_authorizer_context_names_its_pinned_version() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
        let before = authorize(&kit.app, request(Some(&alice), "/api/v1/financial/status")).await;
        assert!(before.is_authorized, "{:?}", before.context.reason);
        assert_eq!(
            before.context.version, "1.0.0",
            "the default: the first installation's"
        );

        kit.version_alongside_installed("1.1.0").await;
        let (status, body) = kit
            .call(
                http::Method::PUT,
                "/api/v1/tenants/acme/modules/financial/pin",
                &crate::testkit::operator(),
                serde_json::json!({"version": "1.1.0"}),
            )
            .await;
        assert_eq!(status, http::StatusCode::OK, "{body}");

        for app in [&kit.app, &kit.another_instance()] {
            let pinned = authorize(app, request(Some(&alice), "/api/v1/financial/status")).await;
            assert!(pinned.is_authorized, "{:?}", pinned.context.reason);
            assert_eq!(pinned.context.version, "1.1.0");
            let wire = serde_json::to_value(&pinned).unwrap();
            assert_eq!(
                wire["context"]["version"], "1.1.0",
                "what API Gateway reads"
            );
        }
    }

    /// The access log (template.yaml) reads `$context.authorizer.request_bytes` to meter the
    /// request's bytes for the tenant.
    #[tokio::test]
    async fn an_allowed_request_s_declared_length_is_in_the_context_for_the_access_log() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let alice = token("alice", Some("acme"), Some("acme-de"), &[]);
        let mut sized = request(Some(&alice), "/api/v1/financial/status");
        sized
            .headers
            .insert(http::header::CONTENT_LENGTH, "1234".parse().unwrap());
        let response = authorize(&kit.app, sized).await;
        assert!(response.is_authorized, "{:?}", response.context.reason);
        assert_eq!(response.context.request_bytes, "1234");
    }

    /// Finding 10 of "The first hour", on AWS: one token grants several companies and a
    /// request picks one with `X-Plinth-Company` (the stack caches no decision, so the pick
    /// is decided per request).
    #[tokio::test]
    async fn a_request_picks_one_of_its_tokens_companies_with_x_plinth_company() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let claims = plinth_registry::identity::Claims {
            company_ids: vec!["acme-de".into(), "acme-at".into()],
            ..plinth_registry::identity::Claims::user(
                "carol",
                Some("acme"),
                None,
                &[],
                std::time::Duration::from_secs(600),
            )
        };
        let carol = plinth_registry::identity::mint_token(crate::testkit::SECRET, &claims).unwrap();
        let picking = |company: &str| {
            let mut request = request(Some(&carol), "/api/v1/financial/status");
            request
                .headers
                .insert("x-plinth-company", company.parse().unwrap());
            request
        };
        let response = authorize(&kit.app, picking("acme-de")).await;
        assert!(response.is_authorized, "{:?}", response.context.reason);
        let context: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&response.context.context).unwrap();
        assert_eq!(context["company_id"], "acme-de");
        let response = authorize(&kit.app, picking("acme-fr")).await;
        assert!(!response.is_authorized);
        assert_eq!(
            response.context.reason,
            "your token does not grant company acme-fr; it grants acme-at, acme-de"
        );
    }

    /// Issue 13 on AWS: a module's key calls another module's route through the authorizer,
    /// for a tenant, as its manifest declares; the callee's context names the caller.
    #[tokio::test]
    async fn a_module_calls_another_with_its_key_only_as_its_manifest_declares() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let reports = kit
            .caller_installed(
                "reports",
                serde_json::json!([{"module": "financial", "permissions": ["financial:invoices.*"]}]),
            )
            .await;
        let undeclared = kit
            .caller_installed("undeclared", serde_json::json!([]))
            .await;
        let calling = |key: &str, path: &str| {
            let mut request = request(None, path);
            request
                .headers
                .insert("x-module-api-key", key.parse().unwrap());
            request
                .headers
                .insert("x-plinth-tenant", "acme".parse().unwrap());
            request
        };
        let response = authorize(&kit.app, calling(&reports, "/api/v1/financial/invoices")).await;
        assert!(response.is_authorized, "{:?}", response.context.reason);
        let context: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&response.context.context).unwrap();
        assert_eq!(context["calling_module"], "reports");
        assert_eq!(
            context["permissions"],
            serde_json::json!(["financial:invoices.read"])
        );
        let response =
            authorize(&kit.app, calling(&undeclared, "/api/v1/financial/invoices")).await;
        assert!(!response.is_authorized);
        assert_eq!(
            response.context.reason,
            "undeclared does not declare calling financial: its manifest's dependencies.calls must name it"
        );
    }

    #[tokio::test]
    async fn a_path_is_allowed_only_in_the_canonical_form_api_gateway_forwards_as_sent() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let alice = token("alice", Some("acme"), None, &[]);
        let cases = [
            (
                "/api/v1/financial/%73tatus",
                "not in canonical form; send it as /api/v1/financial/status",
            ),
            ("/api/v1/financial/status;x", "a `;` (path parameters)"),
            ("/api/v1/financial/x/..;/status", "a `;` (path parameters)"),
            ("/api/v1/financial/x/%2e%2e/status", "a `.` or `..` segment"),
            ("/api/v1/financial/status.", "a segment ending in `.`"),
            (
                "/api/v1/financial/status%20",
                "starting or ending with a space",
            ),
            (
                "/api/v1/financial/%EF%BD%93tatus",
                "an encoded byte past ASCII",
            ),
            ("/api/v1/financial/%252e%252e/status", "double encoding"),
            (
                "/api/v1/financial/%c0%ae%c0%ae/status",
                "an encoded byte past ASCII",
            ),
            (
                "/api/v1/financial/..%00/status",
                "an encoded control character",
            ),
            ("/api/v1/financial/x%2Fstatus", "an encoded `/`"),
        ];
        for (path, reason) in cases {
            let response = authorize(&kit.app, request(Some(&alice), path)).await;
            assert!(!response.is_authorized, "{path} allowed");
            assert!(
                response.context.reason.contains(reason) && response.context.reason.contains(path),
                "{path}: {}",
                response.context.reason
            );
        }
        let mut overridden = request(Some(&alice), "/api/v1/financial/status");
        overridden.raw_query_string = Some("_method=DELETE".into());
        let response = authorize(&kit.app, overridden).await;
        assert!(!response.is_authorized);
        assert!(
            response.context.reason.contains("`_method`"),
            "{}",
            response.context.reason
        );
        let canonical =
            authorize(&kit.app, request(Some(&alice), "/api/v1/financial/status")).await;
        assert!(canonical.is_authorized, "{}", canonical.context.reason);
    }

    #[tokio::test]
    async fn refusals_say_why() {
        let mut kit = Kit::new();
        kit.installed_and_enabled().await;
        let cases = [
            (None, "/api/v1/financial/status", "sign in"),
            (
                Some(token("eve", Some("globex"), None, &[])),
                "/api/v1/financial/status",
                "no module financial for your tenant",
            ),
            (
                Some(token("alice", Some("acme"), None, &[])),
                "/api/v1/financial/invoices",
                "financial:invoices.read",
            ),
            (
                Some(token("alice", Some("acme"), None, &[])),
                "/api/v1/financial/nowhere",
                "has no route",
            ),
            (
                Some("not-a-jwt".to_owned()),
                "/api/v1/financial/status",
                "invalid token",
            ),
        ];
        for (bearer, path, reason) in cases {
            let response = authorize(&kit.app, request(bearer.as_deref(), path)).await;
            assert!(!response.is_authorized, "{path} allowed");
            assert!(
                response.context.reason.contains(reason),
                "{path}: {}",
                response.context.reason
            );
            assert!(response.context.context.is_empty());
        }
    }
}
