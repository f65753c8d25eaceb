//! Where data keys come from: KMS (through [`Keys`]) or a key file
//! (`--key-file`). Every command asks this for the data key of a new object
//! and for the data key of an object it reads, and the object's header says
//! which keyring it needs ([`atrest_format::Header::keyring`]).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use atrest_crypto::keyfile::KeyFileKey;
use atrest_format::keyring::Keyring as Recorded;
use atrest_format::keyring::KEY_FILE_KEY_LEN;

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
    .and_then(|wrapped| match wrapped.len() {
        // Nothing to send to KMS (which would call it corrupted).
        0 => Err(Failure::new(
            Exit::Usage,
            format!("{} is empty: no wrapped data key", path.display()),
        )
        .into()),
        // A key file's secret must never reach KMS (or a proxy before it),
        // and no KMS ciphertext is this short.
        KEY_FILE_KEY_LEN => Err(looks_like_a_key_file(path)),
        _ => Ok(wrapped),
    })
}

fn looks_like_a_key_file(path: &Path) -> anyhow::Error {
    Failure::new(
        Exit::Usage,
        format!(
            "{} holds 32 bytes, as a key file made by `atrest keygen` does, not a data key wrapped by KMS: pass it with --key-file (it was not sent to KMS)",
            path.display()
        ),
    )
    .into()
}

/// Before `create-data-key` replaces `path`: an existing regular file must
/// look like a wrapped data key (binary, at most KMS's 6,144 bytes of
/// ciphertext, not a key file's 32 bytes, not a common file format), so
/// that a key file or another file given by mistake is not destroyed.
/// Nothing is sent to KMS to tell (the file may be another secret).
/// Rotating data.key (replacing one) stays one command.
pub fn check_replaceable_data_key(path: &Path) -> Result<()> {
    let not_a_file = |what: &str| -> anyhow::Error {
        Failure::new(
            Exit::Usage,
            format!(
                "create-data-key writes a regular file (mode 0600): {} is {what}; give a file path",
                path.display()
            ),
        )
        .into()
    };
    // `/dev/stdout` (of a redirected command: a regular file) would take
    // the key anywhere, `>> data.key` appending a second one.
    if atrest_fs::output::names_descriptor(path) {
        return Err(not_a_file("a descriptor of this command"));
    }
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
        }
        // Refused when it is written.
        Ok(meta) if meta.is_dir() => return Ok(()),
        // A device or FIFO would swallow the key (or block for a reader).
        Ok(meta) if !meta.is_file() => {
            return Err(not_a_file(match atrest_fs::Error::not_regular(&meta) {
                atrest_fs::Error::NotRegular(kind) => kind,
                _ => "a special file",
            }))
        }
        Ok(meta) if meta.len() == 0 => return Ok(()),
        Ok(meta) => meta,
    };
    if meta.len() == KEY_FILE_KEY_LEN as u64 {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "{} holds 32 bytes, as a key file made by `atrest keygen` does: it is not replaced (the objects under it would be lost); give another path",
                path.display()
            ),
        )
        .into());
    }
    let not_a_data_key = |why: &str| -> anyhow::Error {
        Failure::new(
            Exit::Usage,
            format!(
                "{} exists and is not a wrapped data key ({why}): it is not replaced; give another path, or remove it first",
                path.display()
            ),
        )
        .into()
    };
    if meta.len() > KMS_CIPHERTEXT_MAX {
        return Err(not_a_data_key("larger than any KMS ciphertext"));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // KMS ciphertext is binary; text is someone's file.
    if std::str::from_utf8(&bytes).is_ok() {
        return Err(not_a_data_key("it is text"));
    }
    if let Some((_, format)) = FILE_SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return Err(not_a_data_key(&format!("it begins as {format} does")));
    }
    Ok(())
}

/// KMS's largest ciphertext blob (the `CiphertextBlob` limit).
const KMS_CIPHERTEXT_MAX: u64 = 6144;

/// The first bytes of common binary files, none of which a KMS
/// ciphertext blob begins with (AWS's begin 01 02; emulators' with their
/// key id).
const FILE_SIGNATURES: &[(&[u8], &str)] = &[
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x03\xd9\xa2\x9a", "a KeePass database"),
    (b"\x30\x82", "a DER key or certificate"),
    (b"\x30\x81", "a DER key or certificate"),
    (b"openssh-key-v1\x00", "an SSH key"),
];

/// Refuses to write `out` over a key this command reads (`--key-file`,
/// data.key): the objects under it would be lost with it.
pub fn refuse_output_over_keys(out: &Path, keys: &[Option<&Path>]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(written) = std::fs::metadata(out) else {
        return Ok(());
    };
    for key in keys.iter().flatten() {
        let same = std::fs::metadata(key)
            .is_ok_and(|k| (k.dev(), k.ino()) == (written.dev(), written.ino()));
        if same {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "{} is a key this command uses (--key-file or --data-key): writing it would lose the key; give another output",
                    out.display()
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// More than any wrapped data key (KMS ciphertext blobs are at most 6 KiB).
const DATA_KEY_MAX: u64 = 64 * 1024;
