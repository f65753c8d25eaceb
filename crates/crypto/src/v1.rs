//! Format v1: AES-256-CBC with PKCS#7 padding and the seed tool's IV rule.
//!
//! Both directions are streaming state machines: [`Encryptor::update`] and
//! [`Decryptor::update`] take input of any length and append whole blocks of
//! output; `finish` handles the padding. The decryptor holds back the last
//! block until `finish`, because only then is it known to carry the padding.
//!
//! v1 is not authenticated: a successful decryption proves nothing about
//! integrity. It exists to read and write objects of the original tool.

use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use atrest_format::v1::{cbc_iv, BLOCK_LEN, STORED_IV_LEN};
use aws_lc_rs::cipher::{EncryptionContext, StreamingEncryptingKey, UnboundCipherKey, AES_256};

use crate::{copy_loop, DataKey, DecryptError, StreamError};

type CbcDec = cbc::Decryptor<aes::Aes256>;

/// Draws the 8 stored IV bytes for a new v1 object.
pub fn random_stored_iv(rng: &mut impl rand_core::CryptoRngCore) -> [u8; STORED_IV_LEN] {
    let mut iv = [0u8; STORED_IV_LEN];
    rng.fill_bytes(&mut iv);
    iv
}

/// Streaming AES-256-CBC encryptor producing a v1 body.
///
/// CBC encryption is serial, so its speed is the cipher's: it runs on AWS-LC
/// (`aws-lc-rs`), whose AES-NI CBC code is about 1.7x faster here than
/// RustCrypto's block-at-a-time `cbc` (see `docs/BENCHMARKS.md`). AWS-LC
/// wipes its copy of the key schedule when the encryptor is dropped.
pub struct Encryptor {
    cipher: StreamingEncryptingKey,
}

impl Encryptor {
    /// Starts encrypting with `key` and the IV derived from `stored_iv`.
    pub fn new(key: &DataKey, stored_iv: &[u8; STORED_IV_LEN]) -> Self {
        let key = UnboundCipherKey::new(&AES_256, key.expose()).expect("a 32-byte AES-256 key");
        let iv = EncryptionContext::Iv128(cbc_iv(stored_iv).into());
        Encryptor {
            // "less safe": the IV is ours (the seed tool's rule), not AWS-LC's.
            cipher: StreamingEncryptingKey::less_safe_cbc_pkcs7(key, iv)
                .expect("AES-256-CBC with a 16-byte IV"),
        }
    }

    /// Encrypts `input`, appending every completed block to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        // AWS-LC asks for room for the input and a block's worth of held bytes.
        out.resize(start + input.len() + BLOCK_LEN - 1, 0);
        let written = self
            .cipher
            .update(input, &mut out[start..])
            .expect("the output has room for input + block - 1 bytes")
            .written()
            .len();
        out.truncate(start + written);
    }

    /// Pads and encrypts the final block (always 1..=16 bytes of padding).
    pub fn finish(self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + BLOCK_LEN, 0);
        let (_, update) = self
            .cipher
            .finish(&mut out[start..])
            .expect("the output has room for one block");
        let written = update.written().len();
        debug_assert_eq!(written, BLOCK_LEN);
        out.truncate(start + written);
    }
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("v1::Encryptor").finish_non_exhaustive()
    }
}

/// Streaming AES-256-CBC decryptor for a v1 body.
pub struct Decryptor {
    cipher: CbcDec,
    /// Ciphertext not yet decrypted: a partial block, or the last whole block
    /// (which may be the padding block).
    held: [u8; BLOCK_LEN],
    held_len: usize,
}

impl Decryptor {
    /// Starts decrypting with `key` and the IV derived from `stored_iv`.
    pub fn new(key: &DataKey, stored_iv: &[u8; STORED_IV_LEN]) -> Self {
        Decryptor {
            cipher: CbcDec::new(key.expose().into(), &cbc_iv(stored_iv).into()),
            held: [0; BLOCK_LEN],
            held_len: 0,
        }
    }

    /// Starts decrypting any PKCS#7-padded AES-256-CBC body with a full
    /// 16-byte IV, such as the S3 Encryption Client's legacy CBC objects
    /// (`x-amz-iv`).
    pub fn with_iv(key: &DataKey, iv: &[u8; BLOCK_LEN]) -> Self {
        Decryptor {
            cipher: CbcDec::new(key.expose().into(), iv.into()),
            held: [0; BLOCK_LEN],
            held_len: 0,
        }
    }

    /// Decrypts `input`, appending plaintext to `out`. The last block seen is
    /// held back until [`Decryptor::finish`].
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let total = self.held_len + input.len();
        // Keep the trailing partial block, or the last whole block.
        let keep = match total % BLOCK_LEN {
            0 => total.min(BLOCK_LEN),
            partial => partial,
        };
        let release = total - keep;
        if release > 0 {
            let start = out.len();
            out.extend_from_slice(&self.held[..self.held_len]);
            out.extend_from_slice(&input[..release - self.held_len]);
            decrypt_in_place(&mut self.cipher, &mut out[start..]);
            let rest = &input[release - self.held_len..];
            self.held[..rest.len()].copy_from_slice(rest);
            self.held_len = rest.len();
        } else {
            self.held[self.held_len..total].copy_from_slice(input);
            self.held_len = total;
        }
    }

    /// Decrypts the final block, checks and strips the padding. Fails if the
    /// ciphertext was empty, not a multiple of 16 bytes, or badly padded.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.held_len != BLOCK_LEN {
            return Err(DecryptError);
        }
        let mut block = self.held;
        decrypt_in_place(&mut self.cipher, &mut block);
        let pad = unpad_len(&block).ok_or(DecryptError)?;
        out.extend_from_slice(&block[..BLOCK_LEN - pad]);
        Ok(())
    }
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("v1::Decryptor").finish_non_exhaustive()
    }
}

/// Length of valid PKCS#7 padding in `block`, examining every byte whatever
/// the outcome so the check's timing does not depend on where it fails.
fn unpad_len(block: &[u8; BLOCK_LEN]) -> Option<usize> {
    let pad = block[BLOCK_LEN - 1];
    let mut bad = u8::from(pad == 0) | u8::from(usize::from(pad) > BLOCK_LEN);
    for (i, &b) in block.iter().enumerate() {
        let in_pad = u8::from(BLOCK_LEN - i <= usize::from(pad));
        bad |= in_pad & u8::from(b != pad);
    }
    (bad == 0).then_some(usize::from(pad))
}

fn decrypt_in_place(cipher: &mut CbcDec, buf: &mut [u8]) {
    let (blocks, tail) = InOutBuf::from(buf).into_chunks();
    debug_assert!(tail.is_empty());
    cipher.decrypt_blocks_inout_mut(blocks);
}

/// Decrypts whole CBC blocks of a v1 body in place, independently of the
/// rest of the body: `prev` is the ciphertext block just before `buf` in the
/// body, or for the chunk at offset 0 the CBC IV
/// ([`atrest_format::v1::cbc_iv`] of the stored IV bytes).
///
/// CBC decryption of a block needs only that block and the previous
/// ciphertext block, so a body split at block boundaries can be decrypted
/// chunk by chunk in any order, or on several threads at once (read each
/// chunk's `prev` before its neighbour is decrypted in place). The padding
/// stays on the last chunk: check and strip it with [`unpad`].
///
/// ```
/// use atrest_crypto::{v1, DataKey};
///
/// let key = DataKey::from_slice(&[5; 32]).unwrap();
/// let stored_iv = [1; 8];
/// let plain = vec![7u8; 100_000];
/// let mut body = v1::encrypt(&key, &stored_iv, &plain);
///
/// let at = body.len() / 2 / 16 * 16; // any block boundary
/// let prev_second: [u8; 16] = body[at - 16..at].try_into().unwrap();
/// let (first, second) = body.split_at_mut(at);
/// std::thread::scope(|s| {
///     s.spawn(|| v1::decrypt_chunk_in_place(&key, &atrest_format::v1::cbc_iv(&stored_iv), first));
///     s.spawn(|| v1::decrypt_chunk_in_place(&key, &prev_second, second));
/// });
/// assert_eq!(v1::unpad(&body).unwrap(), &plain[..]);
/// ```
///
/// # Panics
///
/// If `buf` is not a whole number of 16-byte blocks.
pub fn decrypt_chunk_in_place(key: &DataKey, prev: &[u8; BLOCK_LEN], buf: &mut [u8]) {
    assert!(
        buf.len() % BLOCK_LEN == 0,
        "a v1 chunk is whole 16-byte blocks, not {} bytes",
        buf.len()
    );
    let mut cipher = CbcDec::new(key.expose().into(), prev.into());
    decrypt_in_place(&mut cipher, buf);
}

/// Checks the PKCS#7 padding at the end of a decrypted v1 body and returns
/// the plaintext without it. Fails, with the one opaque error, if the body
/// is empty, not whole blocks, or badly padded.
pub fn unpad(decrypted: &[u8]) -> Result<&[u8], DecryptError> {
    if decrypted.is_empty() || decrypted.len() % BLOCK_LEN != 0 {
        return Err(DecryptError);
    }
    let last: &[u8; BLOCK_LEN] = decrypted[decrypted.len() - BLOCK_LEN..]
        .try_into()
        .expect("a whole block");
    let pad = unpad_len(last).ok_or(DecryptError)?;
    Ok(&decrypted[..decrypted.len() - pad])
}

/// Encrypts a whole in-memory plaintext; convenient for tests and small data.
pub fn encrypt(key: &DataKey, stored_iv: &[u8; STORED_IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(atrest_format::v1::ciphertext_len(plaintext.len() as u64) as usize);
    let mut enc = Encryptor::new(key, stored_iv);
    enc.update(plaintext, &mut out);
    enc.finish(&mut out);
    out
}

/// Decrypts a whole in-memory ciphertext; convenient for tests and small data.
pub fn decrypt(
    key: &DataKey,
    stored_iv: &[u8; STORED_IV_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut dec = Decryptor::new(key, stored_iv);
    dec.update(ciphertext, &mut out);
    dec.finish(&mut out)?;
    Ok(out)
}

/// Reads all of `reader` and writes the whole v1 object (`header`, then the
/// ciphertext) to `writer`. Returns the number of plaintext bytes.
///
/// ```
/// use atrest_crypto::{v1, DataKey};
///
/// let key = DataKey::from_slice(&[5; 32]).unwrap();
/// let header = atrest_format::v1::Header::new(vec![9; 96], [1; 8]).unwrap();
/// let mut object = Vec::new();
/// v1::encrypt_stream(&key, &header, &b"legacy"[..], &mut object).unwrap();
///
/// let mut reader = &object[..];
/// let parsed = atrest_crypto::read_header(&mut reader).unwrap();
/// let mut plain = Vec::new();
/// atrest_crypto::decrypt_stream(&key, &parsed, reader, &mut plain).unwrap();
/// assert_eq!(plain, b"legacy");
/// ```
pub fn encrypt_stream(
    key: &DataKey,
    header: &atrest_format::v1::Header,
    reader: impl std::io::Read,
    mut writer: impl std::io::Write,
) -> std::io::Result<u64> {
    let mut out = Vec::new();
    header.encode(&mut out);
    let mut enc = Encryptor::new(key, &header.stored_iv());
    let n = copy_loop(reader, |chunk| {
        enc.update(chunk, &mut out);
        writer.write_all(&out)?;
        out.clear();
        Ok(())
    })?;
    enc.finish(&mut out);
    writer.write_all(&out)?;
    writer.flush()?;
    Ok(n)
}

/// Decrypts the v1 body read from `reader` (positioned after the header)
/// and writes the plaintext to `writer`. Returns the plaintext length.
///
/// v1 is not authenticated: plaintext is written as it is decrypted, and
/// only the final padding check can fail. Discard the output on error.
pub fn decrypt_stream(
    key: &DataKey,
    header: &atrest_format::v1::Header,
    reader: impl std::io::Read,
    writer: impl std::io::Write,
) -> Result<u64, StreamError> {
    crate::decrypt_body(Decryptor::new(key, &header.stored_iv()), reader, writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rules() {
        let mut block = [0u8; 16];
        block[15] = 1;
        assert_eq!(unpad_len(&block), Some(1));
        assert_eq!(unpad_len(&[16; 16]), Some(16));
        assert_eq!(unpad_len(&[0; 16]), None);
        assert_eq!(unpad_len(&[17; 16]), None);
        block[14] = 3;
        block[15] = 2;
        assert_eq!(unpad_len(&block), None);
        block[14] = 2;
        assert_eq!(unpad_len(&block), Some(2));
    }

    #[test]
    fn chunks_decrypt_independently_in_any_order() {
        let key = DataKey::from_slice(&[3; 32]).unwrap();
        let stored_iv = [0xa5; STORED_IV_LEN];
        for len in [0usize, 1, 15, 16, 17, 4095, 4096, 10_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let body = encrypt(&key, &stored_iv, &plain);
            for chunk in [16usize, 48, 4096] {
                let mut out = body.clone();
                // Last chunk first, to show that order does not matter.
                let starts: Vec<usize> = (0..body.len()).step_by(chunk).rev().collect();
                for at in starts {
                    let prev = match at {
                        0 => cbc_iv(&stored_iv),
                        _ => body[at - BLOCK_LEN..at].try_into().unwrap(),
                    };
                    let end = (at + chunk).min(body.len());
                    decrypt_chunk_in_place(&key, &prev, &mut out[at..end]);
                }
                assert_eq!(unpad(&out).unwrap(), &plain[..], "len {len}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn unpad_rejects_bad_bodies() {
        assert_eq!(unpad(&[]), Err(DecryptError));
        assert_eq!(unpad(&[1; 15]), Err(DecryptError));
        assert_eq!(unpad(&[0; 32]), Err(DecryptError));
        assert_eq!(unpad(&[16; 16]).unwrap(), &[] as &[u8]);
        let mut body = [9u8; 32];
        body[31] = 1;
        assert_eq!(unpad(&body).unwrap(), &body[..31]);
    }
}
