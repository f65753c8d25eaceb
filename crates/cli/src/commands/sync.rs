//! `atrest sync SRC DST`: a directory to a prefix or a prefix to a
//! directory, transferring only what is new or changed, as `aws s3 sync`.
//!
//! One listing of each side decides (the rules and the plaintext sizes are
//! `atrest_transfer::sync`'s); the transfers then run as `--recursive` ones
//! do (bulk's runner), each file through the single-object command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use atrest_s3::S3Uri;
use atrest_transfer::sync::{
    decide, decide_exact, Action, Direction, Pair, Rules, SizeCheck, Sizes,
};
use futures::StreamExt;

use crate::cli::{DecryptArgs, EncryptArgs, ManyArgs, SyncArgs, TransferArgs};
use crate::commands::bulk::{self, Bulk, Filter, Item, Source};
use crate::commands::decrypt::Decrypt;
use crate::commands::encrypt::Encrypt;
use crate::commands::inspect::Target;
use crate::failure::{Exit, Failure};
use crate::interrupt::Interrupt;
use crate::progress::Show;

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
            show_progress: self.show_progress,
            quiet: self.quiet,
        }
    }

    fn rules(&self) -> Rules {
        Rules::new(self.sync.size_only, self.sync.exact_timestamps)
    }

    /// Prints an action line (`upload: a to s3://b/a`), unless `--quiet`
    /// or `--json`.
    fn say(&self, line: &str) {
        if !self.quiet && !self.many.json {
            println!("{}", crate::escape(line));
        }
    }
}

pub async fn run(args: Sync<'_>, interrupt: &Interrupt) -> Result<()> {
    match (args.src, args.dst) {
        (Target::File(dir), Target::S3(uri)) => upload(&args, dir, uri, interrupt).await,
        // Dropping the work on a signal removes the temporary outputs.
        (Target::S3(uri), Target::File(dir)) => interrupt.guard(download(&args, uri, dir)).await,
        _ => Err(Failure::new(
            Exit::Usage,
            "sync needs one s3:// side: a directory and a prefix (s3://BUCKET[/PREFIX])",
        )
        .into()),
    }
}

/// What the comparisons found.
#[derive(Default)]
struct Tally {
    current: usize,
    kept: usize,
    deleted: usize,
}

/// A listed object below the prefix.
struct Remote {
    size: u64,
    modified: SystemTime,
}

/// The objects under `prefix` the filter takes, by relative key.
async fn remote_index(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    prefix: &str,
    filter: &Filter,
) -> Result<BTreeMap<String, Remote>> {
    let listing = atrest_s3::list(s3, &uri.with_key(prefix)).await?;
    Ok(listing
        .into_iter()
        .filter_map(|o| {
            let rel = bulk::relative(prefix, &o.key, filter)?;
            let modified = o
                .last_modified
                .and_then(|t| SystemTime::try_from(t).ok())
                .unwrap_or(UNIX_EPOCH);
            Some((
                rel,
                Remote {
                    size: o.size,
                    modified,
                },
            ))
        })
        .collect())
}

/// How each (file, object) pair of `pairs` compares in size: first from
/// the layouts already learned (no request), then, for the rest, one at a
/// time, so that each header read teaches the others.
async fn sizes(
    sizes: &Sizes,
    uri: &S3Uri,
    prefix: &str,
    pairs: &[(String, u64, u64)],
) -> Result<Vec<SizeCheck>> {
    let mut out = Vec::with_capacity(pairs.len());
    for (rel, object_len, local_len) in pairs {
        let check = sizes
            .compare(
                &uri.with_key(format!("{prefix}{rel}")),
                *object_len,
                *local_len,
            )
            .await?;
        out.push(check);
    }
    Ok(out)
}

async fn upload(args: &Sync<'_>, dir: &Path, uri: &S3Uri, interrupt: &Interrupt) -> Result<()> {
    if crate::files::is_std_stream(dir) || !dir.is_dir() {
        return Err(Failure::new(
            Exit::Usage,
            format!("sync needs a directory, not {}", dir.display()),
        )
        .into());
    }
    if args.encrypt.kms_key.is_none() && args.key_file.is_none() {
        super::encrypt::read_data_key(&args.encrypt.data_key)?;
    }
    args.encrypt.properties.check()?;
    let filter = Filter::new(&args.many.include, &args.many.exclude)?;
    let prefix = bulk::as_prefix(uri.key());
    let found = bulk::walk(dir, &filter)?;
    let remote = remote_index(args.s3, uri, &prefix, &filter).await?;
    let mut tally = Tally::default();
    let mut todo: Vec<Item<Source>> = Vec::new();
    let mut both: Vec<(Item<Source>, SystemTime)> = Vec::new();
    let mut local = BTreeSet::new();
    for item in found.items {
        let Ok(source) = &item.work else {
            todo.push(item);
            continue;
        };
        local.insert(source.rel.clone());
        match remote.get(&source.rel) {
            None => todo.push(item),
            Some(_) if args.sync.no_overwrite => tally.current += 1,
            Some(o) => both.push((item, o.modified)),
        }
    }
    let pairs: Vec<(String, u64, u64)> = both
        .iter()
        .map(|(item, _)| {
            let rel = &item.work.as_ref().expect("checked").rel;
            (rel.clone(), remote[rel].size, item.size)
        })
        .collect();
    let checked = sizes(&Sizes::new(args.s3.clone()), uri, &prefix, &pairs).await?;
    for ((item, remote_modified), size) in both.into_iter().zip(checked) {
        let source = item.work.as_ref().expect("checked");
        let pair = Pair {
            local_modified: source.modified.unwrap_or(UNIX_EPOCH),
            remote_modified,
            size,
        };
        match decide(Direction::Upload, args.rules(), &pair) {
            Action::Transfer => todo.push(item),
            _ => tally.current += 1,
        }
    }
    let gone: Vec<String> = match args.sync.delete {
        true => remote
            .keys()
            .filter(|k| !local.contains(*k))
            .cloned()
            .collect(),
        false => Vec::new(),
    };
    for item in &mut todo {
        if let Ok(source) = &item.work {
            let to = uri.with_key(format!("{prefix}{}", source.rel));
            item.line = Some(bulk::Transferred::upload(&source.path, &to));
        }
    }
    if args.sync.dryrun {
        for item in &todo {
            if let Some(line) = &item.line {
                args.say(&format!("(dryrun) {line}"));
            }
        }
        for rel in &gone {
            args.say(&format!(
                "(dryrun) delete: {}",
                uri.with_key(format!("{prefix}{rel}"))
            ));
        }
        return Ok(());
    }
    let template = Encrypt::new(
        dir,
        uri,
        args.encrypt,
        args.transfer,
        Show::Own(args.show_progress),
    );
    let bulk = args.bulk();
    let transferred = bulk::upload(&bulk, &template, &prefix, todo, interrupt).await;
    tally.deleted = delete_objects(args, uri, &prefix, &gone).await?;
    report(args, &tally);
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
            args.say(&format!("delete: {target}"));
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
        eprintln!("failed: {}", crate::escape(&format!("{e:#}")));
        failed += 1;
    }
    match failed {
        0 => Ok(results.len()),
        n => Err(Failure::new(Exit::Runtime, format!("{n} deletions failed")).into()),
    }
}

/// The comparisons' counts, after the run's summary.
fn report(args: &Sync<'_>, tally: &Tally) {
    if !args.quiet && !args.many.json {
        eprintln!(
            "{} up to date, {} kept (newer than the source), {} deleted",
            tally.current, tally.kept, tally.deleted
        );
    }
}

async fn download(args: &Sync<'_>, uri: &S3Uri, dir: &Path) -> Result<()> {
    if crate::files::is_std_stream(dir) || (dir.exists() && !dir.is_dir()) {
        return Err(Failure::new(
            Exit::Usage,
            format!("sync needs a directory, not {}", dir.display()),
        )
        .into());
    }
    let filter = Filter::new(&args.many.include, &args.many.exclude)?;
    let prefix = bulk::as_prefix(uri.key());
    let remote = remote_index(args.s3, uri, &prefix, &filter).await?;
    // What the directory holds (nothing yet if it does not exist).
    let mut local: BTreeMap<String, (u64, SystemTime, std::path::PathBuf)> = BTreeMap::new();
    if dir.is_dir() {
        for item in bulk::walk(dir, &filter)?.items {
            if let Ok(source) = item.work {
                let modified = source.modified.unwrap_or(UNIX_EPOCH);
                local.insert(source.rel, (item.size, modified, source.path));
            }
        }
    }
    let mut tally = Tally::default();
    let mut todo: Vec<String> = Vec::new();
    let mut both: Vec<String> = Vec::new();
    for rel in remote.keys() {
        match local.get(rel) {
            None => todo.push(rel.clone()),
            Some(_) if args.sync.no_overwrite => tally.current += 1,
            Some(_) => both.push(rel.clone()),
        }
    }
    let pairs: Vec<(String, u64, u64)> = both
        .iter()
        .map(|rel| (rel.clone(), remote[rel].size, local[rel].0))
        .collect();
    let checked = sizes(&Sizes::new(args.s3.clone()), uri, &prefix, &pairs).await?;
    for (rel, size) in both.into_iter().zip(checked) {
        let mut pair = Pair {
            local_modified: local[&rel].1,
            remote_modified: remote[&rel].modified,
            size,
        };
        let mut action = decide(Direction::Download, args.rules(), &pair);
        if action == Action::NeedExactTime {
            let object = uri.with_key(format!("{prefix}{rel}"));
            let source = atrest_transfer::sync::source_modified(args.s3, &object).await?;
            pair.remote_modified = source.unwrap_or(pair.remote_modified);
            action = decide_exact(&pair);
        }
        match action {
            Action::Transfer => todo.push(rel),
            Action::KeepNewer => {
                tally.kept += 1;
                if !args.quiet {
                    eprintln!(
                        "warning: kept {}: it is newer than {} (changed since the last sync?); --exact-timestamps replaces it",
                        crate::escape(&local[&rel].2.display().to_string()),
                        crate::escape(&uri.with_key(format!("{prefix}{rel}")).to_string()),
                    );
                }
            }
            _ => tally.current += 1,
        }
    }
    let gone: Vec<std::path::PathBuf> = match args.sync.delete {
        true => local
            .iter()
            .filter(|(rel, _)| !remote.contains_key(*rel))
            .map(|(_, (_, _, path))| path.clone())
            .collect(),
        false => Vec::new(),
    };
    let items: Vec<Item<String>> = todo
        .into_iter()
        .map(|rel| {
            let from = uri.with_key(format!("{prefix}{rel}"));
            let line = bulk::Transferred::download(&from, &dir.join(&rel));
            Item {
                name: crate::escape(&rel),
                size: remote[&rel].size,
                work: Ok(rel),
                line: Some(line),
            }
        })
        .collect();
    if args.sync.dryrun {
        for item in &items {
            if let Some(line) = &item.line {
                args.say(&format!("(dryrun) {line}"));
            }
        }
        for path in &gone {
            args.say(&format!("(dryrun) delete: {}", path.display()));
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
            args.say(&format!("delete: {}", path.display()));
            Ok(())
        })
        .collect();
    tally.deleted = deleted(results)?;
    report(args, &tally);
    transferred
}
