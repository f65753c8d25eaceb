//! atrest's rows: `encrypt-with-kms` in every format its `--help` lists
//! (and one streaming PUT), `decrypt-with-kms` into a file on tmpfs, into a
//! file on disk and to stdout, each decryption checked against the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::files::{same_contents, tmpfs};
use super::measure::{no_check, Kind, Measurement, Row};
use super::{size_label, Ctx, BUCKET};

impl Ctx<'_> {
    /// The measured binary, in atrest's working directory.
    fn atrest(&self) -> Command {
        let mut cmd = Command::new(self.bin);
        cmd.current_dir(self.work);
        cmd
    }
}

/// The values of `--format` listed by clap's help (long or short form).
pub fn help_formats(help: &str) -> Vec<String> {
    let mut formats = Vec::new();
    let mut in_list = false;
    let mut in_format = false;
    for line in help.lines() {
        let t = line.trim();
        if t.starts_with("--format") {
            in_format = true;
            if let Some(rest) = t.split("[possible values: ").nth(1) {
                let list = rest.split(']').next().unwrap_or_default();
                formats.extend(list.split(',').map(|v| v.trim().to_owned()));
                break;
            }
            continue;
        }
        if in_format && t.starts_with("--") {
            break;
        }
        if in_format && t.starts_with("[possible values: ") {
            let list = t["[possible values: ".len()..].trim_end_matches(']');
            formats.extend(list.split(',').map(|v| v.trim().to_owned()));
            break;
        }
        if in_format && t.starts_with("Possible values:") {
            in_list = true;
            continue;
        }
        if in_list {
            match t.strip_prefix("- ") {
                Some(v) => formats.push(v.split(':').next().unwrap_or(v).trim().to_owned()),
                None => break,
            }
        }
    }
    formats
}

/// Objects up to S3's largest PUT go up in one streaming PutObject.
pub const SINGLE_PUT: [&str; 2] = ["--multipart-threshold", "5120"];

/// `extra` flags name a variant (its object gets its own key).
pub fn atrest_encrypt(
    ctx: &Ctx,
    file: &Path,
    size: u64,
    format: &str,
    runs: usize,
    extra: &[&str],
) -> Measurement {
    let variant = if extra.is_empty() { "" } else { "-variant" };
    let uri = format!(
        "s3://{BUCKET}/atrest-{format}-{}{variant}",
        size_label(size)
    );
    let mut name = format!("atrest encrypt-with-kms --format {format}");
    for flag in extra {
        name = format!("{name} {flag}");
    }
    let row = Row::upload(name, Kind::Atrest(format), size, runs);
    ctx.measure(
        &row,
        || {
            let mut c = ctx.atrest();
            c.arg("encrypt-with-kms").arg(file).arg(&uri);
            c.args(["--format", format]).args(extra);
            if ctx.has_key_flag && format != "v1" {
                c.args(["--key", ctx.key_id]);
            }
            c
        },
        no_check,
    )
}

/// Three rows: decrypting to a file on tmpfs (`/dev/shm`, when there is
/// one: the transfer and decryption without the disk), to a file beside the
/// others (adding the disk write and the `fsync` before the rename), and to
/// stdout (`-`, which the harness points at /dev/null, the sink of the
/// plain downloads; stdout takes the ordered path, not positional writes).
pub fn atrest_decrypt(
    ctx: &Ctx,
    file: &Path,
    size: u64,
    format: &str,
    runs: usize,
) -> Vec<Measurement> {
    let label = size_label(size);
    let uri = format!("s3://{BUCKET}/atrest-{format}-{label}");
    let name = format!("atrest-{format}-{label}.out");
    let row = |name| Row::download(name, Kind::Atrest(format), size, runs);
    let to_file = |what: &str, out: PathBuf| {
        ctx.measure(
            &row(format!("atrest decrypt-with-kms ({format}) to {what}")),
            || {
                let mut c = ctx.atrest();
                c.arg("decrypt-with-kms").arg(&uri).arg(&out);
                c
            },
            |run| {
                if run == 0 {
                    same_contents(file, &out)?;
                }
                std::fs::remove_file(&out).context("removing the decrypted file")
            },
        )
    };
    let mut rows = Vec::new();
    if let Some(shm) = tmpfs() {
        rows.push(to_file("a file on tmpfs", shm.join(&name)));
    }
    rows.push(to_file("a file", ctx.work.join(&name)));
    rows.push(ctx.measure(
        &row(format!(
            "atrest decrypt-with-kms ({format}) to stdout (/dev/null)"
        )),
        || {
            let mut c = ctx.atrest();
            c.arg("decrypt-with-kms").arg(&uri).arg("-");
            c
        },
        no_check,
    ));
    rows
}

/// `atrest verify` of the object `atrest_encrypt` wrote: download, unwrap
/// and decrypt (v2: authenticate) with nothing written, beside the plain
/// downloads (its target: at least 0.9 × the fastest).
pub fn atrest_verify(ctx: &Ctx, size: u64, format: &str, runs: usize) -> Measurement {
    let uri = format!("s3://{BUCKET}/atrest-{format}-{}", size_label(size));
    let row = Row::download(
        format!("atrest verify ({format}), nothing written"),
        Kind::Atrest(format),
        size,
        runs,
    );
    ctx.measure(
        &row,
        || {
            let mut c = ctx.atrest();
            c.arg("verify").arg(&uri);
            c
        },
        no_check,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_long_and_short_help() {
        let long = "      --format <FORMAT>\n          Object format to write\n\n          Possible values:\n          - v1: The original Node tool's format\n          - v2: Framed AES-256-GCM\n\n          [default: v2]\n\n      --part-size <MiB>\n";
        assert_eq!(help_formats(long), ["v1", "v2"]);
        let short = "      --format <FORMAT>  Object format to write [default: v1] [possible values: v1]\n      --part-size <MiB>\n";
        assert_eq!(help_formats(short), ["v1"]);
        let own_line = "      --format <FORMAT>\n          Object format to write\n\n          [default: v1]\n          [possible values: v1]\n";
        assert_eq!(help_formats(own_line), ["v1"]);
    }
}
