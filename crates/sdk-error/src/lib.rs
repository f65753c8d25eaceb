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

    #[test]
    fn one_line_flattens_and_bounds() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).len(), 203);
    }
}
