//! Settings for every request of a client, as interceptors: Requester Pays
//! buckets (every request says its sender pays) and the page size of
//! listings.

use aws_sdk_s3::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Input;

/// An interceptor that marks every request of a client
/// `x-amz-request-payer: requester`, as the AWS CLI's `--request-payer
/// requester` does: a Requester Pays bucket refuses requests of anyone
/// but its owner without it (403). One interceptor covers every operation
/// (GETs, uploads, copies, listings, deletes), where the SDK has a setter
/// per operation.
///
/// ```no_run
/// # async fn example() {
/// let config = aws_config::load_from_env().await;
/// let s3 = aws_sdk_s3::config::Builder::from(&config)
///     .interceptor(atrest_s3::RequesterPays)
///     .build();
/// let client = aws_sdk_s3::Client::from_conf(s3);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RequesterPays;

impl Intercept for RequesterPays {
    fn name(&self) -> &'static str {
        "RequesterPays"
    }

    // Before signing: the header is signed with the rest.
    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-amz-request-payer", "requester");
        Ok(())
    }
}

/// An interceptor that asks every ListObjectsV2 of a client for at most
/// this many keys a page (S3's default and largest is 1,000), as the AWS
/// CLI's `--page-size`: smaller pages answer sooner, in more requests.
#[derive(Clone, Copy, Debug)]
pub struct PageSize(pub i32);

impl Intercept for PageSize {
    fn name(&self) -> &'static str {
        "PageSize"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(list) = context.input_mut().downcast_mut::<ListObjectsV2Input>() {
            list.max_keys = Some(self.0);
        }
        Ok(())
    }
}
