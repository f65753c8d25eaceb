//! v1 downloads. CBC decryption of a block needs only the ciphertext block
//! before it, so the body splits into runs decrypted by concurrent ranged
//! GETs (each fetching one block early for its IV), as for v2: into a file
//! each run is written at its offset; in order (stdout, any writer) one
//! writer puts the runs' batches in order, within the window v2's ordered
//! output uses. Only the padding check at the very end can fail: v1 has
//! no authentication.

use std::sync::Arc;

use atrest_crypto::{v1, DataKey, DecryptError};
use atrest_s3::{ByteRange, Fetched};
use bytes::Bytes;

use super::ordered::{self, Batch};
use super::stream::{self, Run};
use super::{Destination, Job, FILE_STREAMS, ORDERED_STREAMS, STREAM_BATCH};
use crate::sink::Sink;
use crate::Error;

const BLOCK: usize = atrest_format::v1::BLOCK_LEN;

pub(crate) struct Options {
    /// Ranged GETs at once (default: [`FILE_STREAMS`] into a file,
    /// [`ORDERED_STREAMS`] in order).
    pub(crate) concurrency: Option<usize>,
    /// Smallest run one ranged GET covers (in order: the run).
    pub(crate) run_len: u64,
}

pub(crate) async fn download(
    job: &Arc<Job>,
    header: &atrest_format::v1::Header,
    key: &Arc<DataKey>,
    first: Fetched,
    options: Options,
    sink: Sink<'_>,
) -> Result<u64, Error> {
    let start = header.encoded_len() as u64;
    let body = Body {
        start,
        len: first.object_len.saturating_sub(start),
        iv: header.cbc_iv(),
    };
    download_body(job, key, body, first, options, sink).await
}

/// Downloads and decrypts an AES-256-CBC body with PKCS#7 padding: a v1
/// object's, or an S3 Encryption Client legacy CBC object's (the whole
/// object, its IV in the envelope). `first` is the download's first GET.
pub(crate) async fn download_body(
    job: &Arc<Job>,
    key: &Arc<DataKey>,
    body: Body,
    first: Fetched,
    options: Options,
    sink: Sink<'_>,
) -> Result<u64, Error> {
    let body_len = body.len;
    // Padding hides the exact length: within 16 bytes of this.
    job.observer.total(body_len);
    // A small object came whole with the first GET: no more requests.
    if first.object_len <= first.bytes.len() as u64 {
        return in_order(job, &body, key, first, sink).await;
    }
    let streams = |default| options.concurrency.unwrap_or(default).max(1) as u64;
    match sink {
        Sink::File(_) | Sink::Discard => {
            let streams = streams(FILE_STREAMS);
            // Long runs (at least a part; several per stream, so that the
            // streams end together).
            let blocks = body_len / BLOCK as u64;
            let run_blocks = (options.run_len / BLOCK as u64).max(blocks.div_ceil(streams * 4));
            let to = match sink {
                Sink::File(file) => Destination::File(Arc::new(file)),
                _ => Destination::Discard,
            };
            positional(job, key, body, streams, run_blocks, to).await
        }
        Sink::Ordered(sink) => {
            // Part-sized runs, as for v2.
            let streams = streams(ORDERED_STREAMS);
            let run_blocks = (options.run_len / BLOCK as u64).max(1);
            let (window, writer) = ordered::window(streams);
            let to = Destination::Ordered(window);
            let fetch = positional(job, key, body, streams, run_blocks, to);
            // The padding says where the plaintext ends: the batch marked last.
            let write = writer.run(0..u64::MAX, sink, &*job.observer);
            let (written, ()) = tokio::try_join!(fetch, write)?;
            sink.finish().await?;
            Ok(written)
        }
    }
}

/// An object the first GET brought whole, decrypted in one go.
async fn in_order(
    job: &Arc<Job>,
    body: &Body,
    key: &Arc<DataKey>,
    first: Fetched,
    sink: Sink<'_>,
) -> Result<u64, Error> {
    let start = (body.start as usize).min(first.bytes.len());
    let mut plain = Vec::new();
    let mut decryptor = v1::Decryptor::with_iv(key, &body.iv);
    decryptor.update(&first.bytes[start..], &mut plain);
    decryptor.finish(&mut plain)?;
    let len = plain.len();
    let mut to = super::ordered(sink);
    to.sink().write(plain, 0..len).await?;
    to.sink().finish().await?;
    job.observer.done(len as u64);
    Ok(len as u64)
}

/// Where a CBC body is in its object, and its IV.
pub(crate) struct Body {
    /// Object offset of the first ciphertext byte.
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) iv: [u8; BLOCK],
}

/// The body's blocks in runs of `run_blocks`, `streams` ranged GETs at
/// once, delivered `to` their destination.
async fn positional(
    job: &Arc<Job>,
    key: &Arc<DataKey>,
    body: Body,
    streams: u64,
    run_blocks: u64,
    to: Destination,
) -> Result<u64, Error> {
    if !atrest_format::v1::is_valid_ciphertext_len(body.len) {
        return Err(DecryptError.into());
    }
    let blocks = body.len / BLOCK as u64;
    let body = Arc::new(body);
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (job, key, total) = (Arc::clone(job), Arc::clone(key), Arc::clone(&written));
    stream::in_runs(0..blocks, run_blocks, streams, move |first, end| {
        let mut run = Blocks {
            job: Arc::clone(&job),
            key: Arc::clone(&key),
            body: Arc::clone(&body),
            to: to.clone(),
            written: Arc::clone(&total),
            offset: first * BLOCK as u64,
            to_offset: end * BLOCK as u64,
            attempt: None,
            spare: None,
        };
        async move {
            let job = Arc::clone(&run.job);
            stream::stream(&job, &mut run).await
        }
    })
    .await?;
    Ok(written.load(std::sync::atomic::Ordering::Relaxed))
}

/// Body bytes `offset..to_offset` (whole blocks) of one stream, from
/// ranged GETs that start a block early (except at the body's start) for
/// the IV, gathered and decrypted in place [`STREAM_BATCH`] at a time. The
/// body's last block is unpadded and only its plaintext delivered.
/// `offset` follows what is delivered.
struct Blocks {
    job: Arc<Job>,
    key: Arc<DataKey>,
    body: Arc<Body>,
    to: Destination,
    written: Arc<std::sync::atomic::AtomicU64>,
    offset: u64,
    to_offset: u64,
    attempt: Option<BlockAttempt>,
    /// A buffer delivered into a file (or dropped), to fill next.
    spare: Option<Vec<u8>>,
}

struct BlockAttempt {
    prev: [u8; BLOCK],
    need_prev: bool,
    /// Ciphertext gathered, at most [`BUF_CAP`] bytes.
    buf: Vec<u8>,
    received: u64,
    expected: u64,
}

/// What a stream's buffer holds at most: a batch and part of a block.
const BUF_CAP: usize = STREAM_BATCH + BLOCK;

impl Blocks {
    /// An empty buffer with room for [`BUF_CAP`] bytes: the spare one, or
    /// one the ordered writer is done with.
    fn fresh_buffer(&mut self) -> Vec<u8> {
        let mut buf = match (self.spare.take(), &self.to) {
            (Some(buf), _) => buf,
            (None, Destination::Ordered(window)) => window.pool.take(),
            (None, _) => Vec::new(),
        };
        buf.clear();
        buf.reserve_exact(BUF_CAP);
        buf
    }

    /// Gathers `chunk`, decrypting and delivering each batch it completes.
    async fn gather(&mut self, mut chunk: &[u8]) -> Result<(), Error> {
        while !chunk.is_empty() {
            let a = self.attempt.as_mut().expect("started");
            let take = chunk.len().min(BUF_CAP - a.buf.len());
            a.buf.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            self.step(false).await?;
        }
        Ok(())
    }

    /// Decrypts and delivers the whole blocks gathered, once they make a
    /// batch (at the end: all of them).
    async fn step(&mut self, done: bool) -> Result<(), Error> {
        let a = self.attempt.as_mut().expect("started");
        if a.need_prev && a.buf.len() >= BLOCK {
            a.prev.copy_from_slice(&a.buf[..BLOCK]);
            a.buf.drain(..BLOCK);
            a.need_prev = false;
        }
        let whole = a.buf.len() - a.buf.len() % BLOCK;
        if a.need_prev || !(whole >= STREAM_BATCH || (done && whole > 0)) {
            return Ok(());
        }
        let mut next = self.fresh_buffer();
        let a = self.attempt.as_mut().expect("started");
        next.extend_from_slice(&a.buf[whole..]);
        let mut batch = std::mem::replace(&mut a.buf, next);
        batch.truncate(whole);
        let next_prev: [u8; BLOCK] = batch[whole - BLOCK..].try_into().expect("a block");
        let at = self.offset;
        let last = at + whole as u64 == self.body.len;
        let (key, prev) = (Arc::clone(&self.key), a.prev);
        let file = match &self.to {
            Destination::File(file) => Some(Arc::clone(file)),
            _ => None,
        };
        let (buf, len) = tokio::task::spawn_blocking(move || {
            decrypt(&key, &prev, batch, last, file.as_deref(), at)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        match &self.to {
            // The writer reports it; a stream too far ahead waits here.
            Destination::Ordered(window) => {
                let offset = at;
                window
                    .send(Batch {
                        offset,
                        buf,
                        len,
                        last,
                    })
                    .await?;
            }
            Destination::File(_) | Destination::Discard => {
                self.job.observer.done(len as u64);
                self.spare = Some(buf);
            }
        }
        let a = self.attempt.as_mut().expect("started");
        a.prev = next_prev;
        self.offset += whole as u64;
        self.written
            .fetch_add(len as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Decrypts `batch` in place (body bytes from `at`, after the block
/// `prev`; `last`: it ends the body, and is unpadded) and writes its
/// plaintext into `file`, if one is given. Returns the buffer and the
/// length of the plaintext at its start. Runs on the blocking pool.
fn decrypt(
    key: &DataKey,
    prev: &[u8; BLOCK],
    mut batch: Vec<u8>,
    last: bool,
    file: Option<&std::fs::File>,
    at: u64,
) -> Result<(Vec<u8>, usize), Error> {
    v1::decrypt_chunk_in_place(key, prev, &mut batch);
    let plain = match last {
        true => {
            let (blocks, last_block) = batch.split_at(batch.len() - BLOCK);
            blocks.len() + v1::unpad(last_block)?.len()
        }
        false => batch.len(),
    };
    if let Some(file) = file {
        crate::sink::write_all_at(file, &batch[..plain], at)?;
    }
    Ok((batch, plain))
}

impl Run for Blocks {
    fn start(&mut self) -> Result<ByteRange, Error> {
        let fetch_from = self.offset.saturating_sub(BLOCK as u64);
        // A broken attempt's ciphertext is fetched again.
        let buf = self.fresh_buffer();
        self.attempt = Some(BlockAttempt {
            prev: self.body.iv,
            need_prev: self.offset > 0,
            buf,
            received: 0,
            expected: self.to_offset - fetch_from,
        });
        let start = self.body.start;
        Ok(ByteRange::new(
            start + fetch_from,
            start + self.to_offset - 1,
        ))
    }

    async fn chunk(&mut self, chunk: Bytes) -> Result<(), Error> {
        let a = self.attempt.as_mut().expect("started");
        a.received += chunk.len() as u64;
        if a.received > a.expected {
            return Err(DecryptError.into());
        }
        self.gather(&chunk).await
    }

    async fn end(&mut self) -> Result<(), Error> {
        self.step(true).await?;
        let a = self.attempt.as_ref().expect("started");
        if a.received != a.expected || self.offset != self.to_offset || !a.buf.is_empty() {
            return Err(DecryptError.into());
        }
        Ok(())
    }

    fn position(&self) -> u64 {
        self.offset
    }
}
