//! A local S3 + KMS endpoint: moto_server from a pinned Python venv.
//!
//! `Moto::start` spawns `target/moto-venv/bin/moto_server -H 127.0.0.1 -p PORT`
//! on a free loopback port and waits until it answers HTTP; dropping the
//! `Moto` stops it ([`crate::server::Server`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::server::{Launch, Server};
use crate::util::{self, display, tail};

/// What the venv holds, installed by one `pip install`; a package that
/// tests need goes here. The marker file records this list, so a venv made
/// before a requirement was added is made again.
pub const REQUIREMENTS: &[&str] = &[
    // Newer than the moto on these machines, whose CompleteMultipartUpload
    // reply the Rust SDK rejects.
    "moto[server]==5.2.5",
    // The AWS S3 Encryption Client for Python: the reference reader and
    // writer of the interop tests (crates/cli/tests/cli/s3ec.rs).
    "amazon-s3-encryption-client-python==4.0.0",
];
/// The moto version that `REQUIREMENTS` pins (checked with `pip show`).
const MOTO_VERSION: &str = "5.2.5";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const REGION: &str = "us-east-1";

/// The venv holding moto: `target/moto-venv`.
pub fn venv_dir() -> PathBuf {
    util::target_dir().join("moto-venv")
}

/// The venv's Python interpreter (has boto3: moto depends on it).
pub fn python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// Creates `target/moto-venv` with the pinned moto, or reuses it if it is
/// already valid. pip's output goes to `target/moto-pip.log` (shown on failure).
pub fn ensure_venv() -> Result<()> {
    let venv = venv_dir();
    let marker = venv.join(".xtask-moto");
    let log_path = util::target_dir().join("moto-pip.log");
    let wanted = REQUIREMENTS.join(" ");
    if venv_is_valid(&venv, &marker) {
        eprintln!("reusing {} ({wanted})", venv.display());
        return Ok(());
    }
    std::fs::create_dir_all(util::target_dir())?;
    eprintln!(
        "creating {} with {wanted} (pip log: {})",
        venv.display(),
        log_path.display()
    );
    let _ = std::fs::remove_file(&marker);
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let logged = |cmd: &mut Command| -> Result<()> {
        let line = display(cmd);
        writeln!(&log, "$ {line}")?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .with_context(|| format!("could not start `{line}`"))?;
        if !status.success() {
            bail!(
                "`{line}` failed ({status}); last lines of {}:\n{}",
                log_path.display(),
                tail(&log_path, 30)
            );
        }
        Ok(())
    };
    logged(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .context("creating the moto venv (is python3-venv installed?)")?;
    logged(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--disable-pip-version-check", "--no-input"])
            .args(REQUIREMENTS),
    )
    .context("installing moto and the S3 Encryption Client into the venv")?;
    if !venv_is_valid_ignoring_marker(&venv) {
        bail!(
            "{} still does not report moto {MOTO_VERSION} after installing it",
            venv.display()
        );
    }
    std::fs::write(&marker, marker_text())?;
    Ok(())
}

/// The venv completed a previous install of exactly these requirements
/// (marker file) and `pip show moto` reports the pinned version.
fn venv_is_valid(venv: &Path, marker: &Path) -> bool {
    std::fs::read_to_string(marker).is_ok_and(|m| m == marker_text())
        && venv_is_valid_ignoring_marker(venv)
}

/// The marker's contents: the requirements, space-separated.
fn marker_text() -> String {
    REQUIREMENTS.join(" ")
}

fn venv_is_valid_ignoring_marker(venv: &Path) -> bool {
    let bin = venv.join("bin");
    if !bin.join("moto_server").is_file() {
        return false;
    }
    let Ok(out) = Command::new(bin.join("pip"))
        .args(["show", "--disable-pip-version-check", "moto"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == format!("Version: {MOTO_VERSION}"))
}

/// A running moto_server; dropping it stops the server.
#[derive(Debug)]
pub struct Moto {
    server: Server,
}

impl Moto {
    /// Starts moto_server from the venv (call `ensure_venv` first) on a free
    /// port of 127.0.0.1, and waits until it answers HTTP.
    pub fn start() -> Result<Moto> {
        let log = util::target_dir().join("moto-server.log");
        let launch = Launch {
            name: "moto_server",
            log: &log,
            ready_within: READY_TIMEOUT,
        };
        let server = Server::start(&launch, |port| {
            let mut cmd = Command::new(venv_dir().join("bin").join("moto_server"));
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .current_dir(util::target_dir());
            cmd
        })?;
        Ok(Moto { server })
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    pub fn log(&self) -> &Path {
        self.server.log()
    }

    /// The environment variables child processes get, besides the removal of
    /// every inherited `AWS_*` variable.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let endpoint = self.endpoint();
        let nowhere = util::target_dir().join("xtask-no-aws-config");
        vec![
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            (
                "AWS_CONFIG_FILE",
                nowhere.join("config").to_string_lossy().into_owned(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                nowhere.join("credentials").to_string_lossy().into_owned(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("ATREST_TEST_ENDPOINT", endpoint),
            // The venv's Python, with the S3 Encryption Client for interop tests.
            (
                "ATREST_TEST_PYTHON",
                python().to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Points `cmd` at this server: removes every inherited `AWS_*` variable
    /// (`AWS_PROFILE`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL_S3`, ...) and
    /// sets `env_vars`.
    pub fn apply_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(self.env_vars())
    }

    /// Shell lines that point a terminal at this server.
    pub fn shell_exports(&self) -> String {
        let mut out = String::from(
            "unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN \
             AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_KMS\n",
        );
        for (key, value) in self.env_vars() {
            out.push_str(&format!("export {key}='{value}'\n"));
        }
        out
    }

    /// Waits for the server to exit on its own (e.g. Ctrl-C); an error then.
    pub fn wait(&mut self) -> Result<()> {
        self.server.wait()
    }
}

/// `cargo xtask moto`: serve until Ctrl-C.
pub fn serve() -> Result<()> {
    util::step("moto venv");
    ensure_venv()?;
    util::step("moto_server");
    let mut moto = Moto::start()?;
    println!(
        "\n# moto_server (pid {}) at {}; log: {}\n# paste into a shell:\n{}",
        moto.pid(),
        moto.endpoint(),
        moto.log().display(),
        moto.shell_exports()
    );
    eprintln!("serving; press Ctrl-C to stop");
    moto.wait()
}
