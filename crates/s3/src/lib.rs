//! Thin adapter over `aws-sdk-s3` for atrest: S3 URIs, streaming multipart
//! uploads that never leave orphaned parts, and streaming downloads.
//!
//! The adapter takes a built [`aws_sdk_s3::Client`]; it never loads AWS
//! configuration itself, so callers (and tests) decide how it is built.
//!
//! ```no_run
//! # async fn example() -> Result<(), atrest_s3::S3Error> {
//! use atrest_s3::{S3Uri, UploadOptions, Uploader};
//!
//! let config = aws_config::load_from_env().await;
//! let client = aws_sdk_s3::Client::new(&config);
//! let uri = S3Uri::parse("s3://my-bucket/big.bin").unwrap();
//! let mut upload = Uploader::new(client.clone(), uri.clone(), UploadOptions::default());
//! for chunk in [&b"many "[..], &b"chunks"[..]] {
//!     if let Err(e) = upload.write(chunk).await {
//!         upload.abort().await; // no orphaned parts
//!         return Err(e);
//!     }
//! }
//! upload.finish().await?;
//! let head = atrest_s3::get_range(&client, &uri, 0, 3).await?;
//! assert_eq!(&head.bytes[..], b"many");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod object;
mod upload;
mod uri;

pub use error::S3Error;
pub use object::{get_tags, head, put_replacing, ObjectHead, Properties, Replacement};
pub use upload::{UploadOptions, Uploader, MIN_PART_SIZE};
pub use uri::{S3Uri, S3UriError};

use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};

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

/// Bytes fetched with a ranged GET, and the object's total length.
#[derive(Debug)]
pub struct Fetched {
    /// The bytes of the range (fewer than asked for near the object's end).
    pub bytes: Bytes,
    /// The whole object's length, from `Content-Range`.
    pub object_len: u64,
    /// The object's user metadata (`x-amz-meta-*`, without the prefix).
    pub metadata: std::collections::HashMap<String, String>,
    /// When the object was written.
    pub last_modified: Option<aws_sdk_s3::primitives::DateTime>,
}

/// Fetches bytes `start..=end` of `uri` (clipped to the object's end) and
/// learns the object's length in the same request.
pub async fn get_range(
    client: &Client,
    uri: &S3Uri,
    start: u64,
    end: u64,
) -> Result<Fetched, S3Error> {
    let (bytes, fetched) = get_range_into(client, uri, start, end, BytesMut::new()).await?;
    Ok(Fetched {
        bytes: bytes.freeze(),
        ..fetched
    })
}

/// As [`get_range`], only from the version of the object whose ETag is
/// `etag` ([`S3Error::Changed`] if it is another by now).
pub async fn get_range_matching(
    client: &Client,
    uri: &S3Uri,
    start: u64,
    end: u64,
    etag: &str,
) -> Result<Fetched, S3Error> {
    let (bytes, fetched) =
        fetch_range(client, uri, (start, end), Some(etag), BytesMut::new()).await?;
    Ok(Fetched {
        bytes: bytes.freeze(),
        ..fetched
    })
}

/// As [`get_range`], appending the bytes to `buf` (cleared first) so that a
/// caller can reuse its buffers; the returned `Fetched::bytes` is empty.
pub async fn get_range_into(
    client: &Client,
    uri: &S3Uri,
    start: u64,
    end: u64,
    buf: BytesMut,
) -> Result<(BytesMut, Fetched), S3Error> {
    fetch_range(client, uri, (start, end), None, buf).await
}

async fn fetch_range(
    client: &Client,
    uri: &S3Uri,
    (start, end): (u64, u64),
    if_match: Option<&str>,
    mut buf: BytesMut,
) -> Result<(BytesMut, Fetched), S3Error> {
    buf.clear();
    let result = client
        .get_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .range(format!("bytes={start}-{end}"))
        .set_if_match(if_match.map(str::to_owned))
        .send()
        .await;
    let out = match result {
        Ok(out) => out,
        // A range starting at 0 is unsatisfiable only for an empty object.
        Err(e) if start == 0 && e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
            let empty = Fetched {
                bytes: Bytes::new(),
                object_len: 0,
                metadata: Default::default(),
                last_modified: None,
            };
            return Ok((buf, empty));
        }
        Err(e) => return Err(S3Error::from_sdk("GetObject", uri, e)),
    };
    let object_len = out
        .content_range()
        .and_then(|r| r.rsplit_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .or_else(|| out.content_length().and_then(|n| u64::try_from(n).ok()))
        .unwrap_or(0);
    let metadata = out.metadata().cloned().unwrap_or_default();
    let last_modified = out.last_modified().copied();
    // One buffer of the range's size, filled as chunks arrive: collecting
    // the chunks and joining them would hold (and copy) the range twice.
    // The server's length is trusted only up to what was asked for.
    let asked = end.saturating_sub(start).saturating_add(1);
    let sent = out
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    buf.reserve(usize::try_from(sent.min(asked)).unwrap_or(0));
    let mut bytes = buf;
    let mut body = out.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| S3Error::Body {
            uri: uri.to_string(),
            source: Box::new(e),
        })?;
        if (bytes.len() + chunk.len()) as u64 > asked {
            return Err(S3Error::Body {
                uri: uri.to_string(),
                source: format!("more than the {asked} bytes asked for").into(),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    let fetched = Fetched {
        bytes: Bytes::new(),
        object_len,
        metadata,
        last_modified,
    };
    Ok((bytes, fetched))
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

/// An object found by [`list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Every object whose key starts with `prefix`, following
/// ListObjectsV2 continuation tokens (1000 keys per page) to the end.
///
/// `prefix` names the bucket and the key prefix (used as is: include the
/// trailing `/` to list a "directory"). Keys are listed URL-encoded
/// (`EncodingType=url`) and decoded here, as the AWS CLI does: a key may
/// hold characters (control characters such as ESC) that XML 1.0 cannot
/// carry, and such a reply would not parse.
pub async fn list(client: &Client, prefix: &S3Uri) -> Result<Vec<Listed>, S3Error> {
    let mut pages = client
        .list_objects_v2()
        .bucket(prefix.bucket())
        .prefix(prefix.key())
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| S3Error::from_sdk("ListObjectsV2", prefix, e))?;
        // A server that ignores EncodingType says so by not echoing it.
        let encoded = page.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        for object in page.contents() {
            if let Some(key) = object.key() {
                let key = match encoded {
                    true => url_decode(key).ok_or_else(|| S3Error::Body {
                        uri: prefix.to_string(),
                        source: format!("a listed key is not URL-encoded UTF-8: {key:?}").into(),
                    })?,
                    false => key.to_owned(),
                };
                found.push(Listed {
                    key,
                    size: object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                });
            }
        }
    }
    Ok(found)
}

/// Decodes a key listed with `EncodingType=url`: S3 form-encodes it (a
/// space as `+`, a `+` as `%2B`), so `+` is a space, as botocore's
/// `unquote_plus`. `None` if the bytes are not UTF-8.
fn url_decode(key: &str) -> Option<String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_keys_decode_as_the_aws_cli_does() {
        assert_eq!(
            url_decode("z1/esc%1B%5B31mred").as_deref(),
            Some("z1/esc\u{1b}[31mred")
        );
        assert_eq!(url_decode("a+b%2Bc%20d").as_deref(), Some("a b+c d"));
        assert_eq!(url_decode("caf%C3%A9").as_deref(), Some("caf\u{e9}"));
        assert_eq!(
            url_decode("plain/key.txt").as_deref(),
            Some("plain/key.txt")
        );
        assert_eq!(url_decode("bad%FF"), None);
    }
}
