//! Local streams on both sides, no S3: a reader encrypted into an atrest
//! object written to a sink, and an object read from a reader decrypted
//! into one. The same key sources ([`KeySource`]: KMS or a key file),
//! formats and checks as uploads and downloads; memory stays bounded
//! whatever the size.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use atrest_crypto::keyfile::KeyFileKey;
//! use atrest_transfer::{local, DataKeyFrom, Writer};
//!
//! let keys = KeyFileKey::generate(&mut rand_core::OsRng);
//! let options = local::EncryptOptions::new(DataKeyFrom::Generate(String::new()));
//! let mut object = Vec::new();
//! local::encrypt(&keys, options, "notes", &b"hello"[..], &mut Writer(&mut object))
//!     .await
//!     .unwrap();
//!
//! let opened = local::open("notes.atrest", &object[..]).await.unwrap();
//! let mut plain = Vec::new();
//! opened.decrypt(&keys, &[], &mut Writer(&mut plain)).await.unwrap();
//! assert_eq!(plain, b"hello");
//! # });
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use atrest_crypto::{async_io, v1, v2, DecryptError, StreamError};
use atrest_format::keyring::Keyring;
use atrest_format::Header;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::upload::{object_key, ObjectKey};
use crate::{check_expected_context, DataKeyFrom, Error, Format, KeySource, OrderedSink};

/// Bytes read per step (and so the most plaintext or ciphertext held at
/// once): large enough that the blocking pool round trips of tokio's file
/// I/O do not dominate.
const IO_BUFFER: usize = 1 << 20;

/// How a local object is made.
#[derive(Clone, Debug)]
pub struct EncryptOptions<'a> {
    /// Which data key: a fresh one (the id is ignored by a key file) or the
    /// shared wrapped one.
    pub key: DataKeyFrom,
    /// v1 or v2 (an S3 Encryption Client object keeps its metadata in S3,
    /// so it cannot be a local file).
    pub format: Format,
    /// v2 frames of 2^exponent bytes.
    pub frame_exponent: u8,
    /// The encryption context (v2).
    pub context: &'a [(String, String)],
}

impl EncryptOptions<'_> {
    /// A v2 object with the default frame size and no context.
    pub fn new(key: DataKeyFrom) -> Self {
        EncryptOptions {
            key,
            format: Format::V2,
            frame_exponent: atrest_format::v2::DEFAULT_FRAME_EXPONENT,
            context: &[],
        }
    }
}

/// What an encryption or decryption did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Done {
    /// Plaintext bytes read (encrypt) or written (decrypt).
    pub plaintext_len: u64,
    /// Which key wrapped the data key (for KMS: its ARN), if known.
    pub key_id: Option<std::sync::Arc<str>>,
}

/// Encrypts `input` (called `name` in errors) into an object written to
/// `sink`. The sink holds a whole object only when this returns `Ok`.
pub async fn encrypt(
    keys: &dyn KeySource,
    options: EncryptOptions<'_>,
    name: &str,
    input: impl AsyncRead + Unpin,
    sink: &mut dyn OrderedSink,
) -> Result<Done, Error> {
    if options.format == Format::S3ecV3 {
        return Err(Error::Unsupported(
            "an S3 Encryption Client object keeps its metadata in S3: it cannot be a local file"
                .into(),
        ));
    }
    let ObjectKey {
        key,
        wrapped,
        key_id,
        context,
    } = object_key(keys, &options.key, options.format, options.context).await?;
    let (step, prefix) = match options.format {
        Format::V1 => {
            let stored_iv = v1::random_stored_iv(&mut rand_core::OsRng);
            let header =
                atrest_format::v1::Header::new(wrapped, stored_iv).map_err(Error::Header)?;
            let mut prefix = Vec::new();
            header.encode(&mut prefix);
            (
                Step::V1Encrypt(v1::Encryptor::new(&key, &stored_iv)),
                prefix,
            )
        }
        _ => {
            let encryptor = v2::Encryptor::new(
                &key,
                wrapped,
                options.frame_exponent,
                context,
                &mut rand_core::OsRng,
            )
            .map_err(Error::Header)?;
            (Step::V2Encrypt(encryptor), Vec::new())
        }
    };
    drop(key);
    let plaintext_len = pump(input, name, step, prefix, sink).await?.0;
    Ok(Done {
        plaintext_len,
        key_id,
    })
}

/// An object whose header has been read: [`Opened::header`] says what it
/// needs before any key is asked for.
pub struct Opened<R> {
    name: String,
    header: Header,
    input: BufReader<Counting<R>>,
}

/// A reader that counts what it read (how short a truncated header was).
type Counting<R> = tokio_util::io::InspectReader<R, Count>;
type Count = Box<dyn FnMut(&[u8]) + Send>;

impl<R> std::fmt::Debug for Opened<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("name", &self.name)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Reads the header of the object `input` (called `name` in errors):
/// [`Error::NotAtrest`] or [`Error::TooShort`] if it is none.
pub async fn open<R: AsyncRead + Unpin>(name: &str, input: R) -> Result<Opened<R>, Error> {
    let read = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&read);
    let count: Count = Box::new(move |bytes| {
        counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    });
    let input = tokio_util::io::InspectReader::new(input, count);
    let mut input = BufReader::with_capacity(IO_BUFFER, input);
    let header = match async_io::read_header(&mut input).await {
        Ok(header) => header,
        Err(StreamError::Header(e)) => return Err(Error::NotAtrest(e)),
        Err(StreamError::TruncatedHeader) => {
            return Err(Error::TooShort(read.load(Ordering::Relaxed)))
        }
        Err(StreamError::Io(e)) => return Err(read_error(name, e)),
        Err(e) => return Err(Error::Io(std::io::Error::other(e))),
    };
    Ok(Opened {
        name: name.to_owned(),
        header,
        input,
    })
}

impl<R: AsyncRead + Unpin> Opened<R> {
    /// The object's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// [`Error::WrongKeyring`] unless `keyring` is the one the object
    /// records: checked before a key source is even built.
    pub fn check_keyring(&self, keyring: Keyring) -> Result<(), Error> {
        match self.header.keyring() == keyring {
            true => Ok(()),
            false => Err(Error::WrongKeyring {
                uri: self.name.clone(),
                recorded: self.header.keyring(),
                asked: keyring,
            }),
        }
    }

    /// Unwraps the data key from `keys`, checks the `expect_context` pairs
    /// (none may be asked of a v1 object) and decrypts the body into
    /// `sink`. A v2 decryptor releases only what it has authenticated;
    /// on `Err` discard what the sink holds.
    pub async fn decrypt(
        self,
        keys: &dyn KeySource,
        expect_context: &[(String, String)],
        sink: &mut dyn OrderedSink,
    ) -> Result<Done, Error> {
        self.check_keyring(keys.keyring())?;
        let (step, unwrapped) = match &self.header {
            Header::V1(h) => {
                if !expect_context.is_empty() {
                    return Err(Error::NoContext { uri: self.name });
                }
                let got = keys.unwrap(h.wrapped_key(), &[]).await?;
                let step = Step::V1Decrypt(Box::new(v1::Decryptor::new(&got.key, &h.stored_iv())));
                (step, got)
            }
            Header::V2(h) => {
                check_expected_context(h, expect_context)?;
                let got = keys
                    .unwrap(h.wrapped_key(), &h.context().kms_context())
                    .await?;
                (Step::V2Decrypt(v2::Decryptor::new(&got.key, h)?), got)
            }
            _ => unreachable!("parse_header yields only known versions"),
        };
        let key_id = unwrapped.key_id;
        drop(unwrapped.key);
        let plaintext_len = pump(self.input, &self.name, step, Vec::new(), sink)
            .await?
            .1;
        Ok(Done {
            plaintext_len,
            key_id,
        })
    }
}

/// A read failure, naming what was read (its kind kept).
fn read_error(name: &str, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("cannot read {name}: {e}"),
    ))
}

/// One of the streaming state machines of `atrest-crypto`.
enum Step {
    V1Encrypt(v1::Encryptor),
    V2Encrypt(v2::Encryptor),
    // Boxed: its CBC state is large beside the others'.
    V1Decrypt(Box<v1::Decryptor>),
    V2Decrypt(v2::Decryptor),
}

impl Step {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        match self {
            Step::V1Encrypt(e) => e.update(input, out),
            Step::V2Encrypt(e) => e.update(input, out),
            Step::V1Decrypt(d) => d.update(input, out),
            Step::V2Decrypt(d) => d.update(input, out)?,
        }
        Ok(())
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        match self {
            Step::V1Encrypt(e) => e.finish(out),
            Step::V2Encrypt(e) => e.finish(out),
            Step::V1Decrypt(d) => d.finish(out)?,
            Step::V2Decrypt(d) => d.finish(out)?,
        }
        Ok(())
    }
}

/// Streams `input` through `step` into `sink`, [`IO_BUFFER`] bytes at a
/// time, after `out` (a v1 header). Returns bytes read and written. (Not
/// `atrest_crypto::async_io`'s loops: they write to an `AsyncWrite`, and
/// the sinks here take owned buffers, which they write off the runtime
/// without copying.)
async fn pump(
    mut input: impl AsyncRead + Unpin,
    name: &str,
    mut step: Step,
    mut out: Vec<u8>,
    sink: &mut dyn OrderedSink,
) -> Result<(u64, u64), Error> {
    let mut chunk = vec![0u8; IO_BUFFER];
    let (mut read, mut written) = (0, 0);
    loop {
        let n = input
            .read(&mut chunk)
            .await
            .map_err(|e| read_error(name, e))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        step.update(&chunk[..n], &mut out)?;
        if !out.is_empty() {
            written += out.len() as u64;
            let len = out.len();
            out = sink.write(out, 0..len).await?;
            out.clear();
        }
    }
    step.finish(&mut out)?;
    written += out.len() as u64;
    let len = out.len();
    sink.write(out, 0..len).await?;
    sink.finish().await?;
    Ok((read, written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Writer;
    use atrest_crypto::keyfile::KeyFileKey;

    async fn encrypted(keys: &KeyFileKey, plain: &[u8], context: &[(String, String)]) -> Vec<u8> {
        let mut options = EncryptOptions::new(DataKeyFrom::Generate(String::new()));
        options.frame_exponent = 12;
        options.context = context;
        let mut object = Vec::new();
        let done = encrypt(keys, options, "in", plain, &mut Writer(&mut object))
            .await
            .unwrap();
        assert_eq!(done.plaintext_len, plain.len() as u64);
        object
    }

    async fn decrypted(
        keys: &KeyFileKey,
        object: &[u8],
        expect: &[(String, String)],
    ) -> Result<Vec<u8>, Error> {
        let mut plain = Vec::new();
        let opened = open("obj", object).await?;
        opened
            .decrypt(keys, expect, &mut Writer(&mut plain))
            .await?;
        Ok(plain)
    }

    #[tokio::test]
    async fn round_trips_and_refuses_what_is_not_its_object() {
        let keys = KeyFileKey::generate(&mut rand_core::OsRng);
        let plain: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let context = [("app".to_owned(), "test".to_owned())];
        let object = encrypted(&keys, &plain, &context).await;
        assert_eq!(decrypted(&keys, &object, &context).await.unwrap(), plain);

        let other = [("app".to_owned(), "other".to_owned())];
        let e = decrypted(&keys, &object, &other).await.unwrap_err();
        assert!(matches!(e, Error::ContextMismatch { .. }), "{e}");
        let mut tampered = object.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let e = decrypted(&keys, &tampered, &[]).await.unwrap_err();
        assert!(matches!(e, Error::Decrypt(_)), "{e}");
        let wrong_key = KeyFileKey::generate(&mut rand_core::OsRng);
        let e = decrypted(&wrong_key, &object, &[]).await.unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{e}");

        let opened = open("obj", &object[..]).await.unwrap();
        let e = opened.check_keyring(Keyring::Kms).unwrap_err();
        assert!(matches!(e, Error::WrongKeyring { .. }), "{e}");
        let e = open("obj", &object[..5]).await.unwrap_err();
        assert!(matches!(e, Error::TooShort(5)), "{e}");
        let e = open("obj", &b"plain text, no header at all"[..])
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotAtrest(_)), "{e}");
    }

    #[tokio::test]
    async fn a_key_file_makes_no_v1_or_s3ec_object() {
        let keys = KeyFileKey::generate(&mut rand_core::OsRng);
        for format in [Format::V1, Format::S3ecV3] {
            let mut options = EncryptOptions::new(DataKeyFrom::Generate(String::new()));
            options.format = format;
            let mut object = Vec::new();
            let e = encrypt(&keys, options, "in", &b"x"[..], &mut Writer(&mut object))
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Unsupported(_)), "{e}");
            assert!(object.is_empty());
        }
    }
}
