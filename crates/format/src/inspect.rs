//! What an object's first bytes and its total length say about it, without
//! a key: version, header fields, and the plaintext length.
//!
//! This is the core of `atrest inspect`: the CLI fetches the first bytes of
//! an object with a ranged GET (the response also gives the object length)
//! and calls [`inspect`], fetching more bytes while it answers
//! [`Inspected::Incomplete`].
//!
//! Nothing here is authenticated: the header fields are what the object
//! claims, and a v2 plaintext length is proved only when the final frame
//! opens. A v1 plaintext length is known only to 16 values (the padding is
//! 1..=16 bytes and only decryption shows which).
//!
//! ```
//! use atrest_format::inspect::{inspect, Inspected, PlaintextLen};
//! use atrest_format::v1;
//!
//! let header = v1::Header::new(vec![7; 96], [1; 8]).unwrap();
//! let mut object = Vec::new();
//! header.encode(&mut object);
//! let object_len = object.len() as u64 + 48; // three ciphertext blocks
//!
//! // The first 8 bytes are not enough: the answer says how many more.
//! assert_eq!(inspect(&object[..8], object_len), Ok(Inspected::Incomplete { needed: 104 }));
//!
//! let Ok(Inspected::Complete(info)) = inspect(&object, object_len) else { panic!() };
//! assert_eq!((info.version(), info.wrapped_key_len(), info.header_len()), (1, 96, 112));
//! assert_eq!(info.body_len, 48);
//! assert_eq!(info.plaintext_len, PlaintextLen::Between { min: 32, max: 47 });
//! ```

use core::fmt;

use crate::v2::EncryptionContext;
use crate::{parse_header, v1, v2, Header, HeaderError, Parsed};

/// The outcome of [`inspect`] on a valid (so far) input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inspected {
    /// The whole header was in the prefix.
    Complete(Inspection),
    /// The prefix is a valid beginning of a header that the object has room
    /// to complete: supply at least `needed` more bytes of the object.
    Incomplete {
        /// How many more bytes to supply at least (always > 0, and never
        /// past the end of the object).
        needed: usize,
    },
}

/// What the header and the object length tell about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The parsed header (wrapped key, IV or salt and commitment, context).
    pub header: Header,
    /// Length of the whole object, as given to [`inspect`].
    pub object_len: u64,
    /// Length of the body: the object after the header.
    pub body_len: u64,
    /// The plaintext length the body length implies.
    pub plaintext_len: PlaintextLen,
}

impl Inspection {
    /// The format version byte.
    pub fn version(&self) -> u8 {
        self.header.version()
    }

    /// The v2 suite byte; `None` for v1.
    pub fn suite(&self) -> Option<u8> {
        match &self.header {
            Header::V2(h) => Some(h.suite()),
            _ => None,
        }
    }

    /// The v2 frame size in plaintext bytes; `None` for v1.
    pub fn frame_size(&self) -> Option<u64> {
        match &self.header {
            Header::V2(h) => Some(h.frame_size()),
            _ => None,
        }
    }

    /// Number of v2 frames, if the body length is valid; `None` for v1.
    pub fn frame_count(&self) -> Option<u64> {
        match (&self.header, &self.plaintext_len) {
            (Header::V2(h), PlaintextLen::Exact(len)) => {
                Some(v2::frame_count(*len, h.frame_size()))
            }
            _ => None,
        }
    }

    /// Length of the wrapped data key.
    pub fn wrapped_key_len(&self) -> usize {
        self.header.wrapped_key().len()
    }

    /// Length of the header: the offset of the first body byte.
    pub fn header_len(&self) -> u64 {
        self.header.encoded_len() as u64
    }

    /// The v2 encryption context (sorted pairs, reserved entry included);
    /// `None` for v1, which has none.
    pub fn context(&self) -> Option<&EncryptionContext> {
        match &self.header {
            Header::V2(h) => Some(h.context()),
            _ => None,
        }
    }
}

/// The plaintext length implied by an object's body length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaintextLen {
    /// v2: exactly this many bytes (proved once the final frame opens).
    Exact(u64),
    /// v1: between `min` and `max` bytes inclusive (`body_len - 16` and
    /// `body_len - 1`), as the padding is 1..=16 bytes.
    Between {
        /// Smallest possible length (16 bytes of padding).
        min: u64,
        /// Largest possible length (1 byte of padding).
        max: u64,
    },
    /// No valid object has this body length: it is truncated, extended or
    /// not an atrest object. v1 bodies are a positive multiple of 16 bytes;
    /// v2 bodies are whole frames plus a non-empty final frame (see
    /// [`v2::plaintext_len`]).
    InvalidBody,
}

impl fmt::Display for PlaintextLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaintextLen::Exact(n) => write!(f, "{n}"),
            PlaintextLen::Between { min, max } => write!(f, "{min}..={max}"),
            PlaintextLen::InvalidBody => f.write_str("invalid (body length fits no valid object)"),
        }
    }
}

/// Why [`inspect`] cannot describe the object. Every variant is final.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InspectError {
    /// The header is invalid.
    Header(HeaderError),
    /// The object ends inside its header: it is `object_len` bytes long,
    /// but the header needs at least `header_len_at_least`.
    TruncatedHeader {
        /// The object length given.
        object_len: u64,
        /// The smallest header length the bytes seen so far allow.
        header_len_at_least: u64,
    },
    /// More bytes were given than the object has: the caller mixed up
    /// two objects or lengths.
    PrefixLongerThanObject {
        /// Bytes given.
        prefix_len: u64,
        /// The object length given.
        object_len: u64,
    },
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InspectError::Header(e) => write!(f, "invalid header: {e}"),
            InspectError::TruncatedHeader {
                object_len,
                header_len_at_least,
            } => write!(
                f,
                "the object is {object_len} bytes, shorter than its header (at least {header_len_at_least} bytes)"
            ),
            InspectError::PrefixLongerThanObject {
                prefix_len,
                object_len,
            } => write!(
                f,
                "{prefix_len} bytes given for an object of {object_len} bytes"
            ),
        }
    }
}

impl core::error::Error for InspectError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            InspectError::Header(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HeaderError> for InspectError {
    fn from(e: HeaderError) -> Self {
        InspectError::Header(e)
    }
}

/// Describes the object whose first bytes are `prefix` and whose total
/// length is `object_len`.
///
/// Only the header's bytes are examined; `prefix` may hold more of the
/// object, up to all of it. Like [`parse_header`] it never allocates by a
/// length read from the input beyond [`crate::MAX_WRAPPED_KEY_LEN`] and
/// [`v2::MAX_CONTEXT_LEN`], and it answers [`Inspected::Incomplete`] only
/// when the object is long enough to supply the bytes asked for.
pub fn inspect(prefix: &[u8], object_len: u64) -> Result<Inspected, InspectError> {
    let prefix_len = prefix.len() as u64;
    if prefix_len > object_len {
        return Err(InspectError::PrefixLongerThanObject {
            prefix_len,
            object_len,
        });
    }
    let header = match parse_header(prefix)? {
        Parsed::Complete(header) => header,
        Parsed::Incomplete { needed } => {
            let want = prefix_len.saturating_add(needed as u64);
            return if want > object_len {
                Err(InspectError::TruncatedHeader {
                    object_len,
                    header_len_at_least: want,
                })
            } else {
                Ok(Inspected::Incomplete { needed })
            };
        }
    };
    // The header is complete within the prefix, so within the object.
    let body_len = object_len - header.encoded_len() as u64;
    let plaintext_len = match &header {
        Header::V1(_) if v1::is_valid_ciphertext_len(body_len) => PlaintextLen::Between {
            min: body_len - v1::BLOCK_LEN as u64,
            max: body_len - 1,
        },
        Header::V2(h) => match v2::plaintext_len(body_len, h.frame_size()) {
            Some(n) => PlaintextLen::Exact(n),
            None => PlaintextLen::InvalidBody,
        },
        _ => PlaintextLen::InvalidBody,
    };
    Ok(Inspected::Complete(Inspection {
        header,
        object_len,
        body_len,
        plaintext_len,
    }))
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    fn v2_object_prefix() -> Vec<u8> {
        let ctx = EncryptionContext::new([("app", "x")]).unwrap();
        let h = v2::Header::new(vec![9; 5], 12, [1; 32], [2; 32], ctx).unwrap();
        let mut out = Vec::new();
        h.encode(&mut out);
        out
    }

    #[test]
    fn v2_lengths_and_fields() {
        let bytes = v2_object_prefix();
        let hl = bytes.len() as u64;
        let Ok(Inspected::Complete(i)) = inspect(&bytes, hl + 4096 + 16 + 17) else {
            panic!()
        };
        assert_eq!(i.version(), 2);
        assert_eq!(i.suite(), Some(1));
        assert_eq!(i.frame_size(), Some(4096));
        assert_eq!(i.wrapped_key_len(), 5);
        assert_eq!(i.header_len(), hl);
        assert_eq!(i.plaintext_len, PlaintextLen::Exact(4097));
        assert_eq!(i.frame_count(), Some(2));
        let keys: Vec<&str> = i.context().unwrap().iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["app", "atrest:format"]);

        // An empty final frame after a full one, or no body at all.
        for bad in [hl + 4112 + 16, hl, hl + 15] {
            let Ok(Inspected::Complete(i)) = inspect(&bytes, bad) else {
                panic!()
            };
            assert_eq!(i.plaintext_len, PlaintextLen::InvalidBody, "{bad}");
            assert_eq!(i.frame_count(), None);
        }
    }

    #[test]
    fn v1_lengths() {
        let h = v1::Header::new(vec![1; 3], [0; 8]).unwrap();
        let mut bytes = Vec::new();
        h.encode(&mut bytes);
        let hl = bytes.len() as u64;
        let at = |len| match inspect(&bytes, len) {
            Ok(Inspected::Complete(i)) => i.plaintext_len,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(hl + 16), PlaintextLen::Between { min: 0, max: 15 });
        assert_eq!(at(hl + 32), PlaintextLen::Between { min: 16, max: 31 });
        assert_eq!(at(hl), PlaintextLen::InvalidBody);
        assert_eq!(at(hl + 17), PlaintextLen::InvalidBody);
    }

    #[test]
    fn incomplete_and_truncated() {
        let bytes = v2_object_prefix();
        let hl = bytes.len() as u64;
        assert_eq!(inspect(&[], 100), Ok(Inspected::Incomplete { needed: 8 }));
        assert_eq!(
            inspect(&[], 0),
            Err(InspectError::TruncatedHeader {
                object_len: 0,
                header_len_at_least: 8
            })
        );
        assert_eq!(
            inspect(&bytes[..8], hl),
            Ok(Inspected::Incomplete { needed: 5 + 67 })
        );
        // The object ends inside the header: more bytes cannot come.
        assert!(matches!(
            inspect(&bytes[..8], 20),
            Err(InspectError::TruncatedHeader { .. })
        ));
        assert!(matches!(
            inspect(&bytes[..hl as usize - 1], hl - 1),
            Err(InspectError::TruncatedHeader { .. })
        ));
        assert_eq!(
            inspect(&bytes, 3),
            Err(InspectError::PrefixLongerThanObject {
                prefix_len: hl,
                object_len: 3
            })
        );
        assert_eq!(
            inspect(&[9], 100),
            Err(InspectError::Header(HeaderError::UnknownVersion(9)))
        );
    }
}
