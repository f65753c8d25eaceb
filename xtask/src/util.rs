//! Small helpers shared by the commands: paths and running child processes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// A `cargo` command (the same cargo that runs xtask), in the workspace root.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(root());
    cmd
}

/// Builds the atrest binary (`cargo build FLAGS -p atrest`) and returns its
/// path: `target/release/atrest` with `--release` among `flags`, else
/// `target/debug/atrest`.
pub fn build_atrest(step: &str, flags: &[&str]) -> Result<PathBuf> {
    let mut cmd = cargo(["build"]);
    cmd.args(flags).args(["-p", "atrest"]);
    run(step, &mut cmd)?;
    let profile = if flags.contains(&"--release") {
        "release"
    } else {
        "debug"
    };
    let bin = target_dir().join(profile).join("atrest");
    if !bin.is_file() {
        bail!("step `{step}`: {} is missing", bin.display());
    }
    Ok(bin)
}

/// Prints a step header.
pub fn step(name: &str) {
    eprintln!("\n==> {name}");
}

/// Runs `cmd` (inheriting stdio) after echoing it; the error names `step`.
pub fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("step `{step}`: could not start `{}`", display(cmd)))?;
    if !status.success() {
        bail!(
            "step `{step}` failed: `{}` exited with {status}",
            display(cmd)
        );
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr is shown if it fails.
pub fn output(step: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("step `{step}`: could not start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!(
            "step `{step}` failed: `{}` exited with {}\n{}{}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("step `{step}`: stdout is not UTF-8"))
}

/// The command line, for echoing (program file name and arguments).
pub fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let program = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy();
    let mut line = program.into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// The last `n` lines of a text file (for showing logs on failure).
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The first line a tool prints for `args` (e.g. `--version`; stdout, or
/// stderr when stdout is empty), or `None` if it is missing or fails.
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
