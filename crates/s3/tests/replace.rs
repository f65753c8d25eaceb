//! Replacing an object in place against a mocked S3 client: the properties
//! and guards each request carries, and that a changed object (HTTP 412) is
//! reported as such. moto ignores `x-amz-copy-source-if-match` and the
//! `If-Match` of CompleteMultipartUpload (see the shared notes on the local
//! endpoint), so only a mock can show that atrest sends them.

use atrest_s3::{put_replacing, Properties, Replacement, S3Error, S3Uri};
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part_copy::{UploadPartCopyError, UploadPartCopyOutput};
use aws_sdk_s3::types::{CopyPartResult, StorageClass};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};

fn uri() -> S3Uri {
    S3Uri::parse("s3://bucket/dir/a b.bin").unwrap()
}

fn properties() -> Properties {
    let mut p = Properties::default();
    p.metadata.insert("owner".into(), "me".into());
    p.content_type = Some("text/plain".into());
    p.cache_control = Some("max-age=60".into());
    p.storage_class = Some(StorageClass::StandardIa);
    p.tags = vec![("team".into(), "a b".into())];
    p
}

#[tokio::test]
async fn head_reads_the_properties_a_rewrite_keeps() {
    let rule = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .content_length(42)
            .e_tag("\"e1\"")
            .version_id("v1")
            .metadata("owner", "me")
            .content_type("text/plain")
            .content_language("de")
            .storage_class(StorageClass::Glacier)
            .tag_count(1)
            .build()
    });
    let client = mock_client!(aws_sdk_s3, [&rule]);
    let head = atrest_s3::head(&client, &uri()).await.unwrap();
    assert_eq!((head.len, head.etag.as_str()), (42, "\"e1\""));
    assert_eq!(head.version_id.as_deref(), Some("v1"));
    assert_eq!(head.properties.metadata["owner"], "me");
    assert_eq!(head.properties.content_language.as_deref(), Some("de"));
    assert_eq!(head.properties.storage_class, Some(StorageClass::Glacier));
    assert_eq!(head.tag_count, Some(1));
}

#[tokio::test]
async fn a_replacing_put_carries_the_properties_and_the_etag() {
    let put = mock!(Client::put_object)
        .match_requests(|r| {
            r.if_match() == Some("\"e1\"")
                && r.metadata().is_some_and(|m| m["owner"] == "me")
                && r.content_type() == Some("text/plain")
                && r.cache_control() == Some("max-age=60")
                && r.storage_class() == Some(&StorageClass::StandardIa)
                && r.tagging() == Some("team=a%20b")
        })
        .then_output(|| PutObjectOutput::builder().build());
    let client = mock_client!(aws_sdk_s3, [&put]);
    put_replacing(&client, &uri(), "body".into(), &properties(), "\"e1\"")
        .await
        .unwrap();
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn copies_and_completion_only_use_the_version_read() {
    let create = mock!(Client::create_multipart_upload)
        .match_requests(|r| {
            r.storage_class() == Some(&StorageClass::StandardIa)
                && r.tagging() == Some("team=a%20b")
                && r.metadata().is_some_and(|m| m["owner"] == "me")
        })
        .then_output(|| {
            CreateMultipartUploadOutput::builder()
                .upload_id("u")
                .build()
        });
    let copy = mock!(Client::upload_part_copy)
        .match_requests(|r| {
            r.upload_id() == Some("u")
                && r.copy_source() == Some("bucket/dir/a%20b.bin")
                && r.copy_source_range() == Some("bytes=100-199")
                && r.copy_source_if_match() == Some("\"e1\"")
        })
        .then_output(|| {
            UploadPartCopyOutput::builder()
                .copy_part_result(CopyPartResult::builder().e_tag("\"p2\"").build())
                .build()
        });
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| {
            let parts = r.multipart_upload().map(|m| m.parts()).unwrap_or_default();
            let got: Vec<_> = parts
                .iter()
                .map(|p| (p.part_number(), p.e_tag().map(str::to_owned)))
                .collect();
            r.if_match() == Some("\"e1\"") && got == [(Some(2), Some("\"p2\"".to_owned()))]
        })
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    // Read once more just before the completion, for servers that ignore
    // its If-Match.
    let head = mock!(Client::head_object)
        .match_requests(|r| r.key() == Some("dir/a b.bin"))
        .then_output(|| HeadObjectOutput::builder().e_tag("\"e1\"").build());
    let client = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&create, &copy, &head, &complete]
    );
    let up = Replacement::start(&client, &uri(), &properties(), "\"e1\"")
        .await
        .unwrap();
    let part = up.copy(2, 100, 199).await.unwrap();
    up.complete(vec![part]).await.unwrap();
    assert_eq!(
        (create.num_calls(), copy.num_calls(), complete.num_calls()),
        (1, 1, 1)
    );
    assert_eq!(head.num_calls(), 1);
}

/// The object changed since it was read: the completion is not sent at
/// all (a server that ignores its If-Match would have completed it).
#[tokio::test]
async fn a_completion_over_a_changed_object_is_not_sent() {
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let head = mock!(Client::head_object)
        .then_output(|| HeadObjectOutput::builder().e_tag("\"e2\"").build());
    let complete = mock!(Client::complete_multipart_upload)
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &head, &complete]);
    let up = Replacement::start(&client, &uri(), &properties(), "\"e1\"")
        .await
        .unwrap();
    let err = up.complete(Vec::new()).await.unwrap_err();
    assert!(matches!(err, S3Error::Changed { .. }), "{err:?}");
    assert_eq!(complete.num_calls(), 0);
}

#[tokio::test]
async fn a_copy_from_a_changed_object_is_reported_as_changed() {
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u")
            .build()
    });
    let copy = mock!(Client::upload_part_copy).then_error(|| {
        UploadPartCopyError::generic(
            ErrorMetadata::builder()
                .code("PreconditionFailed")
                .message("At least one of the pre-conditions you specified did not hold")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &copy]);
    let up = Replacement::start(&client, &uri(), &Properties::default(), "\"e1\"")
        .await
        .unwrap();
    let err = up.copy(2, 0, 9).await.unwrap_err();
    assert!(
        matches!(
            err,
            S3Error::Changed {
                op: "UploadPartCopy",
                ..
            }
        ),
        "{err:?}"
    );
}
