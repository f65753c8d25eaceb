//! The `atrest-lambda` function: the S3 Batch Operations handler of
//! [`atrest_lambda`] on the Lambda runtime (`provided.al2023`; deployed as
//! `bootstrap`). Configuration comes from the function's environment: the
//! AWS SDK's own variables (region, credentials from the execution role)
//! and [`atrest_lambda::Limits::from_env`]'s.

use atrest_lambda::{BatchEvent, BatchResponse, Handler, Limits};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time kept at the end of an invocation to stop the tasks and answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// When to stop the tasks: `ANSWER_MARGIN` before the invocation's deadline
/// (milliseconds since the epoch, from the runtime API), or at once if that
/// has passed. `None` if the deadline is not known.
fn answer_by(deadline_ms: u64) -> Option<tokio::time::Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = UNIX_EPOCH.checked_add(Duration::from_millis(deadline_ms))?;
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Some(tokio::time::Instant::now() + left.saturating_sub(ANSWER_MARGIN))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // CloudWatch takes stderr; no colours there, and no timestamps (it
    // stamps every line itself).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "atrest_lambda=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    let limits = Limits::from_env()?;
    // A silent endpoint fails a request (and so its task, temporarily)
    // instead of holding the invocation: the SDK sets no read timeout.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build();
    let config = aws_config::from_env().timeout_config(timeouts).load().await;
    let handler = Handler::new(
        aws_sdk_s3::Client::new(&config),
        atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config)),
        limits,
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<BatchEvent>| async move {
            let deadline = answer_by(event.context.deadline);
            let response: BatchResponse = handler.handle_until(event.payload, deadline).await;
            Ok::<_, Error>(response)
        },
    ))
    .await
}
