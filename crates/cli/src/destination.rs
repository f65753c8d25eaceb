//! Where a single-object command puts its result, as `aws s3 cp` does: an
//! S3 destination ending in `/` is a prefix that receives the file's name,
//! and a local destination that is a directory (or ends in `/`) receives
//! the object's base name. `--recursive` maps names itself (see bulk).

use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use atrest_s3::S3Uri;

use crate::failure::{Exit, Failure};

/// The object key `encrypt FILE URI` writes: `URI`'s key, or, when it ends
/// in `/`, that prefix followed by FILE's name.
pub fn encrypt_target(file: &Path, uri: &S3Uri) -> Result<S3Uri> {
    // `s3://bucket` is the bucket's top: the file keeps its name there.
    if !uri.key().ends_with('/') && !uri.key().is_empty() {
        return Ok(uri.clone());
    }
    if atrest_fs::output::is_std_stream(file) {
        return Err(Failure::new(
            Exit::Usage,
            format!("{uri} ends with `/` and stdin has no name: give the object's full key"),
        )
        .into());
    }
    let name = file
        .file_name()
        .ok_or_else(|| Failure::new(Exit::Usage, format!("{} names no file", file.display())))?;
    let name = name.to_str().ok_or_else(|| {
        Failure::new(
            Exit::Usage,
            format!(
                "the file name {} is not valid UTF-8, so it cannot become an S3 key without loss: give the object's full key",
                atrest_fs::output::display_os(name)
            ),
        )
    })?;
    Ok(uri.with_key(format!("{}{name}", uri.key())))
}

/// The file `decrypt URI FILE` writes: FILE, or, when FILE is an existing
/// directory or ends in `/`, the key's base name inside it.
pub fn decrypt_target(uri: &S3Uri, file: &Path) -> Result<PathBuf> {
    if uri.key().is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            format!("{uri} names no object key: give s3://BUCKET/KEY (or --recursive for the whole bucket)"),
        )
        .into());
    }
    let ends_in_slash = file.as_os_str().as_encoded_bytes().last() == Some(&b'/');
    if atrest_fs::output::is_std_stream(file) || !(ends_in_slash || file.is_dir()) {
        return Ok(file.to_owned());
    }
    // The key is untrusted: its base name must be one plain name.
    let base = uri.key().rsplit('/').next().unwrap_or_default();
    let mut parts = Path::new(base).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) if name == base => Ok(file.join(name)),
        _ => Err(Failure::new(
            Exit::Usage,
            format!(
                "{} is a directory and the key `{}` has no usable base name: give a file name",
                file.display(),
                crate::escape(uri.key())
            ),
        )
        .into()),
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
            encrypt_target(p, &uri("s3://b/dir/")).unwrap(),
            uri("s3://b/dir/a.txt")
        );
        assert_eq!(
            encrypt_target(p, &uri("s3://b/k")).unwrap(),
            uri("s3://b/k")
        );
        assert!(encrypt_target(Path::new("-"), &uri("s3://b/dir/")).is_err());
        assert_eq!(
            encrypt_target(Path::new("-"), &uri("s3://b/k")).unwrap(),
            uri("s3://b/k")
        );
    }

    #[test]
    fn a_directory_receives_the_base_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let got = |key: &str, file: &Path| decrypt_target(&uri(key), file);
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
