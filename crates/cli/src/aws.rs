//! Builds the SDK clients from the standard AWS configuration chain.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::cli::AwsArgs;
use crate::failure::{Exit, Failure};

/// Clients for one run.
pub struct Clients {
    pub kms: atrest_kms::Kms,
    pub s3: aws_sdk_s3::Client,
}

pub async fn clients(args: &AwsArgs) -> anyhow::Result<Clients> {
    let config = load(args).await;
    if config.region().is_none() {
        return Err(Failure::new(
            Exit::Usage,
            "no AWS region configured: pass --region or set AWS_REGION (or a region in the AWS profile)",
        )
        .into());
    }
    let mut s3 = aws_sdk_s3::config::Builder::from(&config);
    // Local endpoints (emulators, MinIO) are addressed by IP or a single host
    // name, where virtual-hosted bucket names cannot resolve.
    if custom_s3_endpoint(args) {
        s3 = s3.force_path_style(true);
    }
    Ok(Clients {
        kms: atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config)),
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
    })
}

async fn load(args: &AwsArgs) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

fn custom_s3_endpoint(args: &AwsArgs) -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    args.endpoint_url.is_some() || set("AWS_ENDPOINT_URL") || set("AWS_ENDPOINT_URL_S3")
}
