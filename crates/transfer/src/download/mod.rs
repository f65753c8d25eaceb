//! Downloads: the first GET (discovery: header, length, ETag), then the
//! plan of what to fetch, then ranged streams into the sink.

mod ordered;
mod stream;
pub(crate) mod v1;
mod v2;

use std::sync::Arc;

use atrest_format::{parse_header, Header, Parsed};
use atrest_s3::{ByteRange, Fetched, ObjectVersion, S3Uri};

use crate::observer::{Observer, Warning};
use crate::sink::{Discard, FileAt, OrderedSink, Sink};
use crate::{Error, KeyError, PlainRange, Transfer};

pub use ordered::ORDERED_WINDOW;

/// The first GET: larger than any header, so one request gives the header,
/// the object's length, and all of a small object.
pub const FIRST_FETCH: u64 = atrest_format::MAX_HEADER_LEN as u64;

/// Default ranged GETs streaming into a file at once: measured on a 1 GiB
/// download, 8 streams took 2.26 s and 4 took 2.45 s (medians of 5), while
/// curl's plain ranged download was no faster with 8 than with 4. Memory
/// stays ~36 MiB (a few 512 KiB batches per stream).
pub const FILE_STREAMS: usize = 8;

/// Default ranged GETs streaming at once for ordered output (stdout, a
/// range), each over a part-sized run, within [`ORDERED_WINDOW`].
/// Measured on a 1 GiB download to stdout (curl's 4 ranged GETs: 1.97-2.18
/// s): 8 streams took 2.73-2.82 s at 49 MiB peak RSS, 12 took 2.30-2.37 s at
/// 52-54 MiB, 16 took 2.29-2.38 s at 56-61 MiB. More streams than into a
/// file, as streams past the window wait.
pub const ORDERED_STREAMS: usize = 12;

/// The most ranged GETs one download streams at once: far past any gain
/// (see [`FILE_STREAMS`]), and a bound that keeps a caller's
/// `usize::MAX` from meaning endless tasks.
pub const MAX_STREAMS: usize = 1024;

/// Default bytes per ranged GET run: the upload part size, 8 MiB.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// Plaintext decrypted per step of a stream: below glibc's mmap threshold
/// (which the atrest binary fixes at 1 MiB), so these buffers are recycled,
/// not remapped.
pub(crate) const STREAM_BATCH: usize = 512 * 1024;

/// A download being set up; see [`Transfer::download`].
#[must_use = "a download does nothing until it is sent into a sink"]
pub struct Download<'t> {
    transfer: &'t Transfer,
    uri: S3Uri,
    range: Option<PlainRange>,
    expect_context: Vec<(String, String)>,
    concurrency: Option<usize>,
    part_size: usize,
    first: Option<Fetched>,
    allow_legacy: bool,
    observer: Arc<dyn Observer>,
}

impl std::fmt::Debug for Download<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("uri", &self.uri)
            .field("range", &self.range)
            .field("concurrency", &self.concurrency)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// The kinds of object a download reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// atrest v1 (the original tool's AES-CBC).
    V1,
    /// atrest v2 (authenticated frames).
    V2,
    /// An object of the AWS S3 Encryption Client (V2 or V3 GCM, or legacy
    /// CBC).
    S3EncryptionClient,
}

impl Kind {
    /// Its short name in reports: `v1`, `v2` or `s3ec`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::V1 => "v1",
            Kind::V2 => "v2",
            Kind::S3EncryptionClient => "s3ec",
        }
    }
}

/// What a finished download read.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Downloaded {
    /// The object's format.
    pub format: Kind,
    /// Plaintext bytes written to the sink.
    pub written: u64,
    /// Which key had wrapped the data key (for KMS: its ARN), if known.
    pub key_id: Option<Arc<str>>,
    /// The version of the object read (every GET was pinned to it).
    pub version: ObjectVersion,
    /// The version of the S3 Encryption Client instruction file read
    /// with it, if it had one.
    pub instruction_file: Option<ObjectVersion>,
    /// The source's modification time its upload recorded
    /// ([`crate::metadata::MTIME_METADATA`]), else when the object was
    /// written: the time to give a file it is downloaded into.
    pub source_modified: Option<std::time::SystemTime>,
}

impl<'t> Download<'t> {
    pub(crate) fn new(transfer: &'t Transfer, uri: S3Uri) -> Self {
        Download {
            transfer,
            uri,
            range: None,
            expect_context: Vec::new(),
            concurrency: None,
            part_size: DEFAULT_PART_SIZE,
            first: None,
            allow_legacy: false,
            observer: Arc::new(crate::NoProgress),
        }
    }

    /// Only these plaintext bytes: a [`ByteRange`], or [`PlainRange::Last`]
    /// bytes. Of a v2 object only the frames that hold them are fetched; an
    /// S3 Encryption Client GCM object is fetched whole, as its one tag
    /// covers all of it (see [`allow_legacy`](Download::allow_legacy) for
    /// a range without it); a v1 object has no ranges
    /// ([`Error::RangeNeedsV2`]). An end past the plaintext is clipped to
    /// it.
    pub fn range(mut self, range: impl Into<PlainRange>) -> Self {
        self.range = Some(range.into());
        self
    }

    /// Fails unless the object's encryption context holds every pair.
    pub fn expect_context(mut self, pairs: &[(String, String)]) -> Self {
        self.expect_context = pairs.to_vec();
        self
    }

    /// Ranged GETs streaming at once; default [`FILE_STREAMS`] into a file,
    /// [`ORDERED_STREAMS`] into an ordered sink; at most [`MAX_STREAMS`]
    /// (more are taken as that many).
    pub fn concurrency(mut self, streams: usize) -> Self {
        self.concurrency = Some(streams.clamp(1, MAX_STREAMS));
        self
    }

    /// Smallest run of the object one ranged GET covers (default
    /// [`DEFAULT_PART_SIZE`]; at least 512 KiB, the batch a stream reads
    /// at a time: a run of a few bytes would be a GET each).
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(STREAM_BATCH);
        self
    }

    /// The download's first GET (bytes `0..FIRST_FETCH` of the object, not
    /// pinned), made already by the caller, e.g. to look at the object's
    /// metadata: the download starts from it instead of making it again.
    /// It must be of this download's URI: a [`Fetched`] names no object,
    /// so nothing can check, and the rest of the object is fetched pinned
    /// to its version (its ETag).
    pub fn first_fetch(mut self, first: Fetched) -> Self {
        self.first = Some(first);
        self
    }

    /// Also read what is not authenticated, with a warning to the
    /// observer: legacy AES-CBC objects of the S3 Encryption Client, and
    /// ranges of its GCM objects decrypted without the tag (AES-CTR).
    /// Without it, those fail.
    pub fn allow_legacy(mut self, allow: bool) -> Self {
        self.allow_legacy = allow;
        self
    }

    /// Told of the total and of every byte written.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Downloads into `file`, which must be empty (one that is not is
    /// refused, [`Error::Unsupported`]: bytes past the object's would be
    /// left), written at offsets by parallel streams. On error the file
    /// holds an arbitrary part of the plaintext: write to a temporary file
    /// and rename it only on success.
    pub async fn into_file(self, file: std::fs::File) -> Result<Downloaded, Error> {
        let len = file.metadata()?.len();
        if len != 0 {
            return Err(Error::Unsupported(format!(
                "a download into a file needs an empty file; this one holds {len} bytes"
            )));
        }
        self.into_sink(Sink::File(file)).await
    }

    /// Downloads into any ordered writer, in order; on error the writer
    /// holds a prefix of the plaintext. A v2 or S3 Encryption Client GCM
    /// object's plaintext is authenticated before it is written; a v1
    /// object's cannot be (its format has no tag: only its padding is
    /// checked, and [`Observer::warning`](crate::Observer::warning) is told).
    pub async fn into_writer<W>(self, writer: W) -> Result<Downloaded, Error>
    where
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        let mut writer = crate::sink::Writer(writer);
        self.into_sink(Sink::Ordered(&mut writer)).await
    }

    /// Downloads into `sink`.
    pub async fn into_sink(self, sink: Sink<'_>) -> Result<Downloaded, Error> {
        let first = match self.first {
            Some(first) => first,
            None => {
                let range = ByteRange::new(0, FIRST_FETCH - 1);
                atrest_s3::get_range(&self.transfer.s3, &self.uri, range, None).await?
            }
        };
        let source_modified = crate::metadata::recorded_mtime(&first.metadata).or_else(|| {
            first
                .last_modified
                .and_then(|t| std::time::SystemTime::try_from(t).ok())
        });
        let job = Arc::new(Job {
            s3: self.transfer.s3.clone(),
            uri: self.uri.clone(),
            // Every later GET reads the version this one did, or fails.
            pin: first.version.clone(),
            observer: Arc::clone(&self.observer),
        });
        // An S3 Encryption Client object: by its metadata, or by an
        // instruction file when the body is no atrest object either.
        let parsed = parse_header(&first.bytes);
        let policy = atrest_format::s3ec::Policy {
            allow_legacy: self.allow_legacy,
        };
        let found = crate::s3ec::detect(
            &self.transfer.s3,
            &self.uri,
            &first.metadata,
            parsed.is_err(),
            policy,
        )
        .await?;
        if let Some((envelope, instruction_file)) = found {
            let options = crate::s3ec::Options {
                expect_context: &self.expect_context,
                allow_legacy: self.allow_legacy,
                range: self.range,
                concurrency: self.concurrency,
                run_len: self.part_size as u64,
            };
            let keys = self.transfer.keys.as_ref();
            let (written, key_id) =
                crate::s3ec::download(&job, keys, envelope, first, options, sink).await?;
            return Ok(Downloaded {
                format: Kind::S3EncryptionClient,
                written,
                key_id,
                version: job.pin.clone(),
                instruction_file: instruction_file.map(|f| f.version),
                source_modified,
            });
        }
        let header = match parsed.map_err(Error::NotAtrest)? {
            Parsed::Complete(header) => header,
            Parsed::Incomplete { .. } => return Err(Error::TooShort(first.object_len)),
        };
        if header.keyring() != self.transfer.keys.keyring() {
            return Err(Error::WrongKeyring {
                uri: self.uri.to_string(),
                recorded: header.keyring(),
                asked: self.transfer.keys.keyring(),
            });
        }
        // Which key to ask for, if KMS will not unwrap.
        let recorded_key = first.metadata.get(crate::KMS_KEY_METADATA).cloned();
        let recorded = |e: KeyError| Error::Key(e.with_recorded_key(recorded_key.as_ref()));
        let (format, key_id, written) = match header {
            Header::V1(h) => {
                if !self.expect_context.is_empty() {
                    return Err(Error::NoContext {
                        uri: self.uri.to_string(),
                    });
                }
                if self.range.is_some() {
                    return Err(Error::RangeNeedsV2 {
                        uri: self.uri.to_string(),
                    });
                }
                self.observer.warning(&Warning::Unauthenticated {
                    uri: self.uri.to_string(),
                });
                let key = self
                    .transfer
                    .keys
                    .unwrap_recorded(h.wrapped_key(), &[], recorded_key.as_deref())
                    .await
                    .map_err(recorded)?;
                let options = v1::Options {
                    concurrency: self.concurrency,
                    run_len: self.part_size as u64,
                };
                let written = v1::download(&job, &h, &key.key, first, options, sink).await?;
                (Kind::V1, key.key_id, written)
            }
            Header::V2(h) => {
                check_expected_context(&h, &self.expect_context)?;
                let key = self
                    .transfer
                    .keys
                    .unwrap_recorded(
                        h.wrapped_key(),
                        &h.context().kms_context(),
                        recorded_key.as_deref(),
                    )
                    .await
                    .map_err(recorded)?;
                let cipher = Arc::new(atrest_crypto::v2::FrameCipher::new(&key.key, &h)?);
                let plan = v2::Plan::new(&h, first.object_len, self.range, self.part_size)?;
                self.observer.total(plan.len);
                let options = v2::Options {
                    concurrency: self.concurrency,
                    whole_range: self.range.is_none(),
                };
                let written = v2::download(&job, cipher, plan, first.bytes, options, sink).await?;
                (Kind::V2, key.key_id, written)
            }
            _ => unreachable!("parse_header yields only known versions"),
        };
        Ok(Downloaded {
            format,
            written,
            key_id,
            version: job.pin.clone(),
            instruction_file: None,
            source_modified,
        })
    }
}

/// Where the streams' plaintext goes.
#[derive(Clone)]
pub(crate) enum Destination {
    /// A file, each batch written at its offset by the blocking pool.
    File(Arc<std::fs::File>),
    /// The ordered writer.
    Ordered(ordered::Window),
    /// Nowhere: the batch is counted and its buffer refilled.
    Discard,
}

/// What every stream of one download shares.
pub(crate) struct Job {
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) uri: S3Uri,
    /// The version every GET reads.
    pub(crate) pin: ObjectVersion,
    pub(crate) observer: Arc<dyn Observer>,
}

/// A sink as an ordered one: a file is written at increasing offsets.
pub(crate) fn ordered(sink: Sink<'_>) -> OrderedTo<'_> {
    match sink {
        Sink::File(file) => OrderedTo::File(FileAt::new(file)),
        Sink::Ordered(sink) => OrderedTo::Sink(sink),
        Sink::Discard => OrderedTo::Discard(Discard),
    }
}

pub(crate) enum OrderedTo<'a> {
    File(FileAt),
    Sink(&'a mut dyn OrderedSink),
    Discard(Discard),
}

impl OrderedTo<'_> {
    pub(crate) fn sink(&mut self) -> &mut dyn OrderedSink {
        match self {
            OrderedTo::File(file) => file,
            OrderedTo::Sink(sink) => *sink,
            OrderedTo::Discard(discard) => discard,
        }
    }
}

/// Whether every pair of `expected` is in `header`'s encryption context
/// ([`Error::ContextMismatch`] names the first that is not).
pub fn check_expected_context(
    header: &atrest_format::v2::Header,
    expected: &[(String, String)],
) -> Result<(), Error> {
    for (k, v) in expected {
        match header.context().get(k) {
            Some(found) if found == v => {}
            found => {
                return Err(Error::ContextMismatch {
                    key: k.clone(),
                    expected: v.clone(),
                    found: found.map(str::to_owned),
                })
            }
        }
    }
    Ok(())
}
