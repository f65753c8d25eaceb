//! Pure codec for the atrest object layouts.
//!
//! [`s3ec`] is the codec of the AWS S3 Encryption Client's metadata, which
//! lives in an object's user metadata or an instruction file, not a header.
//!
//! This crate knows where every byte of an atrest object goes: the common
//! 8-byte prefix, the per-version header, the IV rules and the lengths. It does
//! no I/O and no cryptography, so offline tools can parse objects with it and
//! the streaming state machines in `atrest-crypto` can build on it.
//!
//! Parsing never trusts a length from the input to size an allocation: the
//! wrapped-key length is checked against [`MAX_WRAPPED_KEY_LEN`] before any
//! bytes are copied, and only as many bytes as are present are looked at.
//!
//! ```
//! use atrest_format::{parse_header, Header, Parsed, v1};
//!
//! let header = v1::Header::new(vec![7; 96], [1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
//! let mut object = Vec::new();
//! header.encode(&mut object);
//!
//! // Too few bytes: the parser says how many more it needs.
//! assert_eq!(parse_header(&object[..5]).unwrap(), Parsed::Incomplete { needed: 3 });
//!
//! match parse_header(&object).unwrap() {
//!     Parsed::Complete(Header::V1(parsed)) => assert_eq!(parsed, header),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

pub mod inspect;
pub mod s3ec;
pub mod v1;
pub mod v2;

/// Length of the prefix shared by every version: version byte, three bytes
/// that depend on the version, and the wrapped-key length (u32 LE).
pub const PREFIX_LEN: usize = 8;

/// Largest wrapped data key accepted, in bytes.
///
/// A KMS `CiphertextBlob` for a 32-byte data key is a few hundred bytes at
/// most (moto's are 96 bytes, AWS's about 184); 8 KiB leaves ample room while
/// keeping a hostile length from steering how much a reader buffers.
pub const MAX_WRAPPED_KEY_LEN: usize = 8 * 1024;

/// Every header of every version fits in this many bytes, so a reader that
/// fetches this much from the start of an object has the whole header (and
/// all of a small object) in one read. The largest v2 header is 8 + 8 KiB
/// (wrapped key) + 67 + 8 KiB (context); v1's is 8 + 8 KiB + 8. The bound
/// leaves room for a later version's header to grow.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

const _: () = assert!(
    PREFIX_LEN + MAX_WRAPPED_KEY_LEN + v2::TAIL_FIXED_LEN + v2::MAX_CONTEXT_LEN <= MAX_HEADER_LEN
        && PREFIX_LEN + MAX_WRAPPED_KEY_LEN + v1::STORED_IV_LEN <= MAX_HEADER_LEN
);

/// A parsed object header of any known version.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Header {
    /// The seed tool's format: unauthenticated AES-256-CBC.
    V1(v1::Header),
    /// Framed AES-256-GCM with key commitment.
    V2(v2::Header),
}

impl Header {
    /// The format version byte.
    pub fn version(&self) -> u8 {
        match self {
            Header::V1(_) => v1::VERSION,
            Header::V2(_) => v2::VERSION,
        }
    }

    /// The wrapped (KMS-encrypted) data key, opaque bytes.
    pub fn wrapped_key(&self) -> &[u8] {
        match self {
            Header::V1(h) => h.wrapped_key(),
            Header::V2(h) => h.wrapped_key(),
        }
    }

    /// Encoded length of the header: the offset where the body starts.
    pub fn encoded_len(&self) -> usize {
        match self {
            Header::V1(h) => h.encoded_len(),
            Header::V2(h) => h.encoded_len(),
        }
    }

    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Header::V1(h) => h.encode(out),
            Header::V2(h) => h.encode(out),
        }
    }
}

/// The outcome of [`parse_header`] on a valid (so far) input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The whole header was present; the body starts at
    /// [`Header::encoded_len`].
    Complete(Header),
    /// The input is a valid beginning of a header but ends too early: at least
    /// `needed` more bytes are required.
    Incomplete {
        /// How many more bytes to supply at least (always > 0).
        needed: usize,
    },
}

/// Why a header is invalid. Every variant is final: more input cannot fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The version byte names no format this crate knows.
    UnknownVersion(u8),
    /// Bytes that must be zero are not.
    ReservedNotZero,
    /// The wrapped-key length is zero.
    EmptyWrappedKey,
    /// The wrapped-key length exceeds [`MAX_WRAPPED_KEY_LEN`].
    WrappedKeyTooLong(u32),
    /// The suite byte of a v2 header names no suite this crate knows.
    UnknownSuite(u8),
    /// The v2 frame size exponent is outside
    /// [`v2::MIN_FRAME_EXPONENT`]..=[`v2::MAX_FRAME_EXPONENT`].
    BadFrameExponent(u8),
    /// The v2 encryption context length exceeds [`v2::MAX_CONTEXT_LEN`].
    ContextTooLong(usize),
    /// The v2 encryption context is invalid.
    BadContext(v2::ContextError),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::UnknownVersion(v) => write!(f, "unknown format version {v}"),
            HeaderError::ReservedNotZero => f.write_str("reserved header bytes are not zero"),
            HeaderError::EmptyWrappedKey => f.write_str("wrapped data key length is zero"),
            HeaderError::WrappedKeyTooLong(len) => write!(
                f,
                "wrapped data key length {len} exceeds the limit of {MAX_WRAPPED_KEY_LEN} bytes"
            ),
            HeaderError::UnknownSuite(s) => write!(f, "unknown v2 cipher suite {s}"),
            HeaderError::BadFrameExponent(e) => write!(
                f,
                "frame size exponent {e} is outside {}..={}",
                v2::MIN_FRAME_EXPONENT,
                v2::MAX_FRAME_EXPONENT
            ),
            HeaderError::ContextTooLong(len) => write!(
                f,
                "encryption context length {len} exceeds the limit of {} bytes",
                v2::MAX_CONTEXT_LEN
            ),
            HeaderError::BadContext(e) => write!(f, "invalid encryption context: {e}"),
        }
    }
}

impl core::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            HeaderError::BadContext(e) => Some(e),
            _ => None,
        }
    }
}

/// Parses the header at the start of `input`, dispatching on the version byte.
///
/// Only the bytes of the header are examined; anything after it is ignored.
pub fn parse_header(input: &[u8]) -> Result<Parsed, HeaderError> {
    let Some(&version) = input.first() else {
        return Ok(Parsed::Incomplete { needed: PREFIX_LEN });
    };
    match version {
        v1::VERSION => v1::parse(input).map(|p| p.map(Header::V1)),
        v2::VERSION => v2::parse(input).map(|p| p.map(Header::V2)),
        other => Err(HeaderError::UnknownVersion(other)),
    }
}

/// The wrapped-key length from a complete prefix, checked against the bounds.
fn wrapped_key_len(prefix: &[u8; PREFIX_LEN]) -> Result<usize, HeaderError> {
    let len = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    match len {
        0 => Err(HeaderError::EmptyWrappedKey),
        n if n as usize > MAX_WRAPPED_KEY_LEN => Err(HeaderError::WrappedKeyTooLong(n)),
        n => Ok(n as usize),
    }
}

fn check_wrapped_key(wrapped_key: &[u8]) -> Result<(), HeaderError> {
    match wrapped_key.len() {
        0 => Err(HeaderError::EmptyWrappedKey),
        n if n > MAX_WRAPPED_KEY_LEN => Err(HeaderError::WrappedKeyTooLong(
            u32::try_from(n).unwrap_or(u32::MAX),
        )),
        _ => Ok(()),
    }
}

fn incomplete<T>(have: usize, want: usize) -> ParsedAs<T> {
    debug_assert!(want > have);
    ParsedAs::Incomplete {
        needed: want - have,
    }
}

/// [`Parsed`] for one version's header type; converted by [`ParsedAs::map`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParsedAs<T> {
    Complete(T),
    Incomplete { needed: usize },
}

impl<T> ParsedAs<T> {
    fn map(self, f: impl FnOnce(T) -> Header) -> Parsed {
        match self {
            ParsedAs::Complete(h) => Parsed::Complete(f(h)),
            ParsedAs::Incomplete { needed } => Parsed::Incomplete { needed },
        }
    }
}
