//! Buckets outside the client's region, reached as the AWS CLI reaches
//! them: S3 answers a request sent to the wrong region with a redirect
//! (301 `PermanentRedirect`, or 400 `AuthorizationHeaderMalformed` when the
//! signature names the wrong region) that says where the bucket is
//! (`x-amz-bucket-region`, or `<Region>` in the error). The Rust SDK does
//! not follow these; [`follow_bucket_regions`] makes a client do so: it
//! learns each bucket's region from its first redirect, sends that request
//! again there at once, and sends every later request for the bucket there
//! from the start (one extra request per bucket and client, a few if its
//! first requests go out at once; none for buckets in the client's
//! region).
//!
//! Three parts of the SDK's request pipeline cooperate: an interceptor
//! that reads the redirect and records the region, a retry classifier that
//! sends the request again without delay, and an endpoint resolver that
//! resolves (and so signs) a request for a learned bucket in its region.
//! A request whose body cannot be sent twice (a streaming upload) fails
//! with [`S3Error::OtherRegion`](crate::S3Error::OtherRegion), and the
//! bucket's next request goes to the right region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::config::interceptors::{FinalizerInterceptorContextMut, InterceptorContext};
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_runtime_api::client::endpoint::{EndpointFuture, EndpointResolverParams};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
use aws_smithy_runtime_api::http::{Headers, Response};
use aws_smithy_types::retry::ErrorKind;

/// `builder` with redirects to other regions followed (see the module
/// docs). It replaces any endpoint resolver set before.
///
/// ```no_run
/// # async fn example() {
/// let config = aws_config::load_from_env().await;
/// let s3 = atrest_s3::follow_bucket_regions(aws_sdk_s3::config::Builder::from(&config));
/// let client = aws_sdk_s3::Client::from_conf(s3.build());
/// # }
/// ```
pub fn follow_bucket_regions(builder: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
    BucketRegions::default().follow(builder)
}

/// The regions of buckets, as a client following them learns them (see
/// [`follow_bucket_regions`]), and as its caller may tell them up front
/// (the AWS CLI's `--source-region`), saving the redirect.
///
/// ```no_run
/// # async fn example() {
/// let config = aws_config::load_from_env().await;
/// let regions = atrest_s3::BucketRegions::default();
/// let s3 = regions.follow(aws_sdk_s3::config::Builder::from(&config));
/// regions.learn("my-eu-bucket", "eu-west-1");
/// let client = aws_sdk_s3::Client::from_conf(s3.build());
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct BucketRegions(Learned);

impl BucketRegions {
    /// `builder` following buckets to their regions, these first.
    pub fn follow(&self, builder: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
        let learned = self.0.clone();
        builder
            .endpoint_resolver(InLearnedRegion {
                learned: learned.clone(),
                inner: DefaultResolver::new(),
            })
            .interceptor(LearnRegion { learned })
            .retry_classifier(SendAgainThere)
    }

    /// Sends `bucket`'s requests to `region` from now on (a wrong one is
    /// corrected by S3's redirect, as if it had not been told).
    pub fn learn(&self, bucket: &str, region: &str) {
        self.0.set(bucket, region);
    }
}

/// The regions learned so far, by bucket.
#[derive(Clone, Debug, Default)]
struct Learned(Arc<Mutex<HashMap<String, String>>>);

impl Learned {
    fn get(&self, bucket: &str) -> Option<String> {
        self.0.lock().unwrap().get(bucket).cloned()
    }

    fn set(&self, bucket: &str, region: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(bucket.to_owned(), region.to_owned());
    }
}

/// The SDK's resolver, given a learned bucket's region instead of the
/// client's (the endpoint it resolves also names the signing region).
#[derive(Debug)]
struct InLearnedRegion {
    learned: Learned,
    inner: DefaultResolver,
}

impl ResolveEndpoint for InLearnedRegion {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        let learned = params.bucket().and_then(|b| self.learned.get(b));
        match learned {
            Some(region) if params.region() != Some(region.as_str()) => {
                match in_region(params, region) {
                    Ok(moved) => {
                        EndpointFuture::new(
                            async move { self.inner.resolve_endpoint(&moved).await },
                        )
                    }
                    Err(e) => EndpointFuture::ready(Err(e.into())),
                }
            }
            _ => self.inner.resolve_endpoint(params),
        }
    }
}

/// `params` with `region` in place of their region.
fn in_region(
    p: &Params,
    region: String,
) -> Result<Params, aws_sdk_s3::config::endpoint::InvalidParams> {
    Params::builder()
        .set_bucket(p.bucket().map(Into::into))
        .set_region(Some(region))
        .set_use_fips(p.use_fips())
        .set_use_dual_stack(p.use_dual_stack())
        .set_endpoint(p.endpoint().map(Into::into))
        .set_force_path_style(p.force_path_style())
        .set_accelerate(p.accelerate())
        .set_use_global_endpoint(p.use_global_endpoint())
        .set_use_object_lambda_endpoint(p.use_object_lambda_endpoint())
        .set_key(p.key().map(Into::into))
        .set_prefix(p.prefix().map(Into::into))
        .set_copy_source(p.copy_source().map(Into::into))
        .set_disable_access_points(p.disable_access_points())
        .set_disable_multi_region_access_points(p.disable_multi_region_access_points())
        .set_use_arn_region(p.use_arn_region())
        .set_use_s3_express_control_endpoint(p.use_s3_express_control_endpoint())
        .set_disable_s3_express_session_auth(p.disable_s3_express_session_auth())
        .build()
}

/// Marks a response that redirected its request to a region now learned.
#[derive(Clone, Copy, Debug)]
struct Redirected;

/// Records the region a redirect names for the request's bucket, and
/// marks the response for [`SendAgainThere`].
#[derive(Debug)]
struct LearnRegion {
    learned: Learned,
}

impl Intercept for LearnRegion {
    fn name(&self) -> &'static str {
        "LearnBucketRegion"
    }

    // After the attempt: an error's body has been read by then.
    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(params) = cfg
            .load::<EndpointResolverParams>()
            .and_then(|p| p.get::<Params>())
        else {
            return Ok(());
        };
        let (Some(bucket), Some(response)) = (params.bucket(), context.response_mut()) else {
            return Ok(());
        };
        let sent_to = self
            .learned
            .get(bucket)
            .or_else(|| params.region().map(Into::into));
        if let Some(region) = redirect_region(response) {
            if sent_to.as_deref() != Some(region.as_str()) {
                tracing::debug!(target: "atrest_s3", bucket, %region, "bucket is in another region");
                self.learned.set(bucket, &region);
                response.add_extension(Redirected);
            }
        }
        Ok(())
    }
}

/// The region a response redirects to, if it is such a redirect: a 301,
/// 302 or 307, or a 400 that says the region is wrong (by its code, or a
/// HEAD's, which has no body). Other 400s (a bad part, say) name the
/// bucket's region too, but are no redirect.
pub(crate) fn redirect_region(response: &Response) -> Option<String> {
    let body = response.body().bytes();
    let wrong_region = |body: &[u8]| {
        let body = String::from_utf8_lossy(body);
        [
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraintException",
        ]
        .iter()
        .any(|code| body.contains(&format!("<Code>{code}</Code>")))
    };
    let redirect = match response.status().as_u16() {
        301 | 302 | 307 => true,
        400 => body.is_none_or(|b| b.is_empty() || wrong_region(b)),
        _ => false,
    };
    redirect
        .then(|| region_of(response.headers(), body))
        .flatten()
}

/// The region in `x-amz-bucket-region`, else in the error's `<Region>`.
pub(crate) fn region_of(headers: &Headers, body: Option<&[u8]>) -> Option<String> {
    let named = headers
        .get("x-amz-bucket-region")
        .map(str::to_owned)
        .or_else(|| {
            let body = std::str::from_utf8(body?).ok()?;
            let (_, rest) = body.split_once("<Region>")?;
            let (region, _) = rest.split_once("</Region>")?;
            Some(region.trim().to_owned())
        })?;
    // A region name, not arbitrary text from a server.
    let valid = !named.is_empty()
        && named.len() <= 32
        && named
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(named)
}

/// Sends a redirected request again at once (it is resolved in the
/// learned region this time).
#[derive(Debug)]
struct SendAgainThere;

impl ClassifyRetry for SendAgainThere {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().and_then(|r| r.extension::<Redirected>()) {
            Some(_) => RetryAction::retryable_error_with_explicit_delay(
                ErrorKind::ClientError,
                Duration::ZERO,
            ),
            None => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "SendAgainInBucketRegion"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, header: Option<&str>, body: &str) -> Response {
        let mut response = Response::new(status.try_into().unwrap(), SdkBody::from(body));
        if let Some(region) = header {
            response
                .headers_mut()
                .insert("x-amz-bucket-region", region.to_owned());
        }
        response
    }

    #[test]
    fn the_region_comes_from_the_header_or_the_error() {
        let moved = response(
            301,
            Some("eu-west-1"),
            "<Error><Region>ap-south-1</Region></Error>",
        );
        assert_eq!(redirect_region(&moved).as_deref(), Some("eu-west-1"));
        let malformed = response(
            400,
            None,
            "<Error><Code>AuthorizationHeaderMalformed</Code><Region> ap-south-1 </Region></Error>",
        );
        assert_eq!(redirect_region(&malformed).as_deref(), Some("ap-south-1"));
    }

    #[test]
    fn other_answers_and_odd_regions_are_no_redirect() {
        assert_eq!(redirect_region(&response(200, Some("eu-west-1"), "")), None);
        assert_eq!(redirect_region(&response(403, Some("eu-west-1"), "")), None);
        assert_eq!(
            redirect_region(&response(301, None, "<Error></Error>")),
            None
        );
        let bad_part = "<Error><Code>InvalidPart</Code></Error>";
        assert_eq!(
            redirect_region(&response(400, Some("eu-west-1"), bad_part)),
            None
        );
        let head = response(400, Some("eu-west-1"), "");
        assert_eq!(redirect_region(&head).as_deref(), Some("eu-west-1"));
        for odd in ["", "eu west-1", "../x", "EU-WEST-1", &"a".repeat(33)] {
            let got = redirect_region(&response(301, None, &format!("<Region>{odd}</Region>")));
            assert_eq!(got, None, "{odd:?}");
        }
    }
}
