//! `atrest verify`: flags, listing and the report; the work is
//! `atrest_transfer::verify`.

use std::sync::Arc;

use anyhow::Result;
use atrest_s3::S3Error;
use atrest_transfer::verify::{Verified, Verify, VerifyError, VerifyOptions};
use atrest_transfer::{Kind, Transfer};
use serde_json::json;

use super::{count, failures, Objects, Report, Results};
use crate::failure::Exit;

pub struct Args<'a> {
    pub objects: Objects<'a>,
    pub concurrency: Option<usize>,
    pub part_size: usize,
}

/// Verifies the objects, unwrapping data keys with `keys` (KMS, or the
/// key file of `--key-file`).
pub async fn run(
    keys: Arc<dyn atrest_transfer::KeySource>,
    s3: &aws_sdk_s3::Client,
    args: Args<'_>,
) -> Result<()> {
    let options = VerifyOptions::default()
        .concurrency(args.concurrency)
        .part_size(args.part_size);
    let verify = Verify::new(Transfer::new(s3.clone(), keys), options);
    let objects = &args.objects;
    let mut results = objects
        .run_each(objects.list(s3).await?, async |uri| {
            verify.object(uri).await
        })
        .await;
    objects.leave_out_missing(&mut results, |uri, e| {
        matches!(e, VerifyError::S3(S3Error::NoSuchKey { uri: gone }) if *gone == uri.to_string())
    });
    if !objects.recursive {
        if let Some((_, Err(VerifyError::S3(_)))) = results.first() {
            // Nothing to report about an object that cannot be read at all.
            let Some((_, Err(VerifyError::S3(e)))) = results.into_iter().next() else {
                unreachable!("just matched")
            };
            return Err(e.into());
        }
    }
    report(objects, &results);
    // Exit 0 if every object verified, 4 if any did not.
    super::outcome(&results, Exit::Untrusted, "did not verify")
}

fn kind(v: &Verified) -> &'static str {
    match (v.format, v.shared_data_key) {
        (Kind::V1, _) => "v1",
        (Kind::V2, true) => "v2, shared data key",
        (Kind::V2, false) => "v2, per-object key",
        _ => "S3 Encryption Client",
    }
}

fn report(objects: &Objects<'_>, results: &Results<Verified, VerifyError>) {
    let verified = count(results, |_| true);
    let unauthenticated = count(results, |v| !v.authenticated);
    let failed = failures(results);
    let bytes: u64 = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|v| v.object_len)
        .sum();
    let json = |v: &Verified| {
        json!({
            "status": "verified",
            "format": v.format.name(),
            "authenticated": v.authenticated,
            "shared_data_key": v.shared_data_key,
            "object_len": v.object_len,
            "plaintext_len": v.plaintext_len,
            "kms_key": v.key_id,
        })
    };
    let line = |name: &str, v: &Verified| {
        match v.authenticated {
        true => format!(
            "verified {name} ({}): {} bytes of plaintext, {}",
            kind(v),
            v.plaintext_len,
            match v.format {
                Kind::V2 => "every frame authenticated",
                _ => "its authentication tag matched",
            }
        ),
        false => format!(
            "verified {name} ({}): {} bytes of plaintext, padding valid; v1 is not authenticated, so this cannot really verify it (upgrade it to v2)",
            kind(v),
            v.plaintext_len
        ),
    }
    };
    let report = Report {
        json: &json,
        line: &line,
        totals: json!({
            "verified": verified,
            "unauthenticated": unauthenticated,
            "failed": failed,
            "bytes_verified": bytes,
        }),
        summary: format!(
            "verified {verified} ({unauthenticated} of them v1, unauthenticated), failed {failed}; {bytes} bytes read"
        ),
    };
    objects.report(results, VerifyError::retry, report);
}
