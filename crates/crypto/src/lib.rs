//! AES-256 primitives and streaming encrypt/decrypt state machines for atrest
//! objects, built on the layouts in [`atrest_format`].
//!
//! The state machines do no I/O: callers feed input in chunks of any size and
//! collect output, so memory stays bounded by the chunk size whatever the
//! object size. Thin `std::io` loops around them are here too:
//! [`read_header`], [`decrypt_stream`], and `encrypt_stream` in each version
//! module.
//!
//! - [`v1`]: the seed tool's unauthenticated AES-256-CBC, for compatibility;
//! - [`v2`]: framed AES-256-GCM with key commitment, the format to write;
//! - [`keyfile`]: raw AES-256 key files, a keyring that wraps data keys
//!   without KMS;
//! - [`s3ec`]: the AWS S3 Encryption Client's one-stream AES-256-GCM (V2,
//!   and V3 with HKDF-SHA-512 and key commitment), by position.
#![deny(missing_docs)]

use std::io::{self, Read, Write};

use atrest_format::{parse_header, Header, HeaderError, Parsed};

#[cfg(feature = "tokio")]
pub mod async_io;
mod key;
pub mod keyfile;
pub mod s3ec;
pub mod v1;
pub mod v2;

pub use key::{DataKey, KeyLengthError, DATA_KEY_LEN};

/// Decryption failed. Deliberately carries no detail: telling padding errors
/// apart from length errors would hand an attacker an oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptError;

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decryption failed: the object is corrupted or was encrypted with another key")
    }
}

impl std::error::Error for DecryptError {}

/// Why a streaming read or decryption failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The input ended inside the header.
    TruncatedHeader,
    /// The header is invalid.
    Header(HeaderError),
    /// Decryption or authentication failed.
    Decrypt(DecryptError),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Io(_) => f.write_str("I/O error"),
            StreamError::TruncatedHeader => f.write_str("the object ends inside its header"),
            StreamError::Header(_) => f.write_str("invalid object header"),
            StreamError::Decrypt(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io(e) => Some(e),
            StreamError::Header(e) => Some(e),
            StreamError::TruncatedHeader | StreamError::Decrypt(_) => None,
        }
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

impl From<DecryptError> for StreamError {
    fn from(e: DecryptError) -> Self {
        StreamError::Decrypt(e)
    }
}

impl From<HeaderError> for StreamError {
    fn from(e: HeaderError) -> Self {
        StreamError::Header(e)
    }
}

/// Reads exactly the header's bytes from `reader`, leaving it at the first
/// body byte, and parses them.
///
/// It reads only as many bytes as the parser asks for, so it never reads
/// past the header and never buffers more than a valid header can hold.
pub fn read_header(reader: &mut impl Read) -> Result<Header, StreamError> {
    let mut buf = Vec::new();
    loop {
        match parse_header(&buf)? {
            Parsed::Complete(header) => return Ok(header),
            Parsed::Incomplete { needed } => {
                let start = buf.len();
                buf.resize(start + needed, 0);
                reader.read_exact(&mut buf[start..]).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        StreamError::TruncatedHeader
                    } else {
                        StreamError::Io(e)
                    }
                })?;
            }
        }
    }
}

/// Decrypts the body read from `reader` (positioned after the header, e.g.
/// by [`read_header`]) with the data key unwrapped from `header`, writing
/// plaintext to `writer`; dispatches on the version. Returns the plaintext
/// length.
///
/// v1 is unauthenticated: plaintext is written as it is decrypted. For v2
/// only authenticated frames are written, but on error the writer may hold
/// the frames before the bad one: in both cases discard the output on error.
pub fn decrypt_stream(
    key: &DataKey,
    header: &Header,
    reader: impl Read,
    writer: impl Write,
) -> Result<u64, StreamError> {
    match header {
        Header::V1(h) => v1::decrypt_stream(key, h, reader, writer),
        Header::V2(h) => v2::decrypt_stream(key, h, reader, writer),
        // Header is non_exhaustive: a newer atrest-format may know more.
        _ => Err(StreamError::Header(HeaderError::UnknownVersion(
            header.version(),
        ))),
    }
}

/// Feeds `reader` to `f` in chunks until end of input; returns the number of
/// bytes read.
pub(crate) fn copy_loop(
    mut reader: impl Read,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n as u64;
                f(&buf[..n])?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
