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
    /// A conditional request found another version of the object than the
    /// one read (HTTP 412): someone wrote it meanwhile.
    #[error("{uri} changed while atrest was working on it ({op}: precondition failed)")]
    Changed {
        /// The S3 operation.
        op: &'static str,
        /// The object's URI.
        uri: String,
    },
    /// A create-only upload ([`crate::Uploader::create_only`]) found an
    /// object at its key (HTTP 412): nothing was written.
    #[error("{uri} exists: not overwritten")]
    Exists {
        /// The object's URI.
        uri: String,
    },
    /// The object is archived (S3 Glacier Flexible Retrieval or Deep
    /// Archive, or an Intelligent-Tiering archive tier) and not restored:
    /// S3 neither reads nor copies it until it is.
    #[error("{uri} is archived: restore it first (aws s3api restore-object)")]
    Archived {
        /// The object's URI (a copy's source).
        uri: String,
    },
    /// The bucket is in another region than the client's, and the request
    /// could not be sent again there (its body streamed; see
    /// [`crate::follow_bucket_regions`]), or the client does not follow
    /// redirects.
    #[error("bucket `{bucket}` is in region {region}, not in the one asked: pass that region (--region {region})")]
    OtherRegion {
        /// The bucket name.
        bucket: String,
        /// Its region, as S3 named it.
        region: String,
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
    /// Whether the same request may succeed later: throttling, a 5xx, a
    /// timeout, a broken connection or body ([`atrest_sdk_error::is_transient`]),
    /// or an object that changed under the request (reading it again sees
    /// one version). Not found, access denied and bad credentials are not.
    pub fn is_transient(&self) -> bool {
        match self {
            S3Error::Changed { .. } | S3Error::Body { .. } => true,
            S3Error::Request { source, .. } => source
                .downcast_ref::<atrest_sdk_error::Failure>()
                .is_some_and(|f| f.transient),
            _ => false,
        }
    }

    /// [`S3Error::from_sdk`] of a copy from `from` to `to`: an archived
    /// or missing object is the source (a copy's destination need not
    /// exist).
    pub(crate) fn from_copy<E>(
        op: &'static str,
        from: &S3Uri,
        to: &S3Uri,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match Self::from_sdk(op, to, err) {
            S3Error::Archived { .. } => S3Error::Archived {
                uri: from.to_string(),
            },
            S3Error::NoSuchKey { .. } => S3Error::NoSuchKey {
                uri: from.to_string(),
            },
            other => other,
        }
    }

    pub(crate) fn from_sdk<E>(op: &'static str, uri: &S3Uri, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Self::from_sdk_on(op, uri.bucket(), uri.to_string(), err)
    }

    /// [`S3Error::from_sdk`] for a request on `uri` as messages name it
    /// (`s3://` for the account's bucket list), in `bucket`.
    pub(crate) fn from_sdk_on<E>(
        op: &'static str,
        bucket: &str,
        uri: String,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(reason) = atrest_sdk_error::credentials_failure(&err) {
            return S3Error::NoCredentials(reason);
        }
        let status = err.raw_response().map(|r| r.status().as_u16());
        // (Many responses name the bucket's region; these say it is not the
        // one asked. A HEAD's redirect has no body, so no code.)
        let redirect = match err.code() {
            Some(code) => matches!(
                code,
                "PermanentRedirect"
                    | "AuthorizationHeaderMalformed"
                    | "IllegalLocationConstraintException"
            ),
            None => matches!(status, Some(301 | 307)),
        };
        if let Some(region) = err
            .raw_response()
            .filter(|_| redirect)
            .and_then(crate::regions::redirect_region)
        {
            return S3Error::OtherRegion {
                bucket: bucket.to_owned(),
                region,
            };
        }
        match err.code() {
            Some("NoSuchBucket") => S3Error::NoSuchBucket {
                bucket: bucket.to_owned(),
            },
            Some("NoSuchKey" | "NotFound") => S3Error::NoSuchKey { uri },
            Some("InvalidObjectState" | "ObjectNotInActiveTierError") => S3Error::Archived { uri },
            Some("PreconditionFailed") => S3Error::Changed { op, uri },
            Some(
                code @ ("AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"),
            ) => S3Error::AccessDenied {
                op,
                uri,
                code: code.to_owned(),
            },
            // HEAD responses carry no error body, only the status.
            None if status == Some(404) => S3Error::NoSuchKey { uri },
            None if status == Some(412) => S3Error::Changed { op, uri },
            None if status == Some(403) => S3Error::AccessDenied {
                op,
                uri,
                code: "403 Forbidden".to_owned(),
            },
            _ => S3Error::Request {
                op,
                uri,
                source: Box::new(atrest_sdk_error::Failure::of("S3", &err)),
            },
        }
    }
}
