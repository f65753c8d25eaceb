use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::harness::*;

/// Encrypts `data`, checks the stored object's format, decrypts, compares.
fn round_trip(env: &Env, name: &str, data: &[u8], extra: &[&str]) {
    std::fs::write(env.path(name), data).unwrap();
    let uri = env.uri(&format!("rt/{name}"));
    let out_name = format!("{name}.out");
    let mut args = vec!["encrypt-with-kms", name, &uri];
    args.extend_from_slice(extra);
    env.ok(&args);
    env.ok(&["decrypt-with-kms", &uri, &out_name]);
    let back = std::fs::read(env.path(&out_name)).unwrap();
    assert!(
        back == data,
        "{name}: round trip differs ({} vs {} bytes)",
        back.len(),
        data.len()
    );
    // The stored object is ciphertext: the plaintext does not appear in it.
    let stored = env.get_raw(&format!("rt/{name}"));
    let version = if extra.windows(2).any(|w| w == ["--format", "v1"]) {
        1
    } else {
        2
    };
    assert_eq!(stored[0], version, "format version byte");
    if data.len() >= 16 {
        assert!(!stored.windows(16).any(|w| w == &data[..16]));
    }
}

#[test]
fn small_sizes_round_trip_in_both_formats() {
    let Some(env) = env() else { return };
    env.create_data_key();
    for (i, len) in [0usize, 1, 15, 16, 17, 4096, 65535, 65536, 65537]
        .into_iter()
        .enumerate()
    {
        let data = sample(len, i as u64);
        round_trip(&env, &format!("v2-{len}"), &data, &[]);
        round_trip(&env, &format!("v1-{len}"), &data, &["--format", "v1"]);
    }
}

#[test]
fn multipart_round_trip_and_no_leftover_uploads() {
    let Some(env) = env() else { return };
    env.create_data_key();
    // 5 MiB + 1 with 5 MiB parts: two parts, the second one byte plus padding.
    round_trip(
        &env,
        "f5m",
        &sample(5 * 1024 * 1024 + 1, 7),
        &["--part-size", "5"],
    );
    // Exactly one part of plaintext (80 frames of 64 KiB): the input ends on
    // the boundary of what the encryptor reads per part.
    round_trip(
        &env,
        "f5m-exact",
        &sample(5 * 1024 * 1024, 8),
        &["--part-size", "5"],
    );
    let uploads = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(uploads.uploads().is_empty(), "orphaned multipart uploads");
}

#[test]
fn large_object_round_trip() {
    let Some(env) = env() else { return };
    env.create_data_key();
    round_trip(
        &env,
        "f64m",
        &sample(64 * 1024 * 1024, 64),
        &["--concurrency", "2"],
    );
}

#[test]
fn data_key_file_is_private_and_replaced_with_notice() {
    let Some(env) = env() else { return };
    let out = env.ok(&["create-data-key", &env.key_id]);
    assert!(stderr(&out).contains("wrote data.key"), "{}", stderr(&out));
    let first = std::fs::read(env.path("data.key")).unwrap();
    let mode = std::fs::metadata(env.path("data.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The file is exactly a KMS ciphertext blob: KMS can decrypt it as is.
    let plain = block_on(
        env.kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(first.clone()))
            .send(),
    )
    .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref().len(), 32);

    let out = env.ok(&["create-data-key", &env.key_id]);
    assert!(
        stderr(&out).contains("replaced the existing data.key"),
        "{}",
        stderr(&out)
    );
    assert_ne!(std::fs::read(env.path("data.key")).unwrap(), first);
    assert_eq!(env.files(), vec!["data.key"], "no temporary files left");
}

/// `create-data-key` does not replace a file that is plainly something
/// else: binary files of common formats (an image, a private key) passed
/// the shape checks and were destroyed; nor one larger than KMS's
/// ciphertext limit; a device, FIFO or descriptor path is refused
/// (/dev/null "was replaced", a FIFO blocked for a reader, `/dev/stdout
/// >> data.key` appended a second key). Nothing is sent to KMS to tell.
#[test]
fn create_data_key_replaces_only_what_may_be_a_wrapped_data_key() {
    let Some(env) = env() else { return };
    let png = [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], &sample(300, 7)].concat();
    std::fs::write(env.path("photo.png"), &png).unwrap();
    let der = [&b"\x30\x82\x04\xa4\x02\x01"[..], &sample(1100, 8)].concat();
    std::fs::write(env.path("key.der"), &der).unwrap();
    let big = [&b"\x01\x02\xff"[..], &sample(7000, 9)].concat();
    std::fs::write(env.path("big"), big).unwrap();
    let cases = [
        ("photo.png", "it begins as a PNG image does"),
        ("key.der", "it begins as a DER key or certificate does"),
        ("big", "larger than any KMS ciphertext"),
    ];
    for (name, why) in cases {
        let before = std::fs::read(env.path(name)).unwrap();
        // KMS unreachable: the refusal asks nothing of it.
        let args = ["create-data-key", &env.key_id, "--data-key", name];
        let out = env
            .atrest()
            .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
            .args(args)
            .output()
            .unwrap();
        assert_status(&out, 2, &args);
        let err = stderr(&out);
        assert!(
            err.contains("is not a wrapped data key") && err.contains(why),
            "{err}"
        );
        assert_eq!(std::fs::read(env.path(name)).unwrap(), before);
    }
    crate::special::mkfifo(&env.path("fifo"));
    for path in ["/dev/null", "fifo", "/dev/stdout"] {
        let args = ["create-data-key", &env.key_id, "--data-key", path];
        let out = env.run(&args);
        assert_status(&out, 2, &args);
        assert!(
            stderr(&out).contains("writes a regular file"),
            "{}",
            stderr(&out)
        );
    }
    // A real one is replaced.
    env.ok(&["create-data-key", &env.key_id, "--data-key", "d.key"]);
    let out = env.ok(&["create-data-key", &env.key_id, "--data-key", "d.key"]);
    assert!(
        stderr(&out).contains("replaced the existing d.key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn key_can_be_named_by_id_arn_alias_and_alias_arn() {
    let Some(env) = env() else { return };
    let alias = format!("alias/atrest-{}", env.bucket);
    block_on(
        env.kms
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&env.key_id)
            .send(),
    )
    .unwrap();
    let alias_arn = format!("arn:aws:kms:us-east-1:123456789012:{alias}");
    for (i, name) in [&env.key_id, &env.key_arn, &alias, &alias_arn]
        .into_iter()
        .enumerate()
    {
        env.ok(&["create-data-key", name]);
        round_trip(&env, &format!("named{i}"), b"named key", &[]);
    }
}

#[test]
fn stdin_and_stdout_stream() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(300_000, 3);
    let uri = env.uri("piped");
    let mut child = env
        .atrest()
        .args(["encrypt", "-", &uri])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success());
    let out = env.ok(&["decrypt", &uri, "-"]);
    assert!(out.stdout == data, "stdout differs");
}

#[test]
fn explicit_data_key_path_and_flags() {
    let Some(env) = env() else { return };
    env.ok(&["create-data-key", &env.key_id, "--data-key", "keys.bin"]);
    std::fs::write(env.path("in"), b"flags").unwrap();
    let uri = env.uri("flags");
    // Configuration by flags instead of environment.
    let out = env
        .atrest()
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .args(["--endpoint-url", &env.endpoint, "--region", "us-east-1"])
        .args([
            "encrypt",
            "in",
            &uri,
            "--data-key",
            "keys.bin",
            "--format",
            "v1",
        ])
        .output()
        .unwrap();
    assert_status(&out, 0, &["encrypt with flags"]);
    env.ok(&["decrypt", &uri, "out"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"flags");
}

/// A v1 object larger than the first GET decrypts into a file from
/// concurrent ranged GETs (each fetching the block before its run as IV);
/// the result is exact however it is split, to a file and to stdout, and a
/// broken padding or a body that is not whole blocks still fails.
#[test]
fn v1_objects_decrypt_from_concurrent_streams() {
    let Some(env) = env() else { return };
    env.create_data_key();
    // 12 MiB + 5: three runs of 5 MiB parts, the last one short and padded.
    let data = sample(12 * 1024 * 1024 + 5, 31);
    std::fs::write(env.path("big"), &data).unwrap();
    let uri = env.uri("v1-big");
    env.ok(&["encrypt", "big", &uri, "--format", "v1"]);
    for extra in [
        &[][..],
        &["--part-size", "5"][..],
        &["--part-size", "5", "--concurrency", "1"][..],
    ] {
        let mut args = vec!["decrypt", &uri, "out", "-q"];
        args.extend_from_slice(extra);
        env.ok(&args);
        assert!(std::fs::read(env.path("out")).unwrap() == data, "{extra:?}");
        std::fs::remove_file(env.path("out")).unwrap();
    }

    let object = env.get_raw("v1-big");
    // Flipping the last bit of the next-to-last ciphertext block flips the
    // last plaintext byte: the padding length, now wrong.
    let mut bad_padding = object.clone();
    let at = object.len() - 17;
    bad_padding[at] ^= 0x01;
    let cases = [
        ("bad-padding", bad_padding),
        ("not-whole-blocks", object[..object.len() - 1].to_vec()),
    ];
    for (name, bytes) in cases {
        env.put_raw(name, bytes);
        let out = env.run(&["decrypt", &env.uri(name), "out", "-q", "--part-size", "5"]);
        assert_status(&out, 4, &[name]);
        assert!(!env.path("out").exists(), "{name}: output written");
    }
}
