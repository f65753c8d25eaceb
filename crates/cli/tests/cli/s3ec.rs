//! Objects of the AWS S3 Encryption Client through the binary: interop both
//! ways with the Python client 4.0.0 (the reference, in the xtask venv),
//! and hostile objects (each exit 4, nothing written).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use crate::harness::*;

const MIB: usize = 1024 * 1024;

/// The Python client on the test endpoint.
struct Python {
    python: PathBuf,
}

fn python() -> Python {
    let python = std::env::var_os("ATREST_TEST_PYTHON")
        .map(PathBuf::from)
        .expect("ATREST_TEST_PYTHON names the venv's python (set by cargo xtask test)");
    Python { python }
}

#[derive(Clone)]
struct Job {
    op: &'static str,
    key: String,
    path: PathBuf,
    context: Option<serde_json::Value>,
    v2: bool,
}

impl Python {
    /// Runs the jobs in one Python process; each job's Ok or the client's
    /// error.
    fn run(&self, env: &Env, jobs: &[Job]) -> Vec<Result<(), String>> {
        self.run_with_key(env, &env.key_id, jobs)
    }

    /// [`Python::run`] with the client's keyring on `key_id`.
    fn run_with_key(&self, env: &Env, key_id: &str, jobs: &[Job]) -> Vec<Result<(), String>> {
        let jobs_json: Vec<serde_json::Value> = jobs
            .iter()
            .map(|j| {
                serde_json::json!({
                    "op": j.op, "key": j.key, "path": j.path,
                    "context": j.context, "v2": j.v2,
                })
            })
            .collect();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cli/s3ec_client.py");
        let out = Command::new(&self.python)
            .arg(script)
            .arg(key_id)
            .arg(&env.bucket)
            .arg(serde_json::Value::Array(jobs_json).to_string())
            .env("AWS_ENDPOINT_URL", &env.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/atrest-test-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/atrest-test-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the Python client failed to run:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Result<(), String>> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                if v["ok"].as_bool().unwrap() {
                    Ok(())
                } else {
                    Err(v["error"].as_str().unwrap().to_owned())
                }
            })
            .collect();
        assert_eq!(lines.len(), jobs.len());
        lines
    }
}

fn head_metadata(env: &Env, key: &str) -> HashMap<String, String> {
    block_on(env.s3.head_object().bucket(&env.bucket).key(key).send())
        .unwrap()
        .metadata()
        .cloned()
        .unwrap_or_default()
}

/// Replaces an object with `body` and exactly `metadata`.
fn put_with_metadata(env: &Env, key: &str, body: Vec<u8>, metadata: HashMap<String, String>) {
    block_on(
        env.s3
            .put_object()
            .bucket(&env.bucket)
            .key(key)
            .set_metadata(Some(metadata))
            .body(body.into())
            .send(),
    )
    .unwrap();
}

/// Moves an object's S3EC metadata into `KEY.instruction`, as the Java
/// client writes it: V3's `x-amz-c`, `x-amz-d`, `x-amz-i` stay.
pub(crate) fn move_to_instruction_file(env: &Env, key: &str) {
    let metadata = head_metadata(env, key);
    let body = env.get_raw(key);
    let (stay, moved): (HashMap<_, _>, HashMap<_, _>) = metadata.into_iter().partition(|(k, _)| {
        // The client's own entries move; others (atrest-mtime) stay.
        ["x-amz-c", "x-amz-d", "x-amz-i"].contains(&k.as_str()) || !k.starts_with("x-amz-")
    });
    let file = serde_json::to_vec(&moved).unwrap();
    let marker = [("x-amz-crypto-instr-file".to_owned(), String::new())].into();
    put_with_metadata(env, &format!("{key}.instruction"), file, marker);
    put_with_metadata(env, key, body, stay);
}

struct Case {
    size: usize,
    context: bool,
    instruction_file: bool,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for size in [0, 1, 16, 17, 8 * MIB + 1, 64 * MIB] {
        for context in [false, true] {
            for instruction_file in [false, true] {
                out.push(Case {
                    size,
                    context,
                    instruction_file,
                });
            }
        }
    }
    out
}

fn case_name(c: &Case) -> String {
    format!(
        "s{}-{}-{}",
        c.size,
        if c.context { "ctx" } else { "noctx" },
        if c.instruction_file { "instr" } else { "obj" }
    )
}

fn context_json() -> serde_json::Value {
    serde_json::json!({"team": "finance", "purpose": "interop"})
}

#[test]
fn atrest_decrypts_what_the_python_client_writes() {
    let Some(env) = env() else { return };
    let py = python();
    let cases = cases();
    let mut jobs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = case_name(c);
        std::fs::write(env.path(&name), sample(c.size, i as u64)).unwrap();
        jobs.push(Job {
            op: "put",
            key: name.clone(),
            path: env.path(&name),
            context: c.context.then(context_json),
            v2: false,
        });
    }
    // V2 objects too (the client's legacy suite), in the object.
    for size in [0, 17, 8 * MIB + 1] {
        let name = format!("v2-{size}");
        std::fs::write(env.path(&name), sample(size, 99)).unwrap();
        jobs.push(Job {
            op: "put",
            key: name.clone(),
            path: env.path(&name),
            context: Some(context_json()),
            v2: true,
        });
    }
    for r in py.run(&env, &jobs) {
        r.unwrap();
    }
    for job in &jobs {
        let c = cases.iter().find(|c| case_name(c) == job.key);
        if c.is_some_and(|c| c.instruction_file) {
            move_to_instruction_file(&env, &job.key);
        }
        let want = std::fs::read(&job.path).unwrap();
        let out = format!("{}.out", job.key);
        let mut args = vec!["decrypt".to_owned(), env.uri(&job.key), out.clone()];
        if job.context.is_some() {
            args.extend(["--expect-context".into(), "team=finance".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.ok(&args);
        assert!(
            std::fs::read(env.path(&out)).unwrap() == want,
            "{}",
            job.key
        );
        // And to stdout, staged and verified first.
        if want.len() < 2 * MIB {
            let out = env.ok(&["decrypt", &env.uri(&job.key), "-"]);
            assert!(out.stdout == want, "{} to stdout", job.key);
        }
    }
    let out = env.ok(&["inspect", &env.uri("s17-ctx-obj")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("S3 Encryption Client V3"), "{text}");
}

#[test]
fn the_python_client_decrypts_what_atrest_writes() {
    let Some(env) = env() else { return };
    let py = python();
    let cases = cases();
    let mut jobs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = case_name(c);
        std::fs::write(env.path(&name), sample(c.size, 1000 + i as u64)).unwrap();
        let uri = env.uri(&name);
        let mut args = vec![
            "encrypt",
            &name,
            &uri,
            "--format",
            "s3ec-v3",
            "--key",
            &env.key_id,
        ];
        if c.context {
            args.extend(["--context", "team=finance", "--context", "purpose=interop"]);
        }
        env.ok(&args);
        let metadata = head_metadata(&env, &name);
        let mut names: Vec<&str> = metadata.keys().map(String::as_str).collect();
        names.sort();
        // The client's entries, the source file's time (for sync) and the
        // KMS key's ARN (its region, for readers): no other, and nothing
        // derived from the plaintext.
        assert_eq!(
            names,
            [
                "atrest-kms-key-arn",
                "atrest-mtime",
                "x-amz-3",
                "x-amz-c",
                "x-amz-d",
                "x-amz-i",
                "x-amz-t",
                "x-amz-w"
            ]
        );
        if c.instruction_file {
            move_to_instruction_file(&env, &name);
        }
        jobs.push(Job {
            op: "get",
            key: name.clone(),
            path: env.path(&format!("{name}.py")),
            context: c.context.then(context_json),
            v2: false,
        });
    }
    for (job, r) in jobs.iter().zip(py.run(&env, &jobs)) {
        r.unwrap_or_else(|e| panic!("{}: {e}", job.key));
        let want = std::fs::read(env.path(&job.key)).unwrap();
        assert!(std::fs::read(&job.path).unwrap() == want, "{}", job.key);
    }
}

/// An object the Python client wrote, its metadata, and its plaintext.
fn python_object(
    env: &Env,
    py: &Python,
    key: &str,
    size: usize,
    v2: bool,
) -> (Vec<u8>, HashMap<String, String>) {
    let data = sample(size, 7);
    std::fs::write(env.path(key), &data).unwrap();
    let job = Job {
        op: "put",
        key: key.into(),
        path: env.path(key),
        context: Some(context_json()),
        v2,
    };
    py.run(env, &[job]).remove(0).unwrap();
    std::fs::remove_file(env.path(key)).unwrap();
    (data, head_metadata(env, key))
}

/// Decrypting `key` fails with exit 4 and writes nothing, into a file or
/// to stdout.
fn refused(env: &Env, key: &str, extra: &[&str], why: &str) {
    let uri = env.uri(key);
    let before = env.files();
    let mut args = vec!["decrypt", &uri, "out"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_status(&out, 4, &args);
    assert_eq!(env.files(), before, "{why}: a file was left");
    let mut args = vec!["decrypt", &uri, "-"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_status(&out, 4, &args);
    assert!(out.stdout.is_empty(), "{why}: bytes on stdout");
    let err = stderr(&out);
    assert!(err.starts_with("atrest: error: "), "{why}: {err}");
}

#[test]
fn hostile_objects_fail_with_exit_4_and_no_output() {
    let Some(env) = env() else { return };
    let py = python();
    let (_, v3) = python_object(&env, &py, "v3", 100_000, false);
    let (_, v2) = python_object(&env, &py, "v2", 1000, true);
    let (_, other) = python_object(&env, &py, "other", 100_000, false);
    let body = env.get_raw("v3");
    let v2_body = env.get_raw("v2");
    let hostile = |name: &str, body: Vec<u8>, meta: HashMap<String, String>| {
        put_with_metadata(&env, name, body, meta);
        name.to_owned()
    };
    let with = |base: &HashMap<String, String>, k: &str, v: &str| {
        let mut m = base.clone();
        m.insert(k.into(), v.into());
        m
    };
    let flip_b64 = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[2] = if c[2] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };

    // Mixed V2 and V3 metadata.
    let mut mixed = v3.clone();
    mixed.extend(v2.clone());
    let k = hostile("mixed", body.clone(), mixed);
    refused(&env, &k, &[], "mixed V2/V3");
    // Forged commitment, forged message id.
    let k = hostile(
        "forged-d",
        body.clone(),
        with(&v3, "x-amz-d", &flip_b64(&v3["x-amz-d"])),
    );
    refused(&env, &k, &[], "forged commitment");
    let k = hostile(
        "forged-i",
        body.clone(),
        with(&v3, "x-amz-i", &flip_b64(&v3["x-amz-i"])),
    );
    refused(&env, &k, &[], "forged message id");
    // CTR or CBC where GCM is expected (the CVE-2020-8912 swap), also with
    // --allow-legacy.
    for alg in ["AES/CTR/NoPadding", "AES/CBC/PKCS5Padding"] {
        let name = format!("swap-{}", &alg[4..7]);
        let k = hostile(&name, v2_body.clone(), with(&v2, "x-amz-cek-alg", alg));
        refused(&env, &k, &[], alg);
        refused(&env, &k, &["--allow-legacy"], alg);
    }
    let k = hostile(
        "swap-v3",
        body.clone(),
        with(&v3, "x-amz-c", "AES/CBC/PKCS5Padding"),
    );
    refused(&env, &k, &["--allow-legacy"], "CBC in x-amz-c");
    // The body of another object under this one's metadata.
    let k = hostile("swapped-body", env.get_raw("other"), v3.clone());
    refused(&env, &k, &[], "body from another object");
    let k = hostile("swapped-meta", body.clone(), other.clone());
    refused(&env, &k, &[], "metadata from another object");
    // Truncation and extension.
    let k = hostile("truncated", body[..body.len() - 1].to_vec(), v3.clone());
    refused(&env, &k, &[], "truncated");
    let k = hostile("short", body[..15].to_vec(), v3.clone());
    refused(&env, &k, &[], "shorter than a tag");
    let mut longer = body.clone();
    longer.extend_from_slice(&[0; 16]);
    let k = hostile("extended", longer, v3.clone());
    refused(&env, &k, &[], "extended");
    // Wrong context: expected by the reader, or changed in the metadata.
    refused(
        &env,
        "v3",
        &["--expect-context", "team=sales"],
        "expected context differs",
    );
    refused(
        &env,
        "v3",
        &["--expect-context", "absent=x"],
        "expected context absent",
    );
    let k = hostile(
        "ctx-changed",
        body.clone(),
        with(
            &v3,
            "x-amz-t",
            r#"{"team": "sales", "purpose": "interop", "aws:x-amz-cek-alg": "115"}"#,
        ),
    );
    refused(&env, &k, &[], "stored context changed");
    // Wrong KMS key: a wrapped key made under another KMS key.
    let other_key = block_on(env.kms.create_key().send()).unwrap();
    let other_id = other_key.key_metadata().unwrap().key_id().to_owned();
    let generated = block_on(
        env.kms
            .generate_data_key()
            .key_id(&other_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context("team", "finance")
            .encryption_context("purpose", "interop")
            .encryption_context("aws:x-amz-cek-alg", "115")
            .send(),
    )
    .unwrap();
    let wrapped = base64(generated.ciphertext_blob().unwrap().as_ref(), BASE64_STD);
    let k = hostile(
        "wrong-kms-key",
        body.clone(),
        with(&v3, "x-amz-3", &wrapped),
    );
    refused(&env, &k, &[], "wrong KMS key");
    // Malformed base64 and JSON.
    let k = hostile("bad-b64", body.clone(), with(&v3, "x-amz-3", "not*base64"));
    refused(&env, &k, &[], "bad base64");
    let k = hostile("bad-json", body.clone(), with(&v3, "x-amz-t", "{\"team\":"));
    refused(&env, &k, &[], "bad JSON");
    // Every tampered body byte position class: first, middle, tag.
    for (i, at) in [0, body.len() / 2, body.len() - 1].into_iter().enumerate() {
        let mut b = body.clone();
        b[at] ^= 1;
        let k = hostile(&format!("flip-{i}"), b, v3.clone());
        refused(&env, &k, &[], "flipped bit");
    }
    // And the untouched objects still decrypt.
    env.ok(&[
        "decrypt",
        &env.uri("v3"),
        "ok3",
        "--expect-context",
        "team=finance",
    ]);
    env.ok(&["decrypt", &env.uri("v2"), "ok2"]);
}

#[test]
fn ranges_are_authenticated_unless_legacy_is_allowed() {
    let Some(env) = env() else { return };
    let py = python();
    let (data, _) = python_object(&env, &py, "r", 3 * MIB + 5, false);
    let uri = env.uri("r");
    let out = env.ok(&["decrypt", &uri, "-", "--range", "1000000-1000099"]);
    assert_eq!(out.stdout, &data[1_000_000..1_000_100]);
    let out = env.ok(&["decrypt", &uri, "-", "--range", "17-", "--allow-legacy"]);
    assert!(out.stdout == data[17..]);
    assert!(stderr(&out).contains("not authenticated"));
    // The last bytes, both ways.
    let out = env.ok(&["decrypt", &uri, "-", "--range=-5000"]);
    assert!(out.stdout == data[data.len() - 5000..]);
    let out = env.ok(&[
        "decrypt",
        &uri,
        "-",
        "--range=bytes=-5000",
        "--allow-legacy",
    ]);
    assert!(out.stdout == data[data.len() - 5000..]);
    // A tampered block outside the range: the authenticated read refuses,
    // the legacy CTR read does not see it.
    let mut body = env.get_raw("r");
    body[3 * MIB] ^= 1;
    put_with_metadata(&env, "r2", body, head_metadata(&env, "r"));
    let uri2 = env.uri("r2");
    let out = env.run(&["decrypt", &uri2, "-", "--range", "0-99"]);
    assert_status(&out, 4, &["decrypt r2 --range"]);
    assert!(out.stdout.is_empty());
    let out = env.ok(&[
        "decrypt",
        &uri2,
        "-",
        "--range",
        "0-99",
        "--allow-legacy",
        "-q",
    ]);
    assert_eq!(out.stdout, &data[..100]);
}

#[test]
fn writing_refuses_what_the_format_cannot_hold() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"x").unwrap();
    let uri = env.uri("f");
    for (extra, why) in [
        (
            &["--context", "aws:x-amz-cek-alg=1"][..],
            "reserved context key",
        ),
        (&["--context", "k=\u{e9}"][..], "non-ASCII context"),
    ] {
        let mut args = vec![
            "encrypt",
            "f",
            &uri,
            "--format",
            "s3ec-v3",
            "--key",
            &env.key_id,
        ];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_status(&out, 2, &args);
        assert!(stderr(&out).contains("context"), "{why}: {}", stderr(&out));
    }
    let args = ["encrypt", "f", &uri, "--format", "s3ec-v3"];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(stderr(&out).contains("--key"), "{}", stderr(&out));
    // Standard input has no length to check against GCM's limit; a missing
    // file is missing (it was called "not a regular file").
    for (input, status, why) in [
        ("-", 2, "needs a regular file"),
        ("gone", 3, "gone: No such file"),
    ] {
        let args = [
            "encrypt",
            input,
            &uri,
            "--format",
            "s3ec-v3",
            "--key",
            &env.key_id,
        ];
        let out = env.run(&args);
        assert_status(&out, status, &args);
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }
}

/// S3's 2 KB of user metadata holds the client's envelope too (its wrapped
/// key alone is ~250 bytes): before, `--metadata` was checked only against
/// atrest's own room, and a V3 upload that could not fit failed at S3
/// after the KMS call. Now what cannot fit whatever KMS answers fails
/// before KMS, and what does not fit with KMS's answer fails before S3.
#[test]
fn metadata_that_leaves_no_room_for_the_envelope_fails_before_s3() {
    use crate::faults::{Op, Proxy};
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"x").unwrap();
    let proxy = Proxy::start(&env.endpoint);
    let uri = env.uri("meta/f");
    let run = |value_len: usize| {
        let metadata = format!("big={}", "v".repeat(value_len));
        let args = [
            "cp",
            "f",
            &uri,
            "--format",
            "s3ec-v3",
            "--key",
            &env.key_id,
            "--metadata",
            &metadata,
        ];
        proxy.atrest(&env).args(args).output().unwrap()
    };
    // Too large with any wrapped key: no KMS call, no S3 request.
    let out = run(1_950);
    assert_status(&out, 2, &["--metadata of 1,950 bytes"]);
    assert!(
        stderr(&out).contains("leaves beside the object's own entries"),
        "{}",
        stderr(&out)
    );
    assert_eq!(proxy.seen(Op::Kms), 0);
    // Fits atrest's own room (the key's ARN counted at its longest), not
    // beside the wrapped key KMS gives: one KMS call, nothing sent to S3.
    let out = run(1_750);
    assert_status(&out, 2, &["--metadata of 1,750 bytes"]);
    assert_eq!(
        proxy.seen(Op::Kms),
        0,
        "no room for the ARN: known before KMS"
    );
    let out = run(1_680);
    assert_status(&out, 2, &["--metadata of 1,680 bytes"]);
    assert!(stderr(&out).contains("own entries"), "{}", stderr(&out));
    assert_eq!(proxy.seen(Op::Kms), 1);
    let writes = [Op::PutObject, Op::CreateMultipartUpload, Op::UploadPart];
    assert_eq!(writes.map(|op| proxy.seen(op)), [0, 0, 0]);
    // With room to spare, it goes (and the object decrypts).
    let out = run(1_000);
    assert_status(&out, 0, &["--metadata of 1,000 bytes"]);
    assert_eq!(proxy.seen(Op::PutObject), 1);
    let out = env.ok(&["cp", &uri, "-"]);
    assert_eq!(out.stdout, b"x");
    // A context the client keeps whole in its metadata (x-amz-t): too
    // large by itself, with no --metadata at all, fails before KMS (it
    // was stored, 3 KB of metadata that S3 refuses).
    let context = format!("k={}", "c".repeat(2_100));
    let args = [
        "cp",
        "f",
        &uri,
        "--format",
        "s3ec-v3",
        "--key",
        &env.key_id,
        "--context",
        &context,
    ];
    let out = proxy.atrest(&env).args(args).output().unwrap();
    assert_status(&out, 2, &["a context of 2,100 bytes"]);
    assert!(
        stderr(&out).contains("give a smaller --context"),
        "{}",
        stderr(&out)
    );
    assert_eq!(proxy.seen(Op::Kms), 2);
}

/// A legacy AES-CBC object (V2 metadata, `AES/CBC/PKCS5Padding`, as the old
/// Java client wrote): the Python client cannot write one, so the test
/// encrypts with the venv's `cryptography`, padded well or badly.
fn cbc_object(env: &Env, py: &Python, name: &str, data: &[u8], padding: &str) {
    cbc_object_wrapped(env, py, name, data, padding, None)
}

/// [`cbc_object`], its data key wrapped as `wrap` says: KMS `kms+context`
/// under the test's key (None), or the V1 clients' `kms` under the key of
/// that ARN, which the envelope names (`kms_cmk_id`), asked through that
/// client.
fn cbc_object_wrapped(
    env: &Env,
    py: &Python,
    name: &str,
    data: &[u8],
    padding: &str,
    wrap: Option<(&aws_sdk_kms::Client, &str)>,
) {
    let (kms, key_id, context) = match wrap {
        Some((kms, arn)) => (kms, arn, ("kms_cmk_id", arn)),
        None => (
            &env.kms,
            env.key_id.as_str(),
            ("aws:x-amz-cek-alg", "AES/CBC/PKCS5Padding"),
        ),
    };
    let generated = block_on(
        kms.generate_data_key()
            .key_id(key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context(context.0, context.1)
            .send(),
    )
    .unwrap();
    let key = hex::encode(generated.plaintext().unwrap().as_ref());
    let iv = [7u8; 16];
    let plain = env.path(&format!("{name}.plain"));
    let sealed = env.path(&format!("{name}.sealed"));
    std::fs::write(&plain, data).unwrap();
    let script = "import sys\n\
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n\
        key, iv, data = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), open(sys.argv[3], 'rb').read()\n\
        n = 16 - len(data) % 16\n\
        data += bytes([n if sys.argv[4] == 'good' else 0]) * n\n\
        e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()\n\
        open(sys.argv[5], 'wb').write(e.update(data) + e.finalize())\n";
    let status = Command::new(&py.python)
        .args(["-c", script, &key, &hex::encode(iv)])
        .arg(&plain)
        .arg(padding)
        .arg(&sealed)
        .status()
        .unwrap();
    assert!(status.success());
    let body = std::fs::read(&sealed).unwrap();
    std::fs::remove_file(plain).unwrap();
    std::fs::remove_file(sealed).unwrap();
    let wrapped = base64(generated.ciphertext_blob().unwrap().as_ref(), BASE64_STD);
    let matdesc = serde_json::json!({context.0: context.1}).to_string();
    let wrap_alg = if wrap.is_some() { "kms" } else { "kms+context" };
    let metadata = [
        ("x-amz-key-v2", wrapped.as_str()),
        ("x-amz-wrap-alg", wrap_alg),
        ("x-amz-matdesc", matdesc.as_str()),
        ("x-amz-iv", &base64(&iv, BASE64_STD)),
        ("x-amz-cek-alg", "AES/CBC/PKCS5Padding"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    put_with_metadata(env, name, body, metadata);
}

#[test]
fn a_v1_kms_envelope_is_unwrapped_in_the_region_of_the_key_it_names() {
    let Some(env) = env() else { return };
    let py = python();
    let config = env.kms.config().to_builder();
    let region = aws_sdk_kms::config::Region::new("eu-west-1");
    let far = aws_sdk_kms::Client::from_conf(config.region(region).build());
    let key = block_on(far.create_key().send()).unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let data = sample(50_000, 9);
    cbc_object_wrapped(&env, &py, "v1", &data, "good", Some((&far, &arn)));
    // atrest is configured for us-east-1, where no such key is.
    env.ok(&["cp", &env.uri("v1"), "out", "--allow-legacy"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), data);
}

#[test]
fn legacy_cbc_objects_need_allow_legacy_and_fail_uniformly() {
    let Some(env) = env() else { return };
    let py = python();
    let data = sample(100_000, 3);
    cbc_object(&env, &py, "cbc", &data, "good");
    refused(&env, "cbc", &[], "CBC without --allow-legacy");
    let out = env.run(&["decrypt", &env.uri("cbc"), "out"]);
    assert!(stderr(&out).contains("--allow-legacy"), "{}", stderr(&out));
    let out = env.ok(&["decrypt", &env.uri("cbc"), "out", "--allow-legacy"]);
    assert!(
        stderr(&out).contains("not authenticated"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read(env.path("out")).unwrap() == data);
    let out = env.ok(&["inspect", &env.uri("cbc")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("AES-256-CBC"));
    // Bad padding and a body that is no whole number of blocks: one error.
    cbc_object(&env, &py, "badpad", &data, "bad");
    let body = env.get_raw("cbc");
    put_with_metadata(
        &env,
        "cut",
        body[..body.len() - 3].to_vec(),
        head_metadata(&env, "cbc"),
    );
    let mut messages = Vec::new();
    for (name, uri) in [("badpad", env.uri("badpad")), ("cut", env.uri("cut"))] {
        let before = env.files();
        let out = env.run(&["decrypt", &uri, "out2", "--allow-legacy", "-q"]);
        assert_status(&out, 4, &["decrypt", name]);
        assert_eq!(env.files(), before, "{name}");
        messages.push(stderr(&out).replace(&uri, "URI"));
    }
    assert_eq!(messages[0], messages[1]);
}

/// A legacy CBC object downloads as a v1 body does: parallel part-sized
/// runs into a file and to stdout (put in order), exact whatever the number
/// of streams; bad padding at its end still fails the whole download.
#[test]
fn legacy_cbc_objects_download_from_parallel_runs() {
    let Some(env) = env() else { return };
    let py = python();
    let data = sample((12 << 20) + 3, 4);
    cbc_object(&env, &py, "big", &data, "good");
    let proxy = crate::faults::Proxy::start(&env.endpoint);
    for dest in ["-", "out"] {
        for streams in ["1", "3", "8"] {
            proxy.clear();
            let args = [
                "decrypt",
                &env.uri("big"),
                dest,
                "--allow-legacy",
                "-q",
                "--part-size",
                "5M",
                "--concurrency",
                streams,
            ];
            let out = proxy.atrest(&env).args(args).output().unwrap();
            assert_status(&out, 0, &args);
            let got = match dest {
                "-" => out.stdout,
                _ => std::fs::read(env.path("out")).unwrap(),
            };
            assert!(got == data, "{dest} {streams}: output differs");
            // Runs of 5 MiB: the ones after the first start past byte 0.
            let later = proxy.seen(crate::faults::Op::GetLaterRange);
            assert_eq!(later, 2, "{dest} {streams}");
        }
    }
    cbc_object(&env, &py, "badpad", &data, "bad");
    std::fs::write(env.path("out"), b"kept").unwrap();
    let args = [
        "decrypt",
        &env.uri("badpad"),
        "out",
        "--allow-legacy",
        "--part-size",
        "5M",
    ];
    let out = env.run(&args);
    assert_status(&out, 4, &args);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"kept");
}

/// The names in the local directory `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Before, every `-r` command and `sync` took `KEY.instruction` for an
/// object of its own and failed it ("not an atrest object"), and `sync
/// --delete` could delete an object's envelope and leave its body.
#[test]
fn instruction_files_go_with_their_objects_in_prefix_commands() {
    let Some(env) = env() else { return };
    let data = sample(300_000, 77);
    std::fs::write(env.path("plain"), &data).unwrap();
    let args = ["encrypt", "plain", &env.uri("dir/a"), "--format", "s3ec-v3"];
    env.ok(&[&args[..], &["--key", &env.key_id]].concat());
    move_to_instruction_file(&env, "dir/a");
    env.ok(&["encrypt", "plain", &env.uri("dir/b"), "--key", &env.key_id]);
    let prefix = env.uri("dir/");

    let out = env.ok(&["ls", &prefix, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let formats: Vec<(&str, &str)> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["key"].as_str().unwrap(), o["format"].as_str().unwrap()))
        .collect();
    assert_eq!(
        formats,
        [
            ("dir/a", "s3ec"),
            ("dir/a.instruction", "s3ec instruction file"),
            ("dir/b", "v2")
        ]
    );
    assert_eq!(doc["objects"][1]["object"], "dir/a");
    // Asked for by name, it says which object to decrypt instead.
    let out = env.run(&["decrypt", &env.uri("dir/a.instruction"), "x"]);
    assert_status(&out, 4, &["decrypt of an instruction file"]);
    let said = format!("instruction file of {}", env.uri("dir/a"));
    assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    assert!(!env.path("x").exists());
    // inspect says so too (it said only "not an atrest object").
    let out = env.run(&["inspect", &env.uri("dir/a.instruction")]);
    assert_status(&out, 4, &["inspect of an instruction file"]);
    assert!(stderr(&out).contains(&said), "{}", stderr(&out));

    env.ok(&["cp", "-r", &prefix, "copied"]);
    assert_eq!(names_in(&env.path("copied")), ["a", "b"]);
    assert!(std::fs::read(env.path("copied/a")).unwrap() == data);
    // Copied inside S3, one or all: the instruction file goes along, so
    // the copy decrypts.
    let out = env.ok(&["cp", "-r", &prefix, &env.uri("moved/")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    env.ok(&["cp", &env.uri("dir/a"), &env.uri("one/a")]);
    for copy in ["moved/a", "one/a"] {
        env.ok(&["decrypt", &env.uri(copy), "copy"]);
        assert!(std::fs::read(env.path("copy")).unwrap() == data, "{copy}");
    }
    for key in ["moved/a.instruction", "moved/b", "one/a.instruction"] {
        env.get_raw(key);
    }

    let out = env.ok(&["verify", "-r", &prefix]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("verified ")
            .count(),
        2
    );
    // Two shards between them verify both objects, and nothing fails.
    let mut verified = 0;
    for shard in ["0/2", "1/2"] {
        let out = env.ok(&["verify", "-r", &prefix, "--shard", shard]);
        verified += String::from_utf8_lossy(&out.stdout)
            .matches("verified ")
            .count();
    }
    assert_eq!(verified, 2);

    env.ok(&["sync", &prefix, "synced"]);
    assert_eq!(names_in(&env.path("synced")), ["a", "b"]);
    // A re-run finds both current (the instruction file is not missing).
    let out = env.ok(&["sync", &prefix, "synced"]);
    assert!(stderr(&out).contains("2 up to date"), "{}", stderr(&out));
    // A local file of the instruction file's name is not uploaded over it.
    std::fs::write(env.path("synced/a.instruction"), b"{}").unwrap();
    let out = env.ok(&["sync", "synced", &prefix, "--key", &env.key_id]);
    assert!(
        stderr(&out).contains("warning: skipped synced/a.instruction: it would replace"),
        "{}",
        stderr(&out)
    );
    env.ok(&["decrypt", &env.uri("dir/a"), "again"]);
    std::fs::remove_file(env.path("synced/a.instruction")).unwrap();
    // a's file gone: --delete deletes the object and its instruction file.
    std::fs::remove_file(env.path("synced/a")).unwrap();
    let args = ["sync", "synced", &prefix, "--delete", "--key", &env.key_id];
    let out = env.ok(&args);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("delete: ") && said.contains("dir/a.instruction"),
        "{said}"
    );
    let out = env.ok(&["ls", &prefix, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["objects"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["objects"][0]["key"], "dir/b");
}

/// A file of the user's named `KEY.instruction` beside `KEY` is an object
/// like any other. Before, it was taken for an instruction file by its
/// name: `cp -r` and `sync` down left it out without a word (exit 0), and
/// copies and moves took it along with `KEY`.
#[test]
fn an_object_merely_named_as_an_instruction_file_is_an_object() {
    let Some(env) = env() else { return };
    std::fs::create_dir(env.path("up")).unwrap();
    std::fs::write(env.path("up/setup"), b"steps").unwrap();
    std::fs::write(env.path("up/setup.instruction"), b"read me first").unwrap();
    env.ok(&["cp", "-r", "up", &env.uri("d/"), "--key", &env.key_id]);
    let prefix = env.uri("d/");
    for down in [&["cp", "-r"][..], &["sync"]] {
        let args = [down, &[&prefix, "down"][..]].concat();
        let out = env.ok(&args);
        assert_eq!(names_in(&env.path("down")), ["setup", "setup.instruction"]);
        let note = std::fs::read(env.path("down/setup.instruction")).unwrap();
        assert_eq!(note, b"read me first", "{}", stderr(&out));
        std::fs::remove_dir_all(env.path("down")).unwrap();
    }
    let out = env.ok(&["verify", "-r", &env.uri("d/")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("verified ")
            .count(),
        2
    );
    // One object copied, or moved, inside S3: its namesake stays.
    env.ok(&["cp", &env.uri("d/setup"), &env.uri("c/setup")]);
    assert_eq!(crate::bulk::keys(&env, "c/"), ["c/setup"]);
    env.ok(&["mv", &env.uri("d/setup"), &env.uri("m/setup")]);
    assert_eq!(crate::bulk::keys(&env, "m/"), ["m/setup"]);
    assert_eq!(crate::bulk::keys(&env, "d/"), ["d/setup.instruction"]);
}

/// Synced between prefixes, an object goes with its instruction file, and
/// goes again when only that file was rewritten (as the Java client's
/// re-encryption of an instruction file does); `--delete` takes both.
#[test]
fn sync_between_prefixes_takes_instruction_files_along() {
    let Some(env) = env() else { return };
    let data = sample(100_000, 78);
    std::fs::write(env.path("plain"), &data).unwrap();
    let args = ["encrypt", "plain", &env.uri("src/a"), "--format", "s3ec-v3"];
    env.ok(&[&args[..], &["--key", &env.key_id]].concat());
    move_to_instruction_file(&env, "src/a");
    let (from, to) = (env.uri("src"), env.uri("dst"));
    let said = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let copied = format!("copy: {from}/a to {to}/a\n");

    let out = env.ok(&["sync", &from, &to]);
    assert_eq!(said(&out), copied);
    env.ok(&["decrypt", &env.uri("dst/a"), "back"]);
    assert!(std::fs::read(env.path("back")).unwrap() == data);
    let out = env.ok(&["sync", &from, &to]);
    assert_eq!(said(&out), "");
    assert!(stderr(&out).contains("1 up to date"), "{}", stderr(&out));

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let file = env.get_raw("src/a.instruction");
    let marker = [("x-amz-crypto-instr-file".to_owned(), String::new())].into();
    put_with_metadata(&env, "src/a.instruction", file, marker);
    let out = env.ok(&["sync", &from, &to]);
    assert_eq!(said(&out), copied);
    let out = env.ok(&["sync", &from, &to]);
    assert_eq!(said(&out), "");

    env.put_raw("other/b", b"plain".to_vec());
    let out = env.ok(&["sync", &env.uri("other"), &to, "--delete"]);
    assert!(
        said(&out).contains(&format!("delete: {to}/a.instruction")),
        "{}",
        said(&out)
    );
    assert_eq!(crate::bulk::keys(&env, "dst/"), ["dst/b"]);
}

/// A copy onto itself changes the storage class (the AWS CLI's way to
/// move an object to another class): an S3 Encryption Client object's
/// instruction file stays as it is (S3 refuses a copy that changes
/// nothing; before, the whole copy failed so), and the object decrypts.
#[test]
fn a_copy_onto_itself_changes_the_class_and_keeps_the_instruction_file() {
    let Some(env) = env() else { return };
    let data = sample(20_000, 79);
    std::fs::write(env.path("plain"), &data).unwrap();
    let args = ["cp", "plain", &env.uri("a"), "--format", "s3ec-v3"];
    env.ok(&[&args[..], &["--key", &env.key_id]].concat());
    move_to_instruction_file(&env, "a");
    let uri = env.uri("a");
    env.ok(&["cp", &uri, &uri, "--storage-class", "STANDARD_IA"]);
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key("a").send()).unwrap();
    assert_eq!(
        head.storage_class().map(|c| c.as_str()),
        Some("STANDARD_IA")
    );
    assert_eq!(crate::bulk::keys(&env, ""), ["a", "a.instruction"]);
    env.ok(&["cp", &uri, "back"]);
    assert_eq!(std::fs::read(env.path("back")).unwrap(), data);
}

/// The Python client's V3 (3 MiB, `PREFIX/py-v3`) and V2 (20 KB,
/// `PREFIX/py-v2`) objects, with [`context_json`]; their plaintext in the
/// files `py-v3` and `py-v2`.
fn python_v2_and_v3(env: &Env, py: &Python, prefix: &str, seed: u64) {
    let jobs: Vec<Job> = [("py-v3", 3 * MIB, false), ("py-v2", 20_000, true)]
        .into_iter()
        .map(|(name, size, v2)| {
            std::fs::write(env.path(name), sample(size, seed)).unwrap();
            Job {
                op: "put",
                key: format!("{prefix}/{name}"),
                path: env.path(name),
                context: Some(context_json()),
                v2,
            }
        })
        .collect();
    for r in py.run(env, &jobs) {
        r.unwrap();
    }
}

/// `rewrap` of S3 Encryption Client objects: only the wrapped key's entry
/// is rewritten (in the metadata, the object copied onto itself inside S3,
/// or in the instruction file), the body never passes through the client
/// and is the same bytes after, and the Python client then decrypts each
/// object with a keyring on the new key. A second rewrap skips them all.
#[test]
fn rewrap_moves_s3_encryption_client_objects_to_another_key_in_place() {
    let Some(env) = env() else { return };
    let py = python();
    let (new_id, new_arn) = crate::rewrap::second_key(&env);
    python_v2_and_v3(&env, &py, "r", 5);
    // atrest's own V3 object, its envelope in an instruction file.
    std::fs::write(env.path("at-file"), sample(2 * MIB, 6)).unwrap();
    let args = [
        "cp",
        "at-file",
        &env.uri("r/at-file"),
        "--format",
        "s3ec-v3",
    ];
    env.ok(&[
        &args[..],
        &[
            "--key",
            &env.key_id,
            "--context",
            "team=finance",
            "--context",
            "purpose=interop",
        ],
    ]
    .concat());
    move_to_instruction_file(&env, "r/at-file");
    let file = |env: &Env| -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_slice(&env.get_raw("r/at-file.instruction")).unwrap()
    };
    let mut entries = file(&env);
    // And one with its envelope in its metadata, where atrest also
    // recorded the key's ARN.
    let args = ["cp", "at-file", &env.uri("r/at-obj"), "--format", "s3ec-v3"];
    env.ok(&[
        &args[..],
        &[
            "--key",
            &env.key_id,
            "--context",
            "team=finance",
            "--context",
            "purpose=interop",
        ],
    ]
    .concat());
    std::fs::copy(env.path("at-file"), env.path("at-obj")).unwrap();
    let instruction_file = env.get_raw("r/at-file.instruction");
    let bodies = |env: &Env| -> Vec<Vec<u8>> {
        ["r/at-file", "r/at-obj", "r/py-v2", "r/py-v3"]
            .map(|k| env.get_raw(k))
            .to_vec()
    };
    let before = bodies(&env);
    let py_v3_metadata = head_metadata(&env, "r/py-v3");
    let at_obj_key = head_metadata(&env, "r/at-obj")["x-amz-3"].clone();

    // A dry run, and a context other than the object's, write nothing.
    let prefix = env.uri("r/");
    let dry = [
        "rewrap", "-r", &prefix, "--to-key", &new_id, "--json", "--dryrun",
    ];
    let doc: serde_json::Value = serde_json::from_slice(&env.ok(&dry).stdout).unwrap();
    assert_eq!(doc["would_rewrap"], 4, "{doc}");
    let other = [
        "rewrap",
        &env.uri("r/py-v3"),
        "--to-key",
        &new_id,
        "--context",
        "team=x",
    ];
    let out = env.run(&other);
    assert_status(&out, 2, &other);
    assert!(
        stderr(&out).contains("a rewrap keeps the context"),
        "{}",
        stderr(&out)
    );
    assert!(bodies(&env) == before);
    assert!(head_metadata(&env, "r/py-v3") == py_v3_metadata);
    assert_eq!(env.get_raw("r/at-file.instruction"), instruction_file);

    let proxy = crate::faults::Proxy::start(&env.endpoint);
    let args = [
        "rewrap",
        "-r",
        &env.uri("r/"),
        "--to-key",
        &new_id,
        "--json",
    ];
    let out = crate::sync::via(&env, &proxy, &args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["rewrapped"], 4, "{doc}");
    // Nothing of the 5 MiB of bodies went through the client.
    let (sent, received) = proxy.traffic();
    assert!(
        sent + received < 256 * 1024,
        "{sent} sent, {received} received"
    );
    // Only the wrapped key's entry of the instruction file changed.
    let mut rewritten = file(&env);
    assert_ne!(rewritten.remove("x-amz-3"), entries.remove("x-amz-3"));
    assert_eq!(rewritten, entries, "the instruction file's other entries");
    assert_eq!(proxy.seen(crate::faults::Op::UploadPart), 0);
    assert!(bodies(&env) == before, "the bodies changed");
    let after = head_metadata(&env, "r/py-v3");
    assert_ne!(after["x-amz-3"], py_v3_metadata["x-amz-3"]);
    assert_ne!(head_metadata(&env, "r/at-obj")["x-amz-3"], at_obj_key);
    // The key that really wraps it now, as KMS tells unwrapping it (moto's
    // Decrypt ignores a keyring's KeyId).
    let metadata = after.clone().into_iter().collect();
    let policy = atrest_format::s3ec::Policy {
        allow_legacy: false,
    };
    let envelope = atrest_format::s3ec::parse(&metadata, None, policy).unwrap();
    let mut decrypt = env
        .kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(envelope.wrapped_key));
    for (k, v) in envelope.context {
        decrypt = decrypt.encryption_context(k, v);
    }
    assert_eq!(
        block_on(decrypt.send()).unwrap().key_id(),
        Some(new_arn.as_str())
    );
    for (k, v) in &py_v3_metadata {
        if k != "x-amz-3" {
            assert_eq!(after.get(k), Some(v), "{k}");
        }
    }

    // The AWS client reads them under the new key; atrest too.
    let gets: Vec<Job> = ["r/py-v3", "r/py-v2", "r/at-file", "r/at-obj"]
        .iter()
        .map(|k| Job {
            op: "get",
            key: (*k).into(),
            path: env.path(&format!("{}.py", k.trim_start_matches("r/"))),
            context: Some(context_json()),
            v2: false,
        })
        .collect();
    for r in py.run_with_key(&env, &new_id, &gets) {
        r.unwrap();
    }
    for name in ["py-v3", "py-v2", "at-file", "at-obj"] {
        let want = std::fs::read(env.path(name)).unwrap();
        assert!(
            std::fs::read(env.path(&format!("{name}.py"))).unwrap() == want,
            "{name}"
        );
        env.ok(&[
            "cp",
            &env.uri(&format!("r/{name}")),
            &format!("{name}.back"),
        ]);
        assert!(
            std::fs::read(env.path(&format!("{name}.back"))).unwrap() == want,
            "{name}"
        );
    }
    let out = env.ok(&args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["skipped"], 4, "{doc}");
}

/// An instruction file rewritten by someone else between its read and the
/// rewrap's write is theirs: the conditional PUT fails (exit 1) and leaves
/// it as they wrote it.
#[test]
fn rewrap_leaves_an_instruction_file_written_meanwhile_as_it_is() {
    let Some(env) = env() else { return };
    let (new_id, _) = crate::rewrap::second_key(&env);
    std::fs::write(env.path("p"), sample(1000, 8)).unwrap();
    let args = ["cp", "p", &env.uri("o"), "--format", "s3ec-v3"];
    env.ok(&[&args[..], &["--key", &env.key_id]].concat());
    move_to_instruction_file(&env, "o");
    // The same envelope, written anew (other bytes: another ETag).
    let mut theirs = env.get_raw("o.instruction");
    theirs.push(b' ');
    let proxy = crate::faults::Proxy::start(&env.endpoint);
    let (s3, bucket, body) = (env.s3.clone(), env.bucket.clone(), theirs.clone());
    proxy.before(crate::faults::Op::PutObject, move || {
        let put = s3.put_object().bucket(bucket).key("o.instruction");
        let put = put
            .metadata("x-amz-crypto-instr-file", "")
            .metadata("by", "them");
        block_on(put.body(body.into()).send()).unwrap();
    });
    let args = ["rewrap", &env.uri("o"), "--to-key", &new_id];
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(args)
        .output()
        .unwrap();
    assert_status(&out, 1, &args);
    assert!(stderr(&out).contains("changed"), "{}", stderr(&out));
    assert_eq!(head_metadata(&env, "o.instruction")["by"], "them");
    assert_eq!(env.get_raw("o.instruction"), theirs);
    env.ok(&["cp", &env.uri("o"), "back"]);
}

/// `upgrade --key` turns S3 Encryption Client objects into atrest v2 in
/// place: a legacy unauthenticated AES-CBC one (what most needs it), the
/// Python client's V2 and V3, and one whose envelope is in an instruction
/// file (deleted after). Each then is v2 with the same plaintext, the
/// client's context and none of its metadata; without --key each is
/// refused, and a badly padded CBC object is left as it is.
#[test]
fn upgrade_turns_s3_encryption_client_objects_into_v2_in_place() {
    let Some(env) = env() else { return };
    let py = python();
    python_v2_and_v3(&env, &py, "u", 21);
    let cbc = sample(100_000, 22);
    std::fs::write(env.path("cbc"), &cbc).unwrap();
    for dir in ["u", "bad"] {
        std::fs::create_dir_all(env.path(dir)).unwrap();
    }
    cbc_object(&env, &py, "u/cbc", &cbc, "good");
    cbc_object(&env, &py, "bad/cbc", &cbc, "bad");
    std::fs::write(env.path("at-file"), sample(50_000, 23)).unwrap();
    let args = [
        "cp",
        "at-file",
        &env.uri("u/at-file"),
        "--format",
        "s3ec-v3",
    ];
    let context = ["--context", "team=finance", "--context", "purpose=interop"];
    env.ok(&[&args[..], &["--key", &env.key_id], &context].concat());
    move_to_instruction_file(&env, "u/at-file");

    let prefix = env.uri("u/");
    let args = ["upgrade", "-r", &prefix, "--json"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["failed"], 4, "{doc}");
    assert!(
        doc.to_string()
            .contains("needs a KMS key for a new data key"),
        "{doc}"
    );
    let out = env.ok(&[&args[..], &["--key", &env.key_id]].concat());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["upgraded"], 4, "{doc}");
    assert_eq!(
        crate::bulk::keys(&env, "u/"),
        ["u/at-file", "u/cbc", "u/py-v2", "u/py-v3"]
    );
    let out = env.ok(&["ls", "-r", &prefix, "--json"]);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for object in listing["objects"].as_array().unwrap() {
        assert_eq!(object["format"], "v2", "{object}");
        let key = object["key"].as_str().unwrap();
        if key != "u/cbc" {
            assert_eq!(object["context"], context_json(), "{key}");
        }
        let metadata = head_metadata(&env, key);
        assert!(
            metadata.keys().all(|k| !k.starts_with("x-amz-")),
            "{key}: {metadata:?}"
        );
    }
    for name in ["py-v3", "py-v2", "cbc", "at-file"] {
        env.ok(&[
            "cp",
            &env.uri(&format!("u/{name}")),
            &format!("{name}.back"),
        ]);
        let want = std::fs::read(env.path(name)).unwrap();
        assert!(
            std::fs::read(env.path(&format!("{name}.back"))).unwrap() == want,
            "{name}"
        );
    }

    // Bad padding: nothing trustworthy to re-encrypt; left as it is.
    let before = env.get_raw("bad/cbc");
    let args = ["upgrade", &env.uri("bad/cbc"), "--key", &env.key_id];
    let out = env.run(&args);
    assert_status(&out, 4, &args);
    assert!(
        stderr(&out).contains("its CBC padding is invalid"),
        "{}",
        stderr(&out)
    );
    assert!(env.get_raw("bad/cbc") == before);
    // A GCM object with one body byte flipped: its tag, not "padding"
    // (which every failed upgrade said before).
    let args = ["cp", "at-file", &env.uri("bad/gcm"), "--format", "s3ec-v3"];
    env.ok(&[&args[..], &["--key", &env.key_id]].concat());
    let mut body = env.get_raw("bad/gcm");
    body[100] ^= 1;
    put_with_metadata(&env, "bad/gcm", body, head_metadata(&env, "bad/gcm"));
    let args = ["upgrade", &env.uri("bad/gcm"), "--key", &env.key_id];
    let out = env.run(&args);
    assert_status(&out, 4, &args);
    let said = stderr(&out);
    assert!(
        said.contains("authentication tag") && !said.contains("padding"),
        "{said}"
    );
}

/// A V3 object whose metadata lost its wrapped key (`x-amz-3`) points at
/// an instruction file that does not exist: a damaged object (exit 4, as
/// every other tamper, and as verify said), not a missing one (exit 3).
#[test]
fn an_envelope_pointing_at_a_missing_instruction_file_is_damaged() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"payload").unwrap();
    let args = [
        "cp",
        "f",
        &env.uri("good"),
        "--format",
        "s3ec-v3",
        "--key",
        &env.key_id,
    ];
    env.ok(&args);
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key("good").send()).unwrap();
    let mut metadata = head.metadata().cloned().unwrap_or_default();
    assert!(metadata.remove("x-amz-3").is_some(), "{metadata:?}");
    let body = env.get_raw("good");
    let put = env.s3.put_object().bucket(&env.bucket).key("no3");
    block_on(put.set_metadata(Some(metadata)).body(body.into()).send()).unwrap();
    for args in [
        &["cp", &env.uri("no3"), "out"][..],
        &["inspect", &env.uri("no3")],
        &["verify", &env.uri("no3")],
    ] {
        let out = env.run(args);
        assert_status(&out, 4, args);
        // verify names the object's failure on stdout.
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(said.contains("no instruction file"), "{said}");
    }
    assert!(!env.path("out").exists());
}

/// A context the client accepts but v2 reserves (`atrest:...`) cannot be
/// upgraded: exit 2 and the object left as it is (it exited 1, "try
/// again"), and a dry run says so; atrest's own `--format s3ec-v3` refuses such a context, as v2
/// does, rather than write an object it could never upgrade.
#[test]
fn a_context_v2_reserves_is_refused_and_never_upgraded() {
    let Some(env) = env() else { return };
    let py = python();
    std::fs::write(env.path("f"), b"reserved").unwrap();
    let job = Job {
        op: "put",
        key: "res/py".into(),
        path: env.path("f"),
        context: Some(serde_json::json!({"atrest:keyring": "key-file"})),
        v2: false,
    };
    py.run(&env, &[job]).remove(0).unwrap();
    let before = env.get_raw("res/py");
    let uri = env.uri("res/py");
    // A dry run says so too (it said "would upgrade"), naming the object.
    for dry in [&["--dryrun"][..], &[]] {
        let args = [&["upgrade", &uri, "--key", &env.key_id][..], dry].concat();
        let out = env.run(&args);
        assert_status(&out, 2, &args);
        let err = stderr(&out);
        assert!(err.contains("atrest:") && err.contains(&uri), "{err}");
        assert!(err.contains("cannot carry"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(env.get_raw("res/py"), before);
    let args = [
        "cp",
        "f",
        &env.uri("res/ours"),
        "--format",
        "s3ec-v3",
        "--key",
        &env.key_id,
        "--context",
        "atrest:foo=1",
    ];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(
        stderr(&out).contains("which atrest reserves"),
        "{}",
        stderr(&out)
    );
}

/// Expecting a context key the client reserves is the reader's mistake:
/// exit 2, as other bad flags (it was 4, "the object cannot be trusted").
#[test]
fn expecting_a_reserved_context_key_is_a_usage_error() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"x").unwrap();
    let uri = env.uri("v3");
    env.ok(&["cp", "f", &uri, "--format", "s3ec-v3", "--key", &env.key_id]);
    let args = [
        "decrypt",
        &uri,
        "out",
        "--expect-context",
        "aws:x-amz-cek-alg=115",
    ];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(
        stderr(&out).contains("cannot be expected"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("out").exists());
}

/// To stdout, the plaintext is staged in `$TMPDIR` until the tag checks: a
/// missing `$TMPDIR` is local I/O (exit 1, it was 3 as for a missing
/// object), said as the staging's, and nothing reaches stdout.
#[test]
fn a_missing_tmpdir_for_staging_is_a_local_failure_that_says_so() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), sample(70_000, 9)).unwrap();
    let uri = env.uri("staged");
    env.ok(&["cp", "f", &uri, "--format", "s3ec-v3", "--key", &env.key_id]);
    let out = env
        .atrest()
        .args(["cp", &uri, "-"])
        .env("TMPDIR", env.path("no-such-dir"))
        .output()
        .unwrap();
    assert_status(&out, 1, &["cp", &uri, "-"]);
    let err = stderr(&out);
    assert!(
        err.contains("stage the plaintext") && err.contains("TMPDIR"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}
