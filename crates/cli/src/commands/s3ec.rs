//! Objects of the AWS S3 Encryption Client as `inspect` shows them (the
//! engine, `atrest_transfer::s3ec`, detects, decrypts and writes them).

use atrest_format::s3ec::{self as format, Content, Envelope};

/// `inspect` of an S3EC object: what its metadata says, without KMS.
pub fn describe(name: &str, envelope: &Envelope, object_len: u64, as_json: bool) -> String {
    let content = match envelope.content {
        Content::Cbc { .. } => "AES-256-CBC (legacy, unauthenticated)",
        Content::Gcm { .. } => "AES-256-GCM (suite 0x0072, no key commitment)",
        Content::Committed { .. } => "AES-256-GCM, HKDF-SHA-512, key commitment (suite 0x0073)",
    };
    let plain_len = match envelope.content {
        Content::Cbc { .. } => None,
        _ => format::gcm_plaintext_len(object_len),
    };
    let placement = if envelope.instruction_file {
        "instruction file (KEY.instruction)"
    } else {
        "object metadata"
    };
    let user: Vec<(&str, &str)> = envelope.user_context().collect();
    if as_json {
        let context: serde_json::Map<String, serde_json::Value> = envelope
            .context
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        let v = serde_json::json!({
            "object": name,
            "format": format!("s3ec-{}", envelope.version).to_lowercase(),
            "content": envelope.content.name(),
            "wrap": envelope.wrap.name(),
            "object_len": object_len,
            "plaintext_len": plain_len,
            "wrapped_key_len": envelope.wrapped_key.len(),
            "instruction_file": envelope.instruction_file,
            "context": context,
        });
        return serde_json::to_string_pretty(&v).expect("JSON of strings and numbers") + "\n";
    }
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18}{v}\n"));
    line("object", name.to_owned());
    line(
        "format",
        format!("AWS S3 Encryption Client {}", envelope.version),
    );
    line("content", content.to_owned());
    line("key wrap", envelope.wrap.name().to_owned());
    line("metadata in", placement.to_owned());
    line("object length", format!("{object_len} bytes"));
    line(
        "plaintext length",
        match plain_len {
            Some(n) => format!("{n} bytes"),
            None if matches!(envelope.content, Content::Cbc { .. }) => {
                "up to 16 bytes less than the object (CBC padding)".into()
            }
            None => "invalid: the object is shorter than a tag".into(),
        },
    );
    line(
        "wrapped key",
        format!("{} bytes", envelope.wrapped_key.len()),
    );
    out.push_str("context\n");
    for (k, v) in &user {
        out.push_str(&format!("  {} = {}\n", crate::escape(k), crate::escape(v)));
    }
    out
}
