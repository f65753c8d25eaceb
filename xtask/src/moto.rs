//! A local S3 + KMS endpoint: moto_server from a pinned Python venv.
//!
//! `Moto::start` spawns `target/moto-venv/bin/moto_server -H 127.0.0.1 -p PORT`
//! on a free loopback port and waits until it answers HTTP; dropping the
//! `Moto` kills that process (by its PID, through `Child::kill`) and reaps it,
//! also when a step fails or xtask panics. Ctrl-C reaches moto_server directly:
//! it is in our process group, so the terminal's SIGINT stops it too.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util::{self, display, tail};

/// Newer than the moto on these machines, whose CompleteMultipartUpload reply
/// the Rust SDK rejects.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";
const MOTO_VERSION: &str = "5.2.5";
/// The AWS S3 Encryption Client for Python: the reference reader and writer
/// of the interop tests (crates/cli/tests/cli/s3ec.rs).
pub const S3EC_REQUIREMENT: &str = "amazon-s3-encryption-client-python==4.0.0";

/// What the venv holds; the marker file records it, so a venv made before
/// a requirement was added is made again.
fn venv_requirements() -> String {
    format!("{MOTO_REQUIREMENT} {S3EC_REQUIREMENT}")
}

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
    if venv_is_valid(&venv, &marker) {
        eprintln!("reusing {} ({})", venv.display(), venv_requirements());
        return Ok(());
    }
    std::fs::create_dir_all(util::target_dir())?;
    eprintln!(
        "creating {} with {} (pip log: {})",
        venv.display(),
        venv_requirements(),
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
            .args([MOTO_REQUIREMENT, S3EC_REQUIREMENT]),
    )
    .context("installing moto and the S3 Encryption Client into the venv")?;
    if !venv_is_valid_ignoring_marker(&venv) {
        bail!(
            "{} still does not report moto {MOTO_VERSION} after installing it",
            venv.display()
        );
    }
    std::fs::write(&marker, venv_requirements())?;
    Ok(())
}

/// The venv completed a previous install of exactly this requirement (marker
/// file) and `pip show moto` reports the pinned version.
fn venv_is_valid(venv: &Path, marker: &Path) -> bool {
    std::fs::read_to_string(marker).is_ok_and(|m| m == venv_requirements())
        && venv_is_valid_ignoring_marker(venv)
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
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// Starts moto_server from the venv (call `ensure_venv` first) on a free
    /// port of 127.0.0.1, and waits until it answers HTTP.
    pub fn start() -> Result<Moto> {
        let log = util::target_dir().join("moto-server.log");
        let mut attempt = 1;
        loop {
            match Moto::try_start(&log) {
                Ok(moto) => return Ok(moto),
                // Another process may take the port between our probe and
                // moto's bind; try a fresh one.
                Err(e) if attempt < 3 && tail(&log, 50).contains("Address already in use") => {
                    eprintln!("moto_server could not bind its port, retrying: {e:#}");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_start(log: &Path) -> Result<Moto> {
        let port = free_port()?;
        let server = venv_dir().join("bin").join("moto_server");
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(&server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(util::target_dir())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        eprintln!("$ {}  (log: {})", display(&cmd), log.display());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        // From here on, Drop stops the server whatever happens.
        let mut moto = Moto {
            child,
            port,
            log: log.to_owned(),
        };
        moto.wait_ready()?;
        eprintln!(
            "moto_server (pid {}) is up at {}",
            moto.child.id(),
            moto.endpoint()
        );
        Ok(moto)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "moto_server exited early ({status}); last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            if answers_http(self.port) {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "moto_server did not answer HTTP on port {} within {}s; last lines of {}:\n{}",
                    self.port,
                    READY_TIMEOUT.as_secs(),
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
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
        let status = self.child.wait()?;
        bail!(
            "moto_server exited ({status}); last lines of {}:\n{}",
            self.log.display(),
            tail(&self.log, 30)
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id();
        match self.child.kill() {
            Ok(()) => {
                let _ = self.child.wait();
                eprintln!("stopped moto_server (pid {pid})");
            }
            Err(e) => eprintln!("warning: could not stop moto_server (pid {pid}): {e}"),
        }
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether something on 127.0.0.1:`port` answers a `GET /` with HTTP.
pub fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
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
