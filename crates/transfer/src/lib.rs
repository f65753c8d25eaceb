//! The atrest engine: operations on whole encrypted S3 objects, for the
//! `atrest` command-line tool and for programs that embed atrest.
//!
//! - [`rewrap`]: move objects to another KMS key without re-uploading them
//!   (only the header changes; the body is copied inside S3).
//! - [`list`]: what each object under a prefix is, from its header alone.
#![deny(missing_docs)]

pub mod list;
pub mod rewrap;

use atrest_format::{v2, MAX_WRAPPED_KEY_LEN, PREFIX_LEN};

/// Bytes that always hold a whole header: the first ranged GET of an object.
const HEADER_FETCH: u64 =
    (PREFIX_LEN + MAX_WRAPPED_KEY_LEN + v2::TAIL_FIXED_LEN + v2::MAX_CONTEXT_LEN) as u64;

/// The user-metadata entry (`x-amz-meta-…`) where atrest records the ARN of
/// the KMS key that wrapped an object's data key. Informational only: no
/// reader trusts it, KMS alone decides which key unwraps; it tells a person
/// (and error messages) which key, and so which region, an object needs.
pub const KMS_KEY_METADATA: &str = "atrest-kms-key-arn";
