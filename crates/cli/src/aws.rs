//! Builds the SDK clients from the standard AWS configuration chain, with
//! the AWS CLI's rules where the SDK's differ:
//!
//! - `--profile NAME` takes credentials from that profile even when keys are
//!   exported (`AWS_ACCESS_KEY_ID`); the variable `AWS_PROFILE` alone does
//!   not override exported keys. An unknown `--profile` is an error naming it.
//! - Connections and answers have time limits (`--cli-connect-timeout`,
//!   `--cli-read-timeout`), so a silent endpoint fails instead of hanging.
//! - An `--endpoint-url` that is not an http(s) URL fails before any request.
//! - `--request-payer requester` marks every S3 request (Requester Pays);
//!   `--page-size N` sets every listing's page.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

use crate::cli::AwsArgs;
use crate::failure::{Exit, Failure};

/// `--ca-bundle` (or `AWS_CA_BUNDLE`, or the profile's `ca_bundle`, in
/// that order, as the AWS CLI looks): the certificates TLS trusts instead
/// of the system's. The SDK's TLS stack loads its roots with
/// rustls-native-certs, which takes them from the file `SSL_CERT_FILE`
/// names: pointing that at the bundle is the whole change. Call it before
/// any thread is started (it sets a variable of the process).
pub fn use_ca_bundle(args: &AwsArgs) -> anyhow::Result<()> {
    let Some(path) = args.ca_bundle.clone().or_else(|| profile_ca_bundle(args)) else {
        return Ok(());
    };
    let path = &path;
    // Read again by TLS when the first connection is made: a FIFO would be
    // empty by then.
    let regular = std::fs::metadata(path).map(|m| m.is_file());
    let read = match regular {
        Ok(false) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )),
        _ => atrest_fs::read_small(path, CA_BUNDLE_MAX),
    };
    let pem = read.map_err(|e| {
        let exit = match e.kind() {
            std::io::ErrorKind::NotFound => Exit::NotFoundOrDenied,
            _ => Exit::Usage,
        };
        Failure::new(
            exit,
            format!("cannot read the CA bundle {}: {e}", path.display()),
        )
    })?;
    let marker = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(marker.len()).any(|w| w == marker) {
        return Err(Failure::new(
            Exit::Usage,
            format!("the CA bundle {} holds no PEM certificate", path.display()),
        )
        .into());
    }
    std::env::set_var("SSL_CERT_FILE", path);
    Ok(())
}

/// Far more than a CA bundle holds (the system's is ~200 KiB).
const CA_BUNDLE_MAX: u64 = 64 << 20;

/// The selected profile's `ca_bundle`, if the config files can be read
/// and it has one (an unreadable file is reported later, where the
/// profile is used). On a runtime of this thread, gone when it returns.
fn profile_ca_bundle(args: &AwsArgs) -> Option<std::path::PathBuf> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let selected = args.profile.clone().map(std::borrow::Cow::Owned);
    let (fs, env, files) = (Fs::real(), Env::real(), EnvConfigFiles::default());
    let profiles = runtime
        .block_on(aws_config::profile::load(&fs, &env, &files, selected))
        .ok()?;
    profiles.get("ca_bundle").map(std::path::PathBuf::from)
}

/// Clients for one run.
pub struct Clients {
    pub kms: atrest_kms::Kms,
    pub s3: aws_sdk_s3::Client,
    /// The regions `s3` sends each bucket's requests to (`--source-region`).
    pub regions: atrest_s3::BucketRegions,
}

pub async fn clients(args: &AwsArgs) -> anyhow::Result<Clients> {
    check_endpoints(args)?;
    if let Some(profile) = &args.profile {
        check_profile(profile).await?;
    }
    let config = load(args).await;
    let Some(region) = config.region() else {
        return Err(Failure::new(
            Exit::Usage,
            "no AWS region configured: pass --region or set AWS_REGION (or a region in the AWS profile)",
        )
        .into());
    };
    // One from the environment or a profile, checked as --region is.
    if let Err(why) = crate::cli::parse_region(region.as_ref()) {
        let why = format!("{why}: check AWS_REGION, AWS_DEFAULT_REGION and the profile's region");
        return Err(Failure::new(Exit::Usage, why).into());
    }
    // Buckets in other regions are followed there, as the AWS CLI does; an
    // access point's ARN names its region.
    let regions = atrest_s3::BucketRegions::default();
    let mut s3 = regions
        .follow(aws_sdk_s3::config::Builder::from(&config))
        .use_arn_region(true);
    // Local endpoints (emulators, MinIO) are addressed by IP or a single host
    // name, where virtual-hosted bucket names cannot resolve.
    if custom_s3_endpoint(args) {
        s3 = s3.force_path_style(true);
    }
    if args.request_payer.is_some() {
        s3 = s3.interceptor(atrest_s3::RequesterPays);
    }
    if let Some(n) = args.page_size {
        s3 = s3.interceptor(atrest_s3::PageSize(n));
    }
    Ok(Clients {
        kms: atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config)),
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
        regions,
    })
}

async fn load(args: &AwsArgs) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(args));
    if let Some(profile) = &args.profile {
        // A role's credentials come from STS, whose client needs the
        // region (without it every role profile failed: "missing signing
        // region"), and the same time limits.
        let region = match &args.region {
            Some(region) => Some(Region::new(region.clone())),
            None => {
                let chain = aws_config::default_provider::region::DefaultRegionChain::builder();
                chain.profile_name(profile).build().region().await
            }
        };
        let sts = aws_config::provider_config::ProviderConfig::without_region()
            .with_region(region)
            .with_timeout_config(timeouts(args));
        // The SDK's default chain puts exported keys before any profile;
        // the AWS CLI lets an explicit --profile win, and so do we.
        let credentials = ProfileOnly {
            name: profile.clone(),
            inner: ProfileFileCredentialsProvider::builder()
                .configure(&sts)
                .profile_name(profile)
                .build(),
        };
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The credentials of the `--profile` profile, and an error naming it when
/// it holds none (the SDK's says only "the credential provider was not
/// enabled").
#[derive(Debug)]
struct ProfileOnly {
    name: String,
    inner: ProfileFileCredentialsProvider,
}

impl ProvideCredentials for ProfileOnly {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.inner.provide_credentials().await.map_err(|e| match e {
                CredentialsError::CredentialsNotLoaded(_) => {
                    CredentialsError::invalid_configuration(format!(
                        "the profile `{}` holds no credentials (keys, a role, SSO or credential_process)",
                        self.name
                    ))
                }
                other => other,
            })
        })
    }
}

/// `--cli-connect-timeout` and `--cli-read-timeout`; 0 means no limit.
fn timeouts(args: &AwsArgs) -> TimeoutConfig {
    let mut timeouts = TimeoutConfig::builder();
    timeouts = match args.cli_connect_timeout {
        0 => timeouts.disable_connect_timeout(),
        secs => timeouts.connect_timeout(Duration::from_secs(secs)),
    };
    timeouts = match args.cli_read_timeout {
        0 => timeouts.disable_read_timeout(),
        secs => timeouts.read_timeout(Duration::from_secs(secs)),
    };
    timeouts.build()
}

/// An unknown `--profile` is a usage error, named, before anything else.
async fn check_profile(name: &str) -> anyhow::Result<()> {
    let profiles =
        aws_config::profile::load(&Fs::real(), &Env::real(), &EnvConfigFiles::default(), None)
            .await
            .map_err(|e| {
                Failure::new(
                    Exit::Usage,
                    format!("cannot read the AWS config files for --profile {name}: {e}"),
                )
            })?;
    if profiles.get_profile(name).is_none() {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "the profile `{name}` (--profile) is not in the AWS config or credentials file"
            ),
        )
        .into());
    }
    Ok(())
}

/// The endpoint URLs from the flag and the standard variables must be
/// http(s) URLs with a host: checked up front, so a typo fails at once with
/// exit 2 rather than after a request is tried.
fn check_endpoints(args: &AwsArgs) -> anyhow::Result<()> {
    let flag = args
        .endpoint_url
        .as_ref()
        .map(|url| ("--endpoint-url".to_owned(), url.clone()));
    let vars = [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_KMS",
    ]
    .into_iter()
    .filter_map(|name| {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
        Some((name.to_owned(), value))
    });
    for (source, url) in flag.into_iter().chain(vars) {
        if let Err(why) = check_endpoint(&url) {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "invalid endpoint URL `{}` ({source}): {why}",
                    crate::escape(&url)
                ),
            )
            .into());
        }
    }
    Ok(())
}

fn check_endpoint(url: &str) -> Result<(), &'static str> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "expected a URL like https://host[:port]")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the scheme must be http:// or https://"),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err("the URL names no host"),
    }
}

fn custom_s3_endpoint(args: &AwsArgs) -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    args.endpoint_url.is_some() || set("AWS_ENDPOINT_URL") || set("AWS_ENDPOINT_URL_S3")
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn endpoint_urls_are_checked() {
        assert!(check_endpoint("http://127.0.0.1:9000").is_ok());
        assert!(check_endpoint("https://s3.example.com").is_ok());
        assert!(check_endpoint("not a url").is_err());
        assert!(check_endpoint("127.0.0.1:9000").is_err());
        assert!(check_endpoint("ftp://host").is_err());
        assert!(check_endpoint("http://").is_err());
    }
}
