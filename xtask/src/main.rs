//! Repository automation: `cargo xtask <command>`.

mod demo;
mod moto;
mod test;
mod util;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [--no-lint] [-- <cargo test args>]
          fmt check, clippy (-D warnings), then every test against a local
          moto_server (S3 + KMS); --no-lint skips fmt and clippy; args
          after `--` go to `cargo test` (`-p <crate>` replaces --workspace)
  moto    start moto_server, print the `export` lines for a shell, serve
          until Ctrl-C
  demo    the quick start without an AWS account: the real `atrest` binary
          against moto_server";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::test(&args[1..]),
        Some("moto") if args.len() == 1 => moto::serve(),
        Some("demo") if args.len() == 1 => demo::demo(),
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
