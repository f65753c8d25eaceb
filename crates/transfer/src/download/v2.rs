//! v2 downloads: frames opened straight from the network chunks that carry
//! them, by parallel streams, into a file at offsets or through the
//! ordered writer.

use std::sync::Arc;

use atrest_crypto::v2::{FrameCipher, FrameRun};
use atrest_crypto::DecryptError;
use atrest_format::v2 as format_v2;
use atrest_s3::ByteRange;
use bytes::Bytes;
use tokio::task::JoinHandle;

use super::ordered::{self, Batch};
use super::stream::{self, Run};
use super::Destination;
use super::{Job, FILE_STREAMS, ORDERED_STREAMS, STREAM_BATCH};
use crate::sink::Sink;
use crate::{Error, PlainRange};

/// Which frames to fetch, and which plaintext bytes of them to keep.
pub(crate) struct Plan {
    object_len: u64,
    header_len: u64,
    frame_size: u64,
    first_frame: u64,
    last_frame: u64,
    last_is_final: bool,
    skip: u64,
    /// Plaintext bytes to write.
    pub(crate) len: u64,
    frames_per_part: u64,
}

impl Plan {
    pub(crate) fn new(
        header: &format_v2::Header,
        object_len: u64,
        range: Option<PlainRange>,
        part_size: usize,
    ) -> Result<Self, Error> {
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
            let span = range.within(plaintext_len)?;
            let end = span.end.expect("a resolved range ends");
            let r = format_v2::frames_for_range(span.start, end, frame_size, plaintext_len).ok_or(
                Error::RangeOutside {
                    range,
                    plaintext_len,
                },
            )?;
            plan.first_frame = r.first_frame;
            plan.last_frame = r.last_frame;
            plan.last_is_final = r.last_is_final;
            plan.skip = r.skip;
            plan.len = r.len;
        }
        Ok(plan)
    }

    /// Object byte range of frames `first..=last`.
    fn object_range(&self, first: u64, last: u64) -> ByteRange {
        let sealed = format_v2::sealed_frame_len(self.frame_size);
        let start = self.header_len + first * sealed;
        // The object's last frame may be short: S3 clips the range to the
        // object's end, and the frame run checks what arrived.
        ByteRange::new(start, self.header_len + (last + 1) * sealed - 1)
    }
}

pub(crate) struct Options {
    pub(crate) concurrency: Option<usize>,
    /// No plaintext range was asked for.
    pub(crate) whole_range: bool,
}

pub(crate) async fn download(
    job: &Arc<Job>,
    cipher: Arc<FrameCipher>,
    plan: Plan,
    first_fetch: Bytes,
    options: Options,
    sink: Sink<'_>,
) -> Result<u64, Error> {
    let written = plan.len;
    let whole = first_fetch.len() as u64 == plan.object_len;
    match sink {
        Sink::File(_) | Sink::Discard if options.whole_range && !whole => {
            let streams = options.concurrency.unwrap_or(FILE_STREAMS).max(1) as u64;
            let frames = plan.last_frame - plan.first_frame + 1;
            // Long runs (at least a part; several per stream, so that the
            // streams end together).
            let run_frames = plan.frames_per_part.max(frames.div_ceil(streams * 4));
            let to = match sink {
                Sink::File(file) => Destination::File(Arc::new(file)),
                _ => Destination::Discard,
            };
            streams_of_runs(job, cipher, Arc::new(plan), streams, run_frames, to).await?;
        }
        sink => {
            let streams = options.concurrency.unwrap_or(ORDERED_STREAMS);
            let mut to = super::ordered(sink);
            in_order(job, cipher, plan, first_fetch, streams, to.sink()).await?;
            to.sink().finish().await?;
        }
    }
    Ok(written)
}

/// Ordered output (a writer, or a range): the planned frames stream as they
/// do into a file, `streams` ranged GETs at once, and one writer puts their
/// batches in order. A batch waits until it is within
/// [`ordered::ORDERED_WINDOW`] of what is written, so memory stays bounded
/// whatever the part size or the number of streams. Every written byte
/// comes from a frame that authenticated; a failure part-way leaves a
/// prefix of the plaintext.
async fn in_order(
    job: &Arc<Job>,
    cipher: Arc<FrameCipher>,
    plan: Plan,
    first_fetch: Bytes,
    streams: usize,
    sink: &mut dyn crate::sink::OrderedSink,
) -> Result<(), Error> {
    let wanted = plan.skip..plan.skip + plan.len;
    // A small object came whole with the first GET: no more requests.
    if first_fetch.len() as u64 == plan.object_len {
        let range = plan.object_range(plan.first_frame, plan.last_frame);
        let end = first_fetch
            .len()
            .min(range.end.unwrap_or(u64::MAX) as usize + 1);
        let sealed = first_fetch.slice(range.start as usize..end);
        let mut frames = FrameRun::new(
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
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let to = (wanted.end as usize).min(len);
        let from = (wanted.start as usize).min(to);
        sink.write(plain, from..to).await?;
        job.observer.done((to - from) as u64);
        return Ok(());
    }
    let streams = streams.max(1) as u64;
    let run_frames = plan.frames_per_part;
    let (window, writer) = ordered::window(streams);
    let to = Destination::Ordered(window);
    let fetch = streams_of_runs(job, cipher, Arc::new(plan), streams, run_frames, to);
    let write = writer.run(wanted, sink, &*job.observer);
    tokio::try_join!(fetch, write)?;
    Ok(())
}

/// `streams` ranged GETs at once, each over a run of `run_frames` frames
/// taken from a shared queue; frames are opened as they arrive and their
/// plaintext delivered `to` its destination in batches. Into a file,
/// memory stays at a few batches per stream whatever the part size, and no
/// stream waits for another.
async fn streams_of_runs(
    job: &Arc<Job>,
    cipher: Arc<FrameCipher>,
    plan: Arc<Plan>,
    streams: u64,
    run_frames: u64,
    to: Destination,
) -> Result<(), Error> {
    let units = plan.first_frame..plan.last_frame + 1;
    let job = Arc::clone(job);
    stream::in_runs(units, run_frames, streams, move |first, end| {
        let mut run = Frames {
            job: Arc::clone(&job),
            cipher: Arc::clone(&cipher),
            plan: Arc::clone(&plan),
            to: to.clone(),
            next: first,
            last: end - 1,
            state: None,
        };
        async move {
            let job = Arc::clone(&run.job);
            stream::stream(&job, &mut run).await
        }
    })
    .await
}

/// One stream's run of frames `next..=last`; `next` follows what has been
/// delivered, so that a resumed attempt starts there.
struct Frames {
    job: Arc<Job>,
    cipher: Arc<FrameCipher>,
    plan: Arc<Plan>,
    to: Destination,
    next: u64,
    last: u64,
    /// The current attempt.
    state: Option<Attempt>,
}

/// An attempt's frames and the plaintext batch filling.
struct Attempt {
    frames: FrameRun,
    batches: Batches,
}

impl Run for Frames {
    fn start(&mut self) -> Result<ByteRange, Error> {
        let range = self.plan.object_range(self.next, self.last);
        let end = range.end.unwrap_or(u64::MAX).min(self.plan.object_len - 1);
        let last_is_final = self.plan.last_is_final && self.last == self.plan.last_frame;
        let frames = FrameRun::new(
            self.cipher.frame_size(),
            self.next,
            self.last,
            end + 1 - range.start,
            last_is_final,
        )?;
        // Frames open as each chunk arrives, while it is still in the cache
        // and before the connection's buffer is needed again; their
        // plaintext is delivered one batch at a time (written by the
        // blocking pool, for a file) while the next one fills.
        let batches = Batches {
            to: self.to.clone(),
            observer: Arc::clone(&self.job.observer),
            frame_size: self.plan.frame_size,
            first_frame: self.plan.first_frame,
            plain: batch_buffer(Vec::new(), self.cipher.frame_size()),
            filled: 0,
            batch_first: self.next,
            delivering: None,
        };
        self.state = Some(Attempt { frames, batches });
        Ok(range)
    }

    async fn chunk(&mut self, chunk: Bytes) -> Result<(), Error> {
        let attempt = self.state.as_mut().expect("started");
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let b = &mut attempt.batches;
            let (filled, used) =
                attempt
                    .frames
                    .open(&self.cipher, rest, &mut b.plain, b.filled, STREAM_BATCH)?;
            (b.filled, rest) = (filled, &rest[used..]);
            if filled >= STREAM_BATCH {
                b.deliver(attempt.frames.next_frame(), &mut self.next)
                    .await?;
            }
        }
        Ok(())
    }

    async fn end(&mut self) -> Result<(), Error> {
        let Attempt {
            frames,
            mut batches,
        } = self.state.take().expect("started");
        if batches.filled > 0 {
            batches.deliver(frames.next_frame(), &mut self.next).await?;
        }
        batches.finish(&mut self.next).await?;
        // A short body (truncated object or connection) leaves frames unread.
        frames.finish()?;
        Ok(())
    }

    fn position(&self) -> u64 {
        self.next
    }
}

/// A stream's plaintext: one batch filling while (into a file) the one
/// before it is written.
struct Batches {
    to: Destination,
    observer: Arc<dyn crate::Observer>,
    frame_size: u64,
    first_frame: u64,
    plain: Vec<u8>,
    filled: usize,
    /// The frame `plain` starts with.
    batch_first: u64,
    delivering: Option<JoinHandle<std::io::Result<Delivered>>>,
}

impl Batches {
    /// Delivers `plain[..filled]`, which ends before `next_frame`, and
    /// records in `next` the frame after what has been delivered.
    async fn deliver(&mut self, next_frame: u64, next: &mut u64) -> Result<(), Error> {
        let offset = (self.batch_first - self.first_frame) * self.frame_size;
        let (buf, len) = (std::mem::take(&mut self.plain), self.filled);
        let spare = match &self.to {
            Destination::File(file) => {
                // Written by the blocking pool while the next batch fills.
                let spare = match self.delivering.take() {
                    Some(previous) => joined(previous.await)?.finish(next),
                    None => Vec::new(),
                };
                let (file, observer) = (Arc::clone(file), Arc::clone(&self.observer));
                self.delivering = Some(tokio::task::spawn_blocking(move || {
                    crate::sink::write_all_at(&file, &buf[..len], offset)?;
                    observer.done(len as u64);
                    Ok(Delivered { buf, next_frame })
                }));
                spare
            }
            Destination::Ordered(window) => {
                // The writer does the I/O; a stream too far ahead waits here,
                // holding no second batch.
                // Its range says where the plaintext ends.
                let batch = Batch {
                    offset,
                    buf,
                    len,
                    last: false,
                };
                window.send(batch).await?;
                *next = next_frame;
                window.pool.take()
            }
            Destination::Discard => {
                self.observer.done(len as u64);
                *next = next_frame;
                buf
            }
        };
        self.plain = batch_buffer(spare, self.frame_size as usize);
        (self.filled, self.batch_first) = (0, next_frame);
        Ok(())
    }

    /// Waits for the last batch.
    async fn finish(mut self, next: &mut u64) -> Result<(), Error> {
        if let Some(previous) = self.delivering.take() {
            joined(previous.await)?.finish(next);
        }
        Ok(())
    }
}

fn joined<T>(result: Result<std::io::Result<T>, tokio::task::JoinError>) -> Result<T, Error> {
    Ok(result.map_err(std::io::Error::other)??)
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
