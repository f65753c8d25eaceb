use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use atrest_crypto::{v1, v2, DataKey};
use atrest_format::v2 as format_v2;
use atrest_format::v2::EncryptionContext;
use atrest_s3::{S3Uri, UploadOptions, Uploader};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::buffers::{BufferPool, Pooled};
use crate::cli::{Format, TransferArgs};
use crate::failure::{Exit, Failure};
use crate::interrupt::Interrupt;
use crate::progress::Show;
use atrest_kms::CachedKeys as Keys;

/// v1 plaintext read per step: large enough to amortise syscalls, small
/// enough to keep memory flat.
const V1_READ_CHUNK: usize = 1 << 20;

/// v2: bytes read past a full batch to learn whether the input ended there.
const LOOKAHEAD: usize = 64 * 1024;

type Input = Box<dyn AsyncRead + Unpin + Send>;

pub struct Encrypt<'a> {
    pub file: &'a Path,
    pub uri: &'a S3Uri,
    pub data_key: &'a Path,
    pub kms_key: Option<&'a str>,
    pub context: &'a [(String, String)],
    pub format: Format,
    pub frame_exponent: u8,
    /// Objects smaller than this (bytes) of a known size go up in one PUT.
    pub multipart_threshold: u64,
    pub transfer: &'a TransferArgs,
    pub progress: Show<'a>,
}

pub async fn run(
    keys: &Keys,
    s3: &aws_sdk_s3::Client,
    args: Encrypt<'_>,
    interrupt: &Interrupt,
) -> Result<()> {
    if args.format == Format::V1 && !args.context.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            "--context needs --format v2 (v1 has no encryption context)",
        )
        .into());
    }
    let context = EncryptionContext::new(args.context.iter().cloned())
        .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
    // Opening (a FIFO) and KMS may wait forever: a signal stops them.
    let input = interrupt.guard(crate::files::open_input(args.file)).await?;

    // At most one KMS call per object: GenerateDataKey for a fresh key, or
    // Decrypt of the shared data.key (none when a cached key is reused).
    let keys_work = async {
        Ok(match args.kms_key {
            Some(kms_key) => {
                if args.format == Format::V1 {
                    return Err(Failure::new(
                        Exit::Usage,
                        "--key needs --format v2 (v1 objects use data.key)",
                    )
                    .into());
                }
                let generated = keys
                    .generate(kms_key, &context.kms_context())
                    .await
                    .with_context(|| format!("cannot create a data key under `{kms_key}`"))?;
                (generated.key, generated.wrapped.to_vec(), context)
            }
            None => {
                let wrapped = read_data_key(args.data_key)?;
                let key = keys
                    .unwrap(&wrapped, &[])
                    .await
                    .with_context(|| format!("cannot unwrap {}", args.data_key.display()))?
                    .key;
                let context = context
                    .with_shared_data_key()
                    .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
                (key, wrapped, context)
            }
        })
    };
    let (key, wrapped, context) = interrupt.guard(keys_work).await?;

    let total = match crate::files::is_std_stream(args.file) {
        true => None,
        // Only a regular file's length is known before reading it.
        false => std::fs::metadata(args.file)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
    };
    let progress = args.progress.bar("encrypting", total);
    let mut input = progress.reader(input);

    let mut options = UploadOptions {
        part_size: args.transfer.part_size as usize * 1024 * 1024,
        concurrency: args.transfer.concurrency.unwrap_or(4) as usize,
        multipart_threshold: args.multipart_threshold,
    };
    if let Some(len) = total {
        // The encrypted object is a little larger: v2 adds 16 bytes a frame
        // (at most 1/256 at the smallest frames), plus the header.
        options = options.fitting(len + len / 256 + atrest_format::MAX_HEADER_LEN as u64);
    }
    let mut upload = Uploader::new(s3.clone(), args.uri.clone(), options);
    let work = async {
        match args.format {
            Format::V1 => {
                let object = V1Object {
                    wrapped,
                    plain_len: total,
                };
                encrypt_v1(&mut input, &key, object, &mut upload, args.data_key).await
            }
            Format::V2 => {
                let object = V2Object {
                    wrapped,
                    context,
                    frame_exponent: args.frame_exponent,
                    plain_len: total,
                };
                encrypt_v2(&mut input, &key, object, &mut upload).await
            }
        }
    };
    // On a signal the work stops wherever it is, and the upload is aborted.
    let result = interrupt.guard(work).await;
    drop(key);
    let result = match result {
        Ok(()) => interrupt.guard(async { Ok(upload.finish().await?) }).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        progress.clear();
        upload.abort().await;
        return Err(e);
    }
    progress.finish();
    tracing::info!(uri = %args.uri, "uploaded");
    Ok(())
}

/// What a v1 object is made of besides its body.
struct V1Object {
    wrapped: Vec<u8>,
    /// The input's length, when known in advance (a file).
    plain_len: Option<u64>,
}

async fn encrypt_v1(
    input: &mut Input,
    key: &DataKey,
    object: V1Object,
    upload: &mut Uploader,
    data_key: &Path,
) -> Result<()> {
    let stored_iv = v1::random_stored_iv(&mut rand_core::OsRng);
    let header = atrest_format::v1::Header::new(object.wrapped, stored_iv).map_err(|e| {
        Failure::new(
            Exit::Usage,
            format!("{} is not a data key: {e}", data_key.display()),
        )
    })?;
    if let Some(len) = object.plain_len {
        upload.expect_len(header.encoded_len() as u64 + atrest_format::v1::ciphertext_len(len));
    }
    let mut encryptor = v1::Encryptor::new(key, &stored_iv);
    let mut out = Vec::with_capacity(V1_READ_CHUNK + 64);
    header.encode(&mut out);
    let mut chunk = vec![0u8; V1_READ_CHUNK];
    loop {
        let n = input
            .read(&mut chunk)
            .await
            .context("cannot read the input")?;
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

/// Plaintext frames read into their final places in a part-sized buffer,
/// with room for each frame's tag, so sealing happens in place.
struct Batch {
    buf: Vec<u8>,
    /// Bytes before the first frame (the header, in the first batch).
    prefix_len: usize,
    first_index: u64,
    plain_len: usize,
    /// The input ended inside this batch.
    eof: bool,
}

impl Batch {
    fn frames(&self, frame_size: usize) -> usize {
        if self.plain_len == 0 {
            // Only the first batch of an empty input: one empty final frame.
            usize::from(self.first_index == 0)
        } else {
            self.plain_len.div_ceil(frame_size)
        }
    }
}

/// What a v2 object is made of besides its body.
struct V2Object {
    wrapped: Vec<u8>,
    context: EncryptionContext,
    frame_exponent: u8,
    /// The input's length, when known in advance (a file).
    plain_len: Option<u64>,
}

async fn encrypt_v2(
    input: &mut Input,
    key: &DataKey,
    object: V2Object,
    upload: &mut Uploader,
) -> Result<()> {
    let (wrapped, exponent) = (object.wrapped, object.frame_exponent);
    let (header, cipher) = v2::new_object(
        key,
        wrapped,
        exponent,
        object.context,
        &mut rand_core::OsRng,
    )
    .map_err(|e| Failure::new(Exit::Usage, format!("cannot build the header: {e}")))?;
    let body_len = object
        .plain_len
        .and_then(|len| format_v2::body_len(len, header.frame_size()));
    if let Some(body_len) = body_len {
        upload.expect_len(header.encoded_len() as u64 + body_len);
    }
    let cipher = Arc::new(cipher);
    let frame_size = cipher.frame_size();
    let sealed = frame_size + format_v2::TAG_LEN;
    // Sealed batches at least a part long go up as parts without copying.
    let frames_per_batch = upload.part_size().div_ceil(sealed);

    let mut prefix = Vec::with_capacity(header.encoded_len());
    header.encode(&mut prefix);
    // Memory: `concurrency` parts uploading (spawned, so they progress while
    // this loop reads) and the one batch being read and sealed.
    let mut next_index = 0;
    let mut carry = Vec::new();
    let pool = BufferPool::new(upload.buffers_held() + 2);
    loop {
        let batch = read_batch(
            input,
            pool.take(),
            std::mem::take(&mut prefix),
            &mut carry,
            next_index,
            frame_size,
            frames_per_batch,
        )
        .await
        .context("cannot read the input")?;
        next_index += batch.frames(frame_size) as u64;
        // `eof` is exact (read_batch looks past a full batch), so the batch
        // is sealed at once, its last frame final if the input ended.
        let eof = batch.eof;
        let sealed = seal(&cipher, batch, eof, pool.clone()).await?;
        upload.write_bytes(sealed).await?;
        if eof {
            return Ok(());
        }
    }
}

/// Reads up to `frames` frames of plaintext, each into its slot, starting
/// with `carry` (bytes read past the previous batch). When every slot is
/// full it reads ahead into `carry`, so `eof` says exactly whether the input
/// ends with this batch.
async fn read_batch(
    input: &mut Input,
    mut buf: Vec<u8>,
    prefix: Vec<u8>,
    carry: &mut Vec<u8>,
    first_index: u64,
    frame_size: usize,
    frames: usize,
) -> std::io::Result<Batch> {
    let sealed = frame_size + format_v2::TAG_LEN;
    let prefix_len = prefix.len();
    // A recycled buffer keeps its length: growing it is the only clearing.
    if buf.len() < prefix_len + frames * sealed {
        buf.resize(prefix_len + frames * sealed, 0);
    }
    buf[..prefix_len].copy_from_slice(&prefix);
    let mut plain_len = 0;
    let mut eof = false;
    'frames: for slot in 0..frames {
        let start = prefix_len + slot * sealed;
        let mut filled = 0;
        if slot == 0 {
            // At most LOOKAHEAD.min(frame_size) bytes: they fit the slot.
            buf[start..start + carry.len()].copy_from_slice(carry);
            filled = carry.len();
            carry.clear();
        }
        while filled < frame_size {
            let n = input
                .read(&mut buf[start + filled..start + frame_size])
                .await?;
            if n == 0 {
                eof = true;
                plain_len += filled;
                break 'frames;
            }
            filled += n;
        }
        plain_len += filled;
    }
    if !eof {
        carry.resize(LOOKAHEAD.min(frame_size), 0);
        let n = input.read(carry).await?;
        carry.truncate(n);
        eof = n == 0;
    }
    Ok(Batch {
        buf,
        prefix_len,
        first_index,
        plain_len,
        eof,
    })
}

/// Seals every frame of `batch` in place on the blocking pool; `last_is_final`
/// says whether its last frame ends the object.
fn seal(
    cipher: &Arc<v2::FrameCipher>,
    batch: Batch,
    last_is_final: bool,
    pool: BufferPool,
) -> JoinHandle<Bytes> {
    let cipher = Arc::clone(cipher);
    tokio::task::spawn_blocking(move || {
        let frame_size = cipher.frame_size();
        let sealed = frame_size + format_v2::TAG_LEN;
        let frames = batch.frames(frame_size);
        let Batch {
            mut buf,
            prefix_len,
            first_index,
            plain_len,
            ..
        } = batch;
        let mut end = prefix_len;
        for i in 0..frames {
            let start = prefix_len + i * sealed;
            let len = if i + 1 == frames {
                plain_len - i * frame_size
            } else {
                frame_size
            };
            let is_final = last_is_final && i + 1 == frames;
            let tag = cipher.seal_frame_in_place(
                first_index + i as u64,
                is_final,
                &mut buf[start..start + len],
            );
            buf[start + len..start + len + format_v2::TAG_LEN].copy_from_slice(&tag);
            end = start + len + format_v2::TAG_LEN;
        }
        Bytes::from_owner(Pooled::new(buf, end, pool))
    })
}

pub(crate) fn read_data_key(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::new(
                Exit::NotFoundOrDenied,
                format!(
                    "no {}: run `atrest create-data-key KEY_ID` first, pass --data-key PATH, or use --key KEY_ID for a fresh data key per object",
                    path.display()
                ),
            )
            .into()
        } else {
            anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
        }
    })
}
