//! Measurement: every command runs under `/usr/bin/time -v` (peak RSS,
//! client CPU); the wall time is measured here, the S3 server's CPU from
//! `/proc/PID/stat`, and KMS calls from moto's log and atrest's own
//! `kms call` debug lines. A row keeps every run; the report shows medians.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::bench::MIB;
use crate::util::{display, output, tail};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// KMS requests made by one run.
#[derive(Clone, Debug, Default)]
pub struct KmsCount {
    /// `POST /` requests in moto's log.
    pub requests: usize,
    /// atrest's `kms call` lines, by operation.
    pub ops: BTreeMap<String, usize>,
}

/// One command, run several times.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub name: String,
    pub direction: Direction,
    /// A plain transfer: a candidate for the ceiling.
    pub plain: bool,
    /// Another tool that encrypts (rclone crypt): neither a ceiling nor
    /// atrest.
    pub peer: bool,
    /// The atrest object format, for atrest rows.
    pub format: Option<String>,
    pub bytes: u64,
    pub command: String,
    pub secs: Vec<f64>,
    pub rss_kib: Vec<u64>,
    /// CPU seconds (user + system) of the command and its children.
    pub client_cpu: Vec<f64>,
    /// CPU seconds the S3 server (s3s-fs) spent during the run.
    pub server_cpu: Vec<f64>,
    pub kms: Vec<KmsCount>,
    pub error: Option<String>,
}

impl Measurement {
    pub fn median_secs(&self) -> Option<f64> {
        if self.error.is_some() {
            return None;
        }
        median(&self.secs)
    }

    /// Median CPU seconds of the client and of the server.
    pub fn median_cpu(&self) -> Option<(f64, f64)> {
        Some((median(&self.client_cpu)?, median(&self.server_cpu)?))
    }

    pub fn mib_s(&self) -> Option<f64> {
        self.median_secs().map(|t| self.bytes as f64 / MIB / t)
    }

    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.rss_kib.iter().max().map(|&k| k as f64 / 1024.0)
    }

    /// KMS calls per run, if every run made the same number; else the list.
    pub fn kms_summary(&self) -> Option<String> {
        // Only atrest talks to KMS.
        self.format.as_ref()?;
        let first = self.kms.first()?;
        let same = self.kms.iter().all(|k| k.requests == first.requests);
        let ops: Vec<String> = first
            .ops
            .iter()
            .map(|(op, n)| format!("{op}×{n}"))
            .collect();
        let requests = if same {
            first.requests.to_string()
        } else {
            let all: Vec<String> = self.kms.iter().map(|k| k.requests.to_string()).collect();
            all.join("/")
        };
        Some(if ops.is_empty() {
            requests
        } else {
            format!("{requests} ({})", ops.join(", "))
        })
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// What a row measures, for the report's ratios.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    /// A transfer without encryption (curl, aws s3 cp): a candidate for the
    /// ceiling.
    Plain,
    /// atrest, writing or reading this object format.
    Atrest(&'a str),
    /// Another tool that encrypts (rclone crypt): neither a ceiling nor
    /// atrest.
    Peer,
}

/// One row to measure: its name in the report and how it runs.
pub struct Row<'a> {
    pub name: String,
    pub direction: Direction,
    pub kind: Kind<'a>,
    /// Bytes moved by one run (the file's size).
    pub bytes: u64,
    pub runs: usize,
}

impl<'a> Row<'a> {
    pub fn upload(name: impl Into<String>, kind: Kind<'a>, bytes: u64, runs: usize) -> Self {
        Row {
            name: name.into(),
            direction: Direction::Upload,
            kind,
            bytes,
            runs,
        }
    }

    pub fn download(name: impl Into<String>, kind: Kind<'a>, bytes: u64, runs: usize) -> Self {
        Row {
            direction: Direction::Download,
            ..Row::upload(name, kind, bytes, runs)
        }
    }
}

/// The `after` of a row that checks nothing after a run.
pub fn no_check(_run: usize) -> Result<()> {
    Ok(())
}

impl Ctx<'_> {
    /// Runs `make()` `row.runs` times under `/usr/bin/time -v`; `after(run)`
    /// runs after each successful run (checks, cleanup). A failed run ends
    /// the row with its error.
    pub(super) fn measure(
        &self,
        row: &Row,
        make: impl Fn() -> Command,
        mut after: impl FnMut(usize) -> Result<()>,
    ) -> Measurement {
        let &Row {
            ref name,
            direction,
            kind,
            bytes,
            runs,
        } = row;
        let mut m = Measurement {
            name: name.clone(),
            direction,
            plain: matches!(kind, Kind::Plain),
            peer: matches!(kind, Kind::Peer),
            format: match kind {
                Kind::Atrest(format) => Some(format.to_owned()),
                Kind::Plain | Kind::Peer => None,
            },
            bytes,
            command: display(&make()),
            secs: Vec::new(),
            rss_kib: Vec::new(),
            client_cpu: Vec::new(),
            server_cpu: Vec::new(),
            kms: Vec::new(),
            error: None,
        };
        eprintln!("{name}: $ {}", m.command);
        for i in 0..runs {
            let mut cmd = make();
            self.servers.env.apply(&mut cmd);
            match self.timed(cmd).and_then(|r| after(i).map(|()| r)) {
                Ok(run) => {
                    eprintln!(
                        "  run {}: {:.2} s, {:.0} MiB/s, peak RSS {:.1} MiB, CPU {:.2} s + server {:.2} s, KMS requests {}",
                        i + 1,
                        run.secs,
                        bytes as f64 / MIB / run.secs,
                        run.rss_kib as f64 / 1024.0,
                        run.client_cpu,
                        run.server_cpu,
                        run.kms.requests
                    );
                    m.secs.push(run.secs);
                    m.rss_kib.push(run.rss_kib);
                    m.client_cpu.push(run.client_cpu);
                    m.server_cpu.push(run.server_cpu);
                    m.kms.push(run.kms);
                }
                Err(e) => {
                    eprintln!("  run {} FAILED: {e:#}", i + 1);
                    m.error = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        m
    }

    /// One run of `cmd`.
    fn timed(&self, cmd: Command) -> Result<Run> {
        // Write back what earlier runs left dirty (the server's objects, files
        // on disk) now, not during this run: in one full run it slowed the
        // rows after the uploads and the disk rows by up to 40%.
        run_quiet("sync", &mut Command::new("sync"))?;
        let time_out = self.dir.join("time-v.txt");
        let stderr_path = self.dir.join("stderr.txt");
        let mut wrapped = Command::new("/usr/bin/time");
        wrapped
            .arg("-v")
            .arg("-o")
            .arg(&time_out)
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_path)?);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            wrapped.current_dir(d);
        }
        let before = moto_requests(self.servers.moto.log());
        let server_before = cpu_secs(self.servers.s3.pid())?;
        let start = Instant::now();
        let status = wrapped
            .status()
            .context("running /usr/bin/time (install the `time` package)")?;
        let secs = start.elapsed().as_secs_f64();
        let server_cpu = cpu_secs(self.servers.s3.pid())? - server_before;
        std::thread::sleep(Duration::from_millis(50));
        let requests = moto_requests(self.servers.moto.log()).saturating_sub(before);
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if !status.success() {
            bail!(
                "`{}` exited with {status}:\n{}",
                display(&cmd),
                tail(&stderr_path, 15)
            );
        }
        let time_v = std::fs::read_to_string(&time_out)?;
        let field = |name: &str| -> Result<f64> {
            time_v
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(name)
                        .and_then(|v| v.trim().parse().ok())
                })
                .with_context(|| format!("no `{name}` in the output of /usr/bin/time -v"))
        };
        let rss_kib = field("Maximum resident set size (kbytes):")? as u64;
        let client_cpu = field("User time (seconds):")? + field("System time (seconds):")?;
        let mut ops = BTreeMap::new();
        for line in stderr.lines().filter(|l| l.contains("kms call")) {
            let op = line
                .split("op=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("?")
                .trim_matches('"')
                .to_owned();
            *ops.entry(op).or_insert(0) += 1;
        }
        Ok(Run {
            secs,
            rss_kib,
            client_cpu,
            server_cpu,
            kms: KmsCount { requests, ops },
        })
    }
}

/// What one run of a command measured.
struct Run {
    secs: f64,
    rss_kib: u64,
    client_cpu: f64,
    server_cpu: f64,
    kms: KmsCount,
}

/// Lines of moto's log that are KMS requests (`POST /`).
fn moto_requests(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.lines().filter(|l| l.contains("\"POST / HTTP")).count())
        .unwrap_or(0)
}

/// Runs `cmd`, its output shown only if it fails.
pub fn run_quiet(step: &str, cmd: &mut Command) -> Result<()> {
    output(step, cmd).map(drop)
}

/// CPU seconds (user + system) process `pid` has used so far, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks).
fn cpu_secs(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |field: usize| -> Result<f64> {
        fields
            .get(field - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no field {field} in {path}"))
    };
    Ok((ticks(14)? + ticks(15)?) / clock_ticks_per_sec())
}

/// `getconf CLK_TCK` (100 on Linux, where the kernel fixes it for /proc).
fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let mut m = Measurement {
            name: String::new(),
            direction: Direction::Upload,
            plain: true,
            peer: false,
            format: None,
            bytes: 1 << 20,
            command: String::new(),
            secs: vec![3.0, 1.0, 2.0],
            rss_kib: vec![1024, 4096],
            client_cpu: vec![0.5, 0.75],
            server_cpu: vec![2.0, 3.0],
            kms: Vec::new(),
            error: None,
        };
        assert_eq!(m.median_secs(), Some(2.0));
        assert_eq!(m.mib_s(), Some(0.5));
        assert_eq!(m.peak_rss_mib(), Some(4.0));
        assert_eq!(m.median_cpu(), Some((0.625, 2.5)));
        m.secs.push(4.0);
        assert_eq!(m.median_secs(), Some(2.5));
    }
}
