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
/// S3's largest part.
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// Parts of one size, for an input of unknown length ([`Uploader::grow_parts`]).
const PARTS_PER_SIZE: i32 = 1000;

/// Chunks queued for a streaming PutObject while the writer prepares more.
const STREAM_QUEUE: usize = 2;

/// S3's largest single PutObject.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The slowest upload the read timeout allows for. The SDK's read timeout
/// runs from the start of a request until its answer begins, body included,
/// so a request with a body gets the client's read timeout plus the time to
/// send the body at this rate: a silent server still fails in bounded time,
/// and a large part on a slow link is not cut off.
const SLOWEST_UPLOAD: u64 = 64 * 1024;

/// A per-request config override giving a request with a `body_len`-byte
/// body its time to send (see [`SLOWEST_UPLOAD`]).
fn body_timeout(client: &Client, body_len: u64) -> aws_sdk_s3::config::Builder {
    let config = aws_sdk_s3::config::Builder::default();
    let Some(timeouts) = client.config().timeout_config() else {
        return config;
    };
    match timeouts.read_timeout() {
        Some(read) => {
            let sending = std::time::Duration::from_secs(body_len / SLOWEST_UPLOAD);
            config.timeout_config(timeouts.to_builder().read_timeout(read + sending).build())
        }
        None => config,
    }
}

/// How an [`Uploader`] splits and parallelises an upload.
#[derive(Clone, Copy, Debug)]
pub struct UploadOptions {
    /// Bytes per part; objects smaller than one part go up in a single PUT.
    /// Between S3's 5 MiB and 5 GiB (others are taken as the nearer).
    pub part_size: usize,
    /// Parts in flight at once (1 to 10,000).
    pub concurrency: usize,
    /// Objects of a length known in advance ([`Uploader::expect_len`]) and
    /// below this go up in one streaming PutObject instead of in parts:
    /// faster on servers whose multipart completion copies the parts, slower
    /// on S3 itself. At most 5 GiB + 1 takes effect.
    pub multipart_threshold: u64,
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
            // S3's largest part: beyond it no size fits anyway (S3 stores
            // 5 TiB at most), and a larger buffer could not be sent.
            part_size: self
                .part_size
                .max(usize::try_from(needed).unwrap_or(usize::MAX))
                .min(MAX_PART_SIZE.max(self.part_size)),
            ..self
        }
    }
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: 8 * 1024 * 1024,
            concurrency: 4,
            multipart_threshold: 0,
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
    /// A CreateMultipartUpload under way, kept here (a task, not a future
    /// of the caller's) so that an upload cancelled while it is in flight
    /// still learns the id, to abort it: else its parts would remain.
    starting: Option<tokio::task::JoinHandle<Result<String, S3Error>>>,
    /// The one PutObject of a small object, kept here for the same reason:
    /// sent whole, it may write the object even if its caller gives up, so
    /// an abort waits for its outcome.
    whole_put: Option<tokio::task::JoinHandle<Result<(), S3Error>>>,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart, S3Error>>,
    done: Vec<CompletedPart>,
    streaming: Option<StreamingPut>,
    /// What the object is created with: user metadata, headers, tags.
    properties: crate::Properties,
    acked: Acked,
    /// `If-None-Match: *` ([`Uploader::create_only`]).
    if_none_match: Option<String>,
    /// [`Uploader::grow_parts`].
    grows: bool,
}

/// Told of every byte S3 acknowledged.
#[derive(Clone, Default)]
struct Acked(Option<std::sync::Arc<dyn Fn(u64) + Send + Sync>>);

impl Acked {
    fn add(&self, bytes: u64) {
        if let Some(f) = &self.0 {
            f(bytes);
        }
    }
}

impl std::fmt::Debug for Acked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acked")
    }
}

/// A PutObject whose body is fed as it is written.
#[derive(Debug)]
struct StreamingPut {
    /// `None` once the body is complete (or abandoned).
    body: Option<tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>>,
    /// `None` once its outcome is known.
    request: Option<tokio::task::JoinHandle<Result<(), S3Error>>>,
    len: u64,
    written: u64,
}

/// The body of a streaming PutObject: chunks from a channel, of a length
/// declared up front (S3 needs `Content-Length` for a PutObject).
struct ChannelBody {
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    remaining: u64,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.chunks.poll_recv(cx).map(|chunk| {
            chunk.map(|chunk| {
                let chunk = chunk?;
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Ok(http_body::Frame::data(chunk))
            })
        })
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

impl Uploader {
    /// Prepares an upload to `uri`; nothing is sent until data is written.
    pub fn new(client: Client, uri: S3Uri, options: UploadOptions) -> Self {
        let options = UploadOptions {
            // S3's bounds: a larger part could not be sent, and no more
            // parts than an upload may have can be in flight.
            part_size: options.part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE),
            concurrency: options.concurrency.clamp(1, MAX_PARTS as usize),
            multipart_threshold: options.multipart_threshold.min(MAX_PUT_SIZE + 1),
        };
        Uploader {
            client,
            uri,
            // Reserved, not touched: memory is used as data comes, and
            // `part_size` (at most 5 GiB) bounds it exactly.
            buffer: BytesMut::with_capacity(options.part_size),
            options,
            upload_id: None,
            starting: None,
            whole_put: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            streaming: None,
            properties: crate::Properties::default(),
            acked: Acked::default(),
            if_none_match: None,
            grows: false,
        }
    }

    /// For an input whose length is not known (a stream): the part size
    /// doubles after every 1,000 parts, up to S3's 5 GiB, so that 10,000
    /// parts hold whatever S3 can store (5 TiB) at the cost of larger
    /// buffers only for streams that need them (beyond 1,000 parts: 8 GiB
    /// at 8 MiB parts). Without it the upload fails at the 10,001st part.
    pub fn grow_parts(&mut self) {
        self.grows = true;
    }

    /// Creates the object only if no object has its key: the PutObject or
    /// the CompleteMultipartUpload carries `If-None-Match: *`, so a writer
    /// that got there first, even after a check, is never overwritten;
    /// [`finish`](Self::finish) then fails with [`S3Error::Exists`]. Call it
    /// before anything is written.
    pub fn create_only(&mut self) {
        self.if_none_match = Some("*".to_owned());
    }

    /// User metadata (`x-amz-meta-*`, names without the prefix) to create
    /// the object with, such as the S3 Encryption Client's entries. Call it
    /// before anything is written.
    pub fn set_metadata(&mut self, metadata: std::collections::HashMap<String, String>) {
        self.properties.metadata = metadata;
    }

    /// Adds user metadata entries (such as the S3 Encryption Client's) to
    /// those the object is created with. Call it before anything is
    /// written.
    pub fn add_metadata(&mut self, entries: impl IntoIterator<Item = (String, String)>) {
        self.properties.metadata.extend(entries);
    }

    /// The properties (user metadata, standard headers, storage class,
    /// server-side encryption, tags, ACL) to create the object with. Call
    /// it before anything is written.
    pub fn set_properties(&mut self, properties: crate::Properties) {
        self.properties = properties;
    }

    /// The user metadata the object is to be created with.
    pub fn metadata(&self) -> &std::collections::HashMap<String, String> {
        &self.properties.metadata
    }

    /// Adds (or replaces) one user-metadata entry; before the first write,
    /// as [`Uploader::set_metadata`].
    pub fn insert_metadata(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.properties.metadata.insert(name.into(), value.into());
    }

    /// Calls `acked` with the length of every part when its UploadPart
    /// returned (of the object, when a single PutObject did): the bytes S3
    /// has acknowledged, for progress.
    pub fn on_acknowledged(&mut self, acked: std::sync::Arc<dyn Fn(u64) + Send + Sync>) {
        self.acked = Acked(Some(acked));
    }

    /// Declares the object's exact length before anything is written. If
    /// it is at least a part and below the multipart threshold, the object
    /// goes up in one streaming PutObject, which starts now; writing more
    /// or fewer bytes than declared then fails the upload. (That request is
    /// not retried: its body is not kept.) Call it within a Tokio runtime.
    pub fn expect_len(&mut self, len: u64) {
        let fits = len >= self.options.part_size as u64 && len < self.options.multipart_threshold;
        if !fits || self.streaming.is_some() || self.upload_id.is_some() || !self.buffer.is_empty()
        {
            return;
        }
        let (sender, chunks) = tokio::sync::mpsc::channel(STREAM_QUEUE);
        let body = ChannelBody {
            chunks,
            remaining: len,
        };
        let body = aws_smithy_types::body::SdkBody::from_body_1_x(body);
        let (client, uri) = (self.client.clone(), self.uri.clone());
        let properties = self.properties.clone();
        let if_none_match = self.if_none_match.clone();
        let request = tokio::spawn(async move {
            tracing::debug!(uri = %uri, bytes = len, "streaming PutObject");
            let request = client.put_object().bucket(uri.bucket()).key(uri.key());
            crate::object::with_properties!(request, &properties)
                .set_if_none_match(if_none_match)
                .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                .body(ByteStream::new(body))
                .customize()
                .disable_payload_signing()
                // With a checksum, the SDK sends a streamed body as aws-chunked
                // with every chunk signed: SHA-256 over the whole object (70%
                // of the CPU in a profile, half the speed). The content is
                // authenticated by atrest's own format (v2) and the transport.
                .config_override(body_timeout(&client, len).request_checksum_calculation(
                    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                ))
                .send()
                .await
                .map(drop)
                .map_err(|e| S3Error::from_sdk("PutObject", &uri, e))
        });
        self.streaming = Some(StreamingPut {
            body: Some(sender),
            request: Some(request),
            len,
            written: 0,
        });
    }

    /// Appends `data` to the object, sending parts as they fill.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), S3Error> {
        if self.streaming.is_some() {
            return self.stream(Bytes::copy_from_slice(data)).await;
        }
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
        if self.streaming.is_some() {
            self.stream(data).await
        } else if self.buffer.is_empty() && data.len() >= self.options.part_size {
            self.send_part(data).await
        } else {
            self.write(&data).await
        }
    }

    /// Sends `data` down the streaming PutObject's body.
    async fn stream(&mut self, data: Bytes) -> Result<(), S3Error> {
        let put = self.streaming.as_mut().expect("a streaming upload");
        put.written += data.len() as u64;
        if put.written > put.len {
            // Cuts the body short of its length: no object.
            let _ = self.finish_stream().await;
            return Err(self.length_error());
        }
        if let Some(body) = &put.body {
            if body.send(Ok(data)).await.is_ok() {
                return Ok(());
            }
        }
        // The request ended before its body did: its outcome says why.
        put.body = None;
        let outcome = match put.request.take() {
            Some(request) => request.await.ok(),
            None => None,
        };
        Err(match outcome {
            Some(Err(e)) => e,
            _ => self.length_error(),
        })
    }

    fn length_error(&self) -> S3Error {
        let put = self.streaming.as_ref().expect("a streaming upload");
        S3Error::Request {
            op: "PutObject",
            uri: self.uri.to_string(),
            source: format!(
                "the input changed while it was read: {} bytes instead of {}",
                put.written, put.len
            )
            .into(),
        }
    }

    /// Ends the streaming body (failing it unless exactly the declared
    /// length was written, so that no object is created) and waits for the
    /// request's outcome.
    async fn finish_stream(&mut self) -> Result<(), S3Error> {
        let put = self.streaming.as_mut().expect("a streaming upload");
        let (complete, len) = (put.written == put.len, put.len);
        if let Some(body) = put.body.take() {
            if !complete {
                let cut = std::io::Error::other("upload abandoned");
                let _ = body.send(Err(cut)).await;
            }
        }
        let Some(request) = put.request.take() else {
            // Ended already, by a failure.
            return Err(self.length_error());
        };
        let result = request.await.unwrap_or_else(|e| {
            Err(S3Error::Request {
                op: "PutObject",
                uri: self.uri.to_string(),
                source: Box::new(e),
            })
        });
        match complete {
            true => {
                result?;
                self.acked.add(len);
                Ok(())
            }
            false => Err(self.length_error()),
        }
    }

    /// How many written chunks the upload may hold at once (parts in
    /// flight, or chunks queued for a streaming PUT, plus one).
    pub fn buffers_held(&self) -> usize {
        match self.streaming {
            Some(_) => STREAM_QUEUE + 2,
            None => self.options.concurrency + 1,
        }
    }

    /// Whether the object goes up in one streaming PutObject
    /// ([`Uploader::expect_len`]), whose body may be whole (and the object
    /// written) before [`Uploader::finish`].
    pub fn is_streaming(&self) -> bool {
        self.streaming.is_some()
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
                Err(match e {
                    // Create-only: the precondition that failed is "no object".
                    S3Error::Changed { uri, .. } if self.if_none_match.is_some() => {
                        S3Error::Exists { uri }
                    }
                    e => e,
                })
            }
        }
    }

    /// Abandons the upload, aborting a started multipart upload. Safe to call
    /// after a `finish` that failed or was cancelled part-way; one
    /// cancelled after its completion was sent may find the object written
    /// ([`Abandoned::Completed`]).
    pub async fn abort(&mut self) -> Abandoned {
        self.abort_started().await
    }

    async fn complete(&mut self) -> Result<(), S3Error> {
        if self.streaming.is_some() {
            return self.finish_stream().await;
        }
        let Some(upload_id) = self.upload_id.clone() else {
            // Never filled a part: one PutObject of the whole (small) body.
            let body = self.take_buffer();
            let timeout = body_timeout(&self.client, body.len() as u64);
            let len = body.len() as u64;
            let request = self
                .client
                .put_object()
                .bucket(self.uri.bucket())
                .key(self.uri.key());
            let send = crate::object::with_properties!(request, &self.properties)
                .set_if_none_match(self.if_none_match.clone())
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing()
                .config_override(timeout)
                .send();
            let uri = self.uri.clone();
            let put = self.whole_put.insert(tokio::spawn(async move {
                send.await
                    .map(drop)
                    .map_err(|e| S3Error::from_sdk("PutObject", &uri, e))
            }));
            let joined = put.await;
            self.whole_put = None;
            joined.unwrap_or_else(|e| {
                Err(S3Error::Request {
                    op: "PutObject",
                    uri: self.uri.to_string(),
                    source: Box::new(e),
                })
            })?;
            self.acked.add(len);
            return Ok(());
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
            .set_if_none_match(self.if_none_match.clone())
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
    // PutObject (in `complete`) and UploadPart share the unsigned-payload,
    // body-timeout shape, but are separate SDK builders with different
    // answers: each is written out.
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
                    "the object needs more than {MAX_PARTS} parts; use a larger --part-size (for a stream, or --expected-size)"
                )
                .into(),
            });
        }
        let number = self.next_part;
        self.next_part += 1;
        if self.grows && number % PARTS_PER_SIZE == 0 {
            self.options.part_size = (self.options.part_size * 2).min(MAX_PART_SIZE);
            tracing::debug!(
                part_size = self.options.part_size,
                "larger parts from now on"
            );
        }
        let client = self.client.clone();
        let uri = self.uri.clone();
        let acked = self.acked.clone();
        self.in_flight.spawn(async move {
            tracing::debug!(part = number, bytes = body.len(), "uploading part");
            let timeout = body_timeout(&client, body.len() as u64);
            let len = body.len() as u64;
            let out = client
                .upload_part()
                .bucket(uri.bucket())
                .key(uri.key())
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing()
                .config_override(timeout)
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("UploadPart", &uri, e))?;
            acked.add(len);
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
        let request = self
            .client
            .create_multipart_upload()
            .bucket(self.uri.bucket())
            .key(self.uri.key());
        let send = crate::object::with_properties!(request, &self.properties).send();
        let uri = self.uri.clone();
        let starting = self.starting.insert(tokio::spawn(async move {
            let out = send
                .await
                .map_err(|e| S3Error::from_sdk("CreateMultipartUpload", &uri, e))?;
            out.upload_id()
                .map(str::to_owned)
                .ok_or_else(|| S3Error::Request {
                    op: "CreateMultipartUpload",
                    uri: uri.to_string(),
                    source: "no upload id in the response".into(),
                })
        }));
        let joined = starting.await;
        self.starting = None;
        let id = joined.unwrap_or_else(|e| {
            Err(S3Error::Request {
                op: "CreateMultipartUpload",
                uri: self.uri.to_string(),
                source: Box::new(e),
            })
        })?;
        tracing::debug!(uri = %self.uri, "started multipart upload");
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn abort_started(&mut self) -> Abandoned {
        // A PutObject given its whole body may write the object whatever
        // its caller does: its outcome says whether it did (bounded by the
        // request's time limits).
        let written = |joined: Result<Result<(), S3Error>, _>| match joined {
            Ok(Ok(())) => Abandoned::Completed,
            _ => Abandoned::Aborted,
        };
        if let Some(put) = self.whole_put.take() {
            return written(put.await);
        }
        if let Some(put) = &mut self.streaming {
            if let Some(request) = put.request.take() {
                if put.written == put.len {
                    put.body = None;
                    return written(request.await);
                }
                // Cancelled before its body ends, the request creates no
                // object (the body is dropped only after the cancellation).
                request.abort();
                let _ = request.await;
            }
            put.body = None;
        }
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        // Cancelled while creating it: wait for the id, then abort it.
        if let Some(Ok(Ok(id))) = match self.starting.take() {
            Some(starting) => Some(starting.await),
            None => None,
        } {
            self.upload_id = Some(id);
        }
        let Some(upload_id) = self.upload_id.take() else {
            return Abandoned::Aborted;
        };
        abort_upload(&self.client, &self.uri, &upload_id).await
    }
}

/// What abandoning an upload came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abandoned {
    /// Nothing was written (or the abort failed, and said so).
    Aborted,
    /// The multipart upload had completed: its completion was sent just
    /// before the abort, and the object is written, whole.
    Completed,
}

/// AbortMultipartUpload of `upload_id` at `uri`, its parts dropped; a
/// failure is logged (one line), not returned: the caller is already
/// failing or stopping.
pub(crate) async fn abort_upload(client: &Client, uri: &S3Uri, upload_id: &str) -> Abandoned {
    let result = client
        .abort_multipart_upload()
        .bucket(uri.bucket())
        .key(uri.key())
        .upload_id(upload_id)
        .send()
        .await;
    match result {
        Ok(_) => tracing::debug!(uri = %uri, "aborted multipart upload"),
        // Its completion was sent just before (the stop raced it): no
        // parts remain, and the object is whole.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_upload()) => {
            tracing::debug!(uri = %uri, "the multipart upload was already completed");
            return Abandoned::Completed;
        }
        Err(e) => tracing::warn!(
            "could not abort the multipart upload of {uri} ({}); its parts remain until a lifecycle rule removes them, or `aws s3api abort-multipart-upload` with upload id {upload_id}",
            atrest_sdk_error::describe("S3", &e),
        ),
    }
    Abandoned::Aborted
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
        // Beyond it, no part grows past S3's 5 GiB (a 100 TiB guess asked
        // for 10 GiB buffers).
        let beyond = default.fitting(100 * 1024 * 1024 * MIB).part_size;
        assert_eq!(beyond, MAX_PART_SIZE);
        assert_eq!(default.fitting(u64::MAX).part_size, MAX_PART_SIZE);
    }
}
