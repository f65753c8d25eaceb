//! `atrest verify`: every kind of object is downloaded, unwrapped and
//! decrypted (v2 frames authenticated, v1 padding checked) and nothing is
//! written; damaged, foreign and changing objects fail, each on its line.

use crate::faults::{Fault, Op, Proxy};
use crate::harness::*;
use crate::rewrap::{header, json, stdout, three_kinds};

const MIB: usize = 1024 * 1024;

/// Every key in the test bucket with its ETag: what "nothing was written"
/// is checked against.
pub(crate) fn bucket_state(env: &Env) -> Vec<(String, String)> {
    let listed =
        block_on(env.s3.list_objects_v2().bucket(&env.bucket).send()).expect("list the bucket");
    listed
        .contents()
        .iter()
        .map(|o| (o.key().unwrap().to_owned(), o.e_tag().unwrap().to_owned()))
        .collect()
}

#[test]
fn verify_checks_every_kind_of_object_small_and_multipart() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let mut all = Vec::new();
    for (len, suffix) in [(100_000, "-small"), (12 * MIB + 3, "-large")] {
        let data = sample(len, len as u64);
        for name in three_kinds(&env, &data, suffix) {
            let dest = format!("dir/{name}");
            env.put_raw(&dest, env.get_raw(&name));
            let out = env.ok(&["verify", &env.uri(&name), "--json"]);
            let report = json(&out);
            let object = &report["objects"][0];
            assert_eq!(object["status"], "verified", "{name}: {report}");
            assert_eq!(object["plaintext_len"], len, "{name}");
            assert_eq!(object["kms_key"], env.key_arn.as_str(), "{name}");
            let v1 = name.starts_with("v1");
            assert_eq!(object["authenticated"], !v1, "{name}");
            assert_eq!(object["format"], if v1 { "v1" } else { "v2" });
            assert_eq!(object["shared_data_key"], !name.starts_with("v2-own"));
            let text = stdout(&env.ok(&["verify", &env.uri(&name)]));
            assert!(text.starts_with("verified "), "{text}");
            match v1 {
                true => assert!(text.contains("cannot really verify it"), "{text}"),
                false => assert!(text.contains("every frame authenticated"), "{text}"),
            }
            all.push(dest);
        }
    }
    // An S3 Encryption Client (V3) object: its GCM tag is checked.
    let data = sample(3 * MIB + 1, 11);
    std::fs::write(env.path("in"), &data).unwrap();
    let s3ec = ["encrypt", "in", &env.uri("dir/s3ec"), "--format", "s3ec-v3"];
    env.ok(&[&s3ec[..], &["--key", &env.key_id]].concat());
    let report = json(&env.ok(&["verify", &env.uri("dir/s3ec"), "--json"]));
    assert_eq!(report["objects"][0]["format"], "s3ec", "{report}");
    assert_eq!(report["objects"][0]["authenticated"], true);
    assert_eq!(report["objects"][0]["plaintext_len"], data.len());
    all.push("dir/s3ec".into());

    let before = bucket_state(&env);
    let out = env.ok(&["verify", &env.uri("dir"), "--recursive"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), all.len(), "{text}");
    assert_eq!(text.matches("verified ").count(), 7, "{text}");
    assert!(text.contains("its authentication tag matched"), "{text}");
    assert!(
        stderr(&out).contains("verified 7 (2 of them v1, unauthenticated), failed 0"),
        "{}",
        stderr(&out)
    );
    assert_eq!(bucket_state(&env), before, "verify wrote to the bucket");
    assert_eq!(env.files(), ["data.key", "in"], "verify wrote a local file");
}

#[test]
fn damaged_and_foreign_objects_fail_and_the_rest_still_verify() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(9 * MIB + 5, 4);
    for name in three_kinds(&env, &data, "") {
        env.put_raw(&format!("dir/{name}"), env.get_raw(&name));
    }
    // One bit flipped in the middle of a v2 body: that frame fails.
    let mut v2 = env.get_raw("v2-own");
    let at = v2.len() / 2;
    v2[at] ^= 1;
    env.put_raw("dir/v2-flipped", v2);
    // A v2 object cut at a frame boundary: the final frame is missing.
    let good = env.get_raw("v2-shared");
    let h = header(&good).encoded_len();
    env.put_raw("dir/v2-truncated", good[..h + 2 * (65536 + 16)].to_vec());
    // v1: the top bit of the last byte of the second-last block flips the
    // same bit of the padding length, which is then invalid.
    let mut v1 = env.get_raw("v1");
    let at = v1.len() - 17;
    v1[at] ^= 0x80;
    env.put_raw("dir/v1-bad-padding", v1);
    env.put_raw("dir/readme.txt", b"not encrypted".to_vec());
    block_on(
        env.s3
            .put_object()
            .bucket(&env.bucket)
            .key("dir/s3ec")
            .body(vec![0u8; 64].into())
            .metadata("x-amz-key-v2", "AAAA")
            .metadata("x-amz-iv", "AAAA")
            .send(),
    )
    .unwrap();
    let before = bucket_state(&env);

    let out = env.run(&["verify", &env.uri("dir/"), "-r"]);
    assert_status(&out, 4, &["verify -r dir/"]);
    let text = stdout(&out);
    let line = |key: &str| {
        let uri = env.uri(key);
        text.lines()
            .find(|l| l.split(' ').nth(1).map(|w| w.trim_end_matches(':')) == Some(&uri))
            .unwrap_or_else(|| panic!("no line for {key}: {text}"))
            .to_owned()
    };
    for good in ["dir/v1", "dir/v2-shared", "dir/v2-own"] {
        assert!(line(good).starts_with("verified "), "{text}");
    }
    for (bad, why) in [
        ("dir/v2-flipped", "a frame failed authentication"),
        (
            "dir/v2-truncated",
            "a frame failed authentication, or frames are missing",
        ),
        ("dir/v1-bad-padding", "its CBC padding is invalid"),
        ("dir/readme.txt", "is not an atrest object"),
        ("dir/s3ec", "invalid S3 Encryption Client metadata"),
    ] {
        let l = line(bad);
        assert!(l.starts_with("failed ") && l.contains(why), "{bad}: {l}");
    }
    assert!(
        stderr(&out).contains("verified 3 (1 of them v1, unauthenticated), failed 5"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("atrest: error: 5 of 8 objects did not verify"),
        "{}",
        stderr(&out)
    );
    // `-q`: errors only (the objects that verified went unsaid).
    let out = env.run(&["verify", &env.uri("dir/"), "-r", "-q"]);
    assert_status(&out, 4, &["verify -r -q dir/"]);
    let failed = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("failed "))
        .count();
    assert_eq!(
        (failed, stdout(&out).lines().count()),
        (5, 5),
        "{}",
        stdout(&out)
    );
    let report = json(&env.run(&["verify", &env.uri("dir"), "-r", "--json"]));
    assert_eq!(report["verified"], 3, "{report}");
    assert_eq!(report["failed"], 5, "{report}");
    for object in report["objects"].as_array().unwrap() {
        if object["status"] == "failed" {
            assert_eq!(object["retry"], "permanent", "{object}");
        }
    }
    // A single damaged object: exit 4 too, and its line.
    let out = env.run(&["verify", &env.uri("dir/v2-flipped")]);
    assert_status(&out, 4, &["verify v2-flipped"]);
    assert!(stdout(&out).starts_with("failed "), "{}", stdout(&out));
    // A missing one: not found (3), as for decrypt.
    let out = env.run(&["verify", &env.uri("dir/nope")]);
    assert_status(&out, 3, &["verify nope"]);
    assert_eq!(bucket_state(&env), before, "verify wrote to the bucket");
}

#[test]
fn kms_refusals_and_objects_changed_meanwhile_fail_that_object() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), sample(20 * MIB, 5)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("big"), "--key", &env.key_id]);
    let proxy = Proxy::start(&env.endpoint);
    let verify = |key: &str| {
        env.atrest()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(["verify", &env.uri(key), "--json"])
            .output()
            .unwrap()
    };

    proxy.add(Op::Kms, Fault::KmsAccessDenied, 1);
    let out = verify("big");
    assert_status(&out, 4, &["verify, KMS denied"]);
    let report = json(&out);
    let error = report["objects"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("cannot unwrap the data key of"), "{error}");
    assert!(error.contains("KMS refused to unwrap"), "{error}");
    let named = format!(
        "its metadata says the data key is wrapped under {}",
        env.key_arn
    );
    assert!(error.contains(&named), "{error}");
    assert_eq!(report["objects"][0]["retry"], "permanent");

    // Another writer replaces the object between the first GET and the
    // ranged GETs: the object fails (to be tried again), nothing mixes.
    env.ok(&["encrypt", "in", &env.uri("again"), "--key", &env.key_id]);
    let (s3, bucket) = (env.s3.clone(), env.bucket.clone());
    let replacement = env.get_raw("again");
    proxy.before(Op::GetLaterRange, move || {
        block_on(
            s3.put_object()
                .bucket(&bucket)
                .key("big")
                .body(replacement.into())
                .send(),
        )
        .unwrap();
    });
    let out = verify("big");
    assert_status(&out, 4, &["verify, object changed"]);
    let report = json(&out);
    let error = report["objects"][0]["error"].as_str().unwrap();
    assert!(error.contains("changed while it was verified"), "{report}");
    assert_eq!(report["objects"][0]["retry"], "temporary");
    // Verified again, it is fine.
    assert_eq!(json(&verify("big"))["verified"], 1);
}

/// A large object is read as a download is, by parallel ranged GETs of
/// `--part-size` (a size in bytes: the flag takes units), not as one
/// stream.
#[test]
fn a_large_object_is_verified_by_parallel_ranged_gets() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), sample(40 * MIB, 3)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("big"), "--key", &env.key_id]);
    let proxy = Proxy::start(&env.endpoint);
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["verify", &env.uri("big"), "--part-size", "8M"])
        .output()
        .unwrap();
    assert_status(&out, 0, &["verify big"]);
    let ranged = proxy.seen(Op::GetLaterRange);
    assert!(
        ranged >= 4,
        "{ranged} ranged GETs after the first for 40 MiB"
    );
}

#[test]
fn a_whole_bucket_is_taken_with_recursive_and_refused_without() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"every object of the bucket").unwrap();
    env.ok(&["encrypt", "in", &env.uri("a/b"), "--key", &env.key_id]);
    let bucket = format!("s3://{}", env.bucket);
    // As the help's examples give it, and with a trailing slash.
    for uri in [bucket.clone(), format!("{bucket}/")] {
        let text = stdout(&env.ok(&["verify", "-r", &uri]));
        assert!(
            text.starts_with(&format!("verified {bucket}/a/b ")),
            "{text}"
        );
        let rewrap = ["rewrap", "-r", &uri, "--to-key", &env.key_id, "--dryrun"];
        let out = env.ok(&rewrap);
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("skipped {bucket}/a/b ")),
            "{text}"
        );
        assert!(
            stderr(&out).trim_end().ends_with("; 1 KMS call"),
            "{}",
            stderr(&out)
        );
        let text = stdout(&env.ok(&["upgrade", "-r", &uri, "--dryrun"]));
        assert_eq!(text.trim_end(), format!("skipped {bucket}/a/b: already v2"));
        // Without -r a bucket names no object: a usage error, one line.
        for args in [
            &["verify", &uri][..],
            &["upgrade", &uri],
            &["rewrap", &uri, "--to-key", &env.key_id],
        ] {
            let out = env.run(args);
            assert_status(&out, 2, args);
            let err = stderr(&out);
            assert!(err.contains("names no object key"), "{err}");
            assert!(err.contains("--recursive"), "{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
    }
}
