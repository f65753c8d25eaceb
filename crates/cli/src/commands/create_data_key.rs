use std::path::Path;

use anyhow::{Context, Result};
use atrest_kms::Kms;

pub async fn run(kms: &Kms, key_id: &str, data_key: &Path, quiet: bool) -> Result<()> {
    // Everywhere else `-` is stdout; `--data-key -` then reads a file `-`.
    if atrest_fs::output::is_std_stream(data_key) {
        return Err(crate::failure::Failure::new(
            crate::failure::Exit::Usage,
            "create-data-key writes a file (mode 0600), not stdout: give a path (./- for a file named -)",
        )
        .into());
    }
    // Before KMS is asked: a key file or another file given by mistake.
    crate::keyring::check_replaceable_data_key(data_key)?;
    let wrapped = kms
        .generate_wrapped_data_key(key_id)
        .await
        .with_context(|| format!("cannot create a data key under `{key_id}`"))?;
    let replaced = crate::keyring::write_data_key(data_key, wrapped).await?;
    if !quiet {
        let verb = if replaced {
            "replaced the existing"
        } else {
            "wrote"
        };
        crate::stdout::say_err!(
            "{verb} {} (wrapped data key under `{key_id}`)",
            data_key.display()
        );
    }
    Ok(())
}
