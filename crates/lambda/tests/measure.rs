//! Per-object figures for docs/SCALE.md's cost model: S3 requests by
//! operation, KMS calls, bytes through the function, and the handler's
//! time per object, for `encrypt`, `rewrap` and `verify` tasks against the local
//! endpoint. Not a test of behaviour (batch.rs is): run it by hand,
//!
//!     cargo xtask test --no-lint -- -p atrest-lambda --test measure -- --ignored --nocapture
//!
//! Request and KMS counts are exact and the same against AWS; times are
//! this machine against moto (no network latency), so they bound the CPU
//! a task needs, not its duration in AWS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use atrest_lambda::{BatchEvent, Handler, Limits, ResultCode};
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use futures::StreamExt;
use serde_json::json;

/// Counts requests by operation (from the config bag's metadata).
#[derive(Clone, Debug, Default)]
struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "Counter"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "?".into());
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

const OBJECTS: usize = 200;

#[test]
#[ignore = "a measurement for docs/SCALE.md, run by hand"]
fn per_object_figures() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let endpoint = std::env::var("ATREST_TEST_ENDPOINT").expect("run under cargo xtask test");
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        let s3_counter = Counter::default();
        let kms_counter = Counter::default();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .interceptor(s3_counter.clone())
                .build(),
        );
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&config)
                .interceptor(kms_counter.clone())
                .build(),
        );
        let bucket = format!("atrest-measure-{}", std::process::id());
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let a = kms.create_key().send().await.unwrap();
        let a = a.key_metadata().unwrap().arn().unwrap().to_owned();
        let b = kms.create_key().send().await.unwrap();
        let b = b.key_metadata().unwrap().arn().unwrap().to_owned();
        let handler = Handler::new(s3.clone(), atrest_kms::Kms::new(kms.clone()), Limits::default());

        for size in [1024usize, 1 << 20, 16 << 20] {
            let keys: Vec<String> = (0..OBJECTS).map(|i| format!("s{size}/o{i}")).collect();
            let count = if size > 1 << 20 { 10 } else { OBJECTS };
            let keys = &keys[..count];
            let body = vec![7u8; size];
            futures::stream::iter(keys)
                .map(|k| {
                    let (s3, bucket, body) = (&s3, &bucket, body.clone());
                    async move {
                        s3.put_object().bucket(bucket).key(k).body(body.into()).send().await.unwrap();
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
            for (op, args) in [
                ("encrypt", json!({"operation": "encrypt", "kmsKey": a})),
                ("rewrap", json!({"operation": "rewrap", "toKey": b})),
                ("verify", json!({"operation": "verify"})),
            ] {
                s3_counter.0.lock().unwrap().clear();
                kms_counter.0.lock().unwrap().clear();
                let mut times = Vec::new();
                for (i, k) in keys.iter().enumerate() {
                    let event: BatchEvent = serde_json::from_value(json!({
                        "invocationSchemaVersion": "2.0",
                        "invocationId": format!("m{i}"),
                        "job": {"id": "measure", "userArguments": args},
                        "tasks": [{"taskId": "t", "s3Bucket": bucket, "s3Key": k, "s3VersionId": null}],
                    }))
                    .unwrap();
                    let started = Instant::now();
                    let response = handler.handle(event).await;
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    assert_eq!(response.results[0].result_code, ResultCode::Succeeded, "{response:?}");
                }
                times.sort_by(|x, y| x.partial_cmp(y).unwrap());
                let per = |c: &Counter| -> String {
                    c.0.lock()
                        .unwrap()
                        .iter()
                        .map(|(op, n)| format!("{op} {:.2}", *n as f64 / count as f64))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                println!(
                    "{op} {size} B x{count}: median {:.1} ms/object; S3 per object: {}; KMS per object: {}",
                    times[times.len() / 2],
                    per(&s3_counter),
                    per(&kms_counter),
                );
            }
        }
    });
}
