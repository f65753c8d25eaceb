//! The `atrest` command-line tool.

// Output goes through `stdout::say!`/`say_err!`, which a closed pipe does
// not turn into a panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod aws;
mod cli;
mod commands;
mod failure;
mod interrupt;
mod keyring;
mod man;
mod progress;
mod properties;
mod stdout;

use std::process::ExitCode;

use clap::FromArgMatches;
use cli::{Cli, Command};

fn main() -> ExitCode {
    fixed_mmap_threshold();
    raise_open_file_limit();
    unset_empty_variables();
    let matches = match cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return usage_error(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let mut cli = match commands::cp::normalize(cli, &matches) {
        Ok(cli) => cli,
        Err(err) => return failed(&err),
    };
    if cli.only_show_errors {
        cli.quiet = true;
        stdout::keep_warnings();
    }
    if let Err(why) = cli.command.check_pairs() {
        return failed(&failure::Failure::new(failure::Exit::Usage, why).into());
    }
    if let Err(why) = cli.command.source_region() {
        return failed(&failure::Failure::new(failure::Exit::Usage, why).into());
    }
    if let (Some(many), Some((_, sub))) = (cli.command.many_mut(), matches.subcommand()) {
        many.order_filters(sub);
    }
    if let (Command::Rm(rm), Some((_, sub))) = (&mut cli.command, matches.subcommand()) {
        rm.filters.order(sub);
    }
    // Neither needs AWS configuration nor a runtime.
    match cli.command {
        Command::Completions { shell } => {
            return print_generated(|out| {
                clap_complete::generate(shell, &mut completion_command(), "atrest", out);
                Ok(())
            })
        }
        Command::Man { out_dir: None } => return print_generated(man::render_main),
        Command::Man { out_dir: Some(dir) } => {
            return match man::write_all(&dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let dir = dir.display();
                    crate::stdout::say_err!(
                        "atrest: error: cannot write the man pages into {dir}: {e}"
                    );
                    ExitCode::from(failure::Exit::Runtime as u8)
                }
            };
        }
        _ => {}
    }
    init_logging(cli.verbose, cli.quiet);
    // Before the runtime's threads: it sets a variable of the process.
    if let Err(err) = aws::use_ca_bundle(&cli.aws) {
        return failed(&err);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            crate::stdout::say_err!("atrest: error: cannot start the async runtime: {e}");
            return ExitCode::from(failure::Exit::Runtime as u8);
        }
    };
    let quiet = cli.quiet;
    let result = runtime.block_on(run(cli));
    // Do not wait for blocking reads still parked on stdin (after an error or
    // a signal): everything that matters has finished.
    runtime.shutdown_background();
    match result {
        Ok(done) => {
            if let (Some(line), false) = (done, quiet) {
                stdout::say!("{}", escape(&line));
            }
            match stdout::failed() {
                // The report was lost (said on stderr).
                true => ExitCode::from(failure::Exit::Runtime as u8),
                false => ExitCode::SUCCESS,
            }
        }
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.is::<interrupt::Interrupted>() => {
            let got = err
                .downcast_ref::<interrupt::Interrupted>()
                .expect("checked");
            crate::stdout::say_err!("atrest: {got}");
            ExitCode::from(128 + got.number as u8)
        }
        Err(err) => failed(&err),
    }
}

/// One line, and nothing in it (object keys, server messages) can drive
/// the terminal; the exit status by the error's kind.
fn failed(err: &anyhow::Error) -> ExitCode {
    crate::stdout::say_err!("atrest: error: {}", escape(&failure::message(err)));
    ExitCode::from(failure::exit_code(err) as u8)
}

/// A command-line error as every other error: `atrest: error: ...` on one
/// line (clap's tips folded in), then the usage line; exit 2. Help and
/// `--version` print as clap prints them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    }
    // Plain text (no styling): "error: MESSAGE", tips, "Usage: ...", and
    // "For more information, try '--help'.", separated by blank lines.
    let text = e.render().to_string();
    let mut message = String::new();
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(first) = line.strip_prefix("error: ") {
            message.push_str(first);
        } else if line.starts_with("Usage: ") {
            usage = Some(line.to_owned());
        } else if line.starts_with("For more information") {
        } else if message.is_empty() {
            message.push_str(line);
        } else {
            message.push_str(&format!(" ({line})"));
        }
    }
    crate::stdout::say_err!("atrest: error: {}", escape(&message));
    match usage {
        Some(usage) => crate::stdout::say_err!("{usage} (see --help)"),
        None => crate::stdout::say_err!("see `atrest --help`"),
    }
    ExitCode::from(failure::Exit::Usage as u8)
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

/// Variables set to nothing (`AWS_CA_BUNDLE= atrest ...`, an empty
/// `export` in a CI config) mean unset, as they do to the AWS CLI: else the
/// SDK takes an empty endpoint URL for one ("not a valid URI"), and clap an
/// empty --ca-bundle or --key for a missing value. Before any thread starts.
fn unset_empty_variables() {
    const NAMES: [&str; 8] = [
        "AWS_CA_BUNDLE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_KMS",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "ATREST_KMS_KEY",
    ];
    for name in NAMES {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
}

/// Takes the hard limit of open files as the soft one. `--jobs 256` runs
/// hold a file and up to `--concurrency` connections each, well past the
/// usual soft limit of 1,024: files then failed with "Too many open files"
/// (measured: 248 of 300 at a soft limit of 64). The hard limit is the
/// process's to take, as Go programs take it at start.
#[allow(unsafe_code)]
fn raise_open_file_limit() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: getrlimit and setrlimit read and write a plain struct owned
    // here; a failure leaves the limit as it was.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The command line as completions show it: clap_complete would list hidden
/// subcommands (`man`), so they are left out of a copy.
fn completion_command() -> clap::Command {
    let full = cli::command();
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

/// Writes generated text (completions, man page) to stdout, made whole in
/// memory first: clap_complete panics on a failed write (`| head -1`).
fn print_generated(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> ExitCode {
    use std::io::Write;
    let mut text = Vec::new();
    if let Err(e) = write(&mut text) {
        crate::stdout::say_err!("atrest: error: cannot generate the text: {e}");
        return ExitCode::from(failure::Exit::Runtime as u8);
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(&text).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            crate::stdout::say_err!("atrest: error: cannot write to stdout: {e}");
            ExitCode::from(failure::Exit::Runtime as u8)
        }
    }
}

/// Runs the command; on success, the line to print on stdout (unless
/// `--quiet`) if it has one: `upload: a.txt to s3://b/a.txt`, as the AWS CLI.
///
/// Every step runs under the interrupt guard (a signal drops it, with its
/// temporary output), except the parts of `encrypt` that abort their
/// multipart upload themselves.
async fn run(cli: Cli) -> anyhow::Result<Option<String>> {
    let interrupt = interrupt::Interrupt::listen()?;
    // Key files and local files need no AWS configuration at all.
    if let Command::Keygen { path } = &cli.command {
        return commands::keygen::run(path, cli.quiet).map(|()| None);
    }
    if let Command::Inspect {
        target: target @ cli::Target::File(_),
        json,
    } = &cli.command
    {
        let work = commands::inspect::run(None, target, *json);
        return interrupt.guard(work).await.map(|()| None);
    }
    let show_progress = progress::wanted(cli.quiet, cli.no_progress);
    if let Some(work) = commands::local::from_command(&cli, show_progress) {
        // Dropping the work on a signal removes the temporary output.
        return interrupt.guard(work).await.map(|()| None);
    }
    let clients = interrupt.guard(aws::clients(&cli.aws)).await?;
    if let Ok(Some((bucket, region))) = cli.command.source_region() {
        clients.regions.learn(bucket, region);
    }
    match &cli.command {
        Command::CreateDataKey { key_id, data_key } => {
            let work = commands::create_data_key::run(&clients.kms, key_id, data_key, cli.quiet);
            interrupt.guard(work).await.map(|()| None)
        }
        Command::EncryptWithKms {
            file,
            uri: cli::Target::S3(uri),
            key_file,
            encrypt,
            transfer,
            bulk,
        } => {
            let key_file = keyring::load_key_file(key_file.path.as_deref())?;
            let uri = &match bulk.recursive {
                true => uri.clone(),
                false => atrest_fs::destination::object_for(file, uri)?,
            };
            let mut args = commands::encrypt::Encrypt::new(
                file,
                uri,
                encrypt,
                transfer,
                progress::Show::Own(show_progress),
            );
            if bulk.recursive {
                let bulk =
                    commands::bulk::Bulk::new(&clients, key_file, bulk, show_progress, cli.quiet);
                return commands::bulk::encrypt_dir(&bulk, args, &interrupt)
                    .await
                    .map(|()| None);
            }
            if bulk.no_overwrite {
                let head = async {
                    match atrest_s3::head(&clients.s3, uri).await {
                        Ok(_) => Ok(true),
                        Err(atrest_s3::S3Error::NoSuchKey { .. }) => Ok(false),
                        Err(e) => Err(e.into()),
                    }
                };
                if interrupt.guard(head).await? {
                    let line =
                        commands::bulk::Transferred::upload(file, uri).moving(bulk.move_source);
                    commands::bulk::say_skipped(&line, bulk.many.json, cli.quiet);
                    return Ok(None);
                }
            }
            if bulk.dryrun {
                // As `aws s3 cp --dryrun`: the source must exist.
                if !atrest_fs::output::is_std_stream(file) {
                    std::fs::metadata(file).map_err(|e| {
                        anyhow::Error::from(e).context(format!("cannot open {}", file.display()))
                    })?;
                }
                let line = commands::bulk::Transferred::upload(file, uri).moving(bulk.move_source);
                let size = atrest_fs::output::regular_file_len(file).unwrap_or(0);
                return Ok(dry_run(line, size, bulk.many.json));
            }
            // What `mv` removes once the object is whole, if still so.
            let stamp = match bulk.move_source {
                true => Some(commands::moves::moved_file(file)?),
                false => None,
            };
            args.create_only = bulk.no_overwrite;
            let kms = std::sync::Arc::new(atrest_kms::CachedKeys::uncached(clients.kms.clone()));
            let keys = keyring::Keys::with(kms, key_file);
            let format = args.format;
            // Not guarded here: encrypt guards its steps and aborts its
            // multipart upload itself.
            let line = commands::bulk::Transferred::upload(file, uri).moving(bulk.move_source);
            let done = match commands::encrypt::run(&keys, &clients.s3, args, &interrupt).await {
                // Created by another writer after the check above.
                Err(e) if e.is::<commands::encrypt::Exists>() => {
                    commands::bulk::say_skipped(&line, bulk.many.json, cli.quiet);
                    return Ok(None);
                }
                done => report_failure(done, &line, bulk.many.json)?,
            };
            if let Some(stamp) = stamp {
                let removed = stamp.remove_if_unchanged().map_err(anyhow::Error::from);
                report_failure(removed, &line, bulk.many.json)?;
            }
            if bulk.many.json {
                let mut json = commands::bulk::object_json("", Some(&line), Ok(done.plaintext_len));
                json["object_bytes"] = done.object_len.into();
                json["format"] = format.name().into();
                json["kms_key"] = done.key_id.as_deref().into();
                json["kms_calls"] = keys.kms.calls().into();
                crate::stdout::say!("{json}");
                return Ok(None);
            }
            Ok(Some(line.to_string()))
        }
        Command::DecryptWithKms {
            uri: cli::Target::S3(uri),
            key_file,
            file,
            decrypt,
            transfer,
            bulk,
        } => {
            let key_file_path = key_file.path.as_deref();
            let key_file = keyring::load_key_file(key_file_path)?;
            let file = &match bulk.recursive {
                true => file.clone(),
                false => atrest_fs::destination::file_for(uri, file)?,
            };
            if !bulk.recursive {
                keyring::refuse_output_over_keys(file, &[key_file_path])?;
            }
            let args = commands::decrypt::Decrypt {
                uri,
                file,
                expect_context: &decrypt.expect_context,
                range: decrypt.range,
                allow_legacy: decrypt.allow_legacy,
                concurrency: transfer.concurrency.map(|n| n as usize),
                part_size: transfer.part_size as usize,
                quiet: cli.quiet,
                progress: progress::Show::Own(show_progress),
            };
            if bulk.recursive {
                let bulk =
                    commands::bulk::Bulk::new(&clients, key_file, bulk, show_progress, cli.quiet);
                return interrupt
                    .guard(commands::bulk::decrypt_prefix(&bulk, args))
                    .await
                    .map(|()| None);
            }
            let kms = std::sync::Arc::new(atrest_kms::CachedKeys::uncached(clients.kms.clone()));
            let keys = keyring::Keys::with(kms, key_file);
            if bulk.no_overwrite && !is_stdout(file) && std::fs::symlink_metadata(file).is_ok() {
                let line =
                    commands::bulk::Transferred::download(uri, file).moving(bulk.move_source);
                commands::bulk::say_skipped(&line, bulk.many.json, cli.quiet);
                return Ok(None);
            }
            if bulk.dryrun {
                // As `aws s3 cp --dryrun`: the object must exist (a HEAD).
                let head = async { Ok(atrest_s3::head(&clients.s3, uri).await?) };
                let size = interrupt.guard(head).await?.len;
                let line =
                    commands::bulk::Transferred::download(uri, file).moving(bulk.move_source);
                return Ok(dry_run(line, size, bulk.many.json));
            }
            if bulk.many.json && is_stdout(file) {
                return Err(failure::Failure::new(
                    failure::Exit::Usage,
                    "--json prints on stdout, which would carry the plaintext: give an output FILE",
                )
                .into());
            }
            if bulk.move_source {
                commands::moves::check_move_into(file)?;
            }
            let line = commands::bulk::Transferred::download(uri, file).moving(bulk.move_source);
            // Dropping the work on a signal removes the temporary output.
            let done = match interrupt
                .guard(commands::decrypt::run(&keys, &clients.s3, args))
                .await
            {
                Err(e) if bulk.from_s3.ignore_glacier_warnings && failure::is_archived(&e) => {
                    return Ok(None)
                }
                done => report_failure(done, &line, bulk.many.json)?,
            };
            if bulk.move_source {
                let delete = commands::moves::delete_downloaded(&clients.s3, uri, &done);
                report_failure(interrupt.guard(delete).await, &line, bulk.many.json)?;
            }
            if bulk.many.json {
                let mut json = commands::bulk::object_json("", Some(&line), Ok(done.written));
                json["format"] = done.format.name().into();
                json["kms_key"] = done.key_id.as_deref().into();
                json["kms_calls"] = keys.kms.calls().into();
                crate::stdout::say!("{json}");
                return Ok(None);
            }
            // Standard output carries the plaintext: nothing else goes there.
            Ok((!is_stdout(file)).then(|| line.to_string()))
        }
        Command::Sync {
            src,
            dst,
            sync,
            key_file,
            encrypt,
            decrypt,
            transfer,
            many,
        } => {
            let key_file = keyring::load_key_file(key_file.path.as_deref())?;
            let args = commands::sync::Sync {
                kms: &clients.kms,
                key_file,
                s3: &clients.s3,
                src,
                dst,
                sync,
                encrypt,
                decrypt,
                transfer,
                many,
                show_progress,
                quiet: cli.quiet,
            };
            // Transfers abort their own uploads on a signal (as encrypt's).
            commands::sync::run(args, &interrupt).await.map(|()| None)
        }
        Command::Inspect { target, json } => {
            let work = commands::inspect::run(Some(&clients.s3), target, *json);
            interrupt.guard(work).await.map(|()| None)
        }
        Command::Rewrap {
            objects,
            to_key,
            dryrun,
            context,
        } => {
            let args = commands::rewrap::Args {
                objects: commands::Objects::new(objects, cli.quiet)?,
                to_key,
                dry_run: *dryrun,
                context,
            };
            // Not dropped on a signal: an open multipart upload is aborted.
            let work = |stop| commands::rewrap::run(&clients.kms, &clients.s3, args, stop);
            interrupt.stopping(work).await.map(|()| None)
        }
        Command::Verify {
            objects,
            key_file,
            transfer,
        } => {
            let args = commands::verify::Args {
                objects: commands::Objects::new(objects, cli.quiet)?,
                concurrency: transfer.concurrency.map(|n| n as usize),
                part_size: transfer.part_size as usize,
            };
            let kms = std::sync::Arc::new(atrest_kms::CachedKeys::uncached(clients.kms.clone()));
            let key_file = keyring::load_key_file(key_file.path.as_deref())?;
            let keys = keyring::Keys::with(kms, key_file).source;
            let work = commands::verify::run(keys, &clients.s3, args);
            interrupt.guard(work).await.map(|()| None)
        }
        Command::Upgrade {
            objects,
            kms_key,
            dryrun,
        } => {
            let args = commands::upgrade::Args {
                objects: commands::Objects::new(objects, cli.quiet)?,
                key: kms_key.as_deref(),
                dry_run: *dryrun,
            };
            // The download's unwrap answers the upload's (the same wrapped
            // key), and --key makes one data key for many objects, as
            // `encrypt --recursive` does.
            let keys = std::sync::Arc::new(atrest_kms::CachedKeys::cached(
                clients.kms.clone(),
                cli::KEY_CACHE,
            ));
            // Not dropped on a signal: uploads are aborted, temporary
            // objects deleted.
            let work = |stop| commands::upgrade::run(keys, &clients.s3, args, stop);
            interrupt.stopping(work).await.map(|()| None)
        }
        Command::Ls {
            uri,
            recursive,
            json,
            human_readable,
            summarize,
            select,
        } => {
            let shown = commands::ls::Shown {
                json: *json,
                human_readable: *human_readable,
                summarize: *summarize,
            };
            let work = async {
                match uri {
                    Some(uri) => {
                        commands::ls::run(&clients.s3, uri, *recursive, shown, select, cli.quiet)
                            .await
                    }
                    None => commands::ls::buckets(&clients.s3, *recursive, *json, select).await,
                }
            };
            interrupt.guard(work).await.map(|()| None)
        }
        Command::Cp(cli::CpArgs {
            src: cli::Target::S3(from),
            dst: cli::Target::S3(to),
            encrypt,
            transfer,
            bulk,
            ..
        }) => {
            let args = commands::copy::Copy {
                from,
                to,
                recursive: bulk.recursive,
                dry_run: bulk.dryrun,
                no_overwrite: bulk.no_overwrite,
                jobs: bulk.many.jobs as usize,
                filters: &bulk.many.filters.rules,
                options: commands::copy::options(encrypt, transfer)?,
                json: bulk.many.json,
                move_source: bulk.move_source,
                quiet: cli.quiet,
                ignore_archived: bulk.from_s3.ignore_glacier_warnings,
            };
            // Not dropped on a signal: a copy in parts aborts its upload.
            let work = |stop| commands::copy::run(&clients.s3, args, stop);
            interrupt.stopping(work).await.map(|()| None)
        }
        Command::Rm(args) => {
            let work = commands::rm::run(&clients.s3, args, cli.quiet);
            interrupt.guard(work).await.map(|()| None)
        }
        Command::RewrapDataKey { to_key, data_key } => {
            let work = commands::rewrap::data_key(&clients.kms, to_key, data_key, cli.quiet);
            interrupt.guard(work).await.map(|()| None)
        }
        Command::Completions { .. }
        | Command::Man { .. }
        | Command::Keygen { .. }
        | Command::Cp(_)
        | Command::Mv(_)
        | Command::EncryptWithKms { .. }
        | Command::DecryptWithKms { .. } => {
            unreachable!("handled before AWS configuration")
        }
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
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match verbose {
        // Warnings read as the tool's other lines, one each.
        0 => logs.event_format(Plain).init(),
        _ => logs.init(),
    }
}

/// A log event as one plain line: `atrest: warning: what key=value ...`.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            _ => "note",
        };
        write!(writer, "atrest: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// With `--json`, a single transfer that failed has its object line
/// (status `failed`) on stdout, as each object of `-r` has; the error
/// itself still goes to stderr and sets the exit status.
fn report_failure<T>(
    result: anyhow::Result<T>,
    line: &commands::bulk::Transferred,
    json: bool,
) -> anyhow::Result<T> {
    if let (true, Err(e)) = (json, &result) {
        if !e.is::<interrupt::Interrupted>() {
            let json = commands::bulk::object_json("", Some(line), Err(e));
            crate::stdout::say!("{json}");
        }
    }
    result
}

/// What `--dryrun` of one object prints: `(dryrun) upload: a to s3://b/a`,
/// or with `--json` its JSON line (status `dryrun`, the bytes it would
/// read), as `--recursive` prints each.
fn dry_run(line: commands::bulk::Transferred, bytes: u64, json: bool) -> Option<String> {
    if !json {
        return Some(format!("(dryrun) {line}"));
    }
    let mut json = commands::bulk::object_json("", Some(&line), Ok(bytes));
    json["status"] = "dryrun".into();
    // Printed as it is: JSON escapes control characters itself.
    crate::stdout::say!("{json}");
    None
}

/// Untrusted text with control characters escaped (the engine's rule).
pub use atrest_transfer::escape;

/// Whether `path` is `-` or names our own standard output (a link to
/// /proc/self/fd/1, the terminal we write to, the pipe we write into).
fn is_stdout(path: &std::path::Path) -> bool {
    if atrest_fs::output::is_std_stream(path) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(dest), Ok(out)) = (std::fs::metadata(path), std::fs::metadata("/dev/stdout")) {
            return dest.dev() == out.dev() && dest.ino() == out.ino();
        }
    }
    false
}

/// A closed stdout (`atrest decrypt s3://... - | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
