use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use tokio::task::JoinSet;

use crate::{S3Error, S3Uri};

/// S3's smallest part size for every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part number.
const MAX_PARTS: i32 = 10_000;

/// How an [`Uploader`] splits and parallelises an upload.
#[derive(Clone, Copy, Debug)]
pub struct UploadOptions {
    /// Bytes per part; objects smaller than one part go up in a single PUT.
    pub part_size: usize,
    /// Parts in flight at once.
    pub concurrency: usize,
}

impl UploadOptions {
    /// These options with the part size raised, if needed, so that an object
    /// of `expected_len` bytes fits in S3's 10,000 parts (rounded up to whole
    /// MiB). Memory then grows with the part size: only objects over ~78 GiB
    /// at the default 8 MiB parts need it.
    pub fn fitting(self, expected_len: u64) -> Self {
        const MIB: u64 = 1024 * 1024;
        let needed = expected_len.div_ceil(MAX_PARTS as u64).div_ceil(MIB) * MIB;
        UploadOptions {
            part_size: self
                .part_size
                .max(usize::try_from(needed).unwrap_or(usize::MAX)),
            ..self
        }
    }
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: 8 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

/// A streaming upload of one object.
///
/// Bodies are sent with `UNSIGNED-PAYLOAD`: SigV4 would hash every byte with
/// SHA-256 just to sign it (measured: two thirds of an upload's CPU time on
/// machines without SHA instructions), while the SDK's CRC32 checksum still
/// covers the body, TLS protects it on the wire, and atrest's own frames
/// authenticate the content end to end.
///
/// Bytes written are buffered into parts; the first full part starts a
/// multipart upload and parts go up concurrently while more are written.
/// Memory is bounded by `part_size × (concurrency + 1)` whatever the object
/// size. An object smaller than one part is sent with a single `PutObject`.
///
/// Call [`Uploader::finish`] to complete, or [`Uploader::abort`] on failure:
/// a started multipart upload is aborted on every error path, so no orphaned
/// parts remain.
#[derive(Debug)]
pub struct Uploader {
    client: Client,
    uri: S3Uri,
    options: UploadOptions,
    buffer: BytesMut,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart, S3Error>>,
    done: Vec<CompletedPart>,
}

impl Uploader {
    /// Prepares an upload to `uri`; nothing is sent until data is written.
    pub fn new(client: Client, uri: S3Uri, options: UploadOptions) -> Self {
        let options = UploadOptions {
            part_size: options.part_size.max(MIN_PART_SIZE),
            concurrency: options.concurrency.max(1),
        };
        Uploader {
            client,
            uri,
            buffer: BytesMut::with_capacity(options.part_size),
            options,
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
        }
    }

    /// Appends `data` to the object, sending parts as they fill.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), S3Error> {
        while !data.is_empty() {
            let room = self.options.part_size - self.buffer.len();
            let take = room.min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == self.options.part_size {
                let part = self.take_buffer();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Appends owned bytes. A chunk of at least one part that arrives on a
    /// part boundary is sent as a part as it is, without copying.
    pub async fn write_bytes(&mut self, data: Bytes) -> Result<(), S3Error> {
        if self.buffer.is_empty() && data.len() >= self.options.part_size {
            self.send_part(data).await
        } else {
            self.write(&data).await
        }
    }

    /// The part size in use (at least [`MIN_PART_SIZE`]).
    pub fn part_size(&self) -> usize {
        self.options.part_size
    }

    /// Sends what remains and completes the object. On failure the multipart
    /// upload (if any) has been aborted.
    pub async fn finish(&mut self) -> Result<(), S3Error> {
        match self.complete().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.abort_started().await;
                Err(e)
            }
        }
    }

    /// Abandons the upload, aborting a started multipart upload. Safe to call
    /// after a `finish` that failed or was cancelled part-way.
    pub async fn abort(&mut self) {
        self.abort_started().await;
    }

    async fn complete(&mut self) -> Result<(), S3Error> {
        let Some(upload_id) = self.upload_id.clone() else {
            // Never filled a part: one PutObject of the whole (small) body.
            let body = self.take_buffer();
            return self
                .client
                .put_object()
                .bucket(self.uri.bucket())
                .key(self.uri.key())
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map(drop)
                .map_err(|e| S3Error::from_sdk("PutObject", &self.uri, e));
        };
        if !self.buffer.is_empty() {
            let part = self.take_buffer();
            self.send_part(part).await?;
        }
        while let Some(joined) = self.in_flight.join_next().await {
            self.done.push(flatten(joined, &self.uri)?);
        }
        self.done.sort_by_key(|p| p.part_number());
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut self.done)))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(self.uri.bucket())
            .key(self.uri.key())
            .upload_id(upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("CompleteMultipartUpload", &self.uri, e))?;
        self.upload_id = None;
        Ok(())
    }

    fn take_buffer(&mut self) -> Bytes {
        std::mem::replace(
            &mut self.buffer,
            BytesMut::with_capacity(self.options.part_size),
        )
        .freeze()
    }

    /// Queues one part, first waiting for a slot when `concurrency` parts are
    /// already in flight.
    async fn send_part(&mut self, body: Bytes) -> Result<(), S3Error> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => self.start().await?,
        };
        while self.in_flight.len() >= self.options.concurrency {
            if let Some(joined) = self.in_flight.join_next().await {
                self.done.push(flatten(joined, &self.uri)?);
            }
        }
        if self.next_part > MAX_PARTS {
            return Err(S3Error::Request {
                op: "UploadPart",
                uri: self.uri.to_string(),
                source: format!(
                    "the object needs more than {MAX_PARTS} parts; use a larger --part-size"
                )
                .into(),
            });
        }
        let number = self.next_part;
        self.next_part += 1;
        let client = self.client.clone();
        let uri = self.uri.clone();
        self.in_flight.spawn(async move {
            tracing::debug!(part = number, bytes = body.len(), "uploading part");
            let out = client
                .upload_part()
                .bucket(uri.bucket())
                .key(uri.key())
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("UploadPart", &uri, e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
                .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
                .set_checksum_sha1(out.checksum_sha1().map(str::to_owned))
                .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
                .part_number(number)
                .build())
        });
        Ok(())
    }

    async fn start(&mut self) -> Result<String, S3Error> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(self.uri.bucket())
            .key(self.uri.key())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", &self.uri, e))?;
        let id = out.upload_id().ok_or_else(|| S3Error::Request {
            op: "CreateMultipartUpload",
            uri: self.uri.to_string(),
            source: "no upload id in the response".into(),
        })?;
        tracing::debug!(uri = %self.uri, "started multipart upload");
        self.upload_id = Some(id.to_owned());
        Ok(id.to_owned())
    }

    async fn abort_started(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(self.uri.bucket())
            .key(self.uri.key())
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => tracing::debug!(uri = %self.uri, "aborted multipart upload"),
            Err(e) => tracing::warn!(
                uri = %self.uri,
                error = %aws_sdk_s3::error::DisplayErrorContext(e),
                "could not abort the multipart upload; its parts may remain"
            ),
        }
    }
}

fn flatten(
    joined: Result<Result<CompletedPart, S3Error>, tokio::task::JoinError>,
    uri: &S3Uri,
) -> Result<CompletedPart, S3Error> {
    joined.unwrap_or_else(|e| {
        Err(S3Error::Request {
            op: "UploadPart",
            uri: uri.to_string(),
            source: Box::new(e),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_only_when_10000_would_not_hold_the_object() {
        let default = UploadOptions::default();
        const MIB: u64 = 1024 * 1024;
        assert_eq!(default.fitting(0).part_size, default.part_size);
        assert_eq!(
            default.fitting(10_000 * 8 * MIB).part_size,
            default.part_size
        );
        // One byte more needs 9 MiB parts.
        let fitted = default.fitting(10_000 * 8 * MIB + 1);
        assert_eq!(fitted.part_size as u64, 9 * MIB);
        assert_eq!(fitted.concurrency, default.concurrency);
        // 5 TiB, S3's largest object.
        let huge = 5 * 1024 * 1024 * MIB;
        let fitted = default.fitting(huge).part_size as u64;
        assert!(fitted * MAX_PARTS as u64 >= huge && fitted % MIB == 0);
    }
}
