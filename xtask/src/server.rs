//! The processes xtask starts and leaves running while it works: one guard
//! that stops them, and local HTTP servers built on it.
//!
//! [`ChildGuard`] owns a spawned child; dropping it kills that process (by
//! its PID, through `Child::kill`) and reaps it, also when a step fails or
//! xtask panics. [`Server`] adds what moto_server and s3s-fs have in common:
//! a free loopback port, output into a log file, and a wait until the port
//! answers HTTP. Ctrl-C reaches the children directly: they are in our
//! process group, so the terminal's SIGINT stops them too.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util::{display, tail};

/// A running child process, stopped when the guard is dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
}

impl ChildGuard {
    /// Spawns `cmd`; `name` names the process in messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<ChildGuard> {
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name} (`{}`)", display(cmd)))?;
        Ok(ChildGuard {
            child,
            name: name.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's pipes (`stdout`, `stderr`), to take.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The exit status, if the child has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("waiting for {} (pid {})", self.name, self.pid()))
    }

    /// Waits for the child to exit on its own.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.child
            .wait()
            .with_context(|| format!("waiting for {} (pid {})", self.name, self.pid()))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id();
        match self.child.kill() {
            Ok(()) => {
                let _ = self.child.wait();
                eprintln!("stopped {} (pid {pid})", self.name);
            }
            Err(e) => eprintln!("warning: could not stop {} (pid {pid}): {e}", self.name),
        }
    }
}

/// A local HTTP server on 127.0.0.1; dropping it stops the process.
#[derive(Debug)]
pub struct Server {
    guard: ChildGuard,
    port: u16,
    log: PathBuf,
}

/// How to start a [`Server`].
pub struct Launch<'a> {
    /// Names the server in messages (`moto_server`, `s3s-fs`).
    pub name: &'a str,
    /// Receives the server's stdout and stderr.
    pub log: &'a Path,
    /// How long the server may take to answer HTTP.
    pub ready_within: Duration,
}

/// Attempts at a fresh port when the server could not bind the last one.
const BIND_ATTEMPTS: usize = 3;

impl Server {
    /// Starts `command(port)` on a free port of 127.0.0.1 (the command binds
    /// it), with stdin closed and its output in `launch.log`, and waits until
    /// the port answers HTTP.
    pub fn start(launch: &Launch, command: impl Fn(u16) -> Command) -> Result<Server> {
        let mut attempt = 1;
        loop {
            match Server::try_start(launch, &command) {
                Ok(server) => return Ok(server),
                // Another process may take the port between our probe and
                // the server's bind; try a fresh one.
                Err(e)
                    if attempt < BIND_ATTEMPTS
                        && tail(launch.log, 50).contains("Address already in use") =>
                {
                    eprintln!("{} could not bind its port, retrying: {e:#}", launch.name);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_start(launch: &Launch, command: &impl Fn(u16) -> Command) -> Result<Server> {
        let Launch { name, log, .. } = *launch;
        let port = free_port()?;
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = command(port);
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        eprintln!("$ {}  (log: {})", display(&cmd), log.display());
        // From here on, Drop stops the server whatever happens.
        let mut server = Server {
            guard: ChildGuard::spawn(name, &mut cmd)?,
            port,
            log: log.to_owned(),
        };
        server.wait_ready(launch)?;
        eprintln!(
            "{name} (pid {}) is up at {}",
            server.pid(),
            server.endpoint()
        );
        Ok(server)
    }

    fn wait_ready(&mut self, launch: &Launch) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.guard.try_wait()? {
                bail!(
                    "{} exited early ({status}); last lines of {}:\n{}",
                    launch.name,
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            if answers_http(self.port) {
                return Ok(());
            }
            if start.elapsed() > launch.ready_within {
                bail!(
                    "{} did not answer HTTP on port {} within {}s; last lines of {}:\n{}",
                    launch.name,
                    self.port,
                    launch.ready_within.as_secs(),
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
        self.guard.pid()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Waits for the server to exit on its own (e.g. Ctrl-C); an error then.
    pub fn wait(&mut self) -> Result<()> {
        let status = self.guard.wait()?;
        bail!(
            "{} exited ({status}); last lines of {}:\n{}",
            self.guard.name,
            self.log.display(),
            tail(&self.log, 30)
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The guard kills a child that is still running and reaps it.
    #[test]
    fn dropping_the_guard_stops_the_child() {
        let guard = ChildGuard::spawn("sleep", Command::new("sleep").arg("30")).unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", guard.pid()));
        assert!(proc_dir.exists(), "sleep is running");
        drop(guard);
        // Reaped, not a zombie: the PID's /proc entry is gone.
        assert!(!proc_dir.exists(), "sleep was stopped and reaped");
    }

    /// A child that exited is left alone, and its status stays readable.
    #[test]
    fn guard_of_an_exited_child() {
        let mut guard = ChildGuard::spawn("true", &mut Command::new("true")).unwrap();
        assert!(guard.wait().unwrap().success());
        assert!(guard.try_wait().unwrap().is_some());
    }

    /// A fresh directory for one test, and the `Launch` of a server logging
    /// into it.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn launch<'a>(name: &'a str, log: &'a Path) -> Launch<'a> {
        Launch {
            name,
            log,
            ready_within: Duration::from_secs(20),
        }
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    /// A server that exits before it answers is an error showing its log.
    #[test]
    fn server_that_exits_early() {
        let dir = scratch("server-early");
        let log = dir.join("early.log");
        let err = Server::start(&launch("early", &log), |port| {
            sh(&format!("echo no server on {port}; exit 3"))
        })
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("early exited early"), "{msg}");
        assert!(msg.contains("no server on"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A server that answers HTTP is up; dropping it stops it.
    #[test]
    fn server_up_and_stopped() {
        let dir = scratch("server-up");
        let log = dir.join("http.log");
        let server = Server::start(&launch("http.server", &log), |port| {
            let mut c = sh(&format!(
                "exec python3 -m http.server --bind 127.0.0.1 {port}"
            ));
            c.current_dir(&dir);
            c
        })
        .unwrap();
        let port: u16 = server
            .endpoint()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(answers_http(port));
        let proc_dir = PathBuf::from(format!("/proc/{}", server.pid()));
        drop(server);
        assert!(!proc_dir.exists());
        assert!(!answers_http(port));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
