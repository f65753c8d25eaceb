//! The `atrest-lambda` function: the S3 Batch Operations handler of
//! [`atrest_lambda`] on the Lambda runtime (`provided.al2023`; deployed as
//! `bootstrap`). Configuration comes from the function's environment: the
//! AWS SDK's own variables (region, credentials from the execution role)
//! and [`atrest_lambda::Limits::from_env`]'s.

use atrest_lambda::{BatchEvent, BatchResponse, Deadline, Handler, Limits};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time kept at the end of an invocation to stop the tasks and answer
/// (at most; a fifth of a short invocation's time).
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// When to stop the tasks, from the invocation's deadline (milliseconds
/// since the epoch, from the runtime API): told to stop a margin before
/// it, dropped half a margin before it. `None` if it is not known.
fn deadline(deadline_ms: u64, now: SystemTime) -> Option<Deadline> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = UNIX_EPOCH.checked_add(Duration::from_millis(deadline_ms))?;
    let left = deadline.duration_since(now).unwrap_or_default();
    let margin = ANSWER_MARGIN.min(left / 5);
    let start = tokio::time::Instant::now();
    Some(Deadline {
        stop: start + (left - margin),
        abandon: start + (left - margin / 2),
    })
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
            let deadline = deadline(event.context.deadline, SystemTime::now());
            let response: BatchResponse = handler.handle_until(event.payload, deadline).await;
            Ok::<_, Error>(response)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed 10 s margin made every task of a function with the default
    /// 3 s timeout "not finished" at once.
    #[tokio::test]
    async fn a_short_invocation_keeps_most_of_its_time() {
        let now = SystemTime::now();
        let ms = |d: Duration| (now + d).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let start = tokio::time::Instant::now();
        let short = deadline(ms(Duration::from_secs(3)), now).unwrap();
        let left = |at: tokio::time::Instant| at.duration_since(start).as_millis();
        assert!(
            (2300..=2500).contains(&left(short.stop)),
            "{}",
            left(short.stop)
        );
        assert!(left(short.abandon) > left(short.stop) && left(short.abandon) < 3000);
        let long = deadline(ms(Duration::from_secs(900)), now).unwrap();
        assert!(
            (889_000..=890_100).contains(&left(long.stop)),
            "{}",
            left(long.stop)
        );
        assert!((894_000..=895_100).contains(&left(long.abandon)));
        assert_eq!(deadline(0, now), None);
        // Past: stop at once.
        let past = deadline(ms(Duration::ZERO) - 5000, now).unwrap();
        assert!(left(past.stop) < 100);
    }
}
