//! `atrest inspect`: what an object's header says, without KMS, from its
//! first bytes only.

use std::path::Path;

use anyhow::{Context, Result};
use atrest_format::inspect::{Inspection, PlaintextLen};
use atrest_format::keyring::Keyring;
use atrest_format::{Header, MAX_HEADER_LEN};
use atrest_transfer::inspect::Found;
use serde_json::json;

use crate::cli::Target;
use crate::escape;
use crate::failure::{Exit, Failure};

pub async fn run(s3: Option<&aws_sdk_s3::Client>, target: &Target, as_json: bool) -> Result<()> {
    let object = match target {
        Target::S3(uri) => {
            let s3 = s3.expect("S3 client for an S3 target");
            let object = atrest_transfer::inspect::object(s3, uri).await;
            (object.map_err(crate::failure::from_transfer)?, true)
        }
        Target::File(path) => read_prefix(path).await?,
    };
    let (object, read_whole) = object;
    let name = target.name();
    let object_len = match read_whole {
        true => object.object_len.to_string(),
        false => format!("more than {}", object.object_len),
    };
    match object.found {
        Found::Atrest { info, kms_key_arn } if as_json => {
            let mut doc = to_json(&name, &info);
            doc["kms_key_arn"] = json!(kms_key_arn);
            crate::stdout::say!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Found::Atrest { info, kms_key_arn } => {
            crate::stdout::say_text!("{}", to_text(&name, &info, kms_key_arn.as_deref()))
        }
        Found::S3EncryptionClient(envelope) => crate::stdout::say_text!(
            "{}",
            crate::commands::s3ec::describe(&name, &envelope, object.object_len, as_json)
        ),
        Found::Other(other) => {
            let hint = match other.s3ec_metadata {
                true => " (its metadata says it is an Amazon S3 Encryption Client object)",
                false => "",
            };
            return Err(Failure::new(
                Exit::Untrusted,
                format!(
                    "{name} is not an atrest object: {}{hint}; {object_len} bytes{}",
                    other.why,
                    first_bytes(&other.first_bytes, read_whole.then_some(object.object_len))
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// A local file's first bytes (`-`: stdin's), and whether its length is
/// known. Through tokio (the blocking pool): opening a FIFO waits for its
/// writer, and a signal must still stop the command. The length of
/// anything but a regular file is counted by reading it to its end, unless
/// its first bytes already say it is no atrest object (`/dev/zero` has no
/// end): its length is then only "more than" those.
async fn read_prefix(path: &Path) -> Result<(atrest_transfer::inspect::Object, bool)> {
    use tokio::io::AsyncReadExt;
    let cannot_read = || format!("cannot read {}", path.display());
    if !atrest_fs::output::is_std_stream(path) && path.is_dir() {
        let why = format!(
            "{} is a directory: inspect takes one file or object (`atrest ls -r` lists a prefix)",
            path.display()
        );
        return Err(crate::failure::Failure::new(crate::failure::Exit::Usage, why).into());
    }
    let mut input = atrest_fs::output::open_input(path).await?;
    let mut prefix = Vec::new();
    (&mut input)
        .take(MAX_HEADER_LEN as u64)
        .read_to_end(&mut prefix)
        .await
        .with_context(cannot_read)?;
    // Read to its end already: that is its length, whatever its size says
    // (files of /proc and /sys say 0 or 4096).
    let regular = atrest_fs::output::regular_file_len(path)
        .filter(|&len| prefix.len() == MAX_HEADER_LEN && len >= MAX_HEADER_LEN as u64);
    let len = match regular {
        _ if prefix.len() < MAX_HEADER_LEN => prefix.len() as u64,
        Some(len) => len,
        None if prefix.len() == MAX_HEADER_LEN
            && atrest_format::inspect::inspect(&prefix, u64::MAX).is_err() =>
        {
            let len = prefix.len() as u64;
            let object = atrest_transfer::inspect::bytes(&prefix, len, &Default::default());
            return Ok((object, false));
        }
        None => {
            let rest = tokio::io::copy(&mut input, &mut tokio::io::sink()).await;
            prefix.len() as u64 + rest.with_context(cannot_read)?
        }
    };
    let object = atrest_transfer::inspect::bytes(&prefix, len, &Default::default());
    Ok((object, true))
}

/// `, starting 1f 8b 08 ...`: what the file is (gzip, PDF), for a look.
/// Not for small inputs: a key file (`atrest keygen`, 32 bytes) is no
/// atrest object either, and its bytes are a secret.
fn first_bytes(prefix: &[u8], len: Option<u64>) -> String {
    if len.is_some_and(|len| len <= SMALL) {
        return String::new();
    }
    let hex: Vec<String> = prefix.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(", starting {}", hex.join(" "))
}

/// Inputs this small have their bytes kept out of messages.
const SMALL: u64 = 64;

fn format_name(info: &Inspection) -> &'static str {
    match &info.header {
        Header::V1(_) => "v1 (AES-256-CBC, unauthenticated; the original Node tool's format)",
        _ => "v2 (AES-256-GCM frames, HKDF-SHA-256, key commitment)",
    }
}

fn data_key_kind(info: &Inspection) -> &'static str {
    match info.context() {
        Some(ctx) if ctx.keyring() == Keyring::KeyFile => {
            "per object, wrapped under a key file (binds the encryption context)"
        }
        Some(ctx) if ctx.is_shared_data_key() => "shared (data.key; KMS binds no context)",
        Some(_) => "per object (KMS binds the encryption context)",
        None => "shared (data.key)",
    }
}

fn to_text(name: &str, info: &Inspection, recorded_key: Option<&str>) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18}{v}\n"));
    line("object", name.to_owned());
    line("format", format_name(info).to_owned());
    if let Some(size) = info.frame_size() {
        line("frame size", format!("{size} bytes"));
    }
    if let Some(frames) = info.frame_count() {
        line("frames", frames.to_string());
    }
    line("object length", format!("{} bytes", info.object_len));
    line("header length", format!("{} bytes", info.header_len()));
    line("ciphertext length", format!("{} bytes", info.body_len));
    line(
        "plaintext length",
        match info.plaintext_len {
            PlaintextLen::Exact(n) => format!("{n} bytes"),
            PlaintextLen::Between { min, max } => {
                format!("{min} to {max} bytes (v1 padding hides the exact length)")
            }
            other => other.to_string(),
        },
    );
    line("wrapped key", format!("{} bytes", info.wrapped_key_len()));
    line("data key", data_key_kind(info).to_owned());
    if let Some(arn) = recorded_key {
        line(
            "KMS key",
            format!("{} (recorded in the metadata)", escape(arn)),
        );
    }
    if let Some(ctx) = info.context() {
        out.push_str("context\n");
        for (k, v) in ctx.iter() {
            out.push_str(&format!("  {} = {}\n", escape(k), escape(v)));
        }
    }
    out
}

fn to_json(name: &str, info: &Inspection) -> serde_json::Value {
    let (exact, min, max) = match info.plaintext_len {
        PlaintextLen::Exact(n) => (Some(n), Some(n), Some(n)),
        PlaintextLen::Between { min, max } => (None, Some(min), Some(max)),
        _ => (None, None, None),
    };
    let context: Option<serde_json::Map<String, serde_json::Value>> = info
        .context()
        .map(|ctx| ctx.iter().map(|(k, v)| (k.to_owned(), json!(v))).collect());
    json!({
        "object": name,
        "version": info.version(),
        "suite": info.suite(),
        "frame_size": info.frame_size(),
        "frames": info.frame_count(),
        "object_len": info.object_len,
        "header_len": info.header_len(),
        "ciphertext_len": info.body_len,
        "plaintext_len": exact,
        "plaintext_len_min": min,
        "plaintext_len_max": max,
        "body_valid": !matches!(info.plaintext_len, PlaintextLen::InvalidBody),
        "wrapped_key_len": info.wrapped_key_len(),
        "shared_data_key": info.context().is_none_or(|c| c.is_shared_data_key()),
        "keyring": match info.header.keyring() {
            Keyring::KeyFile => "key-file",
            _ => "kms",
        },
        "context": context,
    })
}
