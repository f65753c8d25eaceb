//! Exit codes, and the mapping from errors to them.

use atrest_crypto::DecryptError;
use atrest_format::HeaderError;
use atrest_kms::KmsError;
use atrest_s3::S3Error;

/// Process exit codes (documented in `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Runtime = 1,
    Usage = 2,
    NotFoundOrDenied = 3,
    Untrusted = 4,
}

/// An error raised by the CLI itself, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

/// The object's bytes are not an atrest object.
#[derive(Debug, thiserror::Error)]
pub enum NotAtrest {
    #[error("not an atrest object")]
    BadHeader(#[from] HeaderError),
    #[error("not an atrest object (only {0} bytes, too short for a header)")]
    TooShort(u64),
}

/// Picks the exit code for an error by the most specific cause it carries.
pub fn exit_code(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.exit;
        }
        if cause.is::<DecryptError>() || cause.is::<NotAtrest>() {
            return Exit::Untrusted;
        }
        if let Some(e) = cause.downcast_ref::<KmsError>() {
            return match e {
                KmsError::KeyNotFound(_)
                | KmsError::KeyDisabled(_)
                | KmsError::AccessDenied(_)
                | KmsError::DecryptDenied(_)
                | KmsError::NoCredentials => Exit::NotFoundOrDenied,
                KmsError::InvalidCiphertext => Exit::Untrusted,
                _ => Exit::Runtime,
            };
        }
        if let Some(e) = cause.downcast_ref::<S3Error>() {
            return match e {
                S3Error::NoSuchBucket { .. }
                | S3Error::NoSuchKey { .. }
                | S3Error::AccessDenied { .. }
                | S3Error::NoCredentials => Exit::NotFoundOrDenied,
                _ => Exit::Runtime,
            };
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) {
                return Exit::NotFoundOrDenied;
            }
        }
    }
    Exit::Runtime
}
