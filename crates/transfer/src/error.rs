//! What can go wrong in a transfer.

use atrest_crypto::DecryptError;
use atrest_format::keyring::Keyring;
use atrest_format::HeaderError;
use atrest_kms::KmsError;
use atrest_s3::S3Error;

use crate::keys::KeyError;

/// A transfer failed.
///
/// Cryptographic failures are one opaque variant, [`Error::Decrypt`]: which
/// check failed is not said, so no oracle leaks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object's first bytes are not an atrest header.
    #[error("not an atrest object")]
    NotAtrest(#[source] HeaderError),
    /// The object is shorter than any header.
    #[error("not an atrest object (only {0} bytes, too short for a header)")]
    TooShort(u64),
    /// The object's encryption context lacks a pair the caller expects, or
    /// has another value for it.
    #[error("{}", context_mismatch(key, expected, found.as_deref()))]
    ContextMismatch {
        /// The context key.
        key: String,
        /// The value expected.
        expected: String,
        /// The value found, if any.
        found: Option<String>,
    },
    /// An encryption context was expected of a v1 object, which has none.
    #[error("{uri} is a v1 object, which has no encryption context to check")]
    NoContext {
        /// The object.
        uri: String,
    },
    /// A plaintext range was asked of a v1 object, which cannot serve one.
    #[error("{uri} is a v1 object: a plaintext range needs a v2 object")]
    RangeNeedsV2 {
        /// The object.
        uri: String,
    },
    /// The plaintext range reaches outside the plaintext.
    #[error("the range {range} is outside the plaintext ({plaintext_len} bytes)")]
    RangeOutside {
        /// The range asked for.
        range: crate::PlainRange,
        /// The object's plaintext length.
        plaintext_len: u64,
    },
    /// The object changed while it downloaded (another ETag or version,
    /// or deleted): the download stopped before it could mix two versions.
    #[error("{uri} changed during the download (replaced or deleted)")]
    ObjectChanged {
        /// The object.
        uri: String,
    },
    /// Decryption or authentication failed: the object is corrupted or was
    /// encrypted with another key.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The options cannot make an object (e.g. an encryption context too
    /// long for the header).
    #[error("cannot build the header: {0}")]
    Header(HeaderError),
    /// The key source (KMS) failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An S3 request failed.
    #[error(transparent)]
    S3(S3Error),
    /// Reading the input or writing the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The object's data key is wrapped by another keyring than the
    /// transfer's key source (a key-file object read with KMS, or the
    /// reverse).
    #[error("{uri}'s data key is wrapped {}, not {}", keyring_name(*recorded), keyring_name(*asked))]
    WrongKeyring {
        /// The object.
        uri: String,
        /// The keyring the object records.
        recorded: Keyring,
        /// The keyring of the transfer's key source, asked to unwrap it.
        asked: Keyring,
    },
    /// What was asked cannot be done with this object or key source (a
    /// key file makes v2 objects with a fresh data key only; an S3
    /// Encryption Client object wrapped with a client-side key; a range of
    /// a CBC object; a V3 object over GCM's length limit).
    #[error("{0}")]
    Unsupported(String),
    /// The object's S3 Encryption Client metadata (or instruction file) is
    /// invalid, or not what the policy admits (legacy CBC without
    /// `allow_legacy`).
    #[error("invalid S3 Encryption Client metadata: {0}")]
    S3ec(#[source] atrest_format::s3ec::S3ecError),
    /// An S3 Encryption Client object's stored context lacks a pair the
    /// caller expects (or the caller named a reserved key).
    #[error("{0}")]
    S3ecContext(String),
    /// The instruction file (`KEY.instruction`) an object's metadata points
    /// to could not be read.
    #[error("cannot read the instruction file {uri}")]
    InstructionFile {
        /// The instruction file.
        uri: String,
        /// Why.
        #[source]
        source: S3Error,
    },
    /// The input changed while it was read: its length (declared with
    /// [`Upload::input_len`](crate::Upload::input_len)), or what
    /// [`Upload::unchanged_input`](crate::Upload::unchanged_input) checks.
    #[error("the input changed while it was read")]
    InputChanged,
    /// The upload was aborted through its handle.
    #[error("the upload was aborted")]
    Aborted,
    /// The upload was aborted through its handle after its completion had
    /// been sent: the object is written, whole.
    #[error("the upload was aborted after it completed: the object is written")]
    AbortedAfterCompletion,
    /// [`UploadHandle::join`](crate::UploadHandle::join) was called again
    /// after it had returned the upload's failure.
    #[error("the upload failed: an earlier join returned its error")]
    JoinedAfterFailure,
    /// The user metadata asked for leaves no room for atrest's own entries
    /// (or the S3 Encryption Client's envelope) within S3's 2 KB limit.
    #[error("the user metadata takes {used} bytes (keys and values), more than the {room} bytes that S3's 2 KB limit leaves beside the object's own entries")]
    MetadataTooLarge {
        /// Bytes the user's entries take.
        used: usize,
        /// Bytes they may take.
        room: usize,
    },
    /// The S3 Encryption Client's envelope (its encryption context, which it
    /// keeps whole in the metadata, and wrapped key) does not fit in S3's
    /// 2 KB of user metadata by itself.
    #[error("the S3 Encryption Client's envelope (its encryption context and wrapped data key) takes {taken} bytes of metadata, more than S3's 2 KB limit: give a smaller --context")]
    EnvelopeTooLarge {
        /// Bytes the envelope and atrest's own entries take.
        taken: usize,
    },
    /// A user metadata entry has a name that atrest or the S3 Encryption
    /// Client uses for its own ([`crate::metadata::RESERVED_PREFIXES`]).
    #[error("the metadata name `{key}` is reserved: names starting atrest- or x-amz- are atrest's and the S3 Encryption Client's own")]
    ReservedMetadata {
        /// The name given.
        key: String,
    },
}

impl From<S3Error> for Error {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::Changed { uri, .. } => Error::ObjectChanged { uri },
            e => Error::S3(e),
        }
    }
}

fn keyring_name(keyring: Keyring) -> &'static str {
    match keyring {
        Keyring::Kms => "by KMS",
        Keyring::KeyFile => "under a key file",
        _ => "by an unknown keyring",
    }
}

fn context_mismatch(key: &str, expected: &str, found: Option<&str>) -> String {
    use crate::escape;
    let (key, expected) = (escape(key), escape(expected));
    match found {
        Some(found) => format!(
            "the encryption context has {key}={}, expected {key}={expected}",
            escape(found)
        ),
        None => format!("the encryption context lacks {key}={expected}"),
    }
}

/// Whether an operation that failed may succeed if tried again: as S3
/// Batch Operations' `TemporaryFailure` and `PermanentFailure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Throttling, a server or network failure, an object replaced
    /// meanwhile: another attempt may succeed.
    Temporary,
    /// The object, the key or the permissions are what they are: trying
    /// again gives the same answer.
    Permanent,
}

impl Retry {
    /// The retry class of an S3 failure ([`S3Error::is_transient`]).
    pub fn of_s3(e: &S3Error) -> Retry {
        match e.is_transient() {
            true => Retry::Temporary,
            false => Retry::Permanent,
        }
    }

    /// The retry class of a key source's failure (KMS: by its error; any
    /// other source's failures are taken as permanent).
    pub fn of_key(e: &KeyError) -> Retry {
        e.downcast_ref::<KmsError>()
            .map_or(Retry::Permanent, Retry::of_kms)
    }

    /// The retry class of a KMS failure ([`KmsError::is_transient`]).
    pub fn of_kms(e: &KmsError) -> Retry {
        match e.is_transient() {
            true => Retry::Temporary,
            false => Retry::Permanent,
        }
    }

    /// The retry class of a transfer's failure.
    pub fn of(e: &Error) -> Retry {
        match e {
            Error::S3(e) => Retry::of_s3(e),
            Error::Key(e) => Retry::of_key(e),
            Error::InstructionFile { source, .. } => Retry::of_s3(source),
            Error::ObjectChanged { .. } => Retry::Temporary,
            // A read that broke carries its S3 failure; other I/O (a full
            // disk) is not fixed by trying again.
            Error::Io(io) => io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<S3Error>())
                .map_or(Retry::Permanent, Retry::of_s3),
            _ => Retry::Permanent,
        }
    }
}
