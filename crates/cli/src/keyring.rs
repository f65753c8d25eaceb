//! Where data keys come from: KMS (through [`Keys`]) or a key file
//! (`--key-file`). Every command asks this for the data key of a new object
//! and for the data key of an object it reads, and the object's header says
//! which keyring it needs ([`atrest_format::Header::keyring`]).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use atrest_crypto::keyfile::KeyFileKey;
use atrest_format::keyring::Keyring as Recorded;

use crate::failure::{Exit, Failure};
use atrest_kms::CachedKeys as Kms;
use atrest_transfer::KeySource;

/// The data keys of one S3 command: the key source for atrest objects
/// (KMS, or the key file of `--key-file`), and KMS itself, which S3
/// Encryption Client objects always need.
#[derive(Clone, Debug)]
pub struct Keys {
    pub kms: Arc<Kms>,
    pub source: Arc<dyn KeySource>,
}

impl Keys {
    /// KMS for everything.
    pub fn kms(kms: Arc<Kms>) -> Self {
        Keys {
            source: kms.clone(),
            kms,
        }
    }

    /// `key_file` (see [`load_key_file`]) for atrest objects if given,
    /// else KMS.
    pub fn with(kms: Arc<Kms>, key_file: Option<Arc<dyn KeySource>>) -> Self {
        match key_file {
            None => Keys::kms(kms),
            Some(source) => Keys { source, kms },
        }
    }

    /// Whether atrest objects' keys come from a key file.
    pub fn is_key_file(&self) -> bool {
        self.source.keyring() == Recorded::KeyFile
    }

    /// A usage error unless KMS is the key source: S3 Encryption Client
    /// objects have their data keys wrapped by KMS.
    pub fn require_kms(&self, what: &str) -> Result<()> {
        match self.is_key_file() {
            false => Ok(()),
            true => Err(Failure::new(
                Exit::Usage,
                format!("{what} are wrapped by KMS: leave out --key-file"),
            )
            .into()),
        }
    }
}

/// The key source of `--key-file PATH`, if given: read and checked
/// (length, and mode on Unix).
pub fn load_key_file(path: Option<&Path>) -> Result<Option<Arc<dyn KeySource>>> {
    let Some(path) = path else { return Ok(None) };
    let key = KeyFileKey::load(path).with_context(|| format!("key file {}", path.display()))?;
    Ok(Some(Arc::new(key)))
}

/// Writes a wrapped data key to `path` as
/// [`atrest_fs::output::write_atomically`] does (true: it replaced a
/// file), on the blocking pool: a FIFO waits for its reader, and a signal
/// must still stop the command.
pub async fn write_data_key(path: &Path, wrapped: Vec<u8>) -> Result<bool> {
    let path = path.to_owned();
    let write = move || atrest_fs::output::write_atomically(&path, &wrapped);
    Ok(tokio::task::spawn_blocking(write).await??)
}

/// The shared data key file (`--data-key`), with a hint when it is missing.
/// Read on the blocking pool: a FIFO with no writer waits, and a signal
/// must still stop the command.
pub async fn read_data_key(path: &Path) -> Result<Vec<u8>> {
    let owned = path.to_owned();
    let read = tokio::task::spawn_blocking(move || atrest_fs::read_small(&owned, DATA_KEY_MAX));
    let read = read.await.map_err(std::io::Error::other)?;
    read.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Failure::new(
            Exit::NotFoundOrDenied,
            format!(
                "no {}: run `atrest create-data-key KEY_ID` first, pass --data-key PATH, use --key KEY_ID for a fresh data key per object, or --key-file PATH",
                path.display()
            ),
        )
        .into(),
        // A device, a directory, or far too much for a wrapped key.
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => Failure::new(
            Exit::Usage,
            format!("{} is no data key file: {e}", path.display()),
        )
        .into(),
        _ => anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
    })
    .and_then(|wrapped| match wrapped.is_empty() {
        // Nothing to send to KMS (which would call it corrupted).
        true => Err(Failure::new(
            Exit::Usage,
            format!("{} is empty: no wrapped data key", path.display()),
        )
        .into()),
        false => Ok(wrapped),
    })
}

/// More than any wrapped data key (KMS ciphertext blobs are at most 6 KiB).
const DATA_KEY_MAX: u64 = 64 * 1024;
