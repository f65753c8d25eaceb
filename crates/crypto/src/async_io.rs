//! Tokio adapters (feature `tokio`): the same loops as the `std::io` ones,
//! over [`AsyncRead`] and [`AsyncWrite`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use atrest_crypto::{async_io, v2, DataKey};
//! use atrest_format::v2::{EncryptionContext, DEFAULT_FRAME_EXPONENT};
//!
//! let key = DataKey::from_slice(&[9; 32]).unwrap();
//! let ctx = EncryptionContext::new([("app", "demo")]).unwrap();
//! let enc = v2::Encryptor::new(&key, vec![1; 8], DEFAULT_FRAME_EXPONENT, ctx, &mut rand_core::OsRng)
//!     .unwrap();
//! let mut object = Vec::new();
//! async_io::encrypt_v2(enc, &b"async hello"[..], &mut object).await.unwrap();
//!
//! let mut reader = &object[..];
//! let header = async_io::read_header(&mut reader).await.unwrap();
//! let mut plain = Vec::new();
//! async_io::decrypt(&key, &header, reader, &mut plain).await.unwrap();
//! assert_eq!(plain, b"async hello");
//! # });
//! ```

use std::io;

use atrest_format::{Header, HeaderError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{
    header_read_error, v1, v2, BodyDecryptor, DataKey, DecryptError, HeaderBuf, HeaderStep,
    StreamError,
};

const CHUNK: usize = 64 * 1024;

/// Reads exactly the header's bytes from `reader` and parses them; see
/// [`crate::read_header`].
pub async fn read_header(reader: &mut (impl AsyncRead + Unpin)) -> Result<Header, StreamError> {
    let mut buf = HeaderBuf::default();
    loop {
        match buf.step()? {
            HeaderStep::Done(header) => return Ok(header),
            HeaderStep::Fill(slot) => {
                reader.read_exact(slot).await.map_err(header_read_error)?;
            }
        }
    }
}

/// Writes a v1 object (header, then the encrypted `reader`) to `writer`.
/// Returns the plaintext length.
pub async fn encrypt_v1(
    key: &DataKey,
    header: &atrest_format::v1::Header,
    reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
) -> io::Result<u64> {
    let mut out = Vec::new();
    header.encode(&mut out);
    let mut enc = v1::Encryptor::new(key, &header.stored_iv());
    let (n, _) = copy_loop(reader, &mut writer, &mut out, |chunk, out| {
        enc.update(chunk, out);
        Ok(())
    })
    .await?;
    enc.finish(&mut out);
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(n)
}

/// Writes a v2 object (header and frames) for `reader` to `writer`. Returns
/// the plaintext length.
pub async fn encrypt_v2(
    mut encryptor: v2::Encryptor,
    reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
) -> io::Result<u64> {
    let mut out = Vec::new();
    let (n, _) = copy_loop(reader, &mut writer, &mut out, |chunk, out| {
        encryptor.update(chunk, out);
        Ok(())
    })
    .await?;
    encryptor.finish(&mut out);
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(n)
}

/// Decrypts the body read from `reader` (positioned after the header) and
/// writes the plaintext to `writer`; see [`crate::decrypt_stream`] for what
/// the writer may hold on error (discard it).
pub async fn decrypt(
    key: &DataKey,
    header: &Header,
    reader: impl AsyncRead + Unpin,
    writer: impl AsyncWrite + Unpin,
) -> Result<u64, StreamError> {
    match header {
        Header::V1(h) => {
            decrypt_body(v1::Decryptor::new(key, &h.stored_iv()), reader, writer).await
        }
        Header::V2(h) => decrypt_body(v2::Decryptor::new(key, h)?, reader, writer).await,
        _ => Err(HeaderError::UnknownVersion(header.version()).into()),
    }
}

/// The async twin of [`crate::decrypt_body`].
async fn decrypt_body(
    mut dec: impl BodyDecryptor,
    reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
) -> Result<u64, StreamError> {
    let mut out = Vec::new();
    let (_, mut written) = copy_loop(reader, &mut writer, &mut out, |chunk, out| {
        dec.update(chunk, out).map_err(io::Error::other)
    })
    .await
    .map_err(unwrap_decrypt_error)?;
    dec.finish(&mut out)?;
    writer.write_all(&out).await?;
    writer.flush().await?;
    written += out.len() as u64;
    Ok(written)
}

/// Feeds `reader` through `step` chunk by chunk, writing what it produces
/// (starting with anything already in `out`). Returns bytes read and
/// written; `out` is empty afterwards, ready for the caller's final output.
async fn copy_loop(
    mut reader: impl AsyncRead + Unpin,
    writer: &mut (impl AsyncWrite + Unpin),
    out: &mut Vec<u8>,
    mut step: impl FnMut(&[u8], &mut Vec<u8>) -> io::Result<()>,
) -> io::Result<(u64, u64)> {
    let mut chunk = vec![0u8; CHUNK];
    let (mut read, mut written) = (0, 0);
    loop {
        let n = reader.read(&mut chunk).await?;
        if n > 0 {
            read += n as u64;
            step(&chunk[..n], out)?;
        }
        writer.write_all(out).await?;
        written += out.len() as u64;
        out.clear();
        if n == 0 {
            return Ok((read, written));
        }
    }
}

fn unwrap_decrypt_error(e: io::Error) -> StreamError {
    if e.get_ref().is_some_and(|inner| inner.is::<DecryptError>()) {
        StreamError::Decrypt(DecryptError)
    } else {
        StreamError::Io(e)
    }
}
