//! Format v1: the seed tool's layout, kept byte for byte.
//!
//! ```text
//! offset 0      u8   version = 1
//! offset 1..4   3 bytes reserved, 0
//! offset 4..8   u32 LE: length L of the wrapped data key
//! offset 8      L bytes: wrapped data key (KMS CiphertextBlob, opaque)
//! offset 8+L    8 bytes: stored IV bytes
//! offset 16+L   AES-256-CBC ciphertext, PKCS#7 padded (1..=16 bytes of padding)
//! ```
//!
//! The CBC IV is not the stored bytes themselves: the seed tool handed the
//! cipher the *hex string* of the 8 stored bytes, so the real IV is the 16
//! ASCII bytes of their lower-case hex encoding (see [`cbc_iv`]).

use alloc::vec::Vec;

use crate::{check_wrapped_key, incomplete, wrapped_key_len, HeaderError, ParsedAs, PREFIX_LEN};

/// The version byte of format v1.
pub const VERSION: u8 = 1;
/// Number of IV bytes stored in the object.
pub const STORED_IV_LEN: usize = 8;
/// AES block length: the ciphertext is a positive multiple of it.
pub const BLOCK_LEN: usize = 16;

/// A v1 header. Construction checks the wrapped-key bounds, so every value of
/// this type encodes to a header that [`crate::parse_header`] accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    wrapped_key: Vec<u8>,
    stored_iv: [u8; STORED_IV_LEN],
}

impl Header {
    /// Builds a header from a wrapped data key and the 8 stored IV bytes.
    pub fn new(wrapped_key: Vec<u8>, stored_iv: [u8; STORED_IV_LEN]) -> Result<Self, HeaderError> {
        check_wrapped_key(&wrapped_key)?;
        Ok(Header {
            wrapped_key,
            stored_iv,
        })
    }

    /// The same header with another wrapped key, e.g. after KMS `ReEncrypt`:
    /// the stored IV, and so the ciphertext after it, stay valid.
    pub fn with_wrapped_key(self, wrapped_key: Vec<u8>) -> Result<Self, HeaderError> {
        Header::new(wrapped_key, self.stored_iv)
    }

    /// The wrapped (KMS-encrypted) data key.
    pub fn wrapped_key(&self) -> &[u8] {
        &self.wrapped_key
    }

    /// The 8 IV bytes as stored in the object.
    pub fn stored_iv(&self) -> [u8; STORED_IV_LEN] {
        self.stored_iv
    }

    /// The 16-byte IV the cipher really uses; see [`cbc_iv`].
    pub fn cbc_iv(&self) -> [u8; BLOCK_LEN] {
        cbc_iv(&self.stored_iv)
    }

    /// Encoded length: the offset of the first ciphertext byte.
    pub fn encoded_len(&self) -> usize {
        PREFIX_LEN + self.wrapped_key.len() + STORED_IV_LEN
    }

    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(VERSION);
        out.extend_from_slice(&[0, 0, 0]);
        // Bounded by MAX_WRAPPED_KEY_LEN at construction, so it fits a u32.
        out.extend_from_slice(&(self.wrapped_key.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.wrapped_key);
        out.extend_from_slice(&self.stored_iv);
    }
}

/// The CBC IV for the given stored IV bytes: ASCII of their lower-case hex.
pub fn cbc_iv(stored_iv: &[u8; STORED_IV_LEN]) -> [u8; BLOCK_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut iv = [0u8; BLOCK_LEN];
    for (i, byte) in stored_iv.iter().enumerate() {
        iv[2 * i] = HEX[usize::from(byte >> 4)];
        iv[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    iv
}

/// Ciphertext length for a plaintext of `plaintext_len` bytes (PKCS#7 always
/// adds 1..=16 bytes).
pub fn ciphertext_len(plaintext_len: u64) -> u64 {
    (plaintext_len / BLOCK_LEN as u64 + 1) * BLOCK_LEN as u64
}

/// Whether `len` can be the length of a v1 ciphertext: a positive multiple of
/// the block length.
pub fn is_valid_ciphertext_len(len: u64) -> bool {
    len > 0 && len % BLOCK_LEN as u64 == 0
}

/// Parses a v1 header; `input[0]` is known to be [`VERSION`].
pub(crate) fn parse(input: &[u8]) -> Result<ParsedAs<Header>, HeaderError> {
    // Check the reserved bytes as soon as they are present, so garbage is
    // rejected early rather than after waiting for more input.
    let reserved_end = input.len().min(4);
    if input[1..reserved_end].iter().any(|&b| b != 0) {
        return Err(HeaderError::ReservedNotZero);
    }
    let Some(prefix) = input.first_chunk::<PREFIX_LEN>() else {
        return Ok(incomplete(input.len(), PREFIX_LEN));
    };
    let key_len = wrapped_key_len(prefix)?;
    let total = PREFIX_LEN + key_len + STORED_IV_LEN;
    if input.len() < total {
        return Ok(incomplete(input.len(), total));
    }
    let wrapped_key = input[PREFIX_LEN..PREFIX_LEN + key_len].to_vec();
    let mut stored_iv = [0u8; STORED_IV_LEN];
    stored_iv.copy_from_slice(&input[PREFIX_LEN + key_len..total]);
    Ok(ParsedAs::Complete(Header {
        wrapped_key,
        stored_iv,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbc_iv_is_ascii_lower_hex_of_stored_bytes() {
        let stored = [0xd9, 0xb0, 0x00, 0x0f, 0xa5, 0x5a, 0xff, 0x10];
        assert_eq!(&cbc_iv(&stored), b"d9b0000fa55aff10");
    }

    #[test]
    fn ciphertext_len_always_pads() {
        assert_eq!(ciphertext_len(0), 16);
        assert_eq!(ciphertext_len(15), 16);
        assert_eq!(ciphertext_len(16), 32);
        assert_eq!(ciphertext_len(17), 32);
        assert!(!is_valid_ciphertext_len(0));
        assert!(!is_valid_ciphertext_len(17));
        assert!(is_valid_ciphertext_len(32));
    }
}
