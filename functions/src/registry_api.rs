//! The registry-api function's router: the platform API ([`plinth_registry::App::api`]) with
//! the console beside it (docs/console.md, "On AWS") — the shell at `/` and its embedded files,
//! the session cookie, the identity provider's sign-in and its callback, and `/console/api/…`,
//! passed to the stack's API (`PLINTH_URL`) with the session's token, so that module routes go
//! through API Gateway's authorizer like any client's.
//!
//! [`Function`] serves that router to the Lambda runtime: `lambda_http` turns API Gateway's
//! payload 2.0 into the request (cookies, query string, base64 bodies), and [`Answer`] turns the
//! router's response into API Gateway's, text or base64 by [`api_gateway_body`]. `lambda_http`'s
//! own response conversion decodes every text body through `encoding_rs` by the charset it
//! names, which links every decoder into the function (BENCHMARKS.md, "Lambda zips on a diet").

use std::convert::Infallible;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::body::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
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

/// The registry API as the Lambda runtime calls it (`lambda_http::run(Function(router))`): each
/// request through the router, each response made ready for API Gateway by [`Answer`].
#[derive(Debug, Clone)]
pub struct Function(pub Router);

impl lambda_http::Service<lambda_http::Request> for Function {
    type Response = Answer;
    type Error = Infallible;
    type Future = lambda_http::BoxFuture<'static, Result<Answer, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: lambda_http::Request) -> Self::Future {
        let answer = lambda_http::Service::call(&mut self.0, request);
        Box::pin(async move { Ok(Answer::from_response(answer.await?).await) })
    }
}

/// A response as API Gateway takes it: status and headers as the router set them, the body as
/// [`api_gateway_body`] makes it (`lambda_http` moves `Set-Cookie` to `cookies`).
#[derive(Debug)]
pub struct Answer(pub http::Response<lambda_http::Body>);

impl Answer {
    /// Reads the router's whole body (it is in memory: a handler's answer).
    pub async fn from_response(response: axum::response::Response) -> Self {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => {
                let body = api_gateway_body(&parts.headers, bytes);
                Self(http::Response::from_parts(parts, body))
            }
            Err(e) => {
                tracing::error!(error = %e, "the response's body could not be read");
                let mut failed = http::Response::new(lambda_http::Body::Empty);
                *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                Self(failed)
            }
        }
    }
}

impl lambda_http::IntoResponse for Answer {
    fn into_response(
        self,
    ) -> std::pin::Pin<Box<dyn Future<Output = http::Response<lambda_http::Body>> + Send>> {
        Box::pin(std::future::ready(self.0))
    }
}

/// The body API Gateway is given: text when the media type is text (`text/*`, JSON,
/// JavaScript, XML, YAML and their `+json`/`+xml`/`+yaml` kinds, none named, or
/// `x-lambda-http-content-encoding: text`), has no `Content-Encoding`, and the bytes are UTF-8
/// as its charset says (a leading byte-order mark is dropped) — `lambda_http`'s rules; base64
/// (API Gateway sends the bytes as they are) otherwise. Where `lambda_http` would have
/// re-encoded a body (another charset, bytes that are not UTF-8), the handler's bytes are sent
/// unaltered instead.
#[must_use]
pub fn api_gateway_body(headers: &HeaderMap, bytes: Bytes) -> lambda_http::Body {
    if is_text(headers)
        && let Ok(text) = std::str::from_utf8(&bytes)
    {
        return lambda_http::Body::from(text.strip_prefix('\u{feff}').unwrap_or(text).to_owned());
    }
    lambda_http::Body::from(Vec::from(bytes))
}

const TEXT_PREFIXES: [&str; 5] = [
    "text",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/yaml",
];

const TEXT_SUFFIXES: [&str; 3] = ["+xml", "+yaml", "+json"];

/// Whether `lambda_http` would send this body as text, and its charset (if it names one) is
/// UTF-8.
fn is_text(headers: &HeaderMap) -> bool {
    if headers.contains_key(CONTENT_ENCODING) {
        return false;
    }
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        return true;
    };
    let content_type = content_type.to_str().unwrap_or_default();
    let mime_type = content_type.trim().split(';').next().unwrap_or_default();
    let text = TEXT_PREFIXES
        .iter()
        .any(|prefix| content_type.starts_with(prefix))
        || TEXT_SUFFIXES
            .iter()
            .any(|suffix| mime_type.ends_with(suffix))
        || headers
            .get("x-lambda-http-content-encoding")
            .is_some_and(|value| value == "text");
    text && utf8_charset(content_type)
}

/// No charset, one that does not parse, or one of UTF-8's labels (the WHATWG Encoding
/// Standard's, as `encoding_rs` reads them).
fn utf8_charset(content_type: &str) -> bool {
    let Ok(mime) = content_type.parse::<mime::Mime>() else {
        return true;
    };
    mime.get_param(mime::CHARSET).is_none_or(|charset| {
        let label = charset.as_str().trim();
        [
            "utf-8",
            "utf8",
            "unicode-1-1-utf-8",
            "unicode11utf8",
            "unicode20utf8",
            "x-unicode20utf8",
        ]
        .iter()
        .any(|utf8| label.eq_ignore_ascii_case(utf8))
    })
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
            crate::platform_secrets::PlatformSecrets::new(&crate::wiring::sdk_config())
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
    use serde_json::{Value, json};
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

    /// What the runtime hands API Gateway for `payload`: the event through `lambda_http`'s
    /// adapter into `service`, its answer serialized as the runtime sends it.
    async fn through_the_runtime<S, R>(service: S, payload: Value) -> Value
    where
        S: lambda_http::Service<lambda_http::Request, Response = R, Error = Infallible>,
        S::Future: Send + 'static,
        R: lambda_http::IntoResponse,
    {
        let request = serde_json::from_value(payload).unwrap();
        let event = lambda_http::LambdaEvent::new(request, lambda_http::Context::default());
        let mut adapter = lambda_http::Adapter::from(service);
        let response = lambda_http::Service::call(&mut adapter, event)
            .await
            .unwrap();
        serde_json::to_value(response).unwrap()
    }

    /// An API Gateway request for `GET {path}` (the health fixture, another path).
    fn get(path: &str) -> Value {
        let mut payload = fixture("apigw-v2-health-request.json");
        payload["rawPath"] = json!(path);
        payload["requestContext"]["http"]["path"] = json!(path);
        payload
    }

    /// One route per kind of body the platform answers with.
    fn answers() -> Router {
        fn answer(
            content_type: Option<&'static str>,
            encoding: Option<&'static str>,
            body: &'static [u8],
        ) -> axum::routing::MethodRouter {
            axum::routing::get(move || async move {
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                if let Some(content_type) = content_type {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
                }
                if let Some(encoding) = encoding {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_ENCODING, encoding.parse().unwrap());
                }
                response
            })
        }
        Router::new()
            .route("/json", answer(Some("application/json"), None, b"{\"a\":\"\xc3\xa9\"}"))
            .route("/problem", answer(Some("application/problem+json"), None, b"{}"))
            .route("/html", answer(Some("text/html; charset=utf-8"), None, b"<p>caf\xc3\xa9</p>"))
            .route("/js", answer(Some("application/javascript"), None, b"let a = 1;"))
            .route("/css", answer(Some("text/css; charset=UTF8"), None, b"\xef\xbb\xbfp{}"))
            .route("/svg", answer(Some("image/svg+xml"), None, b"<svg/>"))
            .route("/none", answer(None, None, b"plain words"))
            .route("/png", answer(Some("image/png"), None, b"\x89PNG\r\n\x1a\n\x00\xff"))
            .route("/gzip", answer(Some("application/json"), Some("gzip"), b"\x1f\x8b\x08\x00"))
            .route("/wasm", answer(Some("application/wasm"), None, b"\x00asm"))
            .route("/empty", answer(Some("application/json"), None, b""))
            .route(
                "/cookies",
                axum::routing::get(|| async {
                    (
                        StatusCode::FOUND,
                        axum::response::AppendHeaders([
                            (header::LOCATION, "/next"),
                            (header::SET_COOKIE, "a=1; HttpOnly"),
                            (header::SET_COOKIE, "b=2; Secure"),
                        ]),
                    )
                }),
            )
            .route(
                "/echo",
                axum::routing::post(
                    |request_headers: http::HeaderMap, query: axum::extract::RawQuery, body: Bytes| async move {
                        axum::Json(json!({
                            "query": query.0,
                            "cookie": request_headers.get(header::COOKIE).map(|c| c.to_str().unwrap()),
                            "body": String::from_utf8_lossy(&body),
                        }))
                    },
                ),
            )
    }

    #[tokio::test]
    async fn the_function_answers_api_gateway_as_lambda_http_did() {
        for path in [
            "/json", "/problem", "/html", "/js", "/css", "/svg", "/none", "/png", "/gzip", "/wasm",
            "/empty", "/cookies",
        ] {
            let ours = through_the_runtime(Function(answers()), get(path)).await;
            let lambda_http_s = through_the_runtime(answers(), get(path)).await;
            assert_eq!(ours, lambda_http_s, "{path}");
        }
    }

    #[tokio::test]
    async fn binary_answers_reach_api_gateway_base64_encoded() {
        use base64::Engine;
        for (path, bytes) in [
            ("/png", &b"\x89PNG\r\n\x1a\n\x00\xff"[..]),
            ("/gzip", &b"\x1f\x8b\x08\x00"[..]),
            ("/wasm", &b"\x00asm"[..]),
        ] {
            let answer = through_the_runtime(Function(answers()), get(path)).await;
            assert_eq!(answer["isBase64Encoded"], true, "{path}: {answer}");
            let body = base64::engine::general_purpose::STANDARD
                .decode(answer["body"].as_str().unwrap())
                .unwrap();
            assert_eq!(body, bytes, "{path}");
        }
        let text = through_the_runtime(Function(answers()), get("/html")).await;
        assert_eq!(text["isBase64Encoded"], false);
        assert_eq!(text["body"], "<p>café</p>");
        // A UTF-8 byte-order mark is dropped, as lambda_http did.
        let css = through_the_runtime(Function(answers()), get("/css")).await;
        assert_eq!(css["body"], "p{}");
    }

    #[tokio::test]
    async fn set_cookies_reach_api_gateway_as_its_cookies_field() {
        let answer = through_the_runtime(Function(answers()), get("/cookies")).await;
        assert_eq!(answer["statusCode"], 302);
        assert_eq!(answer["cookies"], json!(["a=1; HttpOnly", "b=2; Secure"]));
        assert_eq!(answer["headers"]["location"], "/next");
        assert!(answer["headers"].get("set-cookie").is_none(), "{answer}");
    }

    #[tokio::test]
    async fn a_text_answer_in_another_charset_reaches_the_client_as_the_handler_wrote_it() {
        use base64::Engine;
        let latin1 = Router::new().route(
            "/latin1",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=iso-8859-1")],
                    &b"caf\xe9"[..],
                )
            }),
        );
        let answer = through_the_runtime(Function(latin1), get("/latin1")).await;
        // lambda_http re-encoded it as UTF-8 under the same Latin-1 header ("cafÃ©" to the
        // client); the client now gets the bytes the header describes.
        assert_eq!(answer["isBase64Encoded"], true, "{answer}");
        let body = base64::engine::general_purpose::STANDARD
            .decode(answer["body"].as_str().unwrap())
            .unwrap();
        assert_eq!(body, b"caf\xe9");
        assert_eq!(
            answer["headers"]["content-type"],
            "text/plain; charset=iso-8859-1"
        );
    }

    #[tokio::test]
    async fn the_query_string_cookies_and_base64_body_of_a_request_reach_the_router() {
        let mut payload = get("/echo");
        payload["requestContext"]["http"]["method"] = json!("POST");
        payload["rawQueryString"] = json!("a=1&a=2&b=x%20y");
        payload["cookies"] = json!(["s=1", "t=2"]);
        payload["body"] = json!("aGVsbG8gd29ybGQ=");
        payload["isBase64Encoded"] = json!(true);
        let answer = through_the_runtime(Function(answers()), payload).await;
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let echoed: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            echoed,
            json!({"query": "a=1&a=2&b=x%20y", "cookie": "s=1; t=2", "body": "hello world"})
        );
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
