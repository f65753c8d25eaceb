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
    /// No usable AWS credentials: none found, or their provider failed
    /// (why, in one line).
    #[error("no usable AWS credentials: {0}")]
    NoCredentials(String),
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
    /// The object changed since a download began (its ETag or version is
    /// not the one the download's first GET read).
    #[error("{uri} changed during the download")]
    Changed {
        /// The object's URI.
        uri: String,
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
        if let Some(reason) = atrest_sdk_error::credentials_failure(&err) {
            return S3Error::NoCredentials(reason);
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
                source: atrest_sdk_error::describe("S3", &err).into(),
            },
        }
    }
}
