//! `atrest verify`: flags, listing and the report; the work is
//! `atrest_transfer::verify`.

use std::sync::Arc;

use anyhow::Result;
use atrest_s3::S3Uri;
use atrest_transfer::verify::{Verified, Verify, VerifyError, VerifyOptions};
use atrest_transfer::{Kind, Transfer};
use futures::StreamExt;
use serde_json::json;

use crate::escape;
use crate::failure::{Exit, Failure};

pub struct Args<'a> {
    pub uri: &'a S3Uri,
    pub recursive: bool,
    pub jobs: usize,
    pub concurrency: Option<usize>,
    pub part_size: usize,
    pub json: bool,
    pub quiet: bool,
    pub select: &'a crate::cli::SelectArgs,
}

type Results = Vec<(S3Uri, Result<Verified, VerifyError>)>;

pub async fn run(
    keys: Arc<atrest_kms::CachedKeys>,
    s3: &aws_sdk_s3::Client,
    args: Args<'_>,
) -> Result<()> {
    let options = VerifyOptions::default()
        .concurrency(args.concurrency)
        .part_size(args.part_size);
    let verify = Verify::new(Transfer::new(s3.clone(), keys), options);
    if !args.recursive {
        let result = verify.object(args.uri).await;
        match result {
            // Nothing to report about an object that cannot be read at all.
            Err(VerifyError::S3(e)) => return Err(e.into()),
            result => {
                let results = vec![(args.uri.clone(), result)];
                report(&args, &results);
                return outcome(&results);
            }
        }
    }
    let objects = super::objects_under(s3, args.uri, args.select, args.quiet).await?;
    let verify = &verify;
    let mut results: Results = futures::stream::iter(objects)
        .map(|uri| async move {
            let result = verify.object(&uri).await;
            (uri, result)
        })
        .buffer_unordered(args.jobs)
        .collect()
        .await;
    results.sort_by(|a, b| a.0.key().cmp(b.0.key()));
    report(&args, &results);
    outcome(&results)
}

/// Exit 0 if every object verified, 4 if any did not.
fn outcome(results: &Results) -> Result<()> {
    match results.iter().filter(|(_, r)| r.is_err()).count() {
        0 => Ok(()),
        n => Err(Failure::new(
            Exit::Untrusted,
            format!("{n} of {} objects did not verify", results.len()),
        )
        .into()),
    }
}

fn kind(v: &Verified) -> &'static str {
    match (v.format, v.shared_data_key) {
        (Kind::V1, _) => "v1",
        (Kind::V2, true) => "v2, shared data key",
        (Kind::V2, false) => "v2, per-object key",
        _ => "S3 Encryption Client",
    }
}

/// One line per object (stdout) and a summary (stderr), or one JSON
/// document on stdout.
fn report(args: &Args<'_>, results: &Results) {
    let verified = results.iter().filter(|(_, r)| r.is_ok()).count();
    let unauthenticated = results
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|v| !v.authenticated))
        .count();
    let failed = results.len() - verified;
    let bytes: u64 = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|v| v.object_len)
        .sum();
    if args.json {
        let objects: Vec<_> = results
            .iter()
            .map(|(uri, r)| match r {
                Ok(v) => json!({
                    "object": uri.to_string(),
                    "status": "verified",
                    "format": v.format.name(),
                    "authenticated": v.authenticated,
                    "shared_data_key": v.shared_data_key,
                    "object_len": v.object_len,
                    "plaintext_len": v.plaintext_len,
                    "kms_key": v.key_id,
                }),
                Err(e) => super::failed_json(uri, e, e.retry()),
            })
            .collect();
        let summary = json!({
            "objects": objects,
            "verified": verified,
            "unauthenticated": unauthenticated,
            "failed": failed,
            "bytes_verified": bytes,
        });
        println!("{summary}");
        return;
    }
    for (uri, r) in results {
        let name = escape(&uri.to_string());
        match r {
            Ok(v) if v.authenticated => println!(
                "verified {name} ({}): {} bytes of plaintext, {}",
                kind(v),
                v.plaintext_len,
                match v.format {
                    Kind::V2 => "every frame authenticated",
                    _ => "its authentication tag matched",
                }
            ),
            Ok(v) => println!(
                "verified {name} ({}): {} bytes of plaintext, padding valid; v1 is not authenticated, so this cannot really verify it (upgrade it to v2)",
                kind(v),
                v.plaintext_len
            ),
            Err(e) => println!("failed {name}: {}", escape(&crate::failure::one_line(e))),
        }
    }
    if !args.quiet && args.recursive {
        eprintln!(
            "verified {verified} ({unauthenticated} of them v1, unauthenticated), failed {failed}; {bytes} bytes read"
        );
    }
}
