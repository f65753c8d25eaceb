use zeroize::Zeroize;

/// Length of an AES-256 data key in bytes.
pub const DATA_KEY_LEN: usize = 32;

/// A plaintext AES-256 data key.
///
/// The bytes live on the heap (so moves do not leave copies behind), are
/// zeroized on drop, and never appear in `Debug` output.
pub struct DataKey(Box<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// Copies a key from `bytes`, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyLengthError> {
        let mut key = Box::new([0u8; DATA_KEY_LEN]);
        if bytes.len() != DATA_KEY_LEN {
            return Err(KeyLengthError(bytes.len()));
        }
        key.copy_from_slice(bytes);
        Ok(DataKey(key))
    }

    /// Draws a fresh key from a cryptographic RNG.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut key = Box::new([0u8; DATA_KEY_LEN]);
        rng.fill_bytes(&mut key[..]);
        DataKey(key)
    }

    /// The key bytes, for handing to a cipher. Do not copy them elsewhere.
    pub fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key of the wrong length was supplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyLengthError(pub usize);

impl std::fmt::Display for KeyLengthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "data key is {} bytes, expected {DATA_KEY_LEN}", self.0)
    }
}

impl std::error::Error for KeyLengthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = DataKey::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        assert_eq!(
            DataKey::from_slice(&[0; 16]).unwrap_err(),
            KeyLengthError(16)
        );
        assert_eq!(
            DataKey::from_slice(&[0; 33]).unwrap_err(),
            KeyLengthError(33)
        );
    }
}
