//! `atrest inspect`: what an object's header says, without KMS, from its
//! first bytes only.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use atrest_format::inspect::{inspect, Inspected, Inspection, PlaintextLen};
use atrest_format::keyring::Keyring;
use atrest_format::{Header, MAX_HEADER_LEN};
use atrest_s3::S3Uri;
use serde_json::json;

use crate::escape;
use crate::failure::{Exit, Failure};

/// An object to inspect: in S3 or a local file (e.g. downloaded as is).
#[derive(Clone, Debug)]
pub enum Target {
    S3(S3Uri),
    File(std::path::PathBuf),
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_with(s, S3Uri::parse)
    }

    /// As [`Target::parse`], but `s3://BUCKET` and `s3://BUCKET/` are
    /// accepted too (the whole bucket, as a prefix).
    pub fn parse_prefix(s: &str) -> Result<Self, String> {
        Self::parse_with(s, S3Uri::parse_prefix)
    }

    fn parse_with(
        s: &str,
        parse: fn(&str) -> Result<S3Uri, atrest_s3::S3UriError>,
    ) -> Result<Self, String> {
        // Another scheme (`http://...`) is a mistaken URI, not a file name.
        let scheme = s.split_once("://").map(|(scheme, _)| scheme);
        let is_uri = scheme.is_some_and(|sc| {
            sc.starts_with(|c: char| c.is_ascii_alphabetic())
                && sc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        if is_uri {
            parse(s).map(Target::S3).map_err(|e| e.to_string())
        } else {
            Ok(Target::File(s.into()))
        }
    }

    fn name(&self) -> String {
        match self {
            Target::S3(uri) => escape(&uri.to_string()),
            Target::File(path) => escape(&path.display().to_string()),
        }
    }
}

pub async fn run(s3: Option<&aws_sdk_s3::Client>, target: &Target, as_json: bool) -> Result<()> {
    // No header is longer than MAX_HEADER_LEN, so one read always suffices.
    let (prefix, object_len, metadata) = match target {
        Target::S3(uri) => {
            let s3 = s3.expect("S3 client for an S3 target");
            let range = atrest_s3::ByteRange::new(0, MAX_HEADER_LEN as u64 - 1);
            let got = atrest_s3::get_range(s3, uri, range, None).await?;
            (got.bytes.to_vec(), got.object_len, got.metadata)
        }
        Target::File(path) => read_prefix(path)?,
    };
    let name = target.name();
    if let Target::S3(uri) = target {
        let s3 = s3.expect("S3 client for an S3 target");
        let probe = inspect(&prefix, object_len).is_err();
        let describe_all = atrest_format::s3ec::Policy { allow_legacy: true };
        if let Some(envelope) =
            atrest_transfer::s3ec::detect(s3, uri, &metadata, probe, describe_all)
                .await
                .map_err(crate::failure::from_transfer)?
        {
            print!(
                "{}",
                crate::commands::s3ec::describe(&name, &envelope, object_len, as_json)
            );
            return Ok(());
        }
    }
    let not_atrest = |why: String| -> anyhow::Error {
        let hint = if metadata.keys().any(|k| k.starts_with("x-amz-key")) {
            " (its metadata says it is an Amazon S3 Encryption Client object)"
        } else {
            ""
        };
        Failure::new(
            Exit::Untrusted,
            format!(
                "{name} is not an atrest object: {why}{hint}; {object_len} bytes, starting {}",
                first_bytes(&prefix)
            ),
        )
        .into()
    };
    let info = match inspect(&prefix, object_len) {
        Ok(Inspected::Complete(info)) => info,
        Ok(Inspected::Incomplete { .. }) => {
            return Err(not_atrest("its header is incomplete".into()))
        }
        Err(e) => return Err(not_atrest(e.to_string())),
    };
    // Informational: KMS alone decides which key unwraps.
    let recorded = metadata
        .get(atrest_transfer::KMS_KEY_METADATA)
        .map(String::as_str);
    if as_json {
        let mut doc = to_json(&name, &info);
        doc["kms_key_arn"] = json!(recorded);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", to_text(&name, &info, recorded));
    }
    Ok(())
}

fn read_prefix(path: &Path) -> Result<(Vec<u8>, u64, std::collections::HashMap<String, String>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut prefix = Vec::new();
    file.take(MAX_HEADER_LEN as u64).read_to_end(&mut prefix)?;
    Ok((prefix, len, Default::default()))
}

fn first_bytes(prefix: &[u8]) -> String {
    let hex: Vec<String> = prefix.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if hex.is_empty() {
        "empty".into()
    } else {
        hex.join(" ")
    }
}

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
