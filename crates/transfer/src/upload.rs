//! Uploads: plaintext read into part-sized batches, sealed in place on the
//! blocking pool, and sent as multipart parts while the next batch is read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use atrest_crypto::{v1, v2, DataKey};
use atrest_format::keyring::Keyring;
use atrest_format::v2 as format_v2;
use atrest_format::v2::EncryptionContext;

use atrest_s3::{Abandoned, Properties, S3Error, S3Uri, UploadOptions, Uploader};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::buffers::{BufferPool, Pooled};
use crate::{Error, KeySource, Observer, Transfer};

/// v1 plaintext read per step: large enough to amortise syscalls, small
/// enough to keep memory flat.
const V1_READ_CHUNK: usize = 1 << 20;

/// v2: bytes read past a full batch to learn whether the input ended there.
const LOOKAHEAD: usize = 64 * 1024;

/// Default parts in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// The input of an upload.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;

/// Object formats an upload writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The original Node tool's AES-256-CBC, unauthenticated: only for
    /// readers that need it.
    V1,
    /// Authenticated, key-committing AES-256-GCM frames.
    #[default]
    V2,
    /// The AWS S3 Encryption Client's V3 (AES-256-GCM over the whole
    /// object, key commitment, metadata in the object): for readers that
    /// use that client. Needs [`DataKeyFrom::Generate`] with a KMS key and
    /// [`Upload::input_len`].
    S3ecV3,
}

/// Which data key encrypts an upload.
#[derive(Clone, Debug)]
pub enum DataKeyFrom {
    /// A fresh data key from the key source under this key id, bound to the
    /// encryption context (v2 and S3 Encryption Client objects; a v1
    /// upload refuses it).
    Generate(String),
    /// A shared data key, stored wrapped (as `create-data-key` makes it):
    /// unwrapped with no context; v2 objects record it in their context.
    Wrapped(Arc<[u8]>),
}

/// An upload being set up; see [`Transfer::upload`].
#[must_use = "an upload does nothing until it is started"]
pub struct Upload<'t> {
    transfer: &'t Transfer,
    uri: S3Uri,
    key: DataKeyFrom,
    context: Vec<(String, String)>,
    format: Format,
    frame_exponent: u8,
    options: UploadOptions,
    len: Option<u64>,
    expected_len: Option<u64>,
    observer: Arc<dyn Observer>,
    properties: Properties,
    modified: Option<SystemTime>,
    create_only: bool,
    source_etag: Option<String>,
    unchanged: Option<InputCheck>,
}

/// [`Upload::unchanged_input`]'s check.
type InputCheck = Arc<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Upload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("uri", &self.uri)
            .field("format", &self.format)
            .field("frame_exponent", &self.frame_exponent)
            .field("options", &self.options)
            .field("len", &self.len)
            .field("expected_len", &self.expected_len)
            .field("properties", &self.properties)
            .field("modified", &self.modified)
            .field("create_only", &self.create_only)
            .finish_non_exhaustive()
    }
}

/// What a finished upload stored.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Uploaded {
    /// Which key wrapped the data key (for KMS: its ARN), if known.
    pub key_id: Option<Arc<str>>,
    /// Plaintext bytes read from the input.
    pub plaintext_len: u64,
    /// Bytes of the stored object (what S3 acknowledged).
    pub object_len: u64,
}

impl<'t> Upload<'t> {
    pub(crate) fn new(transfer: &'t Transfer, uri: S3Uri, key: DataKeyFrom) -> Self {
        Upload {
            transfer,
            uri,
            key,
            context: Vec::new(),
            format: Format::V2,
            frame_exponent: format_v2::DEFAULT_FRAME_EXPONENT,
            options: UploadOptions {
                concurrency: DEFAULT_CONCURRENCY,
                ..UploadOptions::default()
            },
            len: None,
            expected_len: None,
            observer: Arc::new(crate::NoProgress),
            properties: Properties::default(),
            modified: None,
            create_only: false,
            source_etag: None,
            unchanged: None,
        }
    }

    /// The ETag of the S3 object this upload is an encrypted copy of,
    /// recorded in the object's metadata
    /// ([`crate::metadata::SOURCE_ETAG_METADATA`]): a later run tells from
    /// it whether the source changed since (a copy that records another
    /// ETag, or none, is stale).
    pub fn source_etag(mut self, etag: &str) -> Self {
        self.source_etag = Some(etag.to_owned());
        self
    }

    /// Writes the object only if none has its key (`If-None-Match: *`): a
    /// writer that got there first is never overwritten, and the upload
    /// fails with [`atrest_s3::S3Error::Exists`] (in [`Error::S3`]).
    pub fn create_only(mut self, create_only: bool) -> Self {
        self.create_only = create_only;
        self
    }

    /// The object's properties: user metadata, standard headers
    /// (Content-Type, ...), storage class, server-side encryption (on top
    /// of atrest's), tags and canned ACL. The user metadata must leave room
    /// for atrest's own entries ([`crate::metadata::check_user_metadata`]),
    /// or the upload fails before sending anything.
    pub fn properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// The source's modification time, recorded in the object's metadata
    /// ([`crate::metadata::MTIME_METADATA`]) for `sync` and for downloads
    /// to restore.
    pub fn modified(mut self, time: SystemTime) -> Self {
        self.modified = Some(time);
        self
    }

    /// Encryption context pairs, stored in the object and (with
    /// [`DataKeyFrom::Generate`]) bound to the data key by KMS. Not for v1
    /// (refused: its header has no place for them).
    pub fn context(mut self, pairs: &[(String, String)]) -> Self {
        self.context = pairs.to_vec();
        self
    }

    /// The format to write (default v2).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// v2 frames of `2^exponent` plaintext bytes: 12 to 24 (4 KiB to
    /// 16 MiB; default 16, 64 KiB). Others fail the upload
    /// ([`Error::Header`]).
    pub fn frame_exponent(mut self, exponent: u8) -> Self {
        self.frame_exponent = exponent;
        self
    }

    /// Bytes per part (default 8 MiB; between S3's 5 MiB and 5 GiB, others
    /// taken as the nearer; raised if needed so that an input of known
    /// length fits in 10,000 parts). A part is held in memory for each
    /// part in flight.
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.options.part_size = bytes;
        self
    }

    /// Parts in flight at once (default [`DEFAULT_CONCURRENCY`]; 1 to
    /// 10,000).
    pub fn concurrency(mut self, parts: usize) -> Self {
        self.options.concurrency = parts;
        self
    }

    /// Inputs of a known length of at least a part and below this go up in
    /// one streaming PutObject (see [`UploadOptions::multipart_threshold`]).
    pub fn multipart_threshold(mut self, bytes: u64) -> Self {
        self.options.multipart_threshold = bytes;
        self
    }

    /// The input's exact length, when known in advance (a file): it sizes
    /// the parts and the progress total. A different length fails the
    /// upload.
    pub fn input_len(mut self, len: u64) -> Self {
        self.len = Some(len);
        self
    }

    /// Asked once the whole input is read, before the object is completed:
    /// whether the input is still what was read (for a file, its length,
    /// identity and modification time as when it was opened). `false`
    /// fails the upload with [`Error::InputChanged`] and nothing is
    /// written: a file rewritten at the same length while it was read would
    /// otherwise make an object of its old and new bytes mixed. (A streaming
    /// PutObject, below [`Upload::multipart_threshold`] and above a part,
    /// may have completed by then: it is not asked.)
    pub fn unchanged_input(mut self, check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.unchanged = Some(Arc::new(check));
        self
    }

    /// About how long an input of unknown length (a stream) is: its parts
    /// are sized so that it fits S3's 10,000, as for
    /// [`Upload::input_len`], but another length is no failure.
    pub fn expected_len(mut self, about: u64) -> Self {
        self.expected_len = Some(about);
        self
    }

    /// Told of the object's length (when known) and of every part S3
    /// acknowledged.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Starts the upload of `input` on the runtime; the handle awaits or
    /// aborts it.
    pub fn start(self, input: impl AsyncRead + Unpin + Send + 'static) -> UploadHandle {
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        let job = Job {
            keys: Arc::clone(&self.transfer.keys),
            s3: self.transfer.s3.clone(),
            uri: self.uri,
            key: self.key,
            context: self.context,
            format: self.format,
            frame_exponent: self.frame_exponent,
            options: self.options,
            len: self.len,
            expected_len: self.expected_len,
            observer: self.observer,
            properties: self.properties,
            modified: self.modified,
            create_only: self.create_only,
            source_etag: self.source_etag,
            unchanged: self.unchanged,
            written: std::sync::OnceLock::new(),
        };
        let task = tokio::spawn(job.run(Box::new(input), cancelled));
        UploadHandle {
            task: Some(task),
            cancel: Some(cancel),
            joined: None,
        }
    }
}

/// A running upload: [`join`](UploadHandle::join) it, or
/// [`abort`](UploadHandle::abort) it (which aborts the multipart upload, so
/// no parts remain). Dropping the handle aborts the upload too, as dropping
/// a future cancels it (its multipart upload is aborted in the background);
/// a program that wants the object must join.
#[derive(Debug)]
#[must_use = "dropping an upload's handle aborts the upload: join it"]
pub struct UploadHandle {
    task: Option<JoinHandle<Result<Uploaded, Error>>>,
    cancel: Option<tokio::sync::oneshot::Sender<()>>,
    /// What an earlier join returned: the upload (`Some`), or a failure.
    joined: Option<Option<Uploaded>>,
}

impl UploadHandle {
    /// Waits for the upload to finish. On failure the multipart upload (if
    /// any) has been aborted. Cancel-safe: dropping the future leaves the
    /// upload running, to be joined again or aborted. Joined again once it
    /// has finished, it returns the same upload (or
    /// [`Error::JoinedAfterFailure`]).
    pub async fn join(&mut self) -> Result<Uploaded, Error> {
        let Some(task) = self.task.as_mut() else {
            return match &self.joined {
                Some(Some(uploaded)) => Ok(uploaded.clone()),
                _ => Err(Error::JoinedAfterFailure),
            };
        };
        let result = task.await;
        self.task = None;
        let result = result.map_err(|e| Error::Io(std::io::Error::other(e)))?;
        self.joined = Some(result.as_ref().ok().cloned());
        result
    }

    /// Stops the upload wherever it is and aborts its multipart upload;
    /// returns once that is done, saying whether the object was written
    /// all the same (its completion, or its one PUT, was sent before the
    /// abort took effect, or an earlier join returned it).
    pub async fn abort(mut self) -> Abandoned {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Ok(_) | Err(Error::AbortedAfterCompletion)) => Abandoned::Completed,
                _ => Abandoned::Aborted,
            },
            None if matches!(self.joined, Some(Some(_))) => Abandoned::Completed,
            None => Abandoned::Aborted,
        }
    }
}

/// Everything an upload task owns.
struct Job {
    keys: Arc<dyn crate::KeySource>,
    s3: aws_sdk_s3::Client,
    uri: S3Uri,
    key: DataKeyFrom,
    context: Vec<(String, String)>,
    format: Format,
    frame_exponent: u8,
    options: UploadOptions,
    len: Option<u64>,
    /// [`Upload::expected_len`].
    expected_len: Option<u64>,
    observer: Arc<dyn Observer>,
    properties: Properties,
    modified: Option<SystemTime>,
    create_only: bool,
    source_etag: Option<String>,
    /// [`Upload::unchanged_input`].
    unchanged: Option<InputCheck>,
    /// The header this upload wrote, and its key id: a create-only upload
    /// refused because the object exists tells by them whether the object
    /// is its own (a retried request whose first answer was lost).
    written: std::sync::OnceLock<(Vec<u8>, Option<Arc<str>>)>,
}

impl Job {
    async fn run(
        self,
        input: Input,
        cancelled: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<Uploaded, Error> {
        let mut options = self.options;
        if let Some(len) = self.len.or(self.expected_len) {
            // The encrypted object is a little larger: v2 adds 16 bytes a
            // frame (at most 1/256 at the smallest frames), plus the header.
            options = options
                .fitting(len.saturating_add(len / 256 + atrest_format::MAX_HEADER_LEN as u64));
        }
        crate::metadata::check_user_metadata(&self.properties.metadata)?;
        let mut properties = self.properties.clone();
        if let Some(time) = self.modified {
            properties.metadata.insert(
                crate::metadata::MTIME_METADATA.to_owned(),
                crate::metadata::encode_mtime(time),
            );
        }
        if let Some(etag) = &self.source_etag {
            let name = crate::metadata::SOURCE_ETAG_METADATA.to_owned();
            properties.metadata.insert(name, etag.clone());
        }
        let mut upload = Uploader::new(self.s3.clone(), self.uri.clone(), options);
        if self.len.is_none() && self.expected_len.is_none() {
            // A stream of unknown size: larger parts as it goes on.
            upload.grow_parts();
        }
        upload.set_properties(properties);
        if self.create_only {
            upload.create_only();
        }
        let observer = Arc::clone(&self.observer);
        let stored = Arc::new(AtomicU64::new(0));
        let acked = Arc::clone(&stored);
        upload.on_acknowledged(Arc::new(move |bytes| {
            acked.fetch_add(bytes, Ordering::Relaxed);
            observer.done(bytes)
        }));
        // A declared length is checked: a file that shrinks or grows while
        // it is read (a log being written, a truncation) must not become a
        // whole-looking object of other bytes. One byte past the length is
        // enough to tell.
        let input: Input = match self.len {
            Some(len) => Box::new(input.take(len.saturating_add(1))),
            None => input,
        };
        let read = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&read);
        let mut input: Input = Box::new(tokio_util::io::InspectReader::new(input, move |bytes| {
            counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }));
        let work = async {
            let key_id = match self.encrypt(&mut input, &mut upload).await {
                // Read past it (a streaming PutObject refuses the extra
                // bytes): that is why it failed.
                Err(_)
                    if self
                        .len
                        .is_some_and(|len| len < read.load(Ordering::Relaxed)) =>
                {
                    return Err(Error::InputChanged)
                }
                result => result?,
            };
            if self
                .len
                .is_some_and(|len| len != read.load(Ordering::Relaxed))
            {
                return Err(Error::InputChanged);
            }
            if let (Some(unchanged), false) = (&self.unchanged, upload.is_streaming()) {
                if !unchanged() {
                    return Err(Error::InputChanged);
                }
            }
            upload.finish().await?;
            Ok(Uploaded {
                key_id,
                plaintext_len: read.load(Ordering::Relaxed),
                object_len: stored.load(Ordering::Relaxed),
            })
        };
        // On abort the work stops wherever it is, and the upload is aborted.
        let mut result = tokio::select! {
            result = work => result,
            _ = cancelled => Err(Error::Aborted),
        };
        if self.create_only && matches!(result, Err(Error::S3(S3Error::Exists { .. }))) {
            if let Some(object_len) = self.own_object().await {
                let key_id = self.written.get().and_then(|(_, id)| id.clone());
                result = Ok(Uploaded {
                    key_id,
                    plaintext_len: read.load(Ordering::Relaxed),
                    object_len,
                });
            }
        }
        if result.is_err() {
            let abandoned = upload.abort().await;
            if abandoned == Abandoned::Completed && matches!(result, Err(Error::Aborted)) {
                return Err(Error::AbortedAfterCompletion);
            }
        }
        result
    }

    /// The length of the object at the upload's key if it is the one this
    /// upload wrote: it begins with this upload's header (its salt or IV
    /// and wrapped key are random, so no other writer's can match).
    async fn own_object(&self) -> Option<u64> {
        let (header, _) = self.written.get()?;
        let range = atrest_s3::ByteRange::new(0, header.len() as u64 - 1);
        let first = atrest_s3::get_range(&self.s3, &self.uri, range, None).await;
        first
            .ok()
            .filter(|f| f.bytes == header[..])
            .map(|f| f.object_len)
    }

    /// Gets the data key and writes the object; the plaintext key is
    /// dropped (and zeroized, once no cache holds it) on return.
    async fn encrypt(
        &self,
        input: &mut Input,
        upload: &mut Uploader,
    ) -> Result<Option<Arc<str>>, Error> {
        if self.format == Format::S3ecV3 {
            let (DataKeyFrom::Generate(key_id), Some(len)) = (&self.key, self.len) else {
                return Err(Error::Unsupported(
                    "an S3 Encryption Client V3 object needs a fresh data key (a KMS key id) and an input of known length (GCM's 64 GiB limit is checked before anything is uploaded)".into(),
                ));
            };
            let keys = self.keys.as_ref();
            return crate::s3ec::encrypt_v3(keys, key_id, &self.context, input, len, upload).await;
        }
        let ObjectKey {
            key,
            wrapped,
            key_id,
            context,
        } = object_key(self.keys.as_ref(), &self.key, self.format, &self.context).await?;
        // Which KMS key (and so which region) the object needs, for people
        // and error messages; no reader trusts it.
        if let Some(arn) = &key_id {
            upload.insert_metadata(crate::KMS_KEY_METADATA, arn.as_ref());
        }
        match self.format {
            Format::S3ecV3 => unreachable!("written above"),
            Format::V1 => {
                self.encrypt_v1(input, &key, wrapped, upload, &key_id)
                    .await?
            }
            Format::V2 => {
                let object = V2Object {
                    wrapped,
                    context,
                    frame_exponent: self.frame_exponent,
                };
                self.encrypt_v2(input, &key, object, upload, &key_id)
                    .await?
            }
        }
        Ok(key_id)
    }

    async fn encrypt_v1(
        &self,
        input: &mut Input,
        key: &DataKey,
        wrapped: Vec<u8>,
        upload: &mut Uploader,
        key_id: &Option<Arc<str>>,
    ) -> Result<(), Error> {
        let stored_iv = v1::random_stored_iv(&mut rand_core::OsRng);
        let header = atrest_format::v1::Header::new(wrapped, stored_iv).map_err(Error::Header)?;
        if let Some(len) = self.len {
            let object_len = header.encoded_len() as u64 + atrest_format::v1::ciphertext_len(len);
            upload.expect_len(object_len);
            self.observer.total(object_len);
        }
        let mut encryptor = v1::Encryptor::new(key, &stored_iv);
        let mut out = Vec::with_capacity(V1_READ_CHUNK + 64);
        header.encode(&mut out);
        let _ = self.written.set((out.clone(), key_id.clone()));
        let mut chunk = vec![0u8; V1_READ_CHUNK];
        loop {
            let n = input.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            encryptor.update(&chunk[..n], &mut out);
            upload.write(&out).await?;
            out.clear();
        }
        encryptor.finish(&mut out);
        upload.write(&out).await?;
        Ok(())
    }

    async fn encrypt_v2(
        &self,
        input: &mut Input,
        key: &DataKey,
        object: V2Object,
        upload: &mut Uploader,
        key_id: &Option<Arc<str>>,
    ) -> Result<(), Error> {
        let (wrapped, exponent) = (object.wrapped, object.frame_exponent);
        let (header, cipher) = v2::new_object(
            key,
            wrapped,
            exponent,
            object.context,
            &mut rand_core::OsRng,
        )
        .map_err(Error::Header)?;
        let body_len = self
            .len
            .and_then(|len| format_v2::body_len(len, header.frame_size()));
        if let Some(body_len) = body_len {
            let object_len = header.encoded_len() as u64 + body_len;
            upload.expect_len(object_len);
            self.observer.total(object_len);
        }
        let cipher = Arc::new(cipher);
        let frame_size = cipher.frame_size();
        let sealed = frame_size + format_v2::TAG_LEN;
        // Sealed batches at least a part long go up as parts without copying.
        let frames_per_batch = upload.part_size().div_ceil(sealed);

        let mut prefix = Vec::with_capacity(header.encoded_len());
        header.encode(&mut prefix);
        let _ = self.written.set((prefix.clone(), key_id.clone()));
        // Memory: `concurrency` parts uploading (spawned, so they progress
        // while this loop reads) and the one batch being read and sealed.
        let mut next_index = 0;
        let mut carry = Vec::new();
        let pool = BufferPool::new(upload.buffers_held() + 2);
        loop {
            let slots = Slots {
                buf: pool.take(),
                prefix: std::mem::take(&mut prefix),
                first_index: next_index,
                frame_size,
                frames: frames_per_batch,
            };
            let batch = read_batch(input, slots, &mut carry).await?;
            next_index += batch.frames(frame_size) as u64;
            // `eof` is exact (read_batch looks past a full batch), so the
            // batch is sealed at once, its last frame final if the input
            // ended.
            let eof = batch.eof;
            let sealed = seal(&cipher, batch, eof, pool.clone())
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?;
            upload.write_bytes(sealed).await?;
            if eof {
                return Ok(());
            }
        }
    }
}

/// The data key of a new atrest object, with what its header records.
pub(crate) struct ObjectKey {
    pub(crate) key: Arc<DataKey>,
    pub(crate) wrapped: Vec<u8>,
    pub(crate) key_id: Option<Arc<str>>,
    /// The user's pairs with the keyring's reserved entries (v2).
    pub(crate) context: EncryptionContext,
}

/// The data key of a new v1 or v2 object from `keys`: at most one
/// key-source call (a fresh key, or the shared one unwrapped; none when a
/// cached key is reused). Uploads and local files get theirs here.
pub(crate) async fn object_key(
    keys: &dyn KeySource,
    from: &DataKeyFrom,
    format: Format,
    pairs: &[(String, String)],
) -> Result<ObjectKey, Error> {
    let bad_context = |e| Error::Header(atrest_format::HeaderError::BadContext(e));
    let context = EncryptionContext::new(pairs.iter().cloned()).map_err(bad_context)?;
    let keyring = keys.keyring();
    if keyring != Keyring::Kms && (format != Format::V2 || matches!(from, DataKeyFrom::Wrapped(_)))
    {
        return Err(Error::Unsupported(
            "a key file makes v2 objects with a fresh data key only (no other kind has a place to record its keyring)".into(),
        ));
    }
    // A v1 header records no context, so a key bound to one (as every
    // fresh key is, to atrest's own pair) could never be unwrapped again.
    if format == Format::V1 && (matches!(from, DataKeyFrom::Generate(_)) || !pairs.is_empty()) {
        return Err(Error::Unsupported(
            "a v1 object has the shared data key (DataKeyFrom::Wrapped) and no encryption context: its header records neither a context nor a fresh key's binding".into(),
        ));
    }
    Ok(match from {
        DataKeyFrom::Generate(key_id) => {
            let context = context.with_keyring(keyring).map_err(bad_context)?;
            let got = keys.generate(key_id, &context.kms_context()).await?;
            ObjectKey {
                key: got.key,
                wrapped: got.wrapped.to_vec(),
                key_id: got.key_id,
                context,
            }
        }
        DataKeyFrom::Wrapped(wrapped) => {
            let got = keys.unwrap(wrapped, &[]).await?;
            ObjectKey {
                key: got.key,
                wrapped: wrapped.to_vec(),
                key_id: got.key_id,
                context: context.with_shared_data_key().map_err(bad_context)?,
            }
        }
    })
}

/// What a v2 object is made of besides its body.
struct V2Object {
    wrapped: Vec<u8>,
    context: EncryptionContext,
    frame_exponent: u8,
}

/// A buffer to read a batch into, and where its frames go.
struct Slots {
    buf: Vec<u8>,
    /// Bytes before the first frame (the header, in the first batch).
    prefix: Vec<u8>,
    first_index: u64,
    frame_size: usize,
    /// Frames in a full batch.
    frames: usize,
}

/// Plaintext frames read into their final places in a part-sized buffer,
/// with room for each frame's tag, so sealing happens in place.
struct Batch {
    buf: Vec<u8>,
    /// Bytes before the first frame (the header, in the first batch).
    prefix_len: usize,
    first_index: u64,
    plain_len: usize,
    /// The input ended inside this batch.
    eof: bool,
}

impl Batch {
    fn frames(&self, frame_size: usize) -> usize {
        if self.plain_len == 0 {
            // Only the first batch of an empty input: one empty final frame.
            usize::from(self.first_index == 0)
        } else {
            self.plain_len.div_ceil(frame_size)
        }
    }
}

/// Reads up to `slots.frames` frames of plaintext, each into its slot,
/// starting with `carry` (bytes read past the previous batch). When every
/// slot is full it reads ahead into `carry`, so `eof` says exactly whether
/// the input ends with this batch.
async fn read_batch(
    input: &mut Input,
    slots: Slots,
    carry: &mut Vec<u8>,
) -> std::io::Result<Batch> {
    let Slots {
        mut buf,
        prefix,
        first_index,
        frame_size,
        frames,
    } = slots;
    let sealed = frame_size + format_v2::TAG_LEN;
    let prefix_len = prefix.len();
    // Room for the whole batch is reserved but zeroed (touched) only a
    // frame at a time as input arrives: a 5 GiB part size must not cost
    // 5 GiB of memory for a 100 MB input. A recycled buffer keeps its
    // length: growing it is the only clearing.
    buf.reserve_exact((prefix_len + frames * sealed).saturating_sub(buf.len()));
    let grow = |buf: &mut Vec<u8>, len: usize| {
        if buf.len() < len {
            buf.resize(len, 0);
        }
    };
    grow(&mut buf, prefix_len);
    buf[..prefix_len].copy_from_slice(&prefix);
    let mut plain_len = 0;
    let mut eof = false;
    'frames: for slot in 0..frames {
        let start = prefix_len + slot * sealed;
        grow(&mut buf, start + sealed);
        let mut filled = 0;
        if slot == 0 {
            // At most LOOKAHEAD.min(frame_size) bytes: they fit the slot.
            buf[start..start + carry.len()].copy_from_slice(carry);
            filled = carry.len();
            carry.clear();
        }
        while filled < frame_size {
            let n = input
                .read(&mut buf[start + filled..start + frame_size])
                .await?;
            if n == 0 {
                eof = true;
                plain_len += filled;
                break 'frames;
            }
            filled += n;
        }
        plain_len += filled;
    }
    if !eof {
        carry.resize(LOOKAHEAD.min(frame_size), 0);
        let n = input.read(carry).await?;
        carry.truncate(n);
        eof = n == 0;
    }
    Ok(Batch {
        buf,
        prefix_len,
        first_index,
        plain_len,
        eof,
    })
}

/// Seals every frame of `batch` in place on the blocking pool; `last_is_final`
/// says whether its last frame ends the object.
fn seal(
    cipher: &Arc<v2::FrameCipher>,
    batch: Batch,
    last_is_final: bool,
    pool: BufferPool,
) -> JoinHandle<Bytes> {
    let cipher = Arc::clone(cipher);
    tokio::task::spawn_blocking(move || {
        let frame_size = cipher.frame_size();
        let sealed = frame_size + format_v2::TAG_LEN;
        let frames = batch.frames(frame_size);
        let Batch {
            mut buf,
            prefix_len,
            first_index,
            plain_len,
            ..
        } = batch;
        let mut end = prefix_len;
        for i in 0..frames {
            let start = prefix_len + i * sealed;
            let len = if i + 1 == frames {
                plain_len - i * frame_size
            } else {
                frame_size
            };
            let is_final = last_is_final && i + 1 == frames;
            let tag = cipher.seal_frame_in_place(
                first_index + i as u64,
                is_final,
                &mut buf[start..start + len],
            );
            buf[start + len..start + len + format_v2::TAG_LEN].copy_from_slice(&tag);
            end = start + len + format_v2::TAG_LEN;
        }
        Bytes::from_owner(Pooled::new(buf, end, pool))
    })
}
