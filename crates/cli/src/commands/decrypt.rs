use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use atrest_crypto::{v1, v2, DecryptError};
use atrest_format::v2 as format_v2;
use atrest_format::{parse_header, Header, Parsed};
use atrest_s3::S3Uri;
use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

use crate::buffers::BufferPool;
use crate::failure::{Exit, Failure, NotAtrest};
use crate::files::Output;
use crate::progress::{Progress, Show};
use atrest_kms::CachedKeys as Keys;
use atrest_s3::ByteRange;

/// The first GET: larger than any header, so one request gives the header,
/// the object's length, and all of a small object.
pub const FIRST_FETCH: u64 = atrest_format::MAX_HEADER_LEN as u64;

/// Default ranged GETs streaming into a file at once: measured on a 1 GiB
/// download, 8 streams took 2.26 s and 4 took 2.45 s (medians of 5), while
/// curl's plain ranged download was no faster with 8 than with 4. Memory
/// stays ~36 MiB (a few 512 KiB batches per stream).
const FILE_STREAMS: usize = 8;

/// Default ranged GETs streaming at once for ordered output (stdout,
/// `--range`), each over a part-sized run, within [`ORDERED_WINDOW`].
/// Measured on a 1 GiB download to stdout (curl's 4 ranged GETs: 1.97-2.18
/// s): 8 streams took 2.73-2.82 s at 49 MiB peak RSS, 12 took 2.30-2.37 s at
/// 52-54 MiB, 16 took 2.29-2.38 s at 56-61 MiB. More streams than into a
/// file, as streams past the window wait.
const ORDERED_STREAMS: usize = 12;

pub struct Decrypt<'a> {
    pub uri: &'a S3Uri,
    pub file: &'a Path,
    pub expect_context: &'a [(String, String)],
    pub range: Option<ByteRange>,
    /// `None`: [`FILE_STREAMS`] or [`ORDERED_STREAMS`].
    pub concurrency: Option<usize>,
    pub part_size: usize,
    pub quiet: bool,
    pub progress: Show<'a>,
}

pub async fn run(keys: &Keys, s3: &aws_sdk_s3::Client, args: Decrypt<'_>) -> Result<()> {
    // Fail on an unwritable destination before any network traffic.
    let mut output = Output::create(args.file).await?;
    let progress = args.progress.pending("decrypting");
    let result = async {
        let mut sink = Sink {
            output: &mut output,
            progress: &progress,
        };
        decrypt_into(keys, s3, &args, &mut sink)
            .await
            .map_err(|e| changed_during_download(e, args.file))
            .with_context(|| format!("cannot decrypt {}", args.uri))?;
        output.commit().await
    }
    .await;
    if result.is_err() {
        progress.clear();
    }
    result?;
    progress.finish();
    tracing::info!(uri = %args.uri, "decrypted");
    Ok(())
}

async fn decrypt_into(
    keys: &Keys,
    s3: &aws_sdk_s3::Client,
    args: &Decrypt<'_>,
    output: &mut Sink<'_>,
) -> Result<()> {
    let uri = args.uri;
    let first = atrest_s3::get_range(s3, uri, ByteRange::new(0, FIRST_FETCH - 1), None).await?;
    // Every later GET reads the version this one did, or fails.
    let pin = &first.version;
    let header = match parse_header(&first.bytes).map_err(NotAtrest::BadHeader)? {
        Parsed::Complete(header) => header,
        Parsed::Incomplete { .. } => return Err(NotAtrest::TooShort(first.object_len).into()),
    };
    match header {
        Header::V1(h) => {
            if !args.expect_context.is_empty() {
                return Err(Failure::new(
                    Exit::Untrusted,
                    format!("{uri} is a v1 object, which has no encryption context to check"),
                )
                .into());
            }
            if args.range.is_some() {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("{uri} is a v1 object: --range needs a v2 object"),
                )
                .into());
            }
            if !args.quiet {
                eprintln!(
                    "warning: {uri} is a v1 object: it is not authenticated, so tampering cannot be detected (re-encrypt it to v2)"
                );
            }
            let key = keys.unwrap(h.wrapped_key(), &[]).await?.key;
            // Padding hides v1's exact length: within 16 bytes of this.
            output
                .progress
                .set_total(first.object_len.saturating_sub(h.encoded_len() as u64));
            if first.object_len > first.bytes.len() as u64 {
                if let Some(file) = output.output.positional()? {
                    let body = V1Body {
                        start: h.encoded_len() as u64,
                        len: first.object_len.saturating_sub(h.encoded_len() as u64),
                        iv: h.cbc_iv(),
                        run_len: args.part_size as u64,
                        pin: pin.clone(),
                    };
                    let progress = output.progress.clone();
                    return decrypt_v1_positional(
                        s3,
                        uri,
                        key,
                        body,
                        args.concurrency.unwrap_or(FILE_STREAMS),
                        file,
                        progress,
                    )
                    .await;
                }
            }
            let mut decryptor = v1::Decryptor::new(&key, &h.stored_iv());
            drop(key);
            let mut plain = Vec::new();
            decryptor.update(
                &first.bytes[h.encoded_len().min(first.bytes.len())..],
                &mut plain,
            );
            output
                .write(Bytes::from(std::mem::take(&mut plain)))
                .await?;
            if first.object_len > first.bytes.len() as u64 {
                let mut rest = atrest_s3::get(
                    s3,
                    uri,
                    ByteRange::from(first.bytes.len() as u64),
                    Some(pin),
                )
                .await?;
                while let Some(chunk) = rest.next_chunk().await {
                    decryptor.update(&chunk?, &mut plain);
                    output
                        .write(Bytes::from(std::mem::take(&mut plain)))
                        .await?;
                }
            }
            decryptor.finish(&mut plain)?;
            output
                .write(Bytes::from(std::mem::take(&mut plain)))
                .await?;
        }
        Header::V2(h) => {
            check_expected_context(&h, args.expect_context)?;
            let key = keys
                .unwrap(h.wrapped_key(), &h.context().kms_context())
                .await?
                .key;
            let cipher = Arc::new(v2::FrameCipher::new(&key, &h)?);
            drop(key);
            let plan = Plan::new(&h, &first, args.range, args.part_size)?;
            output.progress.set_total(plan.len);
            let whole = first.bytes.len() as u64 == plan.object_len;
            match output.output.positional()? {
                Some(file) if args.range.is_none() && !whole => {
                    let streams = args.concurrency.unwrap_or(FILE_STREAMS).max(1) as u64;
                    let frames = plan.last_frame - plan.first_frame + 1;
                    let run_frames = plan.frames_per_part.max(frames.div_ceil(streams * 4));
                    let to = Destination::File(Arc::new(file), output.progress.clone());
                    decrypt_v2_streams(s3, uri, cipher, Arc::new(plan), streams, run_frames, to)
                        .await?;
                }
                _ => {
                    let streams = args.concurrency.unwrap_or(ORDERED_STREAMS);
                    decrypt_v2_ordered(s3, uri, cipher, plan, first.bytes, streams, output).await?
                }
            }
        }
        _ => unreachable!("parse_header yields only known versions"),
    }
    Ok(())
}

/// Says what a download stopped by a changed object left behind.
fn changed_during_download(e: anyhow::Error, file: &Path) -> anyhow::Error {
    let changed = e
        .chain()
        .find_map(|c| match c.downcast_ref::<atrest_s3::S3Error>() {
            Some(changed @ atrest_s3::S3Error::Changed { .. }) => Some(changed.to_string()),
            _ => None,
        });
    let left = match crate::files::is_std_stream(file) {
        false => "nothing was written",
        true => "the output is incomplete",
    };
    match changed {
        Some(changed) => Failure::new(Exit::Runtime, format!("{changed}; {left}")).into(),
        None => e,
    }
}

/// The output, counting what is written for the progress bar.
struct Sink<'a> {
    output: &'a mut Output,
    progress: &'a Progress,
}

impl Sink<'_> {
    async fn write(&mut self, bytes: Bytes) -> std::io::Result<()> {
        let len = bytes.len() as u64;
        self.output.write(bytes).await?;
        self.progress.inc(len);
        Ok(())
    }

    /// Writes `buf[range]` and returns `buf` for reuse.
    async fn write_buf(
        &mut self,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> std::io::Result<Vec<u8>> {
        let len = range.len() as u64;
        let buf = self.output.write_buf(buf, range).await?;
        self.progress.inc(len);
        Ok(buf)
    }
}

fn check_expected_context(header: &format_v2::Header, expected: &[(String, String)]) -> Result<()> {
    for (k, v) in expected {
        match header.context().get(k) {
            Some(found) if found == v => {}
            Some(found) => {
                return Err(Failure::new(
                    Exit::Untrusted,
                    format!(
                        "the encryption context has {}={}, expected {}",
                        crate::escape(k),
                        crate::escape(found),
                        crate::escape(v)
                    ),
                )
                .into())
            }
            None => {
                return Err(Failure::new(
                    Exit::Untrusted,
                    format!(
                        "the encryption context lacks {}={}",
                        crate::escape(k),
                        crate::escape(v)
                    ),
                )
                .into())
            }
        }
    }
    Ok(())
}

/// Which frames to fetch, and which plaintext bytes of them to keep.
struct Plan {
    object_len: u64,
    /// The version every GET reads.
    pin: atrest_s3::ObjectVersion,
    header_len: u64,
    frame_size: u64,
    first_frame: u64,
    last_frame: u64,
    last_is_final: bool,
    skip: u64,
    len: u64,
    frames_per_part: u64,
}

impl Plan {
    fn new(
        header: &format_v2::Header,
        first: &atrest_s3::Fetched,
        range: Option<ByteRange>,
        part_size: usize,
    ) -> Result<Self> {
        let object_len = first.object_len;
        let header_len = header.encoded_len() as u64;
        let frame_size = header.frame_size();
        let sealed = format_v2::sealed_frame_len(frame_size);
        // A body whose length no plaintext has was truncated or extended.
        let plaintext_len = object_len
            .checked_sub(header_len)
            .and_then(|body| format_v2::plaintext_len(body, frame_size))
            .ok_or(DecryptError)?;
        let frames_per_part = (part_size as u64).div_ceil(sealed).max(1);
        let frames = format_v2::frame_count(plaintext_len, frame_size);
        let mut plan = Plan {
            object_len,
            pin: first.version.clone(),
            header_len,
            frame_size,
            first_frame: 0,
            last_frame: frames - 1,
            last_is_final: true,
            skip: 0,
            len: plaintext_len,
            frames_per_part,
        };
        if let Some(range) = range {
            let end = range
                .end
                .unwrap_or(u64::MAX)
                .min(plaintext_len.saturating_sub(1));
            let r = format_v2::frames_for_range(range.start, end, frame_size, plaintext_len)
                .ok_or_else(|| {
                    Failure::new(
                        Exit::Usage,
                        format!("--range {range} is outside the plaintext ({plaintext_len} bytes)"),
                    )
                })?;
            plan.first_frame = r.first_frame;
            plan.last_frame = r.last_frame;
            plan.last_is_final = r.last_is_final;
            plan.skip = r.skip;
            plan.len = r.len;
        }
        Ok(plan)
    }

    /// Object byte range `(start, end_inclusive)` of frames `first..=last`.
    fn object_range(&self, first: u64, last: u64) -> (u64, u64) {
        let sealed = format_v2::sealed_frame_len(self.frame_size);
        let start = self.header_len + first * sealed;
        // The object's last frame may be short: S3 clips the range to the
        // object's end, and the frame splitter checks what arrived.
        (start, self.header_len + (last + 1) * sealed - 1)
    }
}

/// Ordered output (stdout, or a `--range`): the planned frames stream as
/// they do into a file, `streams` ranged GETs at once, and one writer puts
/// their batches in order. A batch waits until it is within
/// [`ORDERED_WINDOW`] of what is written, so memory stays bounded whatever
/// the part size or the number of streams. Every written byte
/// comes from a frame that authenticated; a failure part-way leaves a
/// prefix of the plaintext and a non-zero exit.
async fn decrypt_v2_ordered(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    cipher: Arc<v2::FrameCipher>,
    plan: Plan,
    first_fetch: Bytes,
    streams: usize,
    output: &mut Sink<'_>,
) -> Result<()> {
    let wanted = plan.skip..plan.skip + plan.len;
    // A small object came whole with the first GET: no more requests.
    if first_fetch.len() as u64 == plan.object_len {
        let (start, end) = plan.object_range(plan.first_frame, plan.last_frame);
        let sealed = first_fetch.slice(start as usize..first_fetch.len().min(end as usize + 1));
        let mut frames = v2::FrameRun::new(
            cipher.frame_size(),
            plan.first_frame,
            plan.last_frame,
            sealed.len() as u64,
            plan.last_is_final,
        )?;
        let (plain, len) = tokio::task::spawn_blocking(move || {
            let mut plain = Vec::new();
            let (len, _) = frames.open(&cipher, &sealed, &mut plain, 0, usize::MAX)?;
            frames.finish()?;
            Ok::<_, DecryptError>((plain, len))
        })
        .await??;
        let to = (wanted.end as usize).min(len);
        output
            .write_buf(plain, (wanted.start as usize).min(to)..to)
            .await?;
        return Ok(());
    }
    let streams = streams.max(1) as u64;
    let run_frames = plan.frames_per_part;
    let pool = BufferPool::new((ORDERED_WINDOW / STREAM_BATCH as u64 + streams) as usize);
    let (batches, received) = tokio::sync::mpsc::unbounded_channel();
    let (written, written_rx) = tokio::sync::watch::channel(0);
    let to = Destination::Ordered(Window {
        batches,
        written: written_rx,
        pool: pool.clone(),
    });
    let fetch = decrypt_v2_streams(s3, uri, cipher, Arc::new(plan), streams, run_frames, to);
    let write = write_in_order(received, written, wanted, &pool, output);
    tokio::try_join!(fetch, write)?;
    Ok(())
}

/// How far (in plaintext bytes) an ordered stream may run ahead of the
/// writer. A stream further ahead stops reading, and TCP holds what its
/// server has sent meanwhile. Measured on a 1 GiB download to stdout with
/// part-sized runs: at 8 streams, 12 MiB took 2.64-2.69 s, 8 MiB 2.87-2.89
/// s, 20 MiB 2.58-2.66 s (at 12 streams 16 MiB was no faster than 12 and
/// held 8 MiB more); shorter runs that all fit in the window were slower
/// (3 MiB: 2.78-2.88 s), as every ranged GET costs the server a start.
/// Memory is bounded by the window, whatever the part size.
const ORDERED_WINDOW: u64 = 12 << 20;

/// Writes the batches that arrive (in any order) in plaintext order, the
/// bytes of `wanted` only, and reports the offset written so far.
async fn write_in_order(
    mut received: tokio::sync::mpsc::UnboundedReceiver<Batch>,
    written: tokio::sync::watch::Sender<u64>,
    wanted: std::ops::Range<u64>,
    pool: &BufferPool,
    output: &mut Sink<'_>,
) -> Result<()> {
    let mut ready = std::collections::BTreeMap::new();
    let mut at = 0;
    while at < wanted.end {
        let Some(batch) = ready.remove(&at) else {
            // Closed with the next batch missing: a stream failed (its error
            // is the one reported) or the frames fell short.
            let batch = received.recv().await.ok_or(DecryptError)?;
            ready.insert(batch.offset, batch);
            continue;
        };
        let Batch { buf, len, .. } = batch;
        let to = (wanted.end - at).min(len as u64) as usize;
        let from = (wanted.start.saturating_sub(at) as usize).min(to);
        pool.put(output.write_buf(buf, from..to).await?);
        at += len as u64;
        written.send_replace(at);
    }
    Ok(())
}

/// Plaintext of whole frames, at `offset` from the first planned frame's.
struct Batch {
    offset: u64,
    buf: Vec<u8>,
    len: usize,
}

/// A stream's side of the ordered writer.
#[derive(Clone)]
struct Window {
    batches: tokio::sync::mpsc::UnboundedSender<Batch>,
    written: tokio::sync::watch::Receiver<u64>,
    pool: BufferPool,
}

impl Window {
    /// Hands `batch` to the writer once it is within the window (the next
    /// batch to write always is, so streams cannot all wait).
    async fn send(&self, batch: Batch) -> Result<()> {
        let offset = batch.offset;
        self.written
            .clone()
            .wait_for(|&written| offset < written + ORDERED_WINDOW)
            .await
            .map_err(|_| anyhow::anyhow!("the output stopped"))?;
        self.batches
            .send(batch)
            .map_err(|_| anyhow::anyhow!("the output stopped"))?;
        Ok(())
    }
}

/// Where the streams' plaintext goes.
#[derive(Clone)]
enum Destination {
    /// A file, each batch written at its offset by the blocking pool.
    File(Arc<std::fs::File>, Progress),
    /// The ordered writer.
    Ordered(Window),
}

/// Plaintext decrypted per step of a positional stream: below glibc's mmap
/// threshold (see main.rs), so these buffers are recycled, not remapped.
const STREAM_BATCH: usize = 512 * 1024;

/// `streams` ranged GETs at once, each over a run of `run_frames` frames
/// taken from a shared queue; frames are opened as they arrive and their
/// plaintext delivered `to` its destination in batches. Into a file, runs
/// are long (at least a part; several per stream, so streams end together)
/// and batches are written at their offsets: memory stays at a few batches
/// per stream whatever the part size, and no stream waits for another. The
/// file is a temporary one, renamed into place only once every frame
/// authenticated.
#[allow(clippy::too_many_arguments)]
async fn decrypt_v2_streams(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    cipher: Arc<v2::FrameCipher>,
    plan: Arc<Plan>,
    streams: u64,
    run_frames: u64,
    to: Destination,
) -> Result<()> {
    let units = plan.first_frame..plan.last_frame + 1;
    let (s3, uri) = (s3.clone(), uri.clone());
    in_runs(units, run_frames, streams, move |first, end| {
        let (s3, uri, cipher, plan, to) = (
            s3.clone(),
            uri.clone(),
            Arc::clone(&cipher),
            Arc::clone(&plan),
            to.clone(),
        );
        async move { stream_run(&s3, &uri, &cipher, &plan, first, end - 1, &to).await }
    })
    .await
}

/// Splits `units` (frames, or CBC blocks) into runs of `run_len` that
/// `streams` concurrent workers take from a shared queue; `work(first, end)`
/// handles units `first..end`. The first failure stops the rest (dropping
/// the set aborts them).
async fn in_runs<F, Fut>(
    units: std::ops::Range<u64>,
    run_len: u64,
    streams: u64,
    work: F,
) -> Result<()>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let next = Arc::new(std::sync::atomic::AtomicU64::new(units.start));
    let runs = (units.end - units.start).div_ceil(run_len);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..streams.min(runs) {
        let (next, work, end) = (Arc::clone(&next), work.clone(), units.end);
        workers.spawn(async move {
            loop {
                let first = next.fetch_add(run_len, std::sync::atomic::Ordering::Relaxed);
                if first >= end {
                    return anyhow::Ok(());
                }
                work(first, (first + run_len).min(end)).await?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    Ok(())
}

/// Where a v1 object's CBC body is, and how to split it.
struct V1Body {
    /// Object offset of the first ciphertext byte.
    start: u64,
    len: u64,
    iv: [u8; BLOCK],
    /// Smallest run one ranged GET covers.
    run_len: u64,
    /// The version every GET reads.
    pin: atrest_s3::ObjectVersion,
}

const BLOCK: usize = atrest_format::v1::BLOCK_LEN;

/// v1 into a file: CBC decryption of a block needs only the ciphertext
/// block before it, so the body splits into runs decrypted by concurrent
/// ranged GETs (each fetching one block early for its IV) and written at
/// their offsets, as for v2. Only the padding check at the very end can
/// fail, as v1 has no authentication.
async fn decrypt_v1_positional(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    key: Arc<atrest_crypto::DataKey>,
    body: V1Body,
    concurrency: usize,
    file: std::fs::File,
    progress: Progress,
) -> Result<()> {
    if !atrest_format::v1::is_valid_ciphertext_len(body.len) {
        return Err(DecryptError.into());
    }
    let streams = concurrency.max(1) as u64;
    let blocks = body.len / BLOCK as u64;
    let run_blocks = (body.run_len / BLOCK as u64).max(blocks.div_ceil(streams * 4));
    let (body, file) = (Arc::new(body), Arc::new(file));
    let (s3, uri) = (s3.clone(), uri.clone());
    in_runs(0..blocks, run_blocks, streams, move |first, end| {
        let (s3, uri, key, body, file, progress) = (
            s3.clone(),
            uri.clone(),
            Arc::clone(&key),
            Arc::clone(&body),
            Arc::clone(&file),
            progress.clone(),
        );
        let (from, to) = (first * BLOCK as u64, end * BLOCK as u64);
        async move { stream_v1_run(&s3, &uri, &key, &body, from, to, &file, &progress).await }
    })
    .await
}

/// Decrypts body bytes `from..to` (whole blocks) from one ranged GET that
/// starts a block early (except at the body's start), [`STREAM_BATCH`] at a
/// time. The body's last block is unpadded and only its plaintext written.
#[allow(clippy::too_many_arguments)]
async fn stream_v1_run(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    key: &Arc<atrest_crypto::DataKey>,
    body: &V1Body,
    from: u64,
    to: u64,
    file: &Arc<std::fs::File>,
    progress: &Progress,
) -> Result<()> {
    let fetch_from = from.saturating_sub(BLOCK as u64);
    let expected = to - fetch_from;
    let range = ByteRange::new(body.start + fetch_from, body.start + to - 1);
    let mut download = atrest_s3::get(s3, uri, range, Some(&body.pin)).await?;
    let mut prev = body.iv;
    let mut need_prev = from > 0;
    let mut buf = BytesMut::with_capacity(STREAM_BATCH);
    let mut offset = from;
    let mut received = 0u64;
    loop {
        let chunk = download.next_chunk().await.transpose()?;
        if let Some(chunk) = &chunk {
            received += chunk.len() as u64;
            if received > expected {
                return Err(DecryptError.into());
            }
            buf.extend_from_slice(chunk);
        }
        let done = chunk.is_none();
        if need_prev && buf.len() >= BLOCK {
            prev.copy_from_slice(&buf.split_to(BLOCK));
            need_prev = false;
        }
        let whole = buf.len() - buf.len() % BLOCK;
        if !need_prev && (whole >= STREAM_BATCH || (done && whole > 0)) {
            let mut batch = buf.split_to(whole);
            let next_prev: [u8; BLOCK] = batch[whole - BLOCK..].try_into().expect("a block");
            let at = offset;
            offset += whole as u64;
            let is_last = offset == body.len;
            let (key, file) = (Arc::clone(key), Arc::clone(file));
            let written = tokio::task::spawn_blocking(move || -> Result<u64> {
                v1::decrypt_chunk_in_place(&key, &prev, &mut batch);
                if !is_last {
                    crate::files::write_all_at(&file, &batch, at)?;
                    return Ok(whole as u64);
                }
                let (blocks, last) = batch.split_at(whole - BLOCK);
                let tail = v1::unpad(last)?;
                crate::files::write_all_at(&file, blocks, at)?;
                crate::files::write_all_at(&file, tail, at + blocks.len() as u64)?;
                Ok((blocks.len() + tail.len()) as u64)
            })
            .await??;
            prev = next_prev;
            progress.inc(written);
        }
        if done {
            break;
        }
    }
    if received != expected || offset != to || !buf.is_empty() {
        return Err(DecryptError.into());
    }
    Ok(())
}

/// Attempts per run of frames when its body breaks part-way (the SDK
/// retries a request only until its body starts).
const STREAM_ATTEMPTS: u32 = 3;

/// Streams frames `first..=last`, resuming from the first frame not yet
/// written when the connection breaks mid-body.
#[allow(clippy::too_many_arguments)]
async fn stream_run(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    cipher: &Arc<v2::FrameCipher>,
    plan: &Plan,
    first: u64,
    last: u64,
    to: &Destination,
) -> Result<()> {
    let mut next = first;
    let mut attempt = 1;
    loop {
        let result = stream_frames(s3, uri, cipher, plan, &mut next, last, to).await;
        match result {
            Err(e) if attempt < STREAM_ATTEMPTS && is_broken_body(&e) => {
                tracing::warn!(
                    uri = %crate::escape(&uri.to_string()),
                    frame = next,
                    error = %crate::escape(&format!("{e:#}")),
                    "download stream broke; resuming"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn is_broken_body(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<atrest_s3::S3Error>(),
        Some(atrest_s3::S3Error::Body { .. })
    )
}

/// Streams frames `*next..=last` with one ranged GET, opening and writing
/// them about [`STREAM_BATCH`] at a time; `*next` follows what is written.
#[allow(clippy::too_many_arguments)]
async fn stream_frames(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    cipher: &Arc<v2::FrameCipher>,
    plan: &Plan,
    next: &mut u64,
    last: u64,
    to: &Destination,
) -> Result<()> {
    let (start, end) = plan.object_range(*next, last);
    let expected = end.min(plan.object_len - 1) + 1 - start;
    let last_is_final = plan.last_is_final && last == plan.last_frame;
    let mut frames = v2::FrameRun::new(cipher.frame_size(), *next, last, expected, last_is_final)?;
    let range = ByteRange::new(start, end);
    let mut body = atrest_s3::get(s3, uri, range, Some(&plan.pin)).await?;
    // Frames open as each chunk arrives, while it is still in the cache
    // and before the connection's buffer is needed again; their plaintext
    // is delivered one batch at a time (written by the blocking pool, for a
    // file) while the next one fills.
    let mut batches = Batches {
        to,
        frame_size: plan.frame_size,
        first_frame: plan.first_frame,
        plain: batch_buffer(Vec::new(), cipher.frame_size()),
        filled: 0,
        batch_first: frames.next_frame(),
        delivering: None,
    };
    while let Some(chunk) = body.next_chunk().await.transpose()? {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let (filled, used) = frames.open(
                cipher,
                rest,
                &mut batches.plain,
                batches.filled,
                STREAM_BATCH,
            )?;
            (batches.filled, rest) = (filled, &rest[used..]);
            if filled >= STREAM_BATCH {
                batches.deliver(frames.next_frame(), next).await?;
            }
        }
    }
    if batches.filled > 0 {
        batches.deliver(frames.next_frame(), next).await?;
    }
    batches.finish(next).await?;
    // A short body (truncated object or connection) leaves frames unread.
    frames.finish()?;
    Ok(())
}

/// A stream's plaintext: one batch filling while (into a file) the one
/// before it is written.
struct Batches<'a> {
    to: &'a Destination,
    frame_size: u64,
    first_frame: u64,
    plain: Vec<u8>,
    filled: usize,
    /// The frame `plain` starts with.
    batch_first: u64,
    delivering: Option<JoinHandle<Result<Delivered>>>,
}

impl Batches<'_> {
    /// Delivers `plain[..filled]`, which ends before `next_frame`, and
    /// records in `next` the frame after what has been delivered.
    async fn deliver(&mut self, next_frame: u64, next: &mut u64) -> Result<()> {
        let offset = (self.batch_first - self.first_frame) * self.frame_size;
        let (buf, len) = (std::mem::take(&mut self.plain), self.filled);
        let spare = match self.to {
            Destination::File(file, progress) => {
                // Written by the blocking pool while the next batch fills.
                let spare = match self.delivering.take() {
                    Some(previous) => previous.await??.finish(next),
                    None => Vec::new(),
                };
                let (file, progress) = (Arc::clone(file), progress.clone());
                self.delivering = Some(tokio::task::spawn_blocking(move || {
                    crate::files::write_all_at(&file, &buf[..len], offset)?;
                    progress.inc(len as u64);
                    Ok(Delivered { buf, next_frame })
                }));
                spare
            }
            Destination::Ordered(window) => {
                // The writer does the I/O; a stream too far ahead waits here,
                // holding no second batch.
                window.send(Batch { offset, buf, len }).await?;
                *next = next_frame;
                window.pool.take()
            }
        };
        self.plain = batch_buffer(spare, self.frame_size as usize);
        (self.filled, self.batch_first) = (0, next_frame);
        Ok(())
    }

    /// Waits for the last batch.
    async fn finish(mut self, next: &mut u64) -> Result<()> {
        if let Some(previous) = self.delivering.take() {
            previous.await??.finish(next);
        }
        Ok(())
    }
}

/// `buf` with room for a batch: a batch ends with the frame that takes it to
/// [`STREAM_BATCH`] or past, so it never has to grow (and move).
fn batch_buffer(mut buf: Vec<u8>, frame_size: usize) -> Vec<u8> {
    buf.reserve_exact((STREAM_BATCH + frame_size).saturating_sub(buf.len()));
    buf
}

/// A batch written to the file.
struct Delivered {
    /// A buffer to fill next.
    buf: Vec<u8>,
    /// The frame after the batch's last.
    next_frame: u64,
}

impl Delivered {
    /// Records the batch as written; returns the buffer to fill next.
    fn finish(self, next: &mut u64) -> Vec<u8> {
        *next = self.next_frame;
        self.buf
    }
}
