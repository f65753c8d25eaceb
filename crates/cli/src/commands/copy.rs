//! `atrest cp s3://A s3://B`: objects copied inside S3 as they are (still
//! encrypted, decrypting as before), as `aws s3 cp` copies between S3
//! locations; the work is `atrest_transfer::copy`.

use anyhow::Result;
use atrest_fs::tree::{as_prefix, relative_key, Filter, Rule};
use atrest_s3::S3Uri;
use atrest_transfer::copy::{copy, CopyOptions, MAX_COPY_OBJECT};
use atrest_transfer::moves::delete_read;
use atrest_transfer::Stop;
use futures::StreamExt;

use super::bulk::{dry_run_json, object_json, say_skipped, skipped_json, Transferred};
use crate::cli::{EncryptArgs, TransferArgs};
use crate::escape;
use crate::failure::{one_line, Exit, Failure};
use crate::interrupt::unless_stopped;

/// One copy, or (`recursive`) every object under a prefix.
pub struct Copy<'a> {
    pub from: &'a S3Uri,
    pub to: &'a S3Uri,
    pub recursive: bool,
    pub dry_run: bool,
    /// `--no-overwrite`: leave out copies whose destination exists.
    pub no_overwrite: bool,
    /// Objects copied at once with `recursive`.
    pub jobs: usize,
    pub filters: &'a [Rule],
    pub options: CopyOptions,
    /// A JSON line per copy (and a summary with `recursive`), nothing else.
    pub json: bool,
    /// `mv`: delete each source, as it was copied, once its copy is made.
    pub move_source: bool,
    pub quiet: bool,
    /// `--ignore-glacier-warnings`: archived sources are left out quietly.
    pub ignore_archived: bool,
}

pub async fn run(s3: &aws_sdk_s3::Client, args: Copy<'_>, stop: Stop) -> Result<()> {
    // S3 refuses a copy onto itself that changes nothing; say why at once.
    let unchanged = args.options.storage_class.is_none() && args.options.replace.is_none();
    let onto_itself = |from: &S3Uri, to: &S3Uri| -> Result<()> {
        match unchanged && from == to {
            true => {
                let why = format!("copying {from} onto itself changes nothing: give --storage-class or --metadata-directive REPLACE");
                Err(Failure::new(Exit::Usage, why).into())
            }
            false => Ok(()),
        }
    };
    if args.recursive {
        let prefix = |uri: &S3Uri| uri.with_key(as_prefix(uri.key()));
        onto_itself(&prefix(args.from), &prefix(args.to))?;
    }
    if !args.recursive {
        if args.from.key().is_empty() {
            let why = format!("{} names no object key: give s3://BUCKET/KEY (or --recursive for the whole bucket)", args.from);
            return Err(Failure::new(Exit::Usage, why).into());
        }
        // Into a "directory": the source's base name, as `aws s3 cp`.
        let to = match args.to.key().is_empty() || args.to.key().ends_with('/') {
            true => {
                let name = args.from.key().rsplit('/').next().unwrap_or_default();
                args.to.with_key(format!("{}{name}", args.to.key()))
            }
            false => args.to.clone(),
        };
        if args.move_source && to == *args.from {
            let why = format!("cannot move {to} onto itself");
            return Err(Failure::new(Exit::Usage, why).into());
        }
        onto_itself(args.from, &to)?;
        // As `aws s3 cp --dryrun`: the source must exist (a HEAD).
        let mut len = 0;
        if args.dry_run {
            let head = unless_stopped(&stop, async { Ok(atrest_s3::head(s3, args.from).await?) });
            len = head.await?.len;
        }
        if args.no_overwrite {
            let found = unless_stopped(&stop, async { Ok(atrest_s3::head(s3, &to).await) });
            match found.await? {
                Ok(_) => {
                    let line = Transferred::copy(args.from, &to).moving(args.move_source);
                    say_skipped(&line, args.json, args.quiet);
                    return Ok(());
                }
                Err(atrest_s3::S3Error::NoSuchKey { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pairs = vec![(args.from.clone(), to, len)];
        return run_all(s3, &args, pairs, &stop).await;
    }
    let filter = Filter::new(args.filters)?;
    let (from_prefix, to_prefix) = (as_prefix(args.from.key()), as_prefix(args.to.key()));
    let under = args.from.with_key(from_prefix.clone());
    let all = atrest_transfer::manifest::Shard::ALL;
    let select = atrest_transfer::manifest::select(s3, &under, None, all);
    let selection = unless_stopped(&stop, async {
        select.await.map_err(crate::failure::from_manifest)
    })
    .await?;
    let mut pairs = selection
        .objects
        .iter()
        .filter_map(|o| Some((relative_key(&from_prefix, &o.key, o.size, &filter)?, o.size)))
        .map(|(rel, len)| {
            let from = args.from.with_key(format!("{from_prefix}{rel}"));
            (from, args.to.with_key(format!("{to_prefix}{rel}")), len)
        })
        .collect::<Vec<_>>();
    if args.no_overwrite {
        // One listing, not a HEAD per object.
        let under = args.to.with_key(to_prefix.clone());
        let list = atrest_s3::list(s3, &under);
        let existing: std::collections::HashSet<String> =
            unless_stopped(&stop, async { Ok(list.await?) })
                .await?
                .into_iter()
                .map(|o| o.key)
                .collect();
        let before = pairs.len();
        pairs.retain(|(from, to, _)| {
            let exists = existing.contains(to.key());
            if exists && args.json {
                let line = Transferred::copy(from, to).moving(args.move_source);
                crate::stdout::say!("{}", skipped_json("", Some(&line)));
            }
            !exists
        });
        let skipped = before - pairs.len();
        if skipped > 0 && !args.quiet && !args.json {
            crate::stdout::say_err!(
                "skipped {skipped} that exist at the destination (--no-overwrite)"
            );
        }
    }
    run_all(s3, &args, pairs, &stop).await
}

/// How `--multipart-threshold`, `--part-size`, `--concurrency`,
/// `--storage-class` and `--metadata-directive` make copies (by default:
/// parts above 5 GiB only, the source's properties); replaced properties
/// are checked as an upload's are, before anything is sent.
pub fn options(encrypt: &EncryptArgs, transfer: &TransferArgs) -> Result<CopyOptions> {
    let threshold = encrypt.multipart_threshold.unwrap_or(MAX_COPY_OBJECT);
    let concurrency = transfer.concurrency.map_or(8, |n| n as usize);
    let properties = &encrypt.properties;
    if properties.replaces() {
        properties.check()?;
    }
    Ok(CopyOptions::new(threshold, transfer.part_size, concurrency)
        .storage_class(properties.storage_class.clone())
        .replace(properties.replaces().then(|| properties.for_copy())))
}

/// Copies each pair, `jobs` at a time, a line each as it ends; with
/// `recursive`, a failed copy is counted and the rest go on.
pub async fn run_all(
    s3: &aws_sdk_s3::Client,
    args: &Copy<'_>,
    pairs: Vec<(S3Uri, S3Uri, u64)>,
    stop: &Stop,
) -> Result<()> {
    if args.dry_run {
        for (from, to, len) in &pairs {
            let line = Transferred::copy(from, to).moving(args.move_source);
            if args.json {
                crate::stdout::say!("{}", dry_run_json("", Some(&line), *len));
            } else if !args.quiet {
                crate::stdout::say!("(dryrun) {}", escape(&line.to_string()));
            }
        }
        if args.recursive && args.json {
            let bytes = pairs.iter().map(|p| p.2).sum();
            crate::stdout::say!("{}", summary_json(pairs.len(), bytes, &[]));
        }
        return Ok(());
    }
    let total = pairs.len();
    // Once stopped, no copy begins.
    let begun = futures::stream::iter(pairs).take_while(|_| std::future::ready(!stop.is_stopped()));
    let mut results = begun
        .map(|(from, to, _)| async move {
            let mut done = copy(s3, &from, &to, args.options.clone(), stop)
                .await
                .map_err(anyhow::Error::from);
            if let (true, Ok(copied)) = (args.move_source, &done) {
                let instruction_file = copied.instruction_file.as_deref();
                let delete = delete_read(s3, &from, Some(&copied.etag), instruction_file).await;
                if let Err(e) = delete {
                    let e = anyhow::Error::from(e);
                    done = Err(e.context(format!("copied {from}, but did not delete it")));
                }
            }
            (Transferred::copy(&from, &to).moving(args.move_source), done)
        })
        .buffer_unordered(args.jobs.max(1));
    let (mut copied, mut bytes, mut failed) = (0, 0, Vec::new());
    while let Some((line, done)) = results.next().await {
        if let (true, Err(e)) = (args.ignore_archived, &done) {
            if crate::failure::is_archived(e) {
                continue;
            }
        }
        // Stopped by the signal: not done, and no failure of its own (the
        // run ends with the signal; a rerun copies it).
        let stopped = |e: &anyhow::Error| {
            e.downcast_ref::<atrest_s3::S3Error>()
                .is_some_and(atrest_transfer::copy::was_stopped)
        };
        if args.recursive && done.as_ref().is_err_and(stopped) {
            continue;
        }
        if args.json {
            let len = done.as_ref().map(|c| c.len);
            crate::stdout::say!("{}", object_json("", Some(&line), len));
        }
        match done {
            Ok(c) => {
                copied += 1;
                bytes += c.len;
                if !args.quiet && !args.json {
                    crate::stdout::say!("{}", escape(&line.to_string()));
                }
            }
            // One object: its own error, with its own exit code.
            Err(e) if !args.recursive => return Err(e),
            Err(e) => {
                if !args.json {
                    crate::stdout::say_err!(
                        "failed: {}: {}",
                        escape(&line.from),
                        escape(&one_line(e.as_ref()))
                    );
                }
                failed.push(serde_json::json!({"path": line.from, "error": format!("{e:#}")}));
            }
        }
    }
    if args.recursive && args.json {
        crate::stdout::say!("{}", summary_json(copied, bytes, &failed));
    } else if args.recursive && !args.quiet {
        let objects = super::count_of(copied, "object");
        let failed = failed.len();
        let verb = if args.move_source { "moved" } else { "copied" };
        crate::stdout::say_err!("{verb} {objects} ({bytes} bytes) inside S3, {failed} failed");
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(Failure::new(Exit::Runtime, format!("{n} of {total} objects failed")).into()),
    }
}

/// The `--json` summary line of copies: objects and bytes copied (or that
/// a dry run would copy), and the failures.
fn summary_json(objects: usize, bytes: u64, failed: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({"type": "summary", "objects": objects, "bytes": bytes, "failed": failed})
}
