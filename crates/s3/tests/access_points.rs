//! Access points named by ARN in `s3://` URIs, as the AWS CLI takes them:
//! the requests go to the access point (in the ARN's region), and a copy
//! names its source through the access point. The requests are captured,
//! not sent (no local endpoint serves access points).

use atrest_s3::S3Uri;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{capture_request, CaptureRequestReceiver};

const AP: &str = "arn:aws:s3:eu-west-1:123456789012:accesspoint/my-ap";

/// A client in us-east-1 whose one request is captured.
fn client() -> (aws_sdk_s3::Client, CaptureRequestReceiver) {
    let (http, request) = capture_request(None);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "test"))
        .use_arn_region(true)
        .http_client(http);
    let config = atrest_s3::follow_bucket_regions(config).build();
    (aws_sdk_s3::Client::from_conf(config), request)
}

#[tokio::test]
async fn requests_go_to_the_access_point_in_its_region() {
    let (client, request) = client();
    let uri = S3Uri::parse(&format!("s3://{AP}/dir/a b")).unwrap();
    let _ = atrest_s3::head(&client, &uri).await;
    let sent = request.expect_request();
    assert_eq!(
        sent.uri(),
        "https://my-ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/dir/a%20b"
    );
    let authorization = sent.headers().get("authorization").unwrap();
    assert!(
        authorization.contains("/eu-west-1/s3/aws4_request"),
        "{authorization}"
    );
}

#[tokio::test]
async fn a_copy_names_its_source_through_the_access_point() {
    let (client, request) = client();
    let from = S3Uri::parse(&format!("s3://{AP}/dir/a b")).unwrap();
    let to = S3Uri::parse("s3://other-bucket/copy").unwrap();
    let _ = atrest_s3::copy_object(&client, &from, &to, "\"etag\"", None).await;
    let sent = request.expect_request();
    assert_eq!(
        sent.headers().get("x-amz-copy-source"),
        Some(format!("{AP}/object/dir/a%20b").as_str())
    );
}
