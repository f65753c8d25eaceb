//! An S3 Batch Operations handler for atrest (invocation schema 2.0): the
//! core of the `atrest-lambda` function, a library so that tests (and other
//! hosts) drive it with event JSON.
//!
//! A job's `userArguments` pick the [`Operation`]; each task names one
//! object; [`Handler::handle`] answers every task with a [`ResultCode`]
//! and a short line for the completion report:
//!
//! - `Succeeded`: done, or found done already. Every operation is
//!   idempotent, because Batch retries tasks and runs a task again when an
//!   invocation is lost: an object already encrypted (an atrest v2 object
//!   at the destination) is "already encrypted", one already under the
//!   target key is "already under KEY".
//! - `TemporaryFailure`: throttling, 5xx, timeouts, an object that changed
//!   meanwhile ([`classify`]); Batch retries these.
//! - `PermanentFailure`: not found, access denied, bad credentials, not an
//!   atrest object, an object too large for one invocation, bad arguments.
//!
//! Bodies stream: an encryption holds at most `concurrency` parts of
//! `part size` bytes in memory (4 × 8 MiB by default, more for objects
//! over 80 GB, whose parts grow to fit 10,000) and writes nothing to /tmp;
//! a rewrap moves only the header and 5 MiB through the function, whatever
//! the object's size. See the crate README for the limits.
//!
//! ```no_run
//! # async fn example(event_json: &str) {
//! use atrest_lambda::{BatchEvent, Handler, Limits};
//!
//! let config = aws_config::load_from_env().await;
//! let handler = Handler::new(
//!     aws_sdk_s3::Client::new(&config),
//!     atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config)),
//!     Limits::default(),
//! );
//! let event: BatchEvent = serde_json::from_str(event_json).unwrap();
//! let response = handler.handle(event).await;
//! println!("{}", serde_json::to_string(&response).unwrap());
//! # }
//! ```
#![deny(missing_docs)]

mod classify;
pub mod event;
mod operation;

use std::sync::Arc;
use std::time::Duration;

use atrest_kms::{CacheLimits, CachedKeys, Kms};
use atrest_s3::{ByteRange, ObjectVersion, S3Error, S3Uri};
use atrest_transfer::list::Kind;
use atrest_transfer::metadata::SOURCE_ETAG_METADATA;
use atrest_transfer::rewrap::{Action, Rewrap as Rewrapper, RewrapOptions};
use atrest_transfer::upgrade::{Upgrade as Upgrader, UpgradeAction, UpgradeOptions};
use atrest_transfer::verify::{Verify as Verifier, VerifyOptions};
use atrest_transfer::{DataKeyFrom, Stop, Transfer};
use futures::StreamExt;

pub use classify::{classify, TaskError};
pub use event::{BatchEvent, BatchResponse, ResultCode, Task, TaskResult, SCHEMA_VERSION};
pub use operation::{Encrypt, Operation, Rewrap, Upgrade, Verify};

/// When an invocation's tasks must end: at `stop` rewraps and upgrades are
/// told to stop (they clean up), and at `abandon` whatever still runs is
/// dropped; both before the invocation's own deadline, with time left to
/// answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// When running tasks are told to stop.
    pub stop: tokio::time::Instant,
    /// When tasks still running are dropped.
    pub abandon: tokio::time::Instant,
}

/// What one invocation may take on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Objects larger than this are refused by `encrypt`, `verify` and
    /// `upgrade` (a permanent failure naming the CLI) unless done already:
    /// their body must pass through the function within Lambda's 15
    /// minutes. Default 50 GiB (57 MiB/s over 15 minutes);
    /// `ATREST_MAX_OBJECT_BYTES`.
    pub max_object_bytes: u64,
    /// Tasks of one invocation worked on at once (Batch sends one).
    pub task_concurrency: usize,
    /// Data-key reuse across the objects one function instance encrypts
    /// (see [`atrest_kms::CachedKeys`]): each object still derives its own
    /// key from a fresh salt.
    pub key_cache: CacheLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 50 << 30,
            task_concurrency: 8,
            key_cache: CacheLimits {
                max_objects: 1000,
                max_age: Duration::from_secs(300),
            },
        }
    }
}

impl Limits {
    /// The defaults, with `ATREST_MAX_OBJECT_BYTES` and
    /// `ATREST_KEY_CACHE_MAX_OBJECTS` (1 turns data-key reuse off) from the
    /// environment when set; a value that is not a positive number is an
    /// error.
    pub fn from_env() -> Result<Self, String> {
        let mut limits = Limits::default();
        let number = |name: &str| -> Result<Option<u64>, String> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(format!("{name}={v:?} is not a positive number")),
                },
            }
        };
        if let Some(n) = number("ATREST_MAX_OBJECT_BYTES")? {
            limits.max_object_bytes = n;
        }
        if let Some(n) = number("ATREST_KEY_CACHE_MAX_OBJECTS")? {
            limits.key_cache.max_objects = n;
        }
        Ok(limits)
    }
}

/// The handler: clients, a data-key cache shared by every invocation the
/// function instance serves, and its limits.
#[derive(Debug)]
pub struct Handler {
    s3: aws_sdk_s3::Client,
    kms: Kms,
    transfer: Transfer,
    limits: Limits,
}

/// A task's success: the line for the report.
type Done = Result<String, TaskError>;

impl Handler {
    /// A handler with these clients.
    pub fn new(s3: aws_sdk_s3::Client, kms: Kms, limits: Limits) -> Self {
        let keys = Arc::new(CachedKeys::cached(kms.clone(), limits.key_cache));
        Handler {
            transfer: Transfer::new(s3.clone(), keys),
            s3,
            kms,
            limits,
        }
    }

    /// Answers one invocation: a result for every task, in the tasks'
    /// order, answered in the event's schema version. Never fails as a
    /// whole: bad arguments or a schema other than 2.0 fail each task
    /// permanently, so the job's report says why.
    pub async fn handle(&self, event: BatchEvent) -> BatchResponse {
        self.handle_until(event, None).await
    }

    /// [`Handler::handle`], answering by a [`Deadline`]: a task not finished
    /// by then is a [`ResultCode::TemporaryFailure`] (Batch retries it), so
    /// that a stalled endpoint or a slow object costs one report line, not
    /// the whole invocation (Lambda would end it at its timeout, unanswered).
    /// A task stopped so leaves no object half-written: rewraps and upgrades
    /// are stopped first and clean up (an upgrade's temporary object, a
    /// multipart upload) within the deadline's grace; an upload is aborted.
    /// One abandoned after the grace may leave a multipart upload for the
    /// bucket's lifecycle rule.
    pub async fn handle_until(
        &self,
        event: BatchEvent,
        deadline: Option<Deadline>,
    ) -> BatchResponse {
        let (stopper, stop) = Stop::new();
        let stopping = deadline.map(|d| {
            tokio::spawn(async move {
                tokio::time::sleep_until(d.stop).await;
                stopper.stop();
            })
        });
        let stop = &stop;
        let operation = match event.invocation_schema_version.as_str() {
            SCHEMA_VERSION => Operation::from_arguments(&event.job.user_arguments),
            other => Err(format!(
                "invocation schema {other}: this function needs 2.0 (set InvocationSchemaVersion 2.0 in the job's LambdaInvoke operation)"
            )),
        };
        let results = futures::stream::iter(&event.tasks)
            .map(|task| {
                let operation = &operation;
                async move {
                    let done = match (operation, deadline) {
                        _ if stop.is_stopped() => Err(TaskError::TimedOut),
                        (Ok(op), Some(deadline)) => {
                            let task = self.task(op, task, stop);
                            let task = tokio::time::timeout_at(deadline.abandon, task);
                            match task.await {
                                Ok(Err(_)) if stop.is_stopped() => Err(TaskError::TimedOut),
                                Ok(done) => done,
                                Err(_) => Err(TaskError::TimedOut),
                            }
                        }
                        (Ok(op), None) => self.task(op, task, stop).await,
                        (Err(why), _) => Err(TaskError::Refused(why.clone())),
                    };
                    result(task, done)
                }
            })
            .buffered(self.limits.task_concurrency.max(1))
            .collect()
            .await;
        if let Some(stopping) = stopping {
            stopping.abort();
        }
        BatchResponse {
            invocation_schema_version: event.invocation_schema_version,
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: event.invocation_id,
            results,
        }
    }

    /// One task; rewraps and upgrades watch `stop`.
    async fn task(&self, operation: &Operation, task: &Task, stop: &Stop) -> Done {
        let key = task.key().map_err(TaskError::Refused)?;
        let bucket = task.bucket().map_err(TaskError::Refused)?;
        let uri = S3Uri::parse(&format!("s3://{bucket}/x"))
            .map_err(|e| TaskError::Refused(e.to_string()))?
            .with_key(key);
        let version = task.s3_version_id.as_deref().filter(|v| *v != "null");
        // A folder marker is left out, as the CLI's copies and runs over a
        // prefix leave it out: encrypted, it would no longer be one.
        if uri.key().ends_with('/') {
            if let Ok(head) = atrest_s3::head(&self.s3, &uri).await {
                if head.len == 0 {
                    return Ok("a folder marker: left as it is".to_owned());
                }
            }
        }
        match operation {
            Operation::Encrypt(args) => self.encrypt(args, &uri, version).await,
            Operation::Rewrap(args) => self.rewrap(args, &uri, version, stop).await,
            Operation::Verify(_) => self.verify(&uri, version).await,
            Operation::Upgrade(args) => self.upgrade(args, &uri, version, stop).await,
        }
    }

    /// `encrypt`: the source (the task's version, if given) read as it
    /// streams into an atrest v2 upload at the destination. Only plaintext
    /// is encrypted, wherever it goes.
    async fn encrypt(&self, args: &Encrypt, source: &S3Uri, version: Option<&str>) -> Done {
        let target = match &args.destination {
            Some(prefix) => prefix.with_key(format!("{}{}", prefix.key(), source.key())),
            None => source.clone(),
        };
        // A destination that names the source itself is in place, with
        // every safeguard of in place.
        if target.bucket() == source.bucket() && target.key() == source.key() {
            return self.encrypt_in_place(args, source, version).await;
        }
        let (kind, etag) = self.source_kind(source, version).await?;
        if let Some(done) = not_plaintext(&kind) {
            return done.map(|line| format!("{line} (the source; nothing written to {target})"));
        }
        // Done already? (A retried task, or a job run again.) Only a copy
        // that records this very source (its ETag) is: a source written
        // since is encrypted again, replacing the stale copy as `aws s3 cp`
        // would. (An empty source's ETag is not known: encrypted again.)
        let records_source = |head: &atrest_s3::ObjectHead| {
            let recorded = head.properties.metadata.get(SOURCE_ETAG_METADATA);
            etag.is_some() && recorded == etag.as_ref()
        };
        match atrest_s3::head(&self.s3, &target).await {
            Ok(head) if records_source(&head) => {
                let entry = atrest_transfer::list::describe(&self.s3, &target).await?;
                if matches!(&entry.kind, Kind::Atrest(info) if info.version() == 2) {
                    return Ok("already encrypted".to_owned());
                }
            }
            Ok(_) | Err(S3Error::NoSuchKey { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // The version whose ETag the copy records is the one encrypted.
        let pin = ObjectVersion {
            etag: etag.clone(),
            version_id: version.map(str::to_owned),
        };
        let len = self
            .encrypt_body(args, source, &target, pin, etag.as_deref())
            .await?;
        Ok(format!("encrypted to {target} ({len} bytes)"))
    }

    /// `encrypt` in place: the current version, read pinned to its ETag.
    async fn encrypt_in_place(&self, args: &Encrypt, uri: &S3Uri, version: Option<&str>) -> Done {
        let head = atrest_s3::head(&self.s3, uri).await?;
        // Done already? (A retried task, or a job run again: the version
        // it names may be the plaintext that encryption replaced.)
        let entry = atrest_transfer::list::describe(&self.s3, uri).await?;
        if let Some(done) = not_plaintext(&entry.kind) {
            return done;
        }
        // Only the current version is rewritten: encrypting an older one
        // would make its content current again.
        if let Some(v) = version.filter(|v| head.version_id.as_deref() != Some(*v)) {
            return Err(not_current(
                v,
                "in place, only the current version is encrypted",
            ));
        }
        let pin = ObjectVersion::with_etag(&head.etag);
        let len = self.encrypt_body(args, uri, uri, pin, None).await?;
        Ok(format!("encrypted ({len} bytes)"))
    }

    /// What the source of an encryption to elsewhere is (the version the
    /// task names, or the current one), by `ls`'s tests, and its ETag.
    async fn source_kind(
        &self,
        uri: &S3Uri,
        version: Option<&str>,
    ) -> Result<(Kind, Option<String>), TaskError> {
        let pin = version.map(|version| ObjectVersion {
            etag: None,
            version_id: Some(version.to_owned()),
        });
        let range = ByteRange::new(0, atrest_format::MAX_HEADER_LEN as u64 - 1);
        let first = atrest_s3::get_range(&self.s3, uri, range, pin.as_ref()).await?;
        let kind = atrest_transfer::list::kind_of(uri.key(), &first);
        Ok((kind, first.version.etag))
    }

    /// Streams `source` (read as `pin` says) into an atrest v2 upload at
    /// `target`, recording `source_etag` if given; the plaintext's length.
    async fn encrypt_body(
        &self,
        args: &Encrypt,
        source: &S3Uri,
        target: &S3Uri,
        pin: ObjectVersion,
        source_etag: Option<&str>,
    ) -> Result<u64, TaskError> {
        let body = atrest_s3::get(&self.s3, source, ByteRange::from(0), Some(&pin)).await?;
        let len = body.content_length.unwrap_or(0);
        if len > self.limits.max_object_bytes {
            return Err(too_large(len, self.limits.max_object_bytes));
        }
        let mut upload = self
            .transfer
            .upload(target, DataKeyFrom::Generate(args.kms_key.clone()))
            .context(&args.context)
            .input_len(len);
        if let Some(etag) = source_etag {
            upload = upload.source_etag(etag);
        }
        upload.start(reader(body)).join().await?;
        Ok(len)
    }

    /// `rewrap`: the current version moved to the target key. A task
    /// naming an older version is refused, unless the object is done
    /// already (a retried task: its rewrap made a new version).
    async fn rewrap(&self, args: &Rewrap, uri: &S3Uri, version: Option<&str>, stop: &Stop) -> Done {
        let options = RewrapOptions::new(args.to_key.clone())
            .context(args.context.clone())
            .stop(stop.clone());
        if let Some(v) = version {
            let head = atrest_s3::head(&self.s3, uri).await?;
            if head.version_id.as_deref() != Some(v) {
                let dry_run =
                    Rewrapper::new(self.s3.clone(), self.kms.clone(), options.dry_run(true));
                return match dry_run.object(uri).await {
                    Ok(done) if done.action == Action::Skipped => {
                        Ok(format!("already under {}", done.to_key))
                    }
                    _ => Err(not_current(v, "rewrap rewrites the current version only")),
                };
            }
        }
        let rewrap = Rewrapper::new(self.s3.clone(), self.kms.clone(), options);
        let done = rewrap.object(uri).await?;
        Ok(match done.action {
            Action::Skipped => format!("already under {}", done.to_key),
            _ => format!("rewrapped to {}", done.to_key),
        })
    }

    /// `verify`: the current version downloaded and authenticated, nothing
    /// written. A task naming an older version is refused: it is not what
    /// would be checked.
    async fn verify(&self, uri: &S3Uri, version: Option<&str>) -> Done {
        let head = atrest_s3::head(&self.s3, uri).await?;
        if let Some(v) = version.filter(|v| head.version_id.as_deref() != Some(*v)) {
            return Err(not_current(v, "verify reads the current version only"));
        }
        if head.len > self.limits.max_object_bytes {
            return Err(too_large(head.len, self.limits.max_object_bytes));
        }
        let verify = Verifier::new(self.transfer.clone(), VerifyOptions::default());
        let done = verify.object(uri).await?;
        Ok(match done.authenticated {
            true => format!("verified ({} bytes authenticated)", done.plaintext_len),
            false => format!(
                "v1 padding valid ({} bytes; v1 cannot be authenticated)",
                done.plaintext_len
            ),
        })
    }

    /// `upgrade`: a v1 object re-encrypted as v2 in place (verified before
    /// it replaces the original); a v2 object is done already, whatever
    /// its size or the version the task names (a retried task's upgrade
    /// made a new version).
    async fn upgrade(
        &self,
        args: &Upgrade,
        uri: &S3Uri,
        version: Option<&str>,
        stop: &Stop,
    ) -> Done {
        let options = UpgradeOptions::default()
            .key(args.kms_key.clone())
            .stop(stop.clone());
        let head = atrest_s3::head(&self.s3, uri).await?;
        let stale = version.filter(|v| head.version_id.as_deref() != Some(*v));
        if stale.is_some() || head.len > self.limits.max_object_bytes {
            let dry_run = Upgrader::new(self.transfer.clone(), options.dry_run(true));
            if let Ok(done) = dry_run.object(uri).await {
                if done.action == UpgradeAction::Skipped {
                    return Ok("already v2".to_owned());
                }
            }
            return Err(match stale {
                Some(v) => not_current(v, "upgrade rewrites the current version only"),
                None => too_large(head.len, self.limits.max_object_bytes),
            });
        }
        let upgrade = Upgrader::new(self.transfer.clone(), options);
        let done = upgrade.object(uri).await?;
        Ok(match done.action {
            UpgradeAction::Upgraded => format!(
                "upgraded to v2 ({} bytes)",
                done.plaintext_len.unwrap_or_default()
            ),
            _ => "already v2".to_owned(),
        })
    }
}

/// What `encrypt` makes of a source that is not plaintext: an atrest v2
/// object is done already, anything else encrypted is refused. `None`:
/// plaintext (or unreadable: the read of its body says why).
fn not_plaintext(kind: &Kind) -> Option<Done> {
    let refused = |why: &str| Some(Err(TaskError::Refused(why.to_owned())));
    match kind {
        Kind::Atrest(info) if info.version() == 2 => Some(Ok("already encrypted".to_owned())),
        Kind::Atrest(_) => refused("already an atrest v1 object: use the upgrade operation"),
        Kind::S3EncryptionClient => refused("an S3 Encryption Client object: not plaintext"),
        Kind::InstructionFile => refused(
            "an S3 Encryption Client instruction file: its object's envelope, not plaintext",
        ),
        _ => None,
    }
}

fn not_current(version: &str, why: &str) -> TaskError {
    TaskError::Refused(format!(
        "version {version} is not the current version: {why}"
    ))
}

fn too_large(len: u64, limit: u64) -> TaskError {
    TaskError::Refused(format!(
        "{len} bytes: over this function's {limit} (ATREST_MAX_OBJECT_BYTES); use the atrest CLI for it"
    ))
}

/// A streaming download as the reader an upload consumes; a failed read
/// carries its [`S3Error`] (for [`classify`]).
fn reader(body: atrest_s3::Download) -> impl tokio::io::AsyncRead + Unpin + Send + 'static {
    let chunks = futures::stream::unfold(body, |mut body| async move {
        let chunk = body.next_chunk().await?;
        Some((chunk.map_err(std::io::Error::other), body))
    });
    tokio_util::io::StreamReader::new(Box::pin(chunks))
}

/// A task's result for the report: one short line, at most 1,000
/// characters with no control characters (keys and server messages are
/// untrusted text).
fn result(task: &Task, done: Done) -> TaskResult {
    let (code, line) = match done {
        Ok(line) => (ResultCode::Succeeded, line),
        Err(e) => (classify(&e), error_line(&e)),
    };
    const MAX: usize = 1000;
    let mut line = atrest_transfer::escape(&line);
    if let Some((cut, _)) = line.char_indices().nth(MAX) {
        line.truncate(cut);
    }
    TaskResult {
        task_id: task.task_id.clone(),
        result_code: code,
        result_string: line,
    }
}

/// The error and its causes on one line, as the CLI prints them.
fn error_line(e: &TaskError) -> String {
    let mut line = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
