//! Clients for the local endpoint that `cargo xtask test` exports, shared
//! by the integration tests.

use aws_config::{BehaviorVersion, Region};

/// An S3 client (path-style) and a KMS client on `ATREST_TEST_ENDPOINT`
/// with the test credentials, and a new bucket `atrest-{name}-{pid}`;
/// `None` (the test skips) when the endpoint is not set.
pub async fn clients(name: &str) -> Option<(aws_sdk_s3::Client, aws_sdk_kms::Client, String)> {
    let Ok(endpoint) = std::env::var("ATREST_TEST_ENDPOINT") else {
        eprintln!("ATREST_TEST_ENDPOINT is not set: skipping (run `cargo xtask test`)");
        return None;
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(true);
    let s3 = aws_sdk_s3::Client::from_conf(s3.build());
    let bucket = format!("atrest-{name}-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    Some((s3, aws_sdk_kms::Client::new(&config), bucket))
}
