//! `--key-file` with S3 objects (issue 18): the same key file that serves
//! local files wraps the data keys of S3 objects, through the transfer
//! engine's key source. KMS is never called: its endpoint is made
//! unreachable for every command here.

use crate::harness::*;

/// A command whose S3 requests reach the local endpoint and whose KMS
/// requests would find nobody (port 9, closed).
fn no_kms(env: &Env, args: &[&str]) -> std::process::Output {
    env.atrest()
        .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
        .args(args)
        .output()
        .unwrap()
}

fn no_kms_ok(env: &Env, args: &[&str]) -> std::process::Output {
    let out = no_kms(env, args);
    assert_status(&out, 0, args);
    out
}

#[test]
fn key_file_objects_round_trip_through_s3_without_kms() {
    let Some(env) = env() else { return };
    env.ok(&["keygen", "k.key"]);
    // One PUT, and a multipart upload (5 MiB parts) of 11 MiB + 1.
    for (name, len) in [("small", 1000), ("multi", (11 << 20) + 1), ("empty", 0)] {
        let data = sample(len, len as u64);
        std::fs::write(env.path(name), &data).unwrap();
        let uri = env.uri(name);
        no_kms_ok(
            &env,
            &[
                "encrypt",
                name,
                &uri,
                "--key-file",
                "k.key",
                "--context",
                "app=test",
                "--part-size",
                "5",
                "--multipart-threshold",
                "5",
            ],
        );
        let out = format!("{name}.out");
        no_kms_ok(
            &env,
            &[
                "decrypt",
                &uri,
                &out,
                "--key-file",
                "k.key",
                "--expect-context",
                "app=test",
            ],
        );
        assert_eq!(std::fs::read(env.path(&out)).unwrap(), data, "{name}");
        // The object records its keyring, and says so.
        let inspect = no_kms_ok(&env, &["inspect", &uri, "--json"]);
        let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(info["keyring"], "key-file", "{name}: {info}");
    }
    // A plaintext range, to stdout.
    let uri = env.uri("multi");
    let out = no_kms_ok(
        &env,
        &[
            "decrypt",
            &uri,
            "-",
            "--key-file",
            "k.key",
            "--range",
            "5242870-5242889",
        ],
    );
    let data = sample((11 << 20) + 1, (11 << 20) + 1);
    assert_eq!(out.stdout, &data[5242870..5242890]);
}

#[test]
fn key_file_objects_need_their_key_file_and_kms_objects_need_kms() {
    let Some(env) = env() else { return };
    env.ok(&["keygen", "right.key"]);
    env.ok(&["keygen", "wrong.key"]);
    std::fs::write(env.path("in"), b"secret").unwrap();
    std::fs::write(env.path("out"), b"keep me").unwrap();
    let file_obj = env.uri("file-obj");
    no_kms_ok(
        &env,
        &["encrypt", "in", &file_obj, "--key-file", "right.key"],
    );

    // Another key file: authentication fails, one line, exit 4.
    let out = no_kms(
        &env,
        &["decrypt", &file_obj, "out", "--key-file", "wrong.key"],
    );
    assert_status(&out, 4, &["decrypt with wrong.key"]);
    assert_eq!(
        stderr(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
    // No key file: says what to pass, before any KMS call.
    let out = no_kms(&env, &["decrypt", &file_obj, "out"]);
    assert_status(&out, 2, &["decrypt without --key-file"]);
    assert!(stderr(&out).contains("pass --key-file"), "{}", stderr(&out));

    // A KMS object (per-object key) with a key file: leave it out.
    let kms_obj = env.uri("kms-obj");
    // The KMS endpoint of `no_kms` really is unreachable.
    let out = no_kms(&env, &["encrypt", "in", &kms_obj, "--key", &env.key_id]);
    assert_status(&out, 1, &["encrypt --key with KMS unreachable"]);
    assert!(stderr(&out).contains("KMS"), "{}", stderr(&out));
    env.ok(&["encrypt", "in", &kms_obj, "--key", &env.key_id]);
    let out = no_kms(
        &env,
        &["decrypt", &kms_obj, "out", "--key-file", "right.key"],
    );
    assert_status(&out, 2, &["decrypt a KMS object with --key-file"]);
    assert!(
        stderr(&out).contains("leave out --key-file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"keep me");

    // What a key file cannot make: v1, and S3 Encryption Client objects.
    for format in ["v1", "s3ec-v3"] {
        let args = [
            "encrypt",
            "in",
            &env.uri("nope"),
            "--key-file",
            "right.key",
            "--format",
            format,
        ];
        let out = no_kms(&env, &args);
        assert_status(&out, 2, &args);
    }
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key("nope").send());
    assert!(head.is_err(), "an object was written");
    assert!(!env.files().iter().any(|f| f.contains(".partial")));
}

#[test]
fn recursive_runs_use_the_key_file_and_make_no_kms_calls() {
    let Some(env) = env() else { return };
    env.ok(&["keygen", "k.key"]);
    std::fs::create_dir_all(env.path("tree/sub")).unwrap();
    let files = ["a.txt", "sub/b.bin", "sub/c"];
    for (i, f) in files.iter().enumerate() {
        std::fs::write(
            env.path(&format!("tree/{f}")),
            sample(100 * i + 1, i as u64),
        )
        .unwrap();
    }
    let prefix = env.uri("tree/");
    let out = no_kms_ok(
        &env,
        &["encrypt", "tree", &prefix, "-r", "--key-file", "k.key"],
    );
    assert!(stderr(&out).contains("0 KMS calls"), "{}", stderr(&out));
    let out = no_kms_ok(
        &env,
        &["decrypt", &prefix, "back", "-r", "--key-file", "k.key"],
    );
    assert!(stderr(&out).contains("0 KMS calls"), "{}", stderr(&out));
    for (i, f) in files.iter().enumerate() {
        let back = std::fs::read(env.path(&format!("back/{f}"))).unwrap();
        assert_eq!(back, sample(100 * i + 1, i as u64), "{f}");
    }
}

/// Before, `verify` took no --key-file (a key-file object "did not
/// verify", exit 4) and `rewrap` sent a key-file object's wrapped key to
/// KMS, then called the object corrupted. Now verify reads it with its key
/// file, and rewrap refuses it without asking KMS (exit 2).
#[test]
fn key_file_objects_verify_with_their_key_file_and_are_not_rewrapped() {
    let Some(env) = env() else { return };
    env.ok(&["keygen", "k.key"]);
    std::fs::write(env.path("f"), sample(70_000, 5)).unwrap();
    let uri = env.uri("f");
    no_kms_ok(&env, &["encrypt", "f", &uri, "--key-file", "k.key"]);
    let out = no_kms_ok(&env, &["verify", &uri, "--key-file", "k.key"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("verified "));
    let out = no_kms(&env, &["verify", &uri]);
    assert_status(&out, 4, &["verify without the key file"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("wrapped under a key file"), "{said}");
    for dry in [&[][..], &["--dryrun"]] {
        let args = [&["rewrap", &uri, "--to-key", &env.key_id][..], dry].concat();
        // KMS is unreachable: a request to it would fail otherwise.
        let out = no_kms(&env, &args);
        assert_status(&out, 2, &args);
        assert!(
            stderr(&out).contains("wrapped under a key file, not by KMS"),
            "{}",
            stderr(&out)
        );
    }
    no_kms_ok(&env, &["decrypt", &uri, "back", "--key-file", "k.key"]);
    assert_eq!(std::fs::read(env.path("back")).unwrap(), sample(70_000, 5));
}
