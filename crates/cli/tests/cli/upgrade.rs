//! `atrest upgrade`: v1 objects become v2 in place (verified before they
//! replace the original), their properties kept; v2 objects are skipped;
//! a failure of any kind leaves the original, and no temporary object or
//! multipart upload behind.

use atrest_format::Header;

use crate::faults::{Fault, Op, Proxy};
use crate::harness::*;
use crate::rewrap::{header, json, metadata, second_key, stdout, three_kinds, unwrapping_key};
use crate::verify::bucket_state;

const MIB: usize = 1024 * 1024;

fn keys(env: &Env) -> Vec<String> {
    bucket_state(env).into_iter().map(|(k, _)| k).collect()
}

fn no_open_uploads(env: &Env) {
    let uploads = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "multipart uploads left behind"
    );
}

fn tags(env: &Env, key: &str) -> Vec<(String, String)> {
    let out = block_on(
        env.s3
            .get_object_tagging()
            .bucket(&env.bucket)
            .key(key)
            .send(),
    )
    .unwrap();
    let mut tags: Vec<_> = out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    tags
}

#[test]
fn upgrade_makes_v1_objects_v2_in_place_and_keeps_their_properties() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let (new_id, new_arn) = second_key(&env);
    for (len, name) in [(100_000, "small"), (12 * MIB + 3, "large")] {
        let data = sample(len, len as u64);
        std::fs::write(env.path("in"), &data).unwrap();
        env.ok(&["encrypt", "in", &env.uri("tmp"), "--format", "v1"]);
        // The same bytes with the properties an upgrade must keep.
        block_on(
            env.s3
                .put_object()
                .bucket(&env.bucket)
                .key(name)
                .body(env.get_raw("tmp").into())
                .content_type("application/x-ledger")
                .cache_control("max-age=60")
                .metadata("owner", "accounts")
                .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
                .tagging("team=blue&tier=a%20b")
                .send(),
        )
        .unwrap();
        env.put_raw(&format!("{name}-own"), env.get_raw("tmp"));

        // Without --key: the object's own (shared) data key.
        let report = json(&env.ok(&["upgrade", &env.uri(name), "--json"]));
        let object = &report["objects"][0];
        assert_eq!(object["status"], "upgraded", "{report}");
        assert_eq!(object["plaintext_len"], len);
        assert_eq!(object["shared_data_key"], true);
        let after = env.get_raw(name);
        let Header::V2(h) = header(&after) else {
            panic!("{name} is not v2")
        };
        assert!(h.context().is_shared_data_key());
        assert_eq!(unwrapping_key(&env, &after), env.key_arn);
        env.ok(&["decrypt", &env.uri(name), "out", "--quiet"]);
        assert!(std::fs::read(env.path("out")).unwrap() == data, "{name}");
        let head = block_on(env.s3.head_object().bucket(&env.bucket).key(name).send()).unwrap();
        assert_eq!(head.content_type(), Some("application/x-ledger"));
        assert_eq!(head.cache_control(), Some("max-age=60"));
        assert_eq!(
            head.storage_class(),
            Some(&aws_sdk_s3::types::StorageClass::StandardIa)
        );
        let meta = metadata(&env, name);
        assert_eq!(meta["owner"], "accounts");
        assert_eq!(meta["atrest-kms-key-arn"], env.key_arn);
        assert_eq!(
            tags(&env, name),
            [
                ("team".into(), "blue".into()),
                ("tier".into(), "a b".into())
            ]
        );

        // With --key: a fresh data key under that KMS key.
        let own = format!("{name}-own");
        let out = env.ok(&["upgrade", &env.uri(&own), "--key", &new_id]);
        assert!(stdout(&out).starts_with("upgraded "), "{}", stdout(&out));
        let after = env.get_raw(&own);
        let Header::V2(h) = header(&after) else {
            panic!("{own} is not v2")
        };
        assert!(!h.context().is_shared_data_key());
        assert_eq!(unwrapping_key(&env, &after), new_arn);
        assert_eq!(metadata(&env, &own)["atrest-kms-key-arn"], new_arn);
        env.ok(&["verify", &env.uri(&own)]);
        env.ok(&["decrypt", &env.uri(&own), "out", "--quiet"]);
        assert!(std::fs::read(env.path("out")).unwrap() == data, "{own}");

        // Again: already v2, skipped, untouched.
        let before = env.get_raw(name);
        let out = env.ok(&["upgrade", &env.uri(name)]);
        assert!(stdout(&out).starts_with("skipped "), "{}", stdout(&out));
        assert!(env.get_raw(name) == before);
    }
    let mut left = keys(&env);
    left.sort();
    assert_eq!(left, ["large", "large-own", "small", "small-own", "tmp"]);
    no_open_uploads(&env);
}

#[test]
fn a_prefix_upgrades_v1_skips_v2_and_reports_the_rest_and_dryrun_writes_nothing() {
    let Some(env) = env() else { return };
    env.create_data_key();
    for name in three_kinds(&env, &sample(7 * MIB, 3), "") {
        env.put_raw(&format!("dir/{name}"), env.get_raw(&name));
    }
    env.put_raw("dir/readme.txt", b"not encrypted".to_vec());
    let before = bucket_state(&env);

    let out = env.run(&["upgrade", &env.uri("dir"), "-r", "--dryrun"]);
    assert_status(&out, 1, &["upgrade --dryrun"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("would upgrade {} (v1)", env.uri("dir/v1"))),
        "{text}"
    );
    assert_eq!(text.matches("skipped ").count(), 2, "{text}");
    assert!(
        stderr(&out).contains("would upgrade 1, skipped 2 (already v2), failed 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(bucket_state(&env), before, "a dry run wrote");

    let out = env.run(&["upgrade", &env.uri("dir/"), "--recursive", "--json"]);
    assert_status(&out, 1, &["upgrade -r"]);
    let report = json(&out);
    assert_eq!(report["upgraded"], 1, "{report}");
    assert_eq!(report["skipped"], 2, "{report}");
    assert_eq!(report["failed"], 1, "{report}");
    let failed = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["status"] == "failed")
        .unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("is not an atrest object"),
        "{failed}"
    );
    assert_eq!(failed["retry"], "permanent");
    // The v2 objects and the plain one are as they were; v1 is v2 now.
    let after = bucket_state(&env);
    for (key, etag) in &before {
        let now = &after.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(now == etag, key != "dir/v1", "{key}");
    }
    assert_eq!(after.len(), before.len(), "no temporary object is left");
    env.ok(&["verify", &env.uri("dir/v1")]);
    // A single non-atrest object: exit 4.
    let out = env.run(&["upgrade", &env.uri("dir/readme.txt")]);
    assert_status(&out, 4, &["upgrade readme"]);
}

#[test]
fn failures_leave_the_original_and_nothing_else() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), sample(9 * MIB, 6)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("big"), "--format", "v1"]);
    let proxy = Proxy::start(&env.endpoint);
    let upgrade = |key: &str| {
        env.atrest()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(["upgrade", &env.uri(key)])
            .output()
            .unwrap()
    };
    let original = env.get_raw("big");

    // KMS refuses to unwrap the data key.
    proxy.add(Op::Kms, Fault::KmsAccessDenied, 1);
    let out = upgrade("big");
    assert_status(&out, 3, &["upgrade, KMS denied"]);
    let err = stderr(&out);
    assert!(err.contains("KMS refused to unwrap"), "{err}");
    assert!(
        err.contains(&env.key_arn),
        "the recorded key is named: {err}"
    );
    assert!(env.get_raw("big") == original);
    assert_eq!(keys(&env), ["big"]);

    // A damaged v1 object (invalid padding) is not re-encrypted.
    let mut bad = original.clone();
    let at = bad.len() - 17;
    bad[at] ^= 0x80;
    env.put_raw("bad", bad.clone());
    let out = upgrade("bad");
    assert_status(&out, 4, &["upgrade, bad padding"]);
    assert!(
        stderr(&out).contains("its CBC padding is invalid"),
        "{}",
        stderr(&out)
    );
    assert!(env.get_raw("bad") == bad);

    // Another writer replaces the object while it is read: the upgrade
    // stops, and their object stays.
    let (s3, bucket) = (env.s3.clone(), env.bucket.clone());
    proxy.before(Op::GetLaterRange, move || {
        block_on(
            s3.put_object()
                .bucket(&bucket)
                .key("big")
                .body(b"theirs".to_vec().into())
                .send(),
        )
        .unwrap();
    });
    let out = upgrade("big");
    assert_status(&out, 1, &["upgrade, object changed"]);
    assert!(
        stderr(&out).contains("changed while atrest was upgrading it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.get_raw("big"), b"theirs");
    let mut left = keys(&env);
    left.sort();
    assert_eq!(left, ["bad", "big"], "no temporary object is left");
    no_open_uploads(&env);
}

/// A warning reads as the tool's other lines: one line, `atrest: warning:
/// ...` (before: a log line with a time stamp, level and module path).
#[test]
fn a_temporary_object_that_cannot_be_deleted_is_one_warning_line() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), sample(10_000, 4)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("old"), "--format", "v1"]);
    let proxy = Proxy::start(&env.endpoint);
    // Every attempt the SDK makes at deleting the temporary object.
    proxy.add(Op::DeleteObject, Fault::Status500, 3);
    let args = ["upgrade", &env.uri("old")];
    let out = proxy.atrest(&env).args(args).output().unwrap();
    assert_status(&out, 0, &args);
    let said = stderr(&out);
    let warning: Vec<&str> = said.lines().filter(|l| l.contains("temporary")).collect();
    assert_eq!(warning.len(), 1, "{said}");
    assert!(
        warning[0]
            .starts_with("atrest: warning: could not delete the temporary object of an upgrade"),
        "{said}"
    );
}

/// On a versioned bucket a DeleteObject only hides an object under a
/// delete marker: before, every upgrade left its temporary object behind
/// as a full noncurrent version (billed) and a marker. Now the upgrade
/// adds one version of the object, and nothing else.
#[test]
fn upgrade_on_a_versioned_bucket_leaves_no_temporary_versions() {
    let Some(env) = env() else { return };
    env.enable_versioning();
    env.create_data_key();
    for (len, name) in [(1000, "small"), (6 * MIB, "large")] {
        std::fs::write(env.path("in"), sample(len, 7)).unwrap();
        env.ok(&["encrypt", "in", &env.uri(name), "--format", "v1"]);
        env.ok(&["upgrade", &env.uri(name)]);
    }
    let listed = block_on(env.s3.list_object_versions().bucket(&env.bucket).send()).unwrap();
    let mut versions: Vec<_> = listed.versions().iter().filter_map(|v| v.key()).collect();
    versions.sort();
    assert_eq!(versions, ["large", "large", "small", "small"]);
    assert!(
        listed.delete_markers().is_empty(),
        "{:?}",
        listed.delete_markers()
    );
    no_open_uploads(&env);
}

/// An upgrade's temporary object outlives a SIGKILL, and later runs took
/// it for an object of its own without a word: they warn of it now.
#[test]
fn runs_over_a_prefix_warn_of_a_killed_upgrades_leftover() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"x").unwrap();
    env.ok(&["cp", "f", &env.uri("p/k"), "--key", &env.key_id]);
    env.ok(&["cp", "f", &env.uri("q/k"), "--key", &env.key_id]);
    let object = env.get_raw("p/k");
    env.put_raw("p/k.atrest-upgrade-0123456789abcdef", object);
    for args in [
        vec!["verify", "-r", &env.uri("p/")],
        vec!["upgrade", "-r", &env.uri("p/"), "--dryrun"],
    ] {
        let out = env.ok(&args);
        let err = stderr(&out);
        assert!(
            err.contains("warning: 1 object named as an interrupted upgrade's leftover"),
            "{args:?}: {err}"
        );
    }
    let out = env.ok(&["verify", "-r", &env.uri("q/")]);
    assert!(!stderr(&out).contains("leftover"), "{}", stderr(&out));
}
