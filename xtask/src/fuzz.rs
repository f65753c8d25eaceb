//! `cargo xtask fuzz TARGET [--seconds N]`: runs one cargo-fuzz target of
//! `fuzz/` (a workspace of its own) with a corpus seeded from `fixtures/`.
//!
//! cargo-fuzz needs nightly compiler flags; on a stable toolchain they are
//! unlocked with `RUSTC_BOOTSTRAP=1` for the fuzz build only. cargo-fuzz is
//! installed with `cargo install cargo-fuzz --locked` if it is missing.
//! libFuzzer runs with memory limits (`-rss_limit_mb`, `-malloc_limit_mb`),
//! so a length read from the input that drives an allocation is a crash.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::server::ChildGuard;
use crate::util::{cargo, display, root, run, step};

pub const USAGE: &str = "cargo xtask fuzz TARGET [--seconds N]   (TARGET: header_parse, inspect, v1_decrypt, v2_decrypt)";

/// The targets in `fuzz/fuzz_targets`, and the fixtures that seed each.
const TARGETS: &[(&str, &[Seed])] = &[
    ("header_parse", &[Seed::V1, Seed::V2]),
    ("inspect", &[Seed::V1, Seed::V2]),
    ("v1_decrypt", &[Seed::V1]),
    ("v2_decrypt", &[Seed::V2]),
];

/// Seed inputs larger than this are left out: they slow every mutation and
/// the small ones already cover every layout.
const MAX_SEED_LEN: u64 = 32 * 1024;
const RSS_LIMIT_MB: u32 = 512;
const MALLOC_LIMIT_MB: u32 = 64;

#[derive(Clone, Copy)]
enum Seed {
    /// `fixtures/seed-v1/**/*.object`: real objects of the original tool.
    V1,
    /// `fixtures/v2/*.object`: the v2 vectors, valid and invalid.
    V2,
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let mut target = None;
    let mut seconds = 60u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = it.next().context("--seconds needs a value")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value}: not a number"))?;
            }
            name if target.is_none() && !name.starts_with('-') => target = Some(name),
            other => bail!("unexpected argument `{other}`\nusage: {USAGE}"),
        }
    }
    let Some(target) = target else {
        bail!("which target?\nusage: {USAGE}");
    };
    let Some((_, seeds)) = TARGETS.iter().find(|(name, _)| *name == target) else {
        bail!("unknown fuzz target `{target}`\nusage: {USAGE}");
    };

    step("cargo-fuzz");
    ensure_cargo_fuzz()?;

    step("corpus");
    let corpus = root().join("fuzz").join("corpus").join(target);
    let copied = seed_corpus(&corpus, seeds)?;
    let have = std::fs::read_dir(&corpus)?.count();
    eprintln!(
        "{}: {have} inputs ({copied} seeds copied from fixtures/)",
        corpus.display()
    );

    step(&format!("fuzz {target} for {seconds} s"));
    let mut cmd = cargo(["fuzz", "run", "--debug-assertions", target]);
    cmd.arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"))
        .arg("-print_final_stats=1")
        .env("RUSTC_BOOTSTRAP", "1");
    let report = run_fuzzer(&mut cmd)?;
    eprintln!(
        "\nfuzz {target}: {} executions in {} s, outcome: {}",
        report.executions.map_or("?".into(), |n| n.to_string()),
        report.seconds,
        report.outcome
    );
    if !report.ok {
        bail!("fuzz target `{target}` failed: {}", report.outcome);
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let found = cargo(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        eprintln!("cargo-fuzz is installed");
        return Ok(());
    }
    run(
        "install cargo-fuzz",
        &mut cargo(["install", "cargo-fuzz", "--locked"]),
    )
}

/// Copies the seed fixtures into `corpus` (kept across runs, gitignored);
/// returns how many were new.
fn seed_corpus(corpus: &Path, seeds: &[Seed]) -> Result<usize> {
    std::fs::create_dir_all(corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let fixtures = root().join("fixtures");
    let mut files = Vec::new();
    for seed in seeds {
        match seed {
            Seed::V1 => {
                for set in read_dir(&fixtures.join("seed-v1"))? {
                    if set.is_dir() {
                        files.extend(objects_in(&set)?);
                    }
                }
            }
            Seed::V2 => files.extend(objects_in(&fixtures.join("v2"))?),
        }
    }
    let mut copied = 0;
    for file in files {
        if std::fs::metadata(&file)?.len() > MAX_SEED_LEN {
            continue;
        }
        // Prefix with the directory so set-a/obj-0 and set-b/obj-0 differ.
        let parent = file
            .parent()
            .and_then(Path::file_name)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = format!(
            "seed-{parent}-{}",
            file.file_name().unwrap().to_string_lossy()
        );
        let dest = corpus.join(name);
        if !dest.exists() {
            std::fs::copy(&file, &dest)
                .with_context(|| format!("copying {} to {}", file.display(), dest.display()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    paths.sort();
    Ok(paths)
}

fn objects_in(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(read_dir(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "object"))
        .collect())
}

struct Report {
    executions: Option<u64>,
    seconds: u64,
    outcome: String,
    ok: bool,
}

/// Runs libFuzzer, echoing its output, and picks the execution count and
/// any crash report out of it.
fn run_fuzzer(cmd: &mut Command) -> Result<Report> {
    eprintln!("$ RUSTC_BOOTSTRAP=1 {}", display(cmd));
    let start = Instant::now();
    // The guard stops libFuzzer if reading its output fails.
    let mut child = ChildGuard::spawn(
        "cargo fuzz",
        cmd.stdout(Stdio::inherit()).stderr(Stdio::piped()),
    )?;
    let stderr = child.child_mut().stderr.take().expect("piped");
    let mut executions = None;
    let mut problem = None;
    let mut artifact = None;
    let mut fuzz_seconds = None;
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        eprintln!("{line}");
        if let Some((n, secs)) = final_runs(&line) {
            executions = Some(n);
            fuzz_seconds = Some(secs);
        } else if let Some(n) = status_runs(&line) {
            executions = Some(n);
        }
        if problem.is_none() {
            problem = crash_kind(&line);
        }
        if let Some(path) = line.split("Test unit written to ").nth(1) {
            artifact = Some(path.trim().to_owned());
        }
    }
    let status = child.wait()?;
    // libFuzzer's own count excludes the build; else the wall clock.
    let seconds = fuzz_seconds.unwrap_or_else(|| start.elapsed().as_secs());
    let ok = status.success() && problem.is_none();
    let outcome = if ok {
        "no crash, hang or memory blow-up".to_owned()
    } else {
        let what = problem.unwrap_or_else(|| format!("libFuzzer exited with {status}"));
        match artifact {
            Some(path) => format!("{what} (input: {path})"),
            None => what,
        }
    };
    Ok(Report {
        executions,
        seconds,
        outcome,
        ok,
    })
}

/// `Done 123456 runs in 60 second(s)`: executions and seconds.
fn final_runs(line: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = line.strip_prefix("Done ")?.split(' ').collect();
    match words[..] {
        [runs, "runs", "in", secs, ..] => Some((runs.parse().ok()?, secs.parse().ok()?)),
        _ => None,
    }
}

/// `#123456<TAB>pulse  cov: ...` and the other status lines.
fn status_runs(line: &str) -> Option<u64> {
    let rest = line.strip_prefix('#')?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn crash_kind(line: &str) -> Option<String> {
    const KINDS: &[&str] = &[
        "ERROR: libFuzzer: deadly signal",
        "ERROR: libFuzzer: timeout",
        "ERROR: libFuzzer: out-of-memory",
        "ERROR: libFuzzer: malloc limit",
        "ERROR: libFuzzer: fuzz target exited",
        "ERROR: AddressSanitizer",
        "panicked at",
    ];
    KINDS
        .iter()
        .find(|k| line.contains(*k))
        .map(|_| line.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libfuzzer_lines() {
        assert_eq!(
            final_runs("Done 1234 runs in 10 second(s)"),
            Some((1234, 10))
        );
        assert_eq!(
            status_runs("#65536\tpulse  cov: 512 ft: 900 corp: 40/3Kb"),
            Some(65536)
        );
        assert_eq!(status_runs("INFO: Seed: 1"), None);
        assert!(crash_kind("==1== ERROR: libFuzzer: out-of-memory (malloc(99999999))").is_some());
        assert!(crash_kind("#1 INITED cov: 3").is_none());
    }
}
