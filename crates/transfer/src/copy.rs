//! Copying an object from one S3 location to another inside S3, as it is:
//! an atrest object carries its wrapped data key and names no location,
//! so a copy decrypts as the original does, and no byte of it passes
//! through the client.
//!
//! Up to 5 GiB (or [`CopyOptions::multipart_threshold`]) one CopyObject;
//! above, a multipart upload whose parts are all UploadPartCopy, with the
//! source's metadata, standard headers and tags. Every request is
//! conditional on the ETag read first, so an object changed meanwhile
//! fails rather than mixing versions. An S3 Encryption Client object whose
//! envelope is in an instruction file takes that file along (first, so a
//! finished copy always decrypts).
//!
//! With [`CopyOptions::replace`] the copy gets new properties instead of
//! the source's (S3's REPLACE metadata directive, `aws s3 cp
//! --metadata-directive REPLACE`): the standard headers and user metadata
//! given, and of the source's metadata only what readers need (atrest's
//! and the S3 Encryption Client's entries, so it still decrypts).

use atrest_s3::{Replacement, S3Error, S3Uri};
use futures::StreamExt;

use crate::rewrap::copy_ranges;
use crate::Stop;

/// Why a copy ended by [`Stop`] failed (the source of its
/// [`S3Error::Request`]; see [`was_stopped`]).
#[derive(Debug, thiserror::Error)]
#[error("stopped before it completed")]
pub struct Stopped;

/// A copy ended by [`Stop`] during `op`.
fn stopped(op: &'static str, to: &S3Uri) -> S3Error {
    S3Error::Request {
        op,
        uri: to.to_string(),
        source: Box::new(Stopped),
    }
}

/// Whether a copy failed because [`Stop`] ended it (not done, and no
/// failure of the object's own).
pub fn was_stopped(error: &S3Error) -> bool {
    matches!(error, S3Error::Request { source, .. } if source.is::<Stopped>())
}

/// S3's limit for one CopyObject.
pub const MAX_COPY_OBJECT: u64 = 5 << 30;

/// How a copy is made.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CopyOptions {
    /// The copy's storage class (`None`: the destination bucket's
    /// default, as CopyObject makes it).
    pub storage_class: Option<aws_sdk_s3::types::StorageClass>,
    /// Objects of at least this many bytes copy in parts (at most
    /// [`MAX_COPY_OBJECT`], which is the default).
    pub multipart_threshold: u64,
    /// Bytes per copied part (raised to stay within 10,000 parts).
    pub part_size: u64,
    /// Parts copied at once.
    pub concurrency: usize,
    /// The copy's standard headers and user metadata, instead of the
    /// source's (see the module's documentation); its tags stay.
    pub replace: Option<atrest_s3::Properties>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            storage_class: None,
            multipart_threshold: MAX_COPY_OBJECT,
            part_size: crate::DEFAULT_PART_SIZE as u64,
            concurrency: 8,
            replace: None,
        }
    }
}

impl CopyOptions {
    /// Copies with these part settings.
    pub fn new(multipart_threshold: u64, part_size: u64, concurrency: usize) -> Self {
        CopyOptions {
            storage_class: None,
            multipart_threshold: multipart_threshold.min(MAX_COPY_OBJECT),
            part_size,
            concurrency: concurrency.max(1),
            replace: None,
        }
    }

    /// Copies with `properties` instead of the source's (their standard
    /// headers and user metadata; the rest is ignored).
    pub fn replace(mut self, properties: Option<atrest_s3::Properties>) -> Self {
        self.replace = properties;
        self
    }

    /// Copies in `storage_class` (`None`: the bucket's default).
    pub fn storage_class(mut self, storage_class: Option<aws_sdk_s3::types::StorageClass>) -> Self {
        self.storage_class = storage_class;
        self
    }
}

/// What a copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Copied {
    /// The object's length.
    pub len: u64,
    /// Parts copied (0: one CopyObject).
    pub parts: usize,
    /// The source's ETag: every request of the copy read that version.
    pub etag: String,
    /// Its S3 Encryption Client instruction file went along: the ETag it
    /// was copied at.
    pub instruction_file: Option<String>,
}

/// Copies `from` to `to` inside S3 (see the module's documentation).
/// `stop` ends a copy in parts between parts, aborting its upload (a
/// CopyObject, once sent, completes in S3); a copy not yet begun does not
/// begin.
pub async fn copy(
    s3: &aws_sdk_s3::Client,
    from: &S3Uri,
    to: &S3Uri,
    options: CopyOptions,
    stop: &Stop,
) -> Result<Copied, S3Error> {
    if stop.is_stopped() {
        return Err(stopped("CopyObject", to));
    }
    // Nothing begun yet: a stop drops these reads at once.
    let reads = async {
        let head = atrest_s3::head(s3, from).await?;
        Ok::<_, S3Error>((head, crate::list::instruction_file_of(s3, from).await?))
    };
    let (head, instruction) = tokio::select! {
        read = reads => read?,
        () = stop.stopped() => return Err(stopped("CopyObject", to)),
    };
    let suffix = atrest_format::s3ec::INSTRUCTION_SUFFIX;
    let instruction_to = to.with_key(format!("{}{suffix}", to.key()));
    let instruction_file = match instruction {
        // A copy onto itself (a new storage class) leaves the instruction
        // file as it is: S3 refuses a copy that changes nothing.
        Some(_) if from == to => None,
        Some((instruction, version)) => {
            let etag = version.etag.unwrap_or_default();
            atrest_s3::copy_object(s3, &instruction, &instruction_to, &etag, None).await?;
            Some(etag)
        }
        None => None,
    };
    let parts = match copy_body(s3, from, to, &head, &options, stop).await {
        Ok(parts) => parts,
        Err(e) => {
            if instruction_file.is_some() {
                // Best effort: no instruction file without its object.
                let _ = atrest_s3::delete(s3, &instruction_to).await;
            }
            return Err(e);
        }
    };
    Ok(Copied {
        len: head.len,
        parts,
        etag: head.etag,
        instruction_file,
    })
}

/// The object itself: one CopyObject (0 parts), or its parts copied.
async fn copy_body(
    s3: &aws_sdk_s3::Client,
    from: &S3Uri,
    to: &S3Uri,
    head: &atrest_s3::ObjectHead,
    options: &CopyOptions,
    stop: &Stop,
) -> Result<usize, S3Error> {
    let mut properties = head.properties.clone();
    if let Some(given) = &options.replace {
        let metadata = &properties.metadata;
        properties.metadata = crate::metadata::replacing_user_metadata(metadata, &given.metadata);
        properties.content_type = given.content_type.clone();
        properties.content_disposition = given.content_disposition.clone();
        properties.content_encoding = given.content_encoding.clone();
        properties.content_language = given.content_language.clone();
        properties.cache_control = given.cache_control.clone();
        properties.expires = given.expires;
    }
    if head.len < options.multipart_threshold || head.len == 0 {
        let class = options.storage_class.as_ref();
        match options.replace {
            None => atrest_s3::copy_object(s3, from, to, &head.etag, class).await?,
            Some(_) => {
                properties.storage_class = options.storage_class.clone();
                // As CopyObject does otherwise: the bucket's encryption.
                properties.server_side_encryption = None;
                properties.sse_kms_key_id = None;
                atrest_s3::copy_object_replacing(s3, from, to, &head.etag, &properties).await?
            }
        }
        return Ok(0);
    }
    if head.tag_count.unwrap_or(0) > 0 {
        properties.tags = atrest_s3::get_tags(s3, from, head.version_id.as_deref()).await?;
    }
    // As CopyObject does: the destination's storage class (unless given)
    // and server-side encryption are its bucket's defaults, not the
    // source's.
    properties.storage_class = options.storage_class.clone();
    properties.server_side_encryption = None;
    properties.sse_kms_key_id = None;
    let upload = Replacement::start_copy(s3, to, &properties, (from, &head.etag)).await?;
    let ranges = copy_ranges(0, head.len, options.part_size);
    let parts = futures::stream::iter(ranges.iter().enumerate())
        .map(|(i, &(start, end))| upload.copy(i as i32 + 1, start, end))
        .buffer_unordered(options.concurrency)
        .collect::<Vec<_>>();
    let parts = tokio::select! {
        parts = parts => parts.into_iter().collect::<Result<Vec<_>, _>>(),
        () = stop.stopped() => Err(stopped("UploadPartCopy", to)),
    };
    let done = match parts {
        Ok(parts) => upload.complete(parts).await,
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        upload.abort().await;
        return Err(e);
    }
    Ok(ranges.len())
}
