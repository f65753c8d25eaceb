use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::S3Uri;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An S3 operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The bucket does not exist.
    #[error("bucket `{bucket}` does not exist")]
    NoSuchBucket {
        /// The bucket name.
        bucket: String,
    },
    /// The object does not exist.
    #[error("object {uri} does not exist")]
    NoSuchKey {
        /// The object's URI.
        uri: String,
    },
    /// Credentials were refused or lack the permission.
    #[error("{op} on {uri}: access denied ({code})")]
    AccessDenied {
        /// The S3 operation.
        op: &'static str,
        /// The object's URI.
        uri: String,
        /// The S3 error code.
        code: String,
    },
    /// No AWS credentials could be found.
    #[error("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`)")]
    NoCredentials,
    /// Any other failure of an S3 request.
    #[error("{op} on {uri} failed")]
    Request {
        /// The S3 operation.
        op: &'static str,
        /// The object's URI.
        uri: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// Reading an object's body failed part-way.
    #[error("reading {uri} failed")]
    Body {
        /// The object's URI.
        uri: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
}

impl S3Error {
    pub(crate) fn from_sdk<E>(op: &'static str, uri: &S3Uri, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if is_missing_credentials(&err) {
            return S3Error::NoCredentials;
        }
        let status = err.raw_response().map(|r| r.status().as_u16());
        match err.code() {
            Some("NoSuchBucket") => S3Error::NoSuchBucket {
                bucket: uri.bucket().to_owned(),
            },
            Some("NoSuchKey" | "NotFound") => S3Error::NoSuchKey {
                uri: uri.to_string(),
            },
            Some(
                code @ ("AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"),
            ) => S3Error::AccessDenied {
                op,
                uri: uri.to_string(),
                code: code.to_owned(),
            },
            // HEAD responses carry no error body, only the status.
            None if status == Some(404) => S3Error::NoSuchKey {
                uri: uri.to_string(),
            },
            None if status == Some(403) => S3Error::AccessDenied {
                op,
                uri: uri.to_string(),
                code: "403 Forbidden".to_owned(),
            },
            _ => S3Error::Request {
                op,
                uri: uri.to_string(),
                source: detail(&err).into(),
            },
        }
    }
}

/// One short line for an unmapped failure: the service's code and message,
/// or the innermost cause of a connection failure. The SDK's
/// `DisplayErrorContext` repeats every layer of the error and runs to
/// several hundred characters.
pub(crate) fn detail<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err {
        SdkError::ServiceError(_) if err.code().is_some() => {
            let code = err.code().unwrap_or_default();
            let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            match err.message() {
                Some(message) if !message.is_empty() => format!("{code}: {message}{status}"),
                _ => format!("{code}{status}"),
            }
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => match status {
            Some(status) => format!("S3 sent a reply that could not be read (HTTP {status})"),
            None => "S3 sent a reply that could not be read".to_owned(),
        },
        SdkError::TimeoutError(_) => "the request timed out".to_owned(),
        SdkError::DispatchFailure(_) => {
            let mut cause: &dyn std::error::Error = err;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("could not reach S3: {cause}")
        }
        _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
    }
}

/// Whether the SDK failed before sending because no credentials resolved.
pub(crate) fn is_missing_credentials<E, R>(err: &SdkError<E, R>) -> bool
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(err));
            text.contains("no credentials")
                || text.contains("credentials provider was not enabled")
                || text.contains("failed to load credentials")
        }
        _ => false,
    }
}
