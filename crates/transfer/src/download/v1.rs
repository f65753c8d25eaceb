//! v1 downloads. CBC decryption of a block needs only the ciphertext block
//! before it, so into a file the body splits into runs decrypted by
//! concurrent ranged GETs (each fetching one block early for its IV) and
//! written at their offsets, as for v2. In order, one stream decrypts it
//! all. Only the padding check at the very end can fail: v1 has no
//! authentication.

use std::sync::Arc;

use atrest_crypto::{v1, DataKey, DecryptError};
use atrest_s3::{ByteRange, Fetched};
use bytes::{Bytes, BytesMut};

use super::stream::{self, Run};
use super::{Job, STREAM_BATCH};
use crate::sink::{OrderedSink, Sink};
use crate::Error;

const BLOCK: usize = atrest_format::v1::BLOCK_LEN;

pub(crate) struct Options {
    pub(crate) streams: usize,
    /// Smallest run one ranged GET covers.
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
    let body_len = first.object_len.saturating_sub(start);
    // Padding hides v1's exact length: within 16 bytes of this.
    job.observer.total(body_len);
    // Into a file, or nowhere, the body is decrypted by parallel runs.
    let parallel = first.object_len > first.bytes.len() as u64;
    let file = match sink {
        Sink::File(file) if parallel => Some(file),
        Sink::Discard if parallel => None,
        sink => return in_order(job, header, key, first, sink).await,
    };
    let body = Body {
        start,
        len: body_len,
        iv: header.cbc_iv(),
    };
    positional(job, key, body, options, file).await
}

/// One stream, in order (a writer, or an object the first GET brought
/// whole).
async fn in_order(
    job: &Arc<Job>,
    header: &atrest_format::v1::Header,
    key: &Arc<DataKey>,
    first: Fetched,
    sink: Sink<'_>,
) -> Result<u64, Error> {
    let start = header.encoded_len() as u64;
    let mut to = super::ordered(sink);
    let mut run = InOrder {
        decryptor: Some(v1::Decryptor::new(key, &header.stored_iv())),
        sink: to.sink(),
        observer: &*job.observer,
        // The first GET's bytes count as fetched.
        fetched: first.bytes.len() as u64,
        written: 0,
    };
    run.feed(&first.bytes[(start as usize).min(first.bytes.len())..])
        .await?;
    if first.object_len > first.bytes.len() as u64 {
        stream::stream(job, &mut run).await?;
    } else {
        run.end().await?;
    }
    let written = run.written;
    to.sink().finish().await?;
    Ok(written)
}

/// One stream through the streaming decryptor, in order; a broken body
/// resumes at the first byte not yet fed to it.
struct InOrder<'a> {
    /// `None` once finished.
    decryptor: Option<v1::Decryptor>,
    sink: &'a mut dyn OrderedSink,
    observer: &'a dyn crate::Observer,
    /// Object bytes fed to the decryptor so far.
    fetched: u64,
    written: u64,
}

impl InOrder<'_> {
    async fn feed(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let mut plain = Vec::new();
        let decryptor = self.decryptor.as_mut().expect("not finished");
        decryptor.update(chunk, &mut plain);
        self.write(plain).await
    }

    async fn write(&mut self, plain: Vec<u8>) -> Result<(), Error> {
        let len = plain.len();
        self.sink.write(plain, 0..len).await?;
        self.observer.done(len as u64);
        self.written += len as u64;
        Ok(())
    }
}

impl Run for InOrder<'_> {
    fn start(&mut self) -> Result<ByteRange, Error> {
        Ok(ByteRange::from(self.fetched))
    }

    async fn chunk(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.feed(&chunk).await?;
        self.fetched += chunk.len() as u64;
        Ok(())
    }

    async fn end(&mut self) -> Result<(), Error> {
        let mut plain = Vec::new();
        let decryptor = self.decryptor.take().expect("not finished");
        decryptor.finish(&mut plain)?;
        self.write(plain).await
    }

    fn position(&self) -> u64 {
        self.fetched
    }
}

/// Where a v1 object's CBC body is.
struct Body {
    /// Object offset of the first ciphertext byte.
    start: u64,
    len: u64,
    iv: [u8; BLOCK],
}

async fn positional(
    job: &Arc<Job>,
    key: &Arc<DataKey>,
    body: Body,
    options: Options,
    file: Option<std::fs::File>,
) -> Result<u64, Error> {
    if !atrest_format::v1::is_valid_ciphertext_len(body.len) {
        return Err(DecryptError.into());
    }
    let streams = options.streams.max(1) as u64;
    let blocks = body.len / BLOCK as u64;
    let run_blocks = (options.run_len / BLOCK as u64).max(blocks.div_ceil(streams * 4));
    let (body, file) = (Arc::new(body), file.map(Arc::new));
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (job, key, total) = (Arc::clone(job), Arc::clone(key), Arc::clone(&written));
    stream::in_runs(0..blocks, run_blocks, streams, move |first, end| {
        let mut run = Blocks {
            job: Arc::clone(&job),
            key: Arc::clone(&key),
            body: Arc::clone(&body),
            file: file.clone(),
            written: Arc::clone(&total),
            offset: first * BLOCK as u64,
            to: end * BLOCK as u64,
            attempt: None,
        };
        async move {
            let job = Arc::clone(&run.job);
            stream::stream(&job, &mut run).await
        }
    })
    .await?;
    Ok(written.load(std::sync::atomic::Ordering::Relaxed))
}

/// Body bytes `offset..to` (whole blocks) of one stream, from ranged GETs
/// that start a block early (except at the body's start) for the IV, and
/// decrypted [`STREAM_BATCH`] at a time. The body's last block is unpadded
/// and only its plaintext written. `offset` follows what is written.
struct Blocks {
    job: Arc<Job>,
    key: Arc<DataKey>,
    body: Arc<Body>,
    /// `None`: decrypted and dropped ([`Sink::Discard`]).
    file: Option<Arc<std::fs::File>>,
    written: Arc<std::sync::atomic::AtomicU64>,
    offset: u64,
    to: u64,
    attempt: Option<BlockAttempt>,
}

struct BlockAttempt {
    prev: [u8; BLOCK],
    need_prev: bool,
    buf: BytesMut,
    received: u64,
    expected: u64,
}

impl Blocks {
    /// Decrypts and writes the whole blocks gathered (at the end: all).
    async fn step(&mut self, done: bool) -> Result<(), Error> {
        let a = self.attempt.as_mut().expect("started");
        if a.need_prev && a.buf.len() >= BLOCK {
            a.prev.copy_from_slice(&a.buf.split_to(BLOCK));
            a.need_prev = false;
        }
        let whole = a.buf.len() - a.buf.len() % BLOCK;
        if a.need_prev || !(whole >= STREAM_BATCH || (done && whole > 0)) {
            return Ok(());
        }
        let mut batch = a.buf.split_to(whole);
        let next_prev: [u8; BLOCK] = batch[whole - BLOCK..].try_into().expect("a block");
        let at = self.offset;
        let is_last = at + whole as u64 == self.body.len;
        let (key, file, prev) = (Arc::clone(&self.key), self.file.clone(), a.prev);
        let written = tokio::task::spawn_blocking(move || -> Result<u64, Error> {
            v1::decrypt_chunk_in_place(&key, &prev, &mut batch);
            let write = |buf: &[u8], at: u64| match &file {
                Some(file) => crate::sink::write_all_at(file, buf, at),
                None => Ok(()),
            };
            if !is_last {
                write(&batch, at)?;
                return Ok(whole as u64);
            }
            let (blocks, last) = batch.split_at(whole - BLOCK);
            let tail = v1::unpad(last)?;
            write(blocks, at)?;
            write(tail, at + blocks.len() as u64)?;
            Ok((blocks.len() + tail.len()) as u64)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        a.prev = next_prev;
        self.offset += whole as u64;
        self.written
            .fetch_add(written, std::sync::atomic::Ordering::Relaxed);
        self.job.observer.done(written);
        Ok(())
    }
}

impl Run for Blocks {
    fn start(&mut self) -> Result<ByteRange, Error> {
        let fetch_from = self.offset.saturating_sub(BLOCK as u64);
        self.attempt = Some(BlockAttempt {
            prev: self.body.iv,
            need_prev: self.offset > 0,
            buf: BytesMut::with_capacity(STREAM_BATCH),
            received: 0,
            expected: self.to - fetch_from,
        });
        let start = self.body.start;
        Ok(ByteRange::new(start + fetch_from, start + self.to - 1))
    }

    async fn chunk(&mut self, chunk: Bytes) -> Result<(), Error> {
        let a = self.attempt.as_mut().expect("started");
        a.received += chunk.len() as u64;
        if a.received > a.expected {
            return Err(DecryptError.into());
        }
        a.buf.extend_from_slice(&chunk);
        self.step(false).await
    }

    async fn end(&mut self) -> Result<(), Error> {
        self.step(true).await?;
        let a = self.attempt.as_ref().expect("started");
        if a.received != a.expected || self.offset != self.to || !a.buf.is_empty() {
            return Err(DecryptError.into());
        }
        Ok(())
    }

    fn position(&self) -> u64 {
        self.offset
    }
}
