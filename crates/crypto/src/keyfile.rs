//! Raw AES-256 key files: a keyring that needs no cloud.
//!
//! A key file holds exactly 32 random bytes (made by [`KeyFileKey::create_new`],
//! `atrest keygen`). Each object's data key is wrapped under it with
//! AES-256-GCM: a random 96-bit nonce, and the object's encoded encryption
//! context as additional authenticated data, so the wrapped key is bound to
//! the context just as KMS binds it. The layout of the 60-byte result is in
//! [`atrest_format::keyring`]; why GCM and not AES-KWP is in docs/FORMAT.md.
//!
//! Reading a key file follows ssh's rule for private keys: a file that its
//! group or others may read or write (any of the mode bits `0o077`) is
//! refused, checked on the mode bits themselves (so also when running as
//! root, which `access()` would let through).
//!
//! ```
//! use atrest_crypto::keyfile::KeyFileKey;
//! use atrest_crypto::DataKey;
//! use atrest_format::keyring::Keyring;
//! use atrest_format::v2::EncryptionContext;
//!
//! let kek = KeyFileKey::generate(&mut rand_core::OsRng);
//! let ctx = EncryptionContext::new([("app", "x")]).unwrap()
//!     .with_keyring(Keyring::KeyFile).unwrap();
//! let data_key = DataKey::generate(&mut rand_core::OsRng);
//! let wrapped = kek.wrap(&data_key, &ctx, &mut rand_core::OsRng);
//! assert_eq!(wrapped.len(), 60);
//! let back = kek.unwrap(&wrapped, &ctx).unwrap();
//! assert_eq!(back.expose(), data_key.expose());
//!
//! // Another context (or key file) does not unwrap it.
//! let other = EncryptionContext::new([("app", "y")]).unwrap()
//!     .with_keyring(Keyring::KeyFile).unwrap();
//! assert!(kek.unwrap(&wrapped, &other).is_err());
//! ```

use std::io::{self, Read, Write};
use std::path::Path;

use atrest_format::keyring::{
    KeyFileWrapped, KEY_FILE_KEY_LEN, KEY_FILE_NONCE_LEN, KEY_FILE_WRAPPED_LEN,
};
use atrest_format::v2::EncryptionContext;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::{Zeroize, Zeroizing};

use crate::DataKey;

/// Mode bits that must be clear on a key file: any access by group or others.
pub const FORBIDDEN_MODE_BITS: u32 = 0o077;

/// The 32-byte key of a key file. Heap-held, zeroized on drop, redacted in
/// `Debug`.
pub struct KeyFileKey(Box<[u8; KEY_FILE_KEY_LEN]>);

impl KeyFileKey {
    /// A key from its bytes, which must be exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyFileError> {
        let mut key = Box::new([0u8; KEY_FILE_KEY_LEN]);
        if bytes.len() != KEY_FILE_KEY_LEN {
            return Err(KeyFileError::WrongLength(bytes.len() as u64));
        }
        key.copy_from_slice(bytes);
        Ok(KeyFileKey(key))
    }

    /// Draws a fresh key from a cryptographic RNG.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut key = Box::new([0u8; KEY_FILE_KEY_LEN]);
        rng.fill_bytes(&mut key[..]);
        KeyFileKey(key)
    }

    /// Reads the key file at `path`: refused if group or others have any
    /// access to it (Unix), and unless it holds exactly 32 bytes.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        // Not even opened unless a regular file: opening a FIFO waits for a
        // writer, perhaps forever.
        if !std::fs::metadata(path).map_err(KeyFileError::Io)?.is_file() {
            return Err(KeyFileError::NotAFile);
        }
        let file = std::fs::File::open(path).map_err(KeyFileError::Io)?;
        // The mode of the file opened, not of whatever the path names later.
        let meta = file.metadata().map_err(KeyFileError::Io)?;
        if !meta.is_file() {
            return Err(KeyFileError::NotAFile);
        }
        check_mode(&meta)?;
        if meta.len() != KEY_FILE_KEY_LEN as u64 {
            return Err(KeyFileError::WrongLength(meta.len()));
        }
        // One byte more than a key, so a file that grew is noticed too.
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_FILE_KEY_LEN + 1));
        file.take(KEY_FILE_KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(KeyFileError::Io)?;
        Self::from_slice(&bytes)
    }

    /// Writes a fresh key to a new key file at `path`: mode 0600, written to
    /// a temporary file beside it and linked into place only when complete
    /// and synced, never replacing an existing file (even one created
    /// meanwhile).
    pub fn create_new(
        path: &Path,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<(), KeyFileError> {
        if path.symlink_metadata().is_ok() {
            return Err(KeyFileError::Exists);
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".atrest-key-").suffix(".partial");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o600));
        }
        // tempfile names its random temporary path in errors: report the
        // directory's own error, or else only the kind of failure.
        std::fs::metadata(dir).map_err(KeyFileError::Io)?;
        let mut temp = builder
            .tempfile_in(dir)
            .map_err(|e| KeyFileError::Io(e.kind().into()))?;
        let key = Self::generate(rng);
        temp.write_all(&key.0[..]).map_err(KeyFileError::Io)?;
        temp.as_file().sync_all().map_err(KeyFileError::Io)?;
        drop(key);
        temp.persist_noclobber(path)
            .map_err(|e| match e.error.kind() {
                io::ErrorKind::AlreadyExists => KeyFileError::Exists,
                _ => KeyFileError::Io(e.error),
            })?;
        // The new name must survive a crash too.
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(KeyFileError::Io)?;
        Ok(())
    }

    /// Wraps `data_key` for an object with `context` (which should record
    /// [`Keyring::KeyFile`](atrest_format::keyring::Keyring::KeyFile)):
    /// nonce, encrypted key, tag, [`KEY_FILE_WRAPPED_LEN`] bytes.
    pub fn wrap(
        &self,
        data_key: &DataKey,
        context: &EncryptionContext,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Vec<u8> {
        let mut nonce = [0u8; KEY_FILE_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(KEY_FILE_WRAPPED_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(data_key.expose());
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.to_bytes()),
                &mut out[KEY_FILE_NONCE_LEN..],
            )
            .expect("32 bytes are far below the GCM limit");
        out.extend_from_slice(tag.as_ref());
        debug_assert_eq!(out.len(), KEY_FILE_WRAPPED_LEN);
        out
    }

    /// The data key of an object whose wrapped key is `wrapped` and whose
    /// encryption context is `context`. Fails, opaquely, for another key
    /// file, another context, or any change to the wrapped key.
    pub fn unwrap(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<DataKey, UnwrapError> {
        let parts = KeyFileWrapped::split(wrapped).ok_or(UnwrapError)?;
        let mut buf = Zeroizing::new(*parts.sealed);
        let plain = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(*parts.nonce),
                Aad::from(context.to_bytes()),
                &mut buf[..],
            )
            .map_err(|_| UnwrapError)?;
        Ok(DataKey::from_slice(plain).expect("a sealed 32-byte key"))
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0[..]).expect("a 32-byte AES-256 key"))
    }
}

impl Drop for KeyFileKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for KeyFileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFileKey(<redacted>)")
    }
}

#[cfg(unix)]
fn check_mode(meta: &std::fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(KeyFileError::Unprotected { mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &std::fs::Metadata) -> Result<(), KeyFileError> {
    Ok(())
}

/// Why a key file cannot be read or created.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Opening, reading or writing failed (not found, permission denied, ...).
    Io(io::Error),
    /// The path is a directory or another non-regular file.
    NotAFile,
    /// The file does not hold exactly 32 bytes.
    WrongLength(u64),
    /// Group or others have access to the file (Unix mode bits `0o077`).
    Unprotected {
        /// The file's permission bits.
        mode: u32,
    },
    /// [`KeyFileKey::create_new`] found a file (or anything) at the path.
    Exists,
}

impl std::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The io::Error itself is the source, shown after this.
            KeyFileError::Io(_) => f.write_str("cannot access it"),
            KeyFileError::NotAFile => f.write_str("not a regular file"),
            KeyFileError::WrongLength(n) => write!(
                f,
                "holds {n} bytes, but a key file is exactly {KEY_FILE_KEY_LEN} (make one with `atrest keygen`)"
            ),
            KeyFileError::Unprotected { mode } => write!(
                f,
                "is accessible by group or others (mode {mode:04o}); a key file must be \
                 private: chmod 600 it"
            ),
            KeyFileError::Exists => f.write_str("already exists; a key file is never overwritten"),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A key-file wrapped data key did not unwrap: another key file, another
/// context, or a changed wrapped key. Deliberately without detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnwrapError;

impl std::fmt::Display for UnwrapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the key file does not unwrap this object's data key: another key file, \
             or the object's header was changed",
        )
    }
}

impl std::error::Error for UnwrapError {}

#[cfg(test)]
mod tests {
    use super::*;
    use atrest_format::keyring::Keyring;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        EncryptionContext::new(pairs.iter().copied())
            .unwrap()
            .with_keyring(Keyring::KeyFile)
            .unwrap()
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = KeyFileKey::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn from_slice_wants_32_bytes() {
        for n in [0, 16, 31, 33, 64] {
            assert!(matches!(
                KeyFileKey::from_slice(&vec![1; n]),
                Err(KeyFileError::WrongLength(m)) if m == n as u64
            ));
        }
    }

    #[test]
    fn wraps_are_randomised_and_round_trip() {
        let kek = KeyFileKey::from_slice(&[7; 32]).unwrap();
        let dk = DataKey::from_slice(&[9; 32]).unwrap();
        let c = ctx(&[("a", "b")]);
        let w1 = kek.wrap(&dk, &c, &mut rand_core::OsRng);
        let w2 = kek.wrap(&dk, &c, &mut rand_core::OsRng);
        assert_ne!(w1, w2, "fresh nonce per wrap");
        for w in [w1, w2] {
            assert!(!w.windows(32).any(|s| s == dk.expose()), "no plaintext key");
            assert_eq!(kek.unwrap(&w, &c).unwrap().expose(), dk.expose());
        }
    }

    #[test]
    fn wrong_key_context_or_length_fail() {
        let kek = KeyFileKey::from_slice(&[7; 32]).unwrap();
        let other = KeyFileKey::from_slice(&[8; 32]).unwrap();
        let dk = DataKey::from_slice(&[9; 32]).unwrap();
        let c = ctx(&[("a", "b")]);
        let w = kek.wrap(&dk, &c, &mut rand_core::OsRng);
        assert_eq!(other.unwrap(&w, &c).unwrap_err(), UnwrapError);
        assert!(kek.unwrap(&w, &ctx(&[("a", "c")])).is_err());
        assert!(kek.unwrap(&w, &ctx(&[])).is_err());
        // The same pairs without the keyring entry are another context.
        let kms_ctx = EncryptionContext::new([("a", "b")]).unwrap();
        assert!(kek.unwrap(&w, &kms_ctx).is_err());
        assert!(kek.unwrap(&w[..59], &c).is_err());
        let mut longer = w.clone();
        longer.push(0);
        assert!(kek.unwrap(&longer, &c).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn create_new_writes_a_private_key_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        KeyFileKey::create_new(&path, &mut rand_core::OsRng).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(matches!(
            KeyFileKey::create_new(&path, &mut rand_core::OsRng),
            Err(KeyFileError::Exists)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "unchanged");
        // Only the key file is left: no temporary files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let loaded = KeyFileKey::load(&path).unwrap();
        assert_eq!(&loaded.0[..], &bytes[..]);
    }

    #[cfg(unix)]
    #[test]
    fn load_checks_mode_bits_type_and_length() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [5u8; 32]).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o601] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                matches!(KeyFileKey::load(&path), Err(KeyFileError::Unprotected { mode: m }) if m == mode),
                "{mode:o}"
            );
        }
        for mode in [0o600, 0o400, 0o700] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(KeyFileKey::load(&path).is_ok(), "{mode:o}");
        }
        for len in [0usize, 31, 33, 44] {
            std::fs::write(&path, vec![5u8; len]).unwrap();
            assert!(matches!(
                KeyFileKey::load(&path),
                Err(KeyFileError::WrongLength(n)) if n == len as u64
            ));
        }
        assert!(matches!(
            KeyFileKey::load(dir.path()),
            Err(KeyFileError::NotAFile)
        ));
        assert!(matches!(
            KeyFileKey::load(&dir.path().join("missing")),
            Err(KeyFileError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
        // A FIFO is refused without being opened (which would wait for a
        // writer that never comes, deaf to signals).
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(KeyFileKey::load(&fifo).err()));
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert!(matches!(got, Ok(Some(KeyFileError::NotAFile))), "{got:?}");
    }
}
