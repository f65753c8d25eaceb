//! `cargo xtask bench`: the atrest side of the peer table, in one run.
//!
//! 1. In process: `openssl speed` (one thread, 16 KiB blocks) as the yardstick,
//!    then the criterion benches of `atrest-crypto` (`crates/crypto/benches`),
//!    read back from `target/criterion/**/new/{benchmark,estimates}.json`.
//! 2. End to end ([`e2e`]): the release binary (or the one given with
//!    `--atrest PATH`, [`binary`]) against a local S3 server
//!    (`s3s-fs`, installed into `target/bench-tools`) and KMS from
//!    moto_server, beside plain `curl --aws-sigv4` transfers of the same
//!    files (the protocol ceiling) and `aws s3 cp` when present; medians of
//!    several runs, peak RSS from `/usr/bin/time -v`, KMS calls per command.
//! 3. [`report`]: `target/bench/report.md` and `report.json`.

mod binary;
mod e2e;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util::{self, cargo, run, step};

pub const USAGE: &str =
    "cargo xtask bench [--quick] [--sizes 64M,1G[,4G]] [--runs N] [--only crypto|e2e] [--atrest PATH]";

const MIB: f64 = 1024.0 * 1024.0;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// One run, 64 MiB only, short openssl and criterion runs.
    pub quick: bool,
    /// End-to-end file sizes in bytes.
    pub sizes: Vec<u64>,
    /// Runs per end-to-end measurement (the median is reported).
    pub runs: usize,
    pub crypto: bool,
    pub e2e: bool,
    /// The atrest binary to measure instead of building the release one.
    pub atrest: Option<PathBuf>,
    /// The command line, as typed, for the report.
    pub command: String,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        quick: false,
        sizes: vec![64 << 20, 1 << 30],
        runs: 3,
        crypto: true,
        e2e: true,
        atrest: None,
        command: std::iter::once("cargo xtask bench")
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut sizes_given = false;
    let mut runs_given = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{arg} needs a value\nusage: {USAGE}"))
        };
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--sizes" => {
                opts.sizes = value()?.split(',').map(parse_size).collect::<Result<_>>()?;
                sizes_given = true;
            }
            "--runs" => {
                opts.runs = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .context("--runs needs a positive number")?;
                runs_given = true;
            }
            "--only" => match value()?.as_str() {
                "crypto" => opts.e2e = false,
                "e2e" => opts.crypto = false,
                other => bail!("--only takes crypto or e2e, not `{other}`\nusage: {USAGE}"),
            },
            "--atrest" => opts.atrest = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument `{other}`\nusage: {USAGE}"),
        }
    }
    if opts.quick {
        if !sizes_given {
            opts.sizes = vec![64 << 20];
        }
        if !runs_given {
            opts.runs = 1;
        }
    }
    Ok(opts)
}

/// `64M`, `1G`, `512K`, or plain bytes.
fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 10),
        Some((i, 'M' | 'm')) => (&s[..i], 20),
        Some((i, 'G' | 'g')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("bad size `{s}` (use e.g. 64M or 1G)"))?;
    Ok(n << shift)
}

/// `64M`, `1G`: the label of a size in tables and object keys.
pub fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => format!("{b}B"),
    }
}

pub fn bench(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let dir = util::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut report = report::Report::new(&opts);

    let atrest = binary::AtrestBinary::resolve(opts.atrest.as_deref())?;
    let bin = atrest.path.clone();
    report.atrest = Some(atrest);

    step("openssl speed (1 thread, 16 KiB blocks)");
    report.openssl = openssl_speed(if opts.quick { 1 } else { 3 })?;

    if opts.crypto {
        step("criterion benches of atrest-crypto");
        report.crypto = criterion(&opts)?;
    }
    if opts.e2e {
        report.e2e = Some(e2e::end_to_end(&opts, &bin, &dir)?);
    }

    report.finish();
    let md = dir.join("report.md");
    let json = dir.join("report.json");
    std::fs::write(&md, report.markdown())?;
    std::fs::write(&json, serde_json::to_string_pretty(&report.json())? + "\n")?;
    step("report");
    eprintln!(
        "{}\nwrote {} and {}",
        report.markdown(),
        md.display(),
        json.display()
    );
    Ok(())
}

/// One `openssl speed -evp` figure.
#[derive(Clone, Debug)]
pub struct OpensslSpeed {
    pub cipher: &'static str,
    pub decrypt: bool,
    pub mib_s: f64,
    pub command: String,
}

fn openssl_speed(seconds: u32) -> Result<Vec<OpensslSpeed>> {
    let mut out = Vec::new();
    for (cipher, decrypt) in [
        ("aes-256-gcm", false),
        ("aes-256-gcm", true),
        ("aes-256-cbc", false),
        ("aes-256-cbc", true),
    ] {
        let mut cmd = Command::new("openssl");
        cmd.arg("speed");
        if decrypt {
            cmd.arg("-decrypt");
        }
        cmd.args(["-evp", cipher, "-bytes", "16384", "-seconds"])
            .arg(seconds.to_string())
            .stdin(Stdio::null());
        let line = util::display(&cmd);
        eprintln!("$ {line}");
        let output = util::output("openssl speed", &mut cmd)?;
        let mib_s = parse_openssl_speed(&output)
            .with_context(|| format!("cannot read the result of `{line}`:\n{output}"))?;
        eprintln!("  {mib_s:.0} MiB/s");
        out.push(OpensslSpeed {
            cipher,
            decrypt,
            mib_s,
            command: line,
        });
    }
    Ok(out)
}

/// The last figure of `openssl speed` output ("AES-256-GCM  2990216.53k",
/// in 1000s of bytes per second), in MiB/s.
fn parse_openssl_speed(output: &str) -> Option<f64> {
    let last = output.lines().rev().find(|l| l.trim_end().ends_with('k'))?;
    let figure = last.split_whitespace().last()?.strip_suffix('k')?;
    Some(figure.parse::<f64>().ok()? * 1000.0 / MIB)
}

/// One criterion benchmark: group (`v2_encrypt`), id (`64KiB/1thread`), and
/// the median throughput.
#[derive(Clone, Debug)]
pub struct CryptoResult {
    pub group: String,
    pub id: String,
    pub mib_s: f64,
}

fn criterion(opts: &Options) -> Result<Vec<CryptoResult>> {
    let started = SystemTime::now();
    let mib = if opts.quick { "16" } else { "64" };
    let mut cmd = cargo(["bench", "-p", "atrest-crypto", "--bench", "crypto"]);
    cmd.env("ATREST_BENCH_MIB", mib);
    eprintln!("(ATREST_BENCH_MIB={mib}: every iteration processes {mib} MiB)");
    run("criterion", &mut cmd)?;
    let root = util::target_dir().join("criterion");
    let mut found = Vec::new();
    collect_criterion(&root, started, &mut found)?;
    if found.is_empty() {
        bail!("no fresh criterion results under {}", root.display());
    }
    found.sort_by(|a, b| (&a.group, &a.id).cmp(&(&b.group, &b.id)));
    Ok(found)
}

/// Every `new/` directory under `dir` written since `since`.
fn collect_criterion(dir: &Path, since: SystemTime, out: &mut Vec<CryptoResult>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let estimates = path.join("estimates.json");
            let fresh = std::fs::metadata(&estimates)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if fresh {
                out.push(read_criterion(&path)?);
            }
        } else {
            collect_criterion(&path, since, out)?;
        }
    }
    Ok(())
}

fn read_criterion(new: &Path) -> Result<CryptoResult> {
    let read = |name: &str| -> Result<Value> {
        let path: PathBuf = new.join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let bench = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let median_ns = estimates["median"]["point_estimate"]
        .as_f64()
        .context("estimates.json has no median")?;
    let bytes = bench["throughput"]["Bytes"]
        .as_f64()
        .context("benchmark.json has no byte throughput")?;
    let group = bench["group_id"].as_str().unwrap_or_default().to_owned();
    let function = bench["function_id"].as_str().unwrap_or_default();
    let id = match bench["value_str"].as_str() {
        Some(v) => format!("{function}/{v}"),
        None => function.to_owned(),
    };
    Ok(CryptoResult {
        group,
        id,
        mib_s: bytes / MIB / (median_ns / 1e9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("1T").is_err());
        assert_eq!(size_label(64 << 20), "64M");
        assert_eq!(size_label(1 << 30), "1G");
        assert_eq!(size_label(1000), "1000B");
    }

    #[test]
    fn openssl_output() {
        let out = "The 'numbers' are in 1000s of bytes per second processed.\n\
                   type          16384 bytes\n\
                   AES-256-GCM    2990216.53k\n";
        let mib = parse_openssl_speed(out).unwrap();
        assert!((mib - 2990216.53 * 1000.0 / MIB).abs() < 1e-6);
        assert_eq!(parse_openssl_speed("nothing"), None);
    }
}
