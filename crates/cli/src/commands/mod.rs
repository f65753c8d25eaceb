pub mod bulk;
pub mod cp;
pub mod create_data_key;
pub mod decrypt;
pub mod encrypt;
pub mod inspect;
pub mod keygen;
pub mod local;
pub mod ls;
pub mod rewrap;
pub mod s3ec;
pub mod sync;
pub mod upgrade;
pub mod verify;

/// Every object under `uri` taken as a directory (`dir` is `dir/`, as
/// `aws s3 cp --recursive` takes it), listed or from `--manifest`, only
/// `--shard`'s, folder markers left out: what the whole-object commands
/// (`rewrap`, `verify`, `upgrade`) walk with `--recursive`.
pub async fn objects_under(
    s3: &aws_sdk_s3::Client,
    uri: &atrest_s3::S3Uri,
    select: &crate::cli::SelectArgs,
    quiet: bool,
) -> anyhow::Result<Vec<atrest_s3::S3Uri>> {
    let prefix = uri.with_key(bulk::as_prefix(uri.key()));
    let listing = bulk::select(s3, &prefix, select, quiet).await?;
    Ok(listing.into_iter().map(|o| uri.with_key(o.key)).collect())
}

/// A failed object in a command's `--json` report: its error on one line,
/// and whether trying again may help.
pub fn failed_json(
    uri: &atrest_s3::S3Uri,
    error: &(dyn std::error::Error + 'static),
    retry: atrest_transfer::Retry,
) -> serde_json::Value {
    serde_json::json!({
        "object": uri.to_string(),
        "status": "failed",
        "error": crate::failure::one_line(error),
        "retry": match retry {
            atrest_transfer::Retry::Temporary => "temporary",
            atrest_transfer::Retry::Permanent => "permanent",
        },
    })
}
