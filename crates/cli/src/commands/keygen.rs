//! `atrest keygen`: a new raw AES-256 key file, for `--key-file`.

use std::path::Path;

use anyhow::{Context, Result};
use atrest_crypto::keyfile::KeyFileKey;

pub fn run(path: &Path, quiet: bool) -> Result<()> {
    // Everywhere else `-` is stdout: a file of that name would surprise,
    // and a key on stdout would pass through pipes and terminals.
    if atrest_fs::output::is_std_stream(path) {
        return Err(crate::failure::Failure::new(
            crate::failure::Exit::Usage,
            "keygen writes a key file (mode 0600), not stdout: give a path (./- for a file named -)",
        )
        .into());
    }
    KeyFileKey::create_new(path, &mut rand_core::OsRng)
        .with_context(|| format!("key file {}", path.display()))?;
    if !quiet {
        crate::stdout::say_err!(
            "wrote {} (a 32-byte AES-256 key, mode 0600): keep a copy somewhere safe; \
             objects encrypted with it cannot be decrypted without it",
            path.display()
        );
    }
    Ok(())
}
