//! Where data keys come from: KMS (through [`Keys`]) or a key file
//! (`--key-file`). Every command asks this for the data key of a new object
//! and for the data key of an object it reads, and the object's header says
//! which keyring it needs ([`atrest_format::Header::keyring`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use atrest_crypto::keyfile::KeyFileKey;
use atrest_crypto::DataKey;
use atrest_format::keyring::Keyring as Recorded;
use atrest_format::v2::EncryptionContext;
use atrest_format::Header;

use crate::cli::Format;
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

/// The key source of `--key-file PATH`, if given.
pub fn load_key_file(path: Option<&Path>) -> Result<Option<Arc<dyn KeySource>>> {
    Ok(match path {
        Some(path) => Some(Arc::new(KeyFile::load(path)?.key)),
        None => None,
    })
}

/// A key file read from `--key-file`.
pub struct KeyFile {
    key: KeyFileKey,
    path: PathBuf,
}

impl KeyFile {
    /// Reads and checks the key file (length, and mode on Unix).
    pub fn load(path: &Path) -> Result<Self> {
        let key = KeyFileKey::load(path).with_context(|| format!("key file {}", path.display()))?;
        Ok(KeyFile {
            key,
            path: path.to_owned(),
        })
    }
}

/// The keyring of one command.
pub enum Keyring<'a> {
    Kms(&'a Kms),
    KeyFile(&'a KeyFile),
}

/// What a new object's data key is asked with.
pub struct NewKey<'a> {
    pub format: Format,
    /// `--key`: a fresh data key under this KMS key.
    pub kms_key: Option<&'a str>,
    /// `--data-key`: the shared, KMS-wrapped data key otherwise.
    pub data_key: &'a Path,
    /// The user's pairs (and the format entry).
    pub context: EncryptionContext,
}

/// A data key for a new object: the key, its wrapped form for the header,
/// and the context the object records (with the keyring's reserved entries).
pub struct ObjectKey {
    pub key: Arc<DataKey>,
    pub wrapped: Vec<u8>,
    pub context: EncryptionContext,
}

impl Keyring<'_> {
    /// The data key for a new object. At most one KMS call; none with a key
    /// file (a fresh random data key, wrapped under the file's key).
    pub async fn new_object_key(&self, req: NewKey<'_>) -> Result<ObjectKey> {
        let bad_context = |e: atrest_format::v2::ContextError| {
            Failure::new(Exit::Usage, format!("invalid --context: {e}"))
        };
        match self {
            Keyring::KeyFile(file) => {
                if req.format != Format::V2 {
                    return Err(Failure::new(
                        Exit::Usage,
                        "--key-file needs --format v2 (no other format has a place to record its keyring)",
                    )
                    .into());
                }
                let context = req
                    .context
                    .with_keyring(Recorded::KeyFile)
                    .map_err(bad_context)?;
                let key = DataKey::generate(&mut rand_core::OsRng);
                let wrapped = file.key.wrap(&key, &context, &mut rand_core::OsRng);
                Ok(ObjectKey {
                    key: Arc::new(key),
                    wrapped,
                    context,
                })
            }
            Keyring::Kms(keys) => match req.kms_key {
                Some(kms_key) => {
                    if req.format == Format::V1 {
                        return Err(Failure::new(
                            Exit::Usage,
                            "--key needs --format v2 (v1 objects use data.key)",
                        )
                        .into());
                    }
                    let generated = keys
                        .generate(kms_key, &req.context.kms_context())
                        .await
                        .with_context(|| format!("cannot create a data key under `{kms_key}`"))?;
                    Ok(ObjectKey {
                        key: generated.key,
                        wrapped: generated.wrapped.to_vec(),
                        context: req.context,
                    })
                }
                None => {
                    let wrapped = read_data_key(req.data_key)?;
                    let key = keys
                        .unwrap(&wrapped, &[])
                        .await
                        .with_context(|| format!("cannot unwrap {}", req.data_key.display()))?
                        .key;
                    let context = req.context.with_shared_data_key().map_err(bad_context)?;
                    Ok(ObjectKey {
                        key,
                        wrapped,
                        context,
                    })
                }
            },
        }
    }

    /// Whether `header` names this keyring: asking the wrong one is a usage
    /// error that says which to use.
    pub fn check_recorded(&self, name: &str, header: &Header) -> Result<()> {
        match (self, header.keyring()) {
            (Keyring::KeyFile(_), Recorded::KeyFile) => Ok(()),
            (Keyring::KeyFile(_), _) => Err(Failure::new(
                Exit::Usage,
                format!(
                    "{name}'s data key is wrapped by KMS, not a key file: leave out --key-file"
                ),
            )
            .into()),
            (Keyring::Kms(_), Recorded::KeyFile) => Err(Failure::new(
                Exit::Usage,
                format!("{name}'s data key is wrapped under a key file: pass --key-file PATH"),
            )
            .into()),
            (Keyring::Kms(_), _) => Ok(()),
        }
    }

    /// The data key of the object `name` with `header`, from the keyring
    /// the header names (see [`check_recorded`](Self::check_recorded)).
    pub async fn object_key(&self, name: &str, header: &Header) -> Result<Arc<DataKey>> {
        self.check_recorded(name, header)?;
        match (self, header.keyring(), header) {
            (Keyring::KeyFile(file), Recorded::KeyFile, Header::V2(h)) => {
                let key = file
                    .key
                    .unwrap(h.wrapped_key(), h.context())
                    .with_context(|| {
                        format!(
                            "cannot decrypt {name} with key file {}",
                            file.path.display()
                        )
                    })?;
                Ok(Arc::new(key))
            }
            (Keyring::KeyFile(_), _, _) | (Keyring::Kms(_), Recorded::KeyFile, _) => {
                unreachable!("checked above")
            }
            (Keyring::Kms(keys), _, Header::V2(h)) => Ok(keys
                .unwrap(h.wrapped_key(), &h.context().kms_context())
                .await?
                .key),
            (Keyring::Kms(keys), _, h) => Ok(keys.unwrap(h.wrapped_key(), &[]).await?.key),
        }
    }
}

/// The shared data key file (`--data-key`), with a hint when it is missing.
pub fn read_data_key(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::new(
                Exit::NotFoundOrDenied,
                format!(
                    "no {}: run `atrest create-data-key KEY_ID` first, pass --data-key PATH, use --key KEY_ID for a fresh data key per object, or --key-file PATH",
                    path.display()
                ),
            )
            .into()
        } else {
            anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
        }
    })
}
