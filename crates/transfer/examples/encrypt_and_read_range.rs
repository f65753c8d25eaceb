//! Encrypts a local file to S3 under a KMS key (a fresh data key, bound to
//! an encryption context), then reads back its first 100 plaintext bytes,
//! fetching only the frames that hold them.
//!
//! ```text
//! cargo run -p atrest-transfer --example encrypt_and_read_range -- FILE s3://BUCKET/KEY KMS_KEY_ID
//! ```
//!
//! AWS settings come from the environment (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, ...).

use std::path::Path;
use std::sync::Arc;

use atrest_transfer::{ByteRange, DataKeyFrom, Error, S3Uri, Transfer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, uri, key_id] = &args[..] else {
        return Err("usage: encrypt_and_read_range FILE s3://BUCKET/KEY KMS_KEY_ID".into());
    };
    let config = aws_config::load_from_env().await;
    // A local endpoint (an emulator) needs path-style bucket addressing.
    let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style);
    let s3 = aws_sdk_s3::Client::from_conf(s3.build());
    let kms = aws_sdk_kms::Client::new(&config);
    let head =
        encrypt_and_read_range(s3, kms, Path::new(file), &S3Uri::parse(uri)?, key_id).await?;
    println!("{}", String::from_utf8_lossy(&head));
    Ok(())
}

/// Uploads `file` to `uri`, then returns its first 100 plaintext bytes.
pub async fn encrypt_and_read_range(
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    file: &Path,
    uri: &S3Uri,
    key_id: &str,
) -> Result<Vec<u8>, Error> {
    // One KMS call per object; CachedKeys::cached would reuse data keys.
    let keys = Arc::new(atrest_kms::CachedKeys::uncached(atrest_kms::Kms::new(kms)));
    let transfer = Transfer::new(s3, keys);
    let context = [("purpose".to_owned(), "example".to_owned())];

    let input = tokio::fs::File::open(file).await?;
    let len = input.metadata().await?.len();
    let key = DataKeyFrom::Generate(key_id.to_owned());
    let mut upload = transfer
        .upload(uri, key)
        .context(&context)
        .input_len(len)
        .start(input);
    upload.join().await?;

    let mut head = Vec::new();
    let range = ByteRange::new(0, 99);
    let download = transfer.download(uri).range(range).expect_context(&context);
    download.into_writer(&mut head).await?;
    Ok(head)
}
