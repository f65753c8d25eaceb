//! `atrest inspect` on both formats, local files, and things that are not
//! atrest objects.

use crate::harness::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn inspect_reports_header_fields_of_both_formats() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(200_000, 4);
    std::fs::write(env.path("in"), &data).unwrap();
    env.ok(&[
        "encrypt",
        "in",
        &env.uri("v2"),
        "--key",
        &env.key_id,
        "--context",
        "team=blue",
        "--frame-size",
        "16K",
    ]);
    env.ok(&["encrypt", "in", &env.uri("v1"), "--format", "v1"]);

    let v2 = json(&env.ok(&["inspect", &env.uri("v2"), "--json"]));
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["frame_size"], 16384);
    assert_eq!(v2["frames"], 13);
    assert_eq!(v2["plaintext_len"], 200_000);
    assert_eq!(v2["context"]["team"], "blue");
    assert_eq!(v2["shared_data_key"], false);
    let stored = env.get_raw("v2");
    assert_eq!(v2["object_len"], stored.len());

    let v1 = json(&env.ok(&["inspect", &env.uri("v1"), "--json"]));
    assert_eq!(v1["version"], 1);
    // 200000 bytes pad to 200016: anything from 16 bytes of padding to 1.
    assert_eq!(v1["plaintext_len_min"], 200_000);
    assert_eq!(v1["plaintext_len_max"], 200_015);
    assert_eq!(v1["context"], serde_json::Value::Null);

    let text = env.ok(&["inspect", &env.uri("v2")]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("plaintext length  200000 bytes"), "{text}");
    assert!(text.contains("  team = blue"), "{text}");

    // A local copy needs no AWS at all.
    std::fs::write(env.path("copy"), &stored).unwrap();
    let local = env
        .atrest()
        .env_clear()
        .args(["inspect", "copy", "--json"])
        .output()
        .unwrap();
    assert_status(&local, 0, &["inspect local"]);
    assert_eq!(json(&local)["plaintext_len"], 200_000);
}

#[test]
fn inspect_says_what_it_can_about_other_objects() {
    let Some(env) = env() else { return };
    env.put_raw("text", b"hello, plain world".repeat(4));
    let out = env.run(&["inspect", &env.uri("text")]);
    assert_status(&out, 4, &["inspect text"]);
    let err = stderr(&out);
    assert!(
        err.contains("is not an atrest object: invalid header: unknown format version 104"),
        "{err}"
    );
    assert!(err.contains("72 bytes, starting 68 65 6c 6c"), "{err}");

    // An Amazon S3 Encryption Client object with broken metadata (the
    // wrapped key is not base64): described as such.
    block_on(
        env.s3
            .put_object()
            .bucket(&env.bucket)
            .key("s3ec")
            .metadata("x-amz-key-v2", "AQIDAHh...")
            .metadata("x-amz-cek-alg", "AES/GCM/NoPadding")
            .body(sample(64, 1).into())
            .send(),
    )
    .unwrap();
    let out = env.run(&["inspect", &env.uri("s3ec")]);
    assert_status(&out, 4, &["inspect s3ec"]);
    assert!(
        stderr(&out)
            .contains("invalid S3 Encryption Client metadata: `x-amz-key-v2` is not valid base64"),
        "{}",
        stderr(&out)
    );

    env.put_raw("empty", Vec::new());
    let out = env.run(&["inspect", &env.uri("empty")]);
    assert_status(&out, 4, &["inspect empty"]);
    assert!(stderr(&out).ends_with("0 bytes\n"), "{}", stderr(&out));

    // A key file is no atrest object either: its bytes are a secret, and
    // none are shown (before: its first 8 of 32).
    env.ok(&["keygen", "secret.key"]);
    let key = std::fs::read(env.path("secret.key")).unwrap();
    let out = env.run(&["inspect", "secret.key"]);
    assert_status(&out, 4, &["inspect secret.key"]);
    let said = stderr(&out);
    assert!(said.ends_with("32 bytes\n"), "{said}");
    assert!(
        !said.contains(&format!("{:02x} {:02x}", key[0], key[1])),
        "{said}"
    );

    let out = env.run(&["inspect", &env.uri("missing")]);
    assert_status(&out, 3, &["inspect missing"]);
}

/// Issue 14.4: every upload records the ARN of the KMS key that wrapped its
/// data key (informational metadata); `inspect` shows it and a KMS refusal
/// names it.
#[test]
fn uploads_record_the_kms_key_arn_and_refusals_name_it() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    env.create_data_key();
    let arn_of = |key: &str| {
        let head = block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap();
        head.metadata()
            .and_then(|m| m.get("atrest-kms-key-arn").cloned())
    };
    // Single PUT and multipart; data.key (v1, v2) and a fresh key (v2).
    for (len, size) in [(1000, "small"), (12 << 20, "large")] {
        std::fs::write(env.path("in"), sample(len, 7)).unwrap();
        let v1 = format!("v1-{size}");
        let shared = format!("shared-{size}");
        let own = format!("own-{size}");
        env.ok(&["encrypt", "in", &env.uri(&v1), "--format", "v1"]);
        env.ok(&["encrypt", "in", &env.uri(&shared)]);
        env.ok(&["encrypt", "in", &env.uri(&own), "--key", &env.key_id]);
        for key in [&v1, &shared, &own] {
            assert_eq!(arn_of(key).as_deref(), Some(env.key_arn.as_str()), "{key}");
        }
    }
    std::fs::create_dir(env.path("tree")).unwrap();
    std::fs::write(env.path("tree/a"), b"a").unwrap();
    env.ok(&["encrypt", "tree", &env.uri("tree/"), "--recursive"]);
    assert_eq!(arn_of("tree/a").as_deref(), Some(env.key_arn.as_str()));

    let text = String::from_utf8(env.ok(&["inspect", &env.uri("own-small")]).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "KMS key           {} (recorded in the metadata)",
            env.key_arn
        )),
        "{text}"
    );
    let doc = json(&env.ok(&["inspect", &env.uri("v1-small"), "--json"]));
    assert_eq!(doc["kms_key_arn"], env.key_arn.as_str());

    let proxy = Proxy::start(&env.endpoint);
    proxy.add(Op::Kms, Fault::KmsAccessDenied, 1);
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["decrypt", &env.uri("own-large"), "out"])
        .output()
        .unwrap();
    assert_status(&out, 3, &["decrypt, KMS denied"]);
    let err = stderr(&out);
    assert!(err.contains("KMS refused to unwrap"), "{err}");
    assert!(
        err.contains(&format!(
            "its metadata says the data key is wrapped under {}",
            env.key_arn
        )),
        "{err}"
    );
}

/// `-` is stdin, and a pipe's or FIFO's length is what it holds (it used to
/// be "cannot open -", and a FIFO "an object of 0 bytes"); a directory is
/// named.
#[test]
fn inspect_reads_stdin_and_fifos_to_their_end() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), sample(150_000, 3)).unwrap();
    env.ok(&["encrypt", "in", "obj", "--key", &env.key_id]);
    let object = std::fs::read(env.path("obj")).unwrap();
    let from_file = json(&env.ok(&["inspect", "obj", "--json"]));
    assert_eq!(from_file["plaintext_len"], 150_000);

    let mut child = env
        .atrest()
        .args(["inspect", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &object).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 0, &["inspect", "-"]);
    let mut from_stdin = json(&out);
    from_stdin["object"] = from_file["object"].clone();
    assert_eq!(from_stdin, from_file);

    let fifo = env.path("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = std::thread::spawn(move || std::fs::write(fifo, object).unwrap());
    let from_fifo = json(&env.ok(&["inspect", "fifo", "--json"]));
    writer.join().unwrap();
    assert_eq!(from_fifo["object_len"], from_file["object_len"]);
    assert_eq!(from_fifo["plaintext_len"], 150_000);

    // A device without end whose first bytes are no header: said at once
    // (it was read forever), its length as far as it was read.
    let out = env.run(&["inspect", "/dev/zero"]);
    assert_status(&out, 4, &["inspect", "/dev/zero"]);
    assert!(
        stderr(&out).contains("unknown format version 0; more than 65536 bytes"),
        "{}",
        stderr(&out)
    );

    // (It suggested --recursive, which inspect does not have.)
    let out = env.run(&["inspect", "."]);
    assert_status(&out, 2, &["inspect", "."]);
    assert!(
        stderr(&out).contains(". is a directory: inspect takes one file or object"),
        "{}",
        stderr(&out)
    );

    // A /proc file says 0 bytes: its length is what was read (it was
    // "1408 bytes given for an object of 0 bytes").
    let out = env.run(&["inspect", "/proc/self/status"]);
    assert_status(&out, 4, &["inspect", "/proc/self/status"]);
    let err = stderr(&out);
    assert!(
        err.contains("unknown format version") && !err.contains("object of 0 bytes"),
        "{err}"
    );
}
