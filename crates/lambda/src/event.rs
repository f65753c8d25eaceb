//! The JSON that S3 Batch Operations sends a Lambda function and expects
//! back, invocation schema 2.0 (`aws_lambda_events` models only 1.0, which
//! has `s3BucketArn` and no `userArguments`). A 1.0 event parses too, so
//! that each of its tasks can be answered with why it is refused.
//!
//! ```json
//! {"invocationSchemaVersion": "2.0", "invocationId": "YXNk...",
//!  "job": {"id": "f3cc4f60-...", "userArguments": {"operation": "encrypt", "kmsKey": "alias/k"}},
//!  "tasks": [{"taskId": "dGFz...", "s3Bucket": "b", "s3Key": "a%20b.txt", "s3VersionId": null}]}
//! ```
//!
//! answered with
//!
//! ```json
//! {"invocationSchemaVersion": "2.0", "treatMissingKeysAs": "PermanentFailure",
//!  "invocationId": "YXNk...",
//!  "results": [{"taskId": "dGFz...", "resultCode": "Succeeded", "resultString": "encrypted"}]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema version this function speaks.
pub const SCHEMA_VERSION: &str = "2.0";

/// One invocation: a job's arguments and its tasks (in practice one task).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchEvent {
    /// `2.0` (anything else is refused: 1.0 has no user arguments); echoed
    /// in the response.
    pub invocation_schema_version: String,
    /// Echoed in the response.
    pub invocation_id: String,
    /// The job.
    pub job: Job,
    /// The objects to work on.
    pub tasks: Vec<Task>,
}

/// The job that the invocation belongs to.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The job id.
    pub id: String,
    /// The job's `UserArguments` (at most 10 pairs): the operation and its
    /// parameters (see [`crate::Operation::from_arguments`]). Absent or
    /// `null`: none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub user_arguments: BTreeMap<String, String>,
}

/// One object.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Echoed in the result.
    pub task_id: String,
    /// The bucket name (schema 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    /// The bucket's ARN (schema 1.0, which has no `s3Bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket_arn: Option<String>,
    /// The object key, URL-encoded (see [`Task::key`]).
    pub s3_key: String,
    /// The version, for a versioned bucket's manifest.
    #[serde(default)]
    pub s3_version_id: Option<String>,
}

/// `null` read as an empty map, as an absent member is.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

impl Task {
    /// The bucket name: `s3Bucket`, or the name in `s3BucketArn`
    /// (`arn:aws:s3:::NAME`; bucket names have no `:`).
    pub fn bucket(&self) -> Result<&str, String> {
        match (&self.s3_bucket, &self.s3_bucket_arn) {
            (Some(name), _) => Ok(name),
            (None, Some(arn)) => Ok(arn.rsplit(':').next().unwrap_or(arn)),
            (None, None) => Err("the task has neither `s3Bucket` nor `s3BucketArn`".into()),
        }
    }

    /// The object key, decoded: Batch Operations sends it URL-encoded, as
    /// the manifest has it.
    pub fn key(&self) -> Result<String, String> {
        atrest_s3::url_decode(&self.s3_key)
            .ok_or_else(|| format!("the key `{}` is not URL-encoded UTF-8", self.s3_key))
    }
}

/// The answer to one invocation.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The event's schema version, echoed.
    pub invocation_schema_version: String,
    /// What Batch assumes of a task missing from `results`.
    pub treat_missing_keys_as: ResultCode,
    /// The invocation's id, echoed.
    pub invocation_id: String,
    /// One result per task.
    pub results: Vec<TaskResult>,
}

/// One task's outcome.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// The task's id, echoed.
    pub task_id: String,
    /// The outcome.
    pub result_code: ResultCode,
    /// A short line for the completion report.
    pub result_string: String,
}

/// A task's outcome, as Batch Operations reads it.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// Done (or found done already).
    Succeeded,
    /// May succeed later (throttling, 5xx, timeouts): Batch retries it.
    TemporaryFailure,
    /// Will not succeed as things are: reported, not retried.
    PermanentFailure,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_2_0_event_and_answers_the_documented_shape() {
        let event: BatchEvent = serde_json::from_str(
            r#"{
              "invocationSchemaVersion": "2.0",
              "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
              "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
                      "userArguments": {"operation": "encrypt", "kmsKey": "alias/k"}},
              "tasks": [{"taskId": "dGFza2lkZ29lc2hlcmUK", "s3Bucket": "amzn-s3-demo-bucket",
                         "s3Key": "dir/a%20b%2Bc.txt", "s3VersionId": null}]
            }"#,
        )
        .unwrap();
        assert_eq!(event.job.user_arguments["operation"], "encrypt");
        assert_eq!(event.tasks[0].key().unwrap(), "dir/a b+c.txt");
        assert_eq!(event.tasks[0].s3_version_id, None);

        let response = BatchResponse {
            invocation_schema_version: SCHEMA_VERSION.into(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: event.invocation_id.clone(),
            results: vec![TaskResult {
                task_id: event.tasks[0].task_id.clone(),
                result_code: ResultCode::TemporaryFailure,
                result_string: "SlowDown".into(),
            }],
        };
        let json: serde_json::Value = serde_json::to_value(&response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "invocationSchemaVersion": "2.0",
                "treatMissingKeysAs": "PermanentFailure",
                "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
                "results": [{"taskId": "dGFza2lkZ29lc2hlcmUK",
                             "resultCode": "TemporaryFailure", "resultString": "SlowDown"}]
            })
        );
    }

    #[test]
    fn a_1_0_event_and_null_user_arguments_parse() {
        // AWS's own 1.0 example: the bucket as an ARN, no userArguments.
        let event: BatchEvent = serde_json::from_str(
            r#"{"invocationSchemaVersion": "1.0", "invocationId": "inv10",
                "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
                "tasks": [{"taskId": "dGFza2lkZ29lc2hlcmUK", "s3Key": "customerImage1.jpg",
                           "s3VersionId": "1",
                           "s3BucketArn": "arn:aws:s3:us-east-1:0123456789:awsexamplebucket1"}]}"#,
        )
        .unwrap();
        assert!(event.job.user_arguments.is_empty());
        assert_eq!(event.tasks[0].bucket(), Ok("awsexamplebucket1"));

        let event: BatchEvent = serde_json::from_str(
            r#"{"invocationSchemaVersion": "2.0", "invocationId": "i",
                "job": {"id": "j", "userArguments": null},
                "tasks": [{"taskId": "t", "s3Bucket": "b", "s3Key": "k"}]}"#,
        )
        .unwrap();
        assert!(event.job.user_arguments.is_empty());
        assert_eq!(event.tasks[0].bucket(), Ok("b"));
    }

    #[test]
    fn a_key_that_is_not_url_encoded_utf8_is_refused() {
        let task = Task {
            task_id: "t".into(),
            s3_bucket: Some("b".into()),
            s3_bucket_arn: None,
            s3_key: "bad%FF".into(),
            s3_version_id: None,
        };
        assert!(task.key().is_err());
    }
}
