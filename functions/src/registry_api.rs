//! The registry-api function's router: the platform API ([`plinth_registry::App::api`]) with
//! the console beside it (docs/console.md, "On AWS") — the shell at `/` and its embedded files,
//! the session cookie, the identity provider's sign-in and its callback, and `/console/api/…`,
//! passed to the stack's API (`PLINTH_URL`) with the session's token, so that module routes go
//! through API Gateway's authorizer like any client's.

use anyhow::{Context, Result, anyhow};
use axum::Router;
use plinth_console::{Console, Oidc, OidcSettings};
use plinth_registry::App;
use plinth_registry::identity::ProviderSettings;

/// What the console needs on AWS.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// The stack's API (`PLINTH_URL`): where `/console/api/…` sends the shell's calls, and,
    /// without `PLINTH_OIDC_REDIRECT_URI`, where the provider sends users back.
    pub url: String,
    /// The console's client at the identity provider, if it has one.
    pub oidc: Option<OidcSettings>,
    /// The identity provider (its issuer and audience), if the stack has one.
    pub provider: Option<ProviderSettings>,
    /// What the login cookies' key is derived from (the stack's JWT secret).
    pub cookie_secret: String,
}

/// The console as the function serves it: never the development sign-in (on AWS it would let
/// anyone sign in as the demo's users); the identity provider's when a client is configured.
pub fn console(app: &App, settings: ConsoleSettings) -> Result<Console> {
    let console = Console::new(app.plane.clone(), "", &settings.url).without_development_sign_in();
    let Some(oidc) = settings.oidc else {
        return Ok(console);
    };
    let provider = settings.provider.context(
        "PLINTH_OIDC_CLIENT_ID needs an identity provider: set PLINTH_JWKS_URL (or `oidc`), \
         PLINTH_JWT_ISSUER and PLINTH_JWT_AUDIENCE (the JwksUrl, JwtIssuer and JwtAudience \
         parameters)",
    )?;
    let oidc = Oidc::new(
        oidc.or_callback_of(&settings.url),
        &provider.issuer,
        &provider.audience,
        settings.cookie_secret.as_bytes(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(console.with_oidc(std::sync::Arc::new(oidc)))
}

/// The platform API and the console, one router for `lambda_http`.
pub fn router(app: &App, console: Console) -> Router {
    app.api().merge(console.router())
}

/// [`ConsoleSettings`] from the environment: `PLINTH_URL`, `PLINTH_OIDC_*`, the provider's
/// `PLINTH_JWKS_URL` and the rest, and — only with a client — the JWT secret
/// (`PLINTH_JWT_SECRET_ARN`, or `PLINTH_JWT_SECRET`) for the login cookies' key.
pub async fn console_settings_from_env() -> Result<ConsoleSettings> {
    let url = std::env::var("PLINTH_URL").unwrap_or_default();
    let oidc = OidcSettings::from_env().map_err(|e| anyhow!("{e}"))?;
    let cookie_secret = match (&oidc, std::env::var("PLINTH_JWT_SECRET_ARN")) {
        (None, _) => String::new(),
        (Some(_), Ok(arn)) if !arn.is_empty() => {
            let sdk = plinth_registry::aws::config_from_env().await;
            crate::platform_secrets::PlatformSecrets::new(&sdk)
                .jwt_secret(&arn)
                .await
                .context("PLINTH_JWT_SECRET_ARN (the console's login cookies are signed with a key derived from it)")?
        }
        (Some(_), _) => std::env::var("PLINTH_JWT_SECRET").context(
            "PLINTH_JWT_SECRET_ARN (or PLINTH_JWT_SECRET) is not set: the console's login \
             cookies are signed with a key derived from it",
        )?,
    };
    Ok(ConsoleSettings {
        url,
        oidc,
        provider: ProviderSettings::from_env(),
        cookie_secret,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::testkit::{Kit, fixture};

    /// An identity provider's discovery document, served on a port of its own.
    async fn provider() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        });
        let router = Router::new().route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(document) }),
        );
        let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (issuer, server)
    }

    fn settings(issuer: &str) -> ConsoleSettings {
        ConsoleSettings {
            url: "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com".into(),
            oidc: Some(OidcSettings {
                client_id: "plinth-console".into(),
                client_secret: None,
                redirect_uri: String::new(),
                scopes: Vec::new(),
                development_sign_in: true,
            }),
            provider: Some(ProviderSettings {
                jwks_url: "oidc".into(),
                issuer: issuer.into(),
                audience: "plinth-console".into(),
                claims: String::new(),
            }),
            cookie_secret: "the-stack-jwt-secret-0123456789abcdef".into(),
        }
    }

    async fn answer(router: Router, payload: &str) -> axum::response::Response {
        let payload = fixture(payload).to_string();
        let request = lambda_http::request::from_str(&payload).unwrap();
        router.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn the_registry_api_function_answers_the_root_with_the_shell_and_the_api_as_before() {
        let kit = Kit::new();
        let (issuer, _provider) = provider().await;
        let console = console(&kit.app, settings(&issuer)).unwrap();
        let router = router(&kit.app, console);
        let shell = answer(router.clone(), "apigw-v2-console-root-request.json").await;
        assert_eq!(shell.status(), StatusCode::OK);
        assert_eq!(
            shell.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            shell.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let html = axum::body::to_bytes(shell.into_body(), usize::MAX)
            .await
            .unwrap();
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("/shell.js"), "{html}");
        let health = answer(router, "apigw-v2-health-request.json").await;
        assert_eq!(health.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_registry_api_function_sends_a_sign_in_to_the_identity_provider_with_pkce() {
        let kit = Kit::new();
        let (issuer, _provider) = provider().await;
        let router = router(&kit.app, console(&kit.app, settings(&issuer)).unwrap());
        let login = answer(router.clone(), "apigw-v2-oidc-login-request.json").await;
        assert_eq!(login.status(), StatusCode::FOUND);
        let to = login.headers()[header::LOCATION].to_str().unwrap();
        assert!(to.starts_with(&format!("{issuer}/authorize?")), "{to}");
        let to = url::Url::parse(to).unwrap();
        let asked: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
        assert_eq!(asked["code_challenge_method"], "S256");
        assert_eq!(
            asked["redirect_uri"],
            "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/console/oidc/callback"
        );
        let cookie = login.headers()[header::SET_COOKIE].to_str().unwrap();
        // Served over HTTPS: the login cookie is `Secure`.
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("Secure"),
            "{cookie}"
        );
        // The development sign-in is never offered by the function, whatever the settings say.
        let session = answer(router, "apigw-v2-console-session-request.json").await;
        let body = axum::body::to_bytes(session.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["development_users"], json!([]));
        assert_eq!(body["oidc"]["login"], "/console/oidc/login");
    }

    #[tokio::test]
    async fn a_client_without_an_identity_provider_is_refused_naming_the_settings() {
        let kit = Kit::new();
        let mut lone = settings("https://idp.example");
        lone.provider = None;
        let error = console(&kit.app, lone).unwrap_err().to_string();
        assert!(error.contains("PLINTH_JWKS_URL"), "{error}");
        let mut other = settings("https://idp.example");
        other.provider.as_mut().unwrap().audience = "another-client".into();
        let error = console(&kit.app, other).unwrap_err().to_string();
        assert!(
            error.contains("PLINTH_JWT_AUDIENCE") && error.contains("PLINTH_OIDC_CLIENT_ID"),
            "{error}"
        );
    }
}
