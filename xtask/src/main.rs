//! Repository automation: `cargo xtask <command>`.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

mod fixtures;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test    fmt check, clippy (-D warnings) and every test
  fixtures [--check]  regenerate fixtures/v2 (or check it is up to date)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("fixtures") => fixtures(args.get(1).map(String::as_str) == Some("--check")),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn test() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace"])
}

fn fixtures(check: bool) -> Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(fixtures::DIR);
    if check {
        fixtures::check(&dir).map_err(anyhow::Error::msg)?;
        eprintln!("{} is up to date", fixtures::DIR);
    } else {
        let n = fixtures::write(&dir).with_context(|| format!("writing {}", dir.display()))?;
        eprintln!("wrote {n} files to {}", fixtures::DIR);
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
