//! The one ranged-stream primitive: a GET over a run of the object, fed to
//! a [`Run`] chunk by chunk, resumed from what the run has handed on when
//! the body breaks part-way. v1 and v2 runs, into a file or in order, all
//! go through it, and every GET is pinned to the download's first version.

use std::future::Future;
use std::sync::Arc;

use atrest_s3::{ByteRange, S3Error};
use bytes::Bytes;

use super::Job;
use crate::{escape, Error};

/// Attempts per run when its body breaks part-way (the SDK retries a
/// request only until its body starts).
const STREAM_ATTEMPTS: u32 = 3;

/// A run of the object that one stream fetches and consumes.
pub(crate) trait Run {
    /// Starts an attempt: the object bytes still to fetch, from the first
    /// not yet handed on (anything held from a broken attempt is dropped).
    fn start(&mut self) -> Result<ByteRange, Error>;
    /// Consumes the next chunk of the body.
    fn chunk(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), Error>> + Send;
    /// The body ended: hand on the rest, and check that it was all there.
    fn end(&mut self) -> impl Future<Output = Result<(), Error>> + Send;
    /// Where the run stands, for the log line of a resume.
    fn position(&self) -> u64;
}

/// Streams `run` from one ranged GET, resuming (twice at most) when the
/// connection breaks mid-body.
pub(crate) async fn stream<R: Run + Send>(job: &Job, run: &mut R) -> Result<(), Error> {
    let mut attempt = 1;
    loop {
        match attempt_once(job, run).await {
            Err(Error::S3(e @ S3Error::Body { .. })) if attempt < STREAM_ATTEMPTS => {
                tracing::debug!(
                    uri = %escape(&job.uri.to_string()),
                    at = run.position(),
                    error = %escape(&error_chain(&e)),
                    "download stream broke; resuming"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn attempt_once<R: Run + Send>(job: &Job, run: &mut R) -> Result<(), Error> {
    let range = run.start()?;
    let mut body = atrest_s3::get(&job.s3, &job.uri, range, Some(&job.pin)).await?;
    while let Some(chunk) = body.next_chunk().await.transpose()? {
        run.chunk(chunk).await?;
    }
    run.end().await
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Splits `units` (frames, or CBC blocks) into runs of `run_len` that
/// `streams` concurrent workers take from a shared queue; `work(first, end)`
/// handles units `first..end`. The first failure stops the rest (dropping
/// the set aborts them).
pub(crate) async fn in_runs<F, Fut>(
    units: std::ops::Range<u64>,
    run_len: u64,
    streams: u64,
    work: F,
) -> Result<(), Error>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
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
                    return Ok::<(), Error>(());
                }
                work(first, (first + run_len).min(end)).await?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| Error::Io(std::io::Error::other(e)))??;
    }
    Ok(())
}
