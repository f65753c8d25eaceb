//! Local input and output: `-` for stdin/stdout, atomic file replacement.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use tempfile::NamedTempFile;
use tokio::io::AsyncRead;

use crate::failure::{Exit, Failure};

pub fn is_std_stream(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens FILE for reading, or stdin for `-`.
pub async fn open_input(path: &Path) -> Result<Box<dyn AsyncRead + Unpin + Send>> {
    if is_std_stream(path) {
        return Ok(Box::new(tokio::io::stdin()));
    }
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    if file.metadata().await?.is_dir() {
        return Err(Failure::new(
            Exit::Usage,
            format!("{} is a directory, not a file", path.display()),
        )
        .into());
    }
    Ok(Box::new(file))
}

/// A temporary file beside `dest` that replaces it only on [`commit`].
///
/// Dropping it uncommitted removes the temporary file, so a failed run leaves
/// neither partial output nor a changed destination.
fn temp_beside(dest: &Path) -> Result<NamedTempFile> {
    if dest.is_dir() {
        return Err(Failure::new(
            Exit::Usage,
            format!("{} is a directory; give a file name", dest.display()),
        )
        .into());
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".atrest-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
}

/// Writes `bytes` to `dest` atomically (mode 0600 on Unix). Returns whether
/// an existing file was replaced.
pub fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<bool> {
    let mut temp = temp_beside(dest)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    let replaced = dest.exists();
    temp.persist(dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(replaced)
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

/// Where decrypted output goes: stdout, or a temporary file renamed into
/// place by [`Output::commit`].
///
/// Writes run on the blocking pool with std I/O on owned buffers: tokio's
/// file and stdout types would copy every buffer once more on the way.
/// Small writes are gathered into [`WRITE_CHUNK`]-sized ones.
pub struct Output {
    /// `None` only while a write is running, or after one panicked.
    writer: Option<Box<dyn Write + Send>>,
    pending: BytesMut,
    file: Option<(NamedTempFile, PathBuf)>,
}

/// A range of a buffer, written without copying it out.
struct Part {
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

/// Small writes are gathered into writes of about this size.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes at least this large go to the kernel as they are (after what was
/// gathered): copying them would cost more than the system call saved.
const DIRECT_WRITE: usize = 256 << 10;

impl Output {
    /// Prepares output to `dest` (`-` for stdout). Fails before anything is
    /// downloaded if the destination cannot be written.
    pub fn create(dest: &Path) -> Result<Self> {
        if is_std_stream(dest) {
            return Ok(Output {
                writer: Some(Box::new(std::io::stdout())),
                pending: BytesMut::new(),
                file: None,
            });
        }
        let temp = temp_beside(dest)?;
        Ok(Output {
            writer: Some(Box::new(temp.as_file().try_clone()?)),
            pending: BytesMut::new(),
            file: Some((temp, dest.to_owned())),
        })
    }

    /// For a file with nothing written yet: a handle for writing at any
    /// offset (on Unix), so that parts can be written out of order.
    pub fn positional(&self) -> Result<Option<std::fs::File>> {
        match &self.file {
            Some((temp, _)) if self.pending.is_empty() => Ok(Some(temp.as_file().try_clone()?)),
            _ => Ok(None),
        }
    }

    /// Appends `data`.
    pub async fn write(&mut self, data: Bytes) -> std::io::Result<()> {
        if self.gather(&data).await? {
            return Ok(());
        }
        self.write_now(data).await.map(drop)
    }

    /// Appends `buf[range]`, and hands the buffer back, unchanged, for
    /// reuse.
    pub async fn write_buf(
        &mut self,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> std::io::Result<Vec<u8>> {
        if self.gather(&buf[range.clone()]).await? {
            return Ok(buf);
        }
        let part = Part { buf, range };
        Ok(self.write_now(part).await?.buf)
    }

    /// Adds a small `data` to the pending bytes (flushing them first if they
    /// would grow past [`WRITE_CHUNK`]); returns false if `data` is large
    /// and must be written as it is, after what was pending.
    async fn gather(&mut self, data: &[u8]) -> std::io::Result<bool> {
        let large = data.len() >= DIRECT_WRITE;
        if large || self.pending.len() + data.len() >= WRITE_CHUNK {
            self.flush_pending().await?;
        }
        if large {
            return Ok(false);
        }
        self.pending.extend_from_slice(data);
        Ok(true)
    }

    async fn flush_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let data = self.pending.split().freeze();
        self.write_now(data).await.map(drop)
    }

    async fn write_now<B>(&mut self, data: B) -> std::io::Result<B>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| std::io::Error::other("an earlier write did not finish"))?;
        let (writer, data, result) = tokio::task::spawn_blocking(move || {
            let result = writer
                .write_all(data.as_ref())
                .and_then(|()| writer.flush());
            (writer, data, result)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.writer = Some(writer);
        result.map(|()| data)
    }

    /// Writes what is pending and, for a file, syncs it and renames it into
    /// place.
    pub async fn commit(mut self) -> Result<()> {
        self.flush_pending().await?;
        if let Some((temp, dest)) = self.file.take() {
            let file = temp.as_file().try_clone()?;
            tokio::task::spawn_blocking(move || file.sync_all()).await??;
            temp.persist(&dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        Ok(())
    }
}
