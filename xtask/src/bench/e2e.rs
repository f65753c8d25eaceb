//! End to end: the atrest binary against a local S3 server and moto's KMS,
//! beside plain transfers of the same files and other tools.
//!
//! By concern: [`servers`] (s3s-fs for S3, moto for KMS, the environment
//! every command gets), [`plain`] (the curl baselines), [`atrest`] (atrest's
//! rows), [`peers`] (aws s3 cp, rclone crypt), [`measure`] (`/usr/bin/time
//! -v`, RSS, CPU, KMS calls, medians) and [`files`] (the test files and
//! round-trip checks). This module runs them in the report's order.

mod atrest;
mod files;
mod measure;
mod peers;
mod plain;
mod servers;

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use self::atrest::{atrest_decrypt, atrest_encrypt, atrest_verify, help_formats, SINGLE_PUT};
use self::files::{clear_dir, ensure_file};
pub use self::measure::{Direction, Measurement};
use self::peers::{
    aws_download, aws_upload, rclone_download, rclone_upload, s3ec_python_download,
    s3ec_python_upload, PythonS3ec, RcloneEnv,
};
pub use self::plain::RANGED_STREAMS;
use self::plain::{plain_downloads, plain_multipart_upload, plain_upload, PART_SIZE};
use self::servers::Servers;
pub use self::servers::S3S_FS_VERSION;
use super::{size_label, Options};
use crate::util::{output, run, step, tool_version};

const BUCKET: &str = "atrest-bench";
/// Files larger than this are measured once, atrest and single-stream curl
/// only: they are there for peak RSS.
const FULL_LIMIT: u64 = 1 << 30;
/// The small object of the start-up round trip.
pub const SMALL: u64 = 1024;

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
    let largest = opts.sizes.iter().copied().max().unwrap_or(0);
    let servers = Servers::start(dir, largest)?;

    step("KMS key and data.key");
    let key_id = servers.create_key()?;
    eprintln!("KMS key {key_id}");
    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let mut create = Command::new(bin);
    create.args(["create-data-key", &key_id]).current_dir(&work);
    servers.env.apply(&mut create);
    run("create-data-key", &mut create)?;

    let help = output(
        "atrest encrypt-with-kms --help",
        Command::new(bin).args(["encrypt-with-kms", "--help"]),
    )?;
    let formats = help_formats(&help);
    let has_verify = output("atrest --help", Command::new(bin).arg("--help"))?
        .lines()
        .any(|l| l.trim_start().starts_with("verify "));
    let has_key_flag = help.lines().any(|l| l.trim_start().starts_with("--key "));
    eprintln!("formats listed by `atrest encrypt-with-kms --help`: {formats:?}");
    let aws_cli = tool_version("aws", &["--version"]);

    let ctx = Ctx {
        bin,
        servers: &servers,
        work: &work,
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
    let python_s3ec = PythonS3ec::find();
    if python_s3ec.is_none() {
        notes.push(
            "the S3 Encryption Client for Python is not in xtask's venv: no Python client rows (`cargo xtask test` installs it)."
                .to_owned(),
        );
    }
    let rclone_env = match &rclone {
        Some(version) => Some(RcloneEnv::new(&servers.env, version)?),
        None => None,
    };

    let mut sizes = Vec::new();
    for &size in &opts.sizes {
        let label = size_label(size);
        step(&format!("end to end, {label}"));
        let file = ensure_file(&files, size)?;
        let full = size <= FULL_LIMIT;
        let runs = if full { opts.runs } else { 1 };
        let aws = full && aws_cli.is_some();
        let mut rows = vec![plain_upload(&ctx, &file, size, runs)];
        if aws {
            rows.push(aws_upload(&ctx, &file, size, runs));
        }
        if full && size > PART_SIZE {
            rows.push(plain_multipart_upload(&ctx, &file, size, runs)?);
        }
        for f in &formats {
            rows.push(atrest_encrypt(&ctx, &file, size, f, runs, &[]));
        }
        if size > PART_SIZE && formats.iter().any(|f| f == "v2") {
            rows.push(atrest_encrypt(&ctx, &file, size, "v2", runs, &SINGLE_PUT));
        }
        let rclone_env = rclone_env.as_ref().filter(|_| full);
        if let Some(r) = rclone_env {
            rows.push(rclone_upload(&ctx, r, &file, size, runs));
        }
        // The Python client reads whole objects into memory: measured up
        // to 1 GiB, for its time and peak RSS beside atrest's s3ec-v3 rows.
        let python = python_s3ec.as_ref().filter(|_| full);
        if let Some(py) = python {
            rows.push(s3ec_python_upload(&ctx, py, &file, size, runs));
        }
        rows.extend(plain_downloads(&ctx, size, runs, full));
        if aws {
            rows.push(aws_download(&ctx, size, runs));
        }
        for f in &formats {
            rows.extend(atrest_decrypt(&ctx, &file, size, f, runs));
            if has_verify && f != "s3ec-v3" {
                rows.push(atrest_verify(&ctx, size, f, runs));
            }
        }
        if let Some(r) = rclone_env {
            rows.push(rclone_download(&ctx, r, &file, size, runs));
        }
        if let Some(py) = python {
            rows.push(s3ec_python_download(&ctx, py, &file, size, runs));
        }
        sizes.push((size, rows));
        // The next size's objects need the disk space (4 GiB ones ~20 GiB).
        clear_dir(&servers.data.join(BUCKET))?;
    }

    step(&format!("start-up and a {SMALL}-byte round trip"));
    let small_file = ensure_file(&files, SMALL)?;
    let small_runs = opts.runs.max(5);
    let mut small = Vec::new();
    if let Some(f) = formats.first() {
        let f = formats.iter().find(|f| *f == "v2").unwrap_or(f);
        small.push(atrest_encrypt(&ctx, &small_file, SMALL, f, small_runs, &[]));
        small.extend(
            atrest_decrypt(&ctx, &small_file, SMALL, f, small_runs)
                .into_iter()
                .filter(|m| m.name.ends_with("to a file")),
        );
    }
    if aws_cli.is_some() {
        small.push(aws_upload(&ctx, &small_file, SMALL, small_runs));
        small.push(aws_download(&ctx, SMALL, small_runs));
    }

    let server = servers.describe();
    drop(servers);
    Ok(E2e {
        server,
        formats,
        sizes,
        small,
        notes,
    })
}

/// What every row needs: the binary, the servers, the working directory.
struct Ctx<'a> {
    /// The atrest binary measured.
    bin: &'a Path,
    servers: &'a Servers,
    /// atrest's working directory (it holds `data.key`).
    work: &'a Path,
    key_id: &'a str,
    /// Whether `encrypt-with-kms` takes `--key` (v2 objects name their key).
    has_key_flag: bool,
    /// The bench's output directory (`target/bench`).
    dir: &'a Path,
}
