//! `atrest sync SRC DST`: a directory to a prefix, a prefix to a
//! directory, or a prefix to a prefix (copies inside S3), transferring
//! only what is new or changed, as `aws s3 sync`.
//!
//! One listing of each side decides (the rules and the plaintext sizes are
//! `atrest_transfer::sync`'s); the transfers then run as `--recursive` ones
//! do (bulk's runner), each file through the single-object command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use atrest_s3::S3Uri;
use atrest_transfer::sync::{self, Direction, Entry, Options, Plan, Remote, Rules, Sizes};
use atrest_transfer::Stop;
use futures::StreamExt;

use crate::cli::Target;
use crate::cli::{DecryptArgs, EncryptArgs, ManyArgs, SyncArgs, TransferArgs};
use crate::commands::bulk::{self, Bulk, Item};
use crate::commands::decrypt::Decrypt;
use crate::commands::encrypt::Encrypt;
use crate::failure::{Exit, Failure};
use crate::interrupt::{unless_stopped, Interrupt};
use crate::progress::Show;
use atrest_fs::tree::{self, as_prefix, relative_key, Filter, Source};

/// Everything one sync needs.
pub struct Sync<'a> {
    pub kms: &'a atrest_kms::Kms,
    /// `--key-file`'s key, when given.
    pub key_file: Option<std::sync::Arc<dyn atrest_transfer::KeySource>>,
    pub s3: &'a aws_sdk_s3::Client,
    pub src: &'a Target,
    pub dst: &'a Target,
    pub sync: &'a SyncArgs,
    pub encrypt: &'a EncryptArgs,
    pub decrypt: &'a DecryptArgs,
    pub transfer: &'a TransferArgs,
    pub many: &'a ManyArgs,
    pub show_progress: bool,
    pub quiet: bool,
}

impl Sync<'_> {
    fn bulk(&self) -> Bulk<'_> {
        Bulk {
            kms: self.kms,
            key_file: self.key_file.clone(),
            s3: self.s3,
            args: self.many,
            select: &crate::cli::SelectArgs::ALL,
            // sync says its own dry runs, before any transfer.
            dry_run: false,
            // sync decides what to transfer itself.
            no_overwrite: false,
            move_source: false,
            ignore_archived: self.sync.from_s3.ignore_glacier_warnings,
            show_progress: self.show_progress,
            quiet: self.quiet,
        }
    }

    /// What to transfer and delete (see [`atrest_transfer::sync::plan`]).
    async fn plan(
        &self,
        direction: Direction,
        uri: &S3Uri,
        prefix: &str,
        local: &BTreeMap<String, Entry>,
        remote: &BTreeMap<String, Entry>,
    ) -> Result<Plan> {
        let rules = Rules::new(self.sync.size_only, self.sync.exact_timestamps);
        let options = Options::new(rules, self.sync.no_overwrite, self.sync.delete);
        let sizes = Sizes::new(self.s3.clone());
        let objects = (uri, prefix);
        Ok(sync::plan(&sizes, direction, options, objects, local, remote).await?)
    }

    /// Prints an action line (`upload: a to s3://b/a`), unless `--quiet`
    /// or `--json`.
    fn say(&self, line: &str) {
        if !self.quiet && !self.many.json {
            crate::stdout::say!("{}", crate::escape(line));
        }
    }

    /// That `source` was left out: it would replace the instruction file
    /// of the object `object`, leaving that object undecryptable.
    fn warn_instruction_clash(&self, source: &str, object: &S3Uri) {
        if crate::stdout::warns(self.quiet) {
            crate::stdout::say_err!(
                "warning: skipped {}: it would replace the S3 Encryption Client instruction file of {}",
                crate::escape(source),
                crate::escape(&object.to_string()),
            );
        }
    }

    /// What a dry run would transfer: its `(dryrun)` line, or with `--json`
    /// its object line of status `dryrun`.
    fn said_would<T>(&self, item: &Item<T>) {
        let (Some(line), Ok(_)) = (&item.line, &item.work) else {
            return;
        };
        if self.many.json {
            let value = bulk::dry_run_json(&item.name, Some(line), item.size);
            crate::stdout::say!("{value}");
        } else {
            self.say(&format!("(dryrun) {line}"));
        }
    }

    /// With `--json`, a dry run's summary line, as a real run ends its
    /// transfers with (no KMS calls: a dry run makes none); items that
    /// cannot be read are its failures.
    fn said_would_summary<T>(&self, items: &[Item<T>]) {
        if !self.many.json {
            return;
        }
        let would = items.iter().filter(|i| i.work.is_ok());
        let bytes = would.clone().map(|i| i.size).sum();
        let failed: Vec<(&str, String)> = items
            .iter()
            .filter_map(|i| Some((i.name.as_str(), format!("{:#}", i.work.as_ref().err()?))))
            .collect();
        let summary = bulk::summary_json(would.count() as u64, bytes, 0, &failed);
        crate::stdout::say!("{summary}");
    }

    /// That `target` (an object or a file) was deleted, or would be: a
    /// `delete:` line, or with `--json` an object line of action `delete`.
    fn said_deleted(&self, target: &str) {
        let dry = self.sync.dryrun;
        if self.many.json {
            let status = if dry { "dryrun" } else { "done" };
            let line = serde_json::json!({"type": "object", "action": "delete",
                "destination": target, "status": status});
            crate::stdout::say!("{line}");
        } else {
            self.say(&format!(
                "{}delete: {target}",
                if dry { "(dryrun) " } else { "" }
            ));
        }
    }
}

pub async fn run(args: Sync<'_>, interrupt: &Interrupt) -> Result<()> {
    match (args.src, args.dst) {
        (Target::File(dir), Target::S3(uri)) => upload(&args, dir, uri, interrupt).await,
        // Dropping the work on a signal removes the temporary outputs.
        (Target::S3(uri), Target::File(dir)) => interrupt.guard(download(&args, uri, dir)).await,
        // Not dropped on a signal: a copy in parts aborts its upload.
        (Target::S3(from), Target::S3(to)) => {
            interrupt.stopping(|stop| copy(&args, from, to, stop)).await
        }
        (Target::File(_), Target::File(_)) => Err(Failure::new(
            Exit::Usage,
            "sync needs an s3:// side: a directory and a prefix (s3://BUCKET[/PREFIX]), or two prefixes",
        )
        .into()),
    }
}

/// The objects under one prefix to another, copied inside S3 as they are
/// (`commands::copy`): still encrypted, decrypting as before.
async fn copy(args: &Sync<'_>, from: &S3Uri, to: &S3Uri, stop: Stop) -> Result<()> {
    let (from_prefix, to_prefix) = (as_prefix(from.key()), as_prefix(to.key()));
    // Nested prefixes would copy the copies again on every run.
    let nested = from_prefix.starts_with(&to_prefix) || to_prefix.starts_with(&from_prefix);
    if from.bucket() == to.bucket() && nested {
        let why = format!("{from} and {to} overlap: sync copies between prefixes neither of which holds the other");
        return Err(Failure::new(Exit::Usage, why).into());
    }
    let filter = args.many.filter()?;
    let listings = async {
        let source = remote(args, from, &from_prefix, &filter).await?;
        Ok((source, remote(args, to, &to_prefix, &filter).await?))
    };
    let (source, destination) = unless_stopped(&stop, listings).await?;
    let rules = Rules::new(args.sync.size_only, args.sync.exact_timestamps);
    let options = Options::new(rules, args.sync.no_overwrite, args.sync.delete);
    let mut plan = sync::plan_copy(options, &source, &destination);
    plan.transfer.retain(|rel| {
        let clash = destination.instruction_files.contains_key(rel);
        if clash {
            let object = atrest_transfer::list::group_key(rel);
            let source = from.with_key(format!("{from_prefix}{rel}")).to_string();
            args.warn_instruction_clash(&source, &to.with_key(format!("{to_prefix}{object}")));
        }
        !clash
    });
    plan.delete = destination.with_instruction_files(plan.delete);
    let pairs = plan
        .transfer
        .iter()
        .map(|rel| {
            let len = source.objects.get(rel).map_or(0, |o| o.size);
            let from = from.with_key(format!("{from_prefix}{rel}"));
            (from, to.with_key(format!("{to_prefix}{rel}")), len)
        })
        .collect();
    let copies = super::copy::Copy {
        from,
        to,
        recursive: true,
        dry_run: args.sync.dryrun,
        // The plan has decided.
        no_overwrite: false,
        jobs: args.many.jobs as usize,
        filters: &args.many.filters.rules,
        options: super::copy::options(args.encrypt, args.transfer)?,
        json: args.many.json,
        move_source: false,
        quiet: args.quiet,
        ignore_archived: args.sync.from_s3.ignore_glacier_warnings,
    };
    let copied = super::copy::run_all(args.s3, &copies, pairs, &stop).await;
    if args.sync.dryrun {
        for rel in &plan.delete {
            let gone = to.with_key(format!("{to_prefix}{rel}"));
            args.said_deleted(&gone.to_string());
        }
        return copied;
    }
    // A stopped run deletes nothing.
    if stop.is_stopped() {
        return copied;
    }
    let deleted = delete_objects(args, to, &to_prefix, &plan.delete).await?;
    report(args, &plan, deleted);
    copied
}

/// The objects under the prefix that the filter takes.
async fn remote(args: &Sync<'_>, uri: &S3Uri, prefix: &str, filter: &Filter) -> Result<Remote> {
    let relative = |key: &str, size: u64| relative_key(prefix, key, size, filter);
    Ok(Remote::list(args.s3, uri, prefix, relative).await?)
}

/// A walked file as the plan reads it.
fn entry(item: &Item<Source>) -> Option<(String, Entry)> {
    let source = item.work.as_ref().ok()?;
    let modified = source.modified.unwrap_or(UNIX_EPOCH);
    Some((
        source.rel.clone(),
        Entry {
            size: item.size,
            modified,
        },
    ))
}

async fn upload(args: &Sync<'_>, dir: &Path, uri: &S3Uri, interrupt: &Interrupt) -> Result<()> {
    if let Some(refused) = bulk::no_tree(dir, "sync", bulk::Side::Source) {
        return Err(refused.into());
    }
    args.encrypt.properties.check()?;
    let key_flags = super::encrypt::KeyFlags::of(args.encrypt);
    super::encrypt::check_key_flags(&key_flags, args.key_file.is_some())?;
    // A dry run needs no key, as `cp --dryrun` does not.
    if args.encrypt.kms_key.is_none() && args.key_file.is_none() && !args.sync.dryrun {
        let data_key = crate::keyring::read_data_key(&args.encrypt.data_key);
        interrupt.guard(data_key).await?;
    }
    let filter = args.many.filter()?;
    let prefix = as_prefix(uri.key());
    let mut walk = tree::walk(dir, &filter)?;
    // Plaintext of an interrupted download: never uploaded (as cp -r says),
    // and not a file that is gone: an object of its name stays.
    let partials = std::mem::take(&mut walk.partials);
    bulk::warn_partials(&partials, args.quiet);
    // Names that exist but could not be read: their objects stay.
    let unreadable: Vec<String> = walk
        .files
        .iter()
        .filter(|f| f.source.is_err())
        .filter_map(|f| f.key.clone())
        .collect();
    let mut found = bulk::walked(walk);
    // Nothing to clean up yet: a signal drops the listing and the plan.
    let remote = interrupt.guard(remote(args, uri, &prefix, &filter)).await?;
    found.retain(|item| match &item.work {
        Ok(source) if remote.instruction_files.contains_key(&source.rel) => {
            let object = atrest_transfer::list::group_key(&source.rel);
            let object = uri.with_key(format!("{prefix}{object}"));
            args.warn_instruction_clash(&source.path.display().to_string(), &object);
            false
        }
        _ => true,
    });
    let local: BTreeMap<String, Entry> = found.iter().filter_map(entry).collect();
    let plan = args.plan(Direction::Upload, uri, &prefix, &local, &remote.objects);
    let mut plan = interrupt.guard(plan).await?;
    plan.spare(&partials);
    for rel in plan.spare(&unreadable) {
        if crate::stdout::warns(args.quiet) {
            crate::stdout::say_err!(
                "warning: kept {}: its source could not be read (see below)",
                crate::escape(&uri.with_key(format!("{prefix}{rel}")).to_string()),
            );
        }
    }
    plan.delete = remote.with_instruction_files(plan.delete);
    let transfer: BTreeSet<&str> = plan.transfer.iter().map(String::as_str).collect();
    // Files that cannot be read stay in, to fail alone and be counted.
    let mut todo: Vec<Item<Source>> = found
        .into_iter()
        .filter(|item| match &item.work {
            Ok(source) => transfer.contains(source.rel.as_str()),
            Err(_) => true,
        })
        .collect();
    let template = Encrypt::new(
        dir,
        uri,
        args.encrypt,
        args.transfer,
        Show::Own(args.show_progress),
    );
    bulk::name_uploads(&mut todo, &template, &prefix, false);
    if args.sync.dryrun {
        for item in &todo {
            args.said_would(item);
        }
        // What the run would fail on, it says as the run would.
        let unreadable: Vec<_> = todo.iter().filter(|i| i.work.is_err()).collect();
        for item in &unreadable {
            let Err(e) = &item.work else { continue };
            if args.many.json {
                let line = bulk::object_json(&item.name, item.line.as_ref(), Err(e));
                crate::stdout::say!("{line}");
            } else {
                let why = crate::escape(&format!("{e:#}"));
                crate::stdout::say_err!("failed: {}: {why}", item.name);
            }
        }
        // Deletions follow the summary, as in a real run.
        args.said_would_summary(&todo);
        for rel in &plan.delete {
            args.said_deleted(&uri.with_key(format!("{prefix}{rel}")).to_string());
        }
        return match unreadable.len() {
            0 => Ok(()),
            n => {
                let files = super::count_of(n, "file");
                let why = format!("{files} could not be read (dry run)");
                Err(Failure::new(Exit::Runtime, why).into())
            }
        };
    }
    let bulk = args.bulk();
    let transferred = bulk::upload(&bulk, &template, &prefix, todo, interrupt).await;
    // A signal stops the run: nothing is deleted after it.
    if interrupt.fired() {
        return transferred;
    }
    let deleted = delete_objects(args, uri, &prefix, &plan.delete).await?;
    report(args, &plan, deleted);
    transferred
}

/// Deletes `prefix` + each of `rels`, `--jobs` at a time; returns how many
/// went. Fails (after trying all) if any could not be deleted.
async fn delete_objects(
    args: &Sync<'_>,
    uri: &S3Uri,
    prefix: &str,
    rels: &[String],
) -> Result<usize> {
    let results: Vec<Result<()>> = futures::stream::iter(rels)
        .map(|rel| async move {
            let target = uri.with_key(format!("{prefix}{rel}"));
            atrest_s3::delete(args.s3, &target).await?;
            args.said_deleted(&target.to_string());
            Ok(())
        })
        .buffer_unordered(args.many.jobs as usize)
        .collect()
        .await;
    deleted(results)
}

/// How many deletions succeeded, or the first failure (each one printed).
fn deleted(results: Vec<Result<()>>) -> Result<usize> {
    let mut failed = 0;
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        crate::stdout::say_err!("failed: {}", crate::escape(&format!("{e:#}")));
        failed += 1;
    }
    match failed {
        0 => Ok(results.len()),
        n => Err(Failure::new(Exit::Runtime, format!("{n} deletions failed")).into()),
    }
}

/// The comparisons' counts, after the run's summary.
fn report(args: &Sync<'_>, plan: &Plan, deleted: usize) {
    if !args.quiet && !args.many.json {
        crate::stdout::say_err!(
            "{} up to date, {} kept (newer than the source), {} deleted",
            plan.current,
            plan.kept.len(),
            deleted
        );
    }
}

async fn download(args: &Sync<'_>, uri: &S3Uri, dir: &Path) -> Result<()> {
    if let Some(refused) = bulk::no_tree(dir, "sync", bulk::Side::Destination) {
        return Err(refused.into());
    }
    let filter = args.many.filter()?;
    let prefix = as_prefix(uri.key());
    let remote = remote(args, uri, &prefix, &filter).await?;
    // What the directory holds (nothing yet if it does not exist).
    let mut local = BTreeMap::new();
    let mut paths = BTreeMap::new();
    if dir.is_dir() {
        for item in bulk::walked(tree::walk(dir, &filter)?) {
            if let (Some((rel, entry)), Ok(source)) = (entry(&item), item.work) {
                local.insert(rel.clone(), entry);
                paths.insert(rel, source.path);
            }
        }
    }
    let remote = remote.objects;
    let mut plan = args
        .plan(Direction::Download, uri, &prefix, &local, &remote)
        .await?;
    // An object whose key is no safe file name (`p//x`) fails to download:
    // the file it would be taken for is kept, not deleted as sourceless.
    let refused: Vec<String> = remote
        .keys()
        .filter_map(|rel| tree::lenient_name(rel))
        .collect();
    for rel in plan.spare(&refused) {
        if crate::stdout::warns(args.quiet) {
            crate::stdout::say_err!(
                "warning: kept {}: an object for it exists, but its key cannot be downloaded (see below)",
                crate::escape(&paths[&rel].display().to_string()),
            );
        }
    }
    if crate::stdout::warns(args.quiet) {
        for rel in &plan.kept {
            crate::stdout::say_err!(
                "warning: kept {}: it is newer than {} (changed since the last sync?); --exact-timestamps replaces it",
                crate::escape(&paths[rel].display().to_string()),
                crate::escape(&uri.with_key(format!("{prefix}{rel}")).to_string()),
            );
        }
    }
    let gone: Vec<&std::path::PathBuf> = plan.delete.iter().map(|rel| &paths[rel]).collect();
    let items: Vec<Item<String>> = plan
        .transfer
        .iter()
        .map(|rel| {
            let from = uri.with_key(format!("{prefix}{rel}"));
            let line = bulk::Transferred::download(&from, &dir.join(rel));
            Item {
                name: crate::escape(rel),
                size: remote[rel].size,
                work: Ok(rel.clone()),
                line: Some(line),
                key: None,
            }
        })
        .collect();
    if args.sync.dryrun {
        for item in &items {
            args.said_would(item);
        }
        args.said_would_summary(&items);
        for path in &gone {
            args.said_deleted(&super::bulk::local_name(path));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let template = Decrypt {
        uri,
        file: dir,
        expect_context: &args.decrypt.expect_context,
        range: None,
        allow_legacy: args.decrypt.allow_legacy,
        concurrency: args.transfer.concurrency.map(|n| n as usize),
        part_size: args.transfer.part_size as usize,
        quiet: args.quiet,
        progress: Show::Own(args.show_progress),
    };
    let bulk = args.bulk();
    let transferred = bulk::download(&bulk, &template, &prefix, items).await;
    let results: Vec<Result<()>> = gone
        .iter()
        .map(|path| {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot delete {}", path.display()))?;
            args.said_deleted(&super::bulk::local_name(path));
            Ok(())
        })
        .collect();
    let deleted = deleted(results)?;
    report(args, &plan, deleted);
    transferred
}
