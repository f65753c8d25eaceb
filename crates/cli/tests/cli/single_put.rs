//! `--multipart-threshold`: a file whose object is below it goes up in one
//! streaming PutObject (no multipart upload), in both formats; a streamed
//! body of the wrong length, or an abandoned one, creates no object.

use atrest_s3::{S3Uri, UploadOptions, Uploader, MIN_PART_SIZE};

use crate::harness::*;

/// Objects of 5 MiB up to 64 MiB go up in one streaming PUT.
const STREAMING: UploadOptions = UploadOptions {
    part_size: MIN_PART_SIZE,
    concurrency: 2,
    multipart_threshold: 64 << 20,
};

fn etag(env: &Env, key: &str) -> String {
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap();
    head.e_tag().unwrap().to_owned()
}

fn exists(env: &Env, key: &str) -> bool {
    block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).is_ok()
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        text += &format!(": {e}");
        source = e.source();
    }
    text
}

#[test]
fn files_below_the_threshold_go_up_in_one_put() {
    let Some(env) = env() else { return };
    env.create_data_key();
    // More than one 5 MiB part.
    let data = sample(MIN_PART_SIZE + 4321, 9);
    std::fs::write(env.path("plain"), &data).unwrap();
    let small = ["--part-size", "5", "--multipart-threshold", "64"];
    let cases = [
        ("v2-one", vec!["--key", env.key_id.as_str()], &small[..]),
        ("v1-one", vec!["--format", "v1"], &small[..]),
        ("v2-parts", vec!["--key", env.key_id.as_str()], &small[..2]),
    ];
    for (key, format, transfer) in cases {
        let uri = env.uri(key);
        let mut args = vec!["encrypt", "plain", &uri];
        args.extend(format);
        args.extend(transfer);
        env.ok(&args);
        // A multipart object's ETag ends in `-<parts>`.
        let multipart = etag(&env, key).contains('-');
        assert_eq!(
            multipart,
            key.ends_with("parts"),
            "{key}: {}",
            etag(&env, key)
        );
        env.ok(&["decrypt", &uri, key]);
        assert!(
            std::fs::read(env.path(key)).unwrap() == data,
            "{key} round trip"
        );
    }
}

#[test]
fn a_streamed_body_of_the_wrong_length_creates_no_object() {
    let Some(env) = env() else { return };
    let len = MIN_PART_SIZE + 10;
    let data = sample(len + 1, 3);
    let upload = |key: &str, written: usize| {
        let uri = S3Uri::parse(&env.uri(key)).unwrap();
        let mut up = Uploader::new(env.s3.clone(), uri, STREAMING);
        block_on(async {
            up.expect_len(len as u64);
            for piece in data[..written].chunks(1 << 20) {
                if let Err(e) = up.write(piece).await {
                    up.abort().await;
                    return Err(e);
                }
            }
            up.finish().await
        })
    };
    let short = chain(&upload("short", len - 1).unwrap_err());
    assert!(short.contains("instead of"), "{short}");
    assert!(!exists(&env, "short"));
    let long = chain(&upload("long", len + 1).unwrap_err());
    assert!(long.contains("instead of"), "{long}");
    assert!(!exists(&env, "long"));
    upload("exact", len).unwrap();
    assert_eq!(env.get_raw("exact"), data[..len]);
    assert!(!etag(&env, "exact").contains('-'));
}

#[test]
fn an_abandoned_streaming_put_creates_no_object() {
    let Some(env) = env() else { return };
    let uri = S3Uri::parse(&env.uri("abandoned")).unwrap();
    let mut up = Uploader::new(env.s3.clone(), uri, STREAMING);
    block_on(async {
        up.expect_len(2 * MIN_PART_SIZE as u64);
        up.write(&sample(MIN_PART_SIZE, 4)).await.unwrap();
        up.abort().await;
    });
    assert!(!exists(&env, "abandoned"));
}
