//! The console: the browser app `plinth up` serves at `/`, and the registry-api function on
//! AWS (docs/console.md).
//!
//! - `assets.rs`: the shell's own files, embedded in the binary and served under a hash of
//!   them all, with a year's cache;
//! - `session.rs`: the session, whose token stays in an `HttpOnly` cookie; the development
//!   sign-in (the demo's users); and `/console/api/…`, which passes the shell's calls to the
//!   gateway with that token;
//! - `oidc.rs`: sign-in through an identity provider (authorization code with PKCE), ending in
//!   the same session;
//! - `bundles.rs`: modules' frontends, published with their versions and served beside the
//!   shell from the registry's bundle store, each file under its bundle's digest.
//!
//! The console's routes are merged into the platform API's router: by the gateway of `plinth
//! up`, which serves it for every request that is not a module's, and by the registry-api
//! function behind API Gateway. `/api/v1/*` and module routes are untouched.

mod assets;
mod bundles;
mod oidc;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{any, get};
use plinth_registry::plane::ControlPlane;

pub use bundles::read_bundle;
pub use oidc::{Oidc, OidcSettings};
pub use session::COOKIE;

/// The console's policy: scripts, styles, frames and calls from the console's own origin only
/// (module bundles are served from it too), no inline script or style, never framed by
/// another site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's policy when module bundles are served from `bundles_origin`
/// (`PLINTH_BUNDLES_ORIGIN`): that origin is added to where scripts, styles and frames may
/// come from, and nothing else changes; without one, [`CONTENT_SECURITY_POLICY`].
#[must_use]
pub fn content_security_policy(bundles_origin: Option<&str>) -> String {
    let Some(origin) = bundles_origin else {
        return CONTENT_SECURITY_POLICY.to_owned();
    };
    CONTENT_SECURITY_POLICY
        .split("; ")
        .map(|directive| match directive.split_once(' ') {
            Some(("script-src" | "style-src" | "frame-src", _)) => format!("{directive} {origin}"),
            _ => directive.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the console's handlers share.
#[derive(Debug, Clone)]
pub struct Console {
    plane: Arc<ControlPlane>,
    /// Signs the development sign-in's tokens (the platform's development secret).
    secret: Arc<str>,
    /// Where the gateway listens (`http://127.0.0.1:8080`): `/console/api/…` calls it.
    gateway_url: Arc<str>,
    /// Made on its first call: building one reads the system's root certificates, which a
    /// Lambda cold start should not pay for a console nobody opened (BENCHMARKS.md).
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    assets: Arc<assets::Assets>,
    /// The Content-Security-Policy of every page, built from the platform's settings.
    policy: HeaderValue,
    /// The identity provider's sign-in, when one is configured.
    oidc: Option<Arc<Oidc>>,
    /// Whether the development sign-in may be offered at all (never on AWS).
    development: bool,
}

impl Console {
    /// The console of the platform `plane`, signing development sign-ins with `secret`,
    /// calling the gateway at `gateway_url`.
    #[must_use]
    pub fn new(plane: Arc<ControlPlane>, secret: &str, gateway_url: &str) -> Self {
        let policy = content_security_policy(plane.settings.bundles_origin.as_deref());
        let policy = HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        Self {
            plane,
            policy,
            secret: secret.into(),
            gateway_url: gateway_url.trim_end_matches('/').into(),
            client: Arc::default(),
            assets: Arc::new(assets::Assets::new()),
            oidc: None,
            development: true,
        }
    }

    /// Calls the gateway and the identity provider with `client` (made already: `plinth up`
    /// shares one among its gateway threads) rather than one made on the first call.
    #[must_use]
    pub fn with_client(self, client: reqwest::Client) -> Self {
        let _ = self.client.set(client);
        self
    }

    /// Never offers the development sign-in, whatever the settings (the registry-api
    /// function: on AWS it would let anyone sign in as the demo's users).
    #[must_use]
    pub fn without_development_sign_in(mut self) -> Self {
        self.development = false;
        self
    }

    /// Signs in through the identity provider `oidc` (the development sign-in then stays on
    /// only if its settings say so).
    #[must_use]
    pub fn with_oidc(mut self, oidc: Arc<Oidc>) -> Self {
        self.oidc = Some(oidc);
        self
    }

    /// Whether the development sign-in is offered: without an identity provider, unless it
    /// was turned off for good.
    fn development_sign_in(&self) -> bool {
        self.development
            && self
                .oidc
                .as_ref()
                .is_none_or(|oidc| oidc.development_sign_in())
    }

    /// The console's HTTP client (to the gateway, and the identity provider).
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(http_client)
    }

    /// Whether the console is served over HTTPS, so that its cookies carry `Secure`.
    fn https(&self) -> bool {
        self.oidc.as_ref().is_some_and(|oidc| oidc.https())
    }

    /// The hash in the shell's asset URLs (`/console/{version}/shell.js`).
    #[must_use]
    pub fn assets_version(&self) -> String {
        self.assets.version().to_owned()
    }

    /// The console's routes: `/`, `/console/{version}/{file}`, `/console/session`,
    /// `/console/oidc/login` and `/console/oidc/callback`, `/console/api/{rest}` and
    /// `/console/bundles/{module}/{version}/{digest}/{path}`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(assets::index))
            .route(
                "/console/session",
                get(session::show)
                    .post(session::sign_in)
                    .delete(session::sign_out),
            )
            .route("/console/oidc/login", get(oidc::login))
            .route("/console/oidc/callback", get(oidc::callback))
            .route("/console/api/{*rest}", any(session::pass_through))
            .route(
                "/console/bundles/{module}/{version}/{*rest}",
                get(bundles::file),
            )
            .route("/console/{version}/{file}", get(assets::asset))
            .with_state(self)
    }
}

impl Console {
    /// The headers every console page carries.
    fn security_headers(&self, headers: &mut HeaderMap) {
        security_headers(headers, &self.policy);
    }
}

/// The console's HTTP client (to the gateway, and the identity provider): it follows no
/// redirect. A module's backend answering `/console/api/…` with a `307` to a platform route
/// must not make the console call that route with the user's token (nor reach another host).
#[must_use]
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The headers every console page carries, with `policy` as its Content-Security-Policy.
fn security_headers(headers: &mut HeaderMap, policy: &HeaderValue) {
    headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}
