//! What can go wrong with local files.

use std::path::PathBuf;

use atrest_transfer::escape;

/// A local file could not be read or written, or a file or key cannot be
/// transferred as it is.
///
/// Each message is one line that names the file; the I/O error beneath,
/// if any, is the [`source`](std::error::Error::source) (its kind tells
/// not-found and permission apart).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O step failed; `doing` says which, on which file
    /// (`cannot open data.csv`).
    #[error("{doing}")]
    Io {
        /// What was being done, to which file.
        doing: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Writing the data failed; the error names the destination.
    #[error("{0}")]
    Write(#[source] std::io::Error),
    /// An input that is a directory.
    #[error("{} is a directory, not a file: --recursive (or sync) takes a tree", .0.display())]
    InputIsDirectory(PathBuf),
    /// A destination that is a directory.
    #[error("{} is a directory; give a file name", .0.display())]
    OutputIsDirectory(PathBuf),
    /// A destination that names one of this process's descriptors above 2
    /// (`/dev/fd/3`) open on a regular file: opening the path would start
    /// at its beginning, not where the descriptor is.
    #[error("{} is descriptor {fd}, open on a regular file: atrest cannot write it in place; write to - (stdout) and redirect that", .dest.display())]
    DescriptorFile {
        /// The path given.
        dest: PathBuf,
        /// The descriptor it names.
        fd: u32,
    },
    /// A destination that is a symbolic link to nothing: writing through it
    /// would create a file wherever it points.
    #[error("{} is a symbolic link to a missing file: not writing through it", .0.display())]
    DanglingLink(PathBuf),
    /// A destination whose path runs through something that is not a
    /// directory.
    #[error("cannot write {}: {} is not a directory", .dest.display(), .dir.display())]
    NoDirectory {
        /// The destination.
        dest: PathBuf,
        /// What is in the way.
        dir: PathBuf,
    },
    /// A symbolic link in a tree to a directory that holds it: following
    /// it would never end.
    #[error("a symbolic link to a directory that holds it (a loop): not followed")]
    LinkLoop,
    /// A file moved (`atrest mv`) that changed after it was read: it is
    /// newer than its copy, so it stays. (A change while it was read fails
    /// the upload itself, `atrest_transfer::Error::InputChanged`, but for a
    /// streaming PutObject, which may be complete before it is seen: then
    /// it is this error, and the object holds what was read.)
    #[error("{} changed after it was read: kept (the object holds it as it was read)", .0.display())]
    ChangedWhileRead(PathBuf),
    /// A name that is not UTF-8 cannot become an S3 key without loss.
    #[error("the name is not valid UTF-8, so it cannot become an S3 key without loss: rename it")]
    NotUtf8,
    /// A FIFO, socket or device in a tree: not opened (a FIFO would block).
    #[error("not a regular file ({0}): skipped without opening it")]
    NotRegular(&'static str),
    /// Files that would write one key: none of them is transferred.
    #[error("{name} and {} other file(s) map to the same key `{}` ({}): none of them is uploaded", .all.len() - 1, escape(.key), .all.join(", "))]
    SameKey {
        /// This file.
        name: String,
        /// The key.
        key: String,
        /// Every file that maps to it, this one included.
        all: Vec<String>,
    },
    /// A key whose part below the prefix is not a clean relative path
    /// (`..`, `.`, empty parts, absolute): it would leave the directory.
    #[error("the key part `{}` is not a safe relative path", escape(.0))]
    UnsafeKey(String),
    /// A file uploaded to a prefix (an S3 destination ending in `/`) that
    /// has no name to give its key: stdin, `..`, or a name not UTF-8.
    #[error("{0}: give the object's full key")]
    NoName(String),
    /// A download from `s3://BUCKET` alone.
    #[error("{0} names no object key: give s3://BUCKET/KEY (or --recursive for the whole bucket)")]
    NoObjectKey(String),
    /// A download into a directory of an object whose key ends in no plain
    /// name (`dir/`, `x/..`).
    #[error("{} is a directory and the key `{}` has no usable base name: give a file name", .dir.display(), escape(.key))]
    NoBaseName {
        /// The directory.
        dir: PathBuf,
        /// The object's key.
        key: String,
    },
    /// A filter pattern that is not a glob.
    #[error("invalid pattern `{pattern}`: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(doing: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            doing: doing.into(),
            source,
        }
    }

    /// Why a file that is not a regular one is not transferred.
    pub fn not_regular(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        Error::NotRegular(if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else {
            "a special file"
        })
    }

    /// Whether the error is the caller's to fix (a path or pattern that
    /// cannot be used as given), not the system's.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InputIsDirectory(_)
                | Error::OutputIsDirectory(_)
                | Error::DescriptorFile { .. }
                | Error::LinkLoop
                | Error::NotUtf8
                | Error::NotRegular(_)
                | Error::SameKey { .. }
                | Error::BadPattern { .. }
                | Error::NoName(_)
                | Error::NoObjectKey(_)
                | Error::NoBaseName { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_regular_file_is_named() {
        let named = |path: &str| Error::not_regular(&std::fs::metadata(path).unwrap()).to_string();
        let dir = tempfile::tempdir().unwrap();
        assert!(named(dir.path().to_str().unwrap()).contains("(a directory)"));
        assert!(named("/dev/null").contains("(a character device)"));
    }
}
