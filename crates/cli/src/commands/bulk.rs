//! `--recursive`: a directory to a prefix (encrypt) or a prefix to a
//! directory (decrypt), the AWS CLI's `cp --recursive` shape. Each file goes
//! through the single-object command, `--jobs` at a time; one failure does
//! not stop the others, and the summary lists every failure.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use atrest_kms::Kms;
use futures::StreamExt;
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cli::BulkArgs;
use crate::commands::decrypt::Decrypt;
use crate::commands::encrypt::Encrypt;
use crate::failure::{Exit, Failure};
use crate::interrupt::{Interrupt, Interrupted};
use crate::keys::Keys;
use crate::progress::{Progress, Show};

/// Which relative paths (or keys below the prefix) to take.
#[derive(Debug)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        let build = |patterns: &[String]| -> Result<GlobSet> {
            let mut set = GlobSetBuilder::new();
            for p in patterns {
                set.add(Glob::new(p).map_err(|e| {
                    Failure::new(Exit::Usage, format!("invalid pattern `{p}`: {e}"))
                })?);
            }
            Ok(set.build()?)
        };
        Ok(Filter {
            include: (!include.is_empty()).then(|| build(include)).transpose()?,
            exclude: build(exclude)?,
        })
    }

    /// With --include, a path must match one; any --exclude match drops it.
    pub fn takes(&self, relative: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|set| set.is_match(relative))
            && !self.exclude.is_match(relative)
    }
}

/// One file's result.
struct Done {
    name: String,
    result: Result<u64>,
}

/// Encrypts every file under `dir` to `prefix` + its relative path.
/// `show_progress`: draw the overall bar.
pub async fn encrypt_dir(
    kms: &Kms,
    s3: &aws_sdk_s3::Client,
    template: Encrypt<'_>,
    bulk: &BulkArgs,
    show_progress: bool,
    interrupt: &Interrupt,
) -> Result<()> {
    let dir = template.file;
    if crate::files::is_std_stream(dir) || !dir.is_dir() {
        return Err(Failure::new(
            Exit::Usage,
            format!("--recursive needs a directory, not {}", dir.display()),
        )
        .into());
    }
    let filter = Filter::new(&bulk.include, &bulk.exclude)?;
    let prefix = as_prefix(template.uri.key());
    let mut files = Vec::new();
    walk(dir, dir, &mut files).with_context(|| format!("cannot list {}", dir.display()))?;
    files.retain(|(_, rel)| filter.takes(rel));
    files.sort();
    let total = files
        .iter()
        .filter_map(|(path, _)| std::fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    let overall = Overall::new(show_progress, "encrypting", total, files.len());
    let keys = &Keys::cached(kms.clone(), bulk.cache_limits());
    let template = &template;
    let prefix = &prefix;
    let overall = &overall;
    let done: Vec<Done> = futures::stream::iter(files)
        .map(|(path, rel)| async move {
            let uri = template.uri.with_key(format!("{prefix}{rel}"));
            let args = Encrypt {
                file: &path,
                uri: &uri,
                progress: Show::Within(&overall.bar),
                ..*template
            };
            let result = async {
                let len = std::fs::metadata(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?
                    .len();
                super::encrypt::run(keys, s3, args, interrupt).await?;
                Ok(len)
            }
            .await;
            overall.one_done();
            Done { name: rel, result }
        })
        .buffer_unordered(bulk.jobs as usize)
        .collect()
        .await;
    overall.bar.finish();
    summarize("encrypted", done, keys.calls(), bulk.json)
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
pub async fn decrypt_prefix(
    kms: &Kms,
    s3: &aws_sdk_s3::Client,
    template: Decrypt<'_>,
    bulk: &BulkArgs,
    show_progress: bool,
) -> Result<()> {
    let dir = template.file;
    if crate::files::is_std_stream(dir) || (dir.exists() && !dir.is_dir()) {
        return Err(Failure::new(
            Exit::Usage,
            format!("--recursive needs a directory, not {}", dir.display()),
        )
        .into());
    }
    let filter = Filter::new(&bulk.include, &bulk.exclude)?;
    let prefix = as_prefix(template.uri.key());
    let listing = atrest_s3::list(s3, &template.uri.with_key(prefix.clone())).await?;
    let objects: Vec<_> = listing
        .into_iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(&prefix)?.to_owned();
            // Folder markers made by consoles hold no data.
            (!rel.is_empty() && !rel.ends_with('/') && filter.takes(&rel)).then_some((rel, o.size))
        })
        .collect();
    // Object sizes slightly exceed the plaintext: the bar ends at what was
    // written.
    let total = objects.iter().map(|(_, size)| size).sum();
    let overall = Overall::new(show_progress, "decrypting", total, objects.len());
    let keys = &Keys::cached(kms.clone(), bulk.cache_limits());
    let template = &template;
    let prefix = &prefix;
    let overall = &overall;
    let done: Vec<Done> = futures::stream::iter(objects)
        .map(|(rel, _)| async move {
            let result = async {
                // Keys are untrusted: none may reach outside the directory.
                let dest = safe_join(dir, &rel)?;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                let uri = template.uri.with_key(format!("{prefix}{rel}"));
                let args = Decrypt {
                    uri: &uri,
                    file: &dest,
                    progress: Show::Within(&overall.bar),
                    ..*template
                };
                super::decrypt::run(keys, s3, args).await?;
                Ok(std::fs::metadata(&dest)?.len())
            }
            .await;
            overall.one_done();
            Done {
                name: crate::escape(&rel),
                result,
            }
        })
        .buffer_unordered(bulk.jobs as usize)
        .collect()
        .await;
    overall.bar.finish();
    summarize("decrypted", done, keys.calls(), bulk.json)
}

/// The key prefix objects go under: the URI's key, ending with `/`.
fn as_prefix(key: &str) -> String {
    if key.ends_with('/') {
        key.to_owned()
    } else {
        format!("{key}/")
    }
}

/// Every non-directory under `dir` (symbolic links not followed into
/// directories), with its path relative to `root` in `/` form.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("below the root");
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((path, rel.join("/")));
        }
    }
    Ok(())
}

/// `dir` joined with the relative key `rel`, refusing keys that would leave
/// `dir` (`..`, absolute, empty parts).
fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf> {
    let unsafe_key = || {
        Failure::new(
            Exit::Untrusted,
            format!(
                "the key part `{}` is not a safe relative path",
                crate::escape(rel)
            ),
        )
    };
    let mut dest = dir.to_path_buf();
    for part in rel.split('/') {
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if name == part => dest.push(name),
            _ => return Err(unsafe_key().into()),
        }
    }
    Ok(dest)
}

/// Prints the summary (stderr, or JSON on stdout) and fails if any file did.
fn summarize(verb: &str, mut done: Vec<Done>, kms_calls: u64, json: bool) -> Result<()> {
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
    if json {
        let summary = serde_json::json!({
            "files": files,
            "bytes": bytes,
            "kms_calls": kms_calls,
            "failed": failed
                .iter()
                .map(|(name, error)| serde_json::json!({"path": name, "error": error}))
                .collect::<Vec<_>>(),
        });
        println!("{summary}");
    } else {
        for (name, error) in &failed {
            eprintln!("failed: {name}: {error}");
        }
        let per_file = match done.len() {
            0 => String::new(),
            n => format!(" ({:.2} per file)", kms_calls as f64 / n as f64),
        };
        eprintln!(
            "{verb} {files} files ({bytes} bytes), {} failed; {kms_calls} KMS calls{per_file}",
            failed.len()
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Runtime,
            format!("{} of {} files failed", failed.len(), done.len()),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_directory() {
        let dir = Path::new("out");
        assert_eq!(
            safe_join(dir, "a/b c/d.txt").unwrap(),
            Path::new("out/a/b c/d.txt")
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", ".", "a/./b", ""] {
            assert!(safe_join(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exclude_wins_over_include() {
        let all = Filter::new(&[], &[]).unwrap();
        assert!(all.takes("any/thing"));
        let f = Filter::new(&["sub/**".into()], &["*.log".into()]).unwrap();
        assert!(f.takes("sub/a/b.txt"));
        assert!(!f.takes("top.txt"));
        assert!(!f.takes("sub/x.log"));
        assert!(Filter::new(&["a[".into()], &[]).is_err());
    }
}
