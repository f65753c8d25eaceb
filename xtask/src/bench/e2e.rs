//! End to end: the release binary against a local S3 server and moto's KMS,
//! beside plain transfers of the same files.
//!
//! S3 is `s3s-fs` (crates.io, installed into `target/bench-tools`): a
//! Rust server that stores objects as files, far faster than moto's S3. KMS
//! is moto_server. Every command runs under `/usr/bin/time -v` (peak RSS);
//! the wall time is measured here. KMS calls are counted twice: from
//! moto's request log (every `POST /` is a KMS request, S3 going elsewhere)
//! and from atrest's own `kms call` debug lines (`RUST_LOG=atrest_kms=debug`),
//! which name the operation.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{size_label, Options, MIB};
use crate::moto::{self, answers_http, free_port, Moto};
use crate::util::{self, cargo, display, output, run, step, tail};

pub const S3S_FS_VERSION: &str = "0.14.1";
const ACCESS_KEY: &str = "atrestbench";
const SECRET_KEY: &str = "atrestbenchsecret";
const BUCKET: &str = "atrest-bench";
const REGION: &str = "us-east-1";
/// Concurrent range requests of the multi-stream plain download: atrest's
/// default streams into a file (the harness also runs half as many).
pub const RANGED_STREAMS: u64 = 8;
/// Files larger than this are measured once, atrest and single-stream curl
/// only: they are there for peak RSS.
const FULL_LIMIT: u64 = 1 << 30;
/// The small object of the start-up round trip.
pub const SMALL: u64 = 1024;

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

/// All end-to-end results.
#[derive(Debug)]
pub struct E2e {
    pub server: String,
    pub formats: Vec<String>,
    pub sizes: Vec<(u64, Vec<Measurement>)>,
    pub small: Vec<Measurement>,
    pub notes: Vec<String>,
}

pub fn end_to_end(opts: &Options, bin: &Path, dir: &Path) -> Result<E2e> {
    step("s3s-fs (local S3 server)");
    let s3s_bin = ensure_s3s_fs()?;
    step("moto_server (KMS)");
    moto::ensure_venv()?;
    let moto = Moto::start()?;

    let data = dir.join("s3s-data");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("clearing {}", data.display()))?;
    }
    // s3s-fs: a bucket is a directory under its root.
    std::fs::create_dir_all(data.join(BUCKET))?;
    let server = S3sFs::start(&s3s_bin, &data, &dir.join("s3s-fs.log"))?;
    let env = Env {
        s3: server.endpoint(),
        kms: moto.endpoint(),
        nowhere: util::target_dir().join("xtask-no-aws-config"),
    };

    step("KMS key and data.key");
    let mut py = Command::new(moto::python());
    py.arg("-c")
        .arg(CREATE_KEY_PY)
        .arg(&env.kms)
        .stdin(Stdio::null());
    env.apply(&mut py);
    let key_id = output("create KMS key", &mut py)?.trim().to_owned();
    eprintln!("KMS key {key_id}");
    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let mut create = Command::new(bin);
    create.args(["create-data-key", &key_id]).current_dir(&work);
    env.apply(&mut create);
    run("create-data-key", &mut create)?;

    let help = output(
        "atrest encrypt-with-kms --help",
        Command::new(bin).args(["encrypt-with-kms", "--help"]),
    )?;
    let formats = help_formats(&help);
    let has_key_flag = help.lines().any(|l| l.trim_start().starts_with("--key "));
    eprintln!("formats listed by `atrest encrypt-with-kms --help`: {formats:?}");
    let aws_cli = tool_version("aws", &["--version"]);

    let ctx = Ctx {
        bin,
        server: &server,
        work: &work,
        env: &env,
        moto: &moto,
        key_id: &key_id,
        has_key_flag,
        dir,
    };
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    let mut notes = Vec::new();
    if !formats.iter().any(|f| f == "v2") {
        notes.push(
            "`atrest encrypt-with-kms --help` lists no v2 format in this build: v2 end to end awaits the merge of the v2 CLI."
                .to_owned(),
        );
    }
    if aws_cli.is_none() {
        notes.push("the AWS CLI is not installed: no `aws s3 cp` rows.".to_owned());
    }
    let rclone = tool_version("rclone", &["version"]);
    if rclone.is_none() {
        notes.push(
            "rclone is not installed: no rclone crypt rows (optional; Debian package `rclone`)."
                .to_owned(),
        );
    }
    let rclone_env = match &rclone {
        Some(version) => Some(RcloneEnv::new(&env, version)?),
        None => None,
    };

    let mut sizes = Vec::new();
    for &size in &opts.sizes {
        let label = size_label(size);
        step(&format!("end to end, {label}"));
        let file = ensure_file(&files, size)?;
        let full = size <= FULL_LIMIT;
        let runs = if full { opts.runs } else { 1 };
        let mut rows = Vec::new();
        rows.extend(plain_uploads(
            &ctx,
            &file,
            size,
            runs,
            full && aws_cli.is_some(),
        )?);
        if full && size > PART_SIZE {
            rows.push(plain_multipart_upload(&ctx, &file, size, runs)?);
        }
        for f in &formats {
            rows.push(atrest_encrypt(&ctx, &file, size, f, runs, &[])?);
        }
        if size > PART_SIZE && formats.iter().any(|f| f == "v2") {
            rows.push(atrest_encrypt(&ctx, &file, size, "v2", runs, &SINGLE_PUT)?);
        }
        let rclone_env = rclone_env.as_ref().filter(|_| full);
        if let Some(r) = rclone_env {
            rows.push(rclone_upload(&ctx, r, &file, size, runs));
        }
        rows.extend(plain_downloads(
            &ctx,
            size,
            runs,
            full,
            full && aws_cli.is_some(),
        )?);
        for f in &formats {
            rows.extend(atrest_decrypt(&ctx, &file, size, f, runs)?);
        }
        if let Some(r) = rclone_env {
            rows.push(rclone_download(&ctx, r, &file, size, runs));
        }
        sizes.push((size, rows));
        // The next size's objects need the disk space (4 GiB ones ~20 GiB).
        clear_dir(&data.join(BUCKET))?;
    }

    step(&format!("start-up and a {SMALL}-byte round trip"));
    let small_file = ensure_file(&files, SMALL)?;
    let small_runs = opts.runs.max(5);
    let mut small = Vec::new();
    if let Some(f) = formats.first() {
        let f = formats.iter().find(|f| *f == "v2").unwrap_or(f);
        small.push(atrest_encrypt(
            &ctx,
            &small_file,
            SMALL,
            f,
            small_runs,
            &[],
        )?);
        small.extend(
            atrest_decrypt(&ctx, &small_file, SMALL, f, small_runs)?
                .into_iter()
                .filter(|m| m.name.ends_with("to a file")),
        );
    }
    if aws_cli.is_some() {
        small.extend(
            plain_uploads(&ctx, &small_file, SMALL, small_runs, true)?
                .into_iter()
                .filter(|m| m.name.starts_with("aws")),
        );
        small.extend(
            plain_downloads(&ctx, SMALL, small_runs, false, true)?
                .into_iter()
                .filter(|m| m.name.starts_with("aws")),
        );
    }

    drop(server);
    drop(moto);
    Ok(E2e {
        server: format!(
            "s3s-fs {S3S_FS_VERSION} (crates.io build, `--features binary`) on 127.0.0.1, data in {}",
            data.display()
        ),
        formats,
        sizes,
        small,
        notes,
    })
}

const CREATE_KEY_PY: &str = r#"
import sys, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="us-east-1")
print(kms.create_key(Description="atrest bench")["KeyMetadata"]["KeyId"])
"#;

/// The values of `--format` listed by clap's help (long or short form).
fn help_formats(help: &str) -> Vec<String> {
    let mut formats = Vec::new();
    let mut in_list = false;
    let mut in_format = false;
    for line in help.lines() {
        let t = line.trim();
        if t.starts_with("--format") {
            in_format = true;
            if let Some(rest) = t.split("[possible values: ").nth(1) {
                let list = rest.split(']').next().unwrap_or_default();
                formats.extend(list.split(',').map(|v| v.trim().to_owned()));
                break;
            }
            continue;
        }
        if in_format && t.starts_with("--") {
            break;
        }
        if in_format && t.starts_with("[possible values: ") {
            let list = t["[possible values: ".len()..].trim_end_matches(']');
            formats.extend(list.split(',').map(|v| v.trim().to_owned()));
            break;
        }
        if in_format && t.starts_with("Possible values:") {
            in_list = true;
            continue;
        }
        if in_list {
            match t.strip_prefix("- ") {
                Some(v) => formats.push(v.split(':').next().unwrap_or(v).trim().to_owned()),
                None => break,
            }
        }
    }
    formats
}

pub fn tool_version(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// Endpoints and the environment every child gets.
struct Env {
    s3: String,
    kms: String,
    nowhere: PathBuf,
}

impl Env {
    /// Removes every inherited `AWS_*` variable (`AWS_PROFILE`,
    /// `AWS_CA_BUNDLE`, ...) and points S3 at s3s-fs, KMS at moto.
    fn apply(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ENDPOINT_URL_S3", &self.s3)
            .env("AWS_ENDPOINT_URL_KMS", &self.kms)
            .env("AWS_CONFIG_FILE", self.nowhere.join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.nowhere.join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "atrest_kms=debug");
    }
}

struct Ctx<'a> {
    bin: &'a Path,
    server: &'a S3sFs,
    work: &'a Path,
    env: &'a Env,
    moto: &'a Moto,
    key_id: &'a str,
    has_key_flag: bool,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn url(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{key}", self.env.s3)
    }

    fn curl(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-f", "--aws-sigv4"])
            .arg(format!("aws:amz:{REGION}:s3"))
            .arg("--user")
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"))
            // curl 7.88 signs no payload hash of its own; s3s-fs wants one.
            // (Any extra header is signed too: so no `-H Expect:`.)
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
        cmd
    }

    fn aws(&self) -> Command {
        let mut cmd = Command::new("aws");
        cmd.arg("--endpoint-url")
            .arg(&self.env.s3)
            .args(["s3", "cp", "--only-show-errors"]);
        cmd
    }

    fn atrest(&self) -> Command {
        let mut cmd = Command::new(self.bin);
        cmd.current_dir(self.work);
        cmd
    }

    /// Runs `make(run)` `runs` times under `/usr/bin/time -v`; `after` runs
    /// after each successful run (checks, cleanup).
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        name: &str,
        direction: Direction,
        format: Option<&str>,
        bytes: u64,
        runs: usize,
        make: impl Fn() -> Command,
        mut after: impl FnMut(usize) -> Result<()>,
    ) -> Measurement {
        let mut m = Measurement {
            name: name.to_owned(),
            direction,
            plain: format.is_none(),
            peer: false,
            format: format.map(str::to_owned),
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
            self.env.apply(&mut cmd);
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
        let before = moto_requests(self.moto.log());
        let server_before = self.server.cpu_secs()?;
        let start = Instant::now();
        let status = wrapped
            .status()
            .context("running /usr/bin/time (install the `time` package)")?;
        let secs = start.elapsed().as_secs_f64();
        let server_cpu = self.server.cpu_secs()? - server_before;
        std::thread::sleep(Duration::from_millis(50));
        let requests = moto_requests(self.moto.log()).saturating_sub(before);
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

fn plain_uploads(
    ctx: &Ctx,
    file: &Path,
    size: u64,
    runs: usize,
    aws: bool,
) -> Result<Vec<Measurement>> {
    let label = size_label(size);
    let url = ctx.url(&format!("plain-{label}"));
    let mut rows = vec![ctx.measure(
        "curl PUT (1 stream)",
        Direction::Upload,
        None,
        size,
        runs,
        || {
            let mut c = ctx.curl();
            c.args(["-o", "/dev/null", "-T"]).arg(file).arg(&url);
            c
        },
        |_| Ok(()),
    )];
    if aws {
        rows.push(ctx.measure(
            "aws s3 cp (upload)",
            Direction::Upload,
            None,
            size,
            runs,
            || {
                let mut c = ctx.aws();
                c.arg(file).arg(format!("s3://{BUCKET}/aws-{label}"));
                c
            },
            |_| Ok(()),
        ));
    }
    Ok(rows)
}

/// atrest's default part size and concurrency, for the plain multipart
/// upload that has the same shape as atrest's.
const PART_SIZE: u64 = 8 << 20;
const PARTS_IN_FLIGHT: u64 = 4;

/// A plain multipart upload with curl: the file pre-split into 8 MiB parts
/// (not timed), CreateMultipartUpload, the parts 4 at a time (xargs -P),
/// CompleteMultipartUpload. On s3s-fs the completion reads every part back
/// and copies it into the object, so this is the ceiling for any multipart
/// upload to this server.
fn plain_multipart_upload(ctx: &Ctx, file: &Path, size: u64, runs: usize) -> Result<Measurement> {
    let label = size_label(size);
    let dir = ctx.dir.join(format!("multipart-{label}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts)?;
    run(
        "split the file into parts",
        Command::new("split")
            .args(["-b", &PART_SIZE.to_string(), "-d", "-a", "5"])
            .arg(file)
            .arg(parts.join("part-")),
    )?;
    let curl = display(&ctx.curl());
    let url = ctx.url(&format!("multipart-{label}"));
    // One part: `sh part.sh NUMBER FILE`, with URL and ID from the caller.
    std::fs::write(
        dir.join("part.sh"),
        format!(
            "set -eu\nexec {curl} -o /dev/null -D \"parts/$2.h\" -T \"parts/$2\" \"$URL?partNumber=$1&uploadId=$ID\"\n"
        ),
    )?;
    std::fs::write(
        dir.join("upload.sh"),
        format!(
            r#"set -eu
export URL='{url}'
ID=$({curl} -X POST "$URL?uploads=" | sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p')
test -n "$ID"
export ID
rm -f parts/*.h
ls parts | awk '{{print NR, $0}}' | xargs -P {PARTS_IN_FLIGHT} -n 2 sh part.sh
{{
  echo '<CompleteMultipartUpload>'
  n=0
  for f in $(ls parts | grep -v '\.h$'); do
    n=$((n+1))
    etag=$(grep -i '^etag:' "parts/$f.h" | tr -d '\r' | cut -d' ' -f2-)
    echo "<Part><PartNumber>$n</PartNumber><ETag>$etag</ETag></Part>"
  done
  echo '</CompleteMultipartUpload>'
}} > complete.xml
{curl} -o /dev/null -X POST --data-binary @complete.xml "$URL?uploadId=$ID"
"#
        ),
    )?;
    let m = ctx.measure(
        &format!("curl multipart PUT ({PARTS_IN_FLIGHT} × 8 MiB parts in flight)"),
        Direction::Upload,
        None,
        size,
        runs,
        || {
            let mut c = Command::new("sh");
            c.arg("upload.sh").current_dir(&dir);
            c
        },
        |_| Ok(()),
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(m)
}

fn plain_downloads(
    ctx: &Ctx,
    size: u64,
    runs: usize,
    full: bool,
    aws: bool,
) -> Result<Vec<Measurement>> {
    let label = size_label(size);
    let url = ctx.url(&format!("plain-{label}"));
    let mut rows = Vec::new();
    if size > SMALL {
        rows.push(ctx.measure(
            "curl GET (1 stream)",
            Direction::Download,
            None,
            size,
            runs,
            || {
                let mut c = ctx.curl();
                c.args(["-o", "/dev/null"]).arg(&url);
                c
            },
            |_| Ok(()),
        ));
    }
    // As many streams as atrest's default into a file, and half as many.
    for streams in [RANGED_STREAMS / 2, RANGED_STREAMS] {
        if !(full && size > SMALL) {
            break;
        }
        let part = size.div_ceil(streams);
        let curl = display(&ctx.curl());
        // Start every range, then wait for each and fail if any failed.
        let mut script = String::from("pids=; ");
        for i in 0..streams {
            let end = ((i + 1) * part).min(size) - 1;
            script.push_str(&format!(
                "{curl} -o /dev/null -r {}-{end} '{url}' & pids=\"$pids $!\"; ",
                i * part
            ));
        }
        script.push_str("for p in $pids; do wait $p || exit 1; done");
        rows.push(ctx.measure(
            &format!("curl GET ({streams} ranged streams)"),
            Direction::Download,
            None,
            size,
            runs,
            || {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&script);
                c
            },
            |_| Ok(()),
        ));
    }
    if aws {
        let out = ctx.work.join(format!("aws-{label}.out"));
        rows.push(ctx.measure(
            "aws s3 cp (download)",
            Direction::Download,
            None,
            size,
            runs,
            || {
                let mut c = ctx.aws();
                c.arg(format!("s3://{BUCKET}/aws-{label}")).arg(&out);
                c
            },
            |_| std::fs::remove_file(&out).context("aws s3 cp wrote no file"),
        ));
    }
    Ok(rows)
}

/// Objects up to S3's largest PUT go up in one streaming PutObject.
const SINGLE_PUT: [&str; 2] = ["--multipart-threshold", "5120"];

/// `extra` flags name a variant (its object gets its own key).
fn atrest_encrypt(
    ctx: &Ctx,
    file: &Path,
    size: u64,
    format: &str,
    runs: usize,
    extra: &[&str],
) -> Result<Measurement> {
    let variant = if extra.is_empty() { "" } else { "-variant" };
    let uri = format!(
        "s3://{BUCKET}/atrest-{format}-{}{variant}",
        size_label(size)
    );
    let mut name = format!("atrest encrypt-with-kms --format {format}");
    for flag in extra {
        name = format!("{name} {flag}");
    }
    Ok(ctx.measure(
        &name,
        Direction::Upload,
        Some(format),
        size,
        runs,
        || {
            let mut c = ctx.atrest();
            c.arg("encrypt-with-kms").arg(file).arg(&uri);
            c.args(["--format", format]).args(extra);
            if ctx.has_key_flag && format != "v1" {
                c.args(["--key", ctx.key_id]);
            }
            c
        },
        |_| Ok(()),
    ))
}

/// Three rows: decrypting to a file on tmpfs (`/dev/shm`, when there is
/// one: the transfer and decryption without the disk), to a file beside the
/// others (adding the disk write and the `fsync` before the rename), and to
/// stdout (`-`, which the harness points at /dev/null, the sink of the
/// plain downloads; stdout takes the ordered path, not positional writes).
fn atrest_decrypt(
    ctx: &Ctx,
    file: &Path,
    size: u64,
    format: &str,
    runs: usize,
) -> Result<Vec<Measurement>> {
    let label = size_label(size);
    let uri = format!("s3://{BUCKET}/atrest-{format}-{label}");
    let name = format!("atrest-{format}-{label}.out");
    let to_file = |what: &str, out: PathBuf| {
        ctx.measure(
            &format!("atrest decrypt-with-kms ({format}) to {what}"),
            Direction::Download,
            Some(format),
            size,
            runs,
            || {
                let mut c = ctx.atrest();
                c.arg("decrypt-with-kms").arg(&uri).arg(&out);
                c
            },
            |run| {
                if run == 0 {
                    same_contents(file, &out)?;
                }
                std::fs::remove_file(&out).context("removing the decrypted file")
            },
        )
    };
    let mut rows = Vec::new();
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        rows.push(to_file("a file on tmpfs", shm.join(&name)));
    }
    rows.push(to_file("a file", ctx.work.join(&name)));
    rows.push(ctx.measure(
        &format!("atrest decrypt-with-kms ({format}) to stdout (/dev/null)"),
        Direction::Download,
        Some(format),
        size,
        runs,
        || {
            let mut c = ctx.atrest();
            c.arg("decrypt-with-kms").arg(&uri).arg("-");
            c
        },
        |_| Ok(()),
    ));
    Ok(rows)
}

/// rclone (Debian's package) configured from the environment only: an S3
/// remote on s3s-fs and a crypt remote over it. The Debian build fails when
/// `AWS_CA_BUNDLE` is set: `Env::apply` removes every `AWS_*` variable.
struct RcloneEnv {
    vars: Vec<(String, String)>,
    version: String,
}

impl RcloneEnv {
    fn new(env: &Env, version: &str) -> Result<Self> {
        let obscured = output(
            "rclone obscure",
            Command::new("rclone").args(["obscure", "atrest-bench-password"]),
        )?;
        let vars = [
            ("RCLONE_CONFIG", "/nonexistent/rclone.conf"),
            ("RCLONE_CONFIG_S3_TYPE", "s3"),
            ("RCLONE_CONFIG_S3_PROVIDER", "Other"),
            ("RCLONE_CONFIG_S3_ENDPOINT", &env.s3),
            ("RCLONE_CONFIG_S3_ACCESS_KEY_ID", ACCESS_KEY),
            ("RCLONE_CONFIG_S3_SECRET_ACCESS_KEY", SECRET_KEY),
            ("RCLONE_CONFIG_S3_REGION", REGION),
            ("RCLONE_CONFIG_S3_FORCE_PATH_STYLE", "true"),
            ("RCLONE_CONFIG_CRYPT_TYPE", "crypt"),
            ("RCLONE_CONFIG_CRYPT_REMOTE", &format!("s3:{BUCKET}/rclone")),
            ("RCLONE_CONFIG_CRYPT_PASSWORD", obscured.trim()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Ok(RcloneEnv {
            vars,
            version: version.to_owned(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("rclone");
        cmd.args(args).envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// `rclone copyto FILE crypt:...`, the remote object deleted after each run
/// (rclone is much slower when it finds one to compare with).
fn rclone_upload(ctx: &Ctx, r: &RcloneEnv, file: &Path, size: u64, runs: usize) -> Measurement {
    let remote = format!("crypt:rclone-{}", size_label(size));
    let mut m = ctx.measure(
        &format!("rclone crypt upload ({})", r.version),
        Direction::Upload,
        None,
        size,
        runs,
        || {
            let mut c = r.command(&["copyto"]);
            c.arg(file).arg(&remote);
            c
        },
        |run| {
            if run + 1 < runs {
                let mut c = r.command(&["deletefile", &remote]);
                ctx.env.apply(&mut c);
                run_quiet("rclone deletefile", &mut c)?;
            }
            Ok(())
        },
    );
    m.plain = false;
    m.peer = true;
    m
}

/// `rclone copyto crypt:... FILE` into tmpfs when there is one (rclone
/// downloads large files with 4 streams by default), checked once.
fn rclone_download(ctx: &Ctx, r: &RcloneEnv, file: &Path, size: u64, runs: usize) -> Measurement {
    let label = size_label(size);
    let remote = format!("crypt:rclone-{label}");
    let shm = Path::new("/dev/shm");
    let (dir, place) = if shm.is_dir() {
        (shm, "a file on tmpfs")
    } else {
        (ctx.work, "a file")
    };
    let out = dir.join(format!("rclone-{label}.out"));
    let mut m = ctx.measure(
        &format!("rclone crypt download to {place}"),
        Direction::Download,
        None,
        size,
        runs,
        || {
            let mut c = r.command(&["copyto"]);
            c.arg(&remote).arg(&out);
            c
        },
        |run| {
            if run == 0 {
                same_contents(file, &out)?;
            }
            std::fs::remove_file(&out).context("removing rclone's output")
        },
    );
    m.plain = false;
    m.peer = true;
    m
}

/// Removes everything inside `dir`, keeping it.
fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let removed = match path.is_dir() {
            true => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

fn run_quiet(step: &str, cmd: &mut Command) -> Result<()> {
    output(step, cmd).map(drop)
}

/// Fails unless the two files hold the same bytes.
fn same_contents(a: &Path, b: &Path) -> Result<()> {
    let mut fa = File::open(a).with_context(|| format!("opening {}", a.display()))?;
    let mut fb = File::open(b).with_context(|| format!("opening {}", b.display()))?;
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            bail!(
                "round trip mismatch: {} and {} differ within bytes {offset}..{}",
                a.display(),
                b.display(),
                offset + n.max(m) as u64
            );
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// `files/plain-SIZE`: pseudo-random bytes (xorshift), made once and reused.
fn ensure_file(dir: &Path, size: u64) -> Result<PathBuf> {
    let path = dir.join(format!("plain-{}", size_label(size)));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
        return Ok(path);
    }
    eprintln!("writing {} ({size} bytes)", path.display());
    let mut f = std::io::BufWriter::new(File::create(&path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ size;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(path)
}

/// `target/bench-tools/bin/s3s-fs`, installed from crates.io if missing.
fn ensure_s3s_fs() -> Result<PathBuf> {
    let root = util::target_dir().join("bench-tools");
    let bin = root.join("bin").join("s3s-fs");
    let installed = tool_version(bin.to_str().unwrap_or_default(), &["--version"]);
    if installed
        .as_deref()
        .is_some_and(|v| v.contains(S3S_FS_VERSION))
    {
        eprintln!(
            "reusing {} ({})",
            bin.display(),
            installed.unwrap_or_default()
        );
        return Ok(bin);
    }
    // 0.17 needs a newer rustc than ours; 0.14.1 builds with its lock file.
    let mut cmd = cargo([
        "install",
        "--locked",
        "--features",
        "binary",
        "s3s-fs",
        "--version",
        S3S_FS_VERSION,
        "--root",
    ]);
    cmd.arg(&root)
        .arg("--target-dir")
        .arg(root.join("build"))
        .env_remove("CARGO_TARGET_DIR");
    run("install s3s-fs", &mut cmd)?;
    Ok(bin)
}

/// A running s3s-fs; dropping it stops the server (by its PID).
#[derive(Debug)]
struct S3sFs {
    child: Child,
    port: u16,
}

impl S3sFs {
    fn start(bin: &Path, root: &Path, log: &Path) -> Result<S3sFs> {
        let port = free_port()?;
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        eprintln!("$ {}  (log: {})", display(&cmd), log.display());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = S3sFs { child, port };
        let start = Instant::now();
        while !answers_http(port) {
            if let Some(status) = server.child.try_wait()? {
                bail!("s3s-fs exited early ({status}):\n{}", tail(log, 20));
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!("s3s-fs did not answer on port {port}:\n{}", tail(log, 20));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "s3s-fs (pid {}) is up at {}",
            server.child.id(),
            server.endpoint()
        );
        Ok(server)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// CPU seconds (user + system) the server has used so far, from
    /// `/proc/PID/stat` (fields 14 and 15, in clock ticks).
    fn cpu_secs(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.child.id());
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

impl Drop for S3sFs {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id();
        match self.child.kill() {
            Ok(()) => {
                let _ = self.child.wait();
                eprintln!("stopped s3s-fs (pid {pid})");
            }
            Err(e) => eprintln!("warning: could not stop s3s-fs (pid {pid}): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_long_and_short_help() {
        let long = "      --format <FORMAT>\n          Object format to write\n\n          Possible values:\n          - v1: The original Node tool's format\n          - v2: Framed AES-256-GCM\n\n          [default: v2]\n\n      --part-size <MiB>\n";
        assert_eq!(help_formats(long), ["v1", "v2"]);
        let short = "      --format <FORMAT>  Object format to write [default: v1] [possible values: v1]\n      --part-size <MiB>\n";
        assert_eq!(help_formats(short), ["v1"]);
        let own_line = "      --format <FORMAT>\n          Object format to write\n\n          [default: v1]\n          [possible values: v1]\n";
        assert_eq!(help_formats(own_line), ["v1"]);
    }

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
