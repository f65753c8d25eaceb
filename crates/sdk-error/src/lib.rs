//! What went wrong in a failed AWS SDK call, as one short line.
//!
//! Shared by `atrest-kms` and `atrest-s3` (every service crate of the SDK
//! returns the same [`SdkError`]), so both describe failures alike:
//!
//! - a service error: its AWS code and message, and the HTTP status;
//! - a reply that could not be parsed: only its status, never the raw
//!   response (the body of a KMS Decrypt or GenerateDataKey answer holds the
//!   plaintext data key, so a reply that fails to parse must not be shown);
//! - a connection failure: its innermost cause (the SDK's
//!   `DisplayErrorContext` repeats every layer and ends with a `Debug` dump
//!   of hundreds of characters);
//! - a timeout: which one, and after how long;
//! - no usable credentials: [`credentials_failure`] tells it apart by type
//!   (`CredentialsError` anywhere in the cause chain), whatever provider of
//!   the chain failed and however it words it.
//!
//! [`is_transient`] tells whether trying the same call later may succeed
//! (throttling, a 5xx, a timeout, a broken connection), and [`Failure`]
//! carries that answer beside the line, for callers that schedule retries
//! of their own (S3 Batch Operations' TemporaryFailure).
#![deny(missing_docs)]

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
pub use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
pub use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// One line for a failed call to `service` ("S3", "KMS") that no caller
/// mapped to a more specific error.
pub fn describe<E>(service: &str, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let status = err
        .raw_response()
        .map(|r| format!(" (HTTP {})", r.status().as_u16()))
        .unwrap_or_default();
    match err {
        SdkError::ServiceError(_) if err.code().is_some() => {
            let code = err.code().unwrap_or_default();
            match err.message() {
                Some(message) if !message.is_empty() => format!("{code}: {message}{status}"),
                _ => format!("{code}{status}"),
            }
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            format!("{service} sent a reply that could not be read{status}")
        }
        SdkError::TimeoutError(_) => format!("no answer from {service} in time"),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            // "HTTP read timeout occurred after 1s", one layer above the
            // innermost (a bare "timed out").
            let which = chain(err)
                .map(|e| e.to_string())
                .find(|text| text.contains("occurred after"))
                .unwrap_or_else(|| "timed out".to_owned());
            format!("no answer from {service}: {which}")
        }
        SdkError::DispatchFailure(_) => {
            let innermost = chain(err).last().map(|e| e.to_string());
            format!(
                "could not reach {service}: {}",
                innermost.unwrap_or_else(|| "connection failed".to_owned())
            )
        }
        // Failures before a request was built carry no response.
        _ => match chain(err).last() {
            Some(cause) => format!("{service} request could not be made: {cause}"),
            None => format!("{service} request could not be made"),
        },
    }
}

/// Whether the call may succeed if made again later: the SDK's own
/// throttling and transient error codes (which it retried already, with
/// backoff), any HTTP 5xx or 429, a timeout, a connection that failed or
/// broke, a reply cut short. Not: a refusal (4xx), a missing resource, bad
/// credentials, a request that could not be built.
pub fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code();
            let status = service.raw().status().as_u16();
            code.is_some_and(|c| THROTTLING_ERRORS.contains(&c) || TRANSIENT_ERRORS.contains(&c))
                || status >= 500
                || status == 429
        }
        _ => false,
    }
}

/// A failed call in one line ([`describe`]) and whether it is
/// [transient](is_transient); shows as the line alone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}")]
pub struct Failure {
    /// What [`describe`] says.
    pub line: String,
    /// What [`is_transient`] says.
    pub transient: bool,
}

impl Failure {
    /// The failure of a call to `service`.
    pub fn of<E>(service: &str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        Failure {
            line: describe(service, err),
            transient: is_transient(err),
        }
    }
}

/// Why no usable credentials resolved, if that is why the call failed, in
/// one line: "none found" when no provider had any, else the innermost cause
/// of the provider's failure (a failing `credential_process`, an SSO token
/// that expired, a role that cannot be assumed).
pub fn credentials_failure<E, R>(err: &SdkError<E, R>) -> Option<String>
where
    E: Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let (at, outermost) = chain(err)
        .enumerate()
        .find_map(|(i, e)| e.downcast_ref::<CredentialsError>().map(|c| (i, c)))?;
    if matches!(outermost, CredentialsError::CredentialsNotLoaded(_)) {
        return Some("none found".to_owned());
    }
    let innermost = chain(err).skip(at).last().map(|e| e.to_string());
    Some(one_line(
        &innermost.unwrap_or_else(|| outermost.to_string()),
    ))
}

/// The causes below `err`, outermost first.
fn chain<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(err.source(), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// `text` on one line, at most a couple of hundred characters: providers
/// quote files and server answers.
fn one_line(text: &str) -> String {
    const MAX: usize = 200;
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service(code: &str, status: u16) -> SdkError<ErrorMetadata, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(meta, raw)
    }

    #[test]
    fn throttling_5xx_and_timeouts_are_transient_refusals_are_not() {
        for (code, status) in [
            ("SlowDown", 503),
            ("ThrottlingException", 400),
            ("LimitExceededException", 400),
            ("RequestTimeout", 400),
            ("InternalError", 500),
            ("KMSInternalException", 500),
            ("DependencyTimeoutException", 503),
            ("TooManyRequests", 429),
        ] {
            assert!(is_transient(&service(code, status)), "{code} {status}");
        }
        for (code, status) in [
            ("AccessDenied", 403),
            ("NoSuchKey", 404),
            ("NotFoundException", 400),
            ("InvalidAccessKeyId", 403),
            ("InvalidObjectState", 403),
        ] {
            assert!(!is_transient(&service(code, status)), "{code} {status}");
        }
        let timeout: SdkError<ErrorMetadata, HttpResponse> = SdkError::timeout_error("slow");
        assert!(is_transient(&timeout));
        let unbuildable: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::construction_failure("bad input");
        assert!(!is_transient(&unbuildable));
        let failure = Failure::of("S3", &service("SlowDown", 503));
        assert!(failure.transient);
        assert_eq!(failure.to_string(), "SlowDown: m (HTTP 503)");
    }

    #[test]
    fn one_line_flattens_and_bounds() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).len(), 203);
    }
}
