//! What one object is, from its first bytes alone (no KMS): an atrest
//! object's header, or an AWS S3 Encryption Client object's envelope.
//!
//! ```no_run
//! # async fn example(s3: aws_sdk_s3::Client) -> Result<(), atrest_transfer::Error> {
//! use atrest_transfer::inspect::{self, Found};
//!
//! let uri = atrest_s3::S3Uri::parse("s3://bucket/report.pdf").unwrap();
//! match inspect::object(&s3, &uri).await?.found {
//!     Found::Atrest { info, .. } => println!("atrest v{}", info.version()),
//!     Found::S3EncryptionClient(envelope) => println!("S3EC {}", envelope.version),
//!     Found::Other(other) => println!("not atrest: {}", other.why),
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;

use atrest_format::inspect::{inspect, Inspected, Inspection};
use atrest_format::s3ec::{Envelope, Policy};
use atrest_format::MAX_HEADER_LEN;
use atrest_s3::{ByteRange, S3Uri};

use crate::{Error, KMS_KEY_METADATA};

/// One object, described.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Object {
    /// The object's length in bytes.
    pub object_len: u64,
    /// What it is.
    pub found: Found,
}

/// What an object is.
#[derive(Clone, Debug)]
pub enum Found {
    /// An atrest object, as its header describes it.
    Atrest {
        /// The header's fields and the lengths they imply.
        info: Box<Inspection>,
        /// The KMS key ARN recorded in the metadata (informational: KMS
        /// alone decides which key unwraps).
        kms_key_arn: Option<String>,
    },
    /// An AWS S3 Encryption Client object (any of its formats, legacy ones
    /// too), from its metadata or instruction file.
    S3EncryptionClient(Box<Envelope>),
    /// Neither.
    Other(Other),
}

/// An object that is not one atrest reads, and what is known of it.
#[derive(Clone, Debug)]
pub struct Other {
    /// Why its first bytes are not an atrest header.
    pub why: String,
    /// Its first bytes (up to 8).
    pub first_bytes: Vec<u8>,
    /// Whether its metadata has S3 Encryption Client entries (`x-amz-key…`)
    /// that could not be read as an envelope.
    pub s3ec_metadata: bool,
}

/// The object at `uri`, from one ranged GET of its first bytes (and, for
/// an S3 Encryption Client object, its instruction file).
pub async fn object(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Object, Error> {
    // No header is longer than MAX_HEADER_LEN, so one read always suffices.
    let range = ByteRange::new(0, MAX_HEADER_LEN as u64 - 1);
    let got = atrest_s3::get_range(s3, uri, range, None).await?;
    if crate::list::is_instruction_file(uri.key(), &got.metadata, &got.bytes) {
        let object = uri.with_key(crate::list::group_key(uri.key()));
        let mut found = bytes(&got.bytes, got.object_len, &got.metadata);
        if let Found::Other(other) = &mut found.found {
            other.why = format!("it is the S3 Encryption Client instruction file of {object}");
        }
        return Ok(found);
    }
    let probe = inspect(&got.bytes, got.object_len).is_err();
    let describe_all = Policy { allow_legacy: true };
    if let Some((envelope, _)) =
        crate::s3ec::detect(s3, uri, &got.metadata, probe, describe_all).await?
    {
        return Ok(Object {
            object_len: got.object_len,
            found: Found::S3EncryptionClient(Box::new(envelope)),
        });
    }
    Ok(bytes(&got.bytes, got.object_len, &got.metadata))
}

/// An object (e.g. a local file) from its first bytes (at least
/// [`MAX_HEADER_LEN`] of them, or all there are), its length, and its
/// metadata (empty for a local file).
pub fn bytes(first: &[u8], object_len: u64, metadata: &HashMap<String, String>) -> Object {
    let other = |why: String| {
        Found::Other(Other {
            why,
            first_bytes: first.iter().take(8).copied().collect(),
            s3ec_metadata: metadata.keys().any(|k| k.starts_with("x-amz-key")),
        })
    };
    let found = match inspect(first, object_len) {
        Ok(Inspected::Complete(info)) => Found::Atrest {
            info: Box::new(info),
            kms_key_arn: metadata.get(KMS_KEY_METADATA).cloned(),
        },
        Ok(Inspected::Incomplete { .. }) => other("its header is incomplete".into()),
        Err(e) => other(e.to_string()),
    };
    Object { object_len, found }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &[u8] = include_bytes!("../../../fixtures/v2/ok-20000-e13-context.object");

    #[test]
    fn a_header_is_described_and_anything_else_says_why_not() {
        let metadata = HashMap::from([(KMS_KEY_METADATA.to_owned(), "arn:k".to_owned())]);
        let object = bytes(V2, V2.len() as u64, &metadata);
        assert_eq!(object.object_len, V2.len() as u64);
        match object.found {
            Found::Atrest { info, kms_key_arn } => {
                assert_eq!(info.version(), 2);
                assert_eq!(info.frame_size(), Some(1 << 13));
                assert_eq!(kms_key_arn.as_deref(), Some("arn:k"));
            }
            other => panic!("{other:?}"),
        }

        let s3ec = HashMap::from([("x-amz-key-v2".to_owned(), "junk".to_owned())]);
        let text = b"hello, world, in plain text";
        match bytes(text, 27, &s3ec).found {
            Found::Other(other) => {
                assert_eq!(other.first_bytes, &text[..8]);
                assert!(other.s3ec_metadata);
                assert!(!other.why.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Fewer bytes than the header needs: incomplete.
        match bytes(&V2[..20], V2.len() as u64, &HashMap::new()).found {
            Found::Other(other) => {
                assert_eq!(other.why, "its header is incomplete");
                assert!(!other.s3ec_metadata);
            }
            other => panic!("{other:?}"),
        }
    }
}
