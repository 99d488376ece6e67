//! The secrets one machine keeps in its data directory: the JWT secret (unless
//! `PLINTH_JWT_SECRET` is set) and the key that signs tenant contexts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plinth_registry::identity::ContextSigner;
use rand::RngCore;

/// `plinth up`'s data directory unless `--data-dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = ".plinth";

/// The file in the data directory that holds the JWT secret.
const JWT_SECRET_FILE: &str = "jwt-secret";

/// `PLINTH_JWT_SECRET`, or the secret kept in `{data_dir}/jwt-secret` (made on first use): what
/// `plinth up` verifies tokens with.
pub fn jwt_secret(data_dir: &Path) -> Result<String> {
    if let Some(secret) = std::env::var("PLINTH_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return Ok(secret);
    }
    let path = data_dir.join(JWT_SECRET_FILE);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::write(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

/// Where `plinth token` found the secret it signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `PLINTH_JWT_SECRET`.
    Env,
    /// `{data_dir}/jwt-secret` of the `--data-dir` given.
    DataDir(PathBuf),
    /// `.plinth/jwt-secret` in the working directory or one of its parents.
    Found(PathBuf),
}

/// The secret a running platform verifies tokens with, found but never made: a token signed
/// with a secret made on the spot would be refused by every platform.
///
/// `PLINTH_JWT_SECRET` (`env`) first; else `{data_dir}/jwt-secret` when `data_dir` is given;
/// else `.plinth/jwt-secret` in `cwd` or the nearest of its parents (`plinth up`'s default data
/// directory, so a module's folder under the platform's finds it). The error says where it
/// looked and what to do.
pub fn find_jwt_secret(
    env: Option<&str>,
    data_dir: Option<&Path>,
    cwd: &Path,
) -> std::result::Result<(String, SecretSource), String> {
    if let Some(secret) = env.filter(|s| !s.is_empty()) {
        return Ok((secret.to_owned(), SecretSource::Env));
    }
    if let Some(data_dir) = data_dir {
        let path = cwd.join(data_dir).join(JWT_SECRET_FILE);
        return read_secret(&path)
            .map(|secret| (secret, SecretSource::DataDir(data_dir.to_path_buf())))
            .ok_or_else(|| {
                format!(
                    "no secret at {}: pass the --data-dir `plinth up` runs with (it writes the \
                     secret when it starts), or set PLINTH_JWT_SECRET to the secret it was \
                     started with",
                    path.display()
                )
            });
    }
    cwd.ancestors()
        .map(|dir| dir.join(DEFAULT_DATA_DIR))
        .find_map(|data_dir| {
            read_secret(&data_dir.join(JWT_SECRET_FILE))
                .map(|secret| (secret, SecretSource::Found(data_dir)))
        })
        .ok_or_else(|| {
            format!(
                "no platform secret: PLINTH_JWT_SECRET is not set and there is no \
                 {DEFAULT_DATA_DIR}/{JWT_SECRET_FILE} in {} or its parents. Run this where \
                 `plinth up` runs, pass its --data-dir, or set PLINTH_JWT_SECRET to the secret \
                 it was started with (plinth token never makes a secret: the platform would \
                 refuse what it signs)",
                cwd.display()
            )
        })
}

fn read_secret(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The context signing key kept in `{data_dir}/context-key.der` (made on first use), so module
/// backends' cached JWKS stay valid across restarts.
pub fn context_key(data_dir: &Path) -> Result<ContextSigner> {
    let path = data_dir.join("context-key.der");
    if let Ok(der) = std::fs::read(&path) {
        return ContextSigner::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let signer = ContextSigner::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(&path, signer.pkcs8())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform_in(dir: &Path) -> PathBuf {
        let data_dir = dir.join(DEFAULT_DATA_DIR);
        std::fs::create_dir_all(&data_dir).unwrap();
        std::fs::write(data_dir.join(JWT_SECRET_FILE), "the-platforms-secret\n").unwrap();
        data_dir
    }

    #[test]
    fn token_finds_the_platforms_secret_from_a_module_folder_below_it() {
        let root = tempfile::tempdir().unwrap();
        let data_dir = platform_in(root.path());
        let module = root.path().join("invoicing-plus/src");
        std::fs::create_dir_all(&module).unwrap();
        let found = find_jwt_secret(None, None, &module).unwrap();
        assert_eq!(
            found,
            ("the-platforms-secret".into(), SecretSource::Found(data_dir))
        );
        assert!(!module.join(DEFAULT_DATA_DIR).exists());
        assert!(!root.path().join("invoicing-plus/.plinth").exists());
    }

    #[test]
    fn token_never_creates_a_secret_where_none_is() {
        let root = tempfile::tempdir().unwrap();
        let error = find_jwt_secret(None, None, root.path()).unwrap_err();
        assert!(error.contains("no platform secret"), "{error}");
        assert!(error.contains("--data-dir") && error.contains("PLINTH_JWT_SECRET"));
        assert!(!root.path().join(DEFAULT_DATA_DIR).exists());

        let given = Path::new("elsewhere");
        let error = find_jwt_secret(None, Some(given), root.path()).unwrap_err();
        assert!(error.contains("elsewhere/jwt-secret"), "{error}");
        assert!(!root.path().join("elsewhere").exists());
    }

    #[test]
    fn token_prefers_the_environment_then_the_data_dir_given() {
        let root = tempfile::tempdir().unwrap();
        platform_in(root.path());
        let other = root.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(JWT_SECRET_FILE), "other-secret").unwrap();
        assert_eq!(
            find_jwt_secret(Some("from-env"), Some(&other), root.path()).unwrap(),
            ("from-env".into(), SecretSource::Env)
        );
        assert_eq!(
            find_jwt_secret(Some(""), Some(Path::new("other")), root.path()).unwrap(),
            ("other-secret".into(), SecretSource::DataDir("other".into()))
        );
    }
}
