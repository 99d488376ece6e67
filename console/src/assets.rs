//! The shell's own files, embedded in the binary: no build step, nothing to install. They are
//! served under `/console/{version}/…`, where `version` is a hash of them all, so each can be
//! cached for a year (`immutable`) and a new binary's files are new URLs; only `/` itself, which
//! names the version, is revalidated on every load.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_registry::hash::sha256_hex;

use super::Console;

/// One embedded file.
struct Asset {
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/console/{version}/` (the page itself is [`INDEX`]).
const ASSETS: &[Asset] = &[
    Asset {
        name: "shell.js",
        body: include_bytes!("../assets/shell.js"),
        content_type: JS,
    },
    Asset {
        name: "api.js",
        body: include_bytes!("../assets/api.js"),
        content_type: JS,
    },
    Asset {
        name: "loader.js",
        body: include_bytes!("../assets/loader.js"),
        content_type: JS,
    },
    Asset {
        name: "configure.js",
        body: include_bytes!("../assets/configure.js"),
        content_type: JS,
    },
    Asset {
        name: "dom.js",
        body: include_bytes!("../assets/dom.js"),
        content_type: JS,
    },
    Asset {
        name: "admin.js",
        body: include_bytes!("../assets/admin.js"),
        content_type: JS,
    },
    Asset {
        name: "admin-marketplace.js",
        body: include_bytes!("../assets/admin-marketplace.js"),
        content_type: JS,
    },
    Asset {
        name: "admin-tenant.js",
        body: include_bytes!("../assets/admin-tenant.js"),
        content_type: JS,
    },
    Asset {
        name: "admin-lifecycle.js",
        body: include_bytes!("../assets/admin-lifecycle.js"),
        content_type: JS,
    },
    Asset {
        name: "admin-operate.js",
        body: include_bytes!("../assets/admin-operate.js"),
        content_type: JS,
    },
    Asset {
        name: "favicon.svg",
        body: include_bytes!("../assets/favicon.svg"),
        content_type: "image/svg+xml",
    },
    Asset {
        name: "shell.css",
        body: include_bytes!("../assets/shell.css"),
        content_type: CSS,
    },
];

/// The page, with `{{version}}` where the assets' version goes.
const INDEX: &str = include_str!("../assets/index.html");

/// The shell's files as served: their version and the page that names it.
#[derive(Debug, Clone)]
pub(super) struct Assets {
    version: String,
    index: String,
}

impl Assets {
    pub(super) fn new() -> Self {
        let mut all = Vec::new();
        for asset in ASSETS {
            all.extend_from_slice(asset.name.as_bytes());
            all.extend_from_slice(asset.body);
        }
        all.extend_from_slice(INDEX.as_bytes());
        let version = sha256_hex(&all)[..16].to_owned();
        let index = INDEX.replace("{{version}}", &version);
        Self { version, index }
    }

    /// The hash in the assets' URLs.
    pub(super) fn version(&self) -> &str {
        &self.version
    }
}

/// `GET /`: the shell's page, revalidated on every load (it names the assets' version).
pub(super) async fn index(State(console): State<Console>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        console.assets.index.clone(),
    )
        .into_response();
    console.security_headers(response.headers_mut());
    response
}

/// `GET /console/{version}/{file}`: an embedded file, cached for a year; another version's
/// file is a 404 (a page that old loads again and gets the new names).
pub(super) async fn asset(
    State(console): State<Console>,
    Path((version, name)): Path<(String, String)>,
) -> Response {
    let found = ASSETS.iter().find(|asset| asset.name == name);
    let mut response = match found {
        Some(asset) if version == console.assets.version => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (
                    header::CACHE_CONTROL,
                    plinth_registry::bundles::CACHE_CONTROL,
                ),
            ],
            asset.body,
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            format!("no console file {version}/{name}"),
        )
            .into_response(),
    };
    console.security_headers(response.headers_mut());
    response
}
