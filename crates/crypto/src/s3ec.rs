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
//! H) and compares the tag in constant time. AES-CTR and the bulk of GHASH
//! are aws-lc-rs's (the same assembly as its AES-GCM; see
//! [`ContentCipher::hash_run`] for how a run's hash comes out of it); the
//! few field multiplications that combine runs are RustCrypto's `ghash` (a
//! multiplication `a * b` is one GHASH block `a` under key `b`).
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

use atrest_format::s3ec::{
    Content, COMMITMENT_LEN, GCM_IV_LEN, MAX_PLAINTEXT_LEN, MESSAGE_ID_LEN, SUITE_V3,
    TAG_LEN_BYTES, V3_AAD, V3_IV,
};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey, AES_256};
use aws_lc_rs::iv::FixedLength;
use ghash::universal_hash::{KeyInit, UniversalHash};
use ghash::GHash;
use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{DataKey, DecryptError};

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
/// The expanded keys are aws-lc's (zeroized when freed); H, its inverse
/// and the masks are zeroized on drop.
pub struct ContentCipher {
    /// AES-CTR under the content key: the keystream.
    ctr: DecryptingKey,
    /// AES-GCM under the content key, used only to hash runs (see
    /// [`hash_run`](Self::hash_run)); it seals nothing.
    gcm: LessSafeKey,
    iv: [u8; GCM_IV_LEN],
    aad: &'static [u8],
    h: Zeroizing<Block>,
    /// H⁻¹, to undo the multiplication that ends a GCM tag.
    h_inv: Zeroizing<Block>,
    /// E(K, IV ‖ 1): masks the object's tag.
    tag_mask: Zeroizing<Block>,
    /// E(K, [`HASH_NONCE`] ‖ 1): masks the tags of [`hash_run`](Self::hash_run).
    hash_mask: Zeroizing<Block>,
}

/// The nonce of the GCM computations that hash runs. Any value does: they
/// encrypt nothing and their tags never leave [`ContentCipher`].
const HASH_NONCE: [u8; 12] = [0; 12];

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
        let ctr_key = UnboundCipherKey::new(&AES_256, key).expect("a 32-byte AES-256 key");
        let ctr = DecryptingKey::ctr(ctr_key).expect("AES-256 has a CTR mode");
        let gcm_key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key");
        let gcm = LessSafeKey::new(gcm_key);
        // E(K, block): the CTR keystream of one block whose counter is it.
        let encrypt_block = |block: [u8; 16]| {
            let mut out = Zeroizing::new([0u8; 16]);
            keystream(&ctr, block, &mut out[..]);
            out
        };
        let counter_one = |nonce: &[u8; 12]| {
            let mut j0 = [0u8; 16];
            j0[..12].copy_from_slice(nonce);
            j0[15] = 1;
            j0
        };
        let h = encrypt_block([0; 16]);
        let h_inv = Zeroizing::new(inverse(&h));
        let tag_mask = encrypt_block(counter_one(&iv));
        let hash_mask = encrypt_block(counter_one(&HASH_NONCE));
        ContentCipher {
            ctr,
            gcm,
            iv,
            aad,
            h,
            h_inv,
            tag_mask,
            hash_mask,
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
        let mut block = offset / 16;
        let mut buf = buf;
        let skip = (offset % 16) as usize;
        if skip != 0 {
            // A run that starts inside a block: that block's keystream
            // through a scratch block, then block-aligned from the next.
            let n = (16 - skip).min(buf.len());
            let mut scratch = Zeroizing::new([0u8; 16]);
            scratch[skip..skip + n].copy_from_slice(&buf[..n]);
            keystream(&self.ctr, self.counter(block), &mut scratch[..]);
            buf[..n].copy_from_slice(&scratch[skip..skip + n]);
            buf = &mut buf[n..];
            block += 1;
        }
        if !buf.is_empty() {
            keystream(&self.ctr, self.counter(block), buf);
        }
    }

    /// The counter block of body block `block`: the IV and `2 + block`,
    /// 32-bit big-endian. Below [`MAX_PLAINTEXT_LEN`] it never wraps, so
    /// aws-lc's CTR (which carries into the IV) counts exactly as GCM's.
    fn counter(&self, block: u64) -> [u8; 16] {
        let mut counter = [0u8; 16];
        counter[..GCM_IV_LEN].copy_from_slice(&self.iv);
        let n = u32::try_from(block + 2).expect("below MAX_PLAINTEXT_LEN");
        counter[12..].copy_from_slice(&n.to_be_bytes());
        counter
    }

    /// GHASH of a run of ciphertext from a zero state (the last block
    /// zero-padded).
    ///
    /// aws-lc-rs has no GHASH of its own, but its AES-GCM over the run as
    /// associated data, with nothing to encrypt, computes
    /// `tag = E(K, N ‖ 1) ⊕ (Y ⊕ L)·H`, where `Y` is the run's hash and `L`
    /// the length block (the run's length in bits, then zero). So
    /// `Y = (tag ⊕ E(K, N ‖ 1))·H⁻¹ ⊕ L`: one GCM call and one
    /// multiplication. Its GHASH is aggregated, many blocks per reduction;
    /// `ghash` 0.5 reduces every block, and took 0.7 of the 1.1 CPU-seconds
    /// a 1 GiB download spent in the client (perf, on this project's bench
    /// machine).
    pub fn hash_run(&self, ciphertext: &[u8]) -> RunHash {
        let tag = self
            .gcm
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(HASH_NONCE),
                Aad::from(ciphertext),
                &mut [],
            )
            .expect("GCM takes associated data of any length below 2^61 bytes");
        let tag: &Block = tag.as_ref().try_into().expect("a 16-byte tag");
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(ciphertext.len() as u64 * 8).to_be_bytes());
        let hash = xor(&mul(&xor(tag, &self.hash_mask), &self.h_inv), &lengths);
        RunHash {
            len: ciphertext.len() as u64,
            hash,
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
        let mut acc = self.hash_run(self.aad).hash;
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
        let s = mul(&xor(&acc, &lengths), &self.h);
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
        let mut base: Block = *self.h;
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

/// XORs into `buf` the CTR keystream from `counter` on.
fn keystream(ctr: &DecryptingKey, counter: [u8; 16], buf: &mut [u8]) {
    ctr.decrypt(buf, DecryptionContext::Iv128(FixedLength::from(counter)))
        .expect("CTR takes any length");
}

/// `x⁻¹ = x^(2^128 - 2)` in GCM's field (`x` not zero: H never is but with
/// probability 2^-128), as the product of `x^(2^i)` for `i` in 1..128.
fn inverse(x: &Block) -> Block {
    let mut square = *x;
    let mut product: Option<Block> = None;
    for _ in 1..128 {
        square = mul(&square, &square);
        product = Some(match product {
            Some(p) => mul(&p, &square),
            None => square,
        });
    }
    product.expect("127 factors")
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
        self.ghash.update(&self.cipher, &out[start..]);
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
        self.ghash.update(&self.cipher, &out[start..]);
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

/// GHASH over a stream of ciphertext fed in pieces of any size: whole
/// blocks are hashed as runs ([`ContentCipher::hash_run`]) and appended to
/// what came before (shifted by a power of H); a partial block waits for
/// the next piece.
struct Sequential {
    /// The hash of the AAD and every whole block so far.
    acc: Block,
    partial: [u8; 16],
    partial_len: usize,
    len: u64,
    /// The last power of H used, by its exponent: pieces are mostly of one
    /// size.
    power: Option<(u64, Block)>,
}

impl Sequential {
    fn new(cipher: &ContentCipher) -> Self {
        Sequential {
            acc: cipher.hash_run(cipher.aad).hash,
            partial: [0; 16],
            partial_len: 0,
            len: 0,
            power: None,
        }
    }

    fn update(&mut self, cipher: &ContentCipher, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < 16 {
                return;
            }
            self.acc = mul(&xor(&self.acc, &self.partial), &cipher.h);
            self.partial_len = 0;
        }
        let whole = data.len() / 16 * 16;
        if whole > 0 {
            let blocks = (whole / 16) as u64;
            let h_m = match self.power {
                Some((m, p)) if m == blocks => p,
                _ => {
                    let p = cipher.h_power(blocks);
                    self.power = Some((blocks, p));
                    p
                }
            };
            let run = cipher.hash_run(&data[..whole]);
            self.acc = xor(&mul(&self.acc, &h_m), &run.hash);
        }
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn tag(mut self, cipher: &ContentCipher) -> [u8; TAG_LEN] {
        if self.partial_len > 0 {
            self.partial[self.partial_len..].fill(0);
            self.acc = mul(&xor(&self.acc, &self.partial), &cipher.h);
        }
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(cipher.aad.len() as u64 * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        let s = mul(&xor(&self.acc, &lengths), &cipher.h);
        xor(&s, &cipher.tag_mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> ContentCipher {
        ContentCipher::from_parts(&[7; 32], [9; 12], &[])
    }

    #[test]
    fn the_inverse_of_h_times_h_is_one() {
        let c = cipher();
        // GCM's field is bit-reflected: 1 is the block 0x80 00 .. 00.
        let mut one = [0u8; 16];
        one[0] = 0x80;
        assert_eq!(mul(&c.h, &c.h_inv), one);
        assert_ne!(*c.h_inv, one);
    }

    #[test]
    fn runs_hashed_through_gcm_equal_ghash_block_by_block() {
        let c = cipher();
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in [0, 1, 15, 16, 17, 255, 4096, 65_537, 70_000] {
            let mut g = GHash::new(&(*c.h).into());
            g.update_padded(&data[..len]);
            let expected: Block = g.finalize().into();
            let run = c.hash_run(&data[..len]);
            assert_eq!((run.len, run.hash), (len as u64, expected), "{len} bytes");
        }
    }
}
