//! The local side of a move (`atrest mv`): a file is removed once its
//! upload is whole, and only if it is still the file that was read.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::Error;

/// What a file was before it was read: its identity, length and
/// modification time. A file written, truncated or replaced since differs
/// in one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    path: PathBuf,
    identity: (u64, u64),
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    /// The file at `path` as it is now.
    pub fn of(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        Ok(Self::from_metadata(path, &meta))
    }

    fn from_metadata(path: &Path, meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }

    /// Whether the file is as it was when the stamp was taken (a file gone
    /// is not).
    pub fn is_unchanged(&self) -> bool {
        std::fs::metadata(&self.path)
            .is_ok_and(|meta| Self::from_metadata(&self.path, &meta) == *self)
    }

    /// Removes the file if it is unchanged since the stamp was taken;
    /// [`Error::ChangedWhileRead`] (and the file kept) if not. A file
    /// already gone is no error: nothing is left to move.
    pub fn remove_if_unchanged(&self) -> Result<(), Error> {
        let now = match std::fs::metadata(&self.path) {
            Ok(meta) => Self::from_metadata(&self.path, &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("cannot open {}", self.path.display()), e)),
        };
        if now != *self {
            return Err(Error::ChangedWhileRead(self.path.clone()));
        }
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                format!("cannot remove {}", self.path.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unchanged_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let stamp = Stamp::of(&path).unwrap();
        stamp.remove_if_unchanged().unwrap();
        assert!(!path.exists());
        // Gone already: nothing to do.
        stamp.remove_if_unchanged().unwrap();

        // Grown, or replaced by another file of the same length.
        std::fs::write(&path, b"abc").unwrap();
        let stamp = Stamp::of(&path).unwrap();
        std::fs::write(&path, b"abcd").unwrap();
        let e = stamp.remove_if_unchanged().unwrap_err();
        assert!(matches!(e, Error::ChangedWhileRead(_)), "{e}");
        let stamp = Stamp::of(&path).unwrap();
        let other = dir.path().join("g");
        std::fs::write(&other, b"wxyz").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(stamp.remove_if_unchanged().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"wxyz");
    }
}
