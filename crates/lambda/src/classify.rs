//! Which failures Batch Operations should retry.

use atrest_kms::KmsError;
use atrest_s3::S3Error;
use atrest_transfer::rewrap::RewrapError;
use atrest_transfer::upgrade::UpgradeError;
use atrest_transfer::verify::VerifyError;
use atrest_transfer::Retry;

use crate::event::ResultCode;

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// An S3 request failed.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// A KMS request failed.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// An upload or download failed.
    #[error(transparent)]
    Transfer(#[from] atrest_transfer::Error),
    /// A rewrap failed.
    #[error(transparent)]
    Rewrap(#[from] RewrapError),
    /// An object did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// An upgrade failed (the original is unchanged).
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    /// The object or the job's arguments rule the task out as they are
    /// (not an atrest object, too large for this function, bad arguments,
    /// an operation this build lacks).
    #[error("{0}")]
    Refused(String),
    /// The invocation's time ran out before the task finished (a stalled
    /// endpoint, or too much work for one invocation): Batch retries it.
    #[error("not finished within the invocation's time (Batch retries it)")]
    TimedOut,
}

/// The result code a failure deserves: [`ResultCode::TemporaryFailure`]
/// (Batch Operations retries the task) for throttling, 5xx answers,
/// timeouts, broken connections and an object that changed under the task;
/// [`ResultCode::PermanentFailure`] for everything else (not found, access
/// denied, bad credentials, a KMS key that is disabled or refuses, not an
/// atrest object, a corrupted one). Unknown failures count as permanent: a
/// retry storm over millions of objects costs more than a report line.
pub fn classify(error: &TaskError) -> ResultCode {
    let transient = match error {
        TaskError::S3(e) => e.is_transient(),
        TaskError::Kms(e) => e.is_transient(),
        TaskError::Transfer(e) => transfer_is_transient(e),
        TaskError::Rewrap(e) => match e {
            RewrapError::S3(e) => e.is_transient(),
            RewrapError::Kms { source, .. } => source.is_transient(),
            _ => false,
        },
        TaskError::Verify(e) => e.retry() == Retry::Temporary,
        TaskError::Upgrade(e) => e.retry() == Retry::Temporary,
        TaskError::Refused(_) => false,
        TaskError::TimedOut => true,
    };
    match transient {
        true => ResultCode::TemporaryFailure,
        false => ResultCode::PermanentFailure,
    }
}

fn transfer_is_transient(e: &atrest_transfer::Error) -> bool {
    use atrest_transfer::Error;
    match e {
        Error::S3(e) => e.is_transient(),
        Error::ObjectChanged { .. } => true,
        Error::Key(e) => e
            .downcast_ref::<KmsError>()
            .is_some_and(KmsError::is_transient),
        // The upload's input is the source object's body: a read that broke
        // carries the S3 failure; other I/O (a full /tmp) is not ours to fix.
        Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<S3Error>())
            .is_some_and(S3Error::is_transient),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atrest_transfer::KeyError;

    fn request(transient: bool) -> S3Error {
        S3Error::Request {
            op: "PutObject",
            uri: "s3://b/k".into(),
            source: Box::new(atrest_sdk_error::Failure {
                line: "SlowDown: Please reduce your request rate (HTTP 503)".into(),
                transient,
            }),
        }
    }

    fn kms_other(transient: bool) -> KmsError {
        KmsError::Other {
            op: "GenerateDataKey",
            detail: "ThrottlingException: Rate exceeded (HTTP 400)".into(),
            transient,
        }
    }

    use ResultCode::{PermanentFailure as Permanent, TemporaryFailure as Temporary};

    #[test]
    fn throttling_5xx_timeouts_and_changes_are_retried() {
        for e in [
            TaskError::S3(request(true)),
            TaskError::S3(S3Error::Changed {
                op: "GetObject",
                uri: "s3://b/k".into(),
            }),
            TaskError::S3(S3Error::Body {
                uri: "s3://b/k".into(),
                source: "connection reset".into(),
            }),
            TaskError::Kms(kms_other(true)),
            TaskError::Transfer(atrest_transfer::Error::Key(KeyError::new(kms_other(true)))),
            TaskError::Transfer(atrest_transfer::Error::S3(request(true))),
            TaskError::Transfer(atrest_transfer::Error::ObjectChanged { uri: "u".into() }),
            TaskError::Transfer(atrest_transfer::Error::Io(std::io::Error::other(request(
                true,
            )))),
            TaskError::Rewrap(RewrapError::S3(request(true))),
            TaskError::Rewrap(RewrapError::Kms {
                uri: "u".into(),
                to_key: "k".into(),
                source: kms_other(true),
            }),
        ] {
            assert_eq!(classify(&e), Temporary, "{e:?}");
        }
    }

    #[test]
    fn missing_denied_untrusted_and_unknown_failures_are_permanent() {
        for e in [
            TaskError::S3(S3Error::NoSuchKey { uri: "u".into() }),
            TaskError::S3(S3Error::NoSuchBucket { bucket: "b".into() }),
            TaskError::S3(S3Error::AccessDenied {
                op: "GetObject",
                uri: "u".into(),
                code: "AccessDenied".into(),
            }),
            TaskError::S3(S3Error::NoCredentials("none found".into())),
            TaskError::S3(request(false)),
            TaskError::Kms(KmsError::KeyNotFound("alias/gone".into())),
            TaskError::Kms(KmsError::KeyDisabled("k".into())),
            TaskError::Kms(KmsError::AccessDenied("k".into())),
            TaskError::Kms(KmsError::CredentialsRejected("k".into())),
            TaskError::Kms(KmsError::InvalidCiphertext),
            TaskError::Kms(kms_other(false)),
            TaskError::Transfer(atrest_transfer::Error::TooShort(3)),
            TaskError::Transfer(atrest_transfer::Error::Key(KeyError::new(
                KmsError::DecryptDenied("k".into()),
            ))),
            TaskError::Transfer(atrest_transfer::Error::Io(std::io::Error::other(
                "disk full",
            ))),
            TaskError::Rewrap(RewrapError::NotAtrest {
                uri: "u".into(),
                reason: "bad magic".into(),
            }),
            TaskError::Rewrap(RewrapError::S3(S3Error::NoSuchKey { uri: "u".into() })),
            TaskError::Refused("not an atrest object".into()),
        ] {
            assert_eq!(classify(&e), Permanent, "{e:?}");
        }
    }
}
