//! Format v2: framed AES-256-GCM with HKDF-derived keys and key commitment.
//!
//! ```text
//! offset 0     u8  version = 2
//! offset 1     u8  suite = 1
//! offset 2..4  2 bytes reserved, 0
//! offset 4..8  u32 LE: length L of the wrapped data key (1..=MAX_WRAPPED_KEY_LEN)
//! offset 8     L bytes: wrapped data key (KMS CiphertextBlob, opaque)
//! T = 8+L      u8  frame size exponent e (12..=24): frames of 2^e plaintext bytes
//! T+1          32 bytes: salt
//! T+33         32 bytes: key commitment
//! T+65         u16 LE: length C of the encryption context (<= MAX_CONTEXT_LEN)
//! T+67         C bytes: encryption context
//! T+67+C       body: frames of ciphertext || 16-byte tag
//! ```
//!
//! The additional authenticated data of every frame is bytes `0..4` followed
//! by bytes `T..T+67+C` ([`Header::aad`]): everything but the wrapped key,
//! which is bound through the key commitment instead so that re-wrapping the
//! data key (KMS `ReEncrypt`) only rewrites the header.
//!
//! This module also holds the pure arithmetic of the framing: lengths, frame
//! positions and the byte ranges to fetch for a plaintext range.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::keyring::Keyring;
use crate::{check_wrapped_key, incomplete, wrapped_key_len, HeaderError, ParsedAs, PREFIX_LEN};

/// The version byte of format v2.
pub const VERSION: u8 = 2;
/// Suite 1: AES-256-GCM frames, HKDF-SHA-256 key derivation, key commitment.
pub const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;
/// Length of the per-object random salt.
pub const SALT_LEN: usize = 32;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Length of the GCM tag that ends every frame.
pub const TAG_LEN: usize = 16;
/// Length of a frame nonce.
pub const NONCE_LEN: usize = 12;
/// Smallest frame size exponent (4 KiB frames).
pub const MIN_FRAME_EXPONENT: u8 = 12;
/// Largest frame size exponent (16 MiB frames).
pub const MAX_FRAME_EXPONENT: u8 = 24;
/// Frame size exponent used unless the writer picks another (64 KiB frames).
pub const DEFAULT_FRAME_EXPONENT: u8 = 16;
/// Largest encoded encryption context, in bytes.
pub const MAX_CONTEXT_LEN: usize = 8 * 1024;
/// Length of the fixed part of the header tail: exponent, salt, commitment
/// and context length.
pub const TAIL_FIXED_LEN: usize = 1 + SALT_LEN + COMMITMENT_LEN + 2;
/// Keys with this prefix are reserved for atrest itself.
pub const RESERVED_CONTEXT_PREFIX: &str = "atrest:";
/// The reserved context key naming the format, always present.
pub const FORMAT_CONTEXT_KEY: &str = "atrest:format";
/// The value of [`FORMAT_CONTEXT_KEY`] for suite 1.
pub const FORMAT_CONTEXT_VALUE: &str = "v2/AES-256-GCM/HKDF-SHA-256/commit";
/// Reserved context key marking an object whose data key is the shared one
/// from `create-data-key` (`data.key`). That key was wrapped by KMS with no
/// encryption context, so for such objects KMS gets none (see
/// [`EncryptionContext::kms_context`]); the entry is still authenticated by
/// every frame like the rest of the context.
pub const SHARED_KEY_CONTEXT_KEY: &str = "atrest:data-key";
/// The only value of [`SHARED_KEY_CONTEXT_KEY`].
pub const SHARED_KEY_CONTEXT_VALUE: &str = "shared";
/// Reserved context key naming the keyring that wrapped the data key, when
/// it is not KMS; see [`crate::keyring`]. Absent (every object written
/// before key files existed): KMS.
pub const KEYRING_CONTEXT_KEY: &str = "atrest:keyring";

/// Bytes `0..4` of every v2 header with suite 1, the start of the AAD.
const AAD_PREFIX: [u8; 4] = [VERSION, SUITE_AES256GCM_HKDF_SHA256, 0, 0];

/// Why an encryption context is invalid, either as given to
/// [`EncryptionContext::new`] or as found in a header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// The encoding is cut short, has bytes left over, or lacks the count.
    Malformed,
    /// A key or value is not valid UTF-8.
    NotUtf8,
    /// A key is empty.
    EmptyKey,
    /// Keys are not strictly ascending by bytes (includes duplicates).
    NotSorted,
    /// A key given twice (to [`EncryptionContext::new`], which sorts them).
    DuplicateKey(String),
    /// A key or value is longer than 65535 bytes, or there are too many pairs.
    FieldTooLong,
    /// The encoded context exceeds [`MAX_CONTEXT_LEN`].
    TooLong(usize),
    /// A user-supplied key starts with [`RESERVED_CONTEXT_PREFIX`], or a
    /// parsed context holds a reserved key this version does not define.
    ReservedKey(String),
    /// The reserved [`FORMAT_CONTEXT_KEY`] entry is missing or has another
    /// value.
    FormatEntry,
    /// [`SHARED_KEY_CONTEXT_KEY`] and [`KEYRING_CONTEXT_KEY`] together: a
    /// shared `data.key` is always wrapped by KMS.
    SharedKeyNotKms,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::Malformed => f.write_str("encryption context encoding is malformed"),
            ContextError::NotUtf8 => f.write_str("encryption context is not valid UTF-8"),
            ContextError::EmptyKey => f.write_str("encryption context has an empty key"),
            ContextError::NotSorted => {
                f.write_str("encryption context keys are duplicated or not in ascending order")
            }
            ContextError::DuplicateKey(k) => {
                write!(f, "encryption context key `{}` is given twice", k.escape_debug())
            }
            ContextError::FieldTooLong => {
                f.write_str("encryption context key, value or pair count exceeds 65535")
            }
            ContextError::TooLong(len) => write!(
                f,
                "encryption context encodes to {len} bytes, over the limit of {MAX_CONTEXT_LEN}"
            ),
            ContextError::ReservedKey(key) => write!(
                f,
                "encryption context key {key:?} uses the reserved prefix {RESERVED_CONTEXT_PREFIX:?}"
            ),
            ContextError::FormatEntry => write!(
                f,
                "encryption context lacks {FORMAT_CONTEXT_KEY}={FORMAT_CONTEXT_VALUE}"
            ),
            ContextError::SharedKeyNotKms => write!(
                f,
                "encryption context has both {SHARED_KEY_CONTEXT_KEY} and {KEYRING_CONTEXT_KEY} \
                 (a shared data key is wrapped by KMS)"
            ),
        }
    }
}

impl core::error::Error for ContextError {}

/// An encryption context: string pairs, sorted by key, always including the
/// reserved entry [`FORMAT_CONTEXT_KEY`] = [`FORMAT_CONTEXT_VALUE`].
///
/// The same pairs go to KMS as its `EncryptionContext`, which binds them to
/// the wrapped key; in the object they are also authenticated by every frame.
///
/// ```
/// use atrest_format::v2::EncryptionContext;
///
/// let ctx = EncryptionContext::new([("bucket", "b"), ("app", "x")]).unwrap();
/// let keys: Vec<&str> = ctx.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["app", "atrest:format", "bucket"]);
/// assert!(EncryptionContext::new([("atrest:mine", "no")]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionContext {
    pairs: Vec<(String, String)>,
}

impl EncryptionContext {
    /// Builds a context from user pairs (in any order) plus the reserved
    /// format entry. Rejects empty or duplicate keys, keys starting with
    /// [`RESERVED_CONTEXT_PREFIX`], and contexts that encode to more than
    /// [`MAX_CONTEXT_LEN`] bytes.
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, ContextError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut all = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if k.is_empty() {
                return Err(ContextError::EmptyKey);
            }
            if k.starts_with(RESERVED_CONTEXT_PREFIX) {
                return Err(ContextError::ReservedKey(k));
            }
            all.push((k, v));
        }
        all.push((FORMAT_CONTEXT_KEY.into(), FORMAT_CONTEXT_VALUE.into()));
        all.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if let Some(w) = all.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ContextError::DuplicateKey(w[0].0.clone()));
        }
        let ctx = EncryptionContext { pairs: all };
        let len = ctx.checked_encoded_len()?;
        if len > MAX_CONTEXT_LEN {
            return Err(ContextError::TooLong(len));
        }
        Ok(ctx)
    }

    /// Marks the context as belonging to an object encrypted under the shared
    /// `data.key` (adds [`SHARED_KEY_CONTEXT_KEY`]).
    pub fn with_shared_data_key(self) -> Result<Self, ContextError> {
        if self.is_shared_data_key() {
            return Ok(self);
        }
        if self.keyring() != Keyring::Kms {
            return Err(ContextError::SharedKeyNotKms);
        }
        self.with_reserved(SHARED_KEY_CONTEXT_KEY, SHARED_KEY_CONTEXT_VALUE)
    }

    /// Records that the data key is wrapped by `keyring` (adds
    /// [`KEYRING_CONTEXT_KEY`] unless it is KMS, which needs no entry).
    /// Fails for a context marked as using the shared `data.key`, which KMS
    /// wraps, or one that records another keyring.
    pub fn with_keyring(self, keyring: Keyring) -> Result<Self, ContextError> {
        let Some(value) = keyring.context_value() else {
            return match self.keyring() {
                Keyring::Kms => Ok(self),
                _ => Err(ContextError::ReservedKey(KEYRING_CONTEXT_KEY.into())),
            };
        };
        match self.get(KEYRING_CONTEXT_KEY) {
            Some(v) if v == value => return Ok(self),
            Some(_) => return Err(ContextError::ReservedKey(KEYRING_CONTEXT_KEY.into())),
            None => {}
        }
        if self.is_shared_data_key() {
            return Err(ContextError::SharedKeyNotKms);
        }
        self.with_reserved(KEYRING_CONTEXT_KEY, value)
    }

    /// Which keyring wrapped the data key: [`KEYRING_CONTEXT_KEY`]'s value,
    /// or KMS when it is absent.
    pub fn keyring(&self) -> Keyring {
        match self.get(KEYRING_CONTEXT_KEY) {
            Some(value) => Keyring::from_context_value(value).unwrap_or(Keyring::Kms),
            None => Keyring::Kms,
        }
    }

    /// Adds a reserved pair, keeping the pairs sorted and within bounds.
    fn with_reserved(mut self, key: &str, value: &str) -> Result<Self, ContextError> {
        self.pairs.push((key.into(), value.into()));
        self.pairs
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let len = self.checked_encoded_len()?;
        if len > MAX_CONTEXT_LEN {
            return Err(ContextError::TooLong(len));
        }
        Ok(self)
    }

    /// A context from all its pairs, reserved entries included (as
    /// [`to_pairs`](Self::to_pairs) gives them), checked by the rules a
    /// parsed header's context obeys: for a key source that is handed the
    /// pairs and must rebuild the encoding.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ContextError> {
        let ctx = EncryptionContext {
            pairs: pairs.to_vec(),
        };
        let len = ctx.checked_encoded_len()?;
        if len > MAX_CONTEXT_LEN {
            return Err(ContextError::TooLong(len));
        }
        Self::parse(&ctx.to_bytes())
    }

    /// The encoding (count, then length-prefixed keys and values): the
    /// context bytes of the header, and what a key-file keyring
    /// authenticates when it wraps the data key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }

    /// Whether the object's data key is the shared `data.key`.
    pub fn is_shared_data_key(&self) -> bool {
        self.get(SHARED_KEY_CONTEXT_KEY) == Some(SHARED_KEY_CONTEXT_VALUE)
    }

    /// The encryption context to give KMS for this object's wrapped key: all
    /// pairs, or none for a shared `data.key` (wrapped without a context).
    pub fn kms_context(&self) -> Vec<(String, String)> {
        if self.is_shared_data_key() {
            Vec::new()
        } else {
            self.to_pairs()
        }
    }

    /// The pairs supplied by the user (no reserved `atrest:` entries).
    pub fn user_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter()
            .filter(|(k, _)| !k.starts_with(RESERVED_CONTEXT_PREFIX))
    }

    /// The pairs, sorted by key, reserved entry included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The pairs as owned strings, e.g. for a KMS `EncryptionContext` map.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.pairs.clone()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Length of the encoding (count, then length-prefixed keys and values).
    pub fn encoded_len(&self) -> usize {
        2 + self
            .pairs
            .iter()
            .map(|(k, v)| 4 + k.len() + v.len())
            .sum::<usize>()
    }

    fn checked_encoded_len(&self) -> Result<usize, ContextError> {
        let too_long = |n: usize| n > usize::from(u16::MAX);
        if too_long(self.pairs.len())
            || self
                .pairs
                .iter()
                .any(|(k, v)| too_long(k.len()) || too_long(v.len()))
        {
            return Err(ContextError::FieldTooLong);
        }
        Ok(self.encoded_len())
    }

    /// Appends the encoding to `out`. Lengths were checked at construction.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.pairs.len() as u16).to_le_bytes());
        for (k, v) in &self.pairs {
            out.extend_from_slice(&(k.len() as u16).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        }
    }

    /// Parses a complete context encoding of `input.len()` (<= 8 KiB) bytes.
    fn parse(input: &[u8]) -> Result<Self, ContextError> {
        let mut rest = input;
        let count = take_u16(&mut rest)?;
        // No capacity from `count`: it is unchecked input. The loop is bounded
        // by `input.len()` because every pair consumes at least 4 bytes.
        let mut pairs: Vec<(String, String)> = Vec::new();
        for _ in 0..count {
            let key = take_str(&mut rest)?;
            let value = take_str(&mut rest)?;
            if key.is_empty() {
                return Err(ContextError::EmptyKey);
            }
            if let Some((prev, _)) = pairs.last() {
                if prev.as_bytes() >= key.as_bytes() {
                    return Err(ContextError::NotSorted);
                }
            }
            if key.starts_with(RESERVED_CONTEXT_PREFIX) {
                match key {
                    FORMAT_CONTEXT_KEY if value != FORMAT_CONTEXT_VALUE => {
                        return Err(ContextError::FormatEntry)
                    }
                    SHARED_KEY_CONTEXT_KEY if value != SHARED_KEY_CONTEXT_VALUE => {
                        return Err(ContextError::ReservedKey(key.into()))
                    }
                    KEYRING_CONTEXT_KEY if Keyring::from_context_value(value).is_none() => {
                        return Err(ContextError::ReservedKey(key.into()))
                    }
                    FORMAT_CONTEXT_KEY | SHARED_KEY_CONTEXT_KEY | KEYRING_CONTEXT_KEY => {}
                    _ => return Err(ContextError::ReservedKey(key.into())),
                }
            }
            pairs.push((key.into(), value.into()));
        }
        if !rest.is_empty() {
            return Err(ContextError::Malformed);
        }
        if !pairs.iter().any(|(k, _)| k == FORMAT_CONTEXT_KEY) {
            return Err(ContextError::FormatEntry);
        }
        let ctx = EncryptionContext { pairs };
        if ctx.is_shared_data_key() && ctx.get(KEYRING_CONTEXT_KEY).is_some() {
            return Err(ContextError::SharedKeyNotKms);
        }
        Ok(ctx)
    }
}

fn take_u16(rest: &mut &[u8]) -> Result<u16, ContextError> {
    let (bytes, tail) = rest
        .split_first_chunk::<2>()
        .ok_or(ContextError::Malformed)?;
    *rest = tail;
    Ok(u16::from_le_bytes(*bytes))
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Result<&'a str, ContextError> {
    let len = usize::from(take_u16(rest)?);
    if rest.len() < len {
        return Err(ContextError::Malformed);
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    core::str::from_utf8(bytes).map_err(|_| ContextError::NotUtf8)
}

/// Checks a frame size exponent: `MIN_FRAME_EXPONENT..=MAX_FRAME_EXPONENT`.
pub fn check_frame_exponent(exponent: u8) -> Result<(), HeaderError> {
    if (MIN_FRAME_EXPONENT..=MAX_FRAME_EXPONENT).contains(&exponent) {
        Ok(())
    } else {
        Err(HeaderError::BadFrameExponent(exponent))
    }
}

/// A v2 header (suite 1). Every value of this type encodes to a header that
/// [`crate::parse_header`] accepts, and a parsed header keeps the exact bytes
/// it was read from for its [`aad`](Header::aad).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    wrapped_key: Vec<u8>,
    /// The AAD: bytes `0..4` then the whole tail (`T..T+67+C`). Fields below
    /// are decoded from it; it is what authentication runs over.
    aad: Vec<u8>,
    context: EncryptionContext,
}

impl Header {
    /// Builds a header. The salt and commitment come from `atrest-crypto`.
    pub fn new(
        wrapped_key: Vec<u8>,
        frame_exponent: u8,
        salt: [u8; SALT_LEN],
        commitment: [u8; COMMITMENT_LEN],
        context: EncryptionContext,
    ) -> Result<Self, HeaderError> {
        check_wrapped_key(&wrapped_key)?;
        check_frame_exponent(frame_exponent)?;
        let mut aad = Vec::with_capacity(AAD_PREFIX.len() + TAIL_FIXED_LEN + context.encoded_len());
        aad.extend_from_slice(&AAD_PREFIX);
        aad.push(frame_exponent);
        aad.extend_from_slice(&salt);
        aad.extend_from_slice(&commitment);
        // EncryptionContext guarantees the length is <= MAX_CONTEXT_LEN.
        aad.extend_from_slice(&(context.encoded_len() as u16).to_le_bytes());
        context.encode(&mut aad);
        Ok(Header {
            wrapped_key,
            aad,
            context,
        })
    }

    /// The same header with another wrapped key, e.g. after KMS `ReEncrypt`.
    /// The frames stay valid: the wrapped key is not part of the AAD.
    pub fn with_wrapped_key(self, wrapped_key: Vec<u8>) -> Result<Self, HeaderError> {
        check_wrapped_key(&wrapped_key)?;
        Ok(Header {
            wrapped_key,
            ..self
        })
    }

    /// The suite byte (always [`SUITE_AES256GCM_HKDF_SHA256`] for now).
    pub fn suite(&self) -> u8 {
        self.aad[1]
    }

    /// The wrapped (KMS-encrypted) data key.
    pub fn wrapped_key(&self) -> &[u8] {
        &self.wrapped_key
    }

    /// The frame size exponent `e`.
    pub fn frame_exponent(&self) -> u8 {
        self.aad[4]
    }

    /// Plaintext bytes per frame, `2^e`.
    pub fn frame_size(&self) -> u64 {
        1 << self.frame_exponent()
    }

    /// The per-object salt of the key derivation.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        self.aad[5..5 + SALT_LEN].try_into().expect("fixed layout")
    }

    /// The key commitment.
    pub fn commitment(&self) -> &[u8; COMMITMENT_LEN] {
        self.aad[5 + SALT_LEN..5 + SALT_LEN + COMMITMENT_LEN]
            .try_into()
            .expect("fixed layout")
    }

    /// The encryption context, to pass to KMS when unwrapping.
    pub fn context(&self) -> &EncryptionContext {
        &self.context
    }

    /// The additional authenticated data of every frame: header bytes `0..4`
    /// followed by the header tail (bytes `8+L..`), as read.
    pub fn aad(&self) -> &[u8] {
        &self.aad
    }

    /// Encoded length: the offset of the first body byte.
    pub fn encoded_len(&self) -> usize {
        PREFIX_LEN + self.wrapped_key.len() + self.aad.len() - AAD_PREFIX.len()
    }

    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.aad[..AAD_PREFIX.len()]);
        // Bounded by MAX_WRAPPED_KEY_LEN at construction, so it fits a u32.
        out.extend_from_slice(&(self.wrapped_key.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.wrapped_key);
        out.extend_from_slice(&self.aad[AAD_PREFIX.len()..]);
    }
}

/// Parses a v2 header; `input[0]` is known to be [`VERSION`].
pub(crate) fn parse(input: &[u8]) -> Result<ParsedAs<Header>, HeaderError> {
    // Reject garbage as soon as the bytes that show it are present.
    if let Some(&suite) = input.get(1) {
        if suite != SUITE_AES256GCM_HKDF_SHA256 {
            return Err(HeaderError::UnknownSuite(suite));
        }
    }
    let reserved = input.get(2..input.len().min(4)).unwrap_or_default();
    if reserved.iter().any(|&b| b != 0) {
        return Err(HeaderError::ReservedNotZero);
    }
    let Some(prefix) = input.first_chunk::<PREFIX_LEN>() else {
        return Ok(incomplete(input.len(), PREFIX_LEN));
    };
    let tail_start = PREFIX_LEN + wrapped_key_len(prefix)?;
    if let Some(&exponent) = input.get(tail_start) {
        check_frame_exponent(exponent)?;
    }
    let fixed_end = tail_start + TAIL_FIXED_LEN;
    let Some(fixed) = input.get(..fixed_end) else {
        return Ok(incomplete(input.len(), fixed_end));
    };
    let context_len = usize::from(u16::from_le_bytes([
        fixed[fixed_end - 2],
        fixed[fixed_end - 1],
    ]));
    if context_len > MAX_CONTEXT_LEN {
        return Err(HeaderError::ContextTooLong(context_len));
    }
    let total = fixed_end + context_len;
    if input.len() < total {
        return Ok(incomplete(input.len(), total));
    }
    let context =
        EncryptionContext::parse(&input[fixed_end..total]).map_err(HeaderError::BadContext)?;
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + total - tail_start);
    aad.extend_from_slice(&input[..AAD_PREFIX.len()]);
    aad.extend_from_slice(&input[tail_start..total]);
    Ok(ParsedAs::Complete(Header {
        wrapped_key: input[PREFIX_LEN..tail_start].to_vec(),
        aad,
        context,
    }))
}

/// The nonce of frame `index`: the index as 11 big-endian bytes, then 0x01
/// for the final frame or 0x00 for any other.
///
/// Frame keys are unique per object (random salt), so a counter is a safe
/// nonce; the flag makes a truncated object's last frame fail to open.
///
/// ```
/// let n = atrest_format::v2::frame_nonce(0x0102, true);
/// assert_eq!(n, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
/// ```
pub fn frame_nonce(index: u64, is_final: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    // A u64 fills the low 8 of the 11 counter bytes; the top 3 stay zero.
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(is_final);
    nonce
}

/// Length of a body frame holding `frame_size` plaintext bytes: `F + 16`.
pub fn sealed_frame_len(frame_size: u64) -> u64 {
    frame_size + TAG_LEN as u64
}

/// The plaintext length of a body of `body_len` bytes, or `None` if no valid
/// body has that length.
///
/// Every frame but the last holds exactly `frame_size` bytes; the last holds
/// `1..=frame_size`, or 0 when the whole plaintext is empty.
///
/// # Panics
///
/// If `frame_size` is 0.
pub fn plaintext_len(body_len: u64, frame_size: u64) -> Option<u64> {
    let sealed = sealed_frame_len(frame_size);
    let (n, r) = (body_len / sealed, body_len % sealed);
    let tag = TAG_LEN as u64;
    if r == 0 {
        // The last full frame is the final one; an empty body is no object.
        (n >= 1).then(|| n * frame_size)
    } else if r > tag || (r == tag && n == 0) {
        Some(n * frame_size + (r - tag))
    } else {
        // A partial tag, or an empty final frame after full ones.
        None
    }
}

/// The body length for a plaintext of `plaintext_len` bytes, or `None` if it
/// does not fit a `u64`.
///
/// # Panics
///
/// If `frame_size` is 0.
pub fn body_len(plaintext_len: u64, frame_size: u64) -> Option<u64> {
    let frames = frame_count(plaintext_len, frame_size);
    plaintext_len.checked_add(frames.checked_mul(TAG_LEN as u64)?)
}

/// Number of frames for a plaintext of `plaintext_len` bytes (at least 1).
///
/// # Panics
///
/// If `frame_size` is 0.
pub fn frame_count(plaintext_len: u64, frame_size: u64) -> u64 {
    plaintext_len.div_ceil(frame_size).max(1)
}

/// Offset in the body of frame `index`: `index * (F + 16)`, or `None` on
/// overflow.
pub fn frame_body_offset(index: u64, frame_size: u64) -> Option<u64> {
    index.checked_mul(sealed_frame_len(frame_size))
}

/// The frame holding plaintext byte `offset`.
///
/// # Panics
///
/// If `frame_size` is 0.
pub fn frame_index(offset: u64, frame_size: u64) -> u64 {
    offset / frame_size
}

/// Plaintext bytes in frame `index` of a `plaintext_len`-byte plaintext, or
/// `None` if there is no such frame.
///
/// # Panics
///
/// If `frame_size` is 0.
pub fn frame_plaintext_len(index: u64, plaintext_len: u64, frame_size: u64) -> Option<u64> {
    let count = frame_count(plaintext_len, frame_size);
    if index >= count {
        None
    } else if index + 1 < count {
        Some(frame_size)
    } else {
        Some(plaintext_len - index * frame_size)
    }
}

/// The frames to fetch and decrypt for a plaintext byte range; see
/// [`frames_for_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRange {
    /// Index of the first frame.
    pub first_frame: u64,
    /// Index of the last frame (inclusive).
    pub last_frame: u64,
    /// Whether `last_frame` is the final frame of the object, so must be
    /// opened with the final flag.
    pub last_is_final: bool,
    /// First body byte to fetch (add the header length for an object offset).
    pub body_start: u64,
    /// Last body byte to fetch, inclusive (as in an HTTP `Range` header).
    pub body_end_inclusive: u64,
    /// Bytes to skip at the start of the decrypted frames.
    pub skip: u64,
    /// Bytes to keep after skipping: `end - start + 1`.
    pub len: u64,
}

/// Which frames hold plaintext bytes `start..=end_inclusive` of a
/// `plaintext_len`-byte plaintext, and which body bytes they occupy.
/// `None` if the range is empty or reaches past the plaintext.
///
/// `plaintext_len` usually comes from [`plaintext_len`] of the stored
/// object's size; frames decrypted this way are authentic, but only a
/// successfully opened final frame proves the length itself.
///
/// ```
/// use atrest_format::v2::{frames_for_range, FrameRange};
///
/// // 4 KiB frames, 10000-byte plaintext: frames 0, 1 (full) and 2 (final).
/// let r = frames_for_range(4000, 4200, 4096, 10_000).unwrap();
/// assert_eq!((r.first_frame, r.last_frame, r.last_is_final), (0, 1, false));
/// assert_eq!((r.body_start, r.body_end_inclusive), (0, 2 * 4112 - 1));
/// assert_eq!((r.skip, r.len), (4000, 201));
/// ```
///
/// # Panics
///
/// If `frame_size` is 0.
pub fn frames_for_range(
    start: u64,
    end_inclusive: u64,
    frame_size: u64,
    plaintext_len: u64,
) -> Option<FrameRange> {
    if start > end_inclusive || end_inclusive >= plaintext_len {
        return None;
    }
    let first_frame = frame_index(start, frame_size);
    let last_frame = frame_index(end_inclusive, frame_size);
    let last_is_final = last_frame + 1 == frame_count(plaintext_len, frame_size);
    let body_start = frame_body_offset(first_frame, frame_size)?;
    let last_len = frame_plaintext_len(last_frame, plaintext_len, frame_size)?;
    let body_end_inclusive =
        frame_body_offset(last_frame, frame_size)? + last_len + TAG_LEN as u64 - 1;
    Some(FrameRange {
        first_frame,
        last_frame,
        last_is_final,
        body_start,
        body_end_inclusive,
        skip: start - first_frame * frame_size,
        len: end_inclusive - start + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 4096;
    const S: u64 = F + 16;

    #[test]
    fn length_formula_edges() {
        assert_eq!(plaintext_len(0, F), None);
        assert_eq!(plaintext_len(15, F), None);
        assert_eq!(plaintext_len(16, F), Some(0));
        assert_eq!(plaintext_len(17, F), Some(1));
        assert_eq!(plaintext_len(S, F), Some(F));
        assert_eq!(plaintext_len(S + 16, F), None, "empty final frame");
        assert_eq!(plaintext_len(S + 15, F), None);
        assert_eq!(plaintext_len(S + 17, F), Some(F + 1));
        assert_eq!(plaintext_len(2 * S, F), Some(2 * F));
        for p in [0, 1, F - 1, F, F + 1, 2 * F, 3 * F + 5] {
            let b = body_len(p, F).unwrap();
            assert_eq!(plaintext_len(b, F), Some(p), "p = {p}");
        }
        assert_eq!(body_len(u64::MAX, F), None);
    }

    #[test]
    fn frame_helpers() {
        assert_eq!(frame_count(0, F), 1);
        assert_eq!(frame_count(F, F), 1);
        assert_eq!(frame_count(F + 1, F), 2);
        assert_eq!(frame_plaintext_len(0, 0, F), Some(0));
        assert_eq!(frame_plaintext_len(1, F + 1, F), Some(1));
        assert_eq!(frame_plaintext_len(2, F + 1, F), None);
        assert_eq!(frame_body_offset(3, F), Some(3 * S));
        assert_eq!(frame_index(F, F), 1);
    }

    #[test]
    fn ranges() {
        assert_eq!(frames_for_range(0, 0, F, 0), None);
        assert_eq!(frames_for_range(5, 4, F, 100), None);
        assert_eq!(frames_for_range(0, 100, F, 100), None);
        let r = frames_for_range(0, 99, F, 100).unwrap();
        assert_eq!(
            r,
            FrameRange {
                first_frame: 0,
                last_frame: 0,
                last_is_final: true,
                body_start: 0,
                body_end_inclusive: 115,
                skip: 0,
                len: 100
            }
        );
        let r = frames_for_range(F, F, F, 3 * F).unwrap();
        assert_eq!(
            (r.first_frame, r.last_frame, r.last_is_final),
            (1, 1, false)
        );
        assert_eq!(
            (r.body_start, r.body_end_inclusive, r.skip),
            (S, 2 * S - 1, 0)
        );
    }
}
