//! `atrest mv`: what a move adds to `cp`. The source goes only once its
//! copy is whole, and only as it was read (the work is
//! `atrest_transfer::moves` and `atrest_fs::moved`).

use std::path::Path;

use anyhow::{Context, Result};
use atrest_fs::moved::Stamp;
use atrest_s3::S3Uri;

use crate::failure::{Exit, Failure};

/// The stamp of a file `mv` uploads, to remove it by: a regular file
/// only, as a FIFO or a device is no file to remove.
pub fn moved_file(file: &Path) -> Result<Stamp> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot open {}", file.display()))?;
    if meta.is_dir() {
        let why = format!(
            "{} is a directory: mv of one file takes a file (mv -r moves a directory)",
            file.display()
        );
        return Err(Failure::new(Exit::Usage, why).into());
    }
    if !meta.is_file() {
        let why = format!(
            "mv moves regular files, and {} is not one: use cp",
            file.display()
        );
        return Err(Failure::new(Exit::Usage, why).into());
    }
    Ok(Stamp::of(file)?)
}

/// `mv` downloads into regular files only: a device, FIFO or socket would
/// take the plaintext and keep nothing of the object it deletes.
pub fn check_move_into(file: &Path) -> Result<()> {
    // `/dev/stdout` is a stream, whatever it is open on (a file of the
    // shell's), as `-` is: nothing kept to delete the object for.
    if atrest_fs::output::names_descriptor(file) {
        let why = format!(
            "mv writes regular files, and {} is a stream (a descriptor of this command): use cp",
            file.display()
        );
        return Err(Failure::new(Exit::Usage, why).into());
    }
    match std::fs::metadata(file) {
        // Neither mv nor cp writes over a directory.
        Ok(meta) if meta.is_dir() => {
            let why = format!("cannot write {}: it is a directory", file.display());
            Err(Failure::new(Exit::Usage, why).into())
        }
        Ok(meta) if !meta.is_file() => {
            let why = format!(
                "mv writes regular files, and {} is not one: use cp",
                file.display()
            );
            Err(Failure::new(Exit::Usage, why).into())
        }
        _ => Ok(()),
    }
}

/// Deletes an object `mv` downloaded, as it was read (with its S3
/// Encryption Client instruction file).
pub async fn delete_downloaded(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    done: &atrest_transfer::Downloaded,
) -> Result<()> {
    let instruction_file = done.instruction_file.as_ref();
    atrest_transfer::moves::delete_read(
        s3,
        uri,
        done.version.etag.as_deref(),
        instruction_file.and_then(|v| v.etag.as_deref()),
    )
    .await
    .with_context(|| format!("downloaded {uri}, but did not delete it"))
}
