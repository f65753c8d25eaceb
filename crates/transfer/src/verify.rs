//! Checking that objects decrypt, without writing their plaintext anywhere.
//!
//! An object is downloaded by the engine's parallel ranged GETs into
//! [`crate::Sink::Discard`]: its data key is unwrapped (KMS
//! must still agree) and every byte decrypted. For v2 every frame is
//! authenticated, so a verified object is exactly the one encrypted (its
//! length, order and final frame included). v1 has no authentication: only
//! its CBC padding can be checked, which catches truncation and most damage
//! to the last blocks but nothing else, and the result says so
//! ([`Verified::authenticated`] is `false`). Objects of the AWS S3
//! Encryption Client are verified too (their GCM tag, and V3's key
//! commitment); its unauthenticated legacy CBC objects fail.
//!
//! Nothing is written, to S3 or locally. One call per object, so that a
//! caller (the `atrest verify` command, a Lambda behind S3 Batch
//! Operations) drives its own listing and concurrency; a failure tells a
//! temporary one from a permanent one ([`VerifyError::retry`]).
//!
//! ```no_run
//! # async fn example(transfer: atrest_transfer::Transfer) {
//! use atrest_transfer::verify::{Verify, VerifyOptions};
//!
//! let verify = Verify::new(transfer, VerifyOptions::default());
//! let uri = atrest_s3::S3Uri::parse("s3://bucket/big.bin").unwrap();
//! match verify.object(&uri).await {
//!     Ok(v) if v.authenticated => println!("{:?}: {} bytes authenticated", v.format, v.plaintext_len),
//!     Ok(v) => println!("{:?}: padding valid (v1 cannot be authenticated)", v.format),
//!     Err(e) => eprintln!("{e} ({:?})", e.retry()),
//! }
//! # }
//! ```

use std::sync::Arc;

use atrest_format::{parse_header, Header, Parsed};
use atrest_s3::{ByteRange, ObjectVersion, S3Error, S3Uri};

use crate::{Error, KeyError, Kind, Observer, Retry, Sink, Transfer, FIRST_FETCH};

/// How [`Verify`] downloads.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Ranged GETs streaming at once per object (default
    /// [`FILE_STREAMS`](crate::FILE_STREAMS), as into a file).
    pub concurrency: Option<usize>,
    /// Smallest run of the object one ranged GET covers (default
    /// [`DEFAULT_PART_SIZE`](crate::DEFAULT_PART_SIZE)).
    pub part_size: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            concurrency: None,
            part_size: crate::DEFAULT_PART_SIZE,
        }
    }
}

impl VerifyOptions {
    /// These options with `concurrency` ranged GETs per object.
    pub fn concurrency(self, concurrency: Option<usize>) -> Self {
        VerifyOptions {
            concurrency,
            ..self
        }
    }

    /// These options with runs of at least `part_size` bytes.
    pub fn part_size(self, part_size: usize) -> Self {
        VerifyOptions { part_size, ..self }
    }
}

/// An object that decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The object's format.
    pub format: Kind,
    /// `true` for v2 (every frame authenticated) and S3 Encryption Client
    /// objects (the GCM tag). `false` for v1: the data key unwrapped and
    /// the padding is valid, which is all v1 allows.
    pub authenticated: bool,
    /// Whether the data key is the shared `data.key` (v1 always; S3
    /// Encryption Client objects never).
    pub shared_data_key: bool,
    /// The object's length.
    pub object_len: u64,
    /// Its plaintext length (exact: v1's too, once unpadded).
    pub plaintext_len: u64,
    /// The KMS key that unwrapped the data key, as KMS answered (its ARN).
    pub key_id: Option<String>,
    /// The version read (every GET was pinned to it).
    pub version: ObjectVersion,
}

/// Why an object did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not an atrest object (or one whose header is damaged).
    #[error("{uri} is not an atrest object: {reason}")]
    NotAtrest {
        /// The object.
        uri: String,
        /// Why.
        reason: String,
    },
    /// Decryption or authentication failed: the object is corrupted,
    /// truncated or extended, or (v1) its padding is invalid.
    #[error("{uri} is corrupted: {}", corrupted(*.format))]
    Corrupted {
        /// The object.
        uri: String,
        /// Its format.
        format: Kind,
    },
    /// The key source (KMS) refused or failed to unwrap the data key
    /// ([`KeyError::recorded_key`] names the KMS key the object's
    /// metadata records).
    #[error("cannot unwrap the data key of {uri}{}", recorded(.source))]
    Key {
        /// The object.
        uri: String,
        /// What the key source said.
        #[source]
        source: KeyError,
    },
    /// The object cannot be verified as it is: an S3 Encryption Client
    /// object with invalid metadata, in legacy (unauthenticated) CBC, or
    /// wrapped with a client-side key.
    #[error("{uri} cannot be verified: {source}")]
    Unsupported {
        /// The object.
        uri: String,
        /// Why.
        source: Error,
    },
    /// The object was replaced while it was read: verify it again.
    #[error("{uri} changed while it was verified")]
    Changed {
        /// The object.
        uri: String,
    },
    /// An S3 request failed.
    #[error(transparent)]
    S3(S3Error),
    /// Any other failure of the download.
    #[error(transparent)]
    Other(Error),
}

fn corrupted(format: Kind) -> &'static str {
    match format {
        Kind::V1 => "its CBC padding is invalid (v1 has no authentication: this is the only check it allows)",
        Kind::V2 => "a frame failed authentication, or frames are missing",
        _ => "its authentication tag (or V3 key commitment) does not match",
    }
}

/// `" (its metadata says ...)"`, when the object's metadata names the KMS
/// key.
fn recorded(e: &KeyError) -> String {
    e.recorded_key()
        .map(|arn| format!(" ({})", crate::recorded_key_note(arn)))
        .unwrap_or_default()
}

impl VerifyError {
    /// Whether verifying again may succeed.
    pub fn retry(&self) -> Retry {
        match self {
            VerifyError::NotAtrest { .. }
            | VerifyError::Corrupted { .. }
            | VerifyError::Unsupported { .. } => Retry::Permanent,
            VerifyError::Key { source, .. } => Retry::of_key(source),
            VerifyError::Changed { .. } => Retry::Temporary,
            VerifyError::S3(e) => Retry::of_s3(e),
            VerifyError::Other(e) => Retry::of(e),
        }
    }
}

/// Verifies objects through one [`Transfer`].
#[derive(Clone)]
pub struct Verify {
    transfer: Transfer,
    options: VerifyOptions,
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Verify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verify")
            .field("transfer", &self.transfer)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Verify {
    /// A verifier downloading through `transfer` (its key source unwraps).
    pub fn new(transfer: Transfer, options: VerifyOptions) -> Self {
        Verify {
            transfer,
            options,
            observer: None,
        }
    }

    /// Told of every object's plaintext as it is checked (shared by all
    /// objects).
    pub fn observer(self, observer: Arc<dyn Observer>) -> Self {
        Verify {
            observer: Some(observer),
            ..self
        }
    }

    /// Downloads, unwraps and decrypts one object, writing nothing.
    pub async fn object(&self, uri: &S3Uri) -> Result<Verified, VerifyError> {
        let not_atrest = |reason: String| VerifyError::NotAtrest {
            uri: uri.to_string(),
            reason,
        };
        let first = atrest_s3::get_range(
            self.transfer.s3(),
            uri,
            ByteRange::new(0, FIRST_FETCH - 1),
            None,
        )
        .await
        .map_err(|e| s3_error(uri, e))?;
        if first.object_len == 0 {
            return Err(not_atrest("it is empty".into()));
        }
        let s3ec = crate::list::is_s3_encryption_client(&first.metadata);
        let (format, shared) = match parse_header(&first.bytes) {
            _ if s3ec => (Kind::S3EncryptionClient, false),
            Ok(Parsed::Complete(Header::V2(h))) => (Kind::V2, h.context().is_shared_data_key()),
            Ok(Parsed::Complete(_)) => (Kind::V1, true),
            // Neither atrest's nor, by its metadata, the S3 Encryption
            // Client's: the download still looks for an instruction file.
            _ => (Kind::S3EncryptionClient, false),
        };
        let object_len = first.object_len;
        let mut download = self
            .transfer
            .download(uri)
            .part_size(self.options.part_size)
            .first_fetch(first);
        if let Some(streams) = self.options.concurrency {
            download = download.concurrency(streams);
        }
        if let Some(observer) = &self.observer {
            download = download.observer(Arc::clone(observer));
        }
        let done = download
            .into_sink(Sink::Discard)
            .await
            .map_err(|e| match e {
                Error::Decrypt(_) => VerifyError::Corrupted {
                    uri: uri.to_string(),
                    format,
                },
                Error::Key(source) => VerifyError::Key {
                    uri: uri.to_string(),
                    source,
                },
                Error::ObjectChanged { uri } => VerifyError::Changed { uri },
                Error::NotAtrest(e) => not_atrest(e.to_string()),
                Error::TooShort(len) => {
                    let bytes = if len == 1 { "byte" } else { "bytes" };
                    not_atrest(format!("only {len} {bytes}, too short for a header"))
                }
                Error::S3(e) => s3_error(uri, e),
                e @ (Error::Unsupported(_)
                | Error::S3ec(_)
                | Error::S3ecContext(_)
                | Error::WrongKeyring { .. }) => VerifyError::Unsupported {
                    uri: uri.to_string(),
                    source: e,
                },
                e => VerifyError::Other(e),
            })?;
        Ok(Verified {
            format: done.format,
            authenticated: done.format != Kind::V1,
            shared_data_key: shared,
            object_len,
            plaintext_len: done.written,
            key_id: done.key_id.map(|k| k.to_string()),
            version: done.version,
        })
    }
}

fn s3_error(uri: &S3Uri, e: S3Error) -> VerifyError {
    match e {
        S3Error::Changed { .. } => VerifyError::Changed {
            uri: uri.to_string(),
        },
        e => VerifyError::S3(e),
    }
}
