//! `atrest upgrade`: flags, listing and the report; the work is
//! `atrest_transfer::upgrade`.

use std::sync::Arc;

use anyhow::Result;
use atrest_s3::S3Uri;
use atrest_transfer::upgrade::{Upgrade, UpgradeAction, UpgradeError, UpgradeOptions, Upgraded};
use atrest_transfer::{Stop, Transfer};
use futures::StreamExt;
use serde_json::json;

use crate::escape;
use crate::failure::{Exit, Failure};

pub struct Args<'a> {
    pub uri: &'a S3Uri,
    pub key: Option<&'a str>,
    pub recursive: bool,
    pub dry_run: bool,
    pub jobs: usize,
    pub json: bool,
    pub quiet: bool,
    pub select: &'a crate::cli::SelectArgs,
}

type Results = Vec<(S3Uri, Result<Upgraded, UpgradeError>)>;

pub async fn run(
    keys: Arc<atrest_kms::CachedKeys>,
    s3: &aws_sdk_s3::Client,
    args: Args<'_>,
    stop: Stop,
) -> Result<()> {
    let options = UpgradeOptions::default()
        .key(args.key.map(str::to_owned))
        .dry_run(args.dry_run)
        .stop(stop.clone());
    let upgrade = Upgrade::new(Transfer::new(s3.clone(), keys), options);
    let objects = match args.recursive {
        false => vec![args.uri.clone()],
        true => super::objects_under(s3, args.uri, args.select, args.quiet).await?,
    };
    let upgrade = &upgrade;
    let mut results: Results = futures::stream::iter(objects)
        .map(|uri| async move {
            let result = upgrade.object(&uri).await;
            (uri, result)
        })
        .buffer_unordered(args.jobs)
        .collect()
        .await;
    if stop.is_stopped() {
        // Interrupted: the signal is what is reported.
        return Ok(());
    }
    if !args.recursive {
        if let Some((_, Err(_))) = results.first() {
            let (_, result) = results.pop().expect("one");
            return result.map(drop).map_err(into_anyhow);
        }
    }
    results.sort_by(|a, b| a.0.key().cmp(b.0.key()));
    report(&args, &results);
    match results.iter().filter(|(_, r)| r.is_err()).count() {
        0 => Ok(()),
        n => Err(Failure::new(
            Exit::Runtime,
            format!("{n} of {} objects failed", results.len()),
        )
        .into()),
    }
}

/// A single object's error, with the exit code it deserves.
fn into_anyhow(err: UpgradeError) -> anyhow::Error {
    match err {
        UpgradeError::S3(e) => e.into(),
        e @ (UpgradeError::NotAtrest { .. }
        | UpgradeError::Corrupted { .. }
        | UpgradeError::Check { .. }) => {
            Failure::new(Exit::Untrusted, crate::failure::one_line(&e)).into()
        }
        // KMS's error picks the exit code.
        UpgradeError::Key { uri, what, source } => {
            crate::failure::from_transfer(atrest_transfer::Error::Key(source))
                .context(format!("{what} for {uri}"))
        }
        e => e.into(),
    }
}

fn verb(action: UpgradeAction) -> &'static str {
    match action {
        UpgradeAction::Upgraded => "upgraded",
        UpgradeAction::WouldUpgrade => "would upgrade",
        UpgradeAction::Skipped => "skipped",
    }
}

/// One line per object (stdout) and a summary (stderr), or one JSON
/// document on stdout.
fn report(args: &Args<'_>, results: &Results) {
    let count = |a: UpgradeAction| {
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
                    "format": format!("v{}", d.format),
                    "object_len": d.object_len,
                    "new_object_len": d.new_object_len,
                    "plaintext_len": d.plaintext_len,
                    "shared_data_key": d.shared_data_key,
                    "kms_key": d.key_id,
                }),
                Err(e) => super::failed_json(uri, e, e.retry()),
            })
            .collect();
        let summary = json!({
            "dry_run": args.dry_run,
            "objects": objects,
            "upgraded": count(UpgradeAction::Upgraded),
            "would_upgrade": count(UpgradeAction::WouldUpgrade),
            "skipped": count(UpgradeAction::Skipped),
            "failed": failed,
        });
        println!("{summary}");
        return;
    }
    for (uri, r) in results {
        let name = escape(&uri.to_string());
        match r {
            Ok(d) if d.action == UpgradeAction::Skipped => {
                println!("skipped {name}: already v2")
            }
            Ok(d) if d.action == UpgradeAction::WouldUpgrade => {
                println!("would upgrade {name} (v1)")
            }
            Ok(d) => println!(
                "upgraded {name}: v1 -> v2 ({}), {} bytes of plaintext, verified",
                match (d.shared_data_key, &d.key_id) {
                    (true, _) => "shared data key".to_owned(),
                    (false, Some(arn)) => format!("own data key under {}", escape(arn)),
                    (false, None) => "own data key".to_owned(),
                },
                d.plaintext_len.unwrap_or(0),
            ),
            Err(e) => println!("failed {name}: {}", escape(&crate::failure::one_line(e))),
        }
    }
    if !args.quiet && args.recursive {
        let done = match args.dry_run {
            true => format!("would upgrade {}", count(UpgradeAction::WouldUpgrade)),
            false => format!("upgraded {}", count(UpgradeAction::Upgraded)),
        };
        eprintln!(
            "{done}, skipped {} (already v2), failed {failed}",
            count(UpgradeAction::Skipped)
        );
    }
}
