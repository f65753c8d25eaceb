//! Local files on both sides: `atrest encrypt FILE OUT` and `atrest decrypt
//! IN OUT` when neither side is `s3://`.
//!
//! Streams through the `atrest-crypto` tokio adapters, so memory stays
//! bounded whatever the size; output goes to a temporary file beside OUT
//! that replaces it only when complete (or to stdout for `-`). With
//! `--key-file` nothing here reads AWS configuration: KMS clients are built
//! only when a KMS key is really needed.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use atrest_format::keyring::Keyring;
use atrest_format::Header;
use atrest_fs::Output;
use atrest_transfer::{local, Error};

use crate::cli::{AwsArgs, Format};
use crate::commands::encrypt::{check_key_flags, failure, key_for, KeyFlags};
use crate::failure::{from_transfer, Exit, Failure};
use crate::progress::Show;

/// Where keys come from: the key file, or KMS through the AWS configuration
/// (loaded only if asked).
pub struct KeySource<'a> {
    pub key_file: Option<&'a Path>,
    pub aws: &'a AwsArgs,
}

impl KeySource<'_> {
    /// The key file, if given.
    fn key_file(&self) -> Result<Option<Arc<dyn atrest_transfer::KeySource>>> {
        crate::keyring::load_key_file(self.key_file)
    }

    /// KMS, through the AWS configuration.
    async fn kms(&self) -> Result<Arc<dyn atrest_transfer::KeySource>> {
        let clients = crate::aws::clients(self.aws).await?;
        Ok(Arc::new(atrest_kms::CachedKeys::uncached(clients.kms)))
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
    let key_flags = KeyFlags::of(flags);
    check_key_flags(&key_flags, keys.key_file.is_some())?;
    if flags.format == Format::S3ecV3 {
        return Err(Failure::new(
            Exit::Usage,
            "--format s3ec-v3 writes S3 objects (its metadata lives in S3): give an s3:// destination",
        )
        .into());
    }
    let keys_read = [keys.key_file, Some(flags.data_key.as_path())];
    crate::keyring::refuse_output_over_keys(args.out, &keys_read)?;
    let input = atrest_fs::output::open_input(args.file).await?;
    let mut output = Output::create(args.out).await?;
    let source = match keys.key_file()? {
        Some(file) => file,
        None => keys.kms().await?,
    };
    let key = key_for(&key_flags, source.keyring() == Keyring::KeyFile).await?;
    let total = atrest_fs::output::regular_file_len(args.file);
    let progress = args.progress.bar("encrypting", total);
    let input = progress.reader(input);
    let name = args.file.display().to_string();
    let result = async {
        let options = local::EncryptOptions {
            key,
            format: flags.format.engine(),
            frame_exponent: flags
                .frame_size
                .unwrap_or(atrest_format::v2::DEFAULT_FRAME_EXPONENT),
            context: &flags.context,
        };
        local::encrypt(source.as_ref(), options, &name, input, &mut output)
            .await
            .map_err(|e| failure(e, &key_flags))?;
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
    let key_file = keys.key_file()?;
    crate::keyring::refuse_output_over_keys(args.out, &[keys.key_file])?;
    let input = atrest_fs::output::open_input(args.input).await?;
    // Fail on an unwritable destination before anything else.
    let mut output = Output::create(args.out).await?;
    let total = atrest_fs::output::regular_file_len(args.input);
    let progress = args.progress.bar("decrypting", total);
    let input = progress.reader(input);
    let result = async {
        let opened = local::open(&name, input).await.map_err(from_transfer)?;
        // The keyring the header names, before anything else about it.
        let source = match key_file {
            Some(file) => file,
            None => {
                opened.check_keyring(Keyring::Kms).map_err(from_transfer)?;
                keys.kms().await?
            }
        };
        opened
            .check_keyring(source.keyring())
            .map_err(from_transfer)?;
        let v1 = matches!(opened.header(), Header::V1(_));
        if v1 && args.expect_context.is_empty() && crate::stdout::warns(args.quiet) {
            crate::stdout::say_err!(
                "warning: {name} is a v1 object: it is not authenticated, so tampering cannot be detected (re-encrypt it to v2)"
            );
        }
        let done = opened.decrypt(source.as_ref(), args.expect_context, &mut output);
        done.await.map_err(|e| match e {
            e @ Error::Key(_) => match keys.key_file {
                Some(path) => from_transfer(e).context(format!(
                    "cannot decrypt {name} with key file {}",
                    path.display()
                )),
                None => from_transfer(e),
            },
            e @ (Error::Decrypt(_) | Error::Io(_)) => {
                from_transfer(e).context(format!("cannot decrypt {name}"))
            }
            e => from_transfer(e),
        })?;
        Ok(output.commit().await?)
    }
    .await;
    progress.end(result)
}

/// The local-only form of `encrypt` or `decrypt`, if neither side of the
/// command is `s3://`: run before any AWS configuration is loaded.
pub fn from_command(
    cli: &crate::cli::Cli,
    show_progress: bool,
) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>>> {
    use crate::cli::Command;
    use crate::cli::Target;
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
        crate::stdout::say!(
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
        crate::stdout::say_err!(
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
