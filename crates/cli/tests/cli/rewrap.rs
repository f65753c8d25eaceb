//! `atrest rewrap` and `rewrap-data-key`: objects move to another KMS key
//! with only their header rewritten; the body stays byte for byte, and
//! large objects are copied inside S3 rather than through the client.

use atrest_format::{parse_header, Header, Parsed};

use crate::faults::{Fault, Op, Proxy};
use crate::harness::*;

const MIB: usize = 1024 * 1024;

pub(crate) fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A second KMS key on the endpoint: (key id, ARN).
pub(crate) fn second_key(env: &Env) -> (String, String) {
    let key = block_on(env.kms.create_key().send()).unwrap();
    let meta = key.key_metadata().unwrap();
    (meta.key_id().to_owned(), meta.arn().unwrap().to_owned())
}

/// The object's parsed header and its length.
pub(crate) fn header(object: &[u8]) -> Header {
    match parse_header(object).unwrap() {
        Parsed::Complete(h) => h,
        other => panic!("no complete header: {other:?}"),
    }
}

/// The KeyId KMS answers when it unwraps the object's wrapped key: the key
/// that really wraps it (moto does not enforce disabled keys, so this is
/// how a test tells).
pub(crate) fn unwrapping_key(env: &Env, object: &[u8]) -> String {
    let h = header(object);
    let context = match &h {
        Header::V2(v2) => v2.context().kms_context(),
        _ => Vec::new(),
    };
    let mut request = env
        .kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(h.wrapped_key()));
    for (k, v) in context {
        request = request.encryption_context(k, v);
    }
    block_on(request.send())
        .unwrap()
        .key_id()
        .unwrap()
        .to_owned()
}

pub(crate) fn body(object: &[u8]) -> &[u8] {
    &object[header(object).encoded_len()..]
}

pub(crate) fn metadata(env: &Env, key: &str) -> std::collections::HashMap<String, String> {
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap();
    head.metadata().cloned().unwrap_or_default()
}

/// Encrypts `data` to `key` in each of the three kinds of object.
pub(crate) fn three_kinds(env: &Env, data: &[u8], suffix: &str) -> [String; 3] {
    std::fs::write(env.path("in"), data).unwrap();
    let names = [
        format!("v1{suffix}"),
        format!("v2-shared{suffix}"),
        format!("v2-own{suffix}"),
    ];
    env.ok(&["encrypt", "in", &env.uri(&names[0]), "--format", "v1"]);
    env.ok(&["encrypt", "in", &env.uri(&names[1])]);
    env.ok(&[
        "encrypt",
        "in",
        &env.uri(&names[2]),
        "--key",
        &env.key_id,
        "--context",
        "app=ledger",
    ]);
    names
}

#[test]
fn rewrap_moves_every_kind_of_object_and_keeps_the_body() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let (new_id, new_arn) = second_key(&env);
    // Small (one PUT) and multipart (first part sent, the rest copied).
    for (len, suffix) in [(100_000, "-small"), (12 * MIB + 3, "-large")] {
        let data = sample(len, len as u64);
        for name in three_kinds(&env, &data, suffix) {
            let before = env.get_raw(&name);
            assert_eq!(unwrapping_key(&env, &before), env.key_arn);
            let out = env.ok(&["rewrap", &env.uri(&name), "--to-key", &new_id, "--json"]);
            let report = json(&out);
            let object = &report["objects"][0];
            assert_eq!(object["status"], "rewrapped", "{name}: {report}");
            // As `ls --json` and `verify --json` name formats (it said
            // "atrest" of both).
            assert_eq!(object["format"], &name[..2], "{name}: {report}");
            assert_eq!(object["from_key"], env.key_arn.as_str());
            assert_eq!(object["to_key"], new_arn.as_str());
            assert_eq!(report["kms_calls"], 1);
            let after = env.get_raw(&name);
            assert_eq!(body(&after), body(&before), "{name}: the body is untouched");
            assert_eq!(unwrapping_key(&env, &after), new_arn, "{name}");
            assert_eq!(metadata(&env, &name)["atrest-kms-key-arn"], new_arn);
            if len > 5 * MIB {
                assert_eq!(object["multipart"], true);
                assert!(object["bytes_copied_server_side"].as_u64().unwrap() > 6 * MIB as u64);
            } else {
                assert_eq!(object["bytes_copied_server_side"], 0);
            }
            // It still decrypts (through KMS with the new key).
            env.ok(&["decrypt", &env.uri(&name), "out", "--quiet"]);
            assert!(std::fs::read(env.path("out")).unwrap() == data, "{name}");

            // Again: already under the key, so nothing is written.
            let again = env.ok(&["rewrap", &env.uri(&name), "--to-key", &new_arn]);
            let text = stdout(&again);
            assert!(text.starts_with("skipped "), "{text}");
            assert!(env.get_raw(&name) == after);
        }
    }
}

#[test]
fn multipart_rewrap_moves_one_part_through_the_client_and_keeps_properties() {
    let Some(env) = env() else { return };
    let (new_id, _) = second_key(&env);
    let len = 40 * MIB;
    std::fs::write(env.path("in"), sample(len, 9)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("tmp"), "--key", &env.key_id]);
    // The same bytes again, with the properties a rewrap must keep.
    let object = env.get_raw("tmp");
    block_on(
        env.s3
            .put_object()
            .bucket(&env.bucket)
            .key("big")
            .body(object.clone().into())
            .content_type("application/x-ledger")
            .content_disposition("attachment; filename=\"l.bin\"")
            .content_language("de")
            .cache_control("max-age=60")
            .metadata("owner", "accounts")
            .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
            .tagging("team=blue&tier=a%20b")
            .send(),
    )
    .unwrap();

    let proxy = Proxy::start(&env.endpoint);
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["rewrap", &env.uri("big"), "--to-key", &new_id, "--json"])
        .output()
        .unwrap();
    assert_status(&out, 0, &["rewrap big"]);
    let (sent, received) = proxy.traffic();
    // One part (5 MiB of body) and the header each way, plus the requests'
    // own heads and XML: nowhere near the 40 MiB object.
    let bound = 5 * MIB + 128 * 1024;
    assert!(sent < bound, "sent {sent} bytes");
    assert!(received < bound, "received {received} bytes");
    let report = json(&out);
    assert_eq!(
        report["bytes_uploaded"].as_u64().unwrap() as usize,
        5 * MIB + header(&object).encoded_len()
    );
    eprintln!("40 MiB rewrap through the proxy: sent {sent}, received {received}; {report}");

    let after = env.get_raw("big");
    assert_eq!(body(&after), body(&object));
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key("big").send()).unwrap();
    assert_eq!(head.content_type(), Some("application/x-ledger"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"l.bin\"")
    );
    assert_eq!(head.content_language(), Some("de"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(head.metadata().unwrap()["owner"], "accounts");
    assert_eq!(
        head.storage_class(),
        Some(&aws_sdk_s3::types::StorageClass::StandardIa)
    );
    let tags = block_on(
        env.s3
            .get_object_tagging()
            .bucket(&env.bucket)
            .key("big")
            .send(),
    )
    .unwrap();
    let mut tags: Vec<_> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("team".into(), "blue".into()),
            ("tier".into(), "a b".into())
        ]
    );
    let uploads = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(uploads.uploads().is_empty());
}

#[test]
fn dryrun_writes_nothing_and_a_prefix_reports_every_object() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let (new_id, _) = second_key(&env);
    let names = three_kinds(&env, &sample(5000, 3), "");
    let names: Vec<String> = names.iter().map(|n| format!("dir/{n}")).collect();
    for (from, to) in ["v1", "v2-shared", "v2-own"].iter().zip(&names) {
        env.put_raw(to, env.get_raw(from));
    }
    env.put_raw("dir/readme.txt", b"not encrypted".to_vec());
    let before: Vec<Vec<u8>> = names.iter().map(|n| env.get_raw(n)).collect();

    let out = env.run(&[
        "rewrap",
        &env.uri("dir"),
        "--recursive",
        "--dryrun",
        "--to-key",
        &new_id,
    ]);
    assert_status(&out, 1, &["rewrap --dryrun"]);
    let text = stdout(&out);
    assert_eq!(text.matches("would rewrap ").count(), 3, "{text}");
    assert!(
        // The URI once (the error names it).
        text.contains(&format!(
            "failed {} is not an atrest object",
            env.uri("dir/readme.txt")
        )) && text.matches("dir/readme.txt").count() == 1,
        "{text}"
    );
    assert!(
        stderr(&out).contains("would rewrap 3, skipped 0, failed 1"),
        "{}",
        stderr(&out)
    );
    for (name, old) in names.iter().zip(&before) {
        assert!(env.get_raw(name) == *old, "{name} changed in a dry run");
    }

    // For real: the three are rewrapped, the plain object is reported.
    let out = env.run(&[
        "rewrap",
        &env.uri("dir/"),
        "-r",
        "--to-key",
        &new_id,
        "--json",
    ]);
    assert_status(&out, 1, &["rewrap -r"]);
    let report = json(&out);
    assert_eq!(report["rewrapped"], 3, "{report}");
    assert_eq!(report["failed"], 1);
    assert_eq!(report["kms_calls"], 3);
    assert_eq!(env.get_raw("dir/readme.txt"), b"not encrypted");
    // A single non-atrest object: exit 4, as for decrypt.
    let out = env.run(&["rewrap", &env.uri("dir/readme.txt"), "--to-key", &new_id]);
    assert_status(&out, 4, &["rewrap readme"]);
}

#[test]
fn a_changed_context_is_refused() {
    let Some(env) = env() else { return };
    let (new_id, _) = second_key(&env);
    std::fs::write(env.path("in"), b"secret ledger").unwrap();
    env.ok(&[
        "encrypt",
        "in",
        &env.uri("o"),
        "--key",
        &env.key_id,
        "--context",
        "app=ledger",
    ]);
    let before = env.get_raw("o");
    let out = env.run(&[
        "rewrap",
        &env.uri("o"),
        "--to-key",
        &new_id,
        "--context",
        "app=other",
    ]);
    assert_status(&out, 2, &["rewrap --context app=other"]);
    let err = stderr(&out);
    assert!(err.contains("a rewrap keeps the context"), "{err}");
    assert!(err.contains("app=ledger"), "{err}");
    assert!(env.get_raw("o") == before);
    // The same context is fine.
    env.ok(&[
        "rewrap",
        &env.uri("o"),
        "--to-key",
        &new_id,
        "--context",
        "app=ledger",
    ]);
}

#[test]
fn reencrypt_denied_and_objects_changed_meanwhile_leave_them_as_they_are() {
    let Some(env) = env() else { return };
    let (new_id, _) = second_key(&env);
    std::fs::write(env.path("in"), sample(2 * MIB, 1)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("small"), "--key", &env.key_id]);
    std::fs::write(env.path("in"), sample(11 * MIB, 2)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("large"), "--key", &env.key_id]);
    let proxy = Proxy::start(&env.endpoint);
    let rewrap = |key: &str| {
        env.atrest()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(["rewrap", &env.uri(key), "--to-key", &new_id])
            .output()
            .unwrap()
    };

    proxy.add(Op::Kms, Fault::KmsAccessDenied, 1);
    let before = env.get_raw("small");
    let out = rewrap("small");
    assert_status(&out, 3, &["rewrap, ReEncrypt denied"]);
    let err = stderr(&out);
    assert!(err.contains("cannot re-wrap the data key of"), "{err}");
    assert!(err.contains("kms:ReEncryptTo"), "{err}");
    assert!(env.get_raw("small") == before);

    // Another writer replaces the small object between atrest's read and
    // its write: the conditional PUT fails and the other writer's object
    // stays.
    let (s3, bucket) = (env.s3.clone(), env.bucket.clone());
    proxy.before(Op::PutObject, move || {
        block_on(
            s3.put_object()
                .bucket(&bucket)
                .key("small")
                .body(b"theirs".to_vec().into())
                .send(),
        )
        .unwrap();
    });
    let out = rewrap("small");
    assert_status(&out, 1, &["rewrap, small object changed"]);
    assert!(
        stderr(&out).contains("changed while atrest was working on it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.get_raw("small"), b"theirs");

    // The same for a multipart rewrite, changed before its first part is
    // read (moto ignores the ETag guards of the part copies and the
    // completion; crates/s3/tests/replace.rs shows that atrest sends them).
    let (s3, bucket) = (env.s3.clone(), env.bucket.clone());
    proxy.before(Op::GetLaterRange, move || {
        block_on(
            s3.put_object()
                .bucket(&bucket)
                .key("large")
                .body(b"theirs too".to_vec().into())
                .send(),
        )
        .unwrap();
    });
    let out = rewrap("large");
    assert_status(&out, 1, &["rewrap, large object changed"]);
    assert!(
        stderr(&out).contains("changed while atrest was working on it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.get_raw("large"), b"theirs too");
    let uploads = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(uploads.uploads().is_empty());
}

#[test]
fn rewrap_data_key_replaces_the_file_under_the_new_key() {
    let Some(env) = env() else { return };
    let (new_id, new_arn) = second_key(&env);
    env.create_data_key();
    let old = std::fs::read(env.path("data.key")).unwrap();
    let out = env.ok(&["rewrap-data-key", "--to-key", &new_id]);
    assert!(stderr(&out).contains(&new_arn), "{}", stderr(&out));
    let new = std::fs::read(env.path("data.key")).unwrap();
    assert_ne!(old, new);
    let answer = block_on(
        env.kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(new.clone()))
            .send(),
    )
    .unwrap();
    assert_eq!(answer.key_id(), Some(new_arn.as_str()));
    // The same data key: objects written with the old file decrypt, and new
    // ones encrypt.
    let old_plain = block_on(
        env.kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(old))
            .send(),
    )
    .unwrap();
    assert_eq!(old_plain.plaintext(), answer.plaintext());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("data.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(env.files(), ["data.key"], "no temporary file is left");
    // A missing file: exit 3, nothing created.
    let out = env.run(&[
        "rewrap-data-key",
        "--to-key",
        &new_id,
        "--data-key",
        "nope.key",
    ]);
    assert_status(&out, 3, &["rewrap-data-key nope.key"]);
}

/// The figures in docs/BENCHMARKS.md ("Rewrap"): bytes through the client
/// for a rewrap and for decrypting and encrypting again, of one object of
/// `ATREST_REWRAP_MEASURE_MIB` MiB (default 1024). Run by hand:
/// `cargo xtask test --no-lint -- -p atrest --test cli measure_rewrap -- --ignored --nocapture`.
#[test]
#[ignore = "moves a 1 GiB object several times; run by hand for docs/BENCHMARKS.md"]
fn measure_rewrap_traffic() {
    let Some(env) = env() else { return };
    let (new_id, _) = second_key(&env);
    let mib: usize = std::env::var("ATREST_REWRAP_MEASURE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    {
        use std::io::Write;
        let mut file = std::fs::File::create(env.path("in")).unwrap();
        for i in 0..mib {
            file.write_all(&sample(MIB, i as u64)).unwrap();
        }
    }
    env.ok(&["encrypt", "in", &env.uri("big"), "--key", &env.key_id]);
    let through = |args: &[&str]| {
        let proxy = Proxy::start(&env.endpoint);
        let started = std::time::Instant::now();
        let out = env
            .atrest()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(args)
            .output()
            .unwrap();
        assert_status(&out, 0, args);
        let (sent, received) = proxy.traffic();
        (sent, received, started.elapsed())
    };
    let (sent, received, took) = through(&["rewrap", &env.uri("big"), "--to-key", &new_id]);
    eprintln!("MEASURE rewrap {mib} MiB: sent {sent} received {received} bytes in {took:?}");
    std::fs::remove_file(env.path("in")).unwrap();
    let (d_sent, d_received, d_took) = through(&["decrypt", &env.uri("big"), "out", "--quiet"]);
    let (e_sent, e_received, e_took) = through(&[
        "encrypt",
        "out",
        &env.uri("big"),
        "--key",
        &new_id,
        "--quiet",
    ]);
    eprintln!(
        "MEASURE decrypt+encrypt {mib} MiB: sent {} received {} bytes in {:?}",
        d_sent + e_sent,
        d_received + e_received,
        d_took + e_took
    );
    block_on(env.s3.delete_object().bucket(&env.bucket).key("big").send()).unwrap();
}

/// SIGINT while a multipart rewrap is under way: the multipart upload is
/// aborted (no parts remain) and the object is as it was.
#[test]
fn sigint_during_a_multipart_rewrap_aborts_its_upload() {
    let Some(env) = env() else { return };
    let (new_id, _) = second_key(&env);
    std::fs::write(env.path("in"), sample(30 * MIB, 8)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("big"), "--key", &env.key_id]);
    let before = env.get_raw("big");
    let proxy = Proxy::start(&env.endpoint);
    // Hold the first part (the multipart upload is open by then) until the
    // signal has been sent.
    let (opened, is_open) = std::sync::mpsc::channel();
    proxy.before(Op::UploadPart, move || {
        opened.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let child = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["rewrap", &env.uri("big"), "--to-key", &new_id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    is_open
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the rewrap reaches its first part");
    let open = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert_eq!(open.uploads().len(), 1, "the multipart upload is open");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 130, &["rewrap interrupted"]);
    assert!(
        stderr(&out).contains("interrupted by SIGINT"),
        "{}",
        stderr(&out)
    );
    let open = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(open.uploads().is_empty(), "multipart upload left behind");
    assert!(env.get_raw("big") == before, "the object changed");
}

/// Another writer replacing the object while a multipart rewrap copies
/// its parts wins: the object is read once more just before the
/// completion, and the rewrap fails, leaving the newer object (moto, like
/// some S3-compatible servers, ignores If-Match on CompleteMultipartUpload:
/// the rewrap completed over the newer object and said "rewrapped").
#[test]
fn a_write_during_a_multipart_rewrap_is_not_overwritten() {
    let Some(env) = env() else { return };
    let (new_id, _) = second_key(&env);
    std::fs::write(env.path("in"), sample(12 * MIB, 3)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("big"), "--key", &env.key_id]);
    let proxy = Proxy::start(&env.endpoint);
    let (s3, bucket) = (env.s3.clone(), env.bucket.clone());
    proxy.before(Op::UploadPart, move || {
        let put = s3.put_object().bucket(&bucket).key("big");
        block_on(put.body(b"the other writer's".to_vec().into()).send()).unwrap();
    });
    let args = ["rewrap", &env.uri("big"), "--to-key", &new_id];
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(args)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("changed"), "{}", stderr(&out));
    assert_eq!(env.get_raw("big"), b"the other writer's");
    let open = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(open.uploads().is_empty(), "multipart upload left behind");
}
