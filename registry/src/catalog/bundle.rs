//! A version's UI bundle: checked against its manifest at publish, stored in the
//! [`BundleStore`](crate::bundles::BundleStore) before the version's record, and read back
//! for the console (`GET /api/v1/modules/{m}/frontend`, the files it serves).

use plinth_module_sdk::{Manifest, ModuleName};
use serde::Serialize;

use super::{Catalog, ModuleVersion};
use crate::bundles::{self, Bundle, BundleFile, Checked, Upload};
use crate::error::{Error, Result};

/// The entry file a frontend of `kind` loads when its manifest names none.
pub fn default_entry(kind: &str) -> Option<&'static str> {
    match kind {
        "spa-module" | "es-module" => Some("module.js"),
        "iframe" | "micro-frontend" => Some("index.html"),
        _ => None,
    }
}

/// Checks an upload and that it fits its manifest: the manifest has a `frontend` section and
/// the bundle holds its entry file.
pub(super) fn check(manifest: &Manifest, upload: &Upload) -> Result<Checked> {
    let Some(frontend) = &manifest.frontend else {
        return Err(Error::field(
            "bundle",
            "the manifest has no frontend section to say how the bundle loads",
        ));
    };
    let checked = bundles::check(upload)?;
    let entry = frontend
        .entry_point
        .as_deref()
        .or_else(|| default_entry(&frontend.kind));
    if let Some(entry) = entry
        && checked.bundle.file(entry).is_none()
    {
        return Err(Error::field(
            "bundle.files",
            format!("has no {entry}, the entry file the manifest's frontend loads"),
        ));
    }
    Ok(checked)
}

/// What the console needs to load a module's frontend (`GET /api/v1/modules/{m}/frontend`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Frontend {
    pub module: String,
    pub version: String,
    /// The manifest's `frontend.type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file to load, relative to `base`.
    pub entry_point: Option<String>,
    /// The URL the bundle's files are under (`/console/bundles/{m}/{v}/{digest}/`, or on
    /// `PLINTH_BUNDLES_ORIGIN`), or none when the version was published without its bundle.
    pub base: Option<String>,
    /// Every file with its `integrity` (`sha384-…`).
    pub files: Vec<BundleFile>,
}

impl Frontend {
    /// The frontend of `version`, its files served from `origin` (or the console's own).
    pub fn of(version: &ModuleVersion, origin: Option<&str>) -> Result<Self> {
        let manifest = version.manifest()?;
        let Some(frontend) = manifest.frontend else {
            return Err(Error::NotFound(format!(
                "{} {} has no frontend",
                version.module, version.version
            )));
        };
        let base = version.bundle.as_ref().map(|bundle| {
            let folder = bundles::key(&version.module, &version.version, &bundle.digest, "");
            match origin {
                Some(origin) => format!("{origin}/{folder}"),
                None => format!("/console/{folder}"),
            }
        });
        Ok(Self {
            module: version.module.clone(),
            version: version.version.clone(),
            entry_point: frontend
                .entry_point
                .or_else(|| default_entry(&frontend.kind).map(str::to_owned)),
            kind: frontend.kind,
            base,
            files: version
                .bundle
                .as_ref()
                .map(|b| b.files.clone())
                .unwrap_or_default(),
        })
    }
}

impl Catalog {
    /// Stores a checked bundle's files: content-addressed, so a retry after a failure
    /// rewrites the same bytes, and a folder no record names is never served.
    pub(super) async fn store_bundle(
        &self,
        manifest: &Manifest,
        checked: Checked,
    ) -> Result<Bundle> {
        let (module, version) = (manifest.name.as_str(), manifest.version.to_string());
        let Checked { bundle, bodies } = checked;
        for (file, body) in bundle.files.iter().zip(bodies) {
            let key = bundles::key(module, &version, &bundle.digest, &file.path);
            self.bundles
                .put(&key, body, bundles::content_type(&file.path))
                .await?;
        }
        Ok(bundle)
    }

    /// A file of a published bundle, when `digest` is that version's bundle and `path` one of
    /// its files.
    pub async fn bundle_file(
        &self,
        module: &ModuleName,
        version: &str,
        digest: &str,
        path: &str,
    ) -> Result<StoredFile> {
        let published = match self.version(module, version).await {
            Ok(published) => published,
            Err(Error::NotFound(_)) => return Ok(StoredFile::Missing),
            Err(e) => return Err(e),
        };
        let Some(file) = published
            .bundle
            .as_ref()
            .filter(|bundle| bundle.digest == digest)
            .and_then(|bundle| bundle.file(path))
        else {
            return Ok(StoredFile::Missing);
        };
        let key = bundles::key(module.as_str(), version, digest, path);
        let Some(body) = self.bundles.get(&key).await? else {
            return Ok(StoredFile::Missing);
        };
        // The browser checks an integrated module's scripts against this hash; a frame's page,
        // its styles and images are checked here: a stored file changed since its publish is
        // never served.
        if bundles::integrity(&body) != file.integrity {
            return Ok(StoredFile::Changed { key });
        }
        Ok(StoredFile::Found(body))
    }
}

/// A published bundle's file as the store has it.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredFile {
    /// Its bytes, as published.
    Found(Vec<u8>),
    /// No such version, bundle or file.
    Missing,
    /// Stored under `key`, but no longer the bytes its version lists: not to be served.
    Changed { key: String },
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn published(bundle: Option<Bundle>) -> ModuleVersion {
        ModuleVersion {
            module: "ledger".into(),
            version: "1.0.0".into(),
            digest: String::new(),
            published_at: String::new(),
            published_by: String::new(),
            image_digest: None,
            manifest: json!({
                "name": "ledger", "display_name": "Ledger", "version": "1.0.0",
                "backend": {"type": "microservice", "api_prefix": "/api/v1/ledger"},
                "frontend": {"type": "iframe", "bundle": "ui"}
            }),
            bundle,
        }
    }

    #[test]
    fn a_frontend_s_files_are_under_the_bundles_origin_when_one_is_set() {
        let bundle = Bundle {
            digest: "0123456789abcdef".into(),
            files: vec![],
        };
        let own = Frontend::of(&published(Some(bundle.clone())), None).unwrap();
        assert_eq!(
            own.base.as_deref(),
            Some("/console/bundles/ledger/1.0.0/0123456789abcdef/")
        );
        assert_eq!(own.entry_point.as_deref(), Some("index.html"));
        let elsewhere =
            Frontend::of(&published(Some(bundle)), Some("https://cdn.example.com")).unwrap();
        assert_eq!(
            elsewhere.base.as_deref(),
            Some("https://cdn.example.com/bundles/ledger/1.0.0/0123456789abcdef/")
        );
        assert_eq!(Frontend::of(&published(None), None).unwrap().base, None);
    }
}
