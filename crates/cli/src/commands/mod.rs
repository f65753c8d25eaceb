pub mod bulk;
pub mod copy;
pub mod cp;
pub mod create_data_key;
pub mod decrypt;
pub mod encrypt;
pub mod inspect;
pub mod keygen;
pub mod local;
pub mod ls;
pub mod moves;
pub mod rewrap;
pub mod rm;
pub mod s3ec;
pub mod sync;
pub mod upgrade;
pub mod verify;

use anyhow::Result;
use atrest_s3::S3Uri;
use atrest_transfer::Retry;
use futures::StreamExt;

use crate::cli::SelectArgs;
use crate::escape;
use crate::failure::{one_line, Exit, Failure};

/// Every object under `uri` taken as a directory (`dir` is `dir/`, as
/// `aws s3 cp --recursive` takes it), listed or from `--manifest`, only
/// `--shard`'s, folder markers left out.
pub async fn objects_under(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    select: &SelectArgs,
    quiet: bool,
) -> Result<Vec<S3Uri>> {
    let prefix = uri.with_key(atrest_fs::tree::as_prefix(uri.key()));
    let listing = bulk::select(s3, &prefix, select, quiet).await?;
    Ok(listing
        .objects
        .into_iter()
        .map(|o| uri.with_key(o.key))
        .collect())
}

/// An object a manifest names that does not exist (deleted since the
/// manifest was written): skipped with a warning by every run over one.
#[derive(Debug, thiserror::Error)]
#[error("the manifest names it, but it does not exist")]
pub struct GoneSinceManifest;

/// A failed object in a command's `--json` report: its error on one line,
/// and whether trying again may help.
pub fn failed_json(
    uri: &S3Uri,
    error: &(dyn std::error::Error + 'static),
    retry: Retry,
) -> serde_json::Value {
    serde_json::json!({
        "object": uri.to_string(),
        "status": "failed",
        "error": one_line(error),
        "retry": match retry {
            Retry::Temporary => "temporary",
            Retry::Permanent => "permanent",
        },
    })
}

/// What the whole-object commands (`rewrap`, `verify`, `upgrade`) share:
/// one object or (`-r`) every one under a prefix, `jobs` at a time, a
/// line per object or one JSON document.
pub struct Objects<'a> {
    pub uri: &'a S3Uri,
    pub recursive: bool,
    pub jobs: usize,
    pub json: bool,
    pub quiet: bool,
    pub select: &'a SelectArgs,
}

/// Each object with what became of it, in key order.
pub type Results<T, E> = Vec<(S3Uri, Result<T, E>)>;

/// How a command reports the objects that succeeded.
pub struct Report<'r, T> {
    /// An object's JSON fields (`object`, its URI, is added).
    pub json: &'r dyn Fn(&T) -> serde_json::Value,
    /// An object's line; `name` is its URI, escaped.
    pub line: &'r dyn Fn(&str, &T) -> String,
    /// The JSON document's fields beside `objects` (counts, totals).
    pub totals: serde_json::Value,
    /// The line on stderr after `-r` (not with --quiet).
    pub summary: String,
}

impl<'a> Objects<'a> {
    /// The objects the flags name; `quiet` is `-q`. Without `-r` the URI
    /// must name an object, not just a bucket.
    pub fn new(args: &'a crate::cli::ObjectsArgs, quiet: bool) -> Result<Self> {
        if !args.recursive && args.uri.key().is_empty() {
            let why = atrest_s3::S3UriError::NoKey(args.uri.to_string());
            let hint = "or --recursive for every object under it";
            return Err(Failure::new(Exit::Usage, format!("{why}, {hint}")).into());
        }
        Ok(Objects {
            uri: &args.uri,
            recursive: args.recursive,
            jobs: args.jobs as usize,
            json: args.json,
            quiet,
            select: &args.select,
        })
    }

    /// S3URI alone, or with `-r` every object under it.
    pub async fn list(&self, s3: &aws_sdk_s3::Client) -> Result<Vec<S3Uri>> {
        match self.recursive {
            false => Ok(vec![self.uri.clone()]),
            true => objects_under(s3, self.uri, self.select, self.quiet).await,
        }
    }

    /// `each` over `objects`, `jobs` at a time.
    pub async fn run_each<T, E>(
        &self,
        objects: Vec<S3Uri>,
        each: impl AsyncFn(&S3Uri) -> Result<T, E>,
    ) -> Results<T, E> {
        let each = &each;
        let mut results: Results<T, E> = futures::stream::iter(objects)
            .map(|uri| async move {
                let result = each(&uri).await;
                (uri, result)
            })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        results.sort_by(|a, b| a.0.key().cmp(b.0.key()));
        results
    }

    /// With `--manifest`, the objects it names that no longer exist
    /// (`missing` tells their errors: S3's "no such key" of the object
    /// itself, not of another it needed; an inventory is up to a day old, and
    /// deletions meanwhile are normal) are left out of `results`, each
    /// said in a warning as `ls` says them: they failed every rerun, so a
    /// shard could never finish.
    pub fn leave_out_missing<T, E>(
        &self,
        results: &mut Results<T, E>,
        missing: impl Fn(&S3Uri, &E) -> bool,
    ) {
        if self.select.manifest.is_none() || !self.recursive {
            return;
        }
        let before = results.len();
        results.retain(|(uri, r)| match r {
            Err(e) if missing(uri, e) => {
                if crate::stdout::warns(self.quiet) {
                    let name = escape(&uri.to_string());
                    crate::stdout::say_err!("warning: skipped {name}: {GoneSinceManifest}");
                }
                false
            }
            _ => true,
        });
        let gone = before - results.len();
        if gone > 0 && crate::stdout::warns(self.quiet) {
            crate::stdout::say_err!(
                "warning: {} of the manifest no longer {}",
                count_of(gone, "object"),
                if gone == 1 { "exists" } else { "exist" }
            );
        }
    }

    /// Whether the one object named without `-r` failed.
    pub fn lone_failed<T, E>(&self, results: &Results<T, E>) -> bool {
        !self.recursive && results.first().is_some_and(|(_, r)| r.is_err())
    }

    /// The error of the one object named without `-r`, if it failed: the
    /// command returns it as it is, with its own exit code and no report.
    pub fn lone_failure<T, E>(&self, results: &mut Results<T, E>) -> Option<E> {
        match self.lone_failed(results) {
            true => results.pop()?.1.err(),
            false => None,
        }
    }

    /// One line per object on stdout (a failure as `failed URI: why`; with
    /// `-q` only those) and the summary on stderr, or one JSON document on
    /// stdout.
    pub fn report<T, E: std::error::Error + 'static>(
        &self,
        results: &Results<T, E>,
        retry: impl Fn(&E) -> Retry,
        report: Report<'_, T>,
    ) {
        if self.json {
            let objects: Vec<_> = results
                .iter()
                .map(|(uri, r)| match r {
                    Ok(done) => {
                        let mut object = (report.json)(done);
                        object["object"] = uri.to_string().into();
                        object
                    }
                    Err(e) => failed_json(uri, e, retry(e)),
                })
                .collect();
            let mut document = report.totals;
            document["objects"] = objects.into();
            crate::stdout::say!("{document}");
            return;
        }
        for (uri, r) in results {
            let name = escape(&uri.to_string());
            match r {
                // `-q`: errors only.
                Ok(_) if self.quiet => {}
                Ok(done) => crate::stdout::say!("{}", (report.line)(&name, done)),
                // Most errors name their object already: once is enough.
                Err(e) => match escape(&one_line(e)) {
                    why if why.starts_with(&name) => crate::stdout::say!("failed {why}"),
                    why => crate::stdout::say!("failed {name}: {why}"),
                },
            }
        }
        if !self.quiet && self.recursive {
            crate::stdout::say_err!("{}", report.summary);
        }
    }
}

/// `n` and `word` ("1 file", "2 files").
pub fn count_of(n: usize, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

/// How many objects succeeded and `which` says so of.
pub fn count<T, E>(results: &Results<T, E>, which: impl Fn(&T) -> bool) -> usize {
    results
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(&which))
        .count()
}

/// How many objects failed.
pub fn failures<T, E>(results: &Results<T, E>) -> usize {
    results.iter().filter(|(_, r)| r.is_err()).count()
}

/// `Ok` if no object failed, else exit `exit` saying how many objects of
/// all `what` (`"failed"`, `"did not verify"`).
pub fn outcome<T, E>(results: &Results<T, E>, exit: Exit, what: &str) -> Result<()> {
    match failures(results) {
        0 => Ok(()),
        n => {
            let all = count_of(results.len(), "object");
            Err(Failure::new(exit, format!("{n} of {all} {what}")).into())
        }
    }
}
