//! Module frontends, served from the data directory: `plinth up --demo` stages each example's
//! frontend folder (the manifest's `frontend.bundle`) under
//! `{data_dir}/console-bundles/{module}/{version}/`, and the console serves it at
//! `/console/bundles/{module}/{version}/{file}`, from the console's own origin (so the CSP's
//! `'self'` covers it).

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_module_sdk::ModuleName;
use serde_json::Value;

use super::{Console, security_headers};

/// Where staged bundles live in the data directory.
const FOLDER: &str = "console-bundles";

/// A micro-frontend's document runs sandboxed even when opened on its own: scripts, no
/// origin (so no cookie, no storage, no same-origin call), and only its own files.
const FRAME_POLICY: &str = "sandbox allow-scripts allow-forms; default-src 'self'; \
    script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// Copies a module's frontend folder (its manifest's `frontend.bundle`, relative to
/// `module_dir`) to where the console serves it, replacing an earlier copy of that version.
/// A manifest without a frontend stages nothing.
pub fn stage(data_dir: &FsPath, module_dir: &FsPath, manifest: &Value) -> std::io::Result<()> {
    let (Some(name), Some(version), Some(bundle)) = (
        manifest["name"].as_str(),
        manifest["version"].as_str(),
        manifest["frontend"]["bundle"].as_str(),
    ) else {
        return Ok(());
    };
    let from = module_dir.join(bundle);
    if !from.is_dir() {
        return Err(std::io::Error::other(format!(
            "frontend.bundle: {} is not a folder",
            from.display()
        )));
    }
    let to = data_dir.join(FOLDER).join(name).join(version);
    if to.exists() {
        std::fs::remove_dir_all(&to)?;
    }
    copy_folder(&from, &to)
}

fn copy_folder(from: &FsPath, to: &FsPath) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `GET /console/bundles/{module}/{version}/{file}`: a staged file of a module's frontend.
pub(super) async fn file(
    State(console): State<Console>,
    Path((module, version, file)): Path<(String, String, String)>,
) -> Response {
    let Some(path) = staged_path(&console.data_dir, &module, &version, &file) else {
        return not_found(&module, &version, &file);
    };
    let Ok(body) = tokio::fs::read(&path).await else {
        return not_found(&module, &version, &file);
    };
    let kind = content_type(&file);
    let mut response = (
        [
            (header::CONTENT_TYPE, kind),
            // A version's files can be staged again while developing: revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    if kind.starts_with("text/html") {
        security_headers(response.headers_mut());
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(FRAME_POLICY),
        );
        response.headers_mut().insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    } else {
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}

/// The staged file a request names, when every part of it is a plain name (no `..`, no
/// hidden file, no other folder).
fn staged_path(data_dir: &FsPath, module: &str, version: &str, file: &str) -> Option<PathBuf> {
    let module = ModuleName::parse(module).ok()?;
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if !plain(version) || !file.split('/').all(plain) {
        return None;
    }
    Some(
        data_dir
            .join(FOLDER)
            .join(module.as_str())
            .join(version)
            .join(file),
    )
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn not_found(module: &str, version: &str, file: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{module} {version} ships no frontend file {file}"),
    )
        .into_response()
}
