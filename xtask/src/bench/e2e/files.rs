//! The bench's files: pseudo-random test files made once, round-trip
//! checks, and emptying the bucket between sizes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::size_label;

/// `/dev/shm` when there is one: files there skip the disk.
pub fn tmpfs() -> Option<&'static Path> {
    let shm = Path::new("/dev/shm");
    shm.is_dir().then_some(shm)
}

/// Removes everything inside `dir`, keeping it.
pub fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let removed = match path.is_dir() {
            true => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Fails unless the two files hold the same bytes.
pub fn same_contents(a: &Path, b: &Path) -> Result<()> {
    let mut fa = File::open(a).with_context(|| format!("opening {}", a.display()))?;
    let mut fb = File::open(b).with_context(|| format!("opening {}", b.display()))?;
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            bail!(
                "round trip mismatch: {} and {} differ within bytes {offset}..{}",
                a.display(),
                b.display(),
                offset + n.max(m) as u64
            );
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// `files/plain-SIZE`: pseudo-random bytes (xorshift), made once and reused.
pub fn ensure_file(dir: &Path, size: u64) -> Result<PathBuf> {
    let path = dir.join(format!("plain-{}", size_label(size)));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
        return Ok(path);
    }
    eprintln!("writing {} ({size} bytes)", path.display());
    let mut f = std::io::BufWriter::new(File::create(&path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ size;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(path)
}
