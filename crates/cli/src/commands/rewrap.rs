//! `atrest rewrap` and `atrest rewrap-data-key`: flags, listing and the
//! report; the work is `atrest_transfer::rewrap`.

use crate::interrupt::unless_stopped;
use std::path::Path;

use anyhow::{Context, Result};
use atrest_kms::Kms;
use atrest_s3::S3Error;
use atrest_transfer::rewrap::{Action, Rewrap, RewrapError, RewrapOptions, Rewrapped};
use serde_json::json;

use super::{count, count_of, failures, Objects, Report, Results};
use crate::escape;
use crate::failure::{Exit, Failure};

pub struct Args<'a> {
    pub objects: Objects<'a>,
    pub to_key: &'a str,
    pub dry_run: bool,
    pub context: &'a [(String, String)],
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
    let objects = &args.objects;
    let mut results = objects
        .run_each(
            unless_stopped(&stop, objects.list(s3)).await?,
            async |uri| rewrap.object(uri).await,
        )
        .await;
    objects.leave_out_missing(&mut results, |uri, e| {
        matches!(e, RewrapError::S3(S3Error::NoSuchKey { uri: gone }) if *gone == uri.to_string())
    });
    if stop.is_stopped() {
        // Interrupted: what was done before is reported (objects already
        // rewritten among it), then the signal.
        results.retain(|(_, r)| !matches!(r, Err(RewrapError::Stopped { .. })));
        report(&args, &results, &rewrap, true);
        return Ok(());
    }
    // With --json the one object's failure has its document too (the
    // error and exit code follow, as without it).
    if objects.json && objects.lone_failed(&results) {
        report(&args, &results, &rewrap, false);
    }
    if let Some(e) = objects.lone_failure(&mut results) {
        return Err(into_anyhow(e));
    }
    report(&args, &results, &rewrap, false);
    super::outcome(&results, Exit::Runtime, "failed")
}

/// The error as the CLI reports it, with the exit code it deserves.
fn into_anyhow(err: RewrapError) -> anyhow::Error {
    match err {
        RewrapError::S3(e) => e.into(),
        e @ (RewrapError::NotAtrest { .. } | RewrapError::S3ecWrap { .. }) => {
            Failure::new(Exit::Untrusted, e.to_string()).into()
        }
        e @ (RewrapError::ContextChange { .. } | RewrapError::KeyFile { .. }) => {
            Failure::new(Exit::Usage, e.to_string()).into()
        }
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

fn report(
    args: &Args<'_>,
    results: &Results<Rewrapped, RewrapError>,
    rewrap: &Rewrap,
    interrupted: bool,
) {
    let totals = rewrap.totals();
    let count = |a: Action| count(results, |d| d.action == a);
    let failed = failures(results);
    let json = |d: &Rewrapped| {
        json!({
            "status": verb(d.action),
            // As `ls --json` and `verify --json` name them.
            "format": if d.s3ec { "s3ec".to_owned() } else { format!("v{}", d.version) },
            "version": d.version,
            "shared_data_key": d.shared_data_key,
            "from_key": d.from_key,
            "to_key": d.to_key,
            "multipart": d.multipart,
            "bytes_downloaded": d.traffic.downloaded,
            "bytes_uploaded": d.traffic.uploaded,
            "bytes_copied_server_side": d.traffic.copied,
            "kms_calls": d.traffic.kms_calls,
        })
    };
    let line = |name: &str, d: &Rewrapped| {
        let kind = match (d.s3ec, d.version, d.shared_data_key) {
            (true, v, _) => format!("S3 Encryption Client V{v}"),
            (false, 1, _) => "v1".into(),
            (false, _, true) => "v2, shared data key".into(),
            _ => "v2, per-object key".into(),
        };
        match d.action {
            Action::Skipped => format!(
                "skipped {name} ({kind}): already under {}",
                escape(&d.to_key)
            ),
            action => format!(
                "{} {name} ({kind}): {} -> {}; {} bytes uploaded, {} copied inside S3",
                verb(action),
                escape(d.from_key.as_deref().unwrap_or("?")),
                escape(&d.to_key),
                d.traffic.uploaded,
                d.traffic.copied,
            ),
        }
    };
    let done = match args.dry_run {
        true => format!("would rewrap {}", count(Action::WouldRewrap)),
        false => format!("rewrapped {}", count(Action::Rewrapped)),
    };
    let report = Report {
        json: &json,
        line: &line,
        totals: json!({
            "dry_run": args.dry_run,
            "interrupted": interrupted,
            "rewrapped": count(Action::Rewrapped),
            "would_rewrap": count(Action::WouldRewrap),
            "skipped": count(Action::Skipped),
            "failed": failed,
            "bytes_downloaded": totals.downloaded,
            "bytes_uploaded": totals.uploaded,
            "bytes_copied_server_side": totals.copied,
            "kms_calls": totals.kms_calls,
        }),
        summary: format!(
            "{done}, skipped {}, failed {failed}; {} bytes uploaded, {} bytes copied inside S3, {} bytes downloaded; {}",
            count(Action::Skipped),
            totals.uploaded,
            totals.copied,
            totals.downloaded,
            count_of(totals.kms_calls as usize, "KMS call"),
        ),
    };
    args.objects.report(results, RewrapError::retry, report);
}

/// `rewrap-data-key`: ReEncrypt of the data.key blob (no context, as
/// `create-data-key` made it), written back atomically with mode 0600.
pub async fn data_key(kms: &Kms, to_key: &str, path: &Path, quiet: bool) -> Result<()> {
    let wrapped = crate::keyring::read_data_key(path).await?;
    let re = atrest_transfer::rewrap::rewrap_data_key(kms, &wrapped, to_key)
        .await
        .with_context(|| format!("cannot re-wrap {} under `{to_key}`", path.display()))?;
    if re.is_same_key() {
        if !quiet {
            crate::stdout::say_err!(
                "{} is already wrapped under {}: left as it is",
                path.display(),
                re.key_id
            );
        }
        return Ok(());
    }
    crate::keyring::write_data_key(path, re.wrapped).await?;
    if !quiet {
        crate::stdout::say_err!(
            "re-wrapped {}: {} -> {}",
            path.display(),
            re.source_key_id.as_deref().unwrap_or("?"),
            re.key_id
        );
    }
    Ok(())
}
