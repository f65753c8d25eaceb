//! Where a transfer of one file or object puts its result, as `aws s3 cp`
//! does: an S3 destination ending in `/` is a prefix that receives the
//! file's name, and a local destination that is a directory (or ends in
//! `/`) receives the object's base name. (A tree maps names with
//! [`crate::tree`].)

use std::path::{Component, Path, PathBuf};

use atrest_transfer::S3Uri;

use crate::output::{display_os, is_std_stream};
use crate::Error;

/// The object a file uploaded to `uri` becomes: `URI`'s key, or, when it ends
/// in `/`, that prefix followed by FILE's name.
pub fn object_for(file: &Path, uri: &S3Uri) -> Result<S3Uri, Error> {
    // `s3://bucket` is the bucket's top: the file keeps its name there.
    if !uri.key().ends_with('/') && !uri.key().is_empty() {
        return Ok(uri.clone());
    }
    if is_std_stream(file) {
        return Err(Error::NoName(format!(
            "{uri} ends with `/` and stdin has no name"
        )));
    }
    // `.` and `..` have no name, but are what the user meant to copy.
    if file.is_dir() {
        return Err(Error::InputIsDirectory(file.to_owned()));
    }
    let name = file
        .file_name()
        .ok_or_else(|| Error::NoName(format!("{} names no file", file.display())))?;
    let name = name.to_str().ok_or_else(|| {
        Error::NoName(format!(
            "the file name {} is not valid UTF-8, so it cannot become an S3 key without loss",
            display_os(name)
        ))
    })?;
    Ok(uri.with_key(format!("{}{name}", uri.key())))
}

/// The file the object `uri` downloaded to `file` becomes: FILE, or, when FILE is an existing
/// directory or ends in `/`, the key's base name inside it.
pub fn file_for(uri: &S3Uri, file: &Path) -> Result<PathBuf, Error> {
    if uri.key().is_empty() {
        return Err(Error::NoObjectKey(uri.to_string()));
    }
    let ends_in_slash = file.as_os_str().as_encoded_bytes().last() == Some(&b'/');
    if is_std_stream(file) || !(ends_in_slash || file.is_dir()) {
        return Ok(file.to_owned());
    }
    // The key is untrusted: its base name must be one plain name.
    let base = uri.key().rsplit('/').next().unwrap_or_default();
    let mut parts = Path::new(base).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) if name == base => Ok(file.join(name)),
        _ => Err(Error::NoBaseName {
            dir: file.to_owned(),
            key: uri.key().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> S3Uri {
        S3Uri::parse(s).unwrap()
    }

    #[test]
    fn a_trailing_slash_on_s3_is_a_prefix() {
        let p = Path::new("some/dir/a.txt");
        assert_eq!(
            object_for(p, &uri("s3://b/dir/")).unwrap(),
            uri("s3://b/dir/a.txt")
        );
        assert_eq!(object_for(p, &uri("s3://b/k")).unwrap(), uri("s3://b/k"));
        assert!(object_for(Path::new("-"), &uri("s3://b/dir/")).is_err());
        assert_eq!(
            object_for(Path::new("-"), &uri("s3://b/k")).unwrap(),
            uri("s3://b/k")
        );
    }

    #[test]
    fn a_directory_is_no_file_to_upload() {
        for dir in [".", "..", "/"] {
            let err = object_for(Path::new(dir), &uri("s3://b/dir/")).unwrap_err();
            assert!(matches!(err, Error::InputIsDirectory(_)), "{dir}: {err}");
        }
    }

    #[test]
    fn a_directory_receives_the_base_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let got = |key: &str, file: &Path| file_for(&uri(key), file);
        assert_eq!(got("s3://b/x/a.txt", d).unwrap(), d.join("a.txt"));
        let slash = PathBuf::from(format!("{}/", d.display()));
        assert_eq!(got("s3://b/a.txt", &slash).unwrap(), d.join("a.txt"));
        // Not a directory and no slash: the name itself.
        assert_eq!(got("s3://b/a.txt", &d.join("new")).unwrap(), d.join("new"));
        // A missing directory with a slash: the name goes inside it (and
        // writing then fails on the missing directory).
        assert_eq!(
            got("s3://b/a.txt", Path::new("nodir/")).unwrap(),
            Path::new("nodir/a.txt")
        );
        for bad in ["s3://b/dir/", "s3://b/x/..", "s3://b/."] {
            assert!(got(bad, d).is_err(), "{bad}");
        }
        assert_eq!(got("s3://b/k", Path::new("-")).unwrap(), Path::new("-"));
    }
}
