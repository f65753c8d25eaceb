//! The source of a move (`atrest mv`, as `aws s3 mv`), removed once its
//! copy is whole, and only as it was read: a file or an object written
//! meanwhile is someone's newer data, and stays.

use atrest_s3::{S3Error, S3Uri};

/// Deletes the object `uri` while it is still the version read (`etag`),
/// then the S3 Encryption Client instruction file read with it (at
/// `instruction_file`, its ETag then), in that order: a failure never
/// leaves an object without the instruction file it needs to decrypt.
///
/// An object deleted meanwhile is no error (it is gone, as a move leaves
/// it); one replaced meanwhile is [`S3Error::Changed`] and stays (and so
/// does its instruction file); so does one read without an ETag (a server
/// that sends none), as nothing could tell it unchanged.
pub async fn delete_read(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    etag: Option<&str>,
    instruction_file: Option<&str>,
) -> Result<(), S3Error> {
    let Some(etag) = etag else {
        return Err(S3Error::Request {
            op: "DeleteObject",
            uri: uri.to_string(),
            source: "S3 sent no ETag when it was read, so it is kept".into(),
        });
    };
    match atrest_s3::delete_if_match(s3, uri, etag).await {
        // Deleted meanwhile: gone, as a move leaves it.
        Ok(()) | Err(S3Error::NoSuchKey { .. }) => {}
        Err(e) => return Err(e),
    }
    if let Some(etag) = instruction_file {
        let suffix = atrest_format::s3ec::INSTRUCTION_SUFFIX;
        let instruction = uri.with_key(format!("{}{suffix}", uri.key()));
        match atrest_s3::delete_if_match(s3, &instruction, etag).await {
            // Gone already, or another's now (its object was rewritten
            // with it): not ours to delete either way.
            Ok(()) | Err(S3Error::NoSuchKey { .. } | S3Error::Changed { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
