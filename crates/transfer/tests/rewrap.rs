//! Rewrapping an S3 Encryption Client object whose envelope is in its
//! metadata, above the CopyObject threshold: its body is copied onto
//! itself in parts inside S3 with the new metadata, the same bytes, and it
//! decrypts under the new key.

use std::sync::Arc;

use atrest_transfer::rewrap::{Action, Rewrap, RewrapOptions};
use atrest_transfer::{DataKeyFrom, Format, S3Uri, Transfer};

mod local;

const MIB: usize = 1024 * 1024;

async fn object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (Vec<u8>, String) {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let wrapped = got.metadata().unwrap()["x-amz-3"].clone();
    let body = got.body.collect().await.unwrap().into_bytes().to_vec();
    (body, wrapped)
}

#[tokio::test]
async fn an_s3ec_object_above_the_copy_threshold_is_rewrapped_by_part_copies() {
    let Some((s3, kms, bucket)) = local::clients("rewrap-s3ec").await else {
        return;
    };
    let from = kms.create_key().send().await.unwrap();
    let from = from.key_metadata().unwrap().key_id().to_owned();
    let to = kms.create_key().send().await.unwrap();
    let to_arn = to.key_metadata().unwrap().arn().unwrap().to_owned();
    let kms = atrest_kms::Kms::new(kms);
    let transfer = Transfer::new(
        s3.clone(),
        Arc::new(atrest_kms::CachedKeys::uncached(kms.clone())),
    );

    let plain: Vec<u8> = (0..7 * MIB as u32).map(|i| (i % 251) as u8).collect();
    let uri = S3Uri::parse(&format!("s3://{bucket}/big")).unwrap();
    transfer
        .upload(&uri, DataKeyFrom::Generate(from))
        .format(Format::S3ecV3)
        .input_len(plain.len() as u64)
        .start(std::io::Cursor::new(plain.clone()))
        .join()
        .await
        .unwrap();
    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(
            aws_sdk_s3::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let tagging = s3.put_object_tagging().bucket(&bucket).key("big");
    tagging.tagging(tags).send().await.unwrap();
    let (body, wrapped) = object(&s3, &bucket, "big").await;

    let options = RewrapOptions::new(to_arn.clone()).copy_in_parts(5 * MIB as u64, 5 * MIB as u64);
    let done = Rewrap::new(s3.clone(), kms, options)
        .object(&uri)
        .await
        .unwrap();
    assert_eq!(done.action, Action::Rewrapped);
    assert!(done.multipart && done.s3ec);
    assert_eq!(done.traffic.copied, body.len() as u64);
    assert_eq!((done.traffic.downloaded, done.traffic.uploaded), (0, 0));
    assert_eq!(done.to_key, to_arn);
    let (after, rewrapped) = object(&s3, &bucket, "big").await;
    assert!(after == body, "the body changed");
    assert_ne!(rewrapped, wrapped);
    let tags = s3
        .get_object_tagging()
        .bucket(&bucket)
        .key("big")
        .send()
        .await;
    assert_eq!(tags.unwrap().tag_set()[0].value(), "v", "the tag stays");

    let mut out = Vec::new();
    let read = transfer.download(&uri).into_writer(&mut out).await.unwrap();
    assert_eq!(read.key_id.as_deref(), Some(to_arn.as_str()));
    assert!(out == plain);
}
