use std::path::Path;

use anyhow::{Context, Result};
use atrest_crypto::v1;
use atrest_format::{parse_header, Header, Parsed};
use atrest_kms::Kms;
use atrest_s3::{Download, S3Uri};

use crate::failure::NotAtrest;
use crate::files::Output;

pub async fn run(kms: &Kms, s3: &aws_sdk_s3::Client, uri: &S3Uri, file: &Path) -> Result<()> {
    // Fail on an unwritable destination before any network traffic.
    let mut output = Output::create(file)?;
    let mut download = atrest_s3::get(s3, uri, None).await?;
    let (header, rest) = read_header(&mut download)
        .await
        .with_context(|| format!("cannot decrypt {uri}"))?;
    let key = kms
        .decrypt(header.wrapped_key(), &[])
        .await
        .with_context(|| format!("cannot decrypt {uri}"))?;

    let Header::V1(h) = header else {
        unreachable!("parse_header only yields known versions")
    };
    let mut decryptor = v1::Decryptor::new(&key, &h.stored_iv());
    let mut plain = Vec::new();
    decryptor.update(&rest, &mut plain);
    output.write(&plain).await?;
    while let Some(chunk) = download.next_chunk().await {
        plain.clear();
        decryptor.update(&chunk?, &mut plain);
        output.write(&plain).await?;
    }
    plain.clear();
    decryptor
        .finish(&mut plain)
        .with_context(|| format!("cannot decrypt {uri}"))?;
    output.write(&plain).await?;
    output.commit().await?;
    tracing::info!(%uri, "decrypted");
    Ok(())
}

/// Reads from the download until the header is complete; returns it and the
/// body bytes that came with it.
async fn read_header(download: &mut Download) -> Result<(Header, Vec<u8>)> {
    let mut buf = Vec::new();
    loop {
        match parse_header(&buf).map_err(NotAtrest::BadHeader)? {
            Parsed::Complete(header) => {
                let rest = buf.split_off(header.encoded_len());
                return Ok((header, rest));
            }
            Parsed::Incomplete { .. } => match download.next_chunk().await {
                Some(chunk) => buf.extend_from_slice(&chunk?),
                None => return Err(NotAtrest::TooShort(buf.len() as u64).into()),
            },
        }
    }
}
