//! Repository automation: `cargo xtask <command>`.

mod bench;
mod demo;
mod fixtures;
mod fuzz;
mod key_file_fixtures;
mod moto;
mod release;
mod server;
mod test;
mod util;

use std::process::ExitCode;

use anyhow::{Context, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [--no-lint] [-- <cargo test args>]
          fmt check, clippy and rustdoc (-D warnings), then every test
          against a local moto_server (S3 + KMS); --no-lint skips the lints; args
          after `--` go to `cargo test` (`-p <crate>` replaces --workspace)
  moto    start moto_server, print the `export` lines for a shell, serve
          until Ctrl-C
  demo [--offline]
          the quick start without an AWS account: the real `atrest` binary,
          first offline (keygen, encrypt, inspect, decrypt with a key file on
          local files: no emulator, seconds), then against moto_server;
          --offline stops after the first part
  fuzz TARGET [--seconds N]
          run one cargo-fuzz target of fuzz/ (header_parse, inspect,
          v1_decrypt, v2_decrypt) for N seconds (default 60), corpus seeded
          from fixtures/; installs cargo-fuzz if missing
  bench [--quick] [--sizes 64M,1G[,4G]] [--runs N] [--only crypto|e2e]
        [--atrest PATH]
          openssl speed, the criterion crypto benches, and the release
          binary end to end against s3s-fs (S3) and moto (KMS) beside curl
          and aws s3 cp; writes target/bench/report.{md,json}; --atrest
          measures that atrest binary end to end instead of building one
  release build an optimized, stripped atrest and write it with its man
          pages (atrest.1, atrest-cp.1, ...), bash/zsh/fish/PowerShell completions and
          SHA256SUMS to target/dist/
  fixtures [--check]
          regenerate the test vectors in fixtures/v2 and fixtures/key-file
          (or check that they are up to date)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::test(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("moto") if args.len() == 1 => moto::serve(),
        Some("demo") if args.len() == 1 => demo::demo(false),
        Some("demo") if args.len() == 2 && args[1] == "--offline" => demo::demo(true),
        Some("bench") => bench::bench(&args[1..]),
        Some("release") if args.len() == 1 => release::release(),
        Some("fixtures") if args.len() <= 2 => match args.get(1).map(String::as_str) {
            None => write_fixtures(false),
            Some("--check") => write_fixtures(true),
            Some(_) => usage(),
        },
        _ => usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> Result<()> {
    eprintln!("{USAGE}");
    std::process::exit(2);
}

fn write_fixtures(check: bool) -> Result<()> {
    type Check = fn(&std::path::Path) -> Result<(), String>;
    type Write = fn(&std::path::Path) -> std::io::Result<usize>;
    let sets: [(&str, Check, Write); 2] = [
        (fixtures::DIR, fixtures::check, fixtures::write),
        (
            key_file_fixtures::DIR,
            key_file_fixtures::check,
            key_file_fixtures::write,
        ),
    ];
    for (name, check_set, write_set) in sets {
        let dir = util::root().join(name);
        if check {
            check_set(&dir).map_err(anyhow::Error::msg)?;
            eprintln!("{name} is up to date");
        } else {
            let n = write_set(&dir).with_context(|| format!("writing {}", dir.display()))?;
            eprintln!("wrote {n} files to {name}");
        }
    }
    Ok(())
}
