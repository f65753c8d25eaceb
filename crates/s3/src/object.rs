//! Rewriting an object in place: what S3 knows about it (length, ETag,
//! the properties a rewrite must carry over), a conditional PUT, and a
//! multipart upload whose parts are either sent or copied server-side from
//! the object being replaced (`UploadPartCopy`), all guarded by the ETag
//! that was read.

use std::collections::HashMap;

use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::{S3Error, S3Uri};

/// The properties of an object that a rewrite carries over: user metadata,
/// the standard headers, storage class, server-side encryption and tags.
///
/// Not covered (a rewrite makes a new object, and these belong to the old
/// one or need separate permissions): ACLs, object lock retention and
/// legal hold, the website redirect, checksums, and S3's own fields (ETag,
/// last-modified, version id).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Properties {
    /// User metadata (`x-amz-meta-*`, without the prefix).
    pub metadata: HashMap<String, String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`.
    pub expires: Option<DateTime>,
    /// The storage class, when not STANDARD (S3 omits it then).
    pub storage_class: Option<StorageClass>,
    /// Server-side encryption (`AES256`, `aws:kms`, ...), as S3 reported it.
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// The KMS key of SSE-KMS, if any.
    pub sse_kms_key_id: Option<String>,
    /// Object tags (from [`get_tags`]; [`head`] leaves them empty).
    pub tags: Vec<(String, String)>,
    /// A canned ACL to create the object with. [`head`] leaves it empty
    /// (S3 reports ACLs separately), so a rewrite does not carry it.
    pub acl: Option<ObjectCannedAcl>,
}

/// What [`head`] learns about an object.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ObjectHead {
    /// Its length in bytes.
    pub len: u64,
    /// Its ETag, quoted as S3 sends it: the guard of every conditional
    /// request on this version of the object.
    pub etag: String,
    /// Its version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// When it was written.
    pub last_modified: Option<DateTime>,
    /// What a rewrite carries over (tags not included).
    pub properties: Properties,
    /// How many tags it has, if S3 said (saves a GetObjectTagging).
    pub tag_count: Option<i32>,
}

/// HeadObject: length, ETag and properties of `uri`.
pub async fn head(client: &Client, uri: &S3Uri) -> Result<ObjectHead, S3Error> {
    let out = client
        .head_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("HeadObject", uri, e))?;
    let etag = out.e_tag().ok_or_else(|| S3Error::Request {
        op: "HeadObject",
        uri: uri.to_string(),
        source: "no ETag in the response".into(),
    })?;
    let expires = out
        .expires_string()
        .and_then(|s| DateTime::from_str(s, DateTimeFormat::HttpDate).ok());
    let properties = Properties {
        metadata: out.metadata().cloned().unwrap_or_default(),
        content_type: out.content_type().map(str::to_owned),
        content_disposition: out.content_disposition().map(str::to_owned),
        content_encoding: out.content_encoding().map(str::to_owned),
        content_language: out.content_language().map(str::to_owned),
        cache_control: out.cache_control().map(str::to_owned),
        expires,
        storage_class: out.storage_class().cloned(),
        server_side_encryption: out.server_side_encryption().cloned(),
        sse_kms_key_id: out.ssekms_key_id().map(str::to_owned),
        tags: Vec::new(),
        acl: None,
    };
    Ok(ObjectHead {
        len: out
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        etag: etag.to_owned(),
        version_id: out.version_id().map(str::to_owned),
        last_modified: out.last_modified().copied(),
        properties,
        tag_count: out.tag_count(),
    })
}

/// GetObjectTagging: the tags of `uri` (of `version_id`, if given).
pub async fn get_tags(
    client: &Client,
    uri: &S3Uri,
    version_id: Option<&str>,
) -> Result<Vec<(String, String)>, S3Error> {
    let out = client
        .get_object_tagging()
        .bucket(uri.bucket())
        .key(uri.key())
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("GetObjectTagging", uri, e))?;
    Ok(out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
}

/// The `x-amz-tagging` header value: URL-encoded `k=v&k=v`, or `None` for
/// no tags (an empty tag set is never sent).
pub(crate) fn tagging(tags: &[(String, String)]) -> Option<String> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// Applies `$props` to a PutObject or CreateMultipartUpload builder (both
/// have the same setters, but no common trait).
macro_rules! with_properties {
    ($builder:expr, $props:expr) => {{
        let props: &$crate::Properties = $props;
        $builder
            .set_metadata((!props.metadata.is_empty()).then(|| props.metadata.clone()))
            .set_content_type(props.content_type.clone())
            .set_content_disposition(props.content_disposition.clone())
            .set_content_encoding(props.content_encoding.clone())
            .set_content_language(props.content_language.clone())
            .set_cache_control(props.cache_control.clone())
            .set_expires(props.expires)
            .set_storage_class(props.storage_class.clone())
            .set_server_side_encryption(props.server_side_encryption.clone())
            .set_ssekms_key_id(props.sse_kms_key_id.clone())
            .set_tagging(crate::object::tagging(&props.tags))
            .set_acl(props.acl.clone())
    }};
}
pub(crate) use with_properties;

/// PutObject of `body` with `properties`, replacing the object only while
/// its ETag is still `if_match` (S3 answers 412 otherwise:
/// [`S3Error::Changed`]).
pub async fn put_replacing(
    client: &Client,
    uri: &S3Uri,
    body: Bytes,
    properties: &Properties,
    if_match: &str,
) -> Result<(), S3Error> {
    let request = client.put_object().bucket(uri.bucket()).key(uri.key());
    with_properties!(request, properties)
        .if_match(if_match)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(drop)
        .map_err(|e| S3Error::from_sdk("PutObject", uri, e))
}

/// A multipart upload that replaces an object with parts sent by the
/// client or copied server-side from the object's current version.
///
/// Every copy names the ETag read (`x-amz-copy-source-if-match`) and so
/// does the completion (`If-Match`): if the object changed meanwhile, S3
/// refuses ([`S3Error::Changed`]) rather than mixing two versions. Call
/// [`Replacement::abort`] on any failure so that no parts remain.
#[derive(Debug)]
pub struct Replacement {
    client: Client,
    uri: S3Uri,
    upload_id: String,
    /// The ETag the object replaced must still have at completion (`None`
    /// for a new object: [`Replacement::start_copy`]).
    etag: Option<String>,
    /// Where [`Replacement::copy`] copies from, and the ETag it must have.
    source: S3Uri,
    source_etag: String,
}

impl Replacement {
    /// CreateMultipartUpload for `uri` with `properties`, to replace the
    /// version whose ETag is `etag`.
    pub async fn start(
        client: &Client,
        uri: &S3Uri,
        properties: &Properties,
        etag: &str,
    ) -> Result<Self, S3Error> {
        Replacement::start_from(client, uri, properties, etag, (uri, etag)).await
    }

    /// As [`Replacement::start`], with parts copied from another object
    /// (`source`: its URI and the ETag it must still have), e.g. a new
    /// version staged and checked beside the one it replaces.
    pub async fn start_from(
        client: &Client,
        uri: &S3Uri,
        properties: &Properties,
        etag: &str,
        source: (&S3Uri, &str),
    ) -> Result<Self, S3Error> {
        let mut started = Replacement::start_copy(client, uri, properties, source).await?;
        started.etag = Some(etag.to_owned());
        Ok(started)
    }

    /// A multipart upload making `uri` (whatever is there, if anything) of
    /// parts copied from `source` (its URI and the ETag it must still
    /// have): a server-side copy of an object too large for one CopyObject.
    pub async fn start_copy(
        client: &Client,
        uri: &S3Uri,
        properties: &Properties,
        source: (&S3Uri, &str),
    ) -> Result<Self, S3Error> {
        let request = client
            .create_multipart_upload()
            .bucket(uri.bucket())
            .key(uri.key());
        let out = with_properties!(request, properties)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", uri, e))?;
        let upload_id = out.upload_id().ok_or_else(|| S3Error::Request {
            op: "CreateMultipartUpload",
            uri: uri.to_string(),
            source: "no upload id in the response".into(),
        })?;
        Ok(Replacement {
            client: client.clone(),
            uri: uri.clone(),
            upload_id: upload_id.to_owned(),
            etag: None,
            source: source.0.clone(),
            source_etag: source.1.to_owned(),
        })
    }

    /// UploadPart: part `number` (from 1) holds `body`.
    pub async fn upload(&self, number: i32, body: Bytes) -> Result<CompletedPart, S3Error> {
        let out = self
            .client
            .upload_part()
            .bucket(self.uri.bucket())
            .key(self.uri.key())
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("UploadPart", &self.uri, e))?;
        Ok(CompletedPart::builder()
            .set_e_tag(out.e_tag().map(str::to_owned))
            .part_number(number)
            .build())
    }

    /// UploadPartCopy: part `number` holds bytes `start..=end` of the
    /// object being replaced (or of the source given to
    /// [`Replacement::start_from`]), copied inside S3, only from the
    /// version read.
    pub async fn copy(&self, number: i32, start: u64, end: u64) -> Result<CompletedPart, S3Error> {
        let out = self
            .client
            .upload_part_copy()
            .bucket(self.uri.bucket())
            .key(self.uri.key())
            .upload_id(&self.upload_id)
            .part_number(number)
            .copy_source(copy_source(&self.source))
            .copy_source_range(format!("bytes={start}-{end}"))
            .copy_source_if_match(&self.source_etag)
            .send()
            .await
            .map_err(|e| S3Error::from_copy("UploadPartCopy", &self.source, &self.uri, e))?;
        let etag = out
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .map(str::to_owned);
        Ok(CompletedPart::builder()
            .set_e_tag(etag)
            .part_number(number)
            .build())
    }

    /// CompleteMultipartUpload with the parts (in any order), only while
    /// the object is still the version read. On failure, call
    /// [`Replacement::abort`].
    pub async fn complete(&self, mut parts: Vec<CompletedPart>) -> Result<(), S3Error> {
        // For servers that ignore If-Match on the completion (moto does):
        // the object is read once more, so that only the moment between
        // this HEAD and the completion is left to a concurrent writer.
        if let Some(expected) = &self.etag {
            let changed = S3Error::Changed {
                op: "CompleteMultipartUpload",
                uri: self.uri.to_string(),
            };
            match crate::head(&self.client, &self.uri).await {
                Ok(now) if &now.etag == expected => {}
                Ok(_) | Err(S3Error::NoSuchKey { .. }) => return Err(changed),
                Err(e) => return Err(e),
            }
        }
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(self.uri.bucket())
            .key(self.uri.key())
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_if_match(self.etag.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| S3Error::from_sdk("CompleteMultipartUpload", &self.uri, e))
    }

    /// AbortMultipartUpload: drops the parts; the object is unchanged,
    /// unless the completion was sent just before
    /// ([`Abandoned::Completed`](crate::Abandoned::Completed): the object
    /// is replaced, whole).
    pub async fn abort(&self) -> crate::Abandoned {
        crate::upload::abort_upload(&self.client, &self.uri, &self.upload_id).await
    }
}

/// CopyObject: `to` becomes a copy of `from` made inside S3, with its
/// metadata, standard headers and tags (S3's COPY directives), only while
/// `from` has the ETag `if_match`; in `storage_class`, or the bucket's
/// default. Up to 5 GiB; larger objects copy in parts
/// ([`Replacement::start_copy`]).
pub async fn copy_object(
    client: &Client,
    from: &S3Uri,
    to: &S3Uri,
    if_match: &str,
    storage_class: Option<&StorageClass>,
) -> Result<(), S3Error> {
    client
        .copy_object()
        .bucket(to.bucket())
        .key(to.key())
        .copy_source(copy_source(from))
        .copy_source_if_match(if_match)
        .set_storage_class(storage_class.cloned())
        .send()
        .await
        .map(drop)
        .map_err(|e| S3Error::from_copy("CopyObject", from, to, e))
}

/// CopyObject of `uri` onto itself with `properties` instead of its own
/// ([`copy_object_replacing`] from and to `uri`). Up to 5 GiB.
pub async fn replace_properties(
    client: &Client,
    uri: &S3Uri,
    if_match: &str,
    properties: &Properties,
) -> Result<(), S3Error> {
    copy_object_replacing(client, uri, uri, if_match, properties).await
}

/// CopyObject: `to` becomes a copy of `from` made inside S3 with
/// `properties` instead of `from`'s (S3's REPLACE metadata directive: user
/// metadata, standard headers, storage class and server-side encryption
/// as given; the tags stay), only while `from`'s ETag is `if_match`; no
/// byte passes through the client. Up to 5 GiB.
pub async fn copy_object_replacing(
    client: &Client,
    from: &S3Uri,
    to: &S3Uri,
    if_match: &str,
    properties: &Properties,
) -> Result<(), S3Error> {
    // Tags go with the COPY tagging directive; a canned ACL is not kept.
    let properties = Properties {
        tags: Vec::new(),
        ..properties.clone()
    };
    let request = client
        .copy_object()
        .bucket(to.bucket())
        .key(to.key())
        .copy_source(copy_source(from))
        .copy_source_if_match(if_match)
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace);
    with_properties!(request, &properties)
        .send()
        .await
        .map(drop)
        .map_err(|e| S3Error::from_copy("CopyObject", from, to, e))
}

/// DeleteObject of `uri` (its latest version; a missing object is no
/// error, as S3 answers).
pub async fn delete(client: &Client, uri: &S3Uri) -> Result<(), S3Error> {
    client
        .delete_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .send()
        .await
        .map(drop)
        .map_err(|e| S3Error::from_sdk("DeleteObject", uri, e))
}

/// DeleteObject of `uri` leaving nothing behind: on a versioned bucket,
/// where a DeleteObject only hides the object under a delete marker, every
/// version of the key is deleted, the marker too. For atrest's own
/// temporary objects, which no one else writes.
pub async fn delete_every_version(client: &Client, uri: &S3Uri) -> Result<(), S3Error> {
    let out = client
        .delete_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .send()
        .await
        .map_err(|e| S3Error::from_sdk("DeleteObject", uri, e))?;
    if out.delete_marker() != Some(true) {
        return Ok(());
    }
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = client
            .list_object_versions()
            .bucket(uri.bucket())
            .prefix(uri.key())
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("ListObjectVersions", uri, e))?;
        let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = page
            .delete_markers()
            .iter()
            .map(|m| (m.key(), m.version_id()));
        for (_, version) in versions
            .chain(markers)
            .filter(|(k, _)| *k == Some(uri.key()))
        {
            client
                .delete_object()
                .bucket(uri.bucket())
                .key(uri.key())
                .set_version_id(version.map(str::to_owned))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("DeleteObject", uri, e))?;
        }
        if page.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
}

/// DeleteObject of `uri` only while its ETag is still `if_match`: S3
/// answers 412 ([`S3Error::Changed`]) for an object written meanwhile, and
/// 404 ([`S3Error::NoSuchKey`]) for one deleted meanwhile (a conditional
/// delete, which S3 honours in every bucket since 2025).
pub async fn delete_if_match(client: &Client, uri: &S3Uri, if_match: &str) -> Result<(), S3Error> {
    client
        .delete_object()
        .bucket(uri.bucket())
        .key(uri.key())
        .if_match(if_match)
        .send()
        .await
        .map(drop)
        .map_err(|e| S3Error::from_sdk("DeleteObject", uri, e))
}

/// `x-amz-copy-source`: `bucket/key`, the key URL-encoded but for `/`.
/// CopySource: `bucket/key`, or through an access point
/// `ARN/object/key`, the key URL-encoded.
fn copy_source(uri: &S3Uri) -> String {
    let key: Vec<String> = uri.key().split('/').map(url_encode).collect();
    match uri.is_access_point() {
        true => format!("{}/object/{}", uri.bucket(), key.join("/")),
        false => format!("{}/{}", uri.bucket(), key.join("/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_copy_sources_are_url_encoded() {
        assert_eq!(tagging(&[]), None);
        let tags = [
            ("a b".to_owned(), "x&y=z".to_owned()),
            ("é".to_owned(), String::new()),
        ];
        assert_eq!(tagging(&tags).unwrap(), "a%20b=x%26y%3Dz&%C3%A9=");
        let uri = S3Uri::parse("s3://b/dir/a b+c?.bin").unwrap();
        assert_eq!(copy_source(&uri), "b/dir/a%20b%2Bc%3F.bin");
    }
}
