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
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(args)
        .output()
        .unwrap();
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("is in region {HOME}")) && err.contains(&format!("--region {HOME}")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(crate::bulk::keys(&env, "").is_empty());
}
