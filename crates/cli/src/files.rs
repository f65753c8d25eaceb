//! Local input and output: `-` for stdin/stdout, atomic file replacement.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

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

/// Where decrypted output goes.
pub enum Output {
    Stdout(tokio::io::Stdout),
    File {
        temp: NamedTempFile,
        file: tokio::io::BufWriter<tokio::fs::File>,
        dest: PathBuf,
    },
}

impl Output {
    /// Prepares output to `dest` (`-` for stdout). Fails before anything is
    /// downloaded if the destination cannot be written.
    pub fn create(dest: &Path) -> Result<Self> {
        if is_std_stream(dest) {
            return Ok(Output::Stdout(tokio::io::stdout()));
        }
        let temp = temp_beside(dest)?;
        let file = tokio::fs::File::from_std(temp.as_file().try_clone()?);
        Ok(Output::File {
            temp,
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            dest: dest.to_owned(),
        })
    }

    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Output::Stdout(s) => s,
            Output::File { file, .. } => file,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(bytes).await
    }

    /// Flushes and, for a file, renames it into place.
    pub async fn commit(mut self) -> Result<()> {
        self.writer().flush().await?;
        if let Output::File { temp, file, dest } = self {
            file.into_inner().sync_all().await?;
            temp.persist(&dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        Ok(())
    }
}
