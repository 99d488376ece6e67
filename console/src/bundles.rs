//! Module frontends. A module's UI bundle (the files of its manifest's `frontend.bundle`
//! folder) is published with its version (`plinth module publish`, and the demo through the
//! same call) and kept by the registry's bundle store, content-addressed: on one machine under
//! `{data_dir}/bundles/{module}/{version}/{digest}/`. The console serves a published file at
//! `/console/bundles/{module}/{version}/{digest}/{path}`, from its own origin, for a year as
//! `immutable` (its URL names its content); the shell loads it with the SHA-384 the version's
//! record lists (`GET /api/v1/modules/{m}/frontend`).

use std::path::Path as FsPath;

use anyhow::{Context, Result, bail};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_module_sdk::ModuleName;
use plinth_registry::bundles::{self, CACHE_CONTROL, Upload, UploadedFile};
use plinth_registry::catalog::StoredFile;
use serde_json::Value;

use super::Console;

/// A micro-frontend's document runs sandboxed even when opened on its own: scripts, no
/// origin (so no cookie, no storage, no same-origin call), and only its own files.
const FRAME_POLICY: &str = "sandbox allow-scripts allow-forms; default-src 'self'; \
    script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// Every other bundle file, should a browser open it as a document: nothing runs.
const FILE_POLICY: &str = "sandbox; default-src 'none'; frame-ancestors 'none'";

/// The files of a module's UI bundle, read from its manifest's `frontend.bundle` folder
/// (relative to `module_dir`), as a publish sends them; `None` when the manifest names no
/// bundle. Hidden files are left out; a link is refused (it could point outside the folder).
pub fn read_bundle(module_dir: &FsPath, manifest: &Value) -> Result<Option<Upload>> {
    let Some(folder) = manifest["frontend"]["bundle"].as_str() else {
        return Ok(None);
    };
    let relative = FsPath::new(folder);
    if relative.is_absolute()
        || relative.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        bail!(
            "frontend.bundle: {folder:?} must be a folder inside the module's folder (no absolute \
             path, no `..`)"
        );
    }
    let root = module_dir.join(relative);
    if !root.is_dir() {
        bail!("frontend.bundle: {} is not a folder", root.display());
    }
    let mut files = Vec::new();
    read_into(&root, "", &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(Upload { files }))
}

fn read_into(folder: &FsPath, prefix: &str, files: &mut Vec<UploadedFile>) -> Result<()> {
    let entries =
        std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = format!("{prefix}{name}");
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            bail!(
                "frontend.bundle: {} is a link; a bundle holds files only",
                entry.path().display()
            );
        } else if kind.is_dir() {
            read_into(&entry.path(), &format!("{path}/"), files)?;
        } else {
            let body = std::fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            files.push(UploadedFile::new(path, &body));
        }
    }
    Ok(())
}

/// `GET /console/bundles/{module}/{version}/{digest}/{path}`: a published file, when
/// `digest` is that version's bundle and `path` one of its files; anything else is a 404.
pub(super) async fn file(
    State(console): State<Console>,
    Path((module, version, rest)): Path<(String, String, String)>,
) -> Response {
    let Some((digest, path)) = rest.split_once('/') else {
        return not_found(&module, &version, &rest);
    };
    let (Ok(name), true) = (
        ModuleName::parse(&module),
        [version.as_str(), digest, path]
            .iter()
            .all(|part| bundles::plain_path(part).is_ok()),
    ) else {
        return not_found(&module, &version, &rest);
    };
    let found = console
        .plane
        .catalog
        .bundle_file(&name, &version, digest, path)
        .await;
    let body = match found {
        Ok(StoredFile::Found(body)) => body,
        Ok(StoredFile::Missing) => return not_found(&module, &version, &rest),
        Ok(StoredFile::Changed { key }) => {
            tracing::error!(%key, "a stored bundle file does not match its version's integrity; not served");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CACHE_CONTROL, "no-store")],
                "this file does not match the one its version was published with; it is not served",
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e.chain(), %module, %version, %rest, "reading a bundle file");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, "no-store")],
                "the bundle store did not answer",
            )
                .into_response();
        }
    };
    let kind = bundles::content_type(path);
    let mut response = (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        body,
    )
        .into_response();
    if kind.starts_with("text/html") {
        console.security_headers(response.headers_mut());
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(FRAME_POLICY),
        );
        response.headers_mut().insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    } else {
        // A script, a style, an image: opened as a document (an SVG with a `<script>`, say)
        // it runs nothing on the console's origin. An `import()` or `<img>` of it is not
        // governed by its own policy, so this costs the shell nothing.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(FILE_POLICY),
        );
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}

fn not_found(module: &str, version: &str, rest: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{module} {version} publishes no frontend file {rest}"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cloned module's manifest naming `/home/dev/.aws` (or `../..`) as its bundle would
    /// have `plinth module publish` upload what is there, to be served to anyone.
    #[test]
    fn a_bundle_folder_outside_the_module_s_folder_is_refused_naming_the_field() {
        let module = FsPath::new("/nonexistent/module");
        for folder in ["/home/dev/.aws", "../secrets", "frontend/../../x"] {
            let manifest =
                serde_json::json!({"frontend": {"type": "spa-module", "bundle": folder}});
            let error = read_bundle(module, &manifest)
                .expect_err(folder)
                .to_string();
            assert!(
                error.starts_with("frontend.bundle:") && error.contains("inside the module"),
                "{folder}: {error}"
            );
        }
    }
}
