//! Bundles in a folder of the data directory (`plinth up`): each key a file under it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::BundleStore;
use crate::error::{Error, Result};

/// A [`BundleStore`] in `root` (`{data_dir}` on one machine: keys start with `bundles/`).
#[derive(Debug, Clone)]
pub struct FolderBundles {
    root: PathBuf,
}

impl FolderBundles {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file a key names; keys are built from checked paths, but a key with a `..` or an
    /// empty segment is refused here too.
    fn path(&self, key: &str) -> Result<PathBuf> {
        if key
            .split('/')
            .any(|part| part.is_empty() || part.starts_with('.'))
        {
            return Err(Error::NotFound(format!("no bundle file {key}")));
        }
        Ok(self.root.join(Path::new(key)))
    }
}

#[async_trait]
impl BundleStore for FolderBundles {
    async fn put(&self, key: &str, body: Vec<u8>, _content_type: &str) -> Result<()> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                Error::internal_because(format!("creating {}", parent.display()), e)
            })?;
        }
        // Written beside, then renamed: a reader sees the whole file or none. The partial file's
        // name starts with `.`, which no bundle path may: it never stands on a published file.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = path.with_file_name(format!(".{name}.partial"));
        tokio::fs::write(&partial, body)
            .await
            .map_err(|e| Error::internal_because(format!("writing {}", partial.display()), e))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| Error::internal_because(format!("writing {}", path.display()), e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Ok(path) = self.path(key) else {
            return Ok(None);
        };
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::internal_because(
                format!("reading {}", path.display()),
                e,
            )),
        }
    }
}
