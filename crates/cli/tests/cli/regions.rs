//! Buckets in another region than the one configured: S3 refuses requests
//! sent or signed for the wrong region and names the bucket's region, and
//! atrest (as the AWS CLI) sends them again there, learning the region once
//! per command. moto serves every region alike, so the proxy plays S3's
//! part: it refuses requests for the test's bucket not signed for
//! `eu-west-1`, either way S3 does.

use crate::bulk::write;
use crate::faults::{Op, Proxy, Redirect};
use crate::harness::*;

const HOME: &str = "eu-west-1";

/// Runs atrest through `proxy` (configured region us-east-1), insisting
/// on success, and returns how many of its requests were redirected.
fn redirects_of(env: &Env, proxy: &Proxy, args: &[&str]) -> usize {
    let before = proxy.redirected();
    crate::sync::via(env, proxy, args);
    proxy.redirected() - before
}

#[test]
fn a_bucket_in_another_region_is_followed_there_once_per_command() {
    for redirect in [Redirect::Permanent, Redirect::MalformedAuthorization] {
        let Some(env) = env() else { return };
        let proxy = Proxy::start(&env.endpoint);
        proxy.bucket_in(&env.bucket, HOME, redirect);
        let small = sample(1000, 1);
        let big = sample(12 << 20, 2);
        std::fs::write(env.path("small"), &small).unwrap();
        std::fs::write(env.path("big"), &big).unwrap();
        let key = env.key_id.clone();
        let (small_uri, big_uri) = (env.uri("r/small"), env.uri("r/big"));

        // One PUT; parts (CreateMultipartUpload first); a download in
        // ranged GETs; a listing; a tree down; a copy out of the bucket.
        let uploads = [
            vec!["cp", "small", &small_uri, "--key", &key],
            vec!["cp", "big", &big_uri, "--key", &key, "--part-size", "5M"],
        ];
        for args in &uploads {
            assert_eq!(redirects_of(&env, &proxy, args), 1, "{redirect:?} {args:?}");
        }
        let gets_before = proxy.seen(Op::GetObject) + proxy.seen(Op::GetLaterRange);
        let args = ["cp", &big_uri, "big.out", "--part-size", "5M"];
        assert_eq!(redirects_of(&env, &proxy, &args), 1, "{redirect:?}");
        let gets = proxy.seen(Op::GetObject) + proxy.seen(Op::GetLaterRange) - gets_before;
        assert!(gets >= 3, "{redirect:?}: the download took {gets} GETs");
        assert_eq!(std::fs::read(env.path("big.out")).unwrap(), big);

        let prefix = env.uri("r/");
        assert_eq!(redirects_of(&env, &proxy, &["ls", &prefix]), 1);
        assert_eq!(redirects_of(&env, &proxy, &["sync", &prefix, "down"]), 1);
        assert_eq!(std::fs::read(env.path("down/small")).unwrap(), small);
        assert_eq!(std::fs::read(env.path("down/big")).unwrap(), big);

        let other = format!("{}-near", env.bucket);
        block_on(env.s3.create_bucket().bucket(&other).send()).unwrap();
        let to = format!("s3://{other}/copy/");
        let copy = ["cp", "-r", &prefix, &to];
        assert_eq!(redirects_of(&env, &proxy, &copy), 1, "{redirect:?}");
        let copied = format!("s3://{other}/copy/small");
        env.ok(&["cp", &copied, "small.copy"]);
        assert_eq!(std::fs::read(env.path("small.copy")).unwrap(), small);
    }
}

#[test]
fn a_streaming_upload_to_another_region_fails_naming_the_region() {
    let Some(env) = env() else { return };
    let proxy = Proxy::start(&env.endpoint);
    proxy.bucket_in(&env.bucket, HOME, Redirect::Permanent);
    write(env.dir.path(), "f", &sample(6 << 20, 3));
    let uri = env.uri("f");
    // At least one part and under the threshold: one streaming PutObject,
    // whose body cannot be sent twice.
    let args = [
        "cp",
        "f",
        &uri,
        "--key",
        &env.key_id,
        "--part-size",
        "5M",
        "--multipart-threshold",
        "16M",
    ];
    let out = proxy.atrest(&env).args(args).output().unwrap();
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("is in region {HOME}")) && err.contains(&format!("--region {HOME}")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(crate::bulk::keys(&env, "").is_empty());
}

/// A KMS key of `region` (moto keeps each region's keys apart, as KMS
/// does): its ARN.
fn key_in(env: &Env, region: &str) -> String {
    let config = env.kms.config().to_builder();
    let regional = aws_sdk_kms::Client::from_conf(
        config
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .build(),
    );
    let key = block_on(regional.create_key().send()).unwrap();
    key.key_metadata().unwrap().arn().unwrap().to_owned()
}

/// The object's user metadata.
fn metadata(env: &Env, key: &str) -> std::collections::HashMap<String, String> {
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap();
    head.metadata().cloned().unwrap_or_default()
}

#[test]
fn a_kms_key_of_another_region_is_asked_in_its_region() {
    let Some(env) = env() else { return };
    let (far, far2) = (key_in(&env, HOME), key_in(&env, HOME));
    let plain = sample(200_000, 4);
    write(env.dir.path(), "f", &plain);
    let uri = env.uri("f");
    // Configured for us-east-1 (as Env::atrest is), the key in eu-west-1.
    env.ok(&["cp", "f", &uri, "--key", &far, "--context", "app=x"]);
    assert_eq!(metadata(&env, "f").get("atrest-kms-key-arn"), Some(&far));
    env.ok(&["cp", &uri, "out", "--expect-context", "app=x"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), plain);
    env.ok(&["verify", &uri]);

    // Rewrapped to another key of that region (ReEncrypt is sent there),
    // and read back under it.
    env.ok(&["rewrap", &uri, "--to-key", &far2]);
    assert_eq!(metadata(&env, "f").get("atrest-kms-key-arn"), Some(&far2));
    env.ok(&["cp", &uri, "out2"]);
    assert_eq!(std::fs::read(env.path("out2")).unwrap(), plain);

    // The key id alone names a key of the configured region, as for the
    // AWS CLI: not found there.
    let id = far.rsplit('/').next().unwrap();
    let args = ["cp", "f", &env.uri("g"), "--key", id];
    assert_status(&env.run(&args), 3, &args);
}

#[test]
fn an_s3_encryption_client_object_records_its_key_and_is_read_in_its_region() {
    let Some(env) = env() else { return };
    let (far, far2) = (key_in(&env, HOME), key_in(&env, HOME));
    let plain = sample(300_000, 6);
    write(env.dir.path(), "f", &plain);
    let uri = env.uri("s3ec");
    let args = ["cp", "f", &uri, "--format", "s3ec-v3", "--key", &far];
    env.ok(&[&args[..], &["--context", "app=x"]].concat());
    assert_eq!(metadata(&env, "s3ec").get("atrest-kms-key-arn"), Some(&far));
    env.ok(&["cp", &uri, "out", "--expect-context", "app=x"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), plain);
    env.ok(&["verify", &uri]);
    env.ok(&["rewrap", &uri, "--to-key", &far2]);
    assert_eq!(
        metadata(&env, "s3ec").get("atrest-kms-key-arn"),
        Some(&far2)
    );
    env.ok(&["cp", &uri, "out2"]);
    assert_eq!(std::fs::read(env.path("out2")).unwrap(), plain);
}

#[test]
fn a_stale_record_of_the_key_falls_back_to_the_configured_region() {
    let Some(env) = env() else { return };
    let far = key_in(&env, HOME);
    let plain = sample(5000, 5);
    write(env.dir.path(), "f", &plain);
    let uri = env.uri("f");
    env.ok(&["cp", "f", &uri, "--key", &env.key_id]);
    // Another tool's rewrap, say, left the record naming a key elsewhere.
    let mut meta = metadata(&env, "f");
    meta.insert("atrest-kms-key-arn".to_owned(), far);
    let source = format!("{}/f", env.bucket);
    block_on(
        env.s3
            .copy_object()
            .bucket(&env.bucket)
            .key("f")
            .copy_source(source)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .set_metadata(Some(meta))
            .send(),
    )
    .unwrap();
    env.ok(&["cp", &uri, "out"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), plain);
}

#[test]
fn source_region_sends_the_sources_requests_there_from_the_start() {
    let Some(env) = env() else { return };
    let data = sample(3 << 20, 6);
    write(env.dir.path(), "f", &data);
    let uri = env.uri("d/f");
    env.ok(&["cp", "f", &uri, "--key", &env.key_id]);
    let proxy = Proxy::start(&env.endpoint);
    proxy.bucket_in(&env.bucket, HOME, Redirect::Permanent);
    let told = ["cp", &uri, "out", "--source-region", HOME];
    assert_eq!(redirects_of(&env, &proxy, &told), 0);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), data);
    let prefix = env.uri("d/");
    let sync = ["sync", &prefix, "dir", "--source-region", HOME];
    assert_eq!(redirects_of(&env, &proxy, &sync), 0);
    // A wrong region is corrected as if none were given.
    let wrong = ["cp", &uri, "out2", "--source-region", "ap-south-1"];
    assert_eq!(redirects_of(&env, &proxy, &wrong), 1);
    // A local source has no region.
    let args = [
        "cp",
        "f",
        &uri,
        "--key",
        &env.key_id,
        "--source-region",
        HOME,
    ];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(stderr(&out).contains("--source-region"), "{}", stderr(&out));
}

/// A variable set to nothing means unset, as to the AWS CLI (before, an
/// empty AWS_ENDPOINT_URL_S3 was "not a valid URI" at the first request and
/// an empty AWS_CA_BUNDLE "a value is required"); a region name that cannot
/// be one is a usage error up front, from the flag or the environment
/// (before, it failed at the first request, or not at all on an endpoint
/// that ignores regions).
#[test]
fn empty_variables_are_unset_and_malformed_regions_are_refused() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let out = env
        .atrest()
        .args(["cp", "in", &env.uri("k"), "--key", &env.key_id])
        .env("AWS_ENDPOINT_URL_S3", "")
        .env("AWS_ENDPOINT_URL_KMS", "")
        .env("AWS_CA_BUNDLE", "")
        .env("AWS_PROFILE", "")
        .env("ATREST_KMS_KEY", "")
        .output()
        .unwrap();
    assert_status(&out, 0, &["cp with empty variables"]);
    let out = env
        .atrest()
        .args(["ls", &env.uri("")])
        .env("AWS_DEFAULT_REGION", "")
        .output()
        .unwrap();
    assert_status(&out, 0, &["ls with an empty AWS_DEFAULT_REGION"]);

    for args in [
        &["--region", "", "ls", &env.uri("")][..],
        &["--region", "us east 1", "ls", &env.uri("")],
        &["cp", &env.uri("k"), "back", "--source-region=eu-"],
    ] {
        let out = env.run(args);
        assert_status(&out, 2, args);
        assert!(stderr(&out).contains("region name"), "{}", stderr(&out));
    }
    let out = env
        .atrest()
        .args(["ls", &env.uri("")])
        .env("AWS_REGION", "eu-west-1/../x")
        .output()
        .unwrap();
    assert_status(&out, 2, &["ls with AWS_REGION=eu-west-1/../x"]);
    let said = stderr(&out);
    assert!(
        said.contains("not a region name") && said.contains("AWS_REGION"),
        "{said}"
    );
    assert!(!env.path("back").exists());
}
