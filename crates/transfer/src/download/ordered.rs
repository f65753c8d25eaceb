//! Ordered output: streams hand their batches (in any order) to one writer,
//! which writes them in plaintext order; a stream too far ahead waits.

use std::collections::BTreeMap;

use atrest_crypto::DecryptError;

use crate::buffers::BufferPool;
use crate::sink::OrderedSink;
use crate::{Error, Observer};

/// How far (in plaintext bytes) an ordered stream may run ahead of the
/// writer. A stream further ahead stops reading, and TCP holds what its
/// server has sent meanwhile. Measured on a 1 GiB download to stdout with
/// part-sized runs: at 8 streams, 12 MiB took 2.64-2.69 s, 8 MiB 2.87-2.89
/// s, 20 MiB 2.58-2.66 s (at 12 streams 16 MiB was no faster than 12 and
/// held 8 MiB more); shorter runs that all fit in the window were slower
/// (3 MiB: 2.78-2.88 s), as every ranged GET costs the server a start.
/// Memory is bounded by the window, whatever the part size.
pub const ORDERED_WINDOW: u64 = 12 << 20;

/// Plaintext of whole frames (v2) or blocks (v1), at `offset` from the
/// first planned one's.
pub(crate) struct Batch {
    pub(crate) offset: u64,
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
    /// The plaintext ends with this batch (v1, whose length its padding
    /// tells only at the end).
    pub(crate) last: bool,
}

/// A stream's side of the ordered writer.
#[derive(Clone)]
pub(crate) struct Window {
    batches: tokio::sync::mpsc::UnboundedSender<Batch>,
    written: tokio::sync::watch::Receiver<u64>,
    pub(crate) pool: BufferPool,
}

/// The writer's side.
pub(crate) struct Writer {
    received: tokio::sync::mpsc::UnboundedReceiver<Batch>,
    written: tokio::sync::watch::Sender<u64>,
    pool: BufferPool,
}

/// A window for `streams` streams, and its writer.
pub(crate) fn window(streams: u64) -> (Window, Writer) {
    let pool = BufferPool::new((ORDERED_WINDOW / super::STREAM_BATCH as u64 + streams) as usize);
    let (batches, received) = tokio::sync::mpsc::unbounded_channel();
    let (written, written_rx) = tokio::sync::watch::channel(0);
    let window = Window {
        batches,
        written: written_rx,
        pool: pool.clone(),
    };
    let writer = Writer {
        received,
        written,
        pool,
    };
    (window, writer)
}

fn stopped() -> Error {
    Error::Io(std::io::Error::other("the output stopped"))
}

impl Window {
    /// Hands `batch` to the writer once it is within the window (the next
    /// batch to write always is, so streams cannot all wait).
    pub(crate) async fn send(&self, batch: Batch) -> Result<(), Error> {
        let offset = batch.offset;
        self.written
            .clone()
            .wait_for(|&written| offset < written + ORDERED_WINDOW)
            .await
            .map_err(|_| stopped())?;
        self.batches.send(batch).map_err(|_| stopped())?;
        Ok(())
    }
}

impl Writer {
    /// Writes the batches that arrive (in any order) in plaintext order, the
    /// bytes of `wanted` only (up to the batch marked last, if one is), and
    /// reports the offset written so far.
    pub(crate) async fn run(
        mut self,
        wanted: std::ops::Range<u64>,
        sink: &mut dyn OrderedSink,
        observer: &dyn Observer,
    ) -> Result<(), Error> {
        let mut ready = BTreeMap::new();
        let mut at = 0;
        while at < wanted.end {
            let Some(batch) = ready.remove(&at) else {
                // Closed with the next batch missing: a stream failed (its
                // error is the one reported) or the frames fell short.
                let batch = self.received.recv().await.ok_or(DecryptError)?;
                ready.insert(batch.offset, batch);
                continue;
            };
            let Batch { buf, len, last, .. } = batch;
            let to = (wanted.end - at).min(len as u64) as usize;
            let from = (wanted.start.saturating_sub(at) as usize).min(to);
            self.pool.put(sink.write(buf, from..to).await?);
            observer.done((to - from) as u64);
            at += len as u64;
            self.written.send_replace(at);
            if last {
                break;
            }
        }
        Ok(())
    }
}
