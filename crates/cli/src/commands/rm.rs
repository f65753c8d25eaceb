//! `atrest rm S3URI [--recursive]`: objects deleted as `aws s3 rm` deletes
//! them (DeleteObject, `--jobs` at a time), S3 Encryption Client
//! instruction files with their objects (which go with which is
//! `atrest_transfer::remove`'s).

use anyhow::Result;
use atrest_fs::tree::{as_prefix, Filter};
use atrest_s3::S3Uri;
use atrest_transfer::list::{instruction_file_of, take_instruction_files};
use atrest_transfer::remove::plan;
use futures::StreamExt;

use crate::cli::RmArgs;
use crate::escape;
use crate::failure::{Exit, Failure};

pub async fn run(s3: &aws_sdk_s3::Client, args: &RmArgs, quiet: bool) -> Result<()> {
    let uri = &args.uri;
    let say = Say { args, quiet };
    if !args.recursive {
        if !args.filters.rules.is_empty() {
            return Err(usage(
                "--include and --exclude choose among many objects: they take --recursive".into(),
            ));
        }
        if uri.key().is_empty() {
            return Err(usage(format!(
                "rm takes one object, s3://BUCKET/KEY, or a prefix with --recursive: not {uri}"
            )));
        }
        // As S3 (and `aws s3 rm`): a key that does not exist is deleted
        // all the same.
        let file = instruction_file_of(s3, uri).await?;
        delete(s3, &say, uri).await?;
        if let Some((file, _)) = file {
            delete(s3, &say, &file).await?;
        }
        return Ok(());
    }
    let prefix = as_prefix(uri.key());
    let filter = Filter::new(&args.filters.rules)?;
    let under = uri.with_key(prefix.clone());
    let mut listed = atrest_s3::list(s3, &under).await?;
    let files: Vec<String> = take_instruction_files(s3, &under, &mut listed)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let selected = listed
        .into_iter()
        .map(|o| o.key)
        .chain(files.iter().cloned())
        .filter(|key| {
            key.strip_prefix(&prefix)
                .is_some_and(|rel| filter.takes(rel))
        })
        .collect();
    let removal = plan(&files, selected);
    for key in &removal.kept {
        if crate::stdout::warns(quiet) {
            crate::stdout::say_err!(
                "warning: kept {}: the S3 Encryption Client instruction file of an object not deleted",
                escape(&uri.with_key(key.clone()).to_string())
            );
        }
    }
    let jobs = args.jobs as usize;
    let objects = delete_all(s3, &say, uri, &removal.objects, jobs).await;
    // Only the files of objects that are gone.
    let gone = |file: &&String| {
        let object = file.strip_suffix(atrest_format::s3ec::INSTRUCTION_SUFFIX);
        !objects
            .failed
            .iter()
            .any(|(key, _)| Some(key.as_str()) == object)
    };
    let files: Vec<String> = removal
        .instruction_files
        .iter()
        .filter(gone)
        .cloned()
        .collect();
    let files = delete_all(s3, &say, uri, &files, jobs).await;
    let deleted = objects.deleted + files.deleted;
    let failed: Vec<(String, String)> = objects.failed.into_iter().chain(files.failed).collect();
    say.summary(deleted, &failed);
    match failed.len() {
        0 => Ok(()),
        n => {
            let all = super::count_of(deleted + n, "object");
            Err(Failure::new(Exit::Runtime, format!("{n} of {all} could not be deleted")).into())
        }
    }
}

/// What a run of deletions did.
struct Deleted {
    deleted: usize,
    /// Each key that failed, and why.
    failed: Vec<(String, String)>,
}

/// Deletes each of `keys` of `uri`'s bucket, `jobs` at a time, saying each.
async fn delete_all(
    s3: &aws_sdk_s3::Client,
    say: &Say<'_>,
    uri: &S3Uri,
    keys: &[String],
    jobs: usize,
) -> Deleted {
    let results: Vec<(String, Result<()>)> = futures::stream::iter(keys)
        .map(|key| async move {
            let target = uri.with_key(key.clone());
            (key.clone(), delete(s3, say, &target).await)
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let mut done = Deleted {
        deleted: 0,
        failed: Vec::new(),
    };
    for (key, result) in results {
        match result {
            Ok(()) => done.deleted += 1,
            Err(e) => {
                let why = crate::failure::one_line(e.as_ref());
                say.failed(&uri.with_key(key.clone()), &why);
                done.failed.push((key, why));
            }
        }
    }
    done
}

/// Deletes one object (or, with --dryrun, says it would), saying so.
async fn delete(s3: &aws_sdk_s3::Client, say: &Say<'_>, target: &S3Uri) -> Result<()> {
    if !say.args.dryrun {
        atrest_s3::delete(s3, target).await?;
    }
    say.deleted(target);
    Ok(())
}

/// How a run reports: `delete:` lines (or JSON Lines) on stdout, failures
/// and the summary on stderr.
struct Say<'a> {
    args: &'a RmArgs,
    quiet: bool,
}

impl Say<'_> {
    fn deleted(&self, target: &S3Uri) {
        let dry = self.args.dryrun;
        if self.args.json {
            let status = if dry { "dryrun" } else { "done" };
            let line = serde_json::json!({"type": "object", "action": "delete",
                "destination": target.to_string(), "status": status});
            crate::stdout::say!("{line}");
        } else if !self.quiet {
            let dry = if dry { "(dryrun) " } else { "" };
            crate::stdout::say!("{dry}delete: {}", escape(&target.to_string()));
        }
    }

    fn failed(&self, target: &S3Uri, why: &str) {
        if self.args.json {
            let line = serde_json::json!({"type": "object", "action": "delete",
                "destination": target.to_string(), "status": "failed", "error": why});
            crate::stdout::say!("{line}");
        } else {
            crate::stdout::say_err!("failed: {}: {}", escape(&target.to_string()), escape(why));
        }
    }

    fn summary(&self, deleted: usize, failed: &[(String, String)]) {
        if self.args.json {
            let failed: Vec<_> = failed
                .iter()
                .map(|(key, error)| serde_json::json!({"key": key, "error": error}))
                .collect();
            let summary =
                serde_json::json!({"type": "summary", "objects": deleted, "failed": failed});
            crate::stdout::say!("{summary}");
        } else if !self.quiet {
            let verb = if self.args.dryrun {
                "would delete"
            } else {
                "deleted"
            };
            let objects = super::count_of(deleted, "object");
            crate::stdout::say_err!("{verb} {objects}, {} failed", failed.len());
        }
    }
}

fn usage(message: String) -> anyhow::Error {
    Failure::new(Exit::Usage, message).into()
}
