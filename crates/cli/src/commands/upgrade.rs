//! `atrest upgrade`: flags, listing and the report; the work is
//! `atrest_transfer::upgrade`.

use crate::interrupt::unless_stopped;
use std::sync::Arc;

use anyhow::Result;
use atrest_s3::S3Error;
use atrest_transfer::upgrade::{Upgrade, UpgradeAction, UpgradeError, UpgradeOptions, Upgraded};
use atrest_transfer::{Stop, Transfer};
use serde_json::json;

use super::{count, failures, Objects, Report, Results};
use crate::escape;
use crate::failure::{Exit, Failure};

pub struct Args<'a> {
    pub objects: Objects<'a>,
    pub key: Option<&'a str>,
    pub dry_run: bool,
}

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
    let objects = &args.objects;
    let mut results = objects
        .run_each(
            unless_stopped(&stop, objects.list(s3)).await?,
            async |uri| upgrade.object(uri).await,
        )
        .await;
    objects.leave_out_missing(&mut results, |uri, e| {
        matches!(e, UpgradeError::S3(S3Error::NoSuchKey { uri: gone }) if *gone == uri.to_string())
    });
    if stop.is_stopped() {
        // Interrupted: what was done before is reported (objects already
        // rewritten among it), then the signal.
        results.retain(|(_, r)| !matches!(r, Err(UpgradeError::Stopped { .. })));
        report(&args, &results, true);
        return Ok(());
    }
    // With --json the one object's failure has its document too (the
    // error and exit code follow, as without it).
    if objects.json && objects.lone_failed(&results) {
        report(&args, &results, false);
    }
    if let Some(e) = objects.lone_failure(&mut results) {
        return Err(into_anyhow(e));
    }
    report(&args, &results, false);
    super::outcome(&results, Exit::Runtime, "failed")
}

/// A single object's error, with the exit code it deserves.
fn into_anyhow(err: UpgradeError) -> anyhow::Error {
    match err {
        UpgradeError::S3(e) => e.into(),
        e @ (UpgradeError::KeyNeeded { .. } | UpgradeError::ContextNotCarried { .. }) => {
            Failure::new(Exit::Usage, crate::failure::one_line(&e)).into()
        }
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
        // What the engine says of the object picks the code: a context v2
        // cannot hold, a key atrest cannot unwrap (2), a damaged one (4).
        UpgradeError::Other(e) => crate::failure::from_transfer(e),
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

fn report(args: &Args<'_>, results: &Results<Upgraded, UpgradeError>, interrupted: bool) {
    let count = |a: UpgradeAction| count(results, |d| d.action == a);
    let failed = failures(results);
    let json = |d: &Upgraded| {
        json!({
            "status": verb(d.action),
            "format": match d.s3ec {
                true => format!("s3ec-v{}", d.format),
                false => format!("v{}", d.format),
            },
            "object_len": d.object_len,
            "new_object_len": d.new_object_len,
            "plaintext_len": d.plaintext_len,
            // A skipped object's key is not looked at: not said.
            "shared_data_key": (d.action != UpgradeAction::Skipped).then_some(d.shared_data_key),
            "kms_key": d.key_id,
        })
    };
    let from = |d: &Upgraded| match d.s3ec {
        true => format!("S3 Encryption Client V{}", d.format),
        false => "v1".to_owned(),
    };
    let line = |name: &str, d: &Upgraded| match d.action {
        UpgradeAction::Skipped => format!("skipped {name}: already v2"),
        UpgradeAction::WouldUpgrade => format!("would upgrade {name} ({})", from(d)),
        UpgradeAction::Upgraded => format!(
            "upgraded {name}: {} -> v2 ({}), {} bytes of plaintext, verified",
            from(d),
            match (d.shared_data_key, &d.key_id) {
                (true, _) => "shared data key".to_owned(),
                (false, Some(arn)) => format!("own data key under {}", escape(arn)),
                (false, None) => "own data key".to_owned(),
            },
            d.plaintext_len.unwrap_or(0),
        ),
    };
    let done = match args.dry_run {
        true => format!("would upgrade {}", count(UpgradeAction::WouldUpgrade)),
        false => format!("upgraded {}", count(UpgradeAction::Upgraded)),
    };
    let report = Report {
        json: &json,
        line: &line,
        totals: json!({
            "dry_run": args.dry_run,
            "interrupted": interrupted,
            "upgraded": count(UpgradeAction::Upgraded),
            "would_upgrade": count(UpgradeAction::WouldUpgrade),
            "skipped": count(UpgradeAction::Skipped),
            "failed": failed,
        }),
        summary: format!(
            "{done}, skipped {} (already v2), failed {failed}",
            count(UpgradeAction::Skipped)
        ),
    };
    args.objects.report(results, UpgradeError::retry, report);
}
