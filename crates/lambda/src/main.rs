//! The `atrest-lambda` function: the S3 Batch Operations handler of
//! [`atrest_lambda`] on the Lambda runtime (`provided.al2023`; deployed as
//! `bootstrap`). Configuration comes from the function's environment: the
//! AWS SDK's own variables (region, credentials from the execution role)
//! and [`atrest_lambda::Limits::from_env`]'s.

use atrest_lambda::{BatchEvent, BatchResponse, Handler, Limits};
use lambda_runtime::{service_fn, Error, LambdaEvent};

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
    let config = aws_config::load_from_env().await;
    let handler = Handler::new(
        aws_sdk_s3::Client::new(&config),
        atrest_kms::Kms::new(aws_sdk_kms::Client::new(&config)),
        limits,
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<BatchEvent>| async move {
            let response: BatchResponse = handler.handle(event.payload).await;
            Ok::<_, Error>(response)
        },
    ))
    .await
}
