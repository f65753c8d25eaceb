//! `atrest ls`: what each object under a prefix is, from its header alone
//! (no KMS); the work is `atrest_transfer::list`.

use anyhow::Result;
use atrest_format::inspect::PlaintextLen;
use atrest_format::Header;
use atrest_s3::S3Uri;
use atrest_transfer::list::{group_key, Entry, Kind};
use aws_sdk_s3::primitives::DateTimeFormat;
use serde_json::json;

use crate::escape;
use crate::failure::{Exit, Failure};

/// Header reads in flight at once.
const CONCURRENCY: usize = 32;

/// How a listing is printed.
#[derive(Clone, Copy, Debug)]
pub struct Shown {
    /// One JSON document.
    pub json: bool,
    /// Sizes as `aws s3 ls --human-readable` prints them.
    pub human_readable: bool,
    /// The number of objects and their stored bytes at the end.
    pub summarize: bool,
}

pub async fn run(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
    recursive: bool,
    shown: Shown,
    select: &crate::cli::SelectArgs,
    quiet: bool,
) -> Result<()> {
    let selects = select.manifest.is_some() || select.shard.is_some();
    let listing = if selects {
        // Instruction files are listed too, each named as its object's.
        let selected = super::bulk::select(s3, uri, select, quiet).await?;
        let mut objects = selected.objects;
        objects.extend(selected.instruction_files);
        atrest_transfer::list::list_these(s3, uri, objects, recursive, CONCURRENCY).await?
    } else {
        atrest_transfer::list::list(s3, uri, recursive, CONCURRENCY).await?
    };
    // A manifest may name objects that are gone: listed so, not counted.
    let missing = listing
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Missing)
        .count();
    if missing > 0 && crate::stdout::warns(quiet) {
        let objects = super::count_of(missing, "object");
        let verb = if missing == 1 { "does" } else { "do" };
        crate::stdout::say_err!("warning: {objects} the manifest names {verb} not exist");
    }
    let count = listing.entries.len() - missing;
    let total: u64 = listing.entries.iter().map(|e| e.object_len).sum();
    if shown.json {
        let objects: Vec<_> = listing.entries.iter().map(to_json).collect();
        let mut doc = json!({ "objects": objects, "prefixes": listing.prefixes });
        if shown.summarize {
            doc["summary"] = json!({ "objects": count, "bytes": total });
        }
        crate::stdout::say!("{doc}");
    } else {
        // One level is named as `aws s3 ls` names it: below the listed
        // "directory" (the key up to its last `/`); whole keys otherwise.
        let base = match recursive || selects {
            true => "",
            false => &uri.key()[..uri.key().rfind('/').map_or(0, |i| i + 1)],
        };
        let name = |key: &'_ str| escape(key.strip_prefix(base).unwrap_or(key));
        for prefix in &listing.prefixes {
            crate::stdout::say!("{:>20}  PRE {}", "", name(prefix));
        }
        for entry in &listing.entries {
            let line = to_text(entry, &name(&entry.key), shown.human_readable);
            crate::stdout::say!("{line}");
        }
        if shown.summarize {
            let size = match shown.human_readable {
                true => human(total),
                false => total.to_string(),
            };
            crate::stdout::say!("\nTotal Objects: {count}\n   Total Size: {size}");
        }
    }
    // As `aws s3 ls`, so that `ls s3://b/p && ...` asks whether anything is
    // there (an empty bucket is no failure); a shard or a manifest may
    // rightly select nothing.
    let nothing = listing.entries.is_empty() && listing.prefixes.is_empty();
    if nothing && !uri.key().is_empty() && !selects {
        return Err(Failure::new(Exit::Runtime, format!("nothing under {uri}")).into());
    }
    Ok(())
}

/// `atrest ls` with no URI: the account's buckets, as `aws s3 ls` lists
/// them.
pub async fn buckets(
    s3: &aws_sdk_s3::Client,
    recursive: bool,
    as_json: bool,
    select: &crate::cli::SelectArgs,
) -> Result<()> {
    if recursive || select.manifest.is_some() || select.shard.is_some() {
        let why = "--recursive, --manifest and --shard list objects: give s3://BUCKET[/PREFIX]";
        return Err(Failure::new(Exit::Usage, why).into());
    }
    let buckets = atrest_s3::buckets(s3).await?;
    let created =
        |b: &atrest_s3::Bucket| b.created.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok());
    if as_json {
        let buckets: Vec<_> = buckets
            .iter()
            .map(|b| json!({ "name": b.name, "created": created(b) }))
            .collect();
        crate::stdout::say!("{}", json!({ "buckets": buckets }));
    } else {
        for bucket in &buckets {
            let when = created(bucket).unwrap_or_else(|| "-".into());
            crate::stdout::say!("{when:<20}  {}", escape(&bucket.name));
        }
    }
    Ok(())
}

fn modified(entry: &Entry) -> String {
    entry
        .last_modified
        .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
        .unwrap_or_else(|| "-".into())
}

fn plaintext(len: &PlaintextLen) -> (Option<u64>, Option<u64>, Option<u64>) {
    match *len {
        PlaintextLen::Exact(n) => (Some(n), Some(n), Some(n)),
        PlaintextLen::Between { min, max } => (None, Some(min), Some(max)),
        _ => (None, None, None),
    }
}

/// An S3 Encryption Client object's plaintext length, in atrest's terms.
fn s3ec_plaintext(envelope: &atrest_format::s3ec::Envelope, object_len: u64) -> PlaintextLen {
    match envelope.plaintext_len(object_len) {
        Some((n, m)) if n == m => PlaintextLen::Exact(n),
        Some((min, max)) => PlaintextLen::Between { min, max },
        None => PlaintextLen::InvalidBody,
    }
}

/// `k=v,k2=v2`, or `-` for no pairs.
fn pairs_text<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let pairs: Vec<String> = pairs
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    match pairs.is_empty() {
        true => "-".into(),
        false => pairs.join(","),
    }
}

/// A size as `aws s3 ls --human-readable` prints it: `1 Byte`,
/// `512 Bytes`, then `1.0 KiB`, `97.7 KiB`, `1.5 GiB`, ...
fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    match bytes {
        1 => return "1 Byte".into(),
        0..1024 => return format!("{bytes} Bytes"),
        _ => {}
    }
    let mut value = bytes as f64 / 1024.0;
    for unit in &UNITS[..UNITS.len() - 1] {
        // 1023.95 KiB prints as 1.0 MiB, not 1024.0 KiB.
        if (value * 10.0).round() < 10240.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} EiB")
}

/// `MODIFIED FORMAT PLAINTEXT FRAME KEY CONTEXT NAME`, one line; `name`
/// is the entry's key as shown (escaped).
fn to_text(entry: &Entry, name: &str, human_readable: bool) -> String {
    let size_of = |n: u64| match human_readable {
        true => human(n),
        false => n.to_string(),
    };
    let size_text = |len: PlaintextLen| match len {
        PlaintextLen::Exact(n) => size_of(n),
        // Padding (v1, CBC) hides the exact length.
        PlaintextLen::Between { min, .. } if human_readable => format!("~{}", human(min)),
        PlaintextLen::Between { min, max } => format!("{min}-{max}"),
        _ => "invalid".into(),
    };
    let (format, size, frame, key, context) = match &entry.kind {
        Kind::Atrest(info) => {
            let size = size_text(info.plaintext_len);
            let frame = info.frame_size().map_or("-".into(), |f| f.to_string());
            let shared = match &info.header {
                Header::V2(h) => h.context().is_shared_data_key(),
                _ => true,
            };
            // What reading it needs: a key file is named as such.
            let key_file = info.header.keyring() == atrest_format::keyring::Keyring::KeyFile;
            let key = match (key_file, shared) {
                (true, _) => "key-file",
                (false, true) => "shared",
                (false, false) => "per-object",
            };
            let format = format!("v{}", info.version());
            let context = match info.context() {
                Some(ctx) => pairs_text(ctx.user_pairs()),
                None => "-".into(),
            };
            (format, size, frame, key.to_owned(), context)
        }
        Kind::S3EncryptionClient => match &entry.s3ec {
            Some(envelope) => {
                let size = size_text(s3ec_plaintext(envelope, entry.object_len));
                let context = pairs_text(envelope.user_context());
                (
                    "s3ec".into(),
                    size,
                    "-".into(),
                    "per-object".into(),
                    context,
                )
            }
            // Its envelope is in an instruction file, not read here.
            None => (
                "s3ec".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ),
        },
        Kind::Other(_)
        | Kind::Missing
        | Kind::Unreadable(_)
        | Kind::InstructionFile
        | Kind::FolderMarker => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
    };
    let mut line = format!(
        "{:<20}  {:<4} {:>12} {:>8}  {:<10}  {}  {name}",
        modified(entry),
        format,
        size,
        frame,
        key,
        context
    );
    match &entry.kind {
        Kind::Other(why) => line.push_str(&format!("  (not an atrest object: {})", escape(why))),
        Kind::Unreadable(why) => line.push_str(&format!("  (not read: {})", escape(why))),
        Kind::Missing => line.push_str("  (does not exist)"),
        Kind::InstructionFile => line.push_str(&format!(
            "  (S3 Encryption Client instruction file of {})",
            escape(group_key(&entry.key))
        )),
        Kind::FolderMarker => line.push_str("  (folder marker)"),
        Kind::S3EncryptionClient => {
            if let Some(why) = &entry.s3ec_damage {
                line.push_str(&format!("  (damaged: {})", escape(why)));
            }
        }
        _ => {}
    }
    line
}

fn to_json(entry: &Entry) -> serde_json::Value {
    let mut v = json!({
        "key": entry.key,
        "object_len": entry.object_len,
        "last_modified": entry.last_modified.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok()),
        "kms_key_arn": entry.kms_key_arn,
    });
    match &entry.kind {
        Kind::Atrest(info) => {
            let (exact, min, max) = plaintext(&info.plaintext_len);
            let context: Option<serde_json::Map<String, serde_json::Value>> =
                info.context().map(|ctx| {
                    ctx.user_pairs()
                        .map(|(k, v)| (k.to_owned(), json!(v)))
                        .collect()
                });
            let shared = info.context().is_none_or(|c| c.is_shared_data_key());
            v["format"] = json!(format!("v{}", info.version()));
            v["plaintext_len"] = json!(exact);
            v["plaintext_len_min"] = json!(min);
            v["plaintext_len_max"] = json!(max);
            v["frame_size"] = json!(info.frame_size());
            v["shared_data_key"] = json!(shared);
            v["keyring"] = json!(match info.header.keyring() {
                atrest_format::keyring::Keyring::KeyFile => "key-file",
                _ => "kms",
            });
            v["context"] = json!(context);
        }
        Kind::S3EncryptionClient => {
            v["format"] = json!("s3ec");
            if let Some(envelope) = &entry.s3ec {
                let (exact, min, max) = plaintext(&s3ec_plaintext(envelope, entry.object_len));
                let context: serde_json::Map<String, serde_json::Value> = envelope
                    .user_context()
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect();
                v["plaintext_len"] = json!(exact);
                v["plaintext_len_min"] = json!(min);
                v["plaintext_len_max"] = json!(max);
                v["content"] = json!(envelope.content.name());
                v["wrap"] = json!(envelope.wrap.name());
                v["context"] = json!(context);
            }
            if let Some(why) = &entry.s3ec_damage {
                v["reason"] = json!(why);
            }
        }
        Kind::InstructionFile => {
            v["format"] = json!("s3ec instruction file");
            v["object"] = json!(group_key(&entry.key));
        }
        Kind::FolderMarker => v["format"] = json!("folder marker"),
        Kind::Other(why) => {
            v["format"] = json!("not atrest");
            v["reason"] = json!(why);
        }
        Kind::Unreadable(why) => {
            v["format"] = json!("not read");
            v["reason"] = json!(why);
        }
        Kind::Missing => {
            v["format"] = json!("missing");
            v["reason"] = json!("it does not exist");
        }
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes_read_as_the_aws_cli_prints_them() {
        let cases = [
            (0, "0 Bytes"),
            (1, "1 Byte"),
            (1023, "1023 Bytes"),
            (1024, "1.0 KiB"),
            (100_000, "97.7 KiB"),
            (1_048_524, "1023.9 KiB"),
            (1_048_575, "1.0 MiB"),
            (5 << 30, "5.0 GiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(super::human(bytes), want, "{bytes}");
        }
    }
}
