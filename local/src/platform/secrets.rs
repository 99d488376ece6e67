//! The secrets one machine keeps in its data directory: the JWT secret (unless
//! `PLINTH_JWT_SECRET` is set) and the key that signs tenant contexts.

use std::path::Path;

use anyhow::{Context, Result};
use plinth_registry::identity::ContextSigner;
use rand::RngCore;

/// `PLINTH_JWT_SECRET`, or the secret kept in `{data_dir}/jwt-secret` (made on first use).
pub fn jwt_secret(data_dir: &Path) -> Result<String> {
    if let Some(secret) = std::env::var("PLINTH_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return Ok(secret);
    }
    let path = data_dir.join("jwt-secret");
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
