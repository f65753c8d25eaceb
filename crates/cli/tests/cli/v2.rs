//! Format v2 through the binary: contexts, ranges, tampering.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::*;

fn encrypt(env: &Env, name: &str, data: &[u8], extra: &[&str]) -> String {
    std::fs::write(env.path(name), data).unwrap();
    let uri = env.uri(name);
    let mut args = vec!["encrypt", name, &uri];
    args.extend_from_slice(extra);
    env.ok(&args);
    uri
}

#[test]
fn context_is_stored_checked_and_bound_by_kms() {
    let Some(env) = env() else { return };
    let uri = encrypt(
        &env,
        "ctx",
        b"context",
        &[
            "--key",
            &env.key_id,
            "--context",
            "app=atrest",
            "--context",
            "tier=gold",
        ],
    );
    env.ok(&[
        "decrypt",
        &uri,
        "out",
        "--expect-context",
        "app=atrest",
        "--expect-context",
        "tier=gold",
    ]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"context");
    let out = env.run(&["decrypt", &uri, "out2", "--expect-context", "app=other"]);
    assert_status(&out, 4, &["wrong context"]);
    assert!(
        stderr(&out).contains("has app=atrest, expected app=other"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["decrypt", &uri, "out2", "--expect-context", "missing=x"]);
    assert_status(&out, 4, &["missing context"]);
    assert!(stderr(&out).contains("lacks missing=x"));
    assert!(!env.path("out2").exists());

    // The header's context is what KMS bound the wrapped key to: unwrapping
    // without it fails at KMS.
    let object = env.get_raw("ctx");
    let header = match atrest_format::parse_header(&object).unwrap() {
        atrest_format::Parsed::Complete(atrest_format::Header::V2(h)) => h,
        other => panic!("{other:?}"),
    };
    let ctx: std::collections::HashMap<String, String> =
        header.context().to_pairs().into_iter().collect();
    assert_eq!(ctx.get("app").map(String::as_str), Some("atrest"));
    let bound = block_on(
        env.kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(header.wrapped_key()))
            .set_encryption_context(Some(ctx))
            .send(),
    );
    assert!(bound.is_ok());
    let unbound = block_on(
        env.kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(header.wrapped_key()))
            .send(),
    );
    assert!(unbound.is_err(), "the wrapped key must need its context");
}

#[test]
fn reserved_or_malformed_context_is_a_usage_error() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"x").unwrap();
    let out = env.run(&[
        "encrypt",
        "in",
        &env.uri("k"),
        "--context",
        "atrest:format=v9",
    ]);
    assert_status(&out, 2, &["reserved context"]);
    let out = env.run(&["encrypt", "in", &env.uri("k"), "--context", "novalue"]);
    assert_status(&out, 2, &["malformed context"]);
    let out = env.run(&[
        "encrypt",
        "in",
        &env.uri("k"),
        "--context",
        "a=b",
        "--format",
        "v1",
    ]);
    assert_status(&out, 2, &["context with v1"]);
    let out = env.run(&["encrypt", "in", &env.uri("k"), "--frame-size", "3K"]);
    assert_status(&out, 2, &["bad frame size"]);
}

#[test]
fn ranges_at_frame_edges() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(3 * 4096 + 100, 11);
    let uri = encrypt(&env, "ranged", &data, &["--frame-size", "4K"]);
    let n = data.len() as u64;
    let cases: Vec<(u64, Option<u64>)> = vec![
        (0, Some(0)),
        (0, Some(4095)),
        (4095, Some(4096)),
        (4096, Some(8191)),
        (8191, Some(12288)),
        (12288, None),
        (n - 1, Some(n - 1)),
        (5, Some(n - 1)),
        (0, None),
        (100, Some(n + 1000)),
    ];
    for (i, (start, end)) in cases.into_iter().enumerate() {
        let range = match end {
            Some(end) => format!("{start}-{end}"),
            None => format!("{start}-"),
        };
        let out = format!("r{i}");
        env.ok(&["decrypt", &uri, &out, "--range", &range]);
        let stop = end.map_or(n, |e| (e + 1).min(n)) as usize;
        assert!(
            std::fs::read(env.path(&out)).unwrap() == data[start as usize..stop],
            "range {range}"
        );
    }
    // As HTTP names them: a `bytes=` unit, and suffixes (the last N bytes,
    // all of them if fewer), also as a separate argument.
    let len = data.len();
    let suffixes: [(&[&str], std::ops::Range<usize>); 5] = [
        (&["--range", "bytes=4095-4096"], 4095..4097),
        (&["--range=-1"], len - 1..len),
        (&["--range", "-4097"], len - 4097..len),
        (&["--range", "bytes=-100"], len - 100..len),
        (&["--range", &format!("-{}", n + 5)], 0..len),
    ];
    for (i, (flag, want)) in suffixes.into_iter().enumerate() {
        let out = format!("s{i}");
        env.ok(&[&["decrypt", &uri, &out][..], flag].concat());
        assert!(
            std::fs::read(env.path(&out)).unwrap() == data[want],
            "{flag:?}"
        );
    }
    for (range, why) in [
        (format!("{n}-"), "range past the end"),
        ("9-3".into(), "backwards range"),
        ("-0".into(), "an empty suffix"),
        ("bytes=".into(), "no range"),
        ("--5".into(), "not a number"),
    ] {
        let out = env.run(&["decrypt", &uri, "x", &format!("--range={range}")]);
        assert_status(&out, 2, &[why]);
    }
}

#[test]
fn v1_objects_warn_unless_quiet() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let uri = encrypt(&env, "old", b"legacy", &["--format", "v1"]);
    let out = env.ok(&["decrypt", &uri, "a"]);
    assert!(
        stderr(&out).contains("is a v1 object: it is not authenticated")
            && stderr(&out).contains("`atrest upgrade` re-encrypts it as v2"),
        "{}",
        stderr(&out)
    );
    let out = env.ok(&["--quiet", "decrypt", &uri, "b"]);
    assert_eq!(stderr(&out), "");
    let out = env.run(&["decrypt", &uri, "c", "--range", "0-1"]);
    assert_status(&out, 2, &["range on v1"]);
}

#[test]
fn shared_data_key_objects_and_fresh_key_objects_both_decrypt() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let shared = encrypt(&env, "shared", b"s", &[]);
    let fresh = encrypt(&env, "fresh", b"f", &["--key", &env.key_id]);
    // No data.key needed to decrypt either.
    std::fs::remove_file(env.path("data.key")).unwrap();
    env.ok(&["decrypt", &shared, "s.out"]);
    env.ok(&["decrypt", &fresh, "f.out"]);
    assert_eq!(std::fs::read(env.path("s.out")).unwrap(), b"s");
    assert_eq!(std::fs::read(env.path("f.out")).unwrap(), b"f");
    // Two objects from one data.key share the data key but not the frame
    // key: their salts differ.
    let a = env.get_raw("shared");
    let uri_b = encrypt(&env, "shared2", b"s", &["--key", &env.key_id]);
    let _ = uri_b;
    let b = env.get_raw("shared2");
    assert_ne!(a[a.len() - 17..], b[b.len() - 17..]);
}

/// `--data-key` on the command line beats a KMS key from ATREST_KMS_KEY,
/// as `--key-file` and `--format v1` do; `--key` with it is refused.
#[test]
fn an_explicit_data_key_wins_over_the_kms_key_variable() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::rename(env.path("data.key"), env.path("team.key")).unwrap();
    std::fs::write(env.path("in"), b"x").unwrap();
    let shared = |name: &str| {
        let out = env.ok(&["inspect", &env.uri(name), "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["shared_data_key"].as_bool().unwrap()
    };
    let encrypt = |name: &str, args: &[&str]| {
        let uri = env.uri(name);
        let args = [&["encrypt", "in", &uri], args].concat();
        let out = env
            .atrest()
            .env("ATREST_KMS_KEY", &env.key_id)
            .args(&args)
            .output()
            .unwrap();
        assert_status(&out, 0, &args);
    };
    encrypt("by-variable", &[]);
    assert!(!shared("by-variable"));
    encrypt("by-data-key", &["--data-key", "team.key"]);
    assert!(shared("by-data-key"));
    // v1 always uses data.key: the variable gives way (it failed, "--key
    // needs --format v2", though no --key was given).
    std::fs::copy(env.path("team.key"), env.path("data.key")).unwrap();
    encrypt("v1", &["--format", "v1"]);
    let out = env.ok(&["inspect", &env.uri("v1"), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], 1, "{json}");
    let args = [
        "encrypt",
        "in",
        &env.uri("both"),
        "--data-key",
        "team.key",
        "--key",
        &env.key_id,
    ];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(
        stderr(&out).contains("--key and --data-key exclude each other"),
        "{}",
        stderr(&out)
    );
}

/// Flipping any single byte of a v2 object makes decryption fail with no
/// output, whatever the byte: header, wrapped key, salt, commitment, context,
/// frame or tag.
#[test]
fn every_tampered_byte_is_rejected_without_output() {
    let Some(env) = env() else { return };
    env.create_data_key();
    // One short final frame keeps this to a few hundred runs; the crypto
    // crate's tests tamper every byte of multi-frame objects.
    encrypt(&env, "victim", &sample(40, 5), &["--context", "k=v"]);
    let object = env.get_raw("victim");
    std::fs::write(env.path("precious"), b"keep me").unwrap();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| loop {
                let at = next.fetch_add(1, Ordering::SeqCst);
                if at >= object.len() {
                    break;
                }
                let mut bad = object.clone();
                bad[at] ^= 0x01;
                let key = format!("tampered-{at}");
                env.put_raw(&key, bad);
                let out = env.run(&["decrypt", &env.uri(&key), "precious"]);
                let code = out.status.code();
                assert!(
                    matches!(code, Some(3 | 4)),
                    "byte {at}: exit {code:?}, stderr {}",
                    stderr(&out)
                );
            });
        }
    });
    assert_eq!(std::fs::read(env.path("precious")).unwrap(), b"keep me");
    assert!(
        env.files().iter().all(|f| !f.contains(".partial")),
        "no temporary files: {:?}",
        env.files()
    );
}

#[test]
fn truncated_extended_and_spliced_objects_fail() {
    let Some(env) = env() else { return };
    env.create_data_key();
    encrypt(&env, "whole", &sample(3 * 4096, 9), &["--frame-size", "4K"]);
    let object = env.get_raw("whole");
    let sealed = 4096 + 16;
    let header_len = object.len() - 3 * sealed;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("drop-last-frame", object[..object.len() - sealed].to_vec()),
        ("drop-one-byte", object[..object.len() - 1].to_vec()),
        ("header-only", object[..header_len].to_vec()),
    ];
    let mut extended = object.clone();
    extended.extend_from_slice(&object[header_len..header_len + sealed]);
    cases.push(("extended", extended));
    let mut swapped = object[..header_len].to_vec();
    swapped.extend_from_slice(&object[header_len + sealed..header_len + 2 * sealed]);
    swapped.extend_from_slice(&object[header_len..header_len + sealed]);
    swapped.extend_from_slice(&object[header_len + 2 * sealed..]);
    cases.push(("swapped", swapped));
    for (name, bytes) in cases {
        env.put_raw(name, bytes);
        let out = env.run(&["decrypt", &env.uri(name), "out"]);
        assert_status(&out, 4, &[name]);
        assert!(
            stderr(&out).contains("decryption failed"),
            "{name}: {}",
            stderr(&out)
        );
        assert!(!env.path("out").exists(), "{name}: output written");
    }
}

/// Objects larger than the first GET stream into the file from concurrent
/// ranged GETs, written at their offsets: the result is exact, and a flipped,
/// missing or extra byte anywhere still fails with no output.
/// Ordered output (stdout, `--range`) from concurrent streams over many
/// runs of frames, more than the writer's window holds: exact, in order; a
/// closed stdout ends it cleanly; a frame that fails to authenticate stops
/// it with a prefix written.
#[test]
fn ordered_output_from_concurrent_streams_is_exact() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(40_000_000, 22);
    let uri = encrypt(&env, "ordered", &data, &["--part-size", "5"]);
    for streams in ["1", "3", "8"] {
        let args = [
            "decrypt",
            &uri,
            "-",
            "--part-size",
            "5",
            "--concurrency",
            streams,
        ];
        let out = env.ok(&args);
        assert!(out.stdout == data, "{streams} streams: stdout differs");
        let (from, to) = (3_000_001, 31_999_998);
        let range = format!("{from}-{to}");
        let mut args = args.to_vec();
        args.extend(["--range", &range]);
        let out = env.ok(&args);
        assert!(
            out.stdout[..] == data[from..=to],
            "{streams} streams: --range {range} differs"
        );
    }
    // A reader that stops early (`| head`) ends the download, successfully,
    // with streams still in flight.
    let mut child = env
        .atrest()
        .args(["decrypt", &uri, "-", "--part-size", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = vec![0; 100_000];
    std::io::Read::read_exact(&mut child.stdout.take().unwrap(), &mut head).unwrap();
    assert!(head[..] == data[..head.len()], "the first bytes differ");
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 0, &["decrypt to a closed stdout"]);

    let mut object = env.get_raw("ordered");
    let at = object.len() - 12_000_000;
    object[at] ^= 0x01;
    env.put_raw("ordered-bad", object);
    let out = env.run(&["decrypt", &env.uri("ordered-bad"), "-", "--part-size", "5"]);
    assert_status(&out, 4, &["tampered, to stdout"]);
    assert!(
        out.stdout.len() < data.len() - 12_000_000 && data.starts_with(&out.stdout),
        "stdout is not a prefix ending before the tampered frame"
    );
}

#[test]
fn concurrent_streams_into_a_file_are_exact_and_authenticated() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(6_000_000, 21);
    encrypt(&env, "streamed", &data, &["--frame-size", "4K"]);
    let object = env.get_raw("streamed");
    // Runs of frames are at least a part: one stream at the default 8 MiB,
    // two at 5 MiB (and both on one stream with --concurrency 1).
    let parts = ["--part-size", "5"];
    let one_stream = ["--part-size", "5", "--concurrency", "1"];
    for extra in [&[][..], &parts[..], &one_stream[..]] {
        let mut args = vec!["decrypt", "s3://", "out"];
        let uri = env.uri("streamed");
        args[1] = &uri;
        args.extend_from_slice(extra);
        env.ok(&args);
        assert!(std::fs::read(env.path("out")).unwrap() == data);
        std::fs::remove_file(env.path("out")).unwrap();
    }
    let sealed = 4096 + 16;
    let header_len = object.len() - data.len().div_ceil(4096) * 16 - data.len();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [header_len + 100, object.len() / 2, object.len() - 5] {
        let mut bad = object.clone();
        bad[at] ^= 0x01;
        cases.push((format!("flip-{at}"), bad));
    }
    cases.push((
        "drop-middle-frame".into(),
        [
            &object[..header_len + 100 * sealed],
            &object[header_len + 101 * sealed..],
        ]
        .concat(),
    ));
    cases.push(("drop-last-byte".into(), object[..object.len() - 1].to_vec()));
    cases.push(("extra-byte".into(), [&object[..], b"x"].concat()));
    for (name, bytes) in cases {
        env.put_raw(&name, bytes);
        let out = env.run(&["decrypt", &env.uri(&name), "out", "--part-size", "5"]);
        assert_status(&out, 4, &[&name]);
        assert!(!env.path("out").exists(), "{name}: output written");
        assert!(
            env.files().iter().all(|f| !f.contains(".partial")),
            "{name}: temporary file left"
        );
    }
}
