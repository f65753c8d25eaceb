//! Every failure gives one clear line on stderr and the documented exit
//! status, and leaves the user's files as they were.

use crate::harness::*;

/// Runs `args`, checks the exit status and that stderr names `needle`.
fn fails(env: &Env, args: &[&str], status: i32, needle: &str) {
    let out = env.run(args);
    assert_status(&out, status, args);
    let err = stderr(&out);
    assert!(
        err.contains(needle),
        "atrest {}: stderr lacks {needle:?}:\n{err}",
        args.join(" ")
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected:\n{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let out = env.run(&["encrypt", "in", "http://bucket/key"]);
    assert_status(&out, 2, &["bad scheme"]);
    assert!(stderr(&out).contains("not an S3 URI"));
    // (An upload to `s3://bucket` goes into the bucket, as `aws s3 cp`;
    // a download needs a key.)
    let out = env.run(&["decrypt", "s3://bucket", "out"]);
    assert_status(&out, 2, &["no key"]);
    assert!(stderr(&out).contains("names no object key"));
    let out = env.run(&["decrypt", "s3:///key", "out"]);
    assert_status(&out, 2, &["no bucket"]);
    let out = env.run(&["frobnicate"]);
    assert_status(&out, 2, &["unknown command"]);
    fails(&env, &["encrypt", ".", &env.uri("k")], 2, "is a directory");
}

#[test]
fn missing_data_key_says_how_to_make_one() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    fails(
        &env,
        &["encrypt", "in", &env.uri("k")],
        3,
        "run `atrest create-data-key",
    );
    // An empty one is refused here, not sent to KMS (which called the
    // object corrupted).
    std::fs::write(env.path("data.key"), b"").unwrap();
    let args = ["encrypt", "in", &env.uri("k")];
    fails(&env, &args, 2, "data.key is empty: no wrapped data key");
}

/// An empty KMS key name is a usage error, not "KMS key not found".
#[test]
fn empty_kms_key_names_are_usage_errors() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let uri = env.uri("k");
    for args in [
        &["create-data-key", ""][..],
        &["rewrap", &uri, "--to-key", ""],
        &["rewrap-data-key", "--to-key", ""],
        &["upgrade", &uri, "--key", ""],
    ] {
        let out = env.run(args);
        assert_status(&out, 2, args);
        assert!(
            stderr(&out).starts_with("atrest: error: a value is required"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn missing_input_file() {
    let Some(env) = env() else { return };
    env.create_data_key();
    fails(
        &env,
        &["encrypt", "nope.txt", &env.uri("k")],
        3,
        "cannot open nope.txt",
    );
}

#[test]
fn no_credentials() {
    let Some(env) = env() else { return };
    let out = env
        .atrest()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["decrypt", &env.uri("k"), "out"])
        .output()
        .unwrap();
    assert_status(&out, 3, &["no credentials"]);
    assert!(
        stderr(&out).contains("no usable AWS credentials"),
        "{}",
        stderr(&out)
    );
}

/// (moto does not enforce disabled keys; `atrest-kms`'s unit tests cover the
/// DisabledException mapping with a mocked client.)
#[test]
fn kms_key_not_found() {
    let Some(env) = env() else { return };
    fails(
        &env,
        &["create-data-key", "alias/does-not-exist"],
        3,
        "KMS key not found",
    );
    fails(
        &env,
        &["create-data-key", "11111111-2222-3333-4444-555555555555"],
        3,
        "KMS key not found",
    );
}

#[test]
fn bucket_or_object_not_found() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"x").unwrap();
    fails(
        &env,
        &["encrypt", "in", "s3://no-such-bucket-atrest/k"],
        3,
        "bucket `no-such-bucket-atrest` does not exist",
    );
    fails(
        &env,
        &["decrypt", "s3://no-such-bucket-atrest/k", "out"],
        3,
        "does not exist",
    );
    fails(
        &env,
        &["decrypt", &env.uri("missing"), "out"],
        3,
        "does not exist",
    );
}

#[test]
fn objects_that_are_not_atrest_objects() {
    let Some(env) = env() else { return };
    env.put_raw("plain.txt", b"just some text".to_vec());
    env.put_raw("empty", Vec::new());
    env.put_raw("short", vec![1, 0, 0]);
    env.put_raw("reserved", vec![1, 9, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
    fails(
        &env,
        &["decrypt", &env.uri("plain.txt"), "out"],
        4,
        "not an atrest object",
    );
    fails(
        &env,
        &["decrypt", &env.uri("empty"), "out"],
        4,
        "not an atrest object",
    );
    fails(
        &env,
        &["decrypt", &env.uri("short"), "out"],
        4,
        "not an atrest object",
    );
    fails(
        &env,
        &["decrypt", &env.uri("reserved"), "out"],
        4,
        "not an atrest object",
    );
}

#[test]
fn corrupted_object_leaves_existing_output_untouched() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), sample(1000, 1)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("obj")]);
    let mut object = env.get_raw("obj");
    // Truncated: the ciphertext is no longer a whole number of blocks.
    object.truncate(object.len() - 5);
    env.put_raw("obj", object);
    std::fs::write(env.path("out"), b"precious").unwrap();
    let before = env.files();
    fails(
        &env,
        &["decrypt", &env.uri("obj"), "out"],
        4,
        "decryption failed",
    );
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"precious");
    assert_eq!(env.files(), before, "no partial or temporary files");
}

#[test]
fn output_through_a_file_fails_before_downloading() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("no"), b"a file").unwrap();
    fails(
        &env,
        &["decrypt", &env.uri("whatever"), "no/such/dir/out"],
        3,
        "cannot write no/such/dir/out: no is not a directory",
    );
}

#[test]
fn control_characters_in_keys_are_escaped_in_errors() {
    let Some(env) = env() else { return };
    let out = env.run(&["decrypt", &env.uri("evil\u{1b}[2J\nkey"), "out"]);
    assert_status(&out, 3, &["decrypt evil key"]);
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "raw escape in {err:?}");
    assert!(err.contains("evil\\u{1b}[2J\\nkey"), "{err:?}");
    assert_eq!(err.trim_end().lines().count(), 1);
}

/// A key holding a right-to-left override shows `invoice<U+202E>fdp.exe`
/// as "invoiceexe.pdf" on a terminal: invisible reordering and zero-width
/// characters are escaped in listings and messages, as control characters.
#[test]
fn invisible_reordering_characters_in_keys_are_escaped() {
    let Some(env) = env() else { return };
    let key = "bidi/invoice\u{202e}fdp.exe\u{200b}";
    env.put_raw(key, b"plain".to_vec());
    let out = env.ok(&["ls", &env.uri("bidi/")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{200b}'),
        "{text:?}"
    );
    assert!(
        text.contains("invoice\\u{202e}fdp.exe\\u{200b}"),
        "{text:?}"
    );
    let out = env.run(&["decrypt", &env.uri(key), "out"]);
    let err = stderr(&out);
    assert!(!err.contains('\u{202e}'), "{err:?}");
    assert!(err.contains("invoice\\u{202e}fdp.exe"), "{err:?}");
}

#[test]
fn unreachable_endpoint_is_one_short_line() {
    let Some(env) = env() else { return };
    // Port 9 (discard) on loopback: nothing listens; refused at once.
    let out = env
        .atrest()
        .args(["--endpoint-url", "http://127.0.0.1:9"])
        .args(["decrypt", &env.uri("k"), "out"])
        .output()
        .unwrap();
    assert_status(&out, 1, &["unreachable endpoint"]);
    let err = stderr(&out);
    assert!(err.contains("could not reach S3"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // The cause, not every layer of the SDK's error.
    assert!(err.len() < 200, "{} characters: {err}", err.len());
    assert!(!env.path("out").exists());
}

/// A file whose size is not its length (/proc says 0 bytes whatever it
/// holds) cannot be uploaded as that size says: one line naming the way
/// round (stdin), exit 1, no object; the way round works.
#[test]
fn a_file_whose_size_is_not_its_length_is_refused_with_the_way_round() {
    let Some(env) = env() else { return };
    let uri = env.uri("status");
    fails(
        &env,
        &["encrypt", "/proc/self/status", &uri, "--key", &env.key_id],
        1,
        "its size (0 bytes) is not its length (a /proc or /sys file?); give it on stdin: atrest cp - ",
    );
    let out = env.run(&["inspect", &uri]);
    assert_status(&out, 3, &["no object was created"]);
    let stdin = std::fs::File::open("/proc/self/status").unwrap();
    let out = env
        .atrest()
        .args(["cp", "-", &uri, "--key", &env.key_id])
        .stdin(stdin)
        .output()
        .unwrap();
    assert_status(&out, 0, &["cp - from /proc/self/status"]);
    let out = env.ok(&["cp", &uri, "-"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Name:"));
}

/// A context key given twice is one usage error naming it, before
/// anything is read or sent, for every command that takes pairs.
#[test]
fn a_context_key_given_twice_is_a_usage_error() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let uri = env.uri("k");
    let twice = ["--context", "k=1", "--context", "k=2"];
    let expect = ["--expect-context", "k=1", "--expect-context", "k=1"];
    for (args, flag) in [
        (vec!["cp", "in", &uri, "--key", &env.key_id], "--context"),
        (
            vec!["encrypt", "in", "out", "--key", &env.key_id],
            "--context",
        ),
        (vec!["rewrap", &uri, "--to-key", &env.key_id], "--context"),
        (vec!["cp", &uri, "out"], "--expect-context"),
        (vec!["sync", &env.uri("p/"), "dir"], "--expect-context"),
    ] {
        let pairs = if flag == "--context" { &twice } else { &expect };
        let args = [&args[..], &pairs[..]].concat();
        fails(&env, &args, 2, &format!("{flag} gives `k` twice"));
    }
    assert!(!env.path("out").exists() && !env.path("dir").exists());
}

/// Small files named by flags (data.key, the CA bundle, a manifest) that
/// are a device, a directory or far too large fail at once with one line
/// (`/dev/zero` was read until memory ran out); a FIFO still feeds the
/// data key, as `--data-key <(...)` does.
#[test]
fn devices_and_directories_as_small_files_fail_at_once() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"x").unwrap();
    std::fs::write(env.path("huge.key"), vec![1u8; 100_000]).unwrap();
    let to = env.uri("x");
    let cases: [(&[&str], &str); 6] = [
        (
            &["encrypt", "in", &to, "--data-key", "/dev/zero"],
            "a device, not a file",
        ),
        (
            &["encrypt", "in", &to, "--data-key", "."],
            "a directory, not a file",
        ),
        (
            &["encrypt", "in", &to, "--data-key", "huge.key"],
            "larger than 65536 bytes",
        ),
        (
            &[
                "rewrap-data-key",
                "--to-key",
                &env.key_id,
                "--data-key",
                "/dev/zero",
            ],
            "a device",
        ),
        (
            &["ls", "-r", &env.uri(""), "--manifest", "/dev/zero"],
            "not a manifest file",
        ),
        (
            &["ls", &env.uri(""), "--ca-bundle", "/dev/zero"],
            "not a regular file",
        ),
    ];
    for (args, needle) in cases {
        let out = crate::special::output_within(
            env.atrest().args(args),
            std::time::Duration::from_secs(30),
        );
        assert_status(&out, 2, args);
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(block_on(env.s3.head_object().bucket(&env.bucket).key("x").send()).is_err());

    let fifo = env.path("key.fifo");
    crate::special::mkfifo(&fifo);
    let key = std::fs::read(env.path("data.key")).unwrap();
    let writer = std::thread::spawn(move || std::fs::write(fifo, key).unwrap());
    env.ok(&["encrypt", "in", &to, "--data-key", "key.fifo"]);
    writer.join().unwrap();
    env.ok(&["decrypt", &to, "out"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"x");
}

/// Values that crashed, wrote in the wrong place, or failed only at S3:
/// each is now a usage error (exit 2) before anything is sent. Before:
/// `decrypt IN s3://b/k` wrote the plaintext into a local directory `s3:`
/// (exit 0), huge time limits panicked in the SDK, `--expected-size 500T`
/// aborted allocating a 55 GB part, and non-ASCII metadata came back
/// garbled.
#[test]
fn values_that_cannot_work_are_usage_errors() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let (uri, key) = (env.uri("k"), env.key_id.as_str());
    let huge = "9223372036854775807";
    for args in [
        &["decrypt", "in", "s3://bucket/key"][..],
        &["encrypt", "in", "s3:/bucket/key", "--key", key],
        &["encrypt", "S3://bucket/key", "out", "--key", key],
        &[
            "--cli-connect-timeout",
            huge,
            "cp",
            "in",
            &uri,
            "--key",
            key,
        ],
        &["--cli-read-timeout", huge, "cp", "in", &uri, "--key", key],
        &["cp", "-", &uri, "--key", key, "--expected-size", "500T"],
        &["cp", "in", &uri, "--key", key, "--metadata", "k=значение"],
        // Formats without frames (the flag was ignored).
        &["cp", "in", &uri, "--format", "v1", "--frame-size", "1M"],
        &[
            "cp",
            "in",
            &uri,
            "--key",
            key,
            "--format",
            "s3ec-v3",
            "--frame-size",
            "4K",
        ],
        &[
            "encrypt",
            "in",
            "out",
            "--format",
            "v1",
            "--frame-size",
            "4K",
        ],
        &["sync", ".", &uri, "--format", "v1", "--frame-size", "4K"],
        // Key files are local files (`-` is no file to write a key into).
        &["keygen", "s3:/bucket/k"],
        &["create-data-key", key, "--data-key", "-"],
        &["cp", "in", &uri, "--data-key", "s3://bucket/data.key"],
    ] {
        let out = env.run(args);
        assert_status(&out, 2, args);
        assert!(
            stderr(&out).starts_with("atrest: error: "),
            "{}",
            stderr(&out)
        );
    }
    assert!(!env.path("s3:").exists());
    assert!(crate::bulk::keys(&env, "").is_empty());
}

/// An argument that names S3 but is not UTF-8 (no S3 key can be) is a
/// usage error: encrypt and decrypt took it for a local path, wrote
/// `./s3:/b/...` (decrypt: the plaintext) and exited 0, uploading nothing.
#[test]
fn an_s3_uri_that_is_not_utf8_is_refused_not_written_locally() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("f"), b"data").unwrap();
    env.ok(&["encrypt", "f", &env.uri("ok")]);
    let bad = format!("s3://{}/k\u{1}", env.bucket).into_bytes();
    let bad = [&bad[..bad.len() - 1], b"\xff"].concat();
    let bad = OsStr::from_bytes(&bad);
    let ok = env.uri("ok");
    for args in [
        [OsStr::new("encrypt"), OsStr::new("f"), bad],
        [OsStr::new("decrypt"), OsStr::new(&ok), bad],
        [OsStr::new("encrypt"), bad, OsStr::new("out")],
        [OsStr::new("cp"), OsStr::new("f"), bad],
    ] {
        let out = env.atrest().args(args).output().unwrap();
        assert_status(&out, 2, &[&format!("{args:?}")]);
        assert!(
            stderr(&out).contains("valid UTF-8"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!env.path("s3:").exists());
    assert!(!env.path("out").exists());
}

/// `--key ""` is a usage error before any request (KMS was asked, and
/// said "not found", exit 3), as `rewrap --to-key ""` is.
#[test]
fn an_empty_kms_key_is_a_usage_error() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"x").unwrap();
    for args in [
        ["encrypt", "f", &env.uri("e"), "--key", ""],
        ["encrypt", "f", &env.uri("e"), "--key", " "],
    ] {
        let out = env
            .atrest()
            .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
            .args(args)
            .output()
            .unwrap();
        assert_status(&out, 2, &args);
        assert!(
            stderr(&out).contains("--key needs a KMS key"),
            "{}",
            stderr(&out)
        );
    }
}
