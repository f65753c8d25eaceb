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
//! let head = atrest_s3::get_range(&client, &uri, atrest_s3::ByteRange::new(0, 3), None).await?;
//! assert_eq!(&head.bytes[..], b"many");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod interceptors;
mod object;
mod regions;
mod upload;
mod uri;

pub use error::S3Error;
pub use interceptors::{PageSize, RequesterPays};
pub use object::{
    copy_object, copy_object_replacing, delete, delete_every_version, delete_if_match, get_tags,
    head, put_replacing, replace_properties, ObjectHead, Properties, Replacement,
};
pub use regions::{follow_bucket_regions, BucketRegions};
pub use upload::{Abandoned, UploadOptions, Uploader, MIN_PART_SIZE};
pub use uri::{S3Uri, S3UriError};

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};

/// A byte range of an object, inclusive as in an HTTP `Range` header:
/// `start..=end`, or from `start` to the object's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte (inclusive), or `None` for the object's end.
    pub end: Option<u64>,
}

impl ByteRange {
    /// Bytes `start..=end_inclusive`.
    pub fn new(start: u64, end_inclusive: u64) -> Self {
        ByteRange {
            start,
            end: Some(end_inclusive),
        }
    }

    /// Bytes from `start` to the end.
    pub fn from(start: u64) -> Self {
        ByteRange { start, end: None }
    }

    /// How many bytes the range asks for (`u64::MAX` if open-ended).
    pub fn len(&self) -> u64 {
        match self.end {
            Some(end) => end.saturating_sub(self.start).saturating_add(1),
            None => u64::MAX,
        }
    }

    /// Whether the range holds no byte (it ends before it starts).
    pub fn is_empty(&self) -> bool {
        self.end.is_some_and(|end| end < self.start)
    }

    /// The `Range` header's value.
    fn header(&self) -> String {
        format!("bytes={self}")
    }
}

/// `START-END` or `START-`.
impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end {
            Some(end) => write!(f, "{}-{end}", self.start),
            None => write!(f, "{}-", self.start),
        }
    }
}

/// Which version of an object a GET read. Later GETs of one download pass
/// it back ([`get`]'s `pin`), so that they read the same bytes or fail with
/// [`S3Error::Changed`]: never a mix of two versions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The object's ETag, sent as `If-Match`.
    pub etag: Option<String>,
    /// Its version id where the bucket is versioned, sent as `versionId`.
    pub version_id: Option<String>,
}

impl ObjectVersion {
    /// The version whose ETag is `etag` (as a HEAD or earlier GET answered).
    pub fn with_etag(etag: &str) -> Self {
        ObjectVersion {
            etag: Some(etag.to_owned()),
            version_id: None,
        }
    }

    fn of(etag: Option<&str>, version_id: Option<&str>) -> Self {
        ObjectVersion {
            etag: etag.map(str::to_owned),
            // An unversioned bucket's objects have the version "null".
            version_id: version_id.filter(|v| *v != "null").map(str::to_owned),
        }
    }
}

/// A streaming object download.
#[derive(Debug)]
pub struct Download {
    uri: S3Uri,
    body: aws_sdk_s3::primitives::ByteStream,
    /// Total length of the object (or of the requested range), if S3 said.
    pub content_length: Option<u64>,
    /// The version read.
    pub version: ObjectVersion,
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

/// Starts downloading `range` of `uri`. With `pin`, only that version is
/// read: a changed object fails with [`S3Error::Changed`].
pub async fn get(
    client: &Client,
    uri: &S3Uri,
    range: ByteRange,
    pin: Option<&ObjectVersion>,
) -> Result<Download, S3Error> {
    let out = match send_get(client, uri, range, pin).await {
        Ok(out) => out,
        // A range starting at 0 is unsatisfiable only for an empty object
        // (S3 answers 416 to `bytes=0-` of one): its body is empty.
        Err(GetFailed::Unsatisfiable(_)) if range.start == 0 => {
            return Ok(Download {
                uri: uri.clone(),
                content_length: Some(0),
                version: pin.cloned().unwrap_or_default(),
                body: aws_sdk_s3::primitives::ByteStream::from_static(b""),
            })
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Download {
        uri: uri.clone(),
        content_length: out.content_length().and_then(|n| u64::try_from(n).ok()),
        version: ObjectVersion::of(out.e_tag(), out.version_id()),
        body: out.body,
    })
}

async fn send_get(
    client: &Client,
    uri: &S3Uri,
    range: ByteRange,
    pin: Option<&ObjectVersion>,
) -> Result<GetObjectOutput, GetFailed> {
    let pin = pin.cloned().unwrap_or_default();
    let result = client
        .get_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .range(range.header())
        .set_if_match(pin.etag.clone())
        .set_version_id(pin.version_id.clone())
        .send()
        .await;
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            return Err(match status {
                Some(412) => GetFailed::S3(S3Error::Changed {
                    op: "GetObject",
                    uri: uri.to_string(),
                }),
                Some(416) => GetFailed::Unsatisfiable(S3Error::from_sdk("GetObject", uri, e)),
                // The version read first is gone: deleted since, a change
                // as much as a replacement (not "no such object" of a
                // download part-way).
                Some(404) if pin.etag.is_some() => GetFailed::S3(S3Error::Changed {
                    op: "GetObject",
                    uri: uri.to_string(),
                }),
                _ => GetFailed::S3(S3Error::from_sdk("GetObject", uri, e)),
            });
        }
    };
    // A server that ignores If-Match must not hand over another version.
    if pin.etag.is_some() && out.e_tag() != pin.etag.as_deref() {
        return Err(GetFailed::S3(S3Error::Changed {
            op: "GetObject",
            uri: uri.to_string(),
        }));
    }
    Ok(out)
}

/// Why a GET failed: a range past the object's end is told apart.
enum GetFailed {
    Unsatisfiable(S3Error),
    S3(S3Error),
}

impl From<GetFailed> for S3Error {
    fn from(e: GetFailed) -> Self {
        match e {
            GetFailed::Unsatisfiable(e) | GetFailed::S3(e) => e,
        }
    }
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
    /// The version read: pin later GETs of the same download to it.
    pub version: ObjectVersion,
}

/// Fetches `range` of `uri` (clipped to the object's end) whole, and learns
/// the object's length in the same request; `pin` as for [`get`].
pub async fn get_range(
    client: &Client,
    uri: &S3Uri,
    range: ByteRange,
    pin: Option<&ObjectVersion>,
) -> Result<Fetched, S3Error> {
    let out = match send_get(client, uri, range, pin).await {
        Ok(out) => out,
        // A range starting at 0 is unsatisfiable only for an empty object.
        Err(GetFailed::Unsatisfiable(_)) if range.start == 0 => {
            return Ok(Fetched {
                bytes: Bytes::new(),
                object_len: 0,
                metadata: Default::default(),
                last_modified: None,
                version: pin.cloned().unwrap_or_default(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let object_len = out
        .content_range()
        .and_then(|r| r.rsplit_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .or_else(|| out.content_length().and_then(|n| u64::try_from(n).ok()))
        .unwrap_or(0);
    let metadata = out.metadata().cloned().unwrap_or_default();
    let last_modified = out.last_modified().copied();
    let version = ObjectVersion::of(out.e_tag(), out.version_id());
    // One buffer of the range's size, filled as chunks arrive: collecting
    // the chunks and joining them would hold (and copy) the range twice.
    // The server's length is trusted only up to what was asked for.
    let asked = range.len();
    let sent = out
        .content_length()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let mut bytes = BytesMut::with_capacity(usize::try_from(sent.min(asked)).unwrap_or(0));
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
    Ok(Fetched {
        bytes: bytes.freeze(),
        object_len,
        metadata,
        last_modified,
        version,
    })
}

/// An object found by [`list`].
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written (S3 keeps whole seconds).
    pub last_modified: Option<aws_sdk_s3::primitives::DateTime>,
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
    Ok(list_pages(client, prefix, None).await?.objects)
}

/// One level under a prefix, as `aws s3 ls` without `--recursive` asks
/// for it: the objects whose key has no `/` after the prefix, and the
/// distinct "directories" below it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Level {
    /// The objects of this level (a folder marker named as the prefix
    /// among them).
    pub objects: Vec<Listed>,
    /// The key prefixes up to the next `/` after `prefix` (S3's common
    /// prefixes), each ending in `/`.
    pub prefixes: Vec<String>,
}

/// [`list`] with delimiter `/`: S3 sends one entry per "directory" instead
/// of every key beneath it, so a bucket's top level lists in one request
/// however many objects it holds.
pub async fn list_level(client: &Client, prefix: &S3Uri) -> Result<Level, S3Error> {
    list_pages(client, prefix, Some("/")).await
}

async fn list_pages(
    client: &Client,
    prefix: &S3Uri,
    delimiter: Option<&str>,
) -> Result<Level, S3Error> {
    let mut pages = client
        .list_objects_v2()
        .bucket(prefix.bucket())
        .prefix(prefix.key())
        .set_delimiter(delimiter.map(str::to_owned))
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .into_paginator()
        .send();
    let mut found = Level::default();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| S3Error::from_sdk("ListObjectsV2", prefix, e))?;
        // A server that ignores EncodingType says so by not echoing it.
        let encoded = page.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        let decode = |key: &str| match encoded {
            true => url_decode(key).ok_or_else(|| S3Error::Body {
                uri: prefix.to_string(),
                source: format!("a listed key is not URL-encoded UTF-8: {key:?}").into(),
            }),
            false => Ok(key.to_owned()),
        };
        for object in page.contents() {
            if let Some(key) = object.key() {
                found.objects.push(Listed {
                    key: decode(key)?,
                    size: object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                    last_modified: object.last_modified().copied(),
                });
            }
        }
        for common in page.common_prefixes() {
            if let Some(key) = common.prefix() {
                found.prefixes.push(decode(key)?);
            }
        }
    }
    Ok(found)
}

/// Decodes a key listed with `EncodingType=url`: S3 form-encodes it (a
/// space as `+`, a `+` as `%2B`), so `+` is a space, as botocore's
/// `unquote_plus`. `None` if the bytes are not UTF-8. The same decoding
/// serves the keys of S3 Inventory reports, Batch Operations manifests and
/// Batch Operations tasks (a `+` in a key is always sent as `%2B`).
pub fn url_decode(key: &str) -> Option<String> {
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

/// A bucket of the account, as `ListBuckets` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// When it was created, if the server says.
    pub created: Option<aws_sdk_s3::primitives::DateTime>,
}

/// Every bucket the credentials' account owns (`aws s3 ls` with no
/// argument), page by page, sorted by name.
pub async fn buckets(client: &Client) -> Result<Vec<Bucket>, S3Error> {
    let mut pages = client.list_buckets().into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| S3Error::from_sdk_on("ListBuckets", "", "s3://".into(), e))?;
        for bucket in page.buckets() {
            if let Some(name) = bucket.name() {
                found.push(Bucket {
                    name: name.to_owned(),
                    created: bucket.creation_date().copied(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}
