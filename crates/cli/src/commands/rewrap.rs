//! `atrest rewrap` and `atrest rewrap-data-key`: flags, listing and the
//! report; the work is `atrest_transfer::rewrap`.

use std::path::Path;

use anyhow::{Context, Result};
use atrest_kms::Kms;
use atrest_s3::S3Uri;
use atrest_transfer::rewrap::{Action, Rewrap, RewrapError, RewrapOptions, Rewrapped};
use futures::StreamExt;
use serde_json::json;

use crate::escape;
use crate::failure::{Exit, Failure};

pub struct Args<'a> {
    pub uri: &'a S3Uri,
    pub to_key: &'a str,
    pub recursive: bool,
    pub dry_run: bool,
    pub jobs: usize,
    pub context: &'a [(String, String)],
    pub json: bool,
    pub quiet: bool,
    pub select: &'a crate::cli::SelectArgs,
}

pub async fn run(
    kms: &Kms,
    s3: &aws_sdk_s3::Client,
    args: Args<'_>,
    stop: atrest_transfer::Stop,
) -> Result<()> {
    let options = RewrapOptions::new(args.to_key)
        .stop(stop.clone())
        .dry_run(args.dry_run)
        .context((!args.context.is_empty()).then(|| args.context.to_vec()));
    let rewrap = Rewrap::new(s3.clone(), kms.clone(), options);
    if !args.recursive {
        let result = rewrap.object(args.uri).await;
        if let Ok(done) = &result {
            report(&args, &[(args.uri.clone(), Ok(done.clone()))], &rewrap);
        }
        return result.map(drop).map_err(into_anyhow);
    }
    let objects = super::objects_under(s3, args.uri, args.select, args.quiet).await?;
    let rewrap = &rewrap;
    let mut results: Vec<(S3Uri, Result<Rewrapped, RewrapError>)> = futures::stream::iter(objects)
        .map(|uri| async move {
            let result = rewrap.object(&uri).await;
            (uri, result)
        })
        .buffer_unordered(args.jobs)
        .collect()
        .await;
    if stop.is_stopped() {
        // Interrupted: the signal is what is reported.
        return Ok(());
    }
    results.sort_by(|a, b| a.0.key().cmp(b.0.key()));
    report(&args, &results, rewrap);
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    match failed {
        0 => Ok(()),
        n => Err(Failure::new(
            Exit::Runtime,
            format!("{n} of {} objects failed", results.len()),
        )
        .into()),
    }
}

/// The error as the CLI reports it, with the exit code it deserves.
fn into_anyhow(err: RewrapError) -> anyhow::Error {
    match err {
        RewrapError::S3(e) => e.into(),
        e @ RewrapError::NotAtrest { .. } => Failure::new(Exit::Untrusted, e.to_string()).into(),
        e @ RewrapError::ContextChange { .. } => Failure::new(Exit::Usage, e.to_string()).into(),
        e => e.into(),
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Rewrapped => "rewrapped",
        Action::WouldRewrap => "would rewrap",
        Action::Skipped => "skipped",
    }
}

/// One line per object (stdout) and a summary (stderr), or one JSON
/// document on stdout.
fn report(args: &Args<'_>, results: &[(S3Uri, Result<Rewrapped, RewrapError>)], rewrap: &Rewrap) {
    let totals = rewrap.totals();
    let count = |a: Action| {
        results
            .iter()
            .filter(|(_, r)| r.as_ref().is_ok_and(|d| d.action == a))
            .count()
    };
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        let objects: Vec<_> = results
            .iter()
            .map(|(uri, r)| match r {
                Ok(d) => json!({
                    "object": uri.to_string(),
                    "status": verb(d.action),
                    "version": d.version,
                    "shared_data_key": d.shared_data_key,
                    "from_key": d.from_key,
                    "to_key": d.to_key,
                    "multipart": d.multipart,
                    "bytes_downloaded": d.traffic.downloaded,
                    "bytes_uploaded": d.traffic.uploaded,
                    "bytes_copied_server_side": d.traffic.copied,
                    "kms_calls": d.traffic.kms_calls,
                }),
                Err(e) => super::failed_json(uri, e, e.retry()),
            })
            .collect();
        let summary = json!({
            "dry_run": args.dry_run,
            "objects": objects,
            "rewrapped": count(Action::Rewrapped),
            "would_rewrap": count(Action::WouldRewrap),
            "skipped": count(Action::Skipped),
            "failed": failed,
            "bytes_downloaded": totals.downloaded,
            "bytes_uploaded": totals.uploaded,
            "bytes_copied_server_side": totals.copied,
            "kms_calls": totals.kms_calls,
        });
        println!("{summary}");
        return;
    }
    for (uri, r) in results {
        let name = escape(&uri.to_string());
        match r {
            Ok(d) => {
                let key = |k: &Option<String>| k.clone().unwrap_or_else(|| "?".into());
                let kind = match (d.version, d.shared_data_key) {
                    (1, _) => "v1",
                    (_, true) => "v2, shared data key",
                    _ => "v2, per-object key",
                };
                match d.action {
                    Action::Skipped => println!(
                        "skipped {name} ({kind}): already under {}",
                        escape(&d.to_key)
                    ),
                    action => println!(
                        "{} {name} ({kind}): {} -> {}; {} bytes uploaded, {} copied inside S3",
                        verb(action),
                        escape(&key(&d.from_key)),
                        escape(&d.to_key),
                        d.traffic.uploaded,
                        d.traffic.copied,
                    ),
                }
            }
            Err(e) => println!("failed {name}: {}", escape(&crate::failure::one_line(e))),
        }
    }
    if !args.quiet && args.recursive {
        let done = match args.dry_run {
            true => format!("would rewrap {}", count(Action::WouldRewrap)),
            false => format!("rewrapped {}", count(Action::Rewrapped)),
        };
        eprintln!(
            "{done}, skipped {}, failed {failed}; {} bytes uploaded, {} bytes copied inside S3, {} bytes downloaded; {} KMS calls",
            count(Action::Skipped),
            totals.uploaded,
            totals.copied,
            totals.downloaded,
            totals.kms_calls,
        );
    }
}

/// `rewrap-data-key`: ReEncrypt of the data.key blob (no context, as
/// `create-data-key` made it), written back atomically with mode 0600.
pub async fn data_key(kms: &Kms, to_key: &str, path: &Path, quiet: bool) -> Result<()> {
    let wrapped = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let re = atrest_transfer::rewrap::rewrap_data_key(kms, &wrapped, to_key)
        .await
        .with_context(|| format!("cannot re-wrap {} under `{to_key}`", path.display()))?;
    if re.is_same_key() {
        if !quiet {
            eprintln!(
                "{} is already wrapped under {}: left as it is",
                path.display(),
                re.key_id
            );
        }
        return Ok(());
    }
    crate::files::write_atomically(path, &re.wrapped)?;
    if !quiet {
        eprintln!(
            "re-wrapped {}: {} -> {}",
            path.display(),
            re.source_key_id.as_deref().unwrap_or("?"),
            re.key_id
        );
    }
    Ok(())
}
