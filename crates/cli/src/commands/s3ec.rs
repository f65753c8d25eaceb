//! Objects of the AWS S3 Encryption Client: detection, decryption by
//! parallel ranged GETs with the tag checked before anything is released,
//! and V3 writing.
//!
//! The GCM tag covers the whole object, so no plaintext is trustworthy
//! before the last byte has been hashed. Into a file, runs are decrypted at
//! their offsets into the temporary file, and the caller renames it only
//! after [`decrypt`] returned `Ok` (the tag matched). To stdout (and for a
//! `--range`), the object is staged the same way in an anonymous temporary
//! file, and only copied out after the tag matched: memory stays bounded
//! whatever the size, and no unauthenticated byte reaches a pipe.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use atrest_crypto::s3ec::{ContentCipher, Encryptor, Runs, TAG_LEN};
use atrest_crypto::{v1, DataKey, DecryptError};
use atrest_format::s3ec::{self as format, Content, Envelope, Location, Policy};
use atrest_s3::{ByteRange, Fetched, S3Uri, Uploader};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use crate::failure::{Exit, Failure};
use crate::files::Output;
use atrest_kms::CachedKeys as Keys;
use atrest_transfer::write_all_at;

/// Ciphertext decrypted per step within a ranged GET: a whole number of
/// blocks, so every step but the object's last starts and ends on a block.
const BATCH: usize = 512 * 1024;

/// The largest instruction file read: a few entries of JSON.
const MAX_INSTRUCTION_FILE: u64 = 64 * 1024;

/// Plaintext read per step when writing.
const READ_CHUNK: usize = 1 << 20;

/// The S3EC metadata of an object, if it has any: from its user metadata,
/// or from `KEY.instruction` when the metadata says so or (`probe`) when
/// the object has no S3EC metadata and is not an atrest object either.
pub async fn detect(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    metadata: &std::collections::HashMap<String, String>,
    probe: bool,
    policy: Policy,
) -> Result<Option<Envelope>> {
    let object: BTreeMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let untrusted = |e: format::S3ecError| -> anyhow::Error {
        Failure::new(
            Exit::Untrusted,
            format!("{uri}: invalid S3 Encryption Client metadata: {e}"),
        )
        .into()
    };
    let location = format::locate(&object);
    match location {
        Location::Object => format::parse(&object, None, policy)
            .map(Some)
            .map_err(untrusted),
        Location::None if !probe => Ok(None),
        Location::None | Location::InstructionFile => {
            let instruction = uri.with_key(format!("{}{}", uri.key(), format::INSTRUCTION_SUFFIX));
            let body = match atrest_s3::get_range(
                s3,
                &instruction,
                ByteRange::new(0, MAX_INSTRUCTION_FILE),
                None,
            )
            .await
            {
                Ok(f) if f.object_len <= MAX_INSTRUCTION_FILE => f.bytes,
                Ok(_) => return Err(untrusted(format::S3ecError::BadInstructionFile)),
                // Only a probe: no instruction file, or none we may read
                // (S3 answers 403 for a missing key without ListBucket),
                // leaves the object "not an atrest object".
                Err(_) if location == Location::None => return Ok(None),
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot read the instruction file {instruction}")))
                }
            };
            format::parse(&object, Some(&body), policy)
                .map(Some)
                .map_err(untrusted)
        }
    }
}

/// What to decrypt, and how.
pub struct Decrypt<'a> {
    pub uri: &'a S3Uri,
    pub expect_context: &'a [(String, String)],
    pub allow_legacy: bool,
    pub range: Option<ByteRange>,
    pub streams: usize,
    pub part_size: usize,
    pub quiet: bool,
}

/// Unwraps the data key of `envelope` with KMS, checking the expected
/// context first.
async fn data_key(keys: &Keys, args: &Decrypt<'_>, envelope: &Envelope) -> Result<Arc<DataKey>> {
    if !envelope.wrap.is_kms() {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "{} is wrapped with a client-side key ({}), not KMS: atrest unwraps only with KMS",
                args.uri,
                envelope.wrap.name()
            ),
        )
        .into());
    }
    format::check_expected_context(
        envelope,
        args.expect_context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| Failure::new(Exit::Untrusted, crate::escape(&e.to_string())))?;
    let context: Vec<(String, String)> = envelope
        .context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(keys.unwrap(&envelope.wrapped_key, &context).await?.key)
}

/// Decrypts an S3EC object into `output`: `first` is the first ranged GET
/// (its bytes, the object's length and metadata).
pub async fn decrypt(
    keys: &Keys,
    s3: &aws_sdk_s3::Client,
    args: &Decrypt<'_>,
    envelope: Envelope,
    first: Fetched,
    output: &mut Output,
) -> Result<()> {
    let key = data_key(keys, args, &envelope).await?;
    match &envelope.content {
        Content::Cbc { iv } => {
            // parse() admits CBC only with --allow-legacy.
            if args.range.is_some() {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("{}: --range needs an AES-GCM object, not CBC", args.uri),
                )
                .into());
            }
            if !args.quiet {
                eprintln!(
                    "warning: {} is AES-CBC (legacy S3 Encryption Client): it is not authenticated, so tampering cannot be detected",
                    args.uri
                );
            }
            return decrypt_cbc(s3, args.uri, &key, iv, first, output).await;
        }
        Content::Gcm { .. } | Content::Committed { .. } => {}
    }
    // The commitment (V3) is checked here, before any byte is decrypted.
    let cipher = Arc::new(ContentCipher::new(&key, &envelope.content)?);
    drop(key);
    let plain_len = format::gcm_plaintext_len(first.object_len).ok_or(DecryptError)?;
    if let (Some(range), true) = (args.range, args.allow_legacy) {
        return ctr_range(s3, args, &cipher, plain_len, range, output).await;
    }
    let staged;
    let (file, staging) = match output.positional()? {
        Some(file) if args.range.is_none() => (file, false),
        _ => {
            staged = tempfile::tempfile()
                .context("cannot create a temporary file to stage the plaintext")?;
            (staged.try_clone()?, true)
        }
    };
    let file = Arc::new(file);
    let body = Body {
        uri: args.uri.clone(),
        cipher,
        file: file.clone(),
        plain_len,
        object_len: first.object_len,
        pin: first.version.clone(),
        runs: Mutex::new(Runs::default()),
        tag: Mutex::new([0; TAG_LEN]),
    };
    let body = Arc::new(body);
    if first.bytes.len() as u64 == first.object_len {
        body.process(0, first.bytes.to_vec())?;
    } else {
        let run_len = (args.part_size as u64).max(BATCH as u64) / 16 * 16;
        fetch_runs(s3, &body, run_len, args.streams.max(1)).await?;
    }
    body.verify()?;
    if staging {
        let (start, len) = match args.range {
            None => (0, plain_len),
            Some(range) => {
                let end = range
                    .end
                    .unwrap_or(u64::MAX)
                    .min(plain_len.saturating_sub(1));
                if range.start >= plain_len || end < range.start {
                    return Err(Failure::new(
                        Exit::Usage,
                        format!("--range {range} is outside the plaintext ({plain_len} bytes)"),
                    )
                    .into());
                }
                (range.start, end - range.start + 1)
            }
        };
        copy_out(&file, start, len, output).await?;
    }
    Ok(())
}

/// One body being decrypted by runs: where plaintext goes, and the runs'
/// hashes and the tag as they arrive.
struct Body {
    uri: S3Uri,
    cipher: Arc<ContentCipher>,
    file: Arc<std::fs::File>,
    plain_len: u64,
    object_len: u64,
    /// The version every GET reads.
    pin: atrest_s3::ObjectVersion,
    runs: Mutex<Runs>,
    tag: Mutex<[u8; TAG_LEN]>,
}

impl Body {
    /// Handles body bytes `at..at + bytes.len()`: ciphertext is decrypted
    /// and written at its offset, tag bytes are kept.
    fn process(&self, at: u64, mut bytes: Vec<u8>) -> Result<()> {
        let end = at + bytes.len() as u64;
        let ct_end = end.min(self.plain_len);
        if end > self.plain_len {
            let tag_from = self.plain_len.max(at);
            let mut tag = self.tag.lock().expect("tag lock");
            for (i, b) in bytes[(tag_from - at) as usize..].iter().enumerate() {
                tag[(tag_from - self.plain_len) as usize + i] = *b;
            }
        }
        if ct_end > at {
            let ct = &mut bytes[..(ct_end - at) as usize];
            let hash = self.cipher.open_run(at, ct);
            write_all_at(&self.file, ct, at)
                .with_context(|| "cannot write the decrypted object".to_string())?;
            self.runs
                .lock()
                .expect("runs lock")
                .insert(&self.cipher, at, hash)?;
        }
        Ok(())
    }

    fn verify(&self) -> Result<(), DecryptError> {
        let tag = *self.tag.lock().expect("tag lock");
        self.runs
            .lock()
            .expect("runs lock")
            .verify(&self.cipher, self.plain_len, &tag)
    }
}

/// `streams` ranged GETs at once, each over a run of `run_len` body bytes,
/// each decrypted [`BATCH`] bytes at a time as it arrives.
async fn fetch_runs(
    s3: &aws_sdk_s3::Client,
    body: &Arc<Body>,
    run_len: u64,
    streams: usize,
) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..streams {
        let (s3, body, next) = (s3.clone(), body.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let start = next.fetch_add(1, Ordering::Relaxed) * run_len;
                if start >= body.object_len {
                    return Ok::<(), anyhow::Error>(());
                }
                let end = (start + run_len).min(body.object_len);
                fetch_run(&s3, &body, start, end).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done? {
            tasks.abort_all();
            return Err(e);
        }
    }
    Ok(())
}

async fn fetch_run(s3: &aws_sdk_s3::Client, body: &Arc<Body>, start: u64, end: u64) -> Result<()> {
    let mut download = atrest_s3::get(
        s3,
        &body.uri,
        ByteRange::new(start, end - 1),
        Some(&body.pin),
    )
    .await?;
    let mut at = start;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(chunk) = download.next_chunk().await {
        let mut chunk = &chunk?[..];
        while !chunk.is_empty() {
            let take = (BATCH - batch.len()).min(chunk.len());
            batch.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if batch.len() == BATCH {
                if at + BATCH as u64 > end {
                    return Err(DecryptError.into());
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                let body = body.clone();
                let done = at;
                tokio::task::spawn_blocking(move || body.process(done, full)).await??;
                at += BATCH as u64;
            }
        }
    }
    let len = batch.len() as u64;
    if at + len != end {
        // The object changed length under us, or the server sent too little.
        return Err(DecryptError.into());
    }
    if len > 0 {
        let body = body.clone();
        tokio::task::spawn_blocking(move || body.process(at, batch)).await??;
    }
    Ok(())
}

/// Staged plaintext is copied out this much at a time.
const COPY_CHUNK: usize = 1 << 20;

/// Copies `len` bytes at `start` of the (verified) staged plaintext out.
async fn copy_out(file: &std::fs::File, start: u64, len: u64, output: &mut Output) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(start))?;
    let mut file = Some(file);
    let mut left = len;
    while left > 0 {
        let n = left.min(COPY_CHUNK as u64) as usize;
        let mut f = file.take().expect("file handed back");
        let (f, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            f.read_exact(&mut buf).map(|()| (f, buf))
        })
        .await??;
        file = Some(f);
        output.write(buf.into()).await?;
        left -= n as u64;
    }
    Ok(())
}

/// `--range` with `--allow-legacy`: only the blocks holding the range are
/// fetched and decrypted with the GCM keystream (AES-CTR), without the tag:
/// unauthenticated, as the Java client's legacy ranged reads.
async fn ctr_range(
    s3: &aws_sdk_s3::Client,
    args: &Decrypt<'_>,
    cipher: &ContentCipher,
    plain_len: u64,
    range: ByteRange,
    output: &mut Output,
) -> Result<()> {
    let end = range
        .end
        .unwrap_or(u64::MAX)
        .min(plain_len.saturating_sub(1));
    if range.start >= plain_len || end < range.start {
        return Err(Failure::new(
            Exit::Usage,
            format!("--range {range} is outside the plaintext ({plain_len} bytes)"),
        )
        .into());
    }
    if !args.quiet {
        eprintln!(
            "warning: --range of an S3 Encryption Client object with --allow-legacy is decrypted without its tag (AES-CTR): it is not authenticated"
        );
    }
    let aligned = range.start / 16 * 16;
    let mut at = aligned;
    let mut download = atrest_s3::get(s3, args.uri, ByteRange::new(aligned, end), None).await?;
    while let Some(chunk) = download.next_chunk().await {
        let mut buf = chunk?.to_vec();
        if at + buf.len() as u64 > end + 1 {
            return Err(DecryptError.into());
        }
        cipher.apply_keystream(at, &mut buf);
        let skip = range.start.saturating_sub(at).min(buf.len() as u64) as usize;
        at += buf.len() as u64;
        buf.drain(..skip);
        output.write(buf.into()).await?;
    }
    if at != end + 1 {
        return Err(DecryptError.into());
    }
    Ok(())
}

/// Legacy CBC: one GET, decrypted in order; every padding or length error
/// is the same [`DecryptError`].
async fn decrypt_cbc(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    key: &DataKey,
    iv: &[u8; 16],
    first: Fetched,
    output: &mut Output,
) -> Result<()> {
    let mut dec = v1::Decryptor::with_iv(key, iv);
    let mut plain = Vec::new();
    dec.update(&first.bytes, &mut plain);
    output.write(std::mem::take(&mut plain).into()).await?;
    if first.object_len > first.bytes.len() as u64 {
        let mut rest = atrest_s3::get(
            s3,
            uri,
            ByteRange::from(first.bytes.len() as u64),
            Some(&first.version),
        )
        .await?;
        while let Some(chunk) = rest.next_chunk().await {
            dec.update(&chunk?, &mut plain);
            output.write(std::mem::take(&mut plain).into()).await?;
        }
    }
    dec.finish(&mut plain)?;
    output.write(plain.into()).await?;
    Ok(())
}

/// What V3 writing needs besides the input.
pub struct Encrypt<'a> {
    pub file: &'a Path,
    pub kms_key: &'a str,
    pub context: &'a [(String, String)],
}

/// Encrypts `input` (a file of `len` bytes) as a V3 object: a fresh data key
/// under the KMS key with the caller's context plus `aws:x-amz-cek-alg`,
/// the sequential AES-GCM stream fed to `upload` (whose parts go up in
/// parallel), the metadata in the object. The length is checked against
/// GCM's limit before KMS is asked for anything.
pub async fn encrypt(
    keys: &Keys,
    args: &Encrypt<'_>,
    input: &mut (dyn AsyncRead + Unpin + Send),
    len: u64,
    upload: &mut Uploader,
) -> Result<()> {
    atrest_crypto::s3ec::check_plaintext_len(len)
        .map_err(|e| Failure::new(Exit::Usage, format!("{}: {e}", args.file.display())))?;
    let user: BTreeMap<String, String> = args.context.iter().cloned().collect();
    // Validates the context (ASCII, no reserved keys) before KMS is asked.
    let probe = Envelope::v3_kms(vec![0], [0; 28], [0; 28], user.clone())
        .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
    let kms_context: Vec<(String, String)> = probe.context.into_iter().collect();
    let generated = keys
        .generate(args.kms_key, &kms_context)
        .await
        .with_context(|| format!("cannot create a data key under `{}`", args.kms_key))?;
    let (cipher, message_id, commitment) =
        atrest_crypto::s3ec::new_v3(&generated.key, &mut rand_core::OsRng);
    drop(generated.key);
    let envelope = Envelope::v3_kms(generated.wrapped.to_vec(), message_id, commitment, user)
        .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
    let metadata = envelope.encode(format::Placement::Object).object;
    upload.set_metadata(metadata.into_iter().collect());
    upload.expect_len(format::gcm_body_len(len));
    let mut enc = Encryptor::new(cipher, len)?;
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut out = Vec::with_capacity(READ_CHUNK + TAG_LEN);
    loop {
        let n = input
            .read(&mut chunk)
            .await
            .context("cannot read the input")?;
        if n == 0 {
            break;
        }
        enc.update(&chunk[..n], &mut out)
            .with_context(|| format!("{} changed while it was read", args.file.display()))?;
        upload.write(&out).await?;
        out.clear();
    }
    enc.finish(&mut out)
        .with_context(|| format!("{} changed while it was read", args.file.display()))?;
    upload.write(&out).await?;
    Ok(())
}

/// `--format s3ec-v3`: checks what V3 needs (a KMS key, a regular file of
/// known length), then [`encrypt`] into a multipart upload whose parts go
/// up in parallel; the upload is aborted on any failure or signal.
pub async fn run_encrypt(
    keys: &Keys,
    s3: &aws_sdk_s3::Client,
    args: &crate::commands::encrypt::Encrypt<'_>,
    interrupt: &crate::interrupt::Interrupt,
) -> Result<()> {
    let Some(kms_key) = args.kms_key else {
        return Err(Failure::new(
            Exit::Usage,
            "--format s3ec-v3 needs --key KEY_ID: each S3 Encryption Client object carries its own data key, wrapped with its context",
        )
        .into());
    };
    let len = match std::fs::metadata(args.file) {
        Ok(m) if m.is_file() && !crate::files::is_std_stream(args.file) => m.len(),
        _ => {
            return Err(Failure::new(
                Exit::Usage,
                "--format s3ec-v3 needs a regular file: GCM's 64 GiB limit is checked against its length before anything is uploaded",
            )
            .into())
        }
    };
    let mut input = crate::files::open_input(args.file).await?;
    let options = atrest_s3::UploadOptions {
        part_size: args.transfer.part_size as usize * 1024 * 1024,
        concurrency: args.transfer.concurrency.unwrap_or(4) as usize,
        multipart_threshold: args.multipart_threshold,
    }
    .fitting(format::gcm_body_len(len));
    let mut upload = Uploader::new(s3.clone(), args.uri.clone(), options);
    let v3 = Encrypt {
        file: args.file,
        kms_key,
        context: args.context,
    };
    let result = interrupt
        .guard(encrypt(keys, &v3, &mut input, len, &mut upload))
        .await;
    let result = match result {
        Ok(()) => interrupt.guard(async { Ok(upload.finish().await?) }).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        upload.abort().await;
        return Err(e);
    }
    tracing::info!(uri = %args.uri, "uploaded (S3 Encryption Client V3)");
    Ok(())
}

/// `inspect` of an S3EC object: what its metadata says, without KMS.
pub fn describe(name: &str, envelope: &Envelope, object_len: u64, as_json: bool) -> String {
    let content = match envelope.content {
        Content::Cbc { .. } => "AES-256-CBC (legacy, unauthenticated)",
        Content::Gcm { .. } => "AES-256-GCM (suite 0x0072, no key commitment)",
        Content::Committed { .. } => "AES-256-GCM, HKDF-SHA-512, key commitment (suite 0x0073)",
    };
    let plain_len = match envelope.content {
        Content::Cbc { .. } => None,
        _ => format::gcm_plaintext_len(object_len),
    };
    let placement = if envelope.instruction_file {
        "instruction file (KEY.instruction)"
    } else {
        "object metadata"
    };
    let user: Vec<(&str, &str)> = envelope.user_context().collect();
    if as_json {
        let context: serde_json::Map<String, serde_json::Value> = envelope
            .context
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        let v = serde_json::json!({
            "object": name,
            "format": format!("s3ec-{}", envelope.version).to_lowercase(),
            "content": envelope.content.name(),
            "wrap": envelope.wrap.name(),
            "object_len": object_len,
            "plaintext_len": plain_len,
            "wrapped_key_len": envelope.wrapped_key.len(),
            "instruction_file": envelope.instruction_file,
            "context": context,
        });
        return serde_json::to_string_pretty(&v).expect("JSON of strings and numbers") + "\n";
    }
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18}{v}\n"));
    line("object", name.to_owned());
    line(
        "format",
        format!("AWS S3 Encryption Client {}", envelope.version),
    );
    line("content", content.to_owned());
    line("key wrap", envelope.wrap.name().to_owned());
    line("metadata in", placement.to_owned());
    line("object length", format!("{object_len} bytes"));
    line(
        "plaintext length",
        match plain_len {
            Some(n) => format!("{n} bytes"),
            None if matches!(envelope.content, Content::Cbc { .. }) => {
                "up to 16 bytes less than the object (CBC padding)".into()
            }
            None => "invalid: the object is shorter than a tag".into(),
        },
    );
    line(
        "wrapped key",
        format!("{} bytes", envelope.wrapped_key.len()),
    );
    out.push_str("context\n");
    for (k, v) in &user {
        out.push_str(&format!("  {} = {}\n", crate::escape(k), crate::escape(v)));
    }
    out
}
