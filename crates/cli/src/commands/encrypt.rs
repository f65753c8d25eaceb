use std::path::Path;

use anyhow::{Context, Result};
use atrest_crypto::v1;
use atrest_kms::Kms;
use atrest_s3::{S3Uri, UploadOptions, Uploader};
use tokio::io::AsyncReadExt;

use crate::cli::{Format, TransferArgs};
use crate::failure::{Exit, Failure};

/// Plaintext read per step: large enough to amortise syscalls, small enough
/// to keep memory flat.
const READ_CHUNK: usize = 1 << 20;

pub struct Encrypt<'a> {
    pub file: &'a Path,
    pub uri: &'a S3Uri,
    pub data_key: &'a Path,
    pub format: Format,
    pub transfer: &'a TransferArgs,
}

pub async fn run(kms: &Kms, s3: &aws_sdk_s3::Client, args: Encrypt<'_>) -> Result<()> {
    let mut input = crate::files::open_input(args.file).await?;
    let wrapped = read_data_key(args.data_key)?;
    let key = kms
        .decrypt(&wrapped, &[])
        .await
        .with_context(|| format!("cannot unwrap {}", args.data_key.display()))?;

    let Format::V1 = args.format;
    let stored_iv = v1::random_stored_iv(&mut rand_core::OsRng);
    let header = atrest_format::v1::Header::new(wrapped, stored_iv).map_err(|e| {
        Failure::new(
            Exit::Usage,
            format!("{} is not a data key: {e}", args.data_key.display()),
        )
    })?;
    let mut encryptor = v1::Encryptor::new(&key, &stored_iv);

    let options = UploadOptions {
        part_size: args.transfer.part_size as usize * 1024 * 1024,
        concurrency: args.transfer.concurrency as usize,
    };
    let mut upload = Uploader::new(s3.clone(), args.uri.clone(), options);
    let mut out = Vec::with_capacity(READ_CHUNK + 64);
    header.encode(&mut out);
    let mut chunk = vec![0u8; READ_CHUNK];
    let result: Result<()> = async {
        loop {
            let n = input
                .read(&mut chunk)
                .await
                .with_context(|| format!("cannot read {}", args.file.display()))?;
            if n == 0 {
                break;
            }
            encryptor.update(&chunk[..n], &mut out);
            upload.write(&out).await?;
            out.clear();
        }
        encryptor.finish(&mut out);
        upload.write(&out).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => upload.finish().await?,
        Err(e) => {
            upload.abort().await;
            return Err(e);
        }
    }
    tracing::info!(uri = %args.uri, "uploaded");
    Ok(())
}

fn read_data_key(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::new(
                Exit::NotFoundOrDenied,
                format!(
                    "no {}: run `atrest create-data-key KEY_ID` first, or pass --data-key PATH",
                    path.display()
                ),
            )
            .into()
        } else {
            anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
        }
    })
}
