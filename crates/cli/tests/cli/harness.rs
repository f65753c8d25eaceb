//! Shared set-up: a local endpoint, a KMS key and a bucket per test, and a
//! way to run the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use aws_config::{BehaviorVersion, Region};

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.block_on(f)
}

/// One test's world: its own bucket and KMS key, its own working directory.
pub struct Env {
    pub endpoint: String,
    pub bucket: String,
    pub key_id: String,
    pub key_arn: String,
    pub dir: tempfile::TempDir,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
}

/// The test's environment, or `None` (with a notice) outside xtask.
pub fn env() -> Option<Env> {
    let Ok(endpoint) = std::env::var("ATREST_TEST_ENDPOINT") else {
        eprintln!("ATREST_TEST_ENDPOINT is not set: skipping (run `cargo xtask test`)");
        return None;
    };
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let bucket = format!(
        "atrest-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let (kms, s3) = block_on(clients(&endpoint));
    let key = block_on(kms.create_key().send()).expect("create a KMS key on the endpoint");
    let meta = key.key_metadata().unwrap();
    block_on(s3.create_bucket().bucket(&bucket).send()).expect("create a bucket on the endpoint");
    Some(Env {
        endpoint,
        bucket,
        key_id: meta.key_id().to_owned(),
        key_arn: meta.arn().unwrap().to_owned(),
        dir: tempfile::tempdir().unwrap(),
        kms,
        s3,
    })
}

async fn clients(endpoint: &str) -> (aws_sdk_kms::Client, aws_sdk_s3::Client) {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    (
        aws_sdk_kms::Client::new(&config),
        aws_sdk_s3::Client::from_conf(s3),
    )
}

impl Env {
    /// `s3://bucket/key` in this test's bucket.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command for the binary, run in the test's directory with the
    /// endpoint and dummy credentials, and nothing from the host's AWS setup.
    pub fn atrest(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atrest"));
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/atrest-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/atrest-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        cmd
    }

    /// A command running the binary through `wrapper` (e.g. `/usr/bin/time
    /// -f %M`, or a shell that lowers a limit and `exec`s `"$0" "$@"`),
    /// with the same directory and environment as [`Env::atrest`].
    pub fn atrest_under(&self, wrapper: &[&str]) -> Command {
        let atrest = self.atrest();
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(atrest.get_program())
            .current_dir(self.dir.path())
            .env_clear()
            .envs(atrest.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary with `args`, returning its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.atrest().args(args).output().unwrap()
    }

    /// Runs the binary and insists on success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_status(&out, 0, args);
        out
    }

    pub fn create_data_key(&self) {
        self.ok(&["create-data-key", &self.key_id]);
    }

    /// Turns versioning on for the test's bucket.
    pub fn enable_versioning(&self) {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        let enabled = VersioningConfiguration::builder()
            .status(BucketVersioningStatus::Enabled)
            .build();
        let request = self.s3.put_bucket_versioning().bucket(&self.bucket);
        block_on(request.versioning_configuration(enabled).send()).unwrap();
    }

    pub fn put_raw(&self, key: &str, body: Vec<u8>) {
        block_on(
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body.into())
                .send(),
        )
        .unwrap();
    }

    /// Copies the object `from` to `to` inside S3, metadata and all (an
    /// S3 Encryption Client object's envelope is its metadata).
    pub fn copy(&self, from: &str, to: &str) {
        let copy = self.s3.copy_object().bucket(&self.bucket).key(to);
        let source = format!("{}/{from}", self.bucket);
        block_on(copy.copy_source(source).send()).unwrap();
    }

    pub fn get_raw(&self, key: &str) -> Vec<u8> {
        block_on(async {
            let out = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            out.body.collect().await.unwrap().to_vec()
        })
    }

    /// Every entry in the test directory, for checking nothing was left.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Asserts the exit status, showing stdout and stderr when it differs.
pub fn assert_status(out: &Output, want: i32, what: &[&str]) {
    let got = out.status.code();
    assert_eq!(
        got,
        Some(want),
        "atrest {}: expected exit {want}, got {got:?}\n--- stdout\n{}\n--- stderr\n{}",
        what.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Padded base64 of `data` in `alphabet` (standard or URL-safe), for
/// searching output for a key in that form.
pub fn base64(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The standard base64 alphabet.
pub const BASE64_STD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The summary of a many-object `--json` run: its last JSON line (the
/// lines before it report one object each).
pub fn json_summary(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().unwrap_or_default();
    let summary: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not a JSON line ({e}): {text}"));
    assert_eq!(summary["type"], "summary", "{text}");
    summary
}
