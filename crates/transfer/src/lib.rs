//! The atrest engine: operations on whole encrypted S3 objects, for the
//! `atrest` command-line tool and for programs that embed atrest.
//!
//! - [`rewrap`]: move objects to another KMS key without re-uploading them
//!   (only the header changes; the body is copied inside S3).
#![deny(missing_docs)]

pub mod rewrap;

/// The user-metadata entry (`x-amz-meta-…`) where atrest records the ARN of
/// the KMS key that wrapped an object's data key. Informational only: no
/// reader trusts it, KMS alone decides which key unwraps; it tells a person
/// (and error messages) which key, and so which region, an object needs.
pub const KMS_KEY_METADATA: &str = "atrest-kms-key-arn";
