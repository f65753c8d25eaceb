//! What the objects under a prefix are, without KMS: one ranged GET of each
//! object's first bytes (its header), many at once.
//!
//! ```no_run
//! # async fn example(s3: aws_sdk_s3::Client) -> Result<(), atrest_s3::S3Error> {
//! let prefix = atrest_s3::S3Uri::parse("s3://bucket/dir/").unwrap();
//! let listing = atrest_transfer::list::list(&s3, &prefix, true, 32).await?;
//! for entry in listing.entries {
//!     println!("{} {:?}", entry.key, entry.kind);
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};

use atrest_format::inspect::{inspect, Inspected, Inspection};
use atrest_s3::{ByteRange, S3Error, S3Uri};
use aws_sdk_s3::primitives::DateTime;
use futures::{StreamExt, TryStreamExt};

use atrest_format::s3ec::{INSTRUCTION_FILE, INSTRUCTION_SUFFIX};

use crate::{HEADER_FETCH, KMS_KEY_METADATA};

/// What an object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An atrest object (v1 or v2), as its header describes it.
    Atrest(Box<Inspection>),
    /// An Amazon S3 Encryption Client object (its key is in the metadata).
    S3EncryptionClient,
    /// An S3 Encryption Client instruction file (`KEY.instruction`, marked
    /// so in its metadata): the envelope of the object `KEY`, not an object
    /// of its own.
    InstructionFile,
    /// A folder marker: an empty object whose key ends in `/`, as the S3
    /// console's "Create folder" writes. Not read: transfers leave it out.
    FolderMarker,
    /// Anything else, and why it is not an atrest object.
    Other(String),
    /// Named (by a manifest) but not there: no object at all.
    Missing,
    /// An object S3 would not let be read, and why (archived and not
    /// restored; access denied): what it is is not known. Not an error of
    /// the whole listing, as S3 lists what it will not serve.
    Unreadable(String),
}

/// One object under the prefix.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Entry {
    /// The object's key.
    pub key: String,
    /// Its length in bytes.
    pub object_len: u64,
    /// When it was written.
    pub last_modified: Option<DateTime>,
    /// What it is.
    pub kind: Kind,
    /// The KMS key ARN atrest recorded in its metadata (informational:
    /// KMS alone decides which key unwraps).
    pub kms_key_arn: Option<String>,
    /// An S3 Encryption Client object's envelope, when it is in the
    /// object's metadata (one in an instruction file is not read).
    pub s3ec: Option<Box<atrest_format::s3ec::Envelope>>,
    /// Why an S3 Encryption Client object's envelope in its metadata could
    /// not be read (a damaged object; reading it fails for this reason).
    pub s3ec_damage: Option<String>,
}

/// The key an object is sharded and grouped by: an instruction file's
/// (`KEY.instruction`) is its object's, so that the two always land in
/// one shard.
pub fn group_key(key: &str) -> &str {
    key.strip_suffix(INSTRUCTION_SUFFIX).unwrap_or(key)
}

/// Takes out of `objects` each S3 Encryption Client instruction file of a
/// listed object, and returns them: a `KEY.instruction` whose `KEY` is
/// listed too and that is an instruction file ([`instruction_file_at`]
/// for each such pair's, a few at a time). An instruction file is
/// read with its object (see [`crate::Download`]) and is not an object to
/// decrypt, verify or copy of its own; a user's own object that is merely
/// named so stays among `objects`.
pub async fn take_instruction_files(
    s3: &aws_sdk_s3::Client,
    bucket: &S3Uri,
    objects: &mut Vec<atrest_s3::Listed>,
) -> Result<Vec<atrest_s3::Listed>, S3Error> {
    // Most listings have none: no set of every key for them.
    if !objects.iter().any(|o| o.key.ends_with(INSTRUCTION_SUFFIX)) {
        return Ok(Vec::new());
    }
    let named = named_after_listed(objects);
    let is_file: Vec<bool> = futures::stream::iter(objects.iter().zip(&named))
        .map(|(o, &named)| async move {
            match named {
                false => Ok::<_, S3Error>(false),
                true => {
                    let file = bucket.with_key(o.key.clone());
                    Ok(instruction_file_at(s3, &file).await?.is_some())
                }
            }
        })
        .buffered(INSTRUCTION_FILE_CHECKS)
        .try_collect()
        .await?;
    let mut is_file = is_file.into_iter();
    let (instruction_files, rest) = std::mem::take(objects)
        .into_iter()
        .partition(|_| is_file.next().expect("one flag per object"));
    *objects = rest;
    Ok(instruction_files)
}

/// For each object, whether it is named as the instruction file of
/// another listed one (`KEY.instruction` beside `KEY`).
fn named_after_listed(objects: &[atrest_s3::Listed]) -> Vec<bool> {
    let keys: std::collections::HashSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    objects
        .iter()
        .map(|o| {
            o.key
                .strip_suffix(INSTRUCTION_SUFFIX)
                .is_some_and(|object| keys.contains(object))
        })
        .collect()
}

/// Candidate instruction files read at once.
const INSTRUCTION_FILE_CHECKS: usize = 16;

/// The S3 Encryption Client instruction file of the object at `uri`, if it
/// has one: the version of `KEY.instruction` read, when that exists and is
/// an instruction file ([`instruction_file_at`]).
pub async fn instruction_file_of(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
) -> Result<Option<(S3Uri, atrest_s3::ObjectVersion)>, S3Error> {
    let file = uri.with_key(format!("{}{INSTRUCTION_SUFFIX}", uri.key()));
    Ok(instruction_file_at(s3, &file).await?.map(|v| (file, v)))
}

/// Whether the object `file` (named `KEY.instruction`) is an instruction
/// file (see [`atrest_format::s3ec::is_instruction_file`]): its version if
/// so. One HeadObject (most objects have no such file), then for one that
/// exists unmarked, a GET of its body (at most 64 KiB: a larger object is
/// no instruction file). One whose body S3 will not serve (archived, or
/// access denied) cannot be read to tell, and is taken for one by its
/// name: an S3 Encryption Client object's pair is kept whole.
pub async fn instruction_file_at(
    s3: &aws_sdk_s3::Client,
    file: &S3Uri,
) -> Result<Option<atrest_s3::ObjectVersion>, S3Error> {
    let head = match atrest_s3::head(s3, file).await {
        Ok(head) => head,
        Err(S3Error::NoSuchKey { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let version = atrest_s3::ObjectVersion {
        etag: Some(head.etag.clone()),
        version_id: head.version_id.clone(),
    };
    let metadata = lower_case(&head.properties.metadata);
    let max = crate::s3ec::MAX_INSTRUCTION_FILE;
    if metadata.contains_key(INSTRUCTION_FILE) || head.len > max {
        return Ok(metadata.contains_key(INSTRUCTION_FILE).then_some(version));
    }
    let body = match atrest_s3::get_range(s3, file, ByteRange::new(0, max), Some(&version)).await {
        Ok(read) => read.bytes,
        Err(S3Error::Archived { .. } | S3Error::AccessDenied { .. }) => return Ok(Some(version)),
        Err(e) => return Err(e),
    };
    let is_one = atrest_format::s3ec::is_instruction_file(&metadata, &body);
    Ok(is_one.then_some(version))
}

/// Whether an object is an instruction file: marked so (the Java client
/// marks its own), or named `KEY.instruction` with a body that is one
/// (`first`, its first bytes).
pub(crate) fn is_instruction_file(
    key: &str,
    metadata: &HashMap<String, String>,
    first: &[u8],
) -> bool {
    let metadata = lower_case(metadata);
    metadata.contains_key(INSTRUCTION_FILE)
        || (key.ends_with(INSTRUCTION_SUFFIX)
            && atrest_format::s3ec::is_instruction_file(&metadata, first))
}

/// User metadata with its names in lower case, as the S3 Encryption
/// Client's parser reads them (S3 keeps them so, other servers may not).
fn lower_case(metadata: &HashMap<String, String>) -> BTreeMap<String, String> {
    metadata
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// Whether the object's metadata marks an S3 Encryption Client object.
pub(crate) fn is_s3_encryption_client(metadata: &HashMap<String, String>) -> bool {
    let metadata = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    atrest_format::s3ec::locate(&metadata) != atrest_format::s3ec::Location::None
}

/// The objects under a prefix and, when not recursive, the "directories".
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Listing {
    /// The objects, sorted by key.
    pub entries: Vec<Entry>,
    /// Without `recursive`: the distinct key prefixes up to the next `/`
    /// after the listed prefix (as `aws s3 ls` shows `PRE name/`), sorted.
    pub prefixes: Vec<String>,
}

/// Every object whose key starts with `prefix`'s key (used as is, as
/// `aws s3 ls` does), each described from one ranged GET of its header,
/// `concurrency` at a time. Without `recursive`, one level: the keys with
/// a `/` after the prefix are S3's to group into [`Listing::prefixes`]
/// (one request for a bucket's top level, however many objects are under
/// it). Folder markers are listed as such, not read. No KMS call.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    prefix: &S3Uri,
    recursive: bool,
    concurrency: usize,
) -> Result<Listing, S3Error> {
    if recursive {
        let listed = atrest_s3::list(s3, prefix).await?;
        return list_these(s3, prefix, listed, true, concurrency).await;
    }
    let level = atrest_s3::list_level(s3, prefix).await?;
    let mut listing = list_these(s3, prefix, level.objects, false, concurrency).await?;
    listing.prefixes.extend(level.prefixes);
    listing.prefixes.sort();
    listing.prefixes.dedup();
    Ok(listing)
}

/// [`list`] of objects found otherwise (a manifest's, a shard's: see
/// [`crate::manifest::select`]): keys in `prefix`'s bucket, under its key.
pub async fn list_these(
    s3: &aws_sdk_s3::Client,
    prefix: &S3Uri,
    listed: Vec<atrest_s3::Listed>,
    recursive: bool,
    concurrency: usize,
) -> Result<Listing, S3Error> {
    let mut prefixes = std::collections::BTreeSet::new();
    let mut objects = Vec::new();
    let mut markers = Vec::new();
    for o in listed {
        let rest = &o.key[prefix.key().len().min(o.key.len())..];
        match rest.find('/') {
            Some(at) if !recursive => {
                prefixes.insert(format!("{}{}", prefix.key(), &rest[..=at]));
            }
            _ if o.key.ends_with('/') && o.size == 0 => markers.push(Entry {
                key: o.key,
                object_len: 0,
                last_modified: o.last_modified,
                kind: Kind::FolderMarker,
                kms_key_arn: None,
                s3ec: None,
                s3ec_damage: None,
            }),
            _ => objects.push(o),
        }
    }
    let mut entries: Vec<Entry> = futures::stream::iter(objects)
        .map(|o| async move {
            let mut entry = describe(s3, &prefix.with_key(o.key)).await?;
            if let Kind::Unreadable(_) = entry.kind {
                // What the listing said, at least.
                (entry.object_len, entry.last_modified) = (o.size, o.last_modified);
            }
            // An empty object's GET says no time (S3 refuses its range).
            entry.last_modified = entry.last_modified.or(o.last_modified);
            Ok::<_, S3Error>(entry)
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    entries.extend(markers);
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    with_envelopes_in_instruction_files(&mut entries);
    Ok(Listing {
        entries,
        prefixes: prefixes.into_iter().collect(),
    })
}

/// An S3 Encryption Client object whose whole envelope is in its
/// instruction file (the V1/V2 clients' way) has no metadata to tell it
/// by, and no atrest header: its listed instruction file tells.
fn with_envelopes_in_instruction_files(entries: &mut [Entry]) {
    let with_files: std::collections::HashSet<String> = entries
        .iter()
        .filter(|e| e.kind == Kind::InstructionFile)
        .map(|e| group_key(&e.key).to_owned())
        .collect();
    for entry in entries.iter_mut() {
        if matches!(entry.kind, Kind::Other(_))
            && entry.object_len > 0
            && with_files.contains(&entry.key)
        {
            entry.kind = Kind::S3EncryptionClient;
        }
    }
}

/// One object, from its first bytes (its length too: a manifest gives
/// none, and an object can change after a listing). An object that does
/// not exist (any more) is described so, not an error of the whole
/// listing.
pub async fn describe(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Entry, S3Error> {
    let mut entry = Entry {
        key: uri.key().to_owned(),
        object_len: 0,
        last_modified: None,
        kind: Kind::Other("it is empty".into()),
        kms_key_arn: None,
        s3ec: None,
        s3ec_damage: None,
    };
    let range = ByteRange::new(0, HEADER_FETCH - 1);
    let got = match atrest_s3::get_range(s3, uri, range, None).await {
        Ok(got) => got,
        Err(S3Error::NoSuchKey { .. }) => {
            entry.kind = Kind::Missing;
            return Ok(entry);
        }
        Err(S3Error::Archived { .. }) => {
            entry.kind = Kind::Unreadable("archived: restore it to read it".into());
            return Ok(entry);
        }
        // This object's refusal (a bucket policy, its SSE-KMS key), not
        // the credentials' (expired, wrong: an error of the listing).
        Err(S3Error::AccessDenied { code, .. })
            if matches!(code.as_str(), "AccessDenied" | "403 Forbidden") =>
        {
            entry.kind = Kind::Unreadable(format!("access denied ({code})"));
            return Ok(entry);
        }
        Err(e) => return Err(e),
    };
    entry.object_len = got.object_len;
    entry.last_modified = got.last_modified;
    entry.kms_key_arn = got.metadata.get(KMS_KEY_METADATA).cloned();
    if is_s3_encryption_client(&got.metadata) {
        let metadata = lower_case(&got.metadata);
        let policy = atrest_format::s3ec::Policy { allow_legacy: true };
        match atrest_format::s3ec::locate(&metadata) {
            // Its envelope is in an instruction file, not read here.
            atrest_format::s3ec::Location::InstructionFile => {}
            _ => match atrest_format::s3ec::parse(&metadata, None, policy) {
                Ok(envelope) => entry.s3ec = Some(Box::new(envelope)),
                Err(e) => entry.s3ec_damage = Some(e.to_string()),
            },
        }
    }
    entry.kind = kind_of(uri.key(), &got);
    Ok(entry)
}

/// What the object `key` is, from its first bytes and metadata as a GET
/// from byte 0 fetched them (of any version: [`describe`] reads the
/// current one).
pub fn kind_of(key: &str, first: &atrest_s3::Fetched) -> Kind {
    match inspect(&first.bytes, first.object_len) {
        _ if first.object_len == 0 => Kind::Other("it is empty".into()),
        _ if is_instruction_file(key, &first.metadata, &first.bytes) => Kind::InstructionFile,
        _ if is_s3_encryption_client(&first.metadata) => Kind::S3EncryptionClient,
        Ok(Inspected::Complete(info)) => Kind::Atrest(Box::new(info)),
        Ok(Inspected::Incomplete { .. }) => Kind::Other("its header is cut short".into()),
        Err(e) => Kind::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instruction_file_makes_its_object_an_s3_encryption_client_one() {
        let entry = |key: &str, kind: Kind| Entry {
            key: key.into(),
            object_len: 10,
            last_modified: None,
            kind,
            kms_key_arn: None,
            s3ec: None,
            s3ec_damage: None,
        };
        let other = || Kind::Other("invalid header".into());
        let mut entries = [
            entry("a", other()),
            entry("a.instruction", Kind::InstructionFile),
            entry("b", other()),
        ];
        with_envelopes_in_instruction_files(&mut entries);
        let kinds: Vec<_> = entries.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            [Kind::S3EncryptionClient, Kind::InstructionFile, other()]
        );
    }

    fn listed(keys: &[&str]) -> Vec<atrest_s3::Listed> {
        keys.iter()
            .map(|k| atrest_s3::Listed {
                key: k.to_string(),
                size: 1,
                last_modified: None,
            })
            .collect()
    }

    #[test]
    fn instruction_files_are_looked_for_only_beside_a_listed_object() {
        let objects = listed(&[
            "a",
            "a.instruction",
            "b.instruction",
            "c",
            "c.instruction.instruction",
        ]);
        // b's object is not listed (another prefix, or gone): b.instruction
        // stays, to be reported; c.instruction is not listed either.
        assert_eq!(
            named_after_listed(&objects),
            [false, true, false, false, false]
        );
        assert_eq!(group_key("dir/a.instruction"), "dir/a");
        assert_eq!(group_key("dir/a"), "dir/a");
    }
}
