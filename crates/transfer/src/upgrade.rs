//! Re-encrypting v1 objects as v2, in place.
//!
//! For each v1 object: the engine's download (pinned to the ETag read
//! first) is piped into an engine upload of a v2 object to a temporary key
//! beside it, in constant memory whatever the size. The new object is then
//! verified ([`crate::verify`]: every frame authenticated, the plaintext
//! length the same), and only then replaces the original: a multipart
//! upload to the original key whose parts are copied inside S3 from the
//! temporary object, completed only while the original still has the ETag
//! read (`If-Match`, where the server honours it; atrest also re-checks the
//! ETag just before, for servers that ignore the condition). The temporary
//! object is deleted in every case.
//!
//! Without a KMS key the new object uses the v1 object's own data key (the
//! shared `data.key`; no new KMS key is needed); with one, a fresh data key
//! per object ([`UpgradeOptions::key`]). User metadata, standard headers,
//! storage class, server-side encryption settings and tags carry over as
//! for a rewrap ([`atrest_s3::Properties`]), and [`crate::KMS_KEY_METADATA`]
//! names the new key. v2 objects are skipped. On a versioned bucket the
//! upgrade is a new version; the v1 version remains until deleted.
//!
//! An Amazon S3 Encryption Client object (any version and content
//! algorithm, its legacy unauthenticated AES-CBC included) is upgraded the
//! same way, with a fresh data key under [`UpgradeOptions::key`] (its own
//! is wrapped for the client, not for atrest) and its user context kept:
//! the new object has none of the client's metadata entries, and its
//! instruction file, if any, is deleted once the object is replaced
//! (`If-Match` the ETag read).
//!
//! Give the [`Transfer`] a caching key source
//! ([`atrest_kms::CachedKeys::cached`]): the data key the download unwraps
//! is unwrapped again for the upload, which the cache answers.
//!
//! ```no_run
//! # async fn example(transfer: atrest_transfer::Transfer) {
//! use atrest_transfer::upgrade::{Upgrade, UpgradeOptions};
//!
//! let upgrade = Upgrade::new(transfer, UpgradeOptions::default());
//! let uri = atrest_s3::S3Uri::parse("s3://bucket/old.bin").unwrap();
//! match upgrade.object(&uri).await {
//!     Ok(done) => println!("{:?}", done.action),
//!     Err(e) => eprintln!("{e} ({:?})", e.retry()),
//! }
//! # }
//! ```

use atrest_format::{parse_header, Header, Parsed};
use atrest_s3::{
    Abandoned, ByteRange, Fetched, ObjectVersion, Properties, Replacement, S3Error, S3Uri,
};
use futures::{StreamExt, TryStreamExt};
use rand_core::RngCore;

use crate::rewrap::copy_ranges;
use crate::verify::{Verify, VerifyError, VerifyOptions};
use crate::{
    DataKeyFrom, Error, Format, KeyError, Retry, Stop, Transfer, FIRST_FETCH, KMS_KEY_METADATA,
};

/// Bytes buffered between the download and the upload.
const PIPE: usize = 1 << 20;

/// The part size of the temporary upload: the engine's default, raised so
/// that the object fits in S3's 10,000 parts (v2 is at most 1/256 larger
/// than v1, plus a header).
fn part_size(object_len: u64) -> usize {
    const MIB: u64 = 1 << 20;
    let needed = (object_len + object_len / 256 + MIB).div_ceil(10_000);
    usize::try_from(needed.next_multiple_of(MIB))
        .unwrap_or(usize::MAX)
        .max(crate::DEFAULT_PART_SIZE)
}

/// How [`Upgrade`] works.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UpgradeOptions {
    /// A KMS key (id, ARN, alias) for a fresh data key per object; `None`
    /// keeps each object's own (shared) data key.
    pub key: Option<String>,
    /// Read, but write nothing: say what would be upgraded.
    pub dry_run: bool,
    /// Stops the upgrades (see [`crate::stop`]): open uploads are aborted,
    /// the temporary object deleted, the original left as it was
    /// ([`UpgradeError::Stopped`]).
    pub stop: Stop,
}

impl UpgradeOptions {
    /// These options with a fresh data key under `key` per object.
    pub fn key(self, key: Option<String>) -> Self {
        UpgradeOptions { key, ..self }
    }

    /// These options with `dry_run` set.
    pub fn dry_run(self, dry_run: bool) -> Self {
        UpgradeOptions { dry_run, ..self }
    }

    /// These options watching `stop`.
    pub fn stop(self, stop: Stop) -> Self {
        UpgradeOptions { stop, ..self }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeAction {
    /// Replaced by its v2 form.
    Upgraded,
    /// Would have been upgraded (dry run).
    WouldUpgrade,
    /// Already v2: left alone.
    Skipped,
}

/// The result of one object's upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgraded {
    /// What was done.
    pub action: UpgradeAction,
    /// The object's format version before (1, or 2 when skipped; the
    /// client's metadata version if [`Upgraded::s3ec`]).
    pub format: u8,
    /// Whether it was an Amazon S3 Encryption Client object.
    pub s3ec: bool,
    /// The object's length before.
    pub object_len: u64,
    /// After an upgrade: the new object's length.
    pub new_object_len: Option<u64>,
    /// After an upgrade: the plaintext length (exact).
    pub plaintext_len: Option<u64>,
    /// After an upgrade: whether the new object uses the shared data key.
    pub shared_data_key: bool,
    /// After an upgrade: the ARN of the KMS key that wraps the data key.
    pub key_id: Option<String>,
}

/// Why an object was not upgraded. The original object is unchanged in
/// every case, and no temporary object or multipart upload remains.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Not an atrest object (or a damaged one).
    #[error("{uri} is not an atrest object: {reason}")]
    NotAtrest {
        /// The object.
        uri: String,
        /// Why.
        reason: String,
    },
    /// An S3 Encryption Client object, and no [`UpgradeOptions::key`] for
    /// the new data key.
    #[error("{uri} is an S3 Encryption Client object: its upgrade needs a KMS key for a new data key (--key)")]
    KeyNeeded {
        /// The object.
        uri: String,
    },
    /// An S3 Encryption Client object whose encryption context a v2 object
    /// cannot carry (an empty key, a key atrest reserves such as
    /// `atrest:...`, or too long): known before anything is read or
    /// written, so a dry run says it too.
    #[error("{uri} is an S3 Encryption Client object whose encryption context a v2 object cannot carry: {reason}")]
    ContextNotCarried {
        /// The object.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The object did not decrypt (a v1 or CBC object's padding is
    /// invalid; a GCM object's tag or key commitment does not match): it is
    /// damaged, or not what its header says; there is nothing trustworthy
    /// to re-encrypt.
    #[error("{uri} is corrupted: {why}")]
    Corrupted {
        /// The object.
        uri: String,
        /// What failed.
        why: &'static str,
    },
    /// The key source (KMS) refused or failed: unwrapping the object's
    /// data key, or (with [`UpgradeOptions::key`]) generating a new one.
    #[error("{what} for {uri}")]
    Key {
        /// The object.
        uri: String,
        /// What was asked of it.
        what: String,
        /// What the key source said.
        #[source]
        source: KeyError,
    },
    /// The new object did not verify: it was not put in place.
    #[error("the re-encrypted copy of {uri} did not verify, so it was not put in place")]
    Check {
        /// The object.
        uri: String,
        /// Why.
        #[source]
        source: Box<VerifyError>,
    },
    /// Someone else wrote the object meanwhile: it was left as they wrote
    /// it.
    #[error("{uri} changed while atrest was upgrading it; it was left as it is")]
    Changed {
        /// The object.
        uri: String,
    },
    /// An S3 request failed.
    #[error(transparent)]
    S3(S3Error),
    /// Stopped through [`UpgradeOptions::stop`] before it was done.
    #[error("the upgrade of {uri} was stopped")]
    Stopped {
        /// The object.
        uri: String,
    },
    /// Any other failure of the transfer.
    #[error(transparent)]
    Other(Error),
}

impl UpgradeError {
    /// Whether upgrading again may succeed.
    pub fn retry(&self) -> Retry {
        match self {
            UpgradeError::NotAtrest { .. }
            | UpgradeError::Corrupted { .. }
            | UpgradeError::ContextNotCarried { .. }
            | UpgradeError::KeyNeeded { .. } => Retry::Permanent,
            UpgradeError::Key { source, .. } => Retry::of_key(source),
            UpgradeError::Check { source, .. } => source.retry(),
            UpgradeError::Changed { .. } | UpgradeError::Stopped { .. } => Retry::Temporary,
            UpgradeError::S3(e) => Retry::of_s3(e),
            UpgradeError::Other(e) => Retry::of(e),
        }
    }
}

/// Upgrades objects through one [`Transfer`].
#[derive(Clone, Debug)]
pub struct Upgrade {
    transfer: Transfer,
    options: UpgradeOptions,
}

/// A v1 object to upgrade: what was read of it.
struct Job {
    uri: S3Uri,
    etag: String,
    len: u64,
    /// Its first bytes (pinned to `etag`), where the download starts;
    /// taken by it.
    first: Option<Fetched>,
    /// The v1 header's wrapped (shared) data key.
    wrapped: Vec<u8>,
    recorded_key: Option<String>,
    properties: Properties,
    /// What an S3 Encryption Client object carries over.
    s3ec: Option<S3ecSource>,
}

/// Of an S3 Encryption Client object: its user context (the new object's),
/// and the ETag of its instruction file, if it has one (deleted after).
struct S3ecSource {
    context: Vec<(String, String)>,
    instruction_file: Option<String>,
    /// GCM (a tag to check), not CBC.
    authenticated: bool,
}

impl Upgrade {
    /// An upgrader with this transfer (its S3 client and key source) and
    /// options.
    pub fn new(transfer: Transfer, options: UpgradeOptions) -> Self {
        Upgrade { transfer, options }
    }

    /// Upgrades one object. On any error the object is as it was.
    pub async fn object(&self, uri: &S3Uri) -> Result<Upgraded, UpgradeError> {
        let stop = &self.options.stop;
        let planned = tokio::select! {
            planned = self.plan(uri) => planned?,
            () = stop.stopped() => return Err(stopped(uri)),
        };
        let (mut done, job) = match planned {
            (done, None) => return Ok(done),
            (done, Some(job)) => (done, job),
        };
        let suffix = rand_core::OsRng.next_u64();
        let temp = uri.with_key(format!("{}{TEMPORARY_INFIX}{suffix:016x}", uri.key()));
        let result = self.rewrite(job, &temp, &mut done).await;
        // Gone whatever happened (after a failed upload it never existed),
        // in a versioned bucket too.
        if let Err(e) = atrest_s3::delete_every_version(self.transfer.s3(), &temp).await {
            tracing::warn!(
                uri = %crate::escape(&temp.to_string()),
                error = %with_causes(&e),
                "could not delete the temporary object of an upgrade"
            );
        }
        result.map(|()| done)
    }

    /// What the object is, and (for a v1 object, not in a dry run) what
    /// to rewrite.
    async fn plan(&self, uri: &S3Uri) -> Result<(Upgraded, Option<Job>), UpgradeError> {
        let s3 = self.transfer.s3();
        let not_atrest = |reason: String| UpgradeError::NotAtrest {
            uri: uri.to_string(),
            reason,
        };
        let head = atrest_s3::head(s3, uri)
            .await
            .map_err(|e| s3_error(uri, e))?;
        if head.len == 0 {
            return Err(not_atrest("it is empty".into()));
        }
        let pin = ObjectVersion::with_etag(&head.etag);
        let first = atrest_s3::get_range(s3, uri, ByteRange::new(0, FIRST_FETCH - 1), Some(&pin))
            .await
            .map_err(|e| s3_error(uri, e))?;
        let mut done = Upgraded {
            action: UpgradeAction::Skipped,
            format: 2,
            s3ec: false,
            object_len: head.len,
            new_object_len: None,
            plaintext_len: None,
            shared_data_key: self.options.key.is_none(),
            key_id: None,
        };
        let header = parse_header(&first.bytes);
        let marked = crate::list::is_s3_encryption_client(&first.metadata);
        if marked || header.is_err() {
            // Its envelope in its metadata, or (no atrest header) perhaps
            // in an instruction file.
            let policy = atrest_format::s3ec::Policy { allow_legacy: true };
            let found = crate::s3ec::detect(s3, uri, &first.metadata, !marked, policy).await;
            match found {
                Ok(Some((envelope, instruction_file))) => {
                    let context: Vec<(String, String)> = envelope
                        .user_context()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    // As the upload will build it: a fresh KMS data key's.
                    atrest_format::v2::EncryptionContext::new(context.clone())
                        .and_then(|c| c.with_keyring(atrest_format::keyring::Keyring::Kms))
                        .map_err(|e| UpgradeError::ContextNotCarried {
                            uri: uri.to_string(),
                            reason: e.to_string(),
                        })?;
                    done.s3ec = true;
                    done.format = match envelope.version {
                        atrest_format::s3ec::Version::V3 => 3,
                        atrest_format::s3ec::Version::V2 => 2,
                        _ => 1,
                    };
                    let s3ec = S3ecSource {
                        context,
                        instruction_file: instruction_file.and_then(|f| f.version.etag),
                        authenticated: envelope.content.is_authenticated(),
                    };
                    return self
                        .plan_write(uri, head, first, Vec::new(), Some(s3ec), done)
                        .await;
                }
                Ok(None) => {}
                Err(Error::InstructionFile { source, .. }) => return Err(s3_error(uri, source)),
                Err(e) => {
                    return Err(not_atrest(format!(
                        "a damaged S3 Encryption Client object ({e})"
                    )))
                }
            }
        }
        let wrapped = match header {
            Ok(Parsed::Complete(Header::V1(h))) => h.wrapped_key().to_vec(),
            Ok(Parsed::Complete(_)) => return Ok((done, None)),
            Ok(Parsed::Incomplete { .. }) => {
                let bytes = if head.len == 1 { "byte" } else { "bytes" };
                return Err(not_atrest(format!(
                    "only {} {bytes}, too short for a header",
                    head.len
                )));
            }
            Err(e) => return Err(not_atrest(e.to_string())),
        };
        done.format = 1;
        self.plan_write(uri, head, first, wrapped, None, done).await
    }

    /// The rewrite of an object to upgrade (none in a dry run).
    async fn plan_write(
        &self,
        uri: &S3Uri,
        head: atrest_s3::ObjectHead,
        first: Fetched,
        wrapped: Vec<u8>,
        s3ec: Option<S3ecSource>,
        mut done: Upgraded,
    ) -> Result<(Upgraded, Option<Job>), UpgradeError> {
        if s3ec.is_some() {
            if self.options.key.is_none() {
                return Err(UpgradeError::KeyNeeded {
                    uri: uri.to_string(),
                });
            }
            done.shared_data_key = false;
        }
        if self.options.dry_run {
            done.action = UpgradeAction::WouldUpgrade;
            return Ok((done, None));
        }
        let s3 = self.transfer.s3();
        let mut properties = head.properties;
        if s3ec.is_some() {
            // The client's envelope describes the old object only.
            properties
                .metadata
                .retain(|k, _| !k.to_ascii_lowercase().starts_with("x-amz-"));
        }
        if head.tag_count.is_none_or(|n| n > 0) {
            properties.tags = atrest_s3::get_tags(s3, uri, head.version_id.as_deref())
                .await
                .map_err(|e| s3_error(uri, e))?;
        }
        let job = Job {
            uri: uri.clone(),
            etag: head.etag,
            len: head.len,
            recorded_key: first.metadata.get(KMS_KEY_METADATA).cloned(),
            first: Some(first),
            wrapped,
            properties,
            s3ec,
        };
        Ok((done, Some(job)))
    }

    /// The v2 copy at `temp`, checked, then put in place of the original.
    async fn rewrite(
        &self,
        mut job: Job,
        temp: &S3Uri,
        done: &mut Upgraded,
    ) -> Result<(), UpgradeError> {
        let uri = &job.uri;
        let stop = &self.options.stop;
        let first = job.first.take().expect("the first fetch is used once");
        let (written, key_id) = self.copy_to(&job, first, temp).await?;
        let check = Verify::new(self.transfer.clone(), VerifyOptions::default());
        let checked = tokio::select! {
            checked = check.object(temp) => checked,
            () = stop.stopped() => return Err(stopped(uri)),
        };
        let checked = match checked {
            Ok(v) if v.authenticated && v.plaintext_len == written => v,
            Ok(v) => {
                return Err(UpgradeError::Check {
                    uri: uri.to_string(),
                    source: Box::new(VerifyError::NotAtrest {
                        uri: temp.to_string(),
                        reason: format!(
                            "{} bytes of plaintext, not the {written} of the original",
                            v.plaintext_len
                        ),
                    }),
                })
            }
            Err(e) => {
                return Err(UpgradeError::Check {
                    uri: uri.to_string(),
                    source: Box::new(e),
                })
            }
        };
        let temp_etag = checked.version.etag.clone().unwrap_or_default();
        let mut properties = job.properties.clone();
        if let Some(arn) = &key_id {
            properties
                .metadata
                .insert(KMS_KEY_METADATA.to_owned(), arn.clone());
        }
        self.replace(&job, &properties, (temp, &temp_etag), checked.object_len)
            .await?;
        if let Some(etag) = job.s3ec.as_ref().and_then(|s| s.instruction_file.as_ref()) {
            let suffix = atrest_format::s3ec::INSTRUCTION_SUFFIX;
            let file = uri.with_key(format!("{}{suffix}", uri.key()));
            match atrest_s3::delete_if_match(self.transfer.s3(), &file, etag).await {
                Ok(()) | Err(S3Error::NoSuchKey { .. }) => {}
                // The object is upgraded; its old envelope no longer
                // applies to anything, and a stale one is harmless.
                Err(e) => tracing::warn!(
                    uri = %crate::escape(&file.to_string()),
                    error = %with_causes(&e),
                    "could not delete the instruction file of an upgraded object"
                ),
            }
        }
        done.action = UpgradeAction::Upgraded;
        done.new_object_len = Some(checked.object_len);
        done.plaintext_len = Some(written);
        done.key_id = key_id;
        Ok(())
    }

    /// The original, decrypted as it downloads, encrypted as v2 to `temp`;
    /// the plaintext length and the new key's ARN.
    async fn copy_to(
        &self,
        job: &Job,
        first: Fetched,
        temp: &S3Uri,
    ) -> Result<(u64, Option<String>), UpgradeError> {
        let uri = &job.uri;
        let stop = &self.options.stop;
        let key = match &self.options.key {
            Some(key) => DataKeyFrom::Generate(key.clone()),
            None => DataKeyFrom::Wrapped(job.wrapped.clone().into()),
        };
        let (reader, writer) = tokio::io::duplex(PIPE);
        let context = job.s3ec.as_ref().map_or(&[][..], |s| s.context.as_slice());
        let mut upload = self
            .transfer
            .upload(temp, key)
            .format(Format::V2)
            .context(context)
            .part_size(part_size(job.len))
            .start(reader);
        // Legacy AES-CBC objects of the client are what most need this.
        let download = self
            .transfer
            .download(uri)
            .first_fetch(first)
            .allow_legacy(job.s3ec.is_some())
            .into_writer(writer);
        let downloaded = tokio::select! {
            downloaded = download => Some(downloaded),
            () = stop.stopped() => None,
        };
        let downloaded = match downloaded {
            None => {
                upload.abort().await;
                return Err(stopped(uri));
            }
            Some(Err(e)) if is_broken_pipe(&e) => {
                // The upload stopped reading: its error is the cause.
                let up = upload.join().await;
                return Err(match up {
                    Err(e) => self.upload_error(job, e),
                    Ok(_) => UpgradeError::Other(e),
                });
            }
            Some(Err(e)) => {
                upload.abort().await;
                return Err(self.download_error(job, e));
            }
            Some(Ok(downloaded)) => downloaded,
        };
        let uploaded = tokio::select! {
            uploaded = upload.join() => Some(uploaded),
            () = stop.stopped() => None,
        };
        match uploaded {
            None => {
                upload.abort().await;
                Err(stopped(uri))
            }
            Some(Err(e)) => Err(self.upload_error(job, e)),
            Some(Ok(up)) => Ok((downloaded.written, up.key_id.map(|k| k.to_string()))),
        }
    }

    /// A multipart upload to the original key copying `source` inside S3,
    /// completed only if the original is still the version read.
    async fn replace(
        &self,
        job: &Job,
        properties: &Properties,
        source: (&S3Uri, &str),
        len: u64,
    ) -> Result<(), UpgradeError> {
        let (s3, uri) = (self.transfer.s3(), &job.uri);
        // For servers that ignore If-Match on the completion: the window
        // left is this HEAD to the completion.
        let now = atrest_s3::head(s3, uri)
            .await
            .map_err(|e| s3_error(uri, e))?;
        if now.etag != job.etag {
            return Err(UpgradeError::Changed {
                uri: uri.to_string(),
            });
        }
        let up = Replacement::start_from(s3, uri, properties, &job.etag, source)
            .await
            .map_err(|e| s3_error(uri, e))?;
        let ranges = copy_ranges(0, len, crate::rewrap::COPY_PART_SIZE);
        let work = async {
            let parts: Vec<_> = futures::stream::iter(ranges.iter().enumerate())
                .map(|(i, &(start, end))| up.copy(i as i32 + 1, start, end))
                .buffer_unordered(crate::rewrap::COPY_CONCURRENCY)
                .try_collect()
                .await?;
            up.complete(parts).await
        };
        let result = tokio::select! {
            result = work => result.map_err(|e| s3_error(uri, e)),
            () = self.options.stop.stopped() => Err(stopped(uri)),
        };
        match result {
            Ok(()) => Ok(()),
            // Its completion may have landed all the same: then the object
            // is upgraded.
            Err(e) => match up.abort().await {
                Abandoned::Completed => Ok(()),
                Abandoned::Aborted => Err(e),
            },
        }
    }

    fn download_error(&self, job: &Job, e: Error) -> UpgradeError {
        let uri = job.uri.to_string();
        match e {
            Error::Decrypt(_) => {
                let why = match &job.s3ec {
                    Some(s) if s.authenticated => {
                        "its authentication tag (or key commitment) does not match"
                    }
                    _ => "its CBC padding is invalid",
                };
                UpgradeError::Corrupted { uri, why }
            }
            Error::Key(source) => UpgradeError::Key {
                what: unwrapping(job),
                uri,
                source,
            },
            Error::ObjectChanged { .. } => UpgradeError::Changed { uri },
            Error::S3(e) => s3_error(&job.uri, e),
            e => UpgradeError::Other(e),
        }
    }

    fn upload_error(&self, job: &Job, e: Error) -> UpgradeError {
        match e {
            Error::Key(source) => UpgradeError::Key {
                uri: job.uri.to_string(),
                what: match &self.options.key {
                    Some(key) => format!("cannot make a data key under `{}`", crate::escape(key)),
                    None => unwrapping(job),
                },
                source,
            },
            Error::S3(e) => UpgradeError::S3(e),
            e => UpgradeError::Other(e),
        }
    }
}

/// What failed when the object's data key would not unwrap, naming the KMS
/// key its metadata records.
fn unwrapping(job: &Job) -> String {
    match &job.recorded_key {
        Some(arn) => format!(
            "cannot unwrap the data key ({})",
            crate::recorded_key_note(arn)
        ),
        None => "cannot unwrap the data key".into(),
    }
}

fn stopped(uri: &S3Uri) -> UpgradeError {
    UpgradeError::Stopped {
        uri: uri.to_string(),
    }
}

fn s3_error(uri: &S3Uri, e: S3Error) -> UpgradeError {
    match e {
        S3Error::Changed { .. } => UpgradeError::Changed {
            uri: uri.to_string(),
        },
        e => UpgradeError::S3(e),
    }
}

fn is_broken_pipe(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// What an upgrade's temporary object adds to its object's key, before 16
/// hex digits: `KEY.atrest-upgrade-0123456789abcdef`.
const TEMPORARY_INFIX: &str = ".atrest-upgrade-";

/// Whether `key` is named as an upgrade's temporary object: one that is
/// still there was left by an upgrade that could not clean up (SIGKILL, a
/// lost machine), and holds a whole encrypted copy of its object.
pub fn is_temporary_object(key: &str) -> bool {
    key.rsplit_once(TEMPORARY_INFIX)
        .is_some_and(|(object, hex)| {
            !object.is_empty() && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// An error and its causes on one line, for a warning: the cause says
/// why ("ListObjectVersions ... failed" alone did not).
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::escape(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_objects_are_told_by_their_name() {
        assert!(is_temporary_object("p/k.atrest-upgrade-0123456789abcdef"));
        assert!(is_temporary_object("k.atrest-upgrade-0123456789ABCDEF"));
        for other in [
            "k.atrest-upgrade-0123456789abcde",
            "k.atrest-upgrade-0123456789abcdefa",
            "k.atrest-upgrade-0123456789abcdeg",
            ".atrest-upgrade-0123456789abcdef",
            "k.atrest-upgrade-",
            "k",
        ] {
            assert!(!is_temporary_object(other), "{other}");
        }
    }
}
