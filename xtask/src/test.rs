//! `cargo xtask test [--no-lint] [-- <cargo test args>]`: fmt check, clippy,
//! rustdoc (-D warnings), then every test with a local moto_server as the S3/KMS endpoint.

use anyhow::{bail, Result};

use crate::moto::{self, Moto};
use crate::util::{cargo, run, step};

pub const USAGE: &str = "cargo xtask test [--no-lint] [-- <args for cargo test>]";

pub fn test(args: &[String]) -> Result<()> {
    let mut lint = true;
    let mut extra: &[String] = &[];
    for (i, arg) in args.iter().enumerate() {
        match arg.as_str() {
            "--no-lint" => lint = false,
            "--" => {
                extra = &args[i + 1..];
                break;
            }
            other => bail!("unknown argument `{other}`\nusage: {USAGE}"),
        }
    }

    if lint {
        step("fmt");
        run("fmt", &mut cargo(["fmt", "--all", "--", "--check"]))?;
        step("clippy");
        run(
            "clippy",
            &mut cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
        // Broken intra-doc links in the crates' documented APIs.
        step("doc");
        run(
            "doc",
            cargo(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"),
        )?;
    } else {
        eprintln!("--no-lint: skipping fmt, clippy and doc");
    }

    step("moto venv");
    moto::ensure_venv()?;
    step("moto_server");
    let moto = Moto::start()?;

    step("test");
    let mut cmd = cargo(["test"]);
    // `--workspace` would override a `-p` given to filter the run.
    if !selects_packages(extra) {
        cmd.arg("--workspace");
    }
    cmd.args(extra);
    moto.apply_env(&mut cmd);
    eprintln!(
        "(AWS_ENDPOINT_URL=ATREST_TEST_ENDPOINT={}, AWS_REGION=us-east-1, test credentials)",
        moto.endpoint()
    );
    let result = run("test", &mut cmd);
    if result.is_err() {
        eprintln!("moto_server log: {}", moto.log().display());
    }
    drop(moto);
    result?;
    eprintln!("\nall steps passed");
    Ok(())
}

/// Whether cargo-test arguments (before any `--`) pick packages themselves.
fn selects_packages(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-p" || a.starts_with("--package") || (a.starts_with("-p") && a.len() > 2))
}
