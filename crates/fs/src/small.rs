//! Reading a small file whole (a wrapped data key, a CA bundle): at most a
//! bound, so that a device or an endless FIFO given by mistake
//! (`--data-key /dev/zero`) fails at once instead of filling memory.

use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The bytes of `path`, a regular file or a FIFO (`<(cmd)`) of at most
/// `limit` bytes. A directory, a device or a socket fails with
/// [`ErrorKind::InvalidInput`] before anything is read; more than `limit`
/// bytes with [`ErrorKind::InvalidData`]. Blocking (a FIFO waits for its
/// writer): from async code, call it on the blocking pool.
pub fn read_small(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let kind = std::fs::metadata(path)?.file_type();
    let what = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(what) = what {
        let why = format!("{what}, not a file");
        return Err(Error::new(ErrorKind::InvalidInput, why));
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path)?;
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        let why = format!("larger than {limit} bytes");
        return Err(Error::new(ErrorKind::InvalidData, why));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kind = |path: &Path, limit| read_small(path, limit).map_err(|e| e.kind());
        assert_eq!(
            kind(Path::new("/dev/zero"), 10),
            Err(ErrorKind::InvalidInput)
        );
        assert_eq!(kind(dir.path(), 10), Err(ErrorKind::InvalidInput));
        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(kind(&file, 10), Ok(b"0123456789".to_vec()));
        assert_eq!(kind(&file, 9), Err(ErrorKind::InvalidData));
        assert_eq!(kind(&dir.path().join("none"), 9), Err(ErrorKind::NotFound));
    }
}
