//! `atrest cp SRC DST`: `encrypt` or `decrypt`, by which side is s3://, as
//! `aws s3 cp` decides; and the checks on the command line that clap's
//! declarations cannot say (flags of one direction given to the other,
//! flags of many files given for one).
//!
//! `cp` is turned into the `encrypt` or `decrypt` command it means before
//! anything runs, so both run exactly the same code; between two s3://
//! locations it stays `cp`, a copy inside S3 (`commands::copy`).

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use crate::cli::Target;
use crate::cli::{Cli, Command, CpArgs, DecryptArgs, EncryptArgs, ManyArgs};
use crate::failure::{Exit, Failure};

/// The command as it will run: `cp` becomes `encrypt` or `decrypt`; flags
/// that do not apply are refused.
pub fn normalize(mut cli: Cli, matches: &ArgMatches) -> anyhow::Result<Cli> {
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(cli);
    };
    cli.command = match cli.command {
        Command::Mv(mut args) => {
            refuse_for_moves(&args)?;
            args.bulk.move_source = true;
            Command::Cp(args)
        }
        other => other,
    };
    match &cli.command {
        Command::Cp(CpArgs {
            src: Target::S3(_),
            dst: Target::S3(_),
            bulk,
            encrypt,
            ..
        }) => {
            if !bulk.recursive {
                refuse::<ManyArgs>(sub, "--recursive only", &[])?;
            }
            refuse_for_copies(sub, encrypt)?;
            refuse::<crate::cli::SelectArgs>(sub, COPIES, &[])?;
            return Ok(cli);
        }
        Command::Sync {
            src: Target::S3(_),
            dst: Target::S3(_),
            encrypt,
            ..
        } => {
            refuse_for_copies(sub, encrypt)?;
            return Ok(cli);
        }
        _ => {}
    }
    cli.command = match cli.command {
        Command::Cp(CpArgs {
            src,
            dst,
            key_file,
            encrypt,
            decrypt,
            transfer,
            bulk,
        }) => match (src, dst) {
            (Target::File(file), uri @ Target::S3(_)) => {
                refuse::<DecryptArgs>(sub, "downloads (SRC s3://...)", &[])?;
                Command::EncryptWithKms {
                    file,
                    uri,
                    key_file,
                    encrypt,
                    transfer,
                    bulk,
                }
            }
            (uri @ Target::S3(_), Target::File(file)) => {
                refuse::<EncryptArgs>(sub, "uploads (DST s3://...)", &[])?;
                Command::DecryptWithKms {
                    uri,
                    file,
                    key_file,
                    decrypt,
                    transfer,
                    bulk,
                }
            }
            (Target::S3(_), Target::S3(_)) => unreachable!("a copy is returned above"),
            (Target::File(_), Target::File(_)) => {
                return Err(usage(
                    "cp needs one s3:// side (SRC to upload, DST to download); for local files use `atrest encrypt IN OUT` or `atrest decrypt IN OUT`",
                ))
            }
        },
        other => other,
    };
    match &mut cli.command {
        Command::EncryptWithKms {
            bulk,
            encrypt,
            key_file,
            ..
        } => {
            if !bulk.recursive {
                refuse::<ManyArgs>(sub, "--recursive only", &[])?;
            }
            refuse_directive(sub)?;
            one_key_source(sub, encrypt, key_file.path.is_some())?;
        }
        Command::DecryptWithKms { bulk, decrypt, .. } => {
            if !bulk.recursive {
                refuse::<ManyArgs>(sub, "--recursive only", &[])?;
            } else if decrypt.range.is_some() {
                return Err(usage("--range takes one object: not with --recursive"));
            }
        }
        Command::Sync {
            decrypt,
            encrypt,
            key_file,
            ..
        } => {
            if decrypt.range.is_some() {
                return Err(usage("--range takes one object: not with sync"));
            }
            refuse_directive(sub)?;
            one_key_source(sub, encrypt, key_file.path.is_some())?;
        }
        _ => {}
    }
    Ok(cli)
}

/// A move removes its source once the copy is whole: a stream has no
/// copy to check (and cannot be removed), part of an object is not the
/// object, and an object moved onto itself, or a prefix into one that
/// overlaps it, would delete what it just wrote.
fn refuse_for_moves(args: &CpArgs) -> anyhow::Result<()> {
    if let (Target::File(_), Target::File(_)) = (&args.src, &args.dst) {
        return Err(usage(
            "mv needs an s3:// side: SRC to download, DST to upload, or both to move inside S3",
        ));
    }
    let stream = |t: &Target| matches!(t, Target::File(p) if atrest_fs::output::is_std_stream(p));
    if stream(&args.src) || stream(&args.dst) {
        return Err(usage(
            "mv takes files and objects, not streams (`-`): use cp",
        ));
    }
    if args.decrypt.range.is_some() {
        return Err(usage(
            "--range takes part of an object: mv moves whole objects",
        ));
    }
    if let (Target::S3(from), Target::S3(to)) = (&args.src, &args.dst) {
        let same_bucket = from.bucket() == to.bucket();
        if args.bulk.recursive {
            let (a, b) = (
                atrest_fs::tree::as_prefix(from.key()),
                atrest_fs::tree::as_prefix(to.key()),
            );
            if same_bucket && (a.starts_with(&b) || b.starts_with(&a)) {
                return Err(usage(&format!(
                    "{from} and {to} overlap: mv -r moves between prefixes neither of which holds the other"
                )));
            }
        } else if same_bucket && from.key() == to.key() {
            return Err(usage(&format!("cannot move {from} onto itself")));
        }
    }
    Ok(())
}

/// What the flags of uploads and downloads do not apply to.
const COPIES: &str = "uploads and downloads, not to copies between s3:// locations";

/// A copy inside S3 (`cp` or `sync` between s3:// locations) is made as
/// it is: nothing is encrypted or decrypted, so no key, context or
/// property flag applies.
fn refuse_for_copies(sub: &ArgMatches, encrypt: &EncryptArgs) -> anyhow::Result<()> {
    let downloads = "downloads, not to copies between s3:// locations";
    refuse::<DecryptArgs>(sub, downloads, &[])?;
    let replaces = encrypt.properties.replaces();
    let mut allowed = vec!["multipart_threshold", "storage_class", "metadata_directive"];
    if replaces {
        allowed.extend(REPLACED);
    }
    let uploads = match !replaces && REPLACED.iter().any(|id| given(sub, id)) {
        true => "uploads, or to copies with --metadata-directive REPLACE",
        false => "uploads, not to copies between s3:// locations",
    };
    refuse::<EncryptArgs>(sub, uploads, &allowed)?;
    refuse::<crate::cli::KeyFileArg>(sub, COPIES, &[])?;
    refuse::<ManyArgs>(sub, COPIES, &["jobs", "include", "exclude"])
}

/// The properties a copy with `--metadata-directive REPLACE` takes.
const REPLACED: [&str; 7] = [
    "content_type",
    "content_disposition",
    "content_encoding",
    "content_language",
    "cache_control",
    "expires",
    "metadata",
];

/// An upload makes its object's metadata: no directive applies.
fn refuse_directive(sub: &ArgMatches) -> anyhow::Result<()> {
    match given(sub, "metadata_directive") {
        true => Err(usage(
            "--metadata-directive applies to copies between s3:// locations",
        )),
        false => Ok(()),
    }
}

/// Whether the flag `id` was given on the command line.
fn given(sub: &ArgMatches, id: &str) -> bool {
    sub.value_source(id) == Some(ValueSource::CommandLine)
}

/// `--key-file`, `--key` and `--data-key` exclude each other; a key from
/// ATREST_KMS_KEY gives way to either of the others, and to `--format v1`.
fn one_key_source(
    sub: &ArgMatches,
    encrypt: &mut EncryptArgs,
    key_file: bool,
) -> anyhow::Result<()> {
    let data_key = given(sub, "data_key");
    let kms_key = given(sub, "kms_key");
    let clash = match (key_file, kms_key, data_key) {
        (true, true, _) => Some("--key-file and --key"),
        (true, _, true) => Some("--key-file and --data-key"),
        (_, true, true) => Some("--key and --data-key"),
        _ => None,
    };
    if let Some(both) = clash {
        let why =
            format!("{both} exclude each other: a data key is wrapped under one or the other");
        return Err(usage(&why));
    }
    // v1 objects always use data.key: the variable has nothing to say.
    let v1 = encrypt.format == crate::cli::Format::V1;
    if key_file || data_key || (v1 && !kms_key) {
        encrypt.kms_key = None;
    }
    Ok(())
}

/// Fails if any flag that `T` defines, but those of `allowed`, was given
/// on the command line: they apply to `what` only.
fn refuse<T: Args>(sub: &ArgMatches, what: &str, allowed: &[&str]) -> anyhow::Result<()> {
    let defined = T::augment_args(clap::Command::new("flags"));
    let given: Vec<String> = defined
        .get_arguments()
        // --json also reports one object.
        .filter(|a| a.get_id() != "json")
        .filter(|a| !allowed.contains(&a.get_id().as_str()))
        .filter(|a| sub.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|a| format!("--{}", a.get_long().unwrap_or(a.get_id().as_str())))
        .collect();
    match given.is_empty() {
        true => Ok(()),
        false => {
            let verb = if given.len() == 1 { "applies" } else { "apply" };
            Err(usage(&format!("{} {verb} to {what}", given.join(", "))))
        }
    }
}

fn usage(message: &str) -> anyhow::Error {
    Failure::new(Exit::Usage, message).into()
}
