//! Thin adapter over `aws-sdk-s3` for atrest: S3 URIs, streaming multipart
//! uploads that never leave orphaned parts, and streaming downloads.
//!
//! The adapter takes a built [`aws_sdk_s3::Client`]; it never loads AWS
//! configuration itself, so callers (and tests) decide how it is built.
#![deny(missing_docs)]

mod error;
mod upload;
mod uri;

pub use error::S3Error;
pub use upload::{UploadOptions, Uploader, MIN_PART_SIZE};
pub use uri::{S3Uri, S3UriError};

use aws_sdk_s3::Client;
use bytes::Bytes;

/// A streaming object download.
#[derive(Debug)]
pub struct Download {
    uri: S3Uri,
    body: aws_sdk_s3::primitives::ByteStream,
    /// Total length of the object (or of the requested range), if S3 said.
    pub content_length: Option<u64>,
}

impl Download {
    /// The next chunk of the body, or `None` at its end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, S3Error>> {
        let chunk = self.body.next().await?;
        Some(chunk.map_err(|e| S3Error::Body {
            uri: self.uri.to_string(),
            source: Box::new(e),
        }))
    }
}

/// Starts downloading `uri`; `range` is an HTTP byte range (`bytes=A-B`).
pub async fn get(client: &Client, uri: &S3Uri, range: Option<String>) -> Result<Download, S3Error> {
    let out = client
        .get_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .set_range(range)
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("GetObject", uri, e))?;
    Ok(Download {
        uri: uri.clone(),
        content_length: out.content_length().and_then(|n| u64::try_from(n).ok()),
        body: out.body,
    })
}

/// The size of the object at `uri`, in bytes.
pub async fn object_len(client: &Client, uri: &S3Uri) -> Result<u64, S3Error> {
    let out = client
        .head_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("HeadObject", uri, e))?;
    Ok(out
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}
