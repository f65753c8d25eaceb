//! What a job does, from its `userArguments`.

use std::collections::BTreeMap;

use atrest_s3::S3Uri;

/// The operation a job runs on each of its objects, chosen by the user
/// argument `operation`. Each variant takes only the arguments listed; any
/// other name is refused, so a typo fails the job's first task instead of
/// being ignored on a hundred million objects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `operation=encrypt`: a plaintext object becomes an atrest v2 object.
    Encrypt(Encrypt),
    /// `operation=rewrap`: an atrest object moves to another KMS key.
    Rewrap(Rewrap),
    /// `operation=verify`: an atrest object is checked end to end.
    Verify(Verify),
    /// `operation=upgrade`: an atrest v1 object becomes a v2 object.
    Upgrade(Upgrade),
}

/// `encrypt`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypt {
    /// `kmsKey` (required): the KMS key that wraps each object's data key.
    pub kms_key: String,
    /// `destination` (optional): `s3://BUCKET/PREFIX`; each object is
    /// written to `PREFIX` + its key there. Without it, in place.
    pub destination: Option<S3Uri>,
    /// `context` (optional): the encryption context, a JSON object of
    /// strings (`{"dept":"finance"}`).
    pub context: Vec<(String, String)>,
}

/// `rewrap`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrap {
    /// `toKey` (required): the target KMS key.
    pub to_key: String,
    /// `context` (optional): the context each object must have.
    pub context: Option<Vec<(String, String)>>,
}

/// `verify`'s arguments: none (each object is checked against the
/// context it records).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verify {}

/// `upgrade`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// `kmsKey` (optional): a KMS key for a fresh data key per object;
    /// without it each object keeps its own (shared) data key.
    pub kms_key: Option<String>,
}

impl Operation {
    /// The operation that `userArguments` asks for, or why they are wrong
    /// (one short line).
    pub fn from_arguments(args: &BTreeMap<String, String>) -> Result<Self, String> {
        let name = args
            .get("operation")
            .ok_or("userArguments lack `operation` (encrypt, rewrap, verify or upgrade)")?;
        let allowed: &[&str] = match name.as_str() {
            "encrypt" => &["kmsKey", "destination", "context"],
            "rewrap" => &["toKey", "context"],
            "verify" => &[],
            "upgrade" => &["kmsKey"],
            other => {
                return Err(format!(
                    "unknown operation `{other}`: expected encrypt, rewrap, verify or upgrade"
                ))
            }
        };
        if let Some(extra) = args
            .keys()
            .find(|k| *k != "operation" && !allowed.contains(&k.as_str()))
        {
            return Err(match allowed {
                [] => format!("userArgument `{extra}`: {name} takes no userArguments"),
                _ => format!(
                    "userArgument `{extra}` is not one of {name}'s: {}",
                    allowed.join(", ")
                ),
            });
        }
        let required = |key: &str| {
            args.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("{name} needs the userArgument `{key}`"))
        };
        let context = args.get("context").map(|c| parse_context(c)).transpose()?;
        Ok(match name.as_str() {
            "encrypt" => Operation::Encrypt(Encrypt {
                kms_key: required("kmsKey")?,
                destination: args
                    .get("destination")
                    .map(|d| parse_destination(d))
                    .transpose()?,
                context: context.unwrap_or_default(),
            }),
            "rewrap" => Operation::Rewrap(Rewrap {
                to_key: required("toKey")?,
                context,
            }),
            "verify" => Operation::Verify(Verify {}),
            _ => Operation::Upgrade(Upgrade {
                // Optional, but not empty: "" is no key (each task failed
                // at KMS, after its download).
                kms_key: match args.get("kmsKey").map(String::as_str) {
                    Some("") => return Err(
                        "userArgument `kmsKey` is empty: name a KMS key, or leave it out to keep the shared data key".into(),
                    ),
                    key => key.map(str::to_owned),
                },
            }),
        })
    }
}

/// `{"k":"v",...}` as pairs, in the object's order.
fn parse_context(json: &str) -> Result<Vec<(String, String)>, String> {
    let bad =
        |why: String| format!("userArgument `context` is not a JSON object of strings: {why}");
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("not an object".into()))?;
    object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(v) => Ok((k.clone(), v.to_owned())),
            None => Err(bad(format!("the value of `{k}` is not a string"))),
        })
        .collect()
}

/// `s3://BUCKET/PREFIX` (the prefix may be empty: `s3://BUCKET/`).
fn parse_destination(s: &str) -> Result<S3Uri, String> {
    let bad = || format!("userArgument `destination` is not s3://BUCKET/PREFIX: `{s}`");
    let rest = s.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    // Parsed with a placeholder key, which `with_key` replaces.
    S3Uri::parse(&format!("s3://{bucket}/x"))
        .map(|uri| uri.with_key(prefix))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn encrypt_takes_a_key_a_destination_and_a_context() {
        let op = Operation::from_arguments(&args(&[
            ("operation", "encrypt"),
            ("kmsKey", "alias/k"),
            ("destination", "s3://out-bucket/enc/"),
            ("context", r#"{"dept":"finance"}"#),
        ]))
        .unwrap();
        let Operation::Encrypt(e) = op else {
            panic!("{op:?}")
        };
        assert_eq!(e.kms_key, "alias/k");
        let dest = e.destination.unwrap();
        assert_eq!((dest.bucket(), dest.key()), ("out-bucket", "enc/"));
        assert_eq!(e.context, [("dept".to_owned(), "finance".to_owned())]);
    }

    #[test]
    fn bad_arguments_are_refused_with_one_line() {
        let refused = |pairs: &[(&str, &str)]| Operation::from_arguments(&args(pairs)).unwrap_err();
        assert!(refused(&[]).contains("lack `operation`"));
        assert!(refused(&[("operation", "shred")]).contains("unknown operation `shred`"));
        assert!(refused(&[("operation", "encrypt")]).contains("needs the userArgument `kmsKey`"));
        assert!(
            refused(&[("operation", "rewrap"), ("toKey", "k"), ("kmskey", "x")])
                .contains("`kmskey` is not one of rewrap's")
        );
        assert_eq!(
            refused(&[("operation", "verify"), ("toKey", "x")]),
            "userArgument `toKey`: verify takes no userArguments"
        );
        assert!(refused(&[
            ("operation", "encrypt"),
            ("kmsKey", "k"),
            ("context", r#"{"a":1}"#)
        ])
        .contains("`a` is not a string"));
        assert!(refused(&[
            ("operation", "encrypt"),
            ("kmsKey", "k"),
            ("destination", "/tmp/x")
        ])
        .contains("not s3://BUCKET/PREFIX"));
    }

    #[test]
    fn verify_and_upgrade_parse() {
        assert_eq!(
            Operation::from_arguments(&args(&[("operation", "verify")])).unwrap(),
            Operation::Verify(Verify {})
        );
        assert!(matches!(
            Operation::from_arguments(&args(&[("operation", "upgrade"), ("kmsKey", "k")])),
            Ok(Operation::Upgrade(Upgrade { kms_key: Some(_) }))
        ));
        let empty = Operation::from_arguments(&args(&[("operation", "upgrade"), ("kmsKey", "")]));
        assert!(empty.unwrap_err().contains("`kmsKey` is empty"));
    }
}
