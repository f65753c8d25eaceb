//! The handler driven by event JSON against the local endpoint. moto has
//! no S3 Batch Operations, so the test plays Batch's part: it splits a
//! manifest into invocations, sends them a few at a time as Lambda would,
//! retries what came back TemporaryFailure, and checks the results and
//! every object.
//!
//! A temporary failure is made real, not mocked: an interceptor on the S3
//! client sends the requests for one key to a closed port while "broken",
//! so the handler sees the connection failures it would see in AWS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use atrest_lambda::{BatchEvent, BatchResponse, Handler, Limits, ResultCode, TaskResult};
use atrest_s3::S3Uri;
use atrest_transfer::Transfer;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

const OBJECTS: usize = 1000;
const PER_INVOCATION: usize = 10;
const BROKEN: usize = 500;
const S3EC_BODY: &[u8] = b"CIPHERTEXT-OF-S3EC-0123456789";

/// Sends the requests naming `key` to a closed port while `on`.
#[derive(Debug)]
struct Breaker {
    key: String,
    dead_port: u16,
    on: Arc<AtomicBool>,
}

impl Intercept for Breaker {
    fn name(&self) -> &'static str {
        "Breaker"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if self.on.load(Ordering::SeqCst) && request.uri().contains(&self.key) {
            let uri = format!("http://127.0.0.1:{}/", self.dead_port);
            request.set_uri(uri)?;
        }
        Ok(())
    }
}

struct World {
    bucket: String,
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    key_arn: String,
    broken: Arc<AtomicBool>,
    handler: Handler,
}

/// The SDK's configuration for a local endpoint, with test credentials.
async fn config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

async fn world(broken_key: &str) -> Option<World> {
    let Ok(endpoint) = std::env::var("ATREST_TEST_ENDPOINT") else {
        eprintln!("ATREST_TEST_ENDPOINT is not set: skipping (run `cargo xtask test`)");
        return None;
    };
    let config = config(&endpoint).await;
    // A port nothing listens on: bound, then released.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broken = Arc::new(AtomicBool::new(false));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .interceptor(Breaker {
                key: broken_key.to_owned(),
                dead_port,
                on: Arc::clone(&broken),
            })
            .build(),
    );
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms.create_key().send().await.unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let bucket = format!("atrest-lambda-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let handler = Handler::new(
        s3.clone(),
        atrest_kms::Kms::new(kms.clone()),
        Limits::default(),
    );
    Some(World {
        bucket,
        s3,
        kms,
        key_arn,
        broken,
        handler,
    })
}

impl World {
    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().to_vec()
    }

    async fn etag(&self, key: &str) -> String {
        let out = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.e_tag().unwrap().to_owned()
    }

    /// One invocation, through JSON both ways as Lambda carries it.
    async fn invoke(
        &self,
        id: &str,
        arguments: &serde_json::Value,
        tasks: &[Task],
    ) -> Vec<TaskResult> {
        self.invoke_schema("2.0", id, arguments, tasks).await
    }

    async fn invoke_schema(
        &self,
        schema: &str,
        id: &str,
        arguments: &serde_json::Value,
        tasks: &[Task],
    ) -> Vec<TaskResult> {
        let event = json!({
            "invocationSchemaVersion": schema,
            "invocationId": format!("inv-{id}"),
            "job": {"id": "job-1", "userArguments": arguments},
            "tasks": tasks.iter().map(|t| json!({
                "taskId": t.id,
                "s3Bucket": self.bucket,
                "s3Key": encode(&t.key),
                "s3VersionId": null,
            })).collect::<Vec<_>>(),
        });
        let results = self.run(&self.handler, event).await;
        for (task, result) in tasks.iter().zip(&results) {
            assert_eq!(result.task_id, task.id);
        }
        results
    }

    /// One invocation of `handler` with this event, through JSON both ways;
    /// the response echoes the event's id and schema and answers each task.
    async fn run(&self, handler: &Handler, event: serde_json::Value) -> Vec<TaskResult> {
        let event: BatchEvent = serde_json::from_str(&event.to_string()).unwrap();
        let (id, schema, tasks) = (
            event.invocation_id.clone(),
            event.invocation_schema_version.clone(),
            event.tasks.len(),
        );
        let response = handler.handle(event).await;
        let response: BatchResponse =
            serde_json::from_str(&serde_json::to_string(&response).unwrap()).unwrap();
        assert_eq!(response.invocation_id, id);
        assert_eq!(response.invocation_schema_version, schema);
        assert_eq!(response.results.len(), tasks);
        response.results
    }

    /// Tasks naming objects of `bucket`, each `(key, version)`, run by
    /// `handler` under `arguments`.
    async fn tasks_in(
        &self,
        handler: &Handler,
        bucket: &str,
        arguments: &serde_json::Value,
        tasks: &[(&str, Option<&str>)],
    ) -> Vec<TaskResult> {
        let event = json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv",
            "job": {"id": "job-1", "userArguments": arguments},
            "tasks": tasks.iter().enumerate().map(|(i, (key, version))| json!({
                "taskId": format!("t{i}"),
                "s3Bucket": bucket,
                "s3Key": encode(key),
                "s3VersionId": version,
            })).collect::<Vec<_>>(),
        });
        self.run(handler, event).await
    }

    /// `body` uploaded as an atrest object of `format` under the test key.
    async fn put_atrest(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        format: atrest_transfer::Format,
    ) {
        let kms = atrest_kms::Kms::new(self.kms.clone());
        // v1 as `encrypt --format v1` writes it: under a data key file's key.
        let data_key = match format {
            atrest_transfer::Format::V1 => atrest_transfer::DataKeyFrom::Wrapped(
                kms.generate_wrapped_data_key(&self.key_arn)
                    .await
                    .unwrap()
                    .into(),
            ),
            _ => atrest_transfer::DataKeyFrom::Generate(self.key_arn.clone()),
        };
        let keys = Arc::new(atrest_kms::CachedKeys::uncached(kms));
        let uri = S3Uri::parse(&format!("s3://{bucket}/x"))
            .unwrap()
            .with_key(key);
        Transfer::new(self.s3.clone(), keys)
            .upload(&uri, data_key)
            .format(format)
            .input_len(body.len() as u64)
            .start(std::io::Cursor::new(body.to_vec()))
            .join()
            .await
            .unwrap();
    }

    /// An S3 Encryption Client object (its envelope in its metadata) at
    /// `key`; its version id.
    async fn put_s3ec(&self, bucket: &str, key: &str) -> Option<String> {
        let metadata = [
            ("x-amz-key-v2", "QUJDREVGR0hJSktMTU5PUA=="),
            ("x-amz-iv", "QUJDREVGR0hJSktM"),
            ("x-amz-cek-alg", "AES/GCM/NoPadding"),
            ("x-amz-wrap-alg", "kms+context"),
            (
                "x-amz-matdesc",
                r#"{"aws:x-amz-cek-alg":"AES/GCM/NoPadding"}"#,
            ),
            ("x-amz-tag-len", "128"),
        ];
        let mut put = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(S3EC_BODY.to_vec().into());
        for (k, v) in metadata {
            put = put.metadata(k, v);
        }
        put.send().await.unwrap().version_id().map(str::to_owned)
    }

    /// A bucket of its own with versioning on.
    async fn versioned_bucket(&self, suffix: &str) -> String {
        let bucket = format!("{}-{suffix}", self.bucket);
        self.s3
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        self.s3
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        bucket
    }

    async fn put_in(&self, bucket: &str, key: &str, body: &[u8]) -> Option<String> {
        let out = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
        out.version_id().map(str::to_owned)
    }

    /// The object's body and user metadata, `None` if there is none.
    async fn object(&self, bucket: &str, key: &str) -> Option<(Vec<u8>, HashMap<String, String>)> {
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        let metadata = out.metadata().cloned().unwrap_or_default();
        Some((out.body.collect().await.unwrap().to_vec(), metadata))
    }

    /// Batch's part: the tasks in invocations of `PER_INVOCATION`, eight
    /// invocations at a time.
    async fn job(
        &self,
        arguments: &serde_json::Value,
        tasks: &[Task],
    ) -> HashMap<String, TaskResult> {
        futures::stream::iter(tasks.chunks(PER_INVOCATION).enumerate())
            .map(|(i, chunk)| async move { self.invoke(&i.to_string(), arguments, chunk).await })
            .buffer_unordered(8)
            .flat_map(futures::stream::iter)
            .map(|r| (r.task_id.clone(), r))
            .collect()
            .await
    }
}

#[derive(Clone)]
struct Task {
    id: String,
    key: String,
}

/// A key as Batch sends it: URL-encoded (a space as `%20`).
fn encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn key_of(i: usize) -> String {
    match i % 100 {
        // Keys that only survive a correct decoding.
        7 => format!("data/with space/obj+{i:04}é"),
        _ => format!("data/obj-{i:04}"),
    }
}

fn plaintext(i: usize) -> Vec<u8> {
    format!("object {i}\n").repeat(1 + i % 50).into_bytes()
}

fn is_v2(object: &[u8]) -> bool {
    use atrest_format::inspect::{inspect, Inspected};
    matches!(inspect(object, object.len() as u64), Ok(Inspected::Complete(info)) if info.version() == 2)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

#[test]
fn a_1000_object_encrypt_job_with_a_retried_and_a_permanent_failure() {
    block_on(async {
        let Some(w) = world(&key_of(BROKEN)).await else {
            return;
        };
        futures::stream::iter(0..OBJECTS)
            .map(|i| {
                let w = &w;
                async move { w.put(&key_of(i), plaintext(i)).await }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
        let mut tasks: Vec<Task> = (0..OBJECTS)
            .map(|i| Task {
                id: format!("t{i}"),
                key: key_of(i),
            })
            .collect();
        tasks.push(Task {
            id: "t-missing".into(),
            key: "data/never-written".into(),
        });
        let arguments = json!({
            "operation": "encrypt",
            "kmsKey": w.key_arn,
            "context": r#"{"job":"batch-test"}"#,
        });

        w.broken.store(true, Ordering::SeqCst);
        let mut results = w.job(&arguments, &tasks).await;
        w.broken.store(false, Ordering::SeqCst);

        assert_eq!(results.len(), tasks.len());
        let broken = &results[&format!("t{BROKEN}")];
        assert_eq!(
            broken.result_code,
            ResultCode::TemporaryFailure,
            "{broken:?}"
        );
        let missing = &results["t-missing"];
        assert_eq!(
            missing.result_code,
            ResultCode::PermanentFailure,
            "{missing:?}"
        );
        assert!(
            missing.result_string.contains("does not exist"),
            "{missing:?}"
        );

        // Batch retries the temporary failure.
        let retry = w.invoke("retry", &arguments, &tasks[BROKEN..=BROKEN]).await;
        assert_eq!(retry[0].result_code, ResultCode::Succeeded, "{retry:?}");
        results.insert(retry[0].task_id.clone(), retry[0].clone());

        for (i, task) in tasks[..OBJECTS].iter().enumerate() {
            let r = &results[&task.id];
            assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
            assert_eq!(
                r.result_string,
                format!("encrypted ({} bytes)", plaintext(i).len())
            );
        }

        // A task run again (a lost invocation) finds its object done and
        // leaves it as it is.
        let before = w.etag(&key_of(3)).await;
        let again = w
            .invoke("again", &arguments, &tasks[..PER_INVOCATION])
            .await;
        for r in &again {
            assert_eq!(r.result_code, ResultCode::Succeeded);
            assert_eq!(r.result_string, "already encrypted");
        }
        assert_eq!(w.etag(&key_of(3)).await, before);

        // Object by object: an atrest v2 object with the plaintext in it.
        let keys = Arc::new(atrest_kms::CachedKeys::uncached(atrest_kms::Kms::new(
            w.kms.clone(),
        )));
        let transfer = Transfer::new(w.s3.clone(), keys);
        let context = [("job".to_owned(), "batch-test".to_owned())];
        futures::stream::iter(0..OBJECTS)
            .map(|i| {
                let (w, transfer, context) = (&w, &transfer, &context);
                async move {
                    let uri = S3Uri::parse(&format!("s3://{}/x", w.bucket))
                        .unwrap()
                        .with_key(key_of(i));
                    let stored = w.get(&key_of(i)).await;
                    assert!(is_v2(&stored), "{}", key_of(i));
                    let mut out = Vec::new();
                    transfer
                        .download(&uri)
                        .expect_context(context)
                        .into_writer(&mut out)
                        .await?;
                    assert_eq!(out, plaintext(i), "{}", key_of(i));
                    Ok::<_, atrest_transfer::Error>(())
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
    });
}

#[test]
fn encrypt_to_a_destination_rewrap_and_refusals() {
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        for i in 0..5 {
            w.put(&format!("src/f{i}"), plaintext(i)).await;
        }
        let tasks: Vec<Task> = (0..5)
            .map(|i| Task {
                id: format!("d{i}"),
                key: format!("src/f{i}"),
            })
            .collect();
        let to_destination = json!({
            "operation": "encrypt",
            "kmsKey": w.key_arn,
            "destination": format!("s3://{}/enc/", w.bucket),
        });
        for r in w.invoke("dest", &to_destination, &tasks).await {
            assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
            assert!(r.result_string.starts_with("encrypted to s3://"), "{r:?}");
        }
        for r in w.invoke("dest-again", &to_destination, &tasks).await {
            assert_eq!(r.result_string, "already encrypted", "{r:?}");
        }
        // A source written since is encrypted again (its copy was "already
        // encrypted", the old content kept): the copy records its source.
        w.put("src/f1", b"the source, changed".to_vec()).await;
        let results = w.invoke("dest-changed", &to_destination, &tasks).await;
        for r in &results {
            match r.task_id.as_str() {
                "d1" => assert!(r.result_string.starts_with("encrypted to s3://"), "{r:?}"),
                _ => assert_eq!(r.result_string, "already encrypted", "{r:?}"),
            }
        }
        let keys = atrest_kms::CachedKeys::uncached(atrest_kms::Kms::new(w.kms.clone()));
        let transfer = Transfer::new(w.s3.clone(), Arc::new(keys));
        let copy = S3Uri::parse(&format!("s3://{}/enc/src/f1", w.bucket)).unwrap();
        let mut read = Vec::new();
        transfer
            .download(&copy)
            .into_writer(&mut read)
            .await
            .unwrap();
        assert_eq!(read, b"the source, changed");
        // The sources are as they were.
        assert_eq!(w.get("src/f2").await, plaintext(2));
        assert!(is_v2(&w.get("enc/src/f2").await));

        // Rewrap the encrypted copies to a second key, twice.
        let second = w.kms.create_key().send().await.unwrap();
        let second_arn = second.key_metadata().unwrap().arn().unwrap().to_owned();
        let encrypted: Vec<Task> = (0..5)
            .map(|i| Task {
                id: format!("r{i}"),
                key: format!("enc/src/f{i}"),
            })
            .collect();
        let rewrap = json!({"operation": "rewrap", "toKey": second_arn});
        for r in w.invoke("rewrap", &rewrap, &encrypted).await {
            assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
            assert_eq!(r.result_string, format!("rewrapped to {second_arn}"));
        }
        for r in w.invoke("rewrap-again", &rewrap, &encrypted).await {
            assert_eq!(r.result_string, format!("already under {second_arn}"));
        }
        // A plaintext object is not an atrest object: permanent.
        let plain = w.invoke("rewrap-plain", &rewrap, &tasks[..1]).await;
        assert_eq!(plain[0].result_code, ResultCode::PermanentFailure);
        assert!(
            plain[0].result_string.contains("not an atrest object"),
            "{plain:?}"
        );

        // An S3 Encryption Client instruction file is its object's
        // envelope: never encrypted in place.
        let envelope = br#"{"x-amz-3":"AAAA","x-amz-w":"12"}"#.to_vec();
        w.put("src/f0.instruction", envelope.clone()).await;
        let in_place = json!({"operation": "encrypt", "kmsKey": w.key_arn});
        let task = Task {
            id: "i0".into(),
            key: "src/f0.instruction".into(),
        };
        let refused = w.invoke("instruction", &in_place, &[task]).await;
        assert_eq!(refused[0].result_code, ResultCode::PermanentFailure);
        assert!(
            refused[0].result_string.contains("instruction file"),
            "{refused:?}"
        );
        assert_eq!(w.get("src/f0.instruction").await, envelope);

        // Bad arguments and another schema fail every task permanently,
        // saying why.
        let bad = w
            .invoke("bad", &json!({"operation": "encrypt"}), &tasks[..2])
            .await;
        for r in &bad {
            assert_eq!(r.result_code, ResultCode::PermanentFailure);
            assert!(r.result_string.contains("`kmsKey`"), "{r:?}");
        }
        let old = w
            .invoke_schema("1.0", "old", &to_destination, &tasks[..1])
            .await;
        assert_eq!(old[0].result_code, ResultCode::PermanentFailure);
        assert!(old[0].result_string.contains("needs 2.0"), "{old:?}");
    });
}

#[test]
fn verify_and_upgrade_jobs() {
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        // v1 objects under a shared data key, as `encrypt --format v1`
        // writes them; one of them damaged after its header.
        let kms = atrest_kms::Kms::new(w.kms.clone());
        let data_key: Arc<[u8]> = kms
            .generate_wrapped_data_key(&w.key_arn)
            .await
            .unwrap()
            .into();
        let keys = Arc::new(atrest_kms::CachedKeys::uncached(kms));
        let transfer = Transfer::new(w.s3.clone(), keys);
        let uri = |key: &str| {
            S3Uri::parse(&format!("s3://{}/x", w.bucket))
                .unwrap()
                .with_key(key)
        };
        let tasks: Vec<Task> = (0..6)
            .map(|i| Task {
                id: format!("u{i}"),
                key: format!("old/f{i}"),
            })
            .collect();
        for (i, task) in tasks.iter().enumerate() {
            let body = plaintext(i);
            transfer
                .upload(
                    &uri(&task.key),
                    atrest_transfer::DataKeyFrom::Wrapped(data_key.clone()),
                )
                .format(atrest_transfer::Format::V1)
                .input_len(body.len() as u64)
                .start(std::io::Cursor::new(body))
                .join()
                .await
                .unwrap();
        }
        // Cut short by a byte: always detected (a flipped byte of the last
        // block still left valid padding once in ~256 runs).
        let mut damaged = w.get("old/f5").await;
        damaged.pop();
        w.put("old/f5", damaged).await;

        let verify = json!({"operation": "verify"});
        let results = w.invoke("verify-v1", &verify, &tasks).await;
        for r in &results[..5] {
            assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
            assert!(
                r.result_string.contains("v1 cannot be authenticated"),
                "{r:?}"
            );
        }
        assert_eq!(results[5].result_code, ResultCode::PermanentFailure);
        assert!(
            results[5].result_string.contains("corrupted"),
            "{results:?}"
        );

        // Upgrade the sound ones; run again (a retried task): already v2.
        let upgrade = json!({"operation": "upgrade"});
        for r in w.invoke("upgrade", &upgrade, &tasks[..5]).await {
            assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
            assert!(r.result_string.starts_with("upgraded to v2"), "{r:?}");
        }
        let before = w.etag("old/f2").await;
        for r in w.invoke("upgrade-again", &upgrade, &tasks[..5]).await {
            assert_eq!(r.result_string, "already v2", "{r:?}");
        }
        assert_eq!(w.etag("old/f2").await, before);
        // The damaged one is refused and left as it was.
        let damaged_etag = w.etag("old/f5").await;
        let refused = w.invoke("upgrade-bad", &upgrade, &tasks[5..]).await;
        assert_eq!(refused[0].result_code, ResultCode::PermanentFailure);
        assert_eq!(w.etag("old/f5").await, damaged_etag);

        // Now v2, each object verifies authenticated, with its plaintext.
        for r in w.invoke("verify-v2", &verify, &tasks[..5]).await {
            assert_eq!(r.result_code, ResultCode::Succeeded, "{r:?}");
            assert!(r.result_string.starts_with("verified ("), "{r:?}");
        }
        for (i, task) in tasks[..5].iter().enumerate() {
            assert!(is_v2(&w.get(&task.key).await), "{}", task.key);
            let mut out = Vec::new();
            transfer
                .download(&uri(&task.key))
                .into_writer(&mut out)
                .await
                .unwrap();
            assert_eq!(out, plaintext(i));
        }
        // Arguments an operation does not take are refused.
        let bad = json!({"operation": "verify", "context": "{}"});
        let r = w.invoke("verify-bad", &bad, &tasks[..1]).await;
        assert_eq!(r[0].result_code, ResultCode::PermanentFailure);
    });
}

/// A handler over the world's clients with other limits.
fn handler_with(w: &World, max_object_bytes: u64) -> Handler {
    let mut limits = Limits::default();
    limits.max_object_bytes = max_object_bytes;
    Handler::new(w.s3.clone(), atrest_kms::Kms::new(w.kms.clone()), limits)
}

fn assert_result(r: &TaskResult, code: ResultCode, text: &str) {
    assert_eq!(r.result_code, code, "{r:?}");
    assert!(r.result_string.contains(text), "{r:?} lacks {text:?}");
}

#[test]
fn encrypt_takes_only_plaintext_whatever_the_destination() {
    use ResultCode::{PermanentFailure, Succeeded};
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        let b = w.bucket.clone();
        w.put_s3ec(&b, "s3ec.bin").await;
        w.put_atrest(&b, "v2.bin", b"already v2", atrest_transfer::Format::V2)
            .await;
        w.put_atrest(&b, "v1.bin", b"already v1", atrest_transfer::Format::V1)
            .await;
        let instruction = br#"{"x-amz-3":"AAAA","x-amz-w":"12"}"#;
        w.put("f.instruction", instruction.to_vec()).await;
        w.put("plain.txt", b"plain".to_vec()).await;
        let before_s3ec = w.object(&b, "s3ec.bin").await.unwrap();
        let before_v2 = w.etag("v2.bin").await;

        // The destination is the source's own location: in place.
        let own = json!({"operation": "encrypt", "kmsKey": w.key_arn,
                         "destination": format!("s3://{b}/")});
        let tasks = [
            ("s3ec.bin", None),
            ("v1.bin", None),
            ("f.instruction", None),
            ("v2.bin", None),
            ("plain.txt", None),
        ];
        let r = w.tasks_in(&w.handler, &b, &own, &tasks).await;
        assert_result(&r[0], PermanentFailure, "an S3 Encryption Client object");
        assert_result(&r[1], PermanentFailure, "atrest v1 object");
        assert_result(&r[2], PermanentFailure, "instruction file");
        assert_eq!(r[3].result_string, "already encrypted", "{r:?}");
        assert_eq!(r[4].result_string, "encrypted (5 bytes)", "{r:?}");
        assert_eq!(w.object(&b, "s3ec.bin").await.unwrap(), before_s3ec);
        assert_eq!(w.get("f.instruction").await, instruction);
        assert_eq!(w.etag("v2.bin").await, before_v2);
        assert!(is_v2(&w.get("plain.txt").await));

        // Elsewhere: refused (or found done) the same way, nothing written.
        let elsewhere = json!({"operation": "encrypt", "kmsKey": w.key_arn,
                               "destination": format!("s3://{b}/enc/")});
        let r = w.tasks_in(&w.handler, &b, &elsewhere, &tasks[..4]).await;
        assert_result(&r[0], PermanentFailure, "an S3 Encryption Client object");
        assert_result(&r[1], PermanentFailure, "atrest v1 object");
        assert_result(&r[2], PermanentFailure, "instruction file");
        assert_result(&r[3], Succeeded, "already encrypted");
        for (key, _) in &tasks[..4] {
            assert_eq!(w.object(&b, &format!("enc/{key}")).await, None, "{key}");
        }

        // A task naming an older version: that version is what is read,
        // and (at its own location) never made current again.
        let vb = w.versioned_bucket("v").await;
        let old = w.put_s3ec(&vb, "s3ec.bin").await.unwrap();
        w.put_in(&vb, "s3ec.bin", b"newer plaintext").await;
        let to_enc = json!({"operation": "encrypt", "kmsKey": w.key_arn,
                            "destination": format!("s3://{vb}/enc/")});
        let r = w
            .tasks_in(&w.handler, &vb, &to_enc, &[("s3ec.bin", Some(&old))])
            .await;
        assert_result(&r[0], PermanentFailure, "an S3 Encryption Client object");
        assert_eq!(w.object(&vb, "enc/s3ec.bin").await, None);
        let to_own = json!({"operation": "encrypt", "kmsKey": w.key_arn,
                            "destination": format!("s3://{vb}/")});
        let r = w
            .tasks_in(&w.handler, &vb, &to_own, &[("s3ec.bin", Some(&old))])
            .await;
        assert_result(&r[0], PermanentFailure, "not the current version");
        let (body, _) = w.object(&vb, "s3ec.bin").await.unwrap();
        assert_eq!(body, b"newer plaintext");
    });
}

#[test]
fn a_1_0_event_and_bad_arguments_fail_each_task_saying_why() {
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        // AWS's own 1.0 example: the bucket as an ARN, no userArguments.
        let event = json!({
            "invocationSchemaVersion": "1.0", "invocationId": "inv10",
            "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
            "tasks": [{"taskId": "dGFza2lkZ29lc2hlcmUK", "s3Key": "customerImage1.jpg",
                       "s3VersionId": "1",
                       "s3BucketArn": format!("arn:aws:s3:::{}", w.bucket)}]
        });
        let r = w.run(&w.handler, event).await;
        assert_result(&r[0], ResultCode::PermanentFailure, "needs 2.0");

        let null = json!({
            "invocationSchemaVersion": "2.0", "invocationId": "null",
            "job": {"id": "j", "userArguments": null},
            "tasks": [{"taskId": "t", "s3Bucket": w.bucket, "s3Key": "k"}]
        });
        let r = w.run(&w.handler, null).await;
        assert_result(&r[0], ResultCode::PermanentFailure, "lack `operation`");

        let stray = json!({"operation": "verify", "toKey": "x"});
        let r = w
            .tasks_in(&w.handler, &w.bucket, &stray, &[("k", None)])
            .await;
        assert_result(
            &r[0],
            ResultCode::PermanentFailure,
            "userArgument `toKey`: verify takes no userArguments",
        );
    });
}

#[test]
fn empty_objects_are_encrypted_and_folder_markers_left_alone() {
    use ResultCode::Succeeded;
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        let b = w.bucket.clone();
        w.put("empty.txt", Vec::new()).await;
        w.put("empty2.txt", Vec::new()).await;
        w.put("dir/", Vec::new()).await;
        let in_place = json!({"operation": "encrypt", "kmsKey": w.key_arn});
        let tasks = [("empty.txt", None), ("dir/", None)];
        let r = w.tasks_in(&w.handler, &b, &in_place, &tasks).await;
        assert_result(&r[0], Succeeded, "encrypted (0 bytes)");
        assert_result(&r[1], Succeeded, "a folder marker: left as it is");
        let stored = w.get("empty.txt").await;
        assert!(is_v2(&stored));
        assert_eq!(w.get("dir/").await, b"");

        let r = w.tasks_in(&w.handler, &b, &in_place, &tasks).await;
        assert_result(&r[0], Succeeded, "already encrypted");
        assert_result(&r[1], Succeeded, "a folder marker");
        assert_eq!(w.get("empty.txt").await, stored);

        let elsewhere = json!({"operation": "encrypt", "kmsKey": w.key_arn,
                               "destination": format!("s3://{b}/enc/")});
        let r = w
            .tasks_in(
                &w.handler,
                &b,
                &elsewhere,
                &[("empty2.txt", None), ("dir/", None)],
            )
            .await;
        assert_result(&r[0], Succeeded, "(0 bytes)");
        assert_result(&r[1], Succeeded, "a folder marker");
        assert!(is_v2(&w.get("enc/empty2.txt").await));
        assert_eq!(w.object(&b, "enc/dir/").await, None);

        let verify = json!({"operation": "verify"});
        let r = w.tasks_in(&w.handler, &b, &verify, &tasks).await;
        assert_result(&r[0], Succeeded, "verified (0 bytes authenticated)");
        assert_result(&r[1], Succeeded, "a folder marker");
    });
}

#[test]
fn objects_done_already_succeed_whatever_their_size() {
    use ResultCode::{PermanentFailure, Succeeded};
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        let b = w.bucket.clone();
        let body = vec![7u8; 1000];
        w.put_atrest(&b, "big-v2", &body, atrest_transfer::Format::V2)
            .await;
        w.put_atrest(&b, "big-v1", &body, atrest_transfer::Format::V1)
            .await;
        let small = handler_with(&w, 100);
        let tasks = [("big-v2", None), ("big-v1", None)];
        let before = w.etag("big-v2").await;

        let upgrade = json!({"operation": "upgrade"});
        let r = w.tasks_in(&small, &b, &upgrade, &tasks).await;
        assert_eq!(r[0].result_code, Succeeded, "{r:?}");
        assert_eq!(r[0].result_string, "already v2", "{r:?}");
        assert_result(&r[1], PermanentFailure, "over this function's 100");

        let encrypt = json!({"operation": "encrypt", "kmsKey": w.key_arn});
        let r = w.tasks_in(&small, &b, &encrypt, &tasks[..1]).await;
        assert_eq!(r[0].result_string, "already encrypted", "{r:?}");

        // verify has work to do whatever the object is: the size first.
        let verify = json!({"operation": "verify"});
        let r = w.tasks_in(&small, &b, &verify, &tasks[..1]).await;
        assert_result(&r[0], PermanentFailure, "over this function's 100");
        assert_eq!(w.etag("big-v2").await, before);
    });
}

#[test]
fn tasks_naming_an_older_version_are_refused() {
    use ResultCode::{PermanentFailure, Succeeded};
    block_on(async {
        let Some(w) = world("no-such-key-is-broken").await else {
            return;
        };
        let vb = w.versioned_bucket("v").await;
        let version = |key: &'static str| {
            let (s3, vb) = (w.s3.clone(), vb.clone());
            async move {
                let head = s3.head_object().bucket(vb).key(key).send().await.unwrap();
                head.version_id().unwrap().to_owned()
            }
        };
        // f.txt: plaintext, then a v2 object over it.
        let old_plain = w.put_in(&vb, "f.txt", b"secret plaintext").await.unwrap();
        w.put_atrest(&vb, "f.txt", b"secret", atrest_transfer::Format::V2)
            .await;
        let current = version("f.txt").await;
        // g.bin: a v1 object, then another over it.
        w.put_atrest(&vb, "g.bin", b"first v1", atrest_transfer::Format::V1)
            .await;
        let old_v1 = version("g.bin").await;
        w.put_atrest(&vb, "g.bin", b"second v1", atrest_transfer::Format::V1)
            .await;
        let current_v1 = version("g.bin").await;

        let verify = json!({"operation": "verify"});
        let r = w
            .tasks_in(
                &w.handler,
                &vb,
                &verify,
                &[("f.txt", Some(&old_plain)), ("f.txt", Some(&current))],
            )
            .await;
        assert_result(
            &r[0],
            PermanentFailure,
            &format!("version {old_plain} is not the current version"),
        );
        assert_result(&r[1], Succeeded, "verified (");

        let second = w.kms.create_key().send().await.unwrap();
        let second_arn = second.key_metadata().unwrap().arn().unwrap().to_owned();
        let rewrap = json!({"operation": "rewrap", "toKey": second_arn});
        let r = w
            .tasks_in(&w.handler, &vb, &rewrap, &[("f.txt", Some(&old_plain))])
            .await;
        assert_result(
            &r[0],
            PermanentFailure,
            &format!("version {old_plain} is not the current version"),
        );
        assert_eq!(version("f.txt").await, current);

        let upgrade = json!({"operation": "upgrade"});
        let r = w
            .tasks_in(&w.handler, &vb, &upgrade, &[("g.bin", Some(&old_v1))])
            .await;
        assert_result(
            &r[0],
            PermanentFailure,
            &format!("version {old_v1} is not the current version"),
        );
        assert_eq!(version("g.bin").await, current_v1);

        // The current versions are done; run again (a retried task, whose
        // version the rewrite replaced), they are found done.
        let r = w
            .tasks_in(&w.handler, &vb, &rewrap, &[("f.txt", Some(&current))])
            .await;
        assert_result(&r[0], Succeeded, "rewrapped to");
        let r = w
            .tasks_in(&w.handler, &vb, &rewrap, &[("f.txt", Some(&current))])
            .await;
        assert_result(&r[0], Succeeded, "already under");
        let r = w
            .tasks_in(&w.handler, &vb, &upgrade, &[("g.bin", Some(&current_v1))])
            .await;
        assert_result(&r[0], Succeeded, "upgraded to v2");
        let r = w
            .tasks_in(&w.handler, &vb, &upgrade, &[("g.bin", Some(&current_v1))])
            .await;
        assert_result(&r[0], Succeeded, "already v2");
    });
}

/// An endpoint that accepts connections and never answers held an
/// invocation until Lambda ended it (the SDK sets no read timeout), every
/// task unanswered. With the invocation's deadline each task ends as a
/// TemporaryFailure by then, for Batch to retry.
#[test]
fn a_silent_endpoint_fails_the_tasks_temporarily_by_the_deadline() {
    block_on(async {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((connection, _)) = silent.accept().await {
                connections.push(connection);
            }
        });
        let config = config(&endpoint).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let kms = atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config));
        let handler = Handler::new(s3, kms, Limits::default());
        let event: BatchEvent = serde_json::from_value(json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "silent",
            "job": {"id": "job-1", "userArguments": {"operation": "verify"}},
            "tasks": [
                {"taskId": "a", "s3Bucket": "b", "s3Key": "k1", "s3VersionId": null},
                {"taskId": "b", "s3Bucket": "b", "s3Key": "k2", "s3VersionId": null},
            ],
        }))
        .unwrap();
        let started = std::time::Instant::now();
        let now = tokio::time::Instant::now();
        let deadline = atrest_lambda::Deadline {
            stop: now + std::time::Duration::from_secs(2),
            abandon: now + std::time::Duration::from_secs(3),
        };
        let response = handler.handle_until(event, Some(deadline)).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(response.results.len(), 2);
        for r in &response.results {
            assert_eq!(r.result_code, ResultCode::TemporaryFailure, "{r:?}");
            assert!(r.result_string.contains("invocation's time"), "{r:?}");
        }
        held.abort();
    });
}
