//! Objects of the AWS S3 Encryption Client (V2, V3, and legacy CBC behind
//! [`Download::allow_legacy`](crate::Download::allow_legacy)): detection,
//! decryption by parallel ranged GETs with the tag checked before anything
//! is released, and V3 writing ([`Format::S3ecV3`](crate::Format::S3ecV3)).
//!
//! The GCM tag covers the whole object, so no plaintext is trustworthy
//! before the last byte has been hashed. Into a file ([`Sink::File`]),
//! runs are decrypted at their offsets, and the caller renames the file
//! only after the download returned `Ok` (the tag matched). Into an ordered
//! sink (and for a range), the object is staged the same way in an
//! anonymous temporary file and copied out only after the tag matched:
//! memory stays bounded whatever the size, and no unauthenticated byte
//! reaches the sink.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use atrest_crypto::s3ec::{ContentCipher, Encryptor, Runs, TAG_LEN};
use atrest_crypto::{DataKey, DecryptError};
use atrest_format::keyring::Keyring;
use atrest_format::s3ec::{self as format, Content, Envelope, Location, Policy};
use atrest_s3::{ByteRange, Fetched, ObjectVersion, S3Error, S3Uri, Uploader};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

use crate::download::{Job, FILE_STREAMS};
use crate::sink::{write_all_at, Sink};
use crate::{Error, KeySource, Observer, Warning};

/// Ciphertext decrypted per step within a ranged GET: a whole number of
/// blocks, so every step but the object's last starts and ends on a block.
const BATCH: usize = 512 * 1024;

/// The largest instruction file read: a few entries of JSON.
pub(crate) const MAX_INSTRUCTION_FILE: u64 = 64 * 1024;

/// Plaintext read per step when writing.
const READ_CHUNK: usize = 1 << 20;

/// Staged plaintext is copied out this much at a time.
const COPY_CHUNK: usize = 1 << 20;

/// The S3EC metadata of an object, if it has any: from its user metadata,
/// or from `KEY.instruction` when the metadata says so or (`probe`) when
/// the object has no S3EC metadata and is not an atrest object either;
/// with the instruction file read, if one was.
pub async fn detect(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    metadata: &HashMap<String, String>,
    probe: bool,
    policy: Policy,
) -> Result<Option<(Envelope, Option<InstructionFile>)>, Error> {
    let object: BTreeMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let location = format::locate(&object);
    let (body, version) = match location {
        Location::Object => (None, None),
        Location::None if !probe => return Ok(None),
        Location::None | Location::InstructionFile => {
            let instruction = uri.with_key(format!("{}{}", uri.key(), format::INSTRUCTION_SUFFIX));
            let range = ByteRange::new(0, MAX_INSTRUCTION_FILE);
            match atrest_s3::get_range(s3, &instruction, range, None).await {
                Ok(f) if f.object_len <= MAX_INSTRUCTION_FILE => (
                    Some(f.bytes.clone()),
                    Some(InstructionFile {
                        body: f.bytes,
                        version: f.version,
                    }),
                ),
                Ok(_) => return Err(Error::S3ec(format::S3ecError::BadInstructionFile)),
                // Only a probe: no instruction file, or none we may read
                // (S3 answers 403 for a missing key without ListBucket),
                // leaves the object "not an atrest object".
                Err(_) if location == Location::None => return Ok(None),
                // The object says its envelope is elsewhere, and it is not:
                // the object is damaged (or its file deleted), not missing.
                Err(S3Error::NoSuchKey { .. }) => {
                    return Err(Error::S3ec(format::S3ecError::NoInstructionFile))
                }
                Err(source) => {
                    return Err(Error::InstructionFile {
                        uri: instruction.to_string(),
                        source,
                    })
                }
            }
        }
    };
    format::parse(&object, body.as_deref(), policy)
        .map(|envelope| Some((envelope, version)))
        .map_err(Error::S3ec)
}

/// An object's instruction file (`KEY.instruction`), as [`detect`] read it.
#[derive(Clone, Debug)]
pub struct InstructionFile {
    /// Its JSON body.
    pub body: bytes::Bytes,
    /// The version read.
    pub version: ObjectVersion,
}

/// What an S3EC download was asked.
pub(crate) struct Options<'a> {
    pub(crate) expect_context: &'a [(String, String)],
    pub(crate) allow_legacy: bool,
    pub(crate) range: Option<crate::PlainRange>,
    /// Ranged GETs at once (default: the download's, for its sink).
    pub(crate) concurrency: Option<usize>,
    pub(crate) run_len: u64,
}

/// Unwraps the data key of `envelope` (KMS only), checking the expected
/// context first; answers the key and the id of the key that wrapped it.
/// `recorded`: the KMS key ARN atrest recorded in the object's metadata
/// (its own uploads), for the key's region and the error's note.
async fn data_key(
    keys: &dyn KeySource,
    uri: &S3Uri,
    envelope: &Envelope,
    expect_context: &[(String, String)],
    recorded: Option<&String>,
) -> Result<(Arc<DataKey>, Option<Arc<str>>), Error> {
    if !envelope.wrap.is_kms() {
        return Err(Error::Unsupported(format!(
            "{uri} is wrapped with a client-side key ({}), not KMS: atrest unwraps only with KMS",
            envelope.wrap.name()
        )));
    }
    if keys.keyring() != Keyring::Kms {
        return Err(Error::WrongKeyring {
            uri: uri.to_string(),
            recorded: Keyring::Kms,
            asked: keys.keyring(),
        });
    }
    let expected = expect_context.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    format::check_expected_context(envelope, expected).map_err(|e| match e {
        // Asking for a reserved key is the reader's mistake, not the object's.
        format::ExpectedContextError::Reserved(_) => Error::Unsupported(e.to_string()),
        e => Error::S3ecContext(crate::escape(&e.to_string())),
    })?;
    let context: Vec<(String, String)> = envelope
        .context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // A V1 `kms` envelope names its key (`kms_cmk_id`), atrest's own
    // uploads record its ARN: KMS asks that key's region.
    let named = envelope
        .context
        .get(atrest_format::s3ec::KMS_CMK_ID_CONTEXT_KEY)
        .or(recorded)
        .map(String::as_str);
    let got = keys
        .unwrap_recorded(&envelope.wrapped_key, &context, named)
        .await
        .map_err(|e| Error::Key(e.with_recorded_key(recorded)))?;
    Ok((got.key, got.key_id))
}

/// Decrypts an S3EC object into `sink`; `first` is the download's first
/// GET. Answers the plaintext bytes written and the wrapping key's id.
pub(crate) async fn download(
    job: &Arc<Job>,
    keys: &dyn KeySource,
    envelope: Envelope,
    first: Fetched,
    options: Options<'_>,
    sink: Sink<'_>,
) -> Result<(u64, Option<Arc<str>>), Error> {
    let recorded = first.metadata.get(crate::KMS_KEY_METADATA);
    let (key, key_id) =
        data_key(keys, &job.uri, &envelope, options.expect_context, recorded).await?;
    if let Content::Cbc { iv } = &envelope.content {
        // parse() admits CBC only with allow_legacy.
        if options.range.is_some() {
            // The caller names the object.
            return Err(Error::Unsupported(
                "a range needs an AES-GCM object, not CBC".into(),
            ));
        }
        job.observer.warning(&Warning::LegacyCbc {
            uri: job.uri.to_string(),
        });
        // As a v1 body: the whole object, in parallel runs.
        let body = crate::download::v1::Body {
            start: 0,
            len: first.object_len,
            iv: *iv,
        };
        let options = crate::download::v1::Options {
            concurrency: options.concurrency,
            run_len: options.run_len,
        };
        let written =
            crate::download::v1::download_body(job, &key, body, first, options, sink).await?;
        return Ok((written, key_id));
    }
    // The commitment (V3) is checked here, before any byte is decrypted.
    let cipher = Arc::new(ContentCipher::new(&key, &envelope.content)?);
    drop(key);
    let plain_len = format::gcm_plaintext_len(first.object_len).ok_or(DecryptError)?;
    let range = match options.range {
        None => None,
        Some(range) => Some(clip(range, plain_len)?),
    };
    if let (Some((start, end)), true) = (range, options.allow_legacy) {
        job.observer.warning(&Warning::UnauthenticatedRange {
            uri: job.uri.to_string(),
        });
        let written = ctr_range(job, &cipher, start, end, sink).await?;
        return Ok((written, key_id));
    }
    let (file, ordered) = match sink {
        Sink::File(file) if range.is_none() => (Some(file), None),
        // Decrypted and checked, written nowhere.
        Sink::Discard if range.is_none() => (None, None),
        sink => (Some(staging_file()?), Some(sink)),
    };
    let (start, len) = match range {
        None => (0, plain_len),
        Some((start, end)) => (start, end - start + 1),
    };
    job.observer.total(len);
    let body = Arc::new(Body {
        uri: job.uri.clone(),
        cipher,
        file: file.map(Arc::new),
        staged: ordered.is_some(),
        plain_len,
        object_len: first.object_len,
        pin: first.version.clone(),
        // Staged bytes count when copied out.
        observer: ordered.is_none().then(|| Arc::clone(&job.observer)),
        runs: Mutex::new(Runs::default()),
        tag: Mutex::new([0; TAG_LEN]),
    });
    if first.bytes.len() as u64 == first.object_len {
        body.process(0, first.bytes.to_vec())?;
    } else {
        let run_len = options.run_len.max(BATCH as u64) / 16 * 16;
        let runs = first.object_len.div_ceil(run_len);
        let streams = options.concurrency.unwrap_or(FILE_STREAMS).max(1);
        let streams = streams.min(usize::try_from(runs).unwrap_or(usize::MAX));
        fetch_runs(&job.s3, &body, run_len, streams).await?;
    }
    body.verify()?;
    if let Some(sink) = ordered {
        let staged = body.file.as_ref().expect("staged");
        copy_out(staged, start, len, sink, job.observer.as_ref()).await?;
    }
    Ok((len, key_id))
}

/// `range` within a plaintext of `plain_len` bytes, as inclusive bounds.
fn clip(range: crate::PlainRange, plain_len: u64) -> Result<(u64, u64), Error> {
    let span = range.within(plain_len)?;
    Ok((span.start, span.end.expect("a resolved range ends")))
}

fn staging_file() -> Result<std::fs::File, Error> {
    tempfile::tempfile().map_err(|e| staging_error("create a temporary file to stage", e))
}

/// A failure of the staging file: local I/O in `$TMPDIR`, whatever its
/// kind (a missing `$TMPDIR` is not a missing input or object), said as
/// such.
fn staging_error(what: &str, e: std::io::Error) -> Error {
    let dir = std::env::temp_dir();
    Error::Io(std::io::Error::other(format!(
        "cannot {what} the plaintext until its tag is checked (in {}; set TMPDIR elsewhere): {e}",
        dir.display()
    )))
}

/// One body being decrypted by runs: where plaintext goes, and the runs'
/// hashes and the tag as they arrive.
struct Body {
    uri: S3Uri,
    cipher: Arc<ContentCipher>,
    /// `None`: nowhere ([`Sink::Discard`]).
    file: Option<Arc<std::fs::File>>,
    /// `file` is the temporary staging file, not the destination.
    staged: bool,
    plain_len: u64,
    object_len: u64,
    /// The version every GET reads.
    pin: ObjectVersion,
    /// Told of plaintext written, when the file is the destination.
    observer: Option<Arc<dyn Observer>>,
    runs: Mutex<Runs>,
    tag: Mutex<[u8; TAG_LEN]>,
}

impl Body {
    /// Handles body bytes `at..at + bytes.len()`: ciphertext is decrypted
    /// and written at its offset, tag bytes are kept.
    fn process(&self, at: u64, mut bytes: Vec<u8>) -> Result<(), Error> {
        let end = at + bytes.len() as u64;
        let ct_end = end.min(self.plain_len);
        if end > self.plain_len {
            let tag_from = self.plain_len.max(at);
            let mut tag = self.tag.lock().expect("tag lock");
            for (i, b) in bytes[(tag_from - at) as usize..].iter().enumerate() {
                tag[(tag_from - self.plain_len) as usize + i] = *b;
            }
        }
        if ct_end > at {
            let ct = &mut bytes[..(ct_end - at) as usize];
            let hash = self.cipher.open_run(at, ct);
            if let Some(file) = &self.file {
                write_all_at(file, ct, at).map_err(|e| match self.staged {
                    true => staging_error("write to the temporary file that stages", e),
                    false => e.into(),
                })?;
            }
            self.runs
                .lock()
                .expect("runs lock")
                .insert(&self.cipher, at, hash)?;
            if let Some(observer) = &self.observer {
                observer.done(ct.len() as u64);
            }
        }
        Ok(())
    }

    fn verify(&self) -> Result<(), DecryptError> {
        let tag = *self.tag.lock().expect("tag lock");
        self.runs
            .lock()
            .expect("runs lock")
            .verify(&self.cipher, self.plain_len, &tag)
    }
}

/// `streams` ranged GETs at once, each over a run of `run_len` body bytes,
/// each decrypted [`BATCH`] bytes at a time as it arrives.
async fn fetch_runs(
    s3: &aws_sdk_s3::Client,
    body: &Arc<Body>,
    run_len: u64,
    streams: usize,
) -> Result<(), Error> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..streams {
        let (s3, body, next) = (s3.clone(), body.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let start = next.fetch_add(1, Ordering::Relaxed) * run_len;
                if start >= body.object_len {
                    return Ok::<(), Error>(());
                }
                let end = (start + run_len).min(body.object_len);
                fetch_run(&s3, &body, start, end).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        let done = done.map_err(|e| Error::Io(std::io::Error::other(e)))?;
        if let Err(e) = done {
            tasks.abort_all();
            return Err(e);
        }
    }
    Ok(())
}

async fn fetch_run(
    s3: &aws_sdk_s3::Client,
    body: &Arc<Body>,
    start: u64,
    end: u64,
) -> Result<(), Error> {
    let range = ByteRange::new(start, end - 1);
    let mut download = atrest_s3::get(s3, &body.uri, range, Some(&body.pin)).await?;
    let mut at = start;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(chunk) = download.next_chunk().await {
        let chunk = chunk?;
        let mut chunk = &chunk[..];
        while !chunk.is_empty() {
            let take = (BATCH - batch.len()).min(chunk.len());
            batch.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if batch.len() == BATCH {
                if at + BATCH as u64 > end {
                    return Err(DecryptError.into());
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                process(body, at, full).await?;
                at += BATCH as u64;
            }
        }
    }
    let len = batch.len() as u64;
    if at + len != end {
        // The object changed length under us, or the server sent too little.
        return Err(DecryptError.into());
    }
    if len > 0 {
        process(body, at, batch).await?;
    }
    Ok(())
}

/// [`Body::process`] on the blocking pool (decryption and the file write).
async fn process(body: &Arc<Body>, at: u64, bytes: Vec<u8>) -> Result<(), Error> {
    let body = body.clone();
    tokio::task::spawn_blocking(move || body.process(at, bytes))
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

/// Copies `len` bytes at `start` of the (verified) staged plaintext out.
async fn copy_out(
    file: &std::fs::File,
    start: u64,
    len: u64,
    sink: Sink<'_>,
    observer: &dyn Observer,
) -> Result<(), Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(start))?;
    let mut to = crate::download::ordered(sink);
    let mut file = Some(file);
    let mut left = len;
    while left > 0 {
        let n = left.min(COPY_CHUNK as u64) as usize;
        let mut f = file.take().expect("file handed back");
        let (f, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            f.read_exact(&mut buf).map(|()| (f, buf))
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        file = Some(f);
        to.sink().write(buf, 0..n).await?;
        observer.done(n as u64);
        left -= n as u64;
    }
    to.sink().finish().await?;
    Ok(())
}

/// A range with `allow_legacy`: only the blocks holding bytes
/// `start..=end` are fetched and decrypted with the GCM keystream
/// (AES-CTR), without the tag: unauthenticated, as the Java client's legacy
/// ranged reads.
async fn ctr_range(
    job: &Job,
    cipher: &ContentCipher,
    start: u64,
    end: u64,
    sink: Sink<'_>,
) -> Result<u64, Error> {
    job.observer.total(end - start + 1);
    let aligned = start / 16 * 16;
    let mut at = aligned;
    let range = ByteRange::new(aligned, end);
    let mut download = atrest_s3::get(&job.s3, &job.uri, range, Some(&job.pin)).await?;
    let mut to = crate::download::ordered(sink);
    while let Some(chunk) = download.next_chunk().await {
        let mut buf = chunk?.to_vec();
        if at + buf.len() as u64 > end + 1 {
            return Err(DecryptError.into());
        }
        cipher.apply_keystream(at, &mut buf);
        let skip = start.saturating_sub(at).min(buf.len() as u64) as usize;
        at += buf.len() as u64;
        let n = buf.len();
        to.sink().write(buf, skip..n).await?;
        job.observer.done((n - skip) as u64);
    }
    if at != end + 1 {
        return Err(DecryptError.into());
    }
    to.sink().finish().await?;
    Ok(end - start + 1)
}

/// Encrypts `input` (exactly `len` bytes) as a V3 object into `upload`: a
/// fresh data key under `key_id` with the caller's context plus
/// `aws:x-amz-cek-alg`, the sequential AES-GCM stream fed to the upload
/// (whose parts go up in parallel), the metadata in the object. The length
/// is checked against GCM's limit and the context validated before the key
/// source is asked for anything. Answers the wrapping key's id.
pub(crate) async fn encrypt_v3(
    keys: &dyn KeySource,
    key_id: &str,
    context: &[(String, String)],
    input: &mut crate::Input,
    len: u64,
    upload: &mut Uploader,
) -> Result<Option<Arc<str>>, Error> {
    if keys.keyring() != Keyring::Kms {
        return Err(Error::Unsupported(
            "S3 Encryption Client objects are wrapped by KMS only".into(),
        ));
    }
    atrest_crypto::s3ec::check_plaintext_len(len).map_err(|e| Error::Unsupported(e.to_string()))?;
    let user: BTreeMap<String, String> = context.iter().cloned().collect();
    // The error says "invalid encryption context: ...".
    let bad_context = |e: format::S3ecError| Error::Unsupported(e.to_string());
    let probe = Envelope::v3_kms(vec![0], [0; 28], [0; 28], user.clone()).map_err(bad_context)?;
    // S3's 2 KB holds the envelope too: checked before KMS is asked (with a
    // one-byte wrapped key, and room for the key's ARN: only what cannot
    // fit), and exactly before anything is sent.
    let mut with_arn = probe.encode(format::Placement::Object).object;
    let arn_room = "-".repeat(crate::metadata::KMS_KEY_ARN_ROOM);
    with_arn.push((crate::KMS_KEY_METADATA.to_owned(), arn_room));
    crate::metadata::check_beside_envelope(upload.metadata(), &with_arn)?;
    let kms_context: Vec<(String, String)> = probe.context.into_iter().collect();
    let generated = keys.generate(key_id, &kms_context).await?;
    // Which KMS key (and so which region) the object needs, as for v2; the
    // clients ignore it.
    if let Some(arn) = &generated.key_id {
        upload.insert_metadata(crate::KMS_KEY_METADATA, arn.as_ref());
    }
    let (cipher, message_id, commitment) =
        atrest_crypto::s3ec::new_v3(&generated.key, &mut rand_core::OsRng);
    drop(generated.key);
    let envelope = Envelope::v3_kms(generated.wrapped.to_vec(), message_id, commitment, user)
        .map_err(bad_context)?;
    let metadata = envelope.encode(format::Placement::Object).object;
    crate::metadata::check_beside_envelope(upload.metadata(), &metadata)?;
    // Beside the caller's entries.
    upload.add_metadata(metadata);
    upload.expect_len(format::gcm_body_len(len));
    let mut enc = Encryptor::new(cipher, len).map_err(|e| Error::Unsupported(e.to_string()))?;
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut out = Vec::with_capacity(READ_CHUNK + TAG_LEN);
    loop {
        let n = input.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        enc.update(&chunk[..n], &mut out)
            .map_err(|_| Error::InputChanged)?;
        upload.write(&out).await?;
        out.clear();
    }
    enc.finish(&mut out).map_err(|_| Error::InputChanged)?;
    upload.write(&out).await?;
    Ok(generated.key_id)
}
