//! Where data keys come from: a [`KeySource`] generates a data key for a new
//! object and unwraps the one stored in an object's header. KMS
//! ([`atrest_kms::CachedKeys`], with or without reuse) is one; a raw
//! AES-256 key file ([`KeyFileKey`]) is another; a type of your own is a
//! third.

use std::sync::Arc;

use atrest_crypto::keyfile::KeyFileKey;
use atrest_crypto::DataKey;
use atrest_format::keyring::Keyring;
use atrest_format::v2::EncryptionContext;
use futures::future::BoxFuture;

/// A data key for a new object.
#[derive(Clone, Debug)]
pub struct NewDataKey {
    /// The plaintext key (zeroized when the last reference goes).
    pub key: Arc<DataKey>,
    /// The wrapped form, stored in the object's header.
    pub wrapped: Arc<[u8]>,
    /// Which key wrapped it (for KMS: the key ARN KMS answered), if known.
    pub key_id: Option<Arc<str>>,
}

/// A data key unwrapped from an object's header.
#[derive(Clone, Debug)]
pub struct UnwrappedDataKey {
    /// The plaintext key (zeroized when the last reference goes).
    pub key: Arc<DataKey>,
    /// Which key had wrapped it (for KMS: the key ARN KMS answered), if
    /// known.
    pub key_id: Option<Arc<str>>,
}

/// Why a key source failed: its own error, kept whole so that callers can
/// look at it ([`KeyError::downcast_ref`], e.g. to an
/// [`atrest_kms::KmsError`]), and, when a download could not unwrap an
/// object's data key, the KMS key ARN the object's metadata records
/// ([`KeyError::recorded_key`]; informational, it says which key, and so
/// which region, the object needs).
#[derive(Debug)]
pub struct KeyError {
    error: Box<dyn std::error::Error + Send + Sync>,
    recorded_key: Option<String>,
}

impl KeyError {
    /// Wraps a key source's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        KeyError {
            error: Box::new(error),
            recorded_key: None,
        }
    }

    /// The key source's error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.error
    }

    /// The key source's error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref()
    }

    /// The KMS key ARN recorded in the object's metadata
    /// ([`KMS_KEY_METADATA`](crate::KMS_KEY_METADATA)), if the error is a
    /// download's and the object has one.
    pub fn recorded_key(&self) -> Option<&str> {
        self.recorded_key.as_deref()
    }

    /// This error about an object whose metadata records `arn`.
    pub(crate) fn with_recorded_key(self, arn: Option<&String>) -> Self {
        KeyError {
            recorded_key: arn.cloned(),
            ..self
        }
    }
}

/// What to say of an object whose data key would not unwrap, when its
/// metadata names the KMS key: the one phrasing for every command.
pub fn recorded_key_note(arn: &str) -> String {
    format!(
        "its metadata says the data key is wrapped under {}",
        crate::escape(arn)
    )
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// A source of data keys. `context` is the encryption context the key is
/// bound to ([`EncryptionContext::kms_context`](atrest_format::v2::EncryptionContext::kms_context)):
/// a source that cannot bind one must refuse a non-empty context rather
/// than ignore it.
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The keyring this source is, as objects record it: uploads record it
    /// in the object's encryption context (a v2 entry; KMS records
    /// nothing, so KMS objects keep their bytes), and downloads of an
    /// object that records another keyring fail up front with
    /// [`Error::WrongKeyring`](crate::Error::WrongKeyring).
    fn keyring(&self) -> Keyring {
        Keyring::Kms
    }

    /// A fresh data key under the key named `key_id` (for KMS: key id, ARN
    /// or alias).
    fn generate<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<NewDataKey, KeyError>>;

    /// The plaintext of a wrapped data key.
    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        context: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<UnwrappedDataKey, KeyError>>;

    /// [`KeySource::unwrap`] of a key its object records as wrapped under
    /// `recorded` (the KMS key ARN an upload records in the object's
    /// metadata, [`crate::KMS_KEY_METADATA`]): KMS asks that key's region.
    /// By default, `unwrap`.
    fn unwrap_recorded<'a>(
        &'a self,
        wrapped: &'a [u8],
        context: &'a [(String, String)],
        recorded: Option<&'a str>,
    ) -> BoxFuture<'a, Result<UnwrappedDataKey, KeyError>> {
        let _ = recorded;
        self.unwrap(wrapped, context)
    }
}

impl KeySource for atrest_kms::CachedKeys {
    fn generate<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<NewDataKey, KeyError>> {
        Box::pin(async move {
            let got = atrest_kms::CachedKeys::generate(self, key_id, context)
                .await
                .map_err(KeyError::new)?;
            Ok(NewDataKey {
                key: got.key,
                wrapped: got.wrapped,
                key_id: got.key_id,
            })
        })
    }

    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        context: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<UnwrappedDataKey, KeyError>> {
        KeySource::unwrap_recorded(self, wrapped, context, None)
    }

    fn unwrap_recorded<'a>(
        &'a self,
        wrapped: &'a [u8],
        context: &'a [(String, String)],
        recorded: Option<&'a str>,
    ) -> BoxFuture<'a, Result<UnwrappedDataKey, KeyError>> {
        Box::pin(async move {
            let got = atrest_kms::CachedKeys::unwrap_recorded(self, wrapped, context, recorded)
                .await
                .map_err(KeyError::new)?;
            Ok(UnwrappedDataKey {
                key: got.key,
                key_id: got.key_id,
            })
        })
    }
}

/// A key file wraps each object's fresh data key with AES-256-GCM, the
/// object's whole encryption context (keyring entry included) as AAD.
/// `key_id` names nothing here (there is one key) and is ignored.
impl KeySource for KeyFileKey {
    fn keyring(&self) -> Keyring {
        Keyring::KeyFile
    }

    fn generate<'a>(
        &'a self,
        _key_id: &'a str,
        context: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<NewDataKey, KeyError>> {
        Box::pin(async move {
            let context = EncryptionContext::from_pairs(context).map_err(KeyError::new)?;
            let key = DataKey::generate(&mut rand_core::OsRng);
            let wrapped = self.wrap(&key, &context, &mut rand_core::OsRng);
            Ok(NewDataKey {
                key: Arc::new(key),
                wrapped: wrapped.into(),
                key_id: None,
            })
        })
    }

    fn unwrap<'a>(
        &'a self,
        wrapped: &'a [u8],
        context: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<UnwrappedDataKey, KeyError>> {
        Box::pin(async move {
            let context = EncryptionContext::from_pairs(context).map_err(KeyError::new)?;
            let key = KeyFileKey::unwrap(self, wrapped, &context).map_err(KeyError::new)?;
            Ok(UnwrappedDataKey {
                key: Arc::new(key),
                key_id: None,
            })
        })
    }
}
