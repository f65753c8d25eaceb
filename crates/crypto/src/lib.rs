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
//! - [`s3ec`]: the AWS S3 Encryption Client's one-stream AES-256-GCM (V2,
//!   and V3 with HKDF-SHA-512 and key commitment), by position.
#![deny(missing_docs)]

use std::io::{self, Read, Write};

use atrest_format::{parse_header, Header, HeaderError, Parsed};

#[cfg(feature = "tokio")]
pub mod async_io;
mod frame_run;
mod key;
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
    let mut buf = HeaderBuf::default();
    loop {
        match buf.step()? {
            HeaderStep::Done(header) => return Ok(header),
            HeaderStep::Fill(slot) => reader.read_exact(slot).map_err(header_read_error)?,
        }
    }
}

/// A header being read, for the sync and async readers alike: it asks for
/// exactly the bytes the parser still needs.
#[derive(Default)]
pub(crate) struct HeaderBuf(Vec<u8>);

pub(crate) enum HeaderStep<'a> {
    Done(Header),
    /// Fill this slice (exactly) and step again.
    Fill(&'a mut [u8]),
}

impl HeaderBuf {
    pub(crate) fn step(&mut self) -> Result<HeaderStep<'_>, HeaderError> {
        match parse_header(&self.0)? {
            Parsed::Complete(header) => Ok(HeaderStep::Done(header)),
            Parsed::Incomplete { needed } => {
                let start = self.0.len();
                self.0.resize(start + needed, 0);
                Ok(HeaderStep::Fill(&mut self.0[start..]))
            }
        }
    }
}

/// End of input inside the header is its own error.
pub(crate) fn header_read_error(e: io::Error) -> StreamError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        StreamError::TruncatedHeader
    } else {
        StreamError::Io(e)
    }
}

/// What the v1 and v2 streaming decryptors share, so one loop (sync in
/// [`decrypt_body`], async in `async_io`) drives either.
pub(crate) trait BodyDecryptor {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError>;
    fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError>;
}

impl BodyDecryptor for v1::Decryptor {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        v1::Decryptor::update(self, input, out);
        Ok(())
    }
    fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        v1::Decryptor::finish(self, out)
    }
}

impl BodyDecryptor for v2::Decryptor {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        v2::Decryptor::update(self, input, out)
    }
    fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        v2::Decryptor::finish(self, out)
    }
}

/// Feeds `reader` through `dec` and writes the plaintext to `writer`;
/// returns the plaintext length.
pub(crate) fn decrypt_body(
    mut dec: impl BodyDecryptor,
    reader: impl Read,
    mut writer: impl Write,
) -> Result<u64, StreamError> {
    let mut out = Vec::new();
    let mut written = 0u64;
    let mut failed = None;
    copy_loop(reader, |chunk| {
        out.clear();
        if let Err(e) = dec.update(chunk, &mut out) {
            failed = Some(e);
            return Err(io::Error::other(e));
        }
        written += out.len() as u64;
        writer.write_all(&out)
    })
    .map_err(|e| match failed {
        Some(d) => StreamError::Decrypt(d),
        None => StreamError::Io(e),
    })?;
    out.clear();
    dec.finish(&mut out)?;
    written += out.len() as u64;
    writer.write_all(&out)?;
    writer.flush()?;
    Ok(written)
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
