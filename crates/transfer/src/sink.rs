//! Where a download's plaintext goes: a file written at offsets by parallel
//! streams, or any ordered writer.

use std::ops::Range;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A download's destination.
pub enum Sink<'a> {
    /// An empty file, written at offsets (on the blocking pool) by parallel
    /// streams; where the plan must be ordered (a range, a small object) it
    /// is written in order.
    File(std::fs::File),
    /// Plaintext in order.
    Ordered(&'a mut dyn OrderedSink),
    /// Nowhere: every byte is decrypted (and, for v2, authenticated) by
    /// parallel streams as into a file, then dropped. What verifying an
    /// object needs.
    Discard,
}

impl std::fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::File(file) => f.debug_tuple("File").field(file).finish(),
            Sink::Ordered(_) => f.write_str("Ordered"),
            Sink::Discard => f.write_str("Discard"),
        }
    }
}

/// A writer that takes plaintext in order, in owned buffers (so that it can
/// write them on the blocking pool without copying). Any [`AsyncWrite`] is
/// one through [`Writer`].
pub trait OrderedSink: Send {
    /// Writes `buf[range]` and hands `buf` back, unchanged, for reuse.
    fn write(
        &mut self,
        buf: Vec<u8>,
        range: Range<usize>,
    ) -> BoxFuture<'_, std::io::Result<Vec<u8>>>;

    /// Called once after the last write.
    fn finish(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Any [`AsyncWrite`] as an [`OrderedSink`] (flushed at the end).
#[derive(Debug)]
pub struct Writer<W>(pub W);

impl<W: AsyncWrite + Unpin + Send> OrderedSink for Writer<W> {
    fn write(
        &mut self,
        buf: Vec<u8>,
        range: Range<usize>,
    ) -> BoxFuture<'_, std::io::Result<Vec<u8>>> {
        Box::pin(async move {
            self.0.write_all(&buf[range]).await?;
            Ok(buf)
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(self.0.flush())
    }
}

/// Drops what it is given (the ordered side of [`Sink::Discard`]).
#[derive(Debug)]
pub(crate) struct Discard;

impl OrderedSink for Discard {
    fn write(
        &mut self,
        buf: Vec<u8>,
        _range: Range<usize>,
    ) -> BoxFuture<'_, std::io::Result<Vec<u8>>> {
        Box::pin(async move { Ok(buf) })
    }
}

/// A file written in order at increasing offsets, on the blocking pool.
#[derive(Debug)]
pub(crate) struct FileAt {
    file: Arc<std::fs::File>,
    offset: u64,
}

impl FileAt {
    pub(crate) fn new(file: std::fs::File) -> Self {
        FileAt {
            file: Arc::new(file),
            offset: 0,
        }
    }
}

impl OrderedSink for FileAt {
    fn write(
        &mut self,
        buf: Vec<u8>,
        range: Range<usize>,
    ) -> BoxFuture<'_, std::io::Result<Vec<u8>>> {
        let (file, at) = (Arc::clone(&self.file), self.offset);
        self.offset += range.len() as u64;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                write_all_at(&file, &buf[range], at)?;
                Ok(buf)
            })
            .await
            .map_err(std::io::Error::other)?
        })
    }
}

/// Writes all of `buf` at `offset` in `file`, leaving its cursor alone (on
/// Unix; elsewhere the cursor moves, which positional writers never use).
pub fn write_all_at(file: &std::fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(file, buf, offset)? {
                0 => return Err(std::io::ErrorKind::WriteZero.into()),
                n => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}
