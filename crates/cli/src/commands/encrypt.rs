//! `atrest encrypt`: one file (or stdin) through the transfer engine to an
//! object.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use atrest_format::v2::EncryptionContext;
use atrest_s3::S3Uri;
use atrest_transfer::{DataKeyFrom, Error, Transfer};

use crate::cli::{EncryptArgs, Format, PropertiesArgs, TransferArgs};
use crate::failure::{Exit, Failure};
use crate::interrupt::Interrupt;
use crate::keyring::{read_data_key, Keys};
use crate::progress::Show;

pub struct Encrypt<'a> {
    pub file: &'a Path,
    pub uri: &'a S3Uri,
    pub data_key: &'a Path,
    pub kms_key: Option<&'a str>,
    pub context: &'a [(String, String)],
    pub format: Format,
    /// `--frame-size`, as an exponent; `None`: the default.
    pub frame_exponent: Option<u8>,
    /// Objects smaller than this (bytes) of a known size go up in one PUT.
    pub multipart_threshold: u64,
    /// `--expected-size`: a stream's length, about, to size its parts.
    pub expected_size: Option<u64>,
    pub properties: &'a PropertiesArgs,
    pub transfer: &'a TransferArgs,
    pub progress: Show<'a>,
    /// `--no-overwrite`: write only if no object has the key, so that a
    /// writer that got there after the check is not overwritten either.
    pub create_only: bool,
}

/// A create-only upload found an object at its key: nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("the object exists")]
pub struct Exists;

impl<'a> Encrypt<'a> {
    /// The upload of `file` to `uri` with the command's flags.
    pub fn new(
        file: &'a Path,
        uri: &'a S3Uri,
        args: &'a EncryptArgs,
        transfer: &'a TransferArgs,
        progress: Show<'a>,
    ) -> Self {
        Encrypt {
            file,
            uri,
            data_key: &args.data_key,
            kms_key: args.kms_key.as_deref(),
            context: &args.context,
            format: args.format,
            frame_exponent: args.frame_size,
            multipart_threshold: args.multipart_threshold.unwrap_or(transfer.part_size),
            expected_size: args.expected_size,
            properties: &args.properties,
            transfer,
            progress,
            create_only: false,
        }
    }
}

pub async fn run(
    keys: &Keys,
    s3: &aws_sdk_s3::Client,
    args: Encrypt<'_>,
    interrupt: &Interrupt,
) -> Result<atrest_transfer::Uploaded> {
    args.properties.check()?;
    if args.format == Format::S3ecV3 {
        keys.require_kms("S3 Encryption Client objects")?;
        if args.kms_key.is_none() {
            return Err(Failure::new(
                Exit::Usage,
                "--format s3ec-v3 needs --key KEY_ID: each S3 Encryption Client object carries its own data key, wrapped with its context",
            )
            .into());
        }
        // A missing file fails below, when it is opened, as for any format.
        let exists = atrest_fs::output::is_std_stream(args.file) || args.file.exists();
        if exists && atrest_fs::output::regular_file_len(args.file).is_none() {
            return Err(Failure::new(
                Exit::Usage,
                "--format s3ec-v3 needs a regular file: GCM's 64 GiB limit is checked against its length before anything is uploaded",
            )
            .into());
        }
    }
    let key_flags = args.key_flags();
    check_key_flags(&key_flags, keys.is_key_file())?;
    // Opening (a FIFO) may wait forever: a signal stops it. (A signal
    // during the KMS call stops the upload task below.)
    let open = async { Ok(atrest_fs::output::open_input(args.file).await?) };
    let input = interrupt.guard(open).await?;
    let key = interrupt
        .guard(key_for(&key_flags, keys.is_key_file()))
        .await?;
    // Only a regular file's length (and time) is known before reading it.
    let total = atrest_fs::output::regular_file_len(args.file);
    let modified = total
        .and_then(|_| std::fs::metadata(args.file).ok())
        .and_then(|m| m.modified().ok());
    let progress = args.progress.bar("encrypting", total);
    let transfer = Transfer::new(s3.clone(), keys.source.clone());
    let mut upload = transfer
        .upload(args.uri, key)
        .context(args.context)
        .format(args.format.engine())
        .frame_exponent(
            args.frame_exponent
                .unwrap_or(atrest_format::v2::DEFAULT_FRAME_EXPONENT),
        )
        .part_size(args.transfer.part_size as usize)
        .multipart_threshold(args.multipart_threshold)
        .properties(args.properties.for_file(args.file))
        .create_only(args.create_only)
        // The bar counts what S3 acknowledged.
        .observer(Arc::new(progress.clone()));
    if let Some(modified) = modified {
        upload = upload.modified(modified);
    }
    // A regular file rewritten while it is read is not uploaded as a mix of
    // its old and new bytes.
    if total.is_some() {
        if let Ok(stamp) = atrest_fs::moved::Stamp::of(args.file) {
            upload = upload.unchanged_input(move || stamp.is_unchanged());
        }
    }
    if let Some(parts) = args.transfer.concurrency {
        upload = upload.concurrency(parts as usize);
    }
    match (total, args.expected_size) {
        (Some(len), _) => upload = upload.input_len(len),
        (None, Some(about)) => upload = upload.expected_len(about),
        (None, None) => {}
    }
    let mut handle = upload.start(input);
    // On a signal the upload stops wherever it is, and is aborted.
    let result = tokio::select! {
        result = handle.join() => Some(result),
        _ = interrupt.wait() => None,
    };
    let result = match result {
        Some(Err(Error::InputChanged)) => Err(changed(args.file, args.uri, total, modified)),
        Some(result) => result.map_err(|e| failure(e, &key_flags)),
        None => {
            let got = interrupt.wait().await;
            if handle.abort().await == atrest_transfer::Abandoned::Completed {
                // Not "nothing was uploaded": the signal came too late.
                let uri = crate::escape(&args.uri.to_string());
                crate::stdout::say_err!(
                    "warning: {uri} was written all the same: its upload had completed when the signal came"
                );
            }
            Err(got.into())
        }
    };
    let uploaded = progress.end(result)?;
    tracing::info!(uri = %args.uri, "uploaded");
    Ok(uploaded)
}

/// The upload read other than the `len` bytes `file` had when opened
/// (nothing was uploaded): it changed while it was read, or its size is not
/// its length (files of /proc and /sys say 0 or 4096 whatever they hold).
fn changed(
    file: &Path,
    uri: &S3Uri,
    len: Option<u64>,
    modified: Option<SystemTime>,
) -> anyhow::Error {
    let name = file.display();
    let now = std::fs::metadata(file).ok();
    let message = match now {
        Some(now) if Some(now.len()) == len && now.modified().ok() == modified => format!(
            "cannot encrypt {name}: its size ({} bytes) is not its length (a /proc or /sys file?); give it on stdin: atrest cp - {uri} < {name}",
            now.len()
        ),
        now => format!(
            "cannot encrypt {name}: it changed while it was read ({} bytes when opened, {} now); nothing was uploaded",
            len.unwrap_or(0),
            now.map_or("none".to_owned(), |m| format!("{} bytes", m.len())),
        ),
    };
    Failure::new(Exit::Runtime, message).into()
}

/// The flags that say which data key a new object gets.
pub(crate) struct KeyFlags<'a> {
    pub format: Format,
    /// `--key`.
    pub kms_key: Option<&'a str>,
    /// `--data-key`.
    pub data_key: &'a Path,
    /// `--context`.
    pub context: &'a [(String, String)],
    /// `--frame-size` was given (a v2 setting).
    pub frame_size: bool,
}

impl KeyFlags<'_> {
    /// The key flags as the command line gave them.
    pub(crate) fn of(flags: &crate::cli::EncryptArgs) -> KeyFlags<'_> {
        KeyFlags {
            format: flags.format,
            kms_key: flags.kms_key.as_deref(),
            data_key: &flags.data_key,
            context: &flags.context,
            frame_size: flags.frame_size.is_some(),
        }
    }
}

impl Encrypt<'_> {
    pub(crate) fn key_flags(&self) -> KeyFlags<'_> {
        KeyFlags {
            format: self.format,
            kms_key: self.kms_key,
            data_key: self.data_key,
            context: self.context,
            frame_size: self.frame_exponent.is_some(),
        }
    }
}

/// The key flags' checks that need no I/O, made before the input is
/// opened (`key_file`: `--key-file` is given).
pub(crate) fn check_key_flags(flags: &KeyFlags<'_>, key_file: bool) -> Result<()> {
    if flags.kms_key.is_some_and(|k| k.trim().is_empty()) {
        let why = "--key needs a KMS key (key id, key ARN, alias/NAME or alias ARN)";
        return Err(Failure::new(Exit::Usage, why).into());
    }
    let unframed = match flags.format {
        Format::V1 => Some("v1 objects are one CBC stream"),
        Format::S3ecV3 => Some("S3 Encryption Client objects are one GCM stream"),
        Format::V2 => None,
    };
    if let (true, Some(stream)) = (flags.frame_size, unframed) {
        let why = format!("--frame-size needs --format v2 ({stream}, without frames)");
        return Err(Failure::new(Exit::Usage, why).into());
    }
    let v1_needs_v2 = match (flags.format, key_file, flags.kms_key, flags.context) {
        (Format::V1, true, _, _) => {
            "--key-file needs --format v2 (no other format has a place to record its keyring)"
        }
        (Format::V1, _, _, [_, ..]) => "--context needs --format v2 (v1 has no encryption context)",
        (Format::V1, _, Some(_), _) => "--key needs --format v2 (v1 objects use data.key)",
        // S3 Encryption Client contexts follow that client's rules,
        // checked by the engine; atrest's own prefix is refused as for v2,
        // or `upgrade` could never carry the context into a v2 object.
        (Format::S3ecV3, ..) => {
            let prefix = atrest_format::v2::RESERVED_CONTEXT_PREFIX;
            return match flags.context.iter().find(|(k, _)| k.starts_with(prefix)) {
                None => Ok(()),
                Some((key, _)) => Err(Failure::new(
                    Exit::Usage,
                    format!(
                        "invalid --context: the key `{}` uses the prefix `{prefix}`, which atrest reserves",
                        crate::escape(key)
                    ),
                )
                .into()),
            };
        }
        _ => {
            EncryptionContext::new(flags.context.iter().cloned())
                .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
            return Ok(());
        }
    };
    Err(Failure::new(Exit::Usage, v1_needs_v2).into())
}

/// The data key an object of these flags is made with (after
/// [`check_key_flags`]), reading `--data-key` if it is the shared one.
pub(crate) async fn key_for(flags: &KeyFlags<'_>, key_file: bool) -> Result<DataKeyFrom> {
    Ok(match flags.kms_key {
        // One key file: nothing to name.
        None if key_file => DataKeyFrom::Generate(String::new()),
        Some(kms_key) => DataKeyFrom::Generate(kms_key.to_owned()),
        None => {
            let wrapped = read_data_key(flags.data_key).await?;
            EncryptionContext::new(flags.context.iter().cloned())
                .and_then(|c| c.with_shared_data_key())
                .map_err(|e| Failure::new(Exit::Usage, format!("invalid --context: {e}")))?;
            DataKeyFrom::Wrapped(wrapped.into())
        }
    })
}

/// The engine's error in the command's terms.
pub(crate) fn failure(e: Error, flags: &KeyFlags<'_>) -> anyhow::Error {
    match (e, flags.kms_key) {
        (Error::S3(atrest_s3::S3Error::Exists { .. }), _) => Exists.into(),
        (Error::Header(e), None) if flags.format == Format::V1 => Failure::new(
            Exit::Usage,
            format!("{} is not a data key: {e}", flags.data_key.display()),
        )
        .into(),
        (e @ Error::Key(_), Some(kms_key)) => crate::failure::from_transfer(e)
            .context(format!("cannot create a data key under `{kms_key}`")),
        (e @ Error::Key(_), None) => crate::failure::from_transfer(e)
            .context(format!("cannot unwrap {}", flags.data_key.display())),
        (e, _) => crate::failure::from_transfer(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_changed_while_read_is_told_from_one_whose_size_lies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, b"12345").unwrap();
        let uri = S3Uri::parse("s3://b/log").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let (len, modified) = (Some(meta.len()), meta.modified().ok());
        let lies = changed(&file, &uri, len, modified).to_string();
        assert!(
            lies.contains("its size (5 bytes) is not its length"),
            "{lies}"
        );
        std::fs::write(&file, b"1234567").unwrap();
        let grew = changed(&file, &uri, len, modified).to_string();
        assert!(
            grew.contains("it changed while it was read (5 bytes when opened, 7 bytes now)"),
            "{grew}"
        );
        std::fs::remove_file(&file).unwrap();
        let gone = changed(&file, &uri, len, modified).to_string();
        assert!(gone.contains("(5 bytes when opened, none now)"), "{gone}");
    }
}
