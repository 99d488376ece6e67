//! Module UI bundles: the files of a manifest's `frontend.bundle` folder, published with the
//! version and stored content-addressed (docs/console.md, "Module frontends").
//!
//! A published bundle is a list of files, each with its SHA-384 as a Subresource Integrity
//! value (`sha384-…`), and a digest of that list. Its files are stored under
//! `bundles/{module}/{version}/{digest}/{path}` ([`key`]): a different content is a different
//! folder, so every URL that serves one can be cached for a year as `immutable`, and relative
//! imports between a bundle's files work unchanged. The [`BundleStore`] port keeps them: a
//! folder of the data directory on one machine ([`folder`]), an S3 bucket on AWS ([`s3`]).

pub mod folder;
#[cfg(feature = "aws")]
pub mod s3;

use std::fmt::Debug;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};

use crate::error::{Error, Result};

/// The most files a bundle may have.
pub const MAX_FILES: usize = 64;
/// The largest file of a bundle, in bytes.
pub const MAX_FILE_BYTES: usize = 512 * 1024;
/// The most bytes a bundle's files may hold together: as base64 in a publish body, with the
/// manifest, they stay under the API's 2 MiB body.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;
/// A bundle as a publisher sends it (`bundle` of `POST /api/v1/modules`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    pub files: Vec<UploadedFile>,
}

/// One file of an [`Upload`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadedFile {
    /// Relative to the bundle's folder, `/`-separated (`module.js`, `lib/list.js`).
    pub path: String,
    /// The file's bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
}

impl UploadedFile {
    /// A file at `path` holding `body`.
    pub fn new(path: impl Into<String>, body: &[u8]) -> Self {
        Self {
            path: path.into(),
            content_base64: STANDARD.encode(body),
        }
    }
}

/// A published bundle: its files and their hashes, kept in the version's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bundle {
    /// The first 16 hex digits of the SHA-256 of every file's path and integrity: the folder
    /// its files are stored and served under.
    pub digest: String,
    pub files: Vec<BundleFile>,
}

/// A published file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleFile {
    pub path: String,
    /// `sha384-{base64}`: what a browser's `integrity` attribute takes.
    pub integrity: String,
    pub size: u64,
}

impl Bundle {
    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|file| file.path == path)
    }
}

/// An upload checked: the bundle to record and each file's bytes, in the same order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub bundle: Bundle,
    pub bodies: Vec<Vec<u8>>,
}

/// Checks an upload: at most [`MAX_FILES`] files, each path a plain relative name inside the
/// folder, each file at most [`MAX_FILE_BYTES`], all of them at most [`MAX_BUNDLE_BYTES`].
/// A refusal is a 422 naming the field (`bundle.files[2].path`).
pub fn check(upload: &Upload) -> Result<Checked> {
    if upload.files.is_empty() {
        return Err(Error::field("bundle.files", "has no file"));
    }
    if upload.files.len() > MAX_FILES {
        return Err(Error::field(
            "bundle.files",
            format!(
                "has {} files, more than the {MAX_FILES} a bundle may have",
                upload.files.len()
            ),
        ));
    }
    let mut files = Vec::with_capacity(upload.files.len());
    let mut bodies = Vec::with_capacity(upload.files.len());
    let mut total = 0;
    for (i, file) in upload.files.iter().enumerate() {
        let field = |name: &str| format!("bundle.files[{i}].{name}");
        if let Err(why) = plain_path(&file.path) {
            return Err(Error::field(&field("path"), why));
        }
        if files.iter().any(|f: &BundleFile| f.path == file.path) {
            return Err(Error::field(
                &field("path"),
                format!("{} is named twice", file.path),
            ));
        }
        // A base64 text longer than this decodes to more than the limit: refused unread.
        if file.content_base64.len() > MAX_FILE_BYTES.div_ceil(3) * 4 + 4 {
            return Err(too_large(&field("content_base64"), &file.path, None));
        }
        let body = STANDARD
            .decode(file.content_base64.trim())
            .map_err(|e| Error::field(&field("content_base64"), format!("is not base64: {e}")))?;
        if body.len() > MAX_FILE_BYTES {
            return Err(too_large(
                &field("content_base64"),
                &file.path,
                Some(body.len()),
            ));
        }
        total += body.len();
        if total > MAX_BUNDLE_BYTES {
            return Err(Error::field(
                "bundle.files",
                format!("hold more than the {MAX_BUNDLE_BYTES} bytes a bundle may hold together"),
            ));
        }
        files.push(BundleFile {
            path: file.path.clone(),
            integrity: integrity(&body),
            size: body.len() as u64,
        });
        bodies.push(body);
    }
    let mut listing = String::new();
    let mut sorted: Vec<&BundleFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for file in sorted {
        listing.push_str(&file.path);
        listing.push('\0');
        listing.push_str(&file.integrity);
        listing.push('\n');
    }
    let digest = crate::hash::sha256_hex(listing.as_bytes())[..16].to_owned();
    Ok(Checked {
        bundle: Bundle { digest, files },
        bodies,
    })
}

fn too_large(field: &str, path: &str, size: Option<usize>) -> Error {
    let size = size.map_or_else(String::new, |s| format!("{s} bytes, "));
    Error::field(
        field,
        format!("{path} is {size}more than the {MAX_FILE_BYTES} bytes a bundle's file may hold"),
    )
}

/// `sha384-{base64}` of `body`: its Subresource Integrity value.
pub fn integrity(body: &[u8]) -> String {
    format!("sha384-{}", STANDARD.encode(Sha384::digest(body)))
}

pub use plinth_module_sdk::manifest::plain_bundle_path as plain_path;

/// Where a published file is stored, and the path it is served at under the bundles' base.
pub fn key(module: &str, version: &str, digest: &str, path: &str) -> String {
    format!("bundles/{module}/{version}/{digest}/{path}")
}

/// The media type a file is stored and served with, from its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// How a stored file is cached: its key names its content.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Checks `PLINTH_BUNDLES_ORIGIN`: an `http` or `https` origin (scheme, host, optional port),
/// no path, query or fragment. Returns it without a trailing `/`.
pub fn parse_origin(value: &str) -> std::result::Result<String, String> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| format!("PLINTH_BUNDLES_ORIGIN: {value:?} is not a URL: {e}"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !bare {
        return Err(format!(
            "PLINTH_BUNDLES_ORIGIN: {value:?} is not an origin (like https://bundles.example.com, \
             no path)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// Where published bundles' files are kept.
#[async_trait]
pub trait BundleStore: Send + Sync + Debug {
    /// Stores `body` at `key` (an overwrite stores the same bytes: keys name their content).
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()>;
    /// The file at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// A link that reads `key` without credentials until `expires` has passed (in S3, a
    /// pre-signed GET); `None` (the default) from a store whose files are read where they are
    /// (a folder) or that keeps none.
    async fn presigned_get(
        &self,
        _key: &str,
        _expires: std::time::Duration,
    ) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A platform that keeps no bundles: a publish with one is refused, naming `bundle`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBundleStore;

#[async_trait]
impl BundleStore for NoBundleStore {
    async fn put(&self, _key: &str, _body: Vec<u8>, _content_type: &str) -> Result<()> {
        Err(Error::field(
            "bundle",
            "this platform keeps no module bundles (on AWS, PLINTH_BUNDLES_BUCKET is unset)",
        ))
    }

    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(files: &[(&str, &[u8])]) -> Upload {
        Upload {
            files: files
                .iter()
                .map(|(path, body)| UploadedFile {
                    path: (*path).to_owned(),
                    content_base64: STANDARD.encode(body),
                })
                .collect(),
        }
    }

    #[test]
    fn a_file_s_integrity_is_its_sha384_in_base64() {
        // The SHA-384 of "" as browsers compute it for `integrity`.
        assert_eq!(
            integrity(b""),
            "sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb"
        );
    }

    #[test]
    fn the_digest_changes_with_any_file_and_not_with_their_order() {
        let a = check(&upload(&[("a.js", b"1"), ("b.js", b"2")])).unwrap();
        let b = check(&upload(&[("b.js", b"2"), ("a.js", b"1")])).unwrap();
        let c = check(&upload(&[("a.js", b"1"), ("b.js", b"3")])).unwrap();
        assert_eq!(a.bundle.digest, b.bundle.digest);
        assert_ne!(a.bundle.digest, c.bundle.digest);
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused_naming_the_file() {
        for bad in [
            "../x.js",
            "a/../../x.js",
            "/etc/passwd",
            ".env",
            "a//b.js",
            "a\\b.js",
            "",
        ] {
            let error = check(&upload(&[("ok.js", b""), (bad, b"")])).unwrap_err();
            assert!(
                error.to_string().starts_with("bundle.files[1].path:"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_file_too_large_is_refused_naming_it_whether_or_not_it_was_decoded() {
        let over = vec![b'x'; MAX_FILE_BYTES + 1];
        let error = check(&upload(&[("big.js", &over)])).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "bundle.files[0].content_base64: big.js is {} bytes, more than the {MAX_FILE_BYTES} \
                 bytes a bundle's file may hold",
                MAX_FILE_BYTES + 1
            )
        );
        let far_over = vec![b'x'; MAX_FILE_BYTES * 2];
        let error = check(&upload(&[("big.js", &far_over)])).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "bundle.files[0].content_base64: big.js is more than the {MAX_FILE_BYTES} bytes a \
                 bundle's file may hold"
            )
        );
    }

    #[test]
    fn an_origin_is_a_scheme_and_a_host_only() {
        assert_eq!(
            parse_origin("https://cdn.example.com/").unwrap(),
            "https://cdn.example.com"
        );
        assert!(parse_origin("https://cdn.example.com/bundles").is_err());
        assert!(parse_origin("ftp://cdn.example.com").is_err());
        assert!(parse_origin("cdn.example.com").is_err());
    }
}
