//! The AWS S3 Encryption Client's content encryption: one AES-256-GCM stream
//! over the whole object (V2: suite 0x0072, V3: 0x0073 with HKDF-SHA-512 and
//! key commitment), with the metadata of [`atrest_format::s3ec`].
//!
//! GCM is AES-CTR (the 32-bit counter starting at 2 for the first block)
//! plus GHASH over the AAD, the ciphertext and the lengths; GHASH is linear
//! in the blocks, so a body can be processed in runs, in any order and on
//! several threads: [`ContentCipher::open_run`] decrypts a run at its
//! position and returns the run's [`RunHash`], and [`ContentCipher::verify`]
//! combines the runs' hashes (a run's predecessors are shifted by a power of
//! H) and compares the tag in constant time. The field arithmetic is
//! RustCrypto's `ghash` (a multiplication `a * b` is one GHASH block `a`
//! under key `b`); AES-CTR is RustCrypto's `ctr` over `aes`.
//!
//! A V3 cipher is only built after the derived key commitment has been
//! compared, in constant time, with the stored one ([`ContentCipher::new`]):
//! a data key that is not the writer's fails before any byte is decrypted.
//!
//! Plaintext from [`ContentCipher::open_run`] and [`Decryptor::update`] is
//! **unauthenticated** until [`ContentCipher::verify`] or
//! [`Decryptor::finish`] succeeds: keep it away from users until then (atrest
//! writes it to a temporary file and renames the file afterwards).
//!
//! ```
//! use atrest_crypto::{s3ec, DataKey};
//!
//! let key = DataKey::from_slice(&[3; 32]).unwrap();
//! let (cipher, message_id, commitment) = s3ec::new_v3(&key, &mut rand_core::OsRng);
//! let plain = vec![9u8; 100_000];
//!
//! // Write: sequential encryption, the tag last.
//! let mut enc = s3ec::Encryptor::new(cipher, plain.len() as u64).unwrap();
//! let mut body = Vec::new();
//! enc.update(&plain, &mut body).unwrap();
//! enc.finish(&mut body).unwrap();
//!
//! // Read: two runs decrypted independently, then the tag.
//! let content = atrest_format::s3ec::Content::Committed { message_id, commitment };
//! let cipher = s3ec::ContentCipher::new(&key, &content).unwrap();
//! let (ct, tag) = body.split_at_mut(plain.len());
//! let (a, b) = ct.split_at_mut(65_536);
//! let hb = cipher.open_run(65_536, b);
//! let ha = cipher.open_run(0, a);
//! cipher.verify(&[ha, hb], tag).unwrap();
//! assert_eq!(&body[..plain.len()], &plain[..]);
//! ```

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher, StreamCipherSeek};
use aes::Aes256;
use atrest_format::s3ec::{
    Content, COMMITMENT_LEN, GCM_IV_LEN, MAX_PLAINTEXT_LEN, MESSAGE_ID_LEN, SUITE_V3,
    TAG_LEN_BYTES, V3_AAD, V3_IV,
};
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{DataKey, DecryptError};

type Ctr = ctr::Ctr32BE<Aes256>;
type Block = [u8; 16];

/// HKDF info suffix of the V3 content key (after the suite id).
pub const DERIVE_KEY_INFO: &[u8] = b"DERIVEKEY";
/// HKDF info suffix of the V3 key commitment (after the suite id).
pub const COMMIT_KEY_INFO: &[u8] = b"COMMITKEY";
/// Length of the GCM tag.
pub const TAG_LEN: usize = TAG_LEN_BYTES;

/// The V3 content key and key commitment derived from a data key.
pub struct V3Keys {
    content_key: Zeroizing<[u8; 32]>,
    /// The commitment to store in, or compare with, `x-amz-d`.
    pub commitment: [u8; COMMITMENT_LEN],
}

impl V3Keys {
    /// The content key, for test vectors only.
    pub fn expose_content_key(&self) -> &[u8; 32] {
        &self.content_key
    }
}

impl std::fmt::Debug for V3Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Keys")
            .field("content_key", &"<redacted>")
            .field("commitment", &self.commitment)
            .finish()
    }
}

/// V3 key derivation: HKDF-SHA-512 with the message id as salt and the data
/// key as input key material; info `0x0073 || "DERIVEKEY"` gives the 32-byte
/// content key, `0x0073 || "COMMITKEY"` the 28-byte commitment.
pub fn derive_v3(key: &DataKey, message_id: &[u8; MESSAGE_ID_LEN]) -> V3Keys {
    let hk = Hkdf::<Sha512>::new(Some(message_id), key.expose());
    let suite = SUITE_V3.to_be_bytes();
    let mut content_key = Zeroizing::new([0u8; 32]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    // Both lengths are far below HKDF-SHA-512's limit of 16320 bytes.
    hk.expand_multi_info(&[&suite, DERIVE_KEY_INFO], &mut content_key[..])
        .expect("valid HKDF output length");
    hk.expand_multi_info(&[&suite, COMMIT_KEY_INFO], &mut commitment)
        .expect("valid HKDF output length");
    V3Keys {
        content_key,
        commitment,
    }
}

/// Starts a V3 object: draws a message id, derives the content key and the
/// commitment. Returns the cipher, the message id (`x-amz-i`) and the
/// commitment (`x-amz-d`).
pub fn new_v3(
    key: &DataKey,
    rng: &mut impl rand_core::CryptoRngCore,
) -> (ContentCipher, [u8; MESSAGE_ID_LEN], [u8; COMMITMENT_LEN]) {
    let mut message_id = [0u8; MESSAGE_ID_LEN];
    rng.fill_bytes(&mut message_id);
    let keys = derive_v3(key, &message_id);
    let cipher = ContentCipher::from_parts(&keys.content_key, V3_IV, &V3_AAD);
    (cipher, message_id, keys.commitment)
}

/// The partial GHASH of one run of ciphertext, for [`ContentCipher::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunHash {
    /// Ciphertext bytes in the run.
    pub len: u64,
    /// GHASH of the run's blocks from a zero state (the last block
    /// zero-padded).
    hash: Block,
}

/// An object's AES-256-GCM content cipher, for decrypting and encrypting by
/// position. `Send + Sync`; every method takes `&self`.
///
/// The expanded AES key and H are zeroized on drop (the crates' `zeroize`
/// features).
pub struct ContentCipher {
    aes: Aes256,
    iv: [u8; GCM_IV_LEN],
    aad: &'static [u8],
    h: ghash::Key,
    tag_mask: Zeroizing<Block>,
}

impl std::fmt::Debug for ContentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCipher").finish_non_exhaustive()
    }
}

impl ContentCipher {
    /// The cipher for an object's content: V2 GCM keyed by the data key, or
    /// V3 keyed by the derived key after the derived commitment matched the
    /// stored one (compared in constant time). Fails with the same error for
    /// a wrong commitment (a wrong data key, or a forged `x-amz-d` or
    /// `x-amz-i`) and for CBC content, which has no GCM cipher (see
    /// [`crate::v1::Decryptor::with_iv`]).
    pub fn new(key: &DataKey, content: &Content) -> Result<Self, DecryptError> {
        match content {
            Content::Gcm { iv } => Ok(Self::from_parts(key.expose(), *iv, &[])),
            Content::Committed {
                message_id,
                commitment,
            } => {
                let keys = derive_v3(key, message_id);
                if !bool::from(keys.commitment.ct_eq(commitment)) {
                    return Err(DecryptError);
                }
                Ok(Self::from_parts(&keys.content_key, V3_IV, &V3_AAD))
            }
            Content::Cbc { .. } => Err(DecryptError),
        }
    }

    fn from_parts(key: &[u8; 32], iv: [u8; GCM_IV_LEN], aad: &'static [u8]) -> Self {
        let aes = Aes256::new(key.into());
        let mut h = ghash::Key::default();
        aes.encrypt_block(&mut h);
        let mut j0 = Zeroizing::new([0u8; 16]);
        j0[..GCM_IV_LEN].copy_from_slice(&iv);
        j0[15] = 1;
        let mut mask = ghash::Key::clone_from_slice(&j0[..]);
        aes.encrypt_block(&mut mask);
        let tag_mask = Zeroizing::new(mask.into());
        ContentCipher {
            aes,
            iv,
            aad,
            h,
            tag_mask,
        }
    }

    /// XORs the GCM keystream for body bytes `offset..offset + buf.len()`
    /// into `buf`: encrypts or decrypts without authentication. Any offset
    /// works; this alone is the unauthenticated CTR read of a range.
    ///
    /// # Panics
    ///
    /// If the range passes [`MAX_PLAINTEXT_LEN`].
    pub fn apply_keystream(&self, offset: u64, buf: &mut [u8]) {
        assert!(
            offset
                .checked_add(buf.len() as u64)
                .is_some_and(|end| end <= MAX_PLAINTEXT_LEN),
            "a GCM stream holds at most {MAX_PLAINTEXT_LEN} bytes"
        );
        let mut counter = [0u8; 16];
        counter[..GCM_IV_LEN].copy_from_slice(&self.iv);
        counter[15] = 2;
        let core = ctr::CtrCore::<Aes256, ctr::flavors::Ctr32BE>::inner_iv_init(
            self.aes.clone(),
            &counter.into(),
        );
        let mut ctr = Ctr::from_core(core);
        ctr.seek(offset);
        ctr.apply_keystream(buf);
    }

    /// GHASH of a run of ciphertext from a zero state.
    pub fn hash_run(&self, ciphertext: &[u8]) -> RunHash {
        let mut g = GHash::new(&self.h);
        g.update_padded(ciphertext);
        RunHash {
            len: ciphertext.len() as u64,
            hash: g.finalize().into(),
        }
    }

    /// Decrypts the run of ciphertext at body offset `offset` in place and
    /// returns its hash. The plaintext is unauthenticated until
    /// [`verify`](Self::verify) succeeds.
    ///
    /// # Panics
    ///
    /// As [`apply_keystream`](Self::apply_keystream).
    pub fn open_run(&self, offset: u64, buf: &mut [u8]) -> RunHash {
        let hash = self.hash_run(buf);
        self.apply_keystream(offset, buf);
        hash
    }

    /// Encrypts the run of plaintext at offset `offset` in place and returns
    /// the hash of its ciphertext, for [`tag`](Self::tag).
    ///
    /// # Panics
    ///
    /// As [`apply_keystream`](Self::apply_keystream).
    pub fn seal_run(&self, offset: u64, buf: &mut [u8]) -> RunHash {
        self.apply_keystream(offset, buf);
        self.hash_run(buf)
    }

    /// The tag over the runs of the whole ciphertext, in body order. Fails if
    /// a run but the last is not a whole number of blocks (its padding would
    /// break the hash) or the total passes [`MAX_PLAINTEXT_LEN`].
    pub fn tag(&self, runs: &[RunHash]) -> Result<[u8; TAG_LEN], DecryptError> {
        let mut acc = {
            let mut g = GHash::new(&self.h);
            g.update_padded(self.aad);
            Block::from(g.finalize())
        };
        let mut total = 0u64;
        let mut power: Option<(u64, Block)> = None;
        for (i, run) in runs.iter().enumerate() {
            if i + 1 < runs.len() && run.len % 16 != 0 {
                return Err(DecryptError);
            }
            total = total.checked_add(run.len).ok_or(DecryptError)?;
            let blocks = run.len.div_ceil(16);
            if blocks == 0 {
                continue;
            }
            // Runs are mostly of one size: keep the last power of H.
            let h_m = match power {
                Some((m, p)) if m == blocks => p,
                _ => {
                    let p = self.h_power(blocks);
                    power = Some((blocks, p));
                    p
                }
            };
            acc = xor(&mul(&acc, &h_m), &run.hash);
        }
        if total > MAX_PLAINTEXT_LEN {
            return Err(DecryptError);
        }
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(self.aad.len() as u64 * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(total * 8).to_be_bytes());
        let s = mul(&xor(&acc, &lengths), &self.h.into());
        Ok(xor(&s, &self.tag_mask))
    }

    /// Checks `tag` against the tag over the runs (see [`tag`](Self::tag)),
    /// in constant time.
    pub fn verify(&self, runs: &[RunHash], tag: &[u8]) -> Result<(), DecryptError> {
        let expected = self.tag(runs)?;
        if bool::from(expected.ct_eq(tag)) {
            Ok(())
        } else {
            Err(DecryptError)
        }
    }

    /// The hash of `first` followed by `second`: `first`'s hash shifted by
    /// H to the power of `second`'s blocks, plus `second`'s. Fails if
    /// `first` ends in a partial block.
    pub fn combine(&self, first: RunHash, second: RunHash) -> Result<RunHash, DecryptError> {
        let blocks = second.len.div_ceil(16);
        if blocks == 0 {
            return Ok(first);
        }
        if first.len % 16 != 0 {
            return Err(DecryptError);
        }
        Ok(RunHash {
            len: first.len.checked_add(second.len).ok_or(DecryptError)?,
            hash: xor(&mul(&first.hash, &self.h_power(blocks)), &second.hash),
        })
    }

    /// H^m by square and multiply.
    fn h_power(&self, mut m: u64) -> Block {
        let mut base: Block = self.h.into();
        let mut result: Option<Block> = None;
        while m > 0 {
            if m & 1 == 1 {
                result = Some(match result {
                    Some(r) => mul(&r, &base),
                    None => base,
                });
            }
            m >>= 1;
            if m > 0 {
                base = mul(&base, &base);
            }
        }
        result.expect("m > 0")
    }
}

/// `a * b` in GCM's field: GHASH of the one block `a` under key `b`.
fn mul(a: &Block, b: &Block) -> Block {
    let mut g = GHash::new(&(*b).into());
    g.update(&[(*a).into()]);
    g.finalize().into()
}

fn xor(a: &Block, b: &Block) -> Block {
    let mut out = *a;
    for (o, b) in out.iter_mut().zip(b) {
        *o ^= b;
    }
    out
}

/// The runs of one body, added in any order as they are decrypted, merged
/// with their neighbours as they meet (so the set stays as small as the
/// number of gaps), and checked to cover the body exactly once before the
/// tag is compared.
///
/// ```
/// use atrest_crypto::s3ec::{ContentCipher, Runs};
/// use atrest_format::s3ec::Content;
///
/// let key = atrest_crypto::DataKey::from_slice(&[1; 32]).unwrap();
/// let cipher = ContentCipher::new(&key, &Content::Gcm { iv: [2; 12] }).unwrap();
/// let mut body = vec![0u8; 100];
/// let mut runs = Runs::default();
/// let (a, b) = body.split_at_mut(64);
/// runs.insert(&cipher, 64, cipher.seal_run(64, b)).unwrap();
/// runs.insert(&cipher, 0, cipher.seal_run(0, a)).unwrap();
/// let tag = cipher.tag(&[runs.whole(100).unwrap()]).unwrap();
/// runs.verify(&cipher, 100, &tag).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct Runs {
    by_start: std::collections::BTreeMap<u64, RunHash>,
}

impl Runs {
    /// Adds the run at body offset `offset`. Fails if it overlaps a run
    /// already added, or if a run would be followed by another after a
    /// partial block.
    pub fn insert(
        &mut self,
        cipher: &ContentCipher,
        offset: u64,
        hash: RunHash,
    ) -> Result<(), DecryptError> {
        let end = offset.checked_add(hash.len).ok_or(DecryptError)?;
        let (mut start, mut run) = (offset, hash);
        if let Some((&p_start, &prev)) = self.by_start.range(..=offset).next_back() {
            let p_end = p_start + prev.len;
            if p_end > offset || (p_start == offset && hash.len > 0) {
                return Err(DecryptError);
            }
            if p_end == offset {
                self.by_start.remove(&p_start);
                run = cipher.combine(prev, run)?;
                start = p_start;
            }
        }
        if let Some((&n_start, &next)) = self.by_start.range(offset + 1..).next() {
            if n_start < end {
                return Err(DecryptError);
            }
            if n_start == end {
                self.by_start.remove(&n_start);
                run = cipher.combine(run, next)?;
            }
        }
        self.by_start.insert(start, run);
        Ok(())
    }

    /// The one run covering `0..len`, if the runs added are exactly that.
    pub fn whole(&self, len: u64) -> Option<RunHash> {
        match self.by_start.iter().collect::<Vec<_>>()[..] {
            [] if len == 0 => Some(RunHash {
                len: 0,
                hash: [0; 16],
            }),
            [(&0, run)] if run.len == len => Some(*run),
            _ => None,
        }
    }

    /// Checks that the runs cover `0..len` exactly and that `tag` is theirs
    /// (constant time).
    pub fn verify(&self, cipher: &ContentCipher, len: u64, tag: &[u8]) -> Result<(), DecryptError> {
        let whole = self.whole(len).ok_or(DecryptError)?;
        cipher.verify(&[whole], tag)
    }
}

/// The declared plaintext length passes GCM's limit, or the input is longer
/// or shorter than declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthError {
    /// More than [`MAX_PLAINTEXT_LEN`] bytes were declared.
    TooLong(u64),
    /// The input does not have the declared length.
    Mismatch,
}

impl std::fmt::Display for LengthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LengthError::TooLong(n) => write!(
                f,
                "{n} bytes exceed the {MAX_PLAINTEXT_LEN}-byte limit of one AES-GCM stream (about 64 GiB)"
            ),
            LengthError::Mismatch => f.write_str("the input changed length while it was read"),
        }
    }
}

impl std::error::Error for LengthError {}

/// Checks a plaintext length against GCM's limit before anything is
/// encrypted.
pub fn check_plaintext_len(len: u64) -> Result<(), LengthError> {
    if len > MAX_PLAINTEXT_LEN {
        Err(LengthError::TooLong(len))
    } else {
        Ok(())
    }
}

/// Sequential encryption of one object's body (ciphertext, then the tag),
/// no I/O. The length is declared up front, so GCM's limit is enforced
/// before any byte is encrypted and a source that grows or shrinks is
/// noticed.
pub struct Encryptor {
    cipher: ContentCipher,
    declared: u64,
    offset: u64,
    ghash: Sequential,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("s3ec::Encryptor")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// Starts encrypting `plaintext_len` bytes.
    pub fn new(cipher: ContentCipher, plaintext_len: u64) -> Result<Self, LengthError> {
        check_plaintext_len(plaintext_len)?;
        Ok(Encryptor {
            ghash: Sequential::new(&cipher),
            cipher,
            declared: plaintext_len,
            offset: 0,
        })
    }

    /// Encrypts `input`, appending ciphertext to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LengthError> {
        let end = self.offset + input.len() as u64;
        if end > self.declared {
            return Err(LengthError::Mismatch);
        }
        let start = out.len();
        out.extend_from_slice(input);
        self.cipher.apply_keystream(self.offset, &mut out[start..]);
        self.ghash.update(&out[start..]);
        self.offset = end;
        Ok(())
    }

    /// Appends the tag; fails if fewer bytes than declared came in.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), LengthError> {
        if self.offset != self.declared {
            return Err(LengthError::Mismatch);
        }
        let tag = self.ghash.tag(&self.cipher);
        out.extend_from_slice(&tag);
        Ok(())
    }
}

/// Sequential decryption of one object's body, no I/O: the last 16 bytes
/// fed are the tag, held back until [`finish`](Self::finish).
///
/// The plaintext [`update`](Self::update) appends is **unauthenticated**
/// until `finish` returns `Ok`: discard it all if `finish` fails.
pub struct Decryptor {
    cipher: ContentCipher,
    offset: u64,
    ghash: Sequential,
    held: [u8; TAG_LEN],
    held_len: usize,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("s3ec::Decryptor")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// Starts decrypting a body.
    pub fn new(cipher: ContentCipher) -> Self {
        Decryptor {
            ghash: Sequential::new(&cipher),
            cipher,
            offset: 0,
            held: [0; TAG_LEN],
            held_len: 0,
        }
    }

    /// Decrypts `input`, appending (unauthenticated) plaintext to `out`.
    /// Fails once the body passes GCM's limit.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        let total = self.held_len + input.len();
        let release = total.saturating_sub(TAG_LEN);
        if release == 0 {
            self.held[self.held_len..total].copy_from_slice(input);
            self.held_len = total;
            return Ok(());
        }
        if self.offset + release as u64 > MAX_PLAINTEXT_LEN {
            return Err(DecryptError);
        }
        // Release the first `release` bytes of held ++ input; keep the rest.
        let start = out.len();
        let from_held = release.min(self.held_len);
        out.extend_from_slice(&self.held[..from_held]);
        out.extend_from_slice(&input[..release - from_held]);
        let mut held = [0u8; TAG_LEN];
        let kept = self.held_len - from_held;
        held[..kept].copy_from_slice(&self.held[from_held..self.held_len]);
        let rest = &input[release - from_held..];
        held[kept..kept + rest.len()].copy_from_slice(rest);
        self.held = held;
        self.held_len = kept + rest.len();
        self.ghash.update(&out[start..]);
        self.cipher.apply_keystream(self.offset, &mut out[start..]);
        self.offset += release as u64;
        Ok(())
    }

    /// Checks the tag (constant time). Fails if the body was shorter than a
    /// tag or the tag does not match: then discard all output.
    pub fn finish(self) -> Result<u64, DecryptError> {
        if self.held_len != TAG_LEN {
            return Err(DecryptError);
        }
        let expected = self.ghash.tag(&self.cipher);
        if bool::from(expected.ct_eq(&self.held)) {
            Ok(self.offset)
        } else {
            Err(DecryptError)
        }
    }
}

/// GHASH over a stream of ciphertext fed in pieces of any size.
struct Sequential {
    ghash: GHash,
    partial: [u8; 16],
    partial_len: usize,
    len: u64,
}

impl Sequential {
    fn new(cipher: &ContentCipher) -> Self {
        let mut ghash = GHash::new(&cipher.h);
        ghash.update_padded(cipher.aad);
        Sequential {
            ghash,
            partial: [0; 16],
            partial_len: 0,
            len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < 16 {
                return;
            }
            self.ghash.update(&[self.partial.into()]);
            self.partial_len = 0;
        }
        let whole = data.len() / 16 * 16;
        self.ghash.update_padded(&data[..whole]);
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn tag(mut self, cipher: &ContentCipher) -> [u8; TAG_LEN] {
        if self.partial_len > 0 {
            self.ghash.update_padded(&self.partial[..self.partial_len]);
        }
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(cipher.aad.len() as u64 * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        self.ghash.update(&[lengths.into()]);
        xor(&self.ghash.finalize().into(), &cipher.tag_mask)
    }
}
