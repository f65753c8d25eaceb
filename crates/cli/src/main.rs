//! The `atrest` command-line tool.

mod aws;
mod buffers;
mod cli;
mod commands;
mod destination;
mod failure;
mod files;
mod interrupt;
mod keys;
mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() -> ExitCode {
    fixed_mmap_threshold();
    let cli = Cli::parse();
    // Neither needs AWS configuration nor a runtime.
    match cli.command {
        Command::Completions { shell } => {
            return print_generated(|out| {
                clap_complete::generate(shell, &mut completion_command(), "atrest", out);
                Ok(())
            })
        }
        Command::Man => {
            return print_generated(|out| clap_mangen::Man::new(Cli::command()).render(out))
        }
        _ => {}
    }
    init_logging(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("atrest: error: cannot start the async runtime: {e}");
            return ExitCode::from(failure::Exit::Runtime as u8);
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for blocking reads still parked on stdin (after an error or
    // a signal): everything that matters has finished.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.is::<interrupt::Interrupted>() => {
            let got = err
                .downcast_ref::<interrupt::Interrupted>()
                .expect("checked");
            eprintln!("atrest: {got}");
            ExitCode::from(128 + got.number as u8)
        }
        Err(err) => {
            // One line, and nothing in it (object keys, server messages)
            // can drive the terminal.
            eprintln!("atrest: error: {}", escape(&format!("{err:#}")));
            ExitCode::from(failure::exit_code(&err) as u8)
        }
    }
}

/// Keeps memory flat on glibc. Transfers allocate and free part-sized
/// buffers (8 MiB) all the time; after the first such free, glibc raises its
/// mmap threshold and serves later ones from per-thread arenas, which keep
/// freed buffers resident. With a fixed threshold every large buffer is
/// mapped and unmapped, and peak RSS tracks the bytes actually in flight
/// (measured, 1 GiB v2 download: 85-100 MiB -> 53 MiB; upload 65 -> 57 MiB,
/// with no change in time; M_ARENA_MAX 1 gave 59 and 65 MiB).
#[allow(unsafe_code)]
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tuning parameter; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The command line as completions show it: clap_complete would list hidden
/// subcommands (`man`), so they are left out of a copy.
fn completion_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("atrest")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommand_required(true);
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}

/// Writes generated text (completions, man page) to stdout.
fn print_generated(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atrest: error: cannot write to stdout: {e}");
            ExitCode::from(failure::Exit::Runtime as u8)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let interrupt = interrupt::Interrupt::listen()?;
    // A local file needs no AWS configuration at all.
    if let Command::Inspect {
        target: target @ commands::inspect::Target::File(_),
        json,
    } = &cli.command
    {
        return commands::inspect::run(None, target, *json).await;
    }
    let clients = aws::clients(&cli.aws).await?;
    let show_progress = progress::wanted(cli.quiet, cli.no_progress);
    match &cli.command {
        Command::CreateDataKey { key_id, data_key } => {
            let work = commands::create_data_key::run(&clients.kms, key_id, data_key, cli.quiet);
            interrupt.guard(work).await
        }
        Command::EncryptWithKms {
            file,
            uri,
            data_key,
            kms_key,
            context,
            format,
            frame_size,
            multipart_threshold,
            transfer,
            bulk,
        } => {
            let uri = &match bulk.recursive {
                true => uri.clone(),
                false => destination::encrypt_target(file, uri)?,
            };
            let args = commands::encrypt::Encrypt {
                file,
                uri,
                data_key,
                kms_key: kms_key.as_deref(),
                context,
                format: *format,
                frame_exponent: *frame_size,
                multipart_threshold: u64::from(multipart_threshold.unwrap_or(transfer.part_size))
                    << 20,
                transfer,
                progress: progress::Show::Own(show_progress),
            };
            if bulk.recursive {
                let bulk = commands::bulk::Bulk {
                    kms: &clients.kms,
                    s3: &clients.s3,
                    args: bulk,
                    show_progress,
                    quiet: cli.quiet,
                };
                return commands::bulk::encrypt_dir(&bulk, args, &interrupt).await;
            }
            let keys = keys::Keys::uncached(clients.kms.clone());
            // Not guarded here: encrypt aborts its multipart upload itself.
            commands::encrypt::run(&keys, &clients.s3, args, &interrupt).await
        }
        Command::DecryptWithKms {
            uri,
            file,
            expect_context,
            range,
            transfer,
            bulk,
        } => {
            let file = &match bulk.recursive {
                true => file.clone(),
                false => destination::decrypt_target(uri, file)?,
            };
            let args = commands::decrypt::Decrypt {
                uri,
                file,
                expect_context,
                range: *range,
                concurrency: transfer.concurrency.map(|n| n as usize),
                part_size: transfer.part_size as usize * 1024 * 1024,
                quiet: cli.quiet,
                progress: progress::Show::Own(show_progress),
            };
            if bulk.recursive {
                let bulk = commands::bulk::Bulk {
                    kms: &clients.kms,
                    s3: &clients.s3,
                    args: bulk,
                    show_progress,
                    quiet: cli.quiet,
                };
                return interrupt
                    .guard(commands::bulk::decrypt_prefix(&bulk, args))
                    .await;
            }
            let keys = keys::Keys::uncached(clients.kms.clone());
            // Dropping the work on a signal removes the temporary output.
            interrupt
                .guard(commands::decrypt::run(&keys, &clients.s3, args))
                .await
        }
        Command::Inspect { target, json } => {
            commands::inspect::run(Some(&clients.s3), target, *json).await
        }
        Command::Completions { .. } | Command::Man => unreachable!("handled in main"),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // By default only our own warnings: the SDK's are about conditions our
    // errors already explain (and it warns about IMDS on every non-EC2 host).
    let default = match (quiet, verbose) {
        (true, _) => "off",
        (false, 0) => "atrest=warn,atrest_s3=warn,atrest_kms=warn",
        (false, 1) => "atrest=debug,atrest_s3=debug,atrest_kms=debug,warn",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Untrusted text (object keys, context values) with control characters
/// escaped, so it cannot drive the terminal.
pub fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A closed stdout (`atrest decrypt s3://... - | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
