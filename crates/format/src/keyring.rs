//! Which keyring wrapped an object's data key, and the layout of a data key
//! wrapped under a key file.
//!
//! A v2 object records its keyring in the reserved context entry
//! [`KEYRING_CONTEXT_KEY`](crate::v2::KEYRING_CONTEXT_KEY); without it (v1,
//! and every v2 object written before key files existed) the wrapped key is
//! a KMS `CiphertextBlob`. So a reader knows, from the header alone, whether
//! to ask KMS or for a key file.
//!
//! A data key wrapped under a key file is 60 bytes (docs/FORMAT.md, "Key
//! files"):
//!
//! ```text
//! offset 0   12 bytes: AES-256-GCM nonce, random per wrap
//! offset 12  32 bytes: the data key, encrypted under the key file's key
//! offset 44  16 bytes: GCM tag; the AAD is the object's encoded context
//! ```
//!
//! ```
//! use atrest_format::keyring::Keyring;
//! use atrest_format::v2::EncryptionContext;
//!
//! let ctx = EncryptionContext::new([("app", "x")]).unwrap();
//! assert_eq!(ctx.keyring(), Keyring::Kms);
//! let ctx = ctx.with_keyring(Keyring::KeyFile).unwrap();
//! assert_eq!(ctx.get("atrest:keyring"), Some("key-file"));
//! assert_eq!(ctx.keyring(), Keyring::KeyFile);
//! ```

use core::fmt;

/// The kind of keyring that wrapped a data key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Keyring {
    /// AWS KMS: the wrapped key is a KMS `CiphertextBlob`.
    Kms,
    /// A raw AES-256 key file: the wrapped key has the layout of this module.
    KeyFile,
}

/// The value of [`KEYRING_CONTEXT_KEY`](crate::v2::KEYRING_CONTEXT_KEY) for
/// [`Keyring::KeyFile`].
pub const KEY_FILE_CONTEXT_VALUE: &str = "key-file";

/// Length of a key file's key (AES-256).
pub const KEY_FILE_KEY_LEN: usize = 32;
/// Length of the nonce at the start of a key-file wrapped key.
pub const KEY_FILE_NONCE_LEN: usize = 12;
/// Length of the data key encrypted in a key-file wrapped key.
pub const KEY_FILE_SEALED_KEY_LEN: usize = 32;
/// Length of the GCM tag at the end of a key-file wrapped key.
pub const KEY_FILE_TAG_LEN: usize = 16;
/// Length of a key-file wrapped key: nonce, encrypted data key, tag.
pub const KEY_FILE_WRAPPED_LEN: usize =
    KEY_FILE_NONCE_LEN + KEY_FILE_SEALED_KEY_LEN + KEY_FILE_TAG_LEN;

impl Keyring {
    /// The context value recording this keyring; `None` for KMS, which is
    /// recorded by the entry's absence (so older objects keep their bytes).
    pub fn context_value(self) -> Option<&'static str> {
        match self {
            Keyring::Kms => None,
            Keyring::KeyFile => Some(KEY_FILE_CONTEXT_VALUE),
        }
    }

    /// The keyring a context value names, if any.
    pub fn from_context_value(value: &str) -> Option<Self> {
        (value == KEY_FILE_CONTEXT_VALUE).then_some(Keyring::KeyFile)
    }
}

impl fmt::Display for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Keyring::Kms => "KMS",
            Keyring::KeyFile => "key file",
        })
    }
}

/// A key-file wrapped key split into its parts; `None` unless it is exactly
/// [`KEY_FILE_WRAPPED_LEN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyFileWrapped<'a> {
    /// The GCM nonce.
    pub nonce: &'a [u8; KEY_FILE_NONCE_LEN],
    /// The encrypted data key followed by the tag, as AEADs take it.
    pub sealed: &'a [u8; KEY_FILE_SEALED_KEY_LEN + KEY_FILE_TAG_LEN],
}

impl<'a> KeyFileWrapped<'a> {
    /// Splits `wrapped`, which must be exactly [`KEY_FILE_WRAPPED_LEN`] bytes.
    pub fn split(wrapped: &'a [u8]) -> Option<Self> {
        let whole: &[u8; KEY_FILE_WRAPPED_LEN] = wrapped.try_into().ok()?;
        let (nonce, sealed) = whole.split_first_chunk::<KEY_FILE_NONCE_LEN>()?;
        Some(KeyFileWrapped {
            nonce,
            sealed: sealed.try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_split_only_at_their_length() {
        let bytes: [u8; 61] = core::array::from_fn(|i| i as u8);
        assert!(KeyFileWrapped::split(&bytes[..59]).is_none());
        assert!(KeyFileWrapped::split(&bytes).is_none());
        let w = KeyFileWrapped::split(&bytes[..60]).unwrap();
        assert_eq!(w.nonce[..], bytes[..12]);
        assert_eq!(w.sealed[..], bytes[12..60]);
    }

    #[test]
    fn context_values() {
        assert_eq!(Keyring::Kms.context_value(), None);
        assert_eq!(
            Keyring::from_context_value("key-file"),
            Some(Keyring::KeyFile)
        );
        assert_eq!(Keyring::from_context_value("kms"), None);
        assert_eq!(Keyring::from_context_value("Key-File"), None);
    }
}
