//! No secret reaches the terminal: with the most verbose logging (`RUST_LOG=trace`,
//! and `-vv`), a full create-data-key / encrypt / decrypt round trip never
//! prints the plaintext data key (raw, hex or base64 in any common variant)
//! nor the plaintext, and data.key holds only the KMS ciphertext blob.

use std::process::Output;

use atrest_format::{parse_header, Header, Parsed};

use crate::harness::*;

/// A plaintext no log line could contain by accident.
const MARKER: &[u8] = b"atrest-secrets-test: PLAINTEXT-MARKER-7f3c9b21e4";

#[test]
fn verbose_logs_never_show_the_data_key_or_plaintext() {
    let Some(env) = env() else { return };
    let mut plain = MARKER.to_vec();
    plain.extend_from_slice(&sample(100_000, 42));
    plain.extend_from_slice(MARKER);
    std::fs::write(env.path("secret.txt"), &plain).unwrap();
    let uri = env.uri("secret/object");

    let mut outputs: Vec<(String, Output)> = Vec::new();
    // Each round makes a new data key: every one of them is checked.
    let mut wrapped_keys = Vec::new();
    // Once with RUST_LOG=trace, once with -vv (its own trace filter).
    for (round, verbose) in [("RUST_LOG=trace", false), ("-vv", true)] {
        let run = |args: &[&str]| {
            let mut cmd = env.atrest();
            if verbose {
                cmd.arg("-vv");
            } else {
                cmd.env("RUST_LOG", "trace");
            }
            let out = cmd.args(args).output().unwrap();
            assert_status(&out, 0, args);
            (format!("{round}: atrest {}", args.join(" ")), out)
        };
        outputs.push(run(&["create-data-key", &env.key_id]));
        wrapped_keys.push(std::fs::read(env.path("data.key")).unwrap());
        outputs.push(run(&["encrypt-with-kms", "secret.txt", &uri]));
        outputs.push(run(&["decrypt-with-kms", &uri, "back.txt"]));
        assert!(
            std::fs::read(env.path("back.txt")).unwrap() == plain,
            "{round}: round trip differs"
        );
    }
    // The logs really are verbose: the SDK's trace output is there.
    for (what, out) in &outputs {
        assert!(
            out.stderr.len() > 1000,
            "{what}: expected trace logs, got {} bytes of stderr",
            out.stderr.len()
        );
    }

    // The plaintext data keys, as KMS unwraps them from data.key.
    assert_ne!(wrapped_keys[0], wrapped_keys[1]);
    let mut needles: Vec<_> = wrapped_keys
        .iter()
        .flat_map(|wrapped| secret_forms(&kms_decrypt(&env, wrapped, &[])))
        .collect();
    let wrapped = wrapped_keys.last().unwrap();
    // The key inside the object: data.key's for v1; for v2, whatever key
    // its header wraps, unwrapped with its encryption context.
    let stored = env.get_raw("secret/object");
    let Ok(Parsed::Complete(header)) = parse_header(&stored) else {
        panic!("the object has no valid header");
    };
    match &header {
        Header::V1(_) => assert_eq!(header.wrapped_key(), &wrapped[..]),
        Header::V2(h) => {
            let key = kms_decrypt(&env, h.wrapped_key(), &h.context().kms_context());
            needles.extend(secret_forms(&key));
        }
        _ => panic!("unknown version"),
    }
    for (what, out) in &outputs {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for (form, needle) in &needles {
                assert!(
                    !contains(bytes, needle),
                    "{what}: {stream} shows the data key ({form})"
                );
            }
            assert!(
                !contains(bytes, MARKER),
                "{what}: {stream} shows the plaintext"
            );
            assert!(
                !contains(bytes, &plain[1000..1032]),
                "{what}: {stream} shows plaintext bytes"
            );
        }
    }

    // data.key is the KMS ciphertext blob itself: KMS unwraps the file as
    // it is (above), and it holds no form of the plaintext key.
    for (form, needle) in &needles {
        assert!(
            !contains(wrapped, needle),
            "data.key holds the key ({form})"
        );
    }
    // The object holds no plaintext key either.
    for (form, needle) in &needles {
        assert!(!contains(&stored, needle), "object holds the key ({form})");
    }
    assert!(!contains(&stored, MARKER), "object holds plaintext");
}

fn kms_decrypt(env: &Env, wrapped: &[u8], context: &[(String, String)]) -> Vec<u8> {
    let mut req = env
        .kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped.to_vec()));
    for (k, v) in context {
        req = req.encryption_context(k, v);
    }
    let out = block_on(req.send()).expect("KMS unwraps the wrapped key as it is");
    let key = out.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(key.len(), 32);
    key
}

/// The raw key and every usual text encoding of it.
fn secret_forms(key: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let std_padded = base64(key, STD);
    let url_padded = base64(key, URL);
    let unpadded = |s: &str| s.trim_end_matches('=').to_owned();
    let forms = vec![
        ("raw bytes", key.to_vec()),
        ("lower-case hex", hex::encode(key).into_bytes()),
        ("upper-case hex", hex::encode_upper(key).into_bytes()),
        ("base64", std_padded.clone().into_bytes()),
        ("base64 without padding", unpadded(&std_padded).into_bytes()),
        ("URL-safe base64", url_padded.clone().into_bytes()),
        (
            "URL-safe base64 without padding",
            unpadded(&url_padded).into_bytes(),
        ),
        // A Debug-printed byte array, as `{:?}` of a Vec<u8> would show it.
        ("Debug list", format!("{key:?}").into_bytes()),
    ];
    // Sanity: the encoder is right (RFC 4648 test vector).
    assert_eq!(base64(b"foob", STD), "Zm9vYg==");
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A key file (`atrest keygen`, 32 secret bytes) given where a data.key
/// belongs is never sent to KMS (the KMS endpoint here is unreachable:
/// a request would fail otherwise), and nothing replaces a key file:
/// not create-data-key, not an output of encrypt/decrypt; a file that is
/// not a wrapped data key (text) is not replaced either. Rotating data.key
/// still works.
#[test]
fn key_files_are_never_sent_to_kms_nor_written_over() {
    let Some(env) = env() else { return };
    env.ok(&["keygen", "backup.key"]);
    let key = std::fs::read(env.path("backup.key")).unwrap();
    std::fs::write(env.path("doc.txt"), b"doc").unwrap();
    std::fs::write(env.path("notes.txt"), b"my notes").unwrap();
    let no_kms = |args: &[&str]| {
        env.atrest()
            .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
            .args(args)
            .output()
            .unwrap()
    };
    let object = env.uri("kf");
    let refused: [(&[&str], &str); 7] = [
        (
            &["encrypt", "doc.txt", &object, "--data-key", "backup.key"],
            "pass it with --key-file (it was not sent to KMS)",
        ),
        (
            &[
                "rewrap-data-key",
                "--to-key",
                &env.key_id,
                "--data-key",
                "backup.key",
            ],
            "pass it with --key-file",
        ),
        (
            &["create-data-key", &env.key_id, "--data-key", "backup.key"],
            "as a key file made by `atrest keygen` does: it is not replaced",
        ),
        (
            &["create-data-key", &env.key_id, "--data-key", "notes.txt"],
            "notes.txt exists and is not a wrapped data key",
        ),
        (
            &[
                "encrypt",
                "doc.txt",
                "backup.key",
                "--key-file",
                "backup.key",
            ],
            "backup.key is a key this command uses",
        ),
        (
            &[
                "decrypt",
                "doc.atrest",
                "backup.key",
                "--key-file",
                "backup.key",
            ],
            "backup.key is a key this command uses",
        ),
        (
            &[
                "cp",
                &env.uri("kf2"),
                "backup.key",
                "--key-file",
                "backup.key",
            ],
            "backup.key is a key this command uses",
        ),
    ];
    env.ok(&[
        "encrypt",
        "doc.txt",
        "doc.atrest",
        "--key-file",
        "backup.key",
    ]);
    env.ok(&[
        "encrypt",
        "doc.txt",
        &env.uri("kf2"),
        "--key-file",
        "backup.key",
    ]);
    for (args, why) in refused {
        let out = no_kms(args);
        assert_status(&out, 2, args);
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(env.path("backup.key")).unwrap(), key);
    assert_eq!(std::fs::read(env.path("notes.txt")).unwrap(), b"my notes");
    assert!(crate::bulk::keys(&env, "kf").iter().all(|k| k == "kf2"));
    // data.key is still replaced by a new one (rotation), and is no output.
    env.create_data_key();
    let first = std::fs::read(env.path("data.key")).unwrap();
    env.create_data_key();
    assert_ne!(std::fs::read(env.path("data.key")).unwrap(), first);
    let out = env.run(&["encrypt", "doc.txt", "data.key"]);
    assert_status(&out, 2, &["encrypt doc.txt data.key"]);
}
