//! `atrest decrypt`: one object through the transfer engine into a file
//! (a temporary one, renamed into place on success) or to stdout.

use std::path::Path;
use std::sync::Arc;

use crate::keyring::Keys;
use anyhow::{Context, Result};
use atrest_format::s3ec::INSTRUCTION_SUFFIX;
use atrest_s3::S3Uri;
use atrest_transfer::list::group_key;
use atrest_transfer::{Error, Observer, PlainRange, Sink, Transfer, Warning};

use crate::failure::{Exit, Failure};
use crate::progress::{Progress, Show};
use atrest_fs::Output;

pub struct Decrypt<'a> {
    pub uri: &'a S3Uri,
    pub file: &'a Path,
    pub expect_context: &'a [(String, String)],
    pub range: Option<PlainRange>,
    /// Also the S3 Encryption Client's unauthenticated modes.
    pub allow_legacy: bool,
    /// `None`: the engine's defaults (more streams in order than into a
    /// file).
    pub concurrency: Option<usize>,
    pub part_size: usize,
    pub quiet: bool,
    pub progress: Show<'a>,
}

pub async fn run(
    keys: &Keys,
    s3: &aws_sdk_s3::Client,
    args: Decrypt<'_>,
) -> Result<atrest_transfer::Downloaded> {
    // Fail on an unwritable destination before any network traffic.
    let mut output = Output::create(args.file).await?;
    let progress = args.progress.pending("decrypting");
    let result = async {
        let transfer = Transfer::new(s3.clone(), keys.source.clone());
        let observer = Arc::new(Shown {
            progress: progress.clone(),
            quiet: args.quiet,
        });
        let mut download = transfer
            .download(args.uri)
            .expect_context(args.expect_context)
            .part_size(args.part_size)
            .allow_legacy(args.allow_legacy)
            .observer(observer);
        if let Some(range) = args.range {
            download = download.range(range);
        }
        if let Some(streams) = args.concurrency {
            download = download.concurrency(streams);
        }
        let done = match output.positional()? {
            // The engine's writes at offsets do not know the file's name
            // (`Output`'s own writes say it).
            Some(file) => download
                .into_file(file)
                .await
                .map_err(|e| naming_writes(e, args.file)),
            None => download.into_sink(Sink::Ordered(&mut output)).await,
        };
        let done = done
            .map_err(|e| failure(e, &args))
            .with_context(|| format!("cannot decrypt {}", args.uri))?;
        // The file gets the source's time, as the AWS CLI gives a download
        // its object's.
        output.set_modified(done.source_modified);
        output.commit().await?;
        Ok::<_, anyhow::Error>(done)
    }
    .await;
    let done = progress.end(result)?;
    tracing::info!(uri = %args.uri, "decrypted");
    Ok(done)
}

/// An I/O error of a download into `file`, saying that it was writing
/// `file`.
fn naming_writes(e: Error, file: &Path) -> Error {
    match e {
        Error::Io(io) => Error::Io(std::io::Error::new(
            io.kind(),
            format!("cannot write {}: {io}", file.display()),
        )),
        e => e,
    }
}

/// The engine's error in the command's terms.
fn failure(e: Error, args: &Decrypt<'_>) -> anyhow::Error {
    match e {
        Error::RangeNeedsV2 { uri } => Failure::new(
            Exit::Usage,
            format!("{uri} is a v1 object: --range needs a v2 object"),
        )
        .into(),
        Error::RangeOutside {
            range,
            plaintext_len,
        } => Failure::new(
            Exit::Usage,
            format!("--range {range} is outside the plaintext ({plaintext_len} bytes)"),
        )
        .into(),
        Error::ObjectChanged { .. } => {
            let stream = atrest_fs::output::is_std_stream(args.file)
                || atrest_fs::output::names_descriptor(args.file);
            let left = match stream {
                false => "nothing was written",
                true => "the output is incomplete",
            };
            Failure::new(Exit::Runtime, format!("{e}; {left}")).into()
        }
        Error::NotAtrest(_) if args.uri.key().ends_with(INSTRUCTION_SUFFIX) => {
            let object = args.uri.with_key(group_key(args.uri.key()));
            Failure::new(
                Exit::Untrusted,
                format!("not an atrest object: by its name, the S3 Encryption Client instruction file of {object}, which decrypting {object} reads"),
            )
            .into()
        }
        e => crate::failure::from_transfer(e),
    }
}

/// The progress bar, and the warnings on stderr (unless `--quiet`).
struct Shown {
    progress: Progress,
    quiet: bool,
}

impl Observer for Shown {
    fn total(&self, bytes: u64) {
        self.progress.set_total(bytes);
    }

    fn done(&self, bytes: u64) {
        self.progress.inc(bytes);
    }

    fn warning(&self, warning: &Warning) {
        if !crate::stdout::warns(self.quiet) {
            return;
        }
        let line = match warning {
            Warning::Unauthenticated { .. } => {
                format!("{warning} (`atrest upgrade` re-encrypts it as v2)")
            }
            _ => warning.to_string(),
        };
        // Object keys are untrusted text.
        crate::stdout::say_err!("warning: {}", crate::escape(&line));
    }
}
