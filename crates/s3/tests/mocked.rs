//! The uploader against a mocked S3 client: which requests a streaming upload
//! makes, and that a failure aborts the multipart upload.

use atrest_s3::{S3Error, S3Uri, UploadOptions, Uploader, MIN_PART_SIZE};
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::{UploadPartError, UploadPartOutput};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};

fn uri() -> S3Uri {
    S3Uri::parse("s3://bucket/key").unwrap()
}

const OPTIONS: UploadOptions = UploadOptions {
    part_size: MIN_PART_SIZE,
    concurrency: 2,
    multipart_threshold: 0,
};

#[tokio::test]
async fn small_objects_use_one_put() {
    let put = mock!(Client::put_object)
        .match_requests(|r| r.bucket() == Some("bucket") && r.key() == Some("key"))
        .then_output(|| PutObjectOutput::builder().build());
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put, &create]);
    let mut up = Uploader::new(client, uri(), OPTIONS);
    up.write(&vec![1; MIN_PART_SIZE - 1]).await.unwrap();
    up.finish().await.unwrap();
    assert_eq!((put.num_calls(), create.num_calls()), (1, 0));
}

#[tokio::test]
async fn large_objects_go_up_in_parts_and_complete() {
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let part = mock!(Client::upload_part)
        .match_requests(|r| r.upload_id() == Some("u"))
        .then_output(|| UploadPartOutput::builder().e_tag("etag").build());
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| {
            let parts = r.multipart_upload().map(|m| m.parts()).unwrap_or_default();
            let numbers: Vec<_> = parts.iter().filter_map(|p| p.part_number()).collect();
            numbers == [1, 2, 3]
        })
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &part, &complete]);
    let mut up = Uploader::new(client, uri(), OPTIONS);
    // Two full parts and a short last one, written in odd-sized pieces.
    let data = vec![7u8; 2 * MIN_PART_SIZE + 10];
    for piece in data.chunks(1_000_003) {
        up.write(piece).await.unwrap();
    }
    up.finish().await.unwrap();
    assert_eq!(
        (create.num_calls(), part.num_calls(), complete.num_calls()),
        (1, 3, 1)
    );
}

#[tokio::test]
async fn a_failed_part_aborts_the_upload() {
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let part = mock!(Client::upload_part).then_error(|| {
        UploadPartError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder()
                .code("InternalError")
                .build(),
        )
    });
    let abort = mock!(Client::abort_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("u"))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    let complete = mock!(Client::complete_multipart_upload)
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    let client = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&create, &part, &abort, &complete]
    );
    let mut up = Uploader::new(client, uri(), OPTIONS);
    up.write(&vec![0; 2 * MIN_PART_SIZE]).await.unwrap();
    let err = up.finish().await.unwrap_err();
    assert!(
        matches!(
            err,
            S3Error::Request {
                op: "UploadPart",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(abort.num_calls(), 1, "multipart upload aborted");
    assert_eq!(complete.num_calls(), 0, "never completed");
}

#[tokio::test]
async fn abandoning_a_started_upload_aborts_it() {
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let part =
        mock!(Client::upload_part).then_output(|| UploadPartOutput::builder().e_tag("e").build());
    let abort = mock!(Client::abort_multipart_upload)
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &part, &abort]);
    let mut up = Uploader::new(client, uri(), OPTIONS);
    up.write(&vec![0; MIN_PART_SIZE + 1]).await.unwrap();
    up.abort().await;
    assert_eq!(abort.num_calls(), 1);
}

#[tokio::test]
async fn a_stream_of_unknown_length_gets_larger_parts_after_every_thousand() {
    let size = |r: &aws_sdk_s3::operation::upload_part::UploadPartInput| {
        r.body().size_hint().1.unwrap_or(0) as usize
    };
    let first = mock!(Client::upload_part)
        .match_requests(move |r| r.part_number() <= Some(1000) && size(r) == MIN_PART_SIZE)
        .then_output(|| UploadPartOutput::builder().e_tag("e").build());
    let doubled = mock!(Client::upload_part)
        .match_requests(move |r| r.part_number() > Some(1000) && size(r) == 2 * MIN_PART_SIZE)
        .then_output(|| UploadPartOutput::builder().e_tag("e").build());
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let complete = mock!(Client::complete_multipart_upload)
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    let client = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&first, &doubled, &create, &complete]
    );
    let mut up = Uploader::new(client, uri(), OPTIONS);
    up.grow_parts();
    // One buffer, sent as it is (no copy) while parts are that size.
    let part = bytes::Bytes::from(vec![0u8; MIN_PART_SIZE]);
    for _ in 0..1004 {
        up.write_bytes(part.clone()).await.unwrap();
    }
    up.finish().await.unwrap();
    assert_eq!((first.num_calls(), doubled.num_calls()), (1000, 2));
}

/// A copy whose source is gone names the source (it named the destination,
/// which a copy never needs to exist: "object s3://b/q/x does not exist"
/// when another mover had taken `p/x`).
#[tokio::test]
async fn a_copy_of_a_missing_source_names_the_source() {
    use aws_sdk_s3::operation::copy_object::CopyObjectError;
    let copy = mock!(Client::copy_object).then_error(|| {
        CopyObjectError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder()
                .code("NoSuchKey")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&copy]);
    let from = S3Uri::parse("s3://bucket/p/x").unwrap();
    let to = S3Uri::parse("s3://bucket/q/x").unwrap();
    let err = atrest_s3::copy_object(&client, &from, &to, "\"etag\"", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, S3Error::NoSuchKey { uri } if uri == "s3://bucket/p/x"),
        "{err:?}"
    );
}
