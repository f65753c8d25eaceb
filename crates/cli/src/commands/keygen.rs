//! `atrest keygen`: a new raw AES-256 key file, for `--key-file`.

use std::path::Path;

use anyhow::{Context, Result};
use atrest_crypto::keyfile::KeyFileKey;

pub fn run(path: &Path, quiet: bool) -> Result<()> {
    KeyFileKey::create_new(path, &mut rand_core::OsRng)
        .with_context(|| format!("key file {}", path.display()))?;
    if !quiet {
        eprintln!(
            "wrote {} (a 32-byte AES-256 key, mode 0600): keep a copy somewhere safe; \
             objects encrypted with it cannot be decrypted without it",
            path.display()
        );
    }
    Ok(())
}
