//! The example program runs against the local endpoint (`cargo xtask test`
//! exports it): a 300 KB file goes up, and its first 100 bytes come back.

#[allow(dead_code)]
#[path = "../examples/encrypt_and_read_range.rs"]
mod example;

mod local;

#[tokio::test]
async fn the_example_encrypts_a_file_and_reads_back_a_range() {
    let Some((s3, kms, bucket)) = local::clients("example").await else {
        return;
    };
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &plain).unwrap();
    let uri = atrest_transfer::S3Uri::parse(&format!("s3://{bucket}/example")).unwrap();

    let head = example::encrypt_and_read_range(s3.clone(), kms, &file, &uri, key_id)
        .await
        .unwrap();
    assert_eq!(head, plain[..100]);
    // What is stored is an atrest v2 object, not the plaintext.
    let stored = s3
        .get_object()
        .bucket(&bucket)
        .key("example")
        .send()
        .await
        .unwrap();
    let stored = stored.body.collect().await.unwrap().to_vec();
    assert_eq!(stored[0], 2, "a v2 header");
    assert!(stored.windows(100).all(|w| w != &plain[..100]));
}
