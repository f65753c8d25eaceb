//! Moving an object to another KMS key without re-uploading it.
//!
//! KMS `ReEncrypt` turns the object's wrapped data key into one under the
//! target KMS key, inside KMS, with the same encryption context; the new
//! header is the old one with only the wrapped key replaced, and the body is
//! kept byte for byte (docs/FORMAT.md, "Re-wrapping ... why it is safe").
//!
//! How the object is rewritten, every write guarded by the ETag read first:
//!
//! - a body of at most [`MIN_PART_SIZE`]: one PutObject of the new header
//!   and the body (downloaded), `If-Match` the ETag;
//! - a larger one: a multipart upload whose first part is the new header and
//!   the first [`MIN_PART_SIZE`] bytes of the body (downloaded; S3's smallest
//!   part) and whose other parts are `UploadPartCopy` of the rest of the
//!   object by byte range, inside S3 (`x-amz-copy-source-if-match`), then a
//!   completion with `If-Match`. So whatever the object's size, at most the
//!   header and one part pass through the client.
//!
//! User metadata, the standard headers, storage class, server-side
//! encryption settings and tags are carried over ([`atrest_s3::Properties`]),
//! and [`crate::KMS_KEY_METADATA`] is set to the new key's ARN.
//!
//! An Amazon S3 Encryption Client object (V2 or V3, wrapped `kms+context`)
//! keeps its wrapped key in its metadata or in its instruction file, so
//! only that is rewritten, and its body is never read: an instruction file
//! is replaced by one PutObject (`If-Match` its ETag); metadata by a
//! CopyObject of the object onto itself (S3's REPLACE directive, guarded by
//! `x-amz-copy-source-if-match`), or above 5 GiB by `UploadPartCopy` parts
//! of it, inside S3 either way. Only the wrapped key's entry changes, so
//! the AWS clients read the object as before, under the new key.
//!
//! ```no_run
//! # async fn example(s3: aws_sdk_s3::Client, kms: atrest_kms::Kms) {
//! use atrest_transfer::rewrap::{Rewrap, RewrapOptions};
//!
//! let rewrap = Rewrap::new(s3, kms, RewrapOptions::new("alias/new-key"));
//! let uri = atrest_s3::S3Uri::parse("s3://bucket/big.bin").unwrap();
//! match rewrap.object(&uri).await {
//!     Ok(done) => println!("{:?}: {} bytes copied inside S3", done.action, done.traffic.copied),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use atrest_format::inspect::{inspect, Inspected, PlaintextLen};
use atrest_format::s3ec::{
    Envelope, Placement, WrapAlgorithm, INSTRUCTION_FILE, INSTRUCTION_SUFFIX,
};
use atrest_format::{Header, HeaderError};
use atrest_kms::{Kms, KmsError};
use atrest_s3::{
    Abandoned, ByteRange, ObjectHead, ObjectVersion, Properties, Replacement, S3Error, S3Uri,
    MIN_PART_SIZE,
};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};

use crate::{Retry, Stop, HEADER_FETCH, KMS_KEY_METADATA};

/// S3's largest part number.
const MAX_PARTS: u64 = 10_000;

/// Default bytes per `UploadPartCopy`: a copy moves no bytes through the
/// client, so larger parts only mean fewer requests.
pub(crate) const COPY_PART_SIZE: u64 = 64 * 1024 * 1024;

/// Default part copies in flight at once, per object.
pub(crate) const COPY_CONCURRENCY: usize = 8;

/// S3's largest part (UploadPartCopy included).
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// How [`Rewrap`] works.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RewrapOptions {
    /// The target KMS key: key id, key ARN, alias name or alias ARN.
    pub to_key: String,
    /// Read and ask KMS (`ReEncrypt` stores nothing), but write nothing.
    pub dry_run: bool,
    /// If set, the user encryption context the objects must have (pairs in
    /// any order). A rewrap keeps the context; one that differs is refused
    /// ([`RewrapError::ContextChange`]).
    pub context: Option<Vec<(String, String)>>,
    /// Bytes per `UploadPartCopy` (raised, if needed, to fit 10,000 parts).
    pub copy_part_size: u64,
    /// Part copies in flight at once, per object.
    pub concurrency: usize,
    /// An S3 Encryption Client object's metadata is rewritten by one
    /// CopyObject up to this size, above it by part copies (by default
    /// 5 GiB, CopyObject's limit).
    pub copy_threshold: u64,
    /// Stops the rewraps (see [`crate::stop`]): an open multipart upload
    /// is aborted and the object stays as it was ([`RewrapError::Stopped`]).
    pub stop: Stop,
}

impl RewrapOptions {
    /// Defaults: write, no context check, 64 MiB copies, 8 at a time.
    pub fn new(to_key: impl Into<String>) -> Self {
        RewrapOptions {
            to_key: to_key.into(),
            dry_run: false,
            context: None,
            copy_part_size: COPY_PART_SIZE,
            concurrency: COPY_CONCURRENCY,
            copy_threshold: crate::copy::MAX_COPY_OBJECT,
            stop: Stop::never(),
        }
    }

    /// These options copying an S3 Encryption Client object's body in
    /// parts above `bytes` (at most CopyObject's 5 GiB), `part_size` each.
    pub fn copy_in_parts(self, bytes: u64, part_size: u64) -> Self {
        RewrapOptions {
            copy_threshold: bytes.min(crate::copy::MAX_COPY_OBJECT),
            copy_part_size: part_size,
            ..self
        }
    }

    /// These options watching `stop`.
    pub fn stop(self, stop: Stop) -> Self {
        RewrapOptions { stop, ..self }
    }

    /// These options with `dry_run` set.
    pub fn dry_run(self, dry_run: bool) -> Self {
        RewrapOptions { dry_run, ..self }
    }

    /// These options requiring `context` (see [`RewrapOptions::context`]).
    pub fn context(self, context: Option<Vec<(String, String)>>) -> Self {
        RewrapOptions { context, ..self }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Rewritten under the target key.
    Rewrapped,
    /// Would have been rewritten (dry run).
    WouldRewrap,
    /// Already under the target key: left alone.
    Skipped,
}

/// Bytes and KMS calls that a rewrap cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Object bytes downloaded (header and, for a write, the first part).
    pub downloaded: u64,
    /// Bytes uploaded (the new header and the downloaded body bytes).
    pub uploaded: u64,
    /// Bytes copied inside S3 (`UploadPartCopy`), not through the client.
    pub copied: u64,
    /// KMS requests.
    pub kms_calls: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, other: Traffic) {
        self.downloaded += other.downloaded;
        self.uploaded += other.uploaded;
        self.copied += other.copied;
        self.kms_calls += other.kms_calls;
    }
}

/// The result of one object's rewrap.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rewrapped {
    /// What was done.
    pub action: Action,
    /// The format version: atrest's 1 or 2, or the S3 Encryption Client's
    /// metadata version (2 or 3) if [`Rewrapped::s3ec`].
    pub version: u8,
    /// Whether it is an Amazon S3 Encryption Client object.
    pub s3ec: bool,
    /// Whether the data key is the shared `data.key` (v1 always).
    pub shared_data_key: bool,
    /// The ARN of the KMS key that wrapped the data key before.
    pub from_key: Option<String>,
    /// The ARN of the target key.
    pub to_key: String,
    /// Whether the rewrite is (or would be) a multipart upload.
    pub multipart: bool,
    /// The object's length (unchanged unless the wrapped key's length is).
    pub object_len: u64,
    /// What it cost.
    pub traffic: Traffic,
}

/// Why an object was not rewrapped. The object is unchanged in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewrapError {
    /// The object is not an atrest object (or a damaged one).
    #[error("{uri} is not an atrest object: {reason}")]
    NotAtrest {
        /// The object.
        uri: String,
        /// Why.
        reason: String,
    },
    /// An S3 Encryption Client object whose data key KMS did not wrap with
    /// its context (`kms+context`): a raw AES or RSA key, or the V1
    /// client's `kms`, whose context names the key itself.
    #[error("{uri} is an S3 Encryption Client object wrapped with {wrap}: atrest rewraps only kms+context (V2 and V3)")]
    S3ecWrap {
        /// The object.
        uri: String,
        /// Its wrap algorithm.
        wrap: &'static str,
    },
    /// The object's data key is wrapped under a key file, not by KMS:
    /// nothing for KMS to re-wrap (its wrapped key is never sent there).
    #[error("{uri}'s data key is wrapped under a key file, not by KMS: rewrap re-wraps KMS-wrapped keys (decrypt and encrypt it again to change its key)")]
    KeyFile {
        /// The object.
        uri: String,
    },
    /// The requested context differs from the object's.
    #[error("{uri} has the encryption context {{{object}}}, not {{{asked}}}: a rewrap keeps the context (KMS binds it to the wrapped key and every frame authenticates it); changing it means decrypting and encrypting again")]
    ContextChange {
        /// The object.
        uri: String,
        /// Its user context, `k=v, ...`.
        object: String,
        /// The one asked for.
        asked: String,
    },
    /// KMS refused or failed the `ReEncrypt`.
    #[error("cannot re-wrap the data key of {uri} under `{to_key}`")]
    Kms {
        /// The object.
        uri: String,
        /// The target key, as given.
        to_key: String,
        /// What KMS said.
        #[source]
        source: KmsError,
    },
    /// The new wrapped key does not fit a header.
    #[error("the re-wrapped key of {uri} does not fit a header")]
    Header {
        /// The object.
        uri: String,
        /// Why.
        #[source]
        source: HeaderError,
    },
    /// An S3 request failed; [`S3Error::Changed`] if the object was
    /// written by someone else meanwhile.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// Stopped through [`RewrapOptions::stop`] before it was done.
    #[error("the rewrap of {uri} was stopped")]
    Stopped {
        /// The object.
        uri: String,
    },
}

impl RewrapError {
    /// Whether rewrapping again may succeed.
    pub fn retry(&self) -> Retry {
        match self {
            RewrapError::Kms { source, .. } => Retry::of_kms(source),
            RewrapError::S3(e) => Retry::of_s3(e),
            RewrapError::Stopped { .. } => Retry::Temporary,
            _ => Retry::Permanent,
        }
    }
}

/// Rewraps objects under one target key, counting what it costs.
#[derive(Debug)]
pub struct Rewrap {
    s3: aws_sdk_s3::Client,
    kms: Kms,
    options: RewrapOptions,
    totals: Totals,
}

#[derive(Debug, Default)]
struct Totals {
    downloaded: AtomicU64,
    uploaded: AtomicU64,
    copied: AtomicU64,
    kms_calls: AtomicU64,
}

impl Rewrap {
    /// A rewrapper with these clients and options.
    pub fn new(s3: aws_sdk_s3::Client, kms: Kms, options: RewrapOptions) -> Self {
        Rewrap {
            s3,
            kms,
            options,
            totals: Totals::default(),
        }
    }

    /// What every object so far cost, failed ones included.
    pub fn totals(&self) -> Traffic {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Traffic {
            downloaded: get(&self.totals.downloaded),
            uploaded: get(&self.totals.uploaded),
            copied: get(&self.totals.copied),
            kms_calls: get(&self.totals.kms_calls),
        }
    }

    fn count(&self, traffic: &mut Traffic, add: Traffic) {
        *traffic += add;
        let t = &self.totals;
        t.downloaded.fetch_add(add.downloaded, Ordering::Relaxed);
        t.uploaded.fetch_add(add.uploaded, Ordering::Relaxed);
        t.copied.fetch_add(add.copied, Ordering::Relaxed);
        t.kms_calls.fetch_add(add.kms_calls, Ordering::Relaxed);
    }

    /// Rewraps one object. On any error the object is as it was.
    pub async fn object(&self, uri: &S3Uri) -> Result<Rewrapped, RewrapError> {
        let stopped = || RewrapError::Stopped {
            uri: uri.to_string(),
        };
        // Reads and KMS calls may be dropped at any point; the write, once
        // a multipart upload is open, watches the stop itself.
        let planned = tokio::select! {
            planned = self.plan(uri) => planned?,
            () = self.options.stop.stopped() => return Err(stopped()),
        };
        let (mut done, job) = match planned {
            (done, None) => return Ok(done),
            (done, Some(job)) => (done, job),
        };
        let cost = match job {
            Write::Header(job) if done.multipart => self.replace_in_parts(&job).await?,
            Write::Header(job) => self.put_whole(&job).await?,
            Write::Envelope(job) => self.write_envelope(&job).await?,
        };
        self.count(&mut done.traffic, cost);
        done.action = Action::Rewrapped;
        Ok(done)
    }

    /// Everything before the write: what the object is, its new header,
    /// and (unless there is nothing to write) the write to make.
    async fn plan(&self, uri: &S3Uri) -> Result<(Rewrapped, Option<Write>), RewrapError> {
        let mut traffic = Traffic::default();
        let head = atrest_s3::head(&self.s3, uri).await?;
        let not_atrest = |reason: String| RewrapError::NotAtrest {
            uri: uri.to_string(),
            reason,
        };
        // Its wrapped key is in its metadata (or an instruction file).
        if crate::list::is_s3_encryption_client(&head.properties.metadata) {
            let planned = self.plan_s3ec(uri, head, false).await?;
            return Ok(planned.expect("its metadata is S3EC metadata"));
        }
        if head.len == 0 {
            return Err(not_atrest("it is empty".into()));
        }
        let prefix = atrest_s3::get_range(
            &self.s3,
            uri,
            ByteRange::new(0, head.len.min(HEADER_FETCH) - 1),
            Some(&ObjectVersion::with_etag(&head.etag)),
        )
        .await?
        .bytes;
        self.count(
            &mut traffic,
            Traffic {
                downloaded: prefix.len() as u64,
                ..Default::default()
            },
        );
        let info = match inspect(&prefix, head.len) {
            Ok(Inspected::Complete(info)) => info,
            Ok(Inspected::Incomplete { .. }) => {
                return Err(not_atrest("its header is cut short".into()))
            }
            // No atrest header, no S3EC metadata: the V2-era Java client
            // keeps a whole envelope in `KEY.instruction`.
            Err(e) => match self.plan_s3ec(uri, head, true).await? {
                Some(planned) => return Ok(planned),
                None => return Err(not_atrest(e.to_string())),
            },
        };
        if info.plaintext_len == PlaintextLen::InvalidBody {
            return Err(not_atrest(format!(
                "its body of {} bytes has no valid length for its format",
                info.body_len
            )));
        }
        let (kms_context, shared) = match &info.header {
            Header::V2(h) => (h.context().kms_context(), h.context().is_shared_data_key()),
            _ => (Vec::new(), true),
        };
        let pairs = match &info.header {
            Header::V2(h) => h
                .context()
                .user_pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        if info.header.keyring() == atrest_format::keyring::Keyring::KeyFile {
            return Err(RewrapError::KeyFile {
                uri: uri.to_string(),
            });
        }
        self.check_context(uri, pairs)?;
        let re = self
            .re_encrypt(uri, &mut traffic, info.header.wrapped_key(), &kms_context)
            .await?;
        let header_len = info.header.encoded_len() as u64;
        let body_len = head.len - header_len;
        let mut done = Rewrapped {
            action: Action::Skipped,
            version: info.header.version(),
            s3ec: false,
            shared_data_key: shared,
            from_key: re.source_key_id.clone(),
            to_key: re.key_id.clone(),
            multipart: body_len > MIN_PART_SIZE as u64,
            object_len: head.len,
            traffic,
        };
        if re.is_same_key() {
            return Ok((done, None));
        }
        let header = info
            .header
            .clone()
            .with_wrapped_key(re.wrapped)
            .map_err(|source| RewrapError::Header {
                uri: uri.to_string(),
                source,
            })?;
        let mut new_header = Vec::new();
        header.encode(&mut new_header);
        done.object_len = new_header.len() as u64 + body_len;
        if self.options.dry_run {
            done.action = Action::WouldRewrap;
            return Ok((done, None));
        }

        let mut properties = head.properties.clone();
        if head.tag_count.is_none_or(|n| n > 0) {
            properties.tags =
                atrest_s3::get_tags(&self.s3, uri, head.version_id.as_deref()).await?;
        }
        properties
            .metadata
            .insert(KMS_KEY_METADATA.to_owned(), re.key_id.clone());
        let job = Job {
            uri: uri.clone(),
            etag: head.etag,
            len: head.len,
            header_len,
            prefix,
            new_header,
            properties,
        };
        Ok((done, Some(Write::Header(Box::new(job)))))
    }

    /// KMS `ReEncrypt` of `wrapped` under the target key, `context` kept
    /// as it is; one KMS call counted in `traffic`.
    async fn re_encrypt(
        &self,
        uri: &S3Uri,
        traffic: &mut Traffic,
        wrapped: &[u8],
        context: &[(String, String)],
    ) -> Result<atrest_kms::ReEncrypted, RewrapError> {
        let call = Traffic {
            kms_calls: 1,
            ..Default::default()
        };
        self.count(traffic, call);
        let to_key = &self.options.to_key;
        self.kms
            .re_encrypt(wrapped, context, to_key, context)
            .await
            .map_err(|source| RewrapError::Kms {
                uri: uri.to_string(),
                to_key: to_key.clone(),
                source,
            })
    }

    /// The plan for an S3 Encryption Client object (`probe`: one without
    /// S3EC metadata, which may have an instruction file; `None` if it has
    /// none).
    async fn plan_s3ec(
        &self,
        uri: &S3Uri,
        head: ObjectHead,
        probe: bool,
    ) -> Result<Option<(Rewrapped, Option<Write>)>, RewrapError> {
        // Any content algorithm: only the wrapped key changes.
        let policy = atrest_format::s3ec::Policy { allow_legacy: true };
        let metadata = &head.properties.metadata;
        let found = crate::s3ec::detect(&self.s3, uri, metadata, probe, policy).await;
        let (envelope, instruction_file) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(crate::Error::InstructionFile { source, .. }) => return Err(source.into()),
            Err(e) => {
                return Err(RewrapError::NotAtrest {
                    uri: uri.to_string(),
                    reason: format!("a damaged S3 Encryption Client object ({e})"),
                })
            }
        };
        if envelope.wrap != WrapAlgorithm::KmsContext {
            return Err(RewrapError::S3ecWrap {
                uri: uri.to_string(),
                wrap: envelope.wrap.name(),
            });
        }
        self.check_context(
            uri,
            envelope
                .user_context()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )?;
        let mut traffic = Traffic::default();
        let context: Vec<(String, String)> = envelope
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let re = self
            .re_encrypt(uri, &mut traffic, &envelope.wrapped_key, &context)
            .await?;
        let version = match envelope.version {
            atrest_format::s3ec::Version::V3 => 3,
            atrest_format::s3ec::Version::V2 => 2,
            _ => 1,
        };
        let mut done = Rewrapped {
            action: Action::Skipped,
            version,
            s3ec: true,
            // Each S3EC object has its own data key.
            shared_data_key: false,
            from_key: re.source_key_id.clone(),
            to_key: re.key_id.clone(),
            multipart: instruction_file.is_none() && head.len > self.options.copy_threshold,
            object_len: head.len,
            traffic: Traffic::default(),
        };
        if re.is_same_key() {
            done.traffic = traffic;
            return Ok(Some((done, None)));
        }
        if self.options.dry_run {
            done.action = Action::WouldRewrap;
            done.traffic = traffic;
            return Ok(Some((done, None)));
        }
        // Only the entries the new key changes (the wrapped key's): the
        // others stay as their writer wrote them.
        let rewrapped = Envelope {
            wrapped_key: re.wrapped,
            ..envelope.clone()
        };
        let old = envelope.encode(Placement::Object).object;
        let changed: Vec<(String, String)> = rewrapped
            .encode(Placement::Object)
            .object
            .into_iter()
            .filter(|entry| !old.contains(entry))
            .collect();
        let job = match instruction_file {
            Some(file) => {
                let body = rewritten_instruction_file(&file.body, changed);
                EnvelopeJob::InstructionFile {
                    uri: uri.with_key(format!("{}{INSTRUCTION_SUFFIX}", uri.key())),
                    etag: file.version.etag,
                    body: body.into(),
                }
            }
            None => {
                let mut properties = head.properties.clone();
                properties.metadata.extend(changed);
                // Kept up to date where atrest recorded it (its own uploads).
                if let Some(arn) = properties.metadata.get_mut(KMS_KEY_METADATA) {
                    *arn = re.key_id.clone();
                }
                // A CopyObject keeps the tags; a rewrite in parts sets them.
                if done.multipart && head.tag_count.is_none_or(|n| n > 0) {
                    properties.tags =
                        atrest_s3::get_tags(&self.s3, uri, head.version_id.as_deref()).await?;
                }
                EnvelopeJob::Metadata {
                    uri: uri.clone(),
                    etag: head.etag.clone(),
                    len: head.len,
                    properties: Box::new(properties),
                }
            }
        };
        done.traffic = traffic;
        Ok(Some((done, Some(Write::Envelope(job)))))
    }

    /// Writes an S3EC object's new envelope: its instruction file, or its
    /// metadata (the body copied onto itself inside S3).
    async fn write_envelope(&self, job: &EnvelopeJob) -> Result<Traffic, RewrapError> {
        let mut traffic = Traffic::default();
        match job {
            EnvelopeJob::InstructionFile { uri, etag, body } => {
                let Some(etag) = etag else {
                    return Err(S3Error::Changed {
                        op: "PutObject",
                        uri: uri.to_string(),
                    }
                    .into());
                };
                let mut properties = Properties::default();
                properties
                    .metadata
                    .insert(INSTRUCTION_FILE.to_owned(), String::new());
                traffic.uploaded = body.len() as u64;
                atrest_s3::put_replacing(&self.s3, uri, body.clone(), &properties, etag).await?;
            }
            EnvelopeJob::Metadata {
                uri,
                etag,
                len,
                properties,
            } if *len <= self.options.copy_threshold => {
                atrest_s3::replace_properties(&self.s3, uri, etag, properties).await?;
                traffic.copied = *len;
            }
            EnvelopeJob::Metadata {
                uri,
                etag,
                len,
                properties,
            } => {
                let ranges = copy_ranges(0, *len, self.options.copy_part_size);
                let up = Replacement::start(&self.s3, uri, properties, etag).await?;
                let work = async {
                    let parts: Vec<_> = futures::stream::iter(ranges.iter().enumerate())
                        .map(|(i, &(start, end))| up.copy(i as i32 + 1, start, end))
                        .buffer_unordered(self.options.concurrency.max(1))
                        .try_collect()
                        .await?;
                    up.complete(parts).await
                };
                let result = tokio::select! {
                    result = work => result.map_err(RewrapError::S3),
                    () = self.options.stop.stopped() => Err(RewrapError::Stopped {
                        uri: uri.to_string(),
                    }),
                };
                if let Err(e) = result {
                    // Its completion may have landed all the same.
                    if up.abort().await != Abandoned::Completed {
                        return Err(e);
                    }
                }
                traffic.copied = *len;
            }
        }
        Ok(traffic)
    }

    /// Refuses a context other than the object's (its user pairs), when
    /// one was asked for.
    fn check_context(
        &self,
        uri: &S3Uri,
        mut object: Vec<(String, String)>,
    ) -> Result<(), RewrapError> {
        let Some(asked) = &self.options.context else {
            return Ok(());
        };
        let mut asked = asked.clone();
        object.sort();
        asked.sort();
        if object == asked {
            return Ok(());
        }
        let show = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(RewrapError::ContextChange {
            uri: uri.to_string(),
            object: show(&object),
            asked: show(&asked),
        })
    }

    /// The body bytes `from..to` (object offsets), reusing what the first
    /// GET already brought.
    async fn body_bytes(&self, job: &Job, to: u64) -> Result<(Bytes, Traffic), S3Error> {
        let from = job.header_len;
        let have = job.prefix.len() as u64;
        if to <= have {
            return Ok((
                job.prefix.slice(from as usize..to as usize),
                Traffic::default(),
            ));
        }
        let rest = atrest_s3::get_range(
            &self.s3,
            &job.uri,
            ByteRange::new(have.max(from), to - 1),
            Some(&ObjectVersion::with_etag(&job.etag)),
        )
        .await?
        .bytes;
        let traffic = Traffic {
            downloaded: rest.len() as u64,
            ..Default::default()
        };
        if rest.len() as u64 != to - have.max(from) {
            return Err(S3Error::Changed {
                op: "GetObject",
                uri: job.uri.to_string(),
            });
        }
        let mut body = BytesMut::with_capacity((to - from) as usize);
        if have > from {
            body.extend_from_slice(&job.prefix[from as usize..]);
        }
        body.extend_from_slice(&rest);
        Ok((body.freeze(), traffic))
    }

    /// One conditional PutObject of the new header and the whole body.
    async fn put_whole(&self, job: &Job) -> Result<Traffic, S3Error> {
        let (body, mut traffic) = self.body_bytes(job, job.len).await?;
        let mut object = BytesMut::with_capacity(job.new_header.len() + body.len());
        object.extend_from_slice(&job.new_header);
        object.extend_from_slice(&body);
        traffic.uploaded = object.len() as u64;
        atrest_s3::put_replacing(
            &self.s3,
            &job.uri,
            object.freeze(),
            &job.properties,
            &job.etag,
        )
        .await?;
        Ok(traffic)
    }

    /// The multipart rewrite: part 1 sent, the rest copied inside S3. A
    /// failure or a stop aborts the upload, so no parts remain.
    async fn replace_in_parts(&self, job: &Job) -> Result<Traffic, RewrapError> {
        let first_end = job.header_len + MIN_PART_SIZE as u64;
        let (first_body, mut traffic) = self.body_bytes(job, first_end).await?;
        let mut first = BytesMut::with_capacity(job.new_header.len() + first_body.len());
        first.extend_from_slice(&job.new_header);
        first.extend_from_slice(&first_body);
        let ranges = copy_ranges(first_end, job.len, self.options.copy_part_size);
        let up = Replacement::start(&self.s3, &job.uri, &job.properties, &job.etag).await?;
        traffic.uploaded = first.len() as u64;
        traffic.copied = job.len - first_end;
        let work = async {
            let part1 = up.upload(1, first.freeze()).await?;
            let mut parts: Vec<_> = futures::stream::iter(ranges.iter().enumerate())
                .map(|(i, &(start, end))| up.copy(i as i32 + 2, start, end))
                .buffer_unordered(self.options.concurrency.max(1))
                .try_collect()
                .await?;
            parts.push(part1);
            up.complete(parts).await
        };
        let result = tokio::select! {
            result = work => result.map_err(RewrapError::S3),
            () = self.options.stop.stopped() => Err(RewrapError::Stopped {
                uri: job.uri.to_string(),
            }),
        };
        match result {
            Ok(()) => Ok(traffic),
            // Its completion may have landed all the same.
            Err(e) => match up.abort().await {
                Abandoned::Completed => Ok(traffic),
                Abandoned::Aborted => Err(e),
            },
        }
    }
}

/// What a rewrap writes.
enum Write {
    /// An atrest object's new header, with its body.
    Header(Box<Job>),
    /// An S3 Encryption Client object's new envelope.
    Envelope(EnvelopeJob),
}

/// Where an S3 Encryption Client object's new envelope goes.
enum EnvelopeJob {
    /// Its instruction file, replaced while its ETag is `etag`.
    InstructionFile {
        uri: S3Uri,
        etag: Option<String>,
        body: Bytes,
    },
    /// Its metadata: the object copied onto itself with `properties`.
    Metadata {
        uri: S3Uri,
        etag: String,
        len: u64,
        properties: Box<Properties>,
    },
}

/// One object's rewrite: where it is, what was read, what to write.
struct Job {
    uri: S3Uri,
    etag: String,
    len: u64,
    header_len: u64,
    /// The object's first bytes, from the first GET.
    prefix: Bytes,
    new_header: Vec<u8>,
    properties: Properties,
}

/// The instruction file `read` with the `changed` entries (the wrapped
/// key's) replaced, and every other entry kept.
fn rewritten_instruction_file(read: &[u8], changed: Vec<(String, String)>) -> Vec<u8> {
    // It parsed as an envelope, so it is a JSON object.
    let mut file: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(read).unwrap_or_default();
    file.extend(changed.into_iter().map(|(k, v)| (k, v.into())));
    serde_json::to_vec(&file).expect("a map of JSON values serialises")
}

/// Inclusive byte ranges covering `start..end`, of `part` bytes (at least
/// S3's smallest part, and large enough to stay within 10,000 parts with
/// the first one) but the last.
pub(crate) fn copy_ranges(start: u64, end: u64, part: u64) -> Vec<(u64, u64)> {
    let len = end.saturating_sub(start);
    let part = part
        .max(MIN_PART_SIZE as u64)
        .max(len.div_ceil(MAX_PARTS - 1))
        .min(MAX_PART_SIZE);
    (0..len.div_ceil(part))
        .map(|i| {
            let from = start + i * part;
            (from, (from + part).min(end) - 1)
        })
        .collect()
}

/// Re-wraps a wrapped data key that has no encryption context (the shared
/// `data.key` of `create-data-key`) under `to_key`; the plaintext key never
/// leaves KMS.
pub async fn rewrap_data_key(
    kms: &Kms,
    wrapped: &[u8],
    to_key: &str,
) -> Result<atrest_kms::ReEncrypted, KmsError> {
    kms.re_encrypt(wrapped, &[], to_key, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn copy_ranges_cover_the_rest_exactly() {
        let ranges = copy_ranges(5 * MIB + 300, 200 * MIB, 64 * MIB);
        assert_eq!(ranges.first().unwrap().0, 5 * MIB + 300);
        assert_eq!(ranges.last().unwrap().1, 200 * MIB - 1);
        for w in ranges.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
            assert_eq!(w[0].1 - w[0].0 + 1, 64 * MIB);
        }
        assert_eq!(copy_ranges(10, 10, 64 * MIB), []);
        assert_eq!(copy_ranges(10, 11, 64 * MIB), [(10, 10)]);
        // Small part sizes are raised to S3's minimum.
        assert_eq!(
            copy_ranges(0, 6 * MIB, MIB),
            [(0, 5 * MIB - 1), (5 * MIB, 6 * MIB - 1)]
        );
        // 5 TiB fits in 9,999 copies.
        let huge = copy_ranges(5 * MIB, 5 * 1024 * 1024 * MIB, 64 * MIB);
        assert!(huge.len() < MAX_PARTS as usize);
    }
}
