//! Which atrest binary the end-to-end part measures: the release build of
//! this checkout, or the one given with `--atrest PATH` (an older build, to
//! compare two binaries back to back), and what the report says about it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::util::{self, step};

/// The binary measured, as the report names it.
#[derive(Clone, Debug)]
pub struct AtrestBinary {
    /// Absolute: atrest runs in its own working directory.
    pub path: PathBuf,
    /// The first line of `atrest --version`.
    pub version: String,
    /// Of the file's bytes: tells two builds of one version apart.
    pub sha256: String,
    /// Given with `--atrest` (else built by this run).
    pub given: bool,
    /// The commit it was built from (`git describe --always --dirty`), when
    /// known.
    pub commit: Option<String>,
    /// How the commit was found, or why it is unknown.
    pub commit_note: String,
}

impl AtrestBinary {
    /// `--atrest PATH` if given, else `cargo build --release -p atrest`.
    pub fn resolve(given: Option<&Path>) -> Result<AtrestBinary> {
        match given {
            Some(path) => AtrestBinary::given(path),
            None => AtrestBinary::build(),
        }
    }

    fn build() -> Result<AtrestBinary> {
        step("build atrest (release)");
        let path = util::build_atrest("build atrest", &["--release", "--quiet"])?;
        let commit = describe(util::root());
        AtrestBinary::describe_file(path, false, commit, "built by this run".to_owned())
    }

    fn given(path: &Path) -> Result<AtrestBinary> {
        step("atrest binary (--atrest)");
        let path = path
            .canonicalize()
            .with_context(|| format!("--atrest {}: no such file", path.display()))?;
        if !path.is_file() {
            bail!("--atrest {}: not a file", path.display());
        }
        let (commit, note) = commit_of_given(&path);
        AtrestBinary::describe_file(path, true, commit, note)
    }

    fn describe_file(
        path: PathBuf,
        given: bool,
        commit: Option<String>,
        commit_note: String,
    ) -> Result<AtrestBinary> {
        let version = util::tool_version(&path.to_string_lossy(), &["--version"])
            .filter(|v| v.starts_with("atrest "))
            .with_context(|| {
                format!(
                    "`{} --version` does not answer `atrest VERSION`: not an atrest binary?",
                    path.display()
                )
            })?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let binary = AtrestBinary {
            path,
            version,
            sha256,
            given,
            commit,
            commit_note,
        };
        eprintln!("measuring {}", binary.summary());
        Ok(binary)
    }

    /// One line for the report: path, version, digest, commit.
    pub fn summary(&self) -> String {
        let how = if self.given {
            "given with `--atrest`"
        } else {
            "the release build of this checkout"
        };
        let commit = match &self.commit {
            Some(c) => format!("commit `{c}` ({})", self.commit_note),
            None => format!("commit unknown ({})", self.commit_note),
        };
        format!(
            "`{}` (`{}`, sha256 `{}`), {how}; {commit}",
            self.path.display(),
            self.version,
            &self.sha256[..16]
        )
    }
}

/// `git describe --always --dirty` of the checkout at `dir`.
fn describe(dir: &Path) -> Option<String> {
    git(dir, &["describe", "--always", "--dirty"])
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// A binary inside a git checkout (its `target/release/atrest`, say) was
/// built from that checkout's HEAD, unless HEAD is newer than the file.
fn commit_of_given(path: &Path) -> (Option<String>, String) {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let Some(top) = git(dir, &["rev-parse", "--show-toplevel"]) else {
        return (None, "not inside a git checkout".to_owned());
    };
    let head_time = git(dir, &["log", "-1", "--format=%ct"]).and_then(|t| t.parse::<u64>().ok());
    let built = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    match (head_time, built) {
        (Some(head), Some(built)) if built >= head => (
            describe(dir),
            format!("HEAD of the checkout {top}, which holds it and is older than it"),
        ),
        (Some(_), Some(_)) => (
            None,
            format!("the HEAD of the checkout {top} that holds it is newer than the file"),
        ),
        _ => (
            None,
            format!("cannot compare the file's time with HEAD of {top}"),
        ),
    }
}
