//! The servers of the end-to-end bench: S3 is `s3s-fs` (crates.io,
//! installed into `target/bench-tools`), a Rust server that stores objects
//! as files, far faster than moto's S3; KMS is moto_server. Both stop when
//! [`Servers`] is dropped ([`crate::server::Server`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::BUCKET;
use crate::moto::{self, Moto};
use crate::server::{Launch, Server};
use crate::util::{self, cargo, output, run, step, tool_version};

pub const S3S_FS_VERSION: &str = "0.14.1";
pub const ACCESS_KEY: &str = "atrestbench";
pub const SECRET_KEY: &str = "atrestbenchsecret";
pub const REGION: &str = "us-east-1";

/// s3s-fs on its data directory and moto for KMS, and the environment that
/// points a command at them.
pub struct Servers {
    pub s3: Server,
    pub moto: Moto,
    pub env: Env,
    /// s3s-fs's root: a bucket is a directory under it.
    pub data: PathBuf,
}

impl Servers {
    /// Installs s3s-fs if needed and starts both servers, with an empty
    /// `s3s-data` holding the bench bucket: on tmpfs when a size's objects
    /// (about ten of the largest) fit in half the available memory, else in
    /// `dir`. On disk, the kernel's proactive reclaim (DAMON, on the bench
    /// machine) evicts objects a row has not touched for a while, and the
    /// next row that reads them pays for the disk: in one run `atrest
    /// verify` of 1 GiB took 5.8 s and the server 6 CPU-seconds, in the next
    /// 2.9 s and 4.0.
    pub fn start(dir: &Path, largest: u64) -> Result<Servers> {
        step("s3s-fs (local S3 server)");
        let s3s_bin = ensure_s3s_fs()?;
        step("moto_server (KMS)");
        moto::ensure_venv()?;
        let moto = Moto::start()?;

        let data = match super::files::tmpfs() {
            Some(shm) if largest.saturating_mul(20) <= mem_available() => {
                shm.join("atrest-bench-s3s-data")
            }
            _ => dir.join("s3s-data"),
        };
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("clearing {}", data.display()))?;
        }
        std::fs::create_dir_all(data.join(BUCKET))?;
        let s3 = start_s3s_fs(&s3s_bin, &data, &dir.join("s3s-fs.log"))?;
        let env = Env {
            s3: s3.endpoint(),
            kms: moto.endpoint(),
            nowhere: util::target_dir().join("xtask-no-aws-config"),
        };
        Ok(Servers {
            s3,
            moto,
            env,
            data,
        })
    }

    /// A new KMS key in moto (through boto3 from the moto venv): its id.
    pub fn create_key(&self) -> Result<String> {
        let mut py = Command::new(moto::python());
        py.arg("-c")
            .arg(CREATE_KEY_PY)
            .arg(&self.env.kms)
            .stdin(Stdio::null());
        self.env.apply(&mut py);
        Ok(output("create KMS key", &mut py)?.trim().to_owned())
    }

    /// The report's description of the S3 server.
    pub fn describe(&self) -> String {
        format!(
            "s3s-fs {S3S_FS_VERSION} (crates.io build, `--features binary`) on 127.0.0.1, data in {}",
            self.data.display()
        )
    }
}

impl Drop for Servers {
    /// The objects go with the servers (on tmpfs they hold memory).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// MemAvailable from /proc/meminfo, in bytes (0 if unreadable).
fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

const CREATE_KEY_PY: &str = r#"
import sys, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="us-east-1")
print(kms.create_key(Description="atrest bench")["KeyMetadata"]["KeyId"])
"#;

/// Endpoints and the environment every child gets.
pub struct Env {
    pub s3: String,
    pub kms: String,
    nowhere: PathBuf,
}

impl Env {
    /// Removes every inherited `AWS_*` variable (`AWS_PROFILE`,
    /// `AWS_CA_BUNDLE`, ...) and points S3 at s3s-fs, KMS at moto.
    pub fn apply(&self, cmd: &mut Command) {
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

/// s3s-fs serving the directory `root`, with the bench's credentials.
fn start_s3s_fs(bin: &Path, root: &Path, log: &Path) -> Result<Server> {
    let launch = Launch {
        name: "s3s-fs",
        log,
        ready_within: Duration::from_secs(20),
    };
    Server::start(&launch, |port| {
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .env("RUST_LOG", "warn");
        cmd
    })
}
