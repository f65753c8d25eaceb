//! `--recursive`: a directory to a prefix (encrypt) or a prefix to a
//! directory (decrypt), the AWS CLI's `cp --recursive` shape. Each file goes
//! through the single-object command, `--jobs` at a time ([`Run`], shared
//! by both directions); one failure does not stop the others, and the
//! summary lists every failure. Anything that cannot be transferred as it
//! is (a FIFO, a name that is not UTF-8, an unreadable subdirectory) fails
//! alone, named, without being opened.

use std::path::Path;

use anyhow::{Context, Result};
use atrest_fs::tree::{self, as_prefix, relative_key, Source, Walk};
use atrest_kms::Kms;
use futures::StreamExt;

use crate::cli::ManyArgs;
use crate::commands::decrypt::Decrypt;
use crate::commands::encrypt::Encrypt;
use crate::failure::{Exit, Failure};
use crate::interrupt::{Interrupt, Interrupted};
use crate::progress::{Progress, Show};
use atrest_kms::CachedKeys as Keys;

/// What a `--recursive` run needs besides the single-object arguments.
pub struct Bulk<'a> {
    pub kms: &'a Kms,
    /// `--key-file`: the key source for atrest objects instead of KMS.
    pub key_file: Option<std::sync::Arc<dyn atrest_transfer::KeySource>>,
    pub s3: &'a aws_sdk_s3::Client,
    pub args: &'a ManyArgs,
    /// `--manifest` and `--shard`.
    pub select: &'a crate::cli::SelectArgs,
    /// `--dryrun`: say what would be transferred, and transfer nothing.
    pub dry_run: bool,
    /// `--no-overwrite`: leave out destinations that exist.
    pub no_overwrite: bool,
    /// `mv`: remove each source once its copy is whole.
    pub move_source: bool,
    /// `--ignore-glacier-warnings`: archived objects are left out quietly.
    pub ignore_archived: bool,
    /// Draw the overall bar.
    pub show_progress: bool,
    /// `-q`: print only errors (no summary), as `aws s3 cp --quiet`.
    pub quiet: bool,
}

impl<'a> Bulk<'a> {
    /// A `--recursive` run of `encrypt`/`decrypt` (or `cp`) with its flags.
    pub fn new(
        clients: &'a crate::aws::Clients,
        key_file: Option<std::sync::Arc<dyn atrest_transfer::KeySource>>,
        args: &'a crate::cli::BulkArgs,
        show_progress: bool,
        quiet: bool,
    ) -> Self {
        Bulk {
            kms: &clients.kms,
            key_file,
            s3: &clients.s3,
            args: &args.many,
            select: &args.select,
            dry_run: args.dryrun,
            no_overwrite: args.no_overwrite,
            move_source: args.move_source,
            ignore_archived: args.from_s3.ignore_glacier_warnings,
            show_progress,
            quiet,
        }
    }
}

/// One item of a run: its name in messages, its size for the bar, and what
/// to transfer, or why it cannot be (it then fails alone, counted with the
/// others).
pub(crate) struct Item<T> {
    pub name: String,
    pub size: u64,
    pub work: Result<T>,
    /// What it moves where: printed on stdout when it is done (unless
    /// `--quiet`), as `aws s3 cp` prints `upload: a to s3://b/a`, or one
    /// JSON line with `--json`.
    pub line: Option<Transferred>,
    /// The key below the prefix a file stands for, also when it cannot be
    /// transferred (if its path is UTF-8): its failure's `--json` line
    /// names where it would have gone.
    pub key: Option<String>,
}

/// One object's transfer, as its report line says it.
#[derive(Clone, Debug)]
pub(crate) struct Transferred {
    /// `upload`, `download` or `copy`.
    pub action: &'static str,
    pub from: String,
    pub to: String,
}

impl Transferred {
    pub fn upload(file: &Path, to: &atrest_s3::S3Uri) -> Self {
        Transferred {
            action: "upload",
            from: local_name(file),
            to: to.to_string(),
        }
    }

    pub fn download(from: &atrest_s3::S3Uri, file: &Path) -> Self {
        Transferred {
            action: "download",
            from: from.to_string(),
            to: local_name(file),
        }
    }

    pub fn copy(from: &atrest_s3::S3Uri, to: &atrest_s3::S3Uri) -> Self {
        Transferred {
            action: "copy",
            from: from.to_string(),
            to: to.to_string(),
        }
    }
}

/// A local path as lines name it: as it is (escaped where it is printed,
/// so that `--json` names the real file); one that is not UTF-8, which no
/// JSON string can hold, with its other bytes as `\xNN`.
pub(crate) fn local_name(path: &Path) -> String {
    match path.to_str() {
        Some(name) => name.to_owned(),
        None => atrest_fs::output::display_os(path.as_os_str()),
    }
}

impl Transferred {
    /// The same transfer as `mv` makes it: `move: a to s3://b/a`, as
    /// `aws s3 mv` says.
    pub fn moving(self, moves: bool) -> Self {
        match moves {
            true => Transferred {
                action: "move",
                ..self
            },
            false => self,
        }
    }
}

impl std::fmt::Display for Transferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} to {}", self.action, self.from, self.to)
    }
}

/// An object's `--json` line (JSON Lines: one object a line, the run's
/// summary last): `{"type":"object","action":"upload","source":...,
/// "destination":...,"status":"done","bytes":N}`, or with
/// `"status":"failed","error":...`.
pub(crate) fn object_json(
    name: &str,
    line: Option<&Transferred>,
    result: Result<u64, &anyhow::Error>,
) -> serde_json::Value {
    let mut value = serde_json::json!({"type": "object"});
    match line {
        Some(t) => {
            value["action"] = t.action.into();
            value["source"] = t.from.clone().into();
            value["destination"] = t.to.clone().into();
        }
        None => value["source"] = name.into(),
    }
    match result {
        Ok(bytes) => {
            value["status"] = "done".into();
            value["bytes"] = bytes.into();
        }
        Err(e) => {
            value["status"] = "failed".into();
            value["error"] = format!("{e:#}").into();
        }
    }
    value
}

/// The `--json` line of what a dry run would transfer: an object line of
/// status `dryrun`, `bytes` what would be read.
pub(crate) fn dry_run_json(
    name: &str,
    line: Option<&Transferred>,
    bytes: u64,
) -> serde_json::Value {
    let mut value = object_json(name, line, Ok(bytes));
    value["status"] = "dryrun".into();
    value
}

/// The `--json` line of a transfer `--no-overwrite` left out: an object
/// line of status `skipped` (its destination exists), no `bytes`.
pub(crate) fn skipped_json(name: &str, line: Option<&Transferred>) -> serde_json::Value {
    let mut value = object_json(name, line, Ok(0));
    value["status"] = "skipped".into();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("bytes");
    }
    value
}

/// `--no-overwrite` found the destination of `line`: nothing is done, and
/// stderr says so (with `--json`, a line of status `skipped` on stdout).
pub(crate) fn say_skipped(line: &Transferred, json: bool, quiet: bool) {
    if json {
        crate::stdout::say!("{}", skipped_json("", Some(line)));
    } else if !quiet {
        let name = crate::escape(&line.to);
        crate::stdout::say_err!("skipped: {name} exists (--no-overwrite)");
    }
}

/// One item's result.
struct Done {
    name: String,
    result: Result<u64>,
}

/// The words of a run's bar and summary.
#[derive(Clone, Copy)]
struct Verbs {
    doing: &'static str,
    done: &'static str,
    would: &'static str,
}

const ENCRYPTING: Verbs = Verbs {
    doing: "encrypting",
    done: "encrypted",
    would: "would encrypt",
};
const MOVING: Verbs = Verbs {
    doing: "moving",
    done: "moved",
    would: "would move",
};
const DECRYPTING: Verbs = Verbs {
    doing: "decrypting",
    done: "decrypted",
    would: "would decrypt",
};

/// A run of many items, `--jobs` at a time, with one overall bar, one key
/// cache, failures collected and a summary at the end: the shape both
/// directions share.
struct Run<'a> {
    bulk: &'a Bulk<'a>,
    verbs: Verbs,
    overall: Overall,
    keys: crate::keyring::Keys,
}

impl<'a> Run<'a> {
    fn new<T>(bulk: &'a Bulk<'a>, verbs: Verbs, items: &[Item<T>]) -> Self {
        let total = items.iter().map(|i| i.size).sum();
        Run {
            bulk,
            verbs,
            overall: Overall::new(bulk.show_progress, verbs.doing, total, items.len()),
            keys: crate::keyring::Keys::with(
                std::sync::Arc::new(Keys::cached(bulk.kms.clone(), bulk.args.cache_limits())),
                bulk.key_file.clone(),
            ),
        }
    }

    /// The bar one item's transfer moves.
    fn progress(&self) -> Show<'_> {
        Show::Within(&self.overall.bar)
    }

    /// Runs `each` on every item that can be transferred (it returns the
    /// bytes done), prints the summary, and fails if any item did.
    async fn all<T, Fut>(&self, items: Vec<Item<T>>, each: impl Fn(T) -> Fut) -> Result<()>
    where
        Fut: std::future::Future<Output = Result<u64>>,
    {
        let each = &each;
        let done: Vec<Done> = futures::stream::iter(items)
            .map(|item| async move {
                let dry_run = self.bulk.dry_run;
                let result = match item.work {
                    Ok(_) if dry_run => Ok(item.size),
                    Ok(work) => each(work).await,
                    Err(e) => Err(e),
                };
                let interrupted = result.as_ref().is_err_and(|e| e.is::<Interrupted>());
                let ignored = self.bulk.ignore_archived
                    && result.as_ref().is_err_and(crate::failure::is_archived);
                if ignored {
                    self.overall.one_done();
                    return None;
                }
                // An object a manifest names that is gone (deleted since
                // the inventory): said, as `ls` says it, not a failure that
                // every rerun of the shard would repeat.
                if result
                    .as_ref()
                    .is_err_and(|e| e.is::<super::GoneSinceManifest>())
                {
                    if crate::stdout::warns(self.bulk.quiet) {
                        self.overall.bar.eprintln(&format!(
                            "warning: skipped {}: {}",
                            item.name,
                            super::GoneSinceManifest
                        ));
                    }
                    self.overall.one_done();
                    return None;
                }
                if self.bulk.args.json && !interrupted {
                    let line = match (dry_run, &result) {
                        (true, Ok(bytes)) => dry_run_json(&item.name, item.line.as_ref(), *bytes),
                        _ => object_json(&item.name, item.line.as_ref(), result.as_ref().copied()),
                    };
                    self.overall.bar.println(&line.to_string());
                } else if let (Ok(_), Some(line), false) = (&result, &item.line, self.bulk.quiet) {
                    let line = match dry_run {
                        true => format!("(dryrun) {line}"),
                        false => line.to_string(),
                    };
                    self.overall.bar.println(&crate::escape(&line));
                }
                self.overall.one_done();
                Some(Done {
                    name: item.name,
                    result,
                })
            })
            .buffer_unordered(self.bulk.args.jobs as usize)
            .filter_map(std::future::ready)
            .collect()
            .await;
        self.overall.bar.finish();
        let verb = match self.bulk.dry_run {
            true => self.verbs.would,
            false => self.verbs.done,
        };
        summarize(verb, done, self.keys.kms.calls(), self.bulk)
    }
}

/// Which side of a tree transfer a local directory is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Read: it must exist.
    Source,
    /// Written: made if missing, as the AWS CLI makes it.
    Destination,
}

/// Why `dir` cannot be the local tree of `what` (`--recursive`, `sync`),
/// if it cannot: `-`, a file, or (a source) nothing at all.
pub(crate) fn no_tree(dir: &Path, what: &str, side: Side) -> Option<Failure> {
    let name = crate::escape(&dir.display().to_string());
    if atrest_fs::output::is_std_stream(dir) {
        let why = format!("{what} takes a directory, not `-`");
        Some(Failure::new(Exit::Usage, why))
    } else if dir.is_dir() || (side == Side::Destination && !dir.exists()) {
        None
    } else if !dir.exists() {
        Some(Failure::new(
            Exit::NotFoundOrDenied,
            format!("{name} does not exist"),
        ))
    } else {
        let why = format!("{name} is not a directory: {what} takes a directory");
        Some(Failure::new(Exit::Usage, why))
    }
}

/// Encrypts every regular file under `template.file` to the prefix +
/// its relative path.
pub async fn encrypt_dir(
    bulk: &Bulk<'_>,
    template: Encrypt<'_>,
    interrupt: &Interrupt,
) -> Result<()> {
    let dir = template.file;
    if let Some(refused) = no_tree(dir, "--recursive", Side::Source) {
        return Err(refused.into());
    }
    if bulk.select.manifest.is_some() {
        return Err(Failure::new(
            Exit::Usage,
            "--manifest lists S3 objects: it works with cp/mv -r from s3://, decrypt -r, rewrap -r, verify -r, upgrade -r and ls -r (encrypt -r takes a directory; --shard splits it)",
        )
        .into());
    }
    // A bad flag or a missing data.key is one error up front, not one per
    // file; a dry run needs no key, as one file's does not.
    template.properties.check()?;
    if template.kms_key.is_none() && bulk.key_file.is_none() && !bulk.dry_run {
        interrupt
            .guard(crate::keyring::read_data_key(template.data_key))
            .await?;
    }
    let filter = bulk.args.filter()?;
    let prefix = as_prefix(template.uri.key());
    let found = tree::walk(dir, &filter)?;
    warn_partials(&found.partials, bulk.quiet);
    let mut items = walked(found);
    let shard = bulk.select.shard();
    let bucket = template.uri.bucket();
    let all = items.len();
    items.retain(|item| {
        let rel = item.work.as_ref().map_or(&item.name, |s| &s.rel);
        shard.contains(bucket, &format!("{prefix}{rel}"))
    });
    if let (Some(shard), false) = (bulk.select.shard, bulk.quiet) {
        crate::stdout::say_err!(
            "shard {shard}: {} ({} in other shards)",
            super::count_of(items.len(), "file"),
            super::count_of(all - items.len(), "file")
        );
    }
    upload(bulk, &template, &prefix, items, interrupt).await
}

/// Encrypts each file of `items` to `prefix` + its relative path.
/// Says which temporary files of interrupted downloads a walk left out
/// (plaintext: never uploaded).
pub(crate) fn warn_partials(partials: &[String], quiet: bool) {
    if crate::stdout::warns(quiet) {
        for name in partials {
            crate::stdout::say_err!(
                "warning: skipped {name}: the temporary file of an interrupted decryption (plaintext, never uploaded)"
            );
        }
    }
}

/// Gives each item without one the line of its upload from the directory
/// `template.file` to `template.uri` + `prefix` + its relative key; also a
/// file that cannot be read (a FIFO), to say where it would have gone.
pub(crate) fn name_uploads(
    items: &mut [Item<Source>],
    template: &Encrypt<'_>,
    prefix: &str,
    move_source: bool,
) {
    for item in items {
        let (path, rel) = match (&item.work, &item.key, &item.line) {
            (_, _, Some(_)) => continue,
            (Ok(source), _, None) => (source.path.clone(), source.rel.clone()),
            (Err(_), Some(key), None) if !key.ends_with('/') => {
                (template.file.join(key), key.clone())
            }
            _ => continue,
        };
        let to = template.uri.with_key(format!("{prefix}{rel}"));
        item.line = Some(Transferred::upload(&path, &to).moving(move_source));
    }
}

pub(crate) async fn upload(
    bulk: &Bulk<'_>,
    template: &Encrypt<'_>,
    prefix: &str,
    mut items: Vec<Item<Source>>,
    interrupt: &Interrupt,
) -> Result<()> {
    // A bad --context is one error, not one per file.
    super::encrypt::check_key_flags(&template.key_flags(), bulk.key_file.is_some())?;
    name_uploads(&mut items, template, prefix, bulk.move_source);
    if bulk.no_overwrite {
        // One listing, not a HEAD per file.
        let under = template.uri.with_key(prefix.to_owned());
        let listing = async { Ok(atrest_s3::list(bulk.s3, &under).await?) };
        let existing: std::collections::HashSet<String> = interrupt
            .guard(listing)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        let exists = |item: &Item<Source>| {
            item.work
                .as_ref()
                .is_ok_and(|s| existing.contains(&format!("{prefix}{}", s.rel)))
        };
        skip_existing(bulk, &mut items, exists);
    }
    let verbs = if bulk.move_source { MOVING } else { ENCRYPTING };
    let run = Run::new(bulk, verbs, &items);
    let run = &run;
    run.all(items, |source| async move {
        let uri = template.uri.with_key(format!("{prefix}{}", source.rel));
        let args = Encrypt {
            file: &source.path,
            uri: &uri,
            progress: run.progress(),
            ..*template
        };
        let len = std::fs::metadata(&source.path)
            .with_context(|| format!("cannot open {}", source.path.display()))?
            .len();
        let stamp = match bulk.move_source {
            true => Some(super::moves::moved_file(&source.path)?),
            false => None,
        };
        super::encrypt::run(&run.keys, bulk.s3, args, interrupt).await?;
        if let Some(stamp) = stamp {
            stamp.remove_if_unchanged()?;
        }
        Ok(len)
    })
    .await
}

/// `--no-overwrite`: leaves out the items whose destination exists, and
/// says how many.
fn skip_existing<T>(bulk: &Bulk<'_>, items: &mut Vec<Item<T>>, exists: impl Fn(&Item<T>) -> bool) {
    let before = items.len();
    items.retain(|item| {
        let keep = !exists(item);
        if !keep && bulk.args.json {
            let line = skipped_json(&item.name, item.line.as_ref());
            crate::stdout::say!("{line}");
        }
        keep
    });
    let skipped = before - items.len();
    if skipped > 0 && !bulk.quiet && !bulk.args.json {
        crate::stdout::say_err!("skipped {skipped} that exist at the destination (--no-overwrite)");
    }
}

/// The overall progress bar of a run, and its count of finished files.
struct Overall {
    bar: Progress,
    verb: &'static str,
    files: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl Overall {
    fn new(enabled: bool, verb: &'static str, total: u64, files: usize) -> Self {
        Overall {
            bar: Progress::overall(enabled, verb, total, files),
            verb,
            files,
            done: Default::default(),
        }
    }

    fn one_done(&self) {
        let done = 1 + self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.bar.files_done(self.verb, done, self.files);
    }
}

/// Decrypts every object under the prefix into `template.file` (a
/// directory) + the key's part after the prefix.
pub async fn decrypt_prefix(bulk: &Bulk<'_>, template: Decrypt<'_>) -> Result<()> {
    let dir = template.file;
    if let Some(refused) = no_tree(dir, "--recursive", Side::Destination) {
        return Err(refused.into());
    }
    let filter = bulk.args.filter()?;
    let prefix = as_prefix(template.uri.key());
    let listing = select(
        bulk.s3,
        &template.uri.with_key(prefix.clone()),
        bulk.select,
        bulk.quiet,
    )
    .await?;
    // Object sizes slightly exceed the plaintext: the bar ends at what was
    // written.
    let items: Vec<Item<String>> = listing
        .objects
        .into_iter()
        .filter_map(|o| {
            let rel = relative_key(&prefix, &o.key, o.size, &filter)?;
            Some(Item {
                name: crate::escape(&rel),
                size: o.size,
                work: Ok(rel),
                line: None,
                key: None,
            })
        })
        .collect();
    download(bulk, &template, &prefix, items).await
}

/// A walk's files as the items of a run (those that cannot be transferred
/// fail alone, counted).
pub(crate) fn walked(found: Walk) -> Vec<Item<Source>> {
    let item = |file: tree::Walked| Item {
        name: file.name,
        size: file.size,
        work: file.source.map_err(Into::into),
        line: None,
        key: file.key,
    };
    found.files.into_iter().map(item).collect()
}

/// Decrypts each object `prefix` + relative key of `items` into the
/// directory `template.file` + that relative key.
pub(crate) async fn download(
    bulk: &Bulk<'_>,
    template: &Decrypt<'_>,
    prefix: &str,
    mut items: Vec<Item<String>>,
) -> Result<()> {
    let dir = template.file;
    for item in &mut items {
        if let (Ok(rel), None) = (&item.work, &item.line) {
            let from = template.uri.with_key(format!("{prefix}{rel}"));
            item.line = Some(Transferred::download(&from, &dir.join(rel)).moving(bulk.move_source));
        }
    }
    if bulk.no_overwrite {
        let exists = |item: &Item<String>| {
            item.work
                .as_ref()
                .is_ok_and(|rel| std::fs::symlink_metadata(dir.join(rel)).is_ok())
        };
        skip_existing(bulk, &mut items, exists);
    }
    let verbs = if bulk.move_source { MOVING } else { DECRYPTING };
    let run = Run::new(bulk, verbs, &items);
    let run = &run;
    run.all(items, |rel| async move {
        // Keys are untrusted: none may reach outside the directory.
        let dest = tree::destination(dir, &rel)?;
        let uri = template.uri.with_key(format!("{prefix}{rel}"));
        let args = Decrypt {
            uri: &uri,
            file: &dest,
            progress: run.progress(),
            ..*template
        };
        if bulk.move_source {
            super::moves::check_move_into(&dest)?;
        }
        let done = match super::decrypt::run(&run.keys, bulk.s3, args).await {
            Err(e) if bulk.select.manifest.is_some() && crate::failure::is_missing(&e, &uri) => {
                return Err(super::GoneSinceManifest.into());
            }
            done => done?,
        };
        if bulk.move_source {
            super::moves::delete_downloaded(bulk.s3, &uri, &done).await?;
        }
        Ok(std::fs::metadata(&dest)?.len())
    })
    .await
}

/// The objects under `prefix` of a `--recursive` run, listed or from
/// `--manifest`, those of `--shard` only (folder markers left out), and
/// the S3 Encryption Client instruction files of those (each goes with its
/// object); what was left to other shards or lay outside the prefix is
/// said on stderr.
pub async fn select(
    s3: &aws_sdk_s3::Client,
    prefix: &atrest_s3::S3Uri,
    args: &crate::cli::SelectArgs,
    quiet: bool,
) -> Result<atrest_transfer::manifest::Selection> {
    let selection =
        atrest_transfer::manifest::select(s3, prefix, args.manifest.as_ref(), args.shard())
            .await
            .map_err(crate::failure::from_manifest)?;
    if !quiet {
        if let Some(shard) = args.shard {
            // A manifest's rows are counted as read (a key may have several).
            let unit = match args.manifest {
                Some(_) => "manifest row",
                None => "object",
            };
            crate::stdout::say_err!(
                "shard {shard}: {} ({} in other shards)",
                super::count_of(selection.objects.len(), "object"),
                super::count_of(selection.other_shards as usize, unit)
            );
        }
    }
    if let Some(manifest) = args.manifest.as_ref() {
        if selection.manifest_rows == 0 && crate::stdout::warns(quiet) {
            crate::stdout::say_err!(
                "warning: the manifest {} names no object: nothing to do",
                crate::escape(&manifest.to_string())
            );
        }
    }
    let leftovers = selection
        .objects
        .iter()
        .filter(|o| atrest_transfer::upgrade::is_temporary_object(&o.key));
    if let Some(first) = leftovers.clone().next() {
        if crate::stdout::warns(quiet) {
            crate::stdout::say_err!(
                "warning: {} named as an interrupted upgrade's leftover (as {}): taken as any other here; if an upgrade was killed, delete them (README: After SIGKILL)",
                super::count_of(leftovers.count(), "object"),
                crate::escape(&prefix.with_key(&first.key).to_string())
            );
        }
    }
    if selection.with_version_id > 0 && crate::stdout::warns(quiet) {
        let rows = super::count_of(selection.with_version_id as usize, "manifest row");
        let verb = if selection.with_version_id == 1 {
            "names"
        } else {
            "name"
        };
        crate::stdout::say_err!(
            "warning: {rows} {verb} a version id: atrest reads and writes the current version of each object, not the version named"
        );
    }
    if selection.outside_prefix > 0 && crate::stdout::warns(quiet) {
        crate::stdout::say_err!(
            "warning: skipped {} outside {}",
            super::count_of(selection.outside_prefix as usize, "manifest row"),
            crate::escape(&prefix.to_string())
        );
    }
    Ok(selection)
}

/// The `--json` summary line of a run over files: what was transferred,
/// and each failure's file and error.
pub(crate) fn summary_json(
    files: u64,
    bytes: u64,
    kms_calls: u64,
    failed: &[(&str, String)],
) -> serde_json::Value {
    serde_json::json!({
        "type": "summary",
        "files": files,
        "bytes": bytes,
        "kms_calls": kms_calls,
        "failed": failed
            .iter()
            .map(|(name, error)| serde_json::json!({"path": name, "error": error}))
            .collect::<Vec<_>>(),
    })
}

/// Prints the failures and the summary (stderr, or JSON on stdout; with
/// `-q` only the failures) and fails if any file did.
fn summarize(verb: &str, mut done: Vec<Done>, kms_calls: u64, bulk: &Bulk<'_>) -> Result<()> {
    done.sort_by(|a, b| a.name.cmp(&b.name));
    // A signal stops everything: report it as such.
    if let Some(got) = done.iter().find_map(|d| {
        d.result
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<Interrupted>().copied())
    }) {
        return Err(got.into());
    }
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut failed = Vec::new();
    for d in &done {
        match &d.result {
            Ok(n) => {
                files += 1;
                bytes += n;
            }
            Err(e) => failed.push((d.name.as_str(), format!("{e:#}"))),
        }
    }
    if bulk.args.json {
        crate::stdout::say!("{}", summary_json(files, bytes, kms_calls, &failed));
    } else {
        for (name, error) in &failed {
            // Keys and server messages are untrusted text.
            crate::stdout::say_err!("failed: {name}: {}", crate::escape(error));
        }
        let per_file = match done.len() {
            0 => String::new(),
            n => format!(" ({:.2} per file)", kms_calls as f64 / n as f64),
        };
        if !bulk.quiet {
            crate::stdout::say_err!(
                "{verb} {} ({bytes} bytes), {} failed; {}{per_file}",
                super::count_of(files as usize, "file"),
                failed.len(),
                super::count_of(kms_calls as usize, "KMS call"),
            );
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Runtime,
            format!(
                "{} of {} failed",
                failed.len(),
                super::count_of(done.len(), "file")
            ),
        )
        .into())
    }
}
