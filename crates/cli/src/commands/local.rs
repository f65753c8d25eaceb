//! Local files on both sides: `atrest encrypt FILE OUT` and `atrest decrypt
//! IN OUT` when neither side is `s3://`.
//!
//! Streams through the `atrest-crypto` tokio adapters, so memory stays
//! bounded whatever the size; output goes to a temporary file beside OUT
//! that replaces it only when complete (or to stdout for `-`). With
//! `--key-file` nothing here reads AWS configuration: KMS clients are built
//! only when a KMS key is really needed.

use std::path::Path;

use anyhow::{Context, Result};
use atrest_crypto::{async_io, v1, v2, DecryptError, StreamError};
use atrest_format::keyring::Keyring as Recorded;
use atrest_format::v2::EncryptionContext;
use atrest_format::Header;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::cli::{AwsArgs, Format};
use crate::failure::{Exit, Failure, NotAtrest};
use crate::keyring::{KeyFile, Keyring, NewKey};
use crate::progress::Show;
use atrest_fs::output::Output;
use atrest_kms::CachedKeys as Keys;

/// Bytes read per step (and so the most plaintext or ciphertext held at
/// once): large enough that the blocking pool round trips of tokio's file
/// I/O do not dominate.
const IO_BUFFER: usize = 1 << 20;

/// Where keys come from: the key file, or KMS through the AWS configuration
/// (loaded only if asked).
pub struct KeySource<'a> {
    pub key_file: Option<&'a Path>,
    pub aws: &'a AwsArgs,
}

/// A command's keyring, holding what it borrows from.
enum Loaded {
    KeyFile(KeyFile),
    Kms(Keys),
}

impl Loaded {
    fn keyring(&self) -> Keyring<'_> {
        match self {
            Loaded::KeyFile(file) => Keyring::KeyFile(file),
            Loaded::Kms(keys) => Keyring::Kms(keys),
        }
    }
}

impl KeySource<'_> {
    async fn load(&self) -> Result<Loaded> {
        match self.key_file {
            Some(path) => Ok(Loaded::KeyFile(KeyFile::load(path)?)),
            None => {
                let clients = crate::aws::clients(self.aws).await?;
                Ok(Loaded::Kms(Keys::uncached(clients.kms)))
            }
        }
    }
}

pub struct LocalEncrypt<'a> {
    pub file: &'a Path,
    pub out: &'a Path,
    /// The same flags as an upload's.
    pub encrypt: &'a crate::cli::EncryptArgs,
    pub progress: Show<'a>,
}

pub async fn encrypt(keys: KeySource<'_>, args: LocalEncrypt<'_>) -> Result<()> {
    let flags = args.encrypt;
    if flags.format == Format::V1 && !flags.context.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            "--context needs --format v2 (v1 has no encryption context)",
        )
        .into());
    }
    if flags.format == Format::S3ecV3 {
        return Err(Failure::new(
            Exit::Usage,
            "--format s3ec-v3 writes S3 objects (its metadata lives in S3): give an s3:// destination",
        )
        .into());
    }
    let context = EncryptionContext::new(flags.context.iter().cloned())
        .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
    let input = atrest_fs::output::open_input(args.file).await?;
    let mut output = Output::create(args.out).await?;
    let loaded = keys.load().await?;
    let object = loaded
        .keyring()
        .new_object_key(NewKey {
            format: flags.format,
            kms_key: flags.kms_key.as_deref(),
            data_key: &flags.data_key,
            context,
        })
        .await?;
    let total = atrest_fs::output::regular_file_len(args.file);
    let progress = args.progress.bar("encrypting", total);
    let mut input = progress.reader(input);
    let result = async {
        let (step, prefix) = match flags.format {
            Format::V1 => {
                let stored_iv = v1::random_stored_iv(&mut rand_core::OsRng);
                let header =
                    atrest_format::v1::Header::new(object.wrapped, stored_iv).map_err(|e| {
                        Failure::new(
                            Exit::Usage,
                            format!("{} is not a data key: {e}", flags.data_key.display()),
                        )
                    })?;
                let mut prefix = Vec::new();
                header.encode(&mut prefix);
                (
                    Step::V1Encrypt(v1::Encryptor::new(&object.key, &stored_iv)),
                    prefix,
                )
            }
            Format::V2 => {
                let encryptor = v2::Encryptor::new(
                    &object.key,
                    object.wrapped,
                    flags.frame_size,
                    object.context,
                    &mut rand_core::OsRng,
                )
                .map_err(|e| Failure::new(Exit::Usage, format!("cannot build the header: {e}")))?;
                (Step::V2Encrypt(encryptor), Vec::new())
            }
            Format::S3ecV3 => unreachable!("refused above"),
        };
        drop(object.key);
        pump(&mut input, args.file, step, prefix, &mut output).await?;
        Ok(output.commit().await?)
    }
    .await;
    progress.end(result)
}

pub struct LocalDecrypt<'a> {
    pub input: &'a Path,
    pub out: &'a Path,
    pub expect_context: &'a [(String, String)],
    pub quiet: bool,
    pub progress: Show<'a>,
}

pub async fn decrypt(keys: KeySource<'_>, args: LocalDecrypt<'_>) -> Result<()> {
    let name = crate::escape(&args.input.display().to_string());
    // A bad key file fails before anything is read; KMS (and the AWS
    // configuration it needs) only if the object turns out to need it.
    let key_file = keys.key_file.map(KeyFile::load).transpose()?;
    let input = atrest_fs::output::open_input(args.input).await?;
    // Fail on an unwritable destination before anything else.
    let mut output = Output::create(args.out).await?;
    let total = atrest_fs::output::regular_file_len(args.input);
    let progress = args.progress.bar("decrypting", total);
    let mut input = BufReader::with_capacity(IO_BUFFER, progress.reader(input));
    let result = async {
        let header = match async_io::read_header(&mut input).await {
            Ok(header) => header,
            Err(StreamError::Header(e)) => return Err(NotAtrest::BadHeader(e).into()),
            Err(StreamError::TruncatedHeader) => {
                return Err(NotAtrest::TooShort(total.unwrap_or(0)).into())
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {name}"))),
        };
        // The keyring the header names, before anything else about it.
        let loaded = match (key_file, header.keyring()) {
            (None, Recorded::KeyFile) => {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("{name}'s data key is wrapped under a key file: pass --key-file PATH"),
                )
                .into())
            }
            (Some(file), _) => Loaded::KeyFile(file),
            (None, _) => keys.load().await?,
        };
        let keyring = loaded.keyring();
        keyring.check_recorded(&name, &header)?;
        match &header {
            Header::V1(_) => {
                if !args.expect_context.is_empty() {
                    return Err(Failure::new(
                        Exit::Untrusted,
                        format!("{name} is a v1 object, which has no encryption context to check"),
                    )
                    .into());
                }
                if !args.quiet {
                    eprintln!(
                        "warning: {name} is a v1 object: it is not authenticated, so tampering cannot be detected (re-encrypt it to v2)"
                    );
                }
            }
            Header::V2(h) => atrest_transfer::check_expected_context(h, args.expect_context).map_err(crate::failure::from_transfer)?,
            _ => unreachable!("parse_header yields only known versions"),
        }
        let key = keyring.object_key(&name, &header).await?;
        let step = match &header {
            Header::V1(h) => Step::V1Decrypt(Box::new(v1::Decryptor::new(&key, &h.stored_iv()))),
            Header::V2(h) => Step::V2Decrypt(v2::Decryptor::new(&key, h)?),
            _ => unreachable!("parse_header yields only known versions"),
        };
        drop(key);
        pump(&mut input, args.input, step, Vec::new(), &mut output)
            .await
            .with_context(|| format!("cannot decrypt {name}"))?;
        Ok(output.commit().await?)
    }
    .await;
    progress.end(result)
}

/// One of the streaming state machines of `atrest-crypto`.
enum Step {
    V1Encrypt(v1::Encryptor),
    V2Encrypt(v2::Encryptor),
    // Boxed: its CBC state is large beside the others'.
    V1Decrypt(Box<v1::Decryptor>),
    V2Decrypt(v2::Decryptor),
}

impl Step {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        match self {
            Step::V1Encrypt(e) => e.update(input, out),
            Step::V2Encrypt(e) => e.update(input, out),
            Step::V1Decrypt(d) => d.update(input, out),
            Step::V2Decrypt(d) => d.update(input, out)?,
        }
        Ok(())
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        match self {
            Step::V1Encrypt(e) => e.finish(out),
            Step::V2Encrypt(e) => e.finish(out),
            Step::V1Decrypt(d) => d.finish(out)?,
            Step::V2Decrypt(d) => d.finish(out)?,
        }
        Ok(())
    }
}

/// Streams `input` through `step` into `output`, [`IO_BUFFER`] bytes at a
/// time, after `prefix` (a v1 header). (Not `atrest_crypto::async_io`'s
/// loops: they write to an `AsyncWrite`, which [`Output`], with its
/// temporary file and FIFOs written in place, is not; and a read error
/// here names the file.) A decryptor releases only what it has
/// authenticated (v2), and the output is committed by the caller only after
/// `finish`, so a failure leaves no partial file.
async fn pump(
    input: &mut (impl AsyncRead + Unpin),
    name: &Path,
    mut step: Step,
    mut out: Vec<u8>,
    output: &mut Output,
) -> Result<()> {
    let mut chunk = vec![0u8; IO_BUFFER];
    loop {
        let n = input
            .read(&mut chunk)
            .await
            .with_context(|| format!("cannot read {}", name.display()))?;
        if n == 0 {
            break;
        }
        step.update(&chunk[..n], &mut out)?;
        if !out.is_empty() {
            output.write(Bytes::from(std::mem::take(&mut out))).await?;
        }
    }
    step.finish(&mut out)?;
    output.write(Bytes::from(out)).await?;
    Ok(())
}

/// The local-only form of `encrypt` or `decrypt`, if neither side of the
/// command is `s3://`: run before any AWS configuration is loaded.
pub fn from_command(
    cli: &crate::cli::Cli,
    show_progress: bool,
) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>>> {
    use crate::cli::Command;
    use crate::commands::inspect::Target;
    let progress = Show::Own(show_progress);
    match &cli.command {
        Command::EncryptWithKms {
            file,
            uri: Target::File(out),
            key_file,
            encrypt: args,
            bulk,
            ..
        } => Some(Box::pin(async move {
            if let Some(done) = settled(bulk, "encrypt", file, out, cli.quiet) {
                return done;
            }
            if args.properties.any() {
                return Err(Failure::new(
                    Exit::Usage,
                    "object properties (--content-type, --metadata, --sse, ...) apply to S3 uploads only",
                )
                .into());
            }
            let keys = KeySource {
                key_file: key_file.path.as_deref(),
                aws: &cli.aws,
            };
            let args = LocalEncrypt {
                file,
                out,
                encrypt: args,
                progress,
            };
            encrypt(keys, args).await
        })),
        Command::DecryptWithKms {
            uri: Target::File(input),
            key_file,
            file,
            decrypt: args,
            bulk,
            ..
        } => Some(Box::pin(async move {
            if let Some(done) = settled(bulk, "decrypt", input, file, cli.quiet) {
                return done;
            }
            if args.range.is_some() {
                return Err(Failure::new(Exit::Usage, "--range needs an s3:// source").into());
            }
            let keys = KeySource {
                key_file: key_file.path.as_deref(),
                aws: &cli.aws,
            };
            let args = LocalDecrypt {
                input,
                out: file,
                expect_context: &args.expect_context,
                quiet: cli.quiet,
                progress,
            };
            decrypt(keys, args).await
        })),
        _ => None,
    }
}

/// What `-r`, `--json`, `--no-overwrite` and `--dryrun` make of a local
/// run before any key is loaded: `Some` ends the command there.
fn settled(
    bulk: &crate::cli::BulkArgs,
    verb: &str,
    input: &std::path::Path,
    out: &std::path::Path,
    quiet: bool,
) -> Option<Result<()>> {
    if bulk.recursive {
        return Some(Err(recursive_needs_s3()));
    }
    if bulk.many.json {
        return Some(Err(json_needs_s3()));
    }
    if bulk.no_overwrite && std::fs::symlink_metadata(out).is_ok() {
        skipped(out, quiet);
        return Some(Ok(()));
    }
    if bulk.dryrun {
        return Some(dry_run(verb, input, out, quiet));
    }
    None
}

/// `--dryrun` between local files: the input must exist; nothing is read
/// or written.
fn dry_run(verb: &str, input: &std::path::Path, out: &std::path::Path, quiet: bool) -> Result<()> {
    if !atrest_fs::output::is_std_stream(input) {
        std::fs::metadata(input).with_context(|| format!("cannot open {}", input.display()))?;
    }
    if !quiet {
        println!(
            "{}",
            crate::escape(&format!(
                "(dryrun) {verb}: {} to {}",
                input.display(),
                out.display()
            ))
        );
    }
    Ok(())
}

/// `--no-overwrite` found the output: nothing is done.
fn skipped(out: &std::path::Path, quiet: bool) {
    if !quiet {
        eprintln!(
            "skipped: {} exists (--no-overwrite)",
            crate::escape(&out.display().to_string())
        );
    }
}

fn json_needs_s3() -> anyhow::Error {
    Failure::new(
        Exit::Usage,
        "--json reports S3 transfers; between local files there is nothing to report but the exit status",
    )
    .into()
}

fn recursive_needs_s3() -> anyhow::Error {
    Failure::new(
        Exit::Usage,
        "--recursive needs an s3:// side (a prefix); local directories are not encrypted file by file yet",
    )
    .into()
}
