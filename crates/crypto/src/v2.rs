//! Format v2: framed AES-256-GCM with HKDF-SHA-256 keys and key commitment.
//!
//! From the 32-byte data key and the header's random salt, HKDF-SHA-256
//! derives a frame key and a key commitment (see [`derive()`]). The commitment
//! is stored in the header and checked, in constant time, before any frame is
//! opened; so one object cannot decrypt under two keys, and a wrapped key
//! that unwraps to another data key is refused before any plaintext exists.
//!
//! The body is a sequence of frames sealed with [`frame_nonce`] (counter and
//! final flag) and the header's [`aad`](Header::aad): truncation, extension,
//! reordering and duplication of frames all fail authentication.
//!
//! Three ways in:
//! - [`Encryptor`] / [`Decryptor`]: streaming state machines, no I/O;
//! - [`encrypt_stream`] / [`decrypt_stream`]: loops over `std::io`;
//! - [`FrameCipher`]: random access to single frames, for ranged reads.
//!
//! ```
//! use atrest_crypto::{v2, DataKey};
//! use atrest_format::v2::EncryptionContext;
//! use atrest_format::{parse_header, Header, Parsed};
//!
//! let key = DataKey::from_slice(&[7; 32]).unwrap();
//! let context = EncryptionContext::new([("purpose", "example")]).unwrap();
//! let mut enc = v2::Encryptor::new(&key, b"wrapped".to_vec(), 12, context, &mut rand_core::OsRng)
//!     .unwrap();
//! let mut object = Vec::new();
//! enc.update(&[42; 10_000], &mut object);
//! enc.finish(&mut object);
//!
//! // Reading: parse the header, unwrap its key with KMS (here: known), decrypt.
//! let Parsed::Complete(Header::V2(header)) = parse_header(&object).unwrap() else {
//!     panic!("not a v2 header");
//! };
//! let mut dec = v2::Decryptor::new(&key, &header).unwrap();
//! let mut plain = Vec::new();
//! dec.update(&object[header.encoded_len()..], &mut plain).unwrap();
//! dec.finish(&mut plain).unwrap();
//! assert_eq!(plain, vec![42; 10_000]);
//! ```

use std::io::{Read, Write};

use atrest_format::v2::{
    frame_nonce, EncryptionContext, Header, COMMITMENT_LEN, SALT_LEN, TAG_LEN,
};
use atrest_format::HeaderError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use crate::frame_run::FrameRun;
use crate::{copy_loop, DataKey, DecryptError, StreamError};

/// HKDF info prefix of the frame key (the suite byte follows).
pub const FRAME_KEY_INFO: &[u8] = b"atrest v2 frame key";
/// HKDF info prefix of the key commitment (the suite byte follows).
pub const COMMITMENT_INFO: &[u8] = b"atrest v2 key commitment";

/// Keys derived from a data key and a salt. The frame key is zeroized on
/// drop and never shown by `Debug`.
pub struct Derived {
    frame_key: Zeroizing<[u8; 32]>,
    /// The key commitment to store in, or compare with, the header.
    pub commitment: [u8; COMMITMENT_LEN],
}

impl Derived {
    /// The frame key, for independent implementations and test vectors only.
    pub fn expose_frame_key(&self) -> &[u8; 32] {
        &self.frame_key
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field("frame_key", &"<redacted>")
            .field("commitment", &self.commitment)
            .finish()
    }
}

/// Derives the frame key and the key commitment: HKDF-SHA-256 with the data
/// key as input key material, the salt as salt, and info
/// `FRAME_KEY_INFO || [suite]` or `COMMITMENT_INFO || [suite]`.
pub fn derive(key: &DataKey, salt: &[u8; SALT_LEN], suite: u8) -> Derived {
    let hk = Hkdf::<Sha256>::new(Some(salt), key.expose());
    let mut frame_key = Zeroizing::new([0u8; 32]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    // 32 bytes is far below HKDF-SHA-256's limit of 8160, so expand cannot fail.
    hk.expand_multi_info(&[FRAME_KEY_INFO, &[suite]], &mut frame_key[..])
        .expect("valid HKDF output length");
    hk.expand_multi_info(&[COMMITMENT_INFO, &[suite]], &mut commitment)
        .expect("valid HKDF output length");
    Derived {
        frame_key,
        commitment,
    }
}

/// Seals and opens single frames of one object, in any order: the primitive
/// under [`Encryptor`] and [`Decryptor`], and the tool for ranged reads.
///
/// ```
/// use atrest_crypto::{v2, DataKey};
/// use atrest_format::v2::{frames_for_range, plaintext_len, EncryptionContext};
/// use atrest_format::{parse_header, Header, Parsed};
///
/// let key = DataKey::from_slice(&[1; 32]).unwrap();
/// let plain: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
/// let ctx = EncryptionContext::new::<String, String>([]).unwrap();
/// let mut enc = v2::Encryptor::new(&key, vec![0xee], 12, ctx, &mut rand_core::OsRng).unwrap();
/// let mut object = Vec::new();
/// enc.update(&plain, &mut object);
/// enc.finish(&mut object);
///
/// // Read plaintext bytes 5000..=9000 by fetching only the frames holding them.
/// let Parsed::Complete(Header::V2(header)) = parse_header(&object).unwrap() else { panic!() };
/// let body = &object[header.encoded_len()..];
/// let f = header.frame_size();
/// let len = plaintext_len(body.len() as u64, f).unwrap();
/// let r = frames_for_range(5000, 9000, f, len).unwrap();
/// let fetched = &body[r.body_start as usize..=r.body_end_inclusive as usize];
///
/// let cipher = v2::FrameCipher::new(&key, &header).unwrap();
/// let mut out = Vec::new();
/// for (i, frame) in (r.first_frame..=r.last_frame).zip(fetched.chunks(f as usize + 16)) {
///     let is_final = r.last_is_final && i == r.last_frame;
///     out.extend(cipher.open_frame(i, is_final, frame).unwrap());
/// }
/// assert_eq!(&out[r.skip as usize..][..r.len as usize], &plain[5000..=9000]);
/// ```
///
/// A `FrameCipher` is `Send + Sync` and its methods take `&self`: frames are
/// independent, so one cipher can seal or open different frames on several
/// threads at once (e.g. with `std::thread::scope`).
///
/// AES-256-GCM comes from `aws-lc-rs` (AWS-LC), chosen by measurement over
/// RustCrypto's `aes-gcm` (about 3x faster here; see `docs/BENCHMARKS.md`).
/// AWS-LC keeps the expanded key in its own context, which it wipes when the
/// cipher is dropped.
pub struct FrameCipher {
    aead: LessSafeKey,
    aad: Vec<u8>,
    frame_size: usize,
}

impl FrameCipher {
    /// Derives the frame key for `header` and checks the header's key
    /// commitment, in constant time. A wrong data key (or a modified salt,
    /// suite or commitment) fails here, before any frame is touched.
    pub fn new(key: &DataKey, header: &Header) -> Result<Self, DecryptError> {
        let derived = derive(key, header.salt(), header.suite());
        if !bool::from(derived.commitment.ct_eq(header.commitment())) {
            return Err(DecryptError);
        }
        Ok(Self::with_derived(&derived, header))
    }

    fn with_derived(derived: &Derived, header: &Header) -> Self {
        FrameCipher {
            aead: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &derived.frame_key[..])
                    .expect("a 32-byte AES-256 key"),
            ),
            aad: header.aad().to_vec(),
            frame_size: usize::try_from(header.frame_size()).expect("frame size <= 16 MiB"),
        }
    }

    /// Plaintext bytes in every frame but the final one.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Whether a frame with `len` plaintext bytes is allowed at this place.
    fn plaintext_len_ok(&self, index: u64, is_final: bool, len: usize) -> bool {
        if is_final {
            len <= self.frame_size && (len > 0 || index == 0)
        } else {
            len == self.frame_size
        }
    }

    /// Encrypts `buf` (one frame's plaintext) in place and returns its tag,
    /// which follows the ciphertext in the body.
    ///
    /// # Panics
    ///
    /// If the length breaks the framing rules: a non-final frame must hold
    /// exactly [`frame_size`](Self::frame_size) bytes, the final frame
    /// `1..=frame_size` (0 only as frame 0 of an empty plaintext).
    pub fn seal_frame_in_place(&self, index: u64, is_final: bool, buf: &mut [u8]) -> [u8; TAG_LEN] {
        assert!(
            self.plaintext_len_ok(index, is_final, buf.len()),
            "frame {index} (final: {is_final}) cannot hold {} bytes",
            buf.len()
        );
        let nonce = Nonce::assume_unique_for_key(frame_nonce(index, is_final));
        let tag = self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::from(&self.aad[..]), buf)
            .expect("frames are far below the GCM length limit");
        tag.as_ref().try_into().expect("a 16-byte GCM tag")
    }

    /// Seals one frame: returns ciphertext followed by the tag.
    ///
    /// # Panics
    ///
    /// As [`seal_frame_in_place`](Self::seal_frame_in_place).
    pub fn seal_frame(&self, index: u64, is_final: bool, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        self.seal_into(index, is_final, plaintext, &mut out);
        out
    }

    /// Appends the sealed frame to `out`.
    fn seal_into(&self, index: u64, is_final: bool, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self.seal_frame_in_place(index, is_final, &mut out[start..]);
        out.extend_from_slice(&tag);
    }

    /// Opens one frame in place: `buf` holds ciphertext followed by the tag;
    /// on success the plaintext is `buf[..buf.len() - 16]`, returned as a
    /// slice. On failure `buf` holds no plaintext (AWS-LC overwrites the
    /// data it decrypted before the tag check failed with zeros): discard it.
    pub fn open_frame_in_place<'a>(
        &self,
        index: u64,
        is_final: bool,
        buf: &'a mut [u8],
    ) -> Result<&'a mut [u8], DecryptError> {
        let Some(len) = buf.len().checked_sub(TAG_LEN) else {
            return Err(DecryptError);
        };
        if !self.plaintext_len_ok(index, is_final, len) {
            return Err(DecryptError);
        }
        let nonce = Nonce::assume_unique_for_key(frame_nonce(index, is_final));
        self.aead
            .open_in_place(nonce, Aad::from(&self.aad[..]), buf)
            .map_err(|_| DecryptError)
    }

    /// Opens one frame out of place: `sealed` holds ciphertext followed by
    /// the tag, `out` receives the plaintext and must be 16 bytes shorter.
    /// Saves the copy into a mutable buffer that opening in place needs
    /// when the ciphertext sits in a shared (network) buffer. On failure
    /// `out` is zeroed: it never holds unauthenticated plaintext.
    pub fn open_frame_to(
        &self,
        index: u64,
        is_final: bool,
        sealed: &[u8],
        out: &mut [u8],
    ) -> Result<(), DecryptError> {
        let Some(len) = sealed.len().checked_sub(TAG_LEN) else {
            return Err(DecryptError);
        };
        if out.len() != len || !self.plaintext_len_ok(index, is_final, len) {
            return Err(DecryptError);
        }
        let (ciphertext, tag) = sealed.split_at(len);
        let nonce = Nonce::assume_unique_for_key(frame_nonce(index, is_final));
        self.aead
            .open_separate_gather(nonce, Aad::from(&self.aad[..]), ciphertext, tag, out)
            .map_err(|_| {
                out.fill(0);
                DecryptError
            })
    }

    /// Opens one frame (ciphertext followed by the tag) and returns its
    /// plaintext.
    pub fn open_frame(
        &self,
        index: u64,
        is_final: bool,
        sealed: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let mut out = Vec::with_capacity(sealed.len());
        self.open_into(index, is_final, sealed, &mut out)?;
        Ok(out)
    }

    /// Appends the frame's plaintext to `out`, or leaves `out` as it was.
    fn open_into(
        &self,
        index: u64,
        is_final: bool,
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DecryptError> {
        let start = out.len();
        out.extend_from_slice(sealed);
        match self.open_frame_in_place(index, is_final, &mut out[start..]) {
            Ok(plain) => {
                let len = plain.len();
                out.truncate(start + len);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

impl std::fmt::Debug for FrameCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("v2::FrameCipher")
            .field("frame_size", &self.frame_size)
            .finish_non_exhaustive()
    }
}

/// Draws the 32-byte salt for a new object.
pub fn random_salt(rng: &mut impl rand_core::CryptoRngCore) -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt
}

/// Sets up a new object: draws the salt from `rng`, derives the frame key
/// and the key commitment (once), and builds the header. Returns the header
/// to write first and the cipher that seals the object's frames. The
/// arguments are as for [`Encryptor::new`], which is built on this; callers
/// that seal frames themselves (in parallel, in place) start here.
pub fn new_object(
    key: &DataKey,
    wrapped_key: Vec<u8>,
    frame_exponent: u8,
    context: EncryptionContext,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(Header, FrameCipher), HeaderError> {
    let salt = random_salt(rng);
    let suite = atrest_format::v2::SUITE_AES256GCM_HKDF_SHA256;
    let derived = derive(key, &salt, suite);
    let header = Header::new(
        wrapped_key,
        frame_exponent,
        salt,
        derived.commitment,
        context,
    )?;
    let cipher = FrameCipher::with_derived(&derived, &header);
    Ok((header, cipher))
}

/// Streaming encryptor producing a whole v2 object: the header, then frames.
///
/// A full frame is held back until more input arrives (then it is not final)
/// or [`finish`](Encryptor::finish) is called (then it is).
pub struct Encryptor {
    cipher: FrameCipher,
    header: Header,
    header_written: bool,
    pending: Vec<u8>,
    index: u64,
}

impl Encryptor {
    /// Starts an object: draws the salt from `rng`, derives the keys and
    /// builds the header. `context` is the one also given to KMS when the
    /// data key was generated, and `frame_exponent` sets frames of
    /// `2^frame_exponent` bytes (see
    /// [`DEFAULT_FRAME_EXPONENT`](atrest_format::v2::DEFAULT_FRAME_EXPONENT)).
    pub fn new(
        key: &DataKey,
        wrapped_key: Vec<u8>,
        frame_exponent: u8,
        context: EncryptionContext,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Self, HeaderError> {
        let (header, cipher) = new_object(key, wrapped_key, frame_exponent, context, rng)?;
        Ok(Encryptor {
            cipher,
            header,
            header_written: false,
            pending: Vec::new(),
            index: 0,
        })
    }

    /// The header this encryptor writes first.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn write_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            self.header.encode(out);
            self.header_written = true;
        }
    }

    /// Encrypts `input`, appending the header (on the first call) and every
    /// frame known not to be final to `out`.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.write_header(out);
        let f = self.cipher.frame_size;
        while !input.is_empty() {
            if self.pending.len() == f {
                // More input follows, so the held frame is not final.
                self.cipher.seal_into(self.index, false, &self.pending, out);
                self.pending.clear();
                self.index += 1;
            }
            if self.pending.is_empty() && input.len() > f {
                // Seal straight from the input, skipping the pending copy.
                self.cipher.seal_into(self.index, false, &input[..f], out);
                self.index += 1;
                input = &input[f..];
                continue;
            }
            let take = (f - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
    }

    /// Seals the final frame (empty only if the whole plaintext is).
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.write_header(out);
        self.cipher.seal_into(self.index, true, &self.pending, out);
    }
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("v2::Encryptor")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Streaming decryptor for a v2 body (the bytes after the header).
///
/// Plaintext of a frame is released only after that frame authenticated,
/// and a full frame is held back until it is known whether it is the last.
/// Every failure is the one opaque [`DecryptError`]; after one, the
/// decryptor refuses further input. Output released before an error is
/// authentic but incomplete: discard it.
pub struct Decryptor {
    cipher: FrameCipher,
    pending: Vec<u8>,
    index: u64,
    failed: bool,
}

impl Decryptor {
    /// Checks the key commitment of `header` against `key` and starts
    /// decrypting the body that follows it.
    pub fn new(key: &DataKey, header: &Header) -> Result<Self, DecryptError> {
        Ok(Decryptor {
            cipher: FrameCipher::new(key, header)?,
            pending: Vec::new(),
            index: 0,
            failed: false,
        })
    }

    /// Decrypts body bytes, appending the plaintext of every authenticated
    /// frame to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.failed {
            return Err(DecryptError);
        }
        let result = self.update_inner(input, out);
        self.failed = result.is_err();
        result
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        let sealed = self.cipher.frame_size + TAG_LEN;
        while !input.is_empty() {
            if self.pending.len() == sealed {
                // More input follows, so the held frame must not be final.
                self.cipher
                    .open_into(self.index, false, &self.pending, out)?;
                self.pending.clear();
                self.index += 1;
            }
            if self.pending.is_empty() && input.len() > sealed {
                self.cipher
                    .open_into(self.index, false, &input[..sealed], out)?;
                self.index += 1;
                input = &input[sealed..];
                continue;
            }
            let take = (sealed - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    /// Opens the held-back frame as the final one. Fails if the body ended
    /// early (no final frame), is empty, or ends in an empty frame after
    /// others.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.failed {
            return Err(DecryptError);
        }
        self.cipher.open_into(self.index, true, &self.pending, out)
    }
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("v2::Decryptor")
            .field("index", &self.index)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Encrypts a whole in-memory plaintext to a whole object.
pub fn encrypt(mut encryptor: Encryptor, plaintext: &[u8]) -> Vec<u8> {
    let f = encryptor.cipher.frame_size as u64;
    let body = atrest_format::v2::body_len(plaintext.len() as u64, f).unwrap_or(0);
    let mut out = Vec::with_capacity(encryptor.header.encoded_len() + body as usize);
    encryptor.update(plaintext, &mut out);
    encryptor.finish(&mut out);
    out
}

/// Decrypts a whole in-memory body (the bytes after the header).
pub fn decrypt(key: &DataKey, header: &Header, body: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let mut out = Vec::with_capacity(body.len());
    let mut dec = Decryptor::new(key, header)?;
    dec.update(body, &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}

/// Reads all of `reader` and writes the whole object (header and frames) to
/// `writer`. Returns the number of plaintext bytes.
///
/// ```
/// use atrest_crypto::{v2, DataKey};
/// use atrest_format::v2::{EncryptionContext, DEFAULT_FRAME_EXPONENT};
///
/// let key = DataKey::from_slice(&[3; 32]).unwrap();
/// let ctx = EncryptionContext::new([("k", "v")]).unwrap();
/// let enc = v2::Encryptor::new(&key, vec![1; 8], DEFAULT_FRAME_EXPONENT, ctx, &mut rand_core::OsRng)
///     .unwrap();
/// let mut object = Vec::new();
/// let n = v2::encrypt_stream(enc, &b"hello"[..], &mut object).unwrap();
/// assert_eq!(n, 5);
///
/// let mut reader = &object[..];
/// let header = atrest_crypto::read_header(&mut reader).unwrap();
/// let mut plain = Vec::new();
/// atrest_crypto::decrypt_stream(&key, &header, reader, &mut plain).unwrap();
/// assert_eq!(plain, b"hello");
/// ```
pub fn encrypt_stream(
    mut encryptor: Encryptor,
    reader: impl Read,
    mut writer: impl Write,
) -> std::io::Result<u64> {
    let mut out = Vec::new();
    let n = copy_loop(reader, |chunk| {
        out.clear();
        encryptor.update(chunk, &mut out);
        writer.write_all(&out)
    })?;
    out.clear();
    encryptor.finish(&mut out);
    writer.write_all(&out)?;
    writer.flush()?;
    Ok(n)
}

/// Decrypts the body read from `reader` (positioned just after the header,
/// e.g. by [`read_header`](crate::read_header)) and writes the plaintext of
/// each authenticated frame to `writer`. Returns the plaintext length.
///
/// On error the writer may already hold the plaintext of the frames before
/// the bad one: authentic, but not the whole object, so discard it.
pub fn decrypt_stream(
    key: &DataKey,
    header: &Header,
    reader: impl Read,
    writer: impl Write,
) -> Result<u64, StreamError> {
    crate::decrypt_body(Decryptor::new(key, header)?, reader, writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_cipher_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<FrameCipher>();
    }

    #[test]
    fn a_failed_open_leaves_no_plaintext() {
        let key = DataKey::from_slice(&[9; 32]).unwrap();
        let ctx = EncryptionContext::new::<String, String>([]).unwrap();
        let enc = Encryptor::new(&key, vec![1], 12, ctx, &mut rand_core::OsRng).unwrap();
        let plain = [0x61u8; 100];
        let mut frame = enc.cipher.seal_frame(0, true, &plain);
        *frame.last_mut().unwrap() ^= 1;
        assert_eq!(
            enc.cipher.open_frame_in_place(0, true, &mut frame),
            Err(DecryptError)
        );
        assert!(!frame.windows(8).any(|w| w == &plain[..8]));
    }
}
