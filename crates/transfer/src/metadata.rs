//! The user metadata (`x-amz-meta-*`) of the objects atrest writes: the
//! entries atrest records itself, and S3's limit on the whole.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, KMS_KEY_METADATA};

/// The user-metadata entry where an upload records its source file's
/// modification time (seconds since the Unix epoch, with nanoseconds:
/// `1733080000.123456789`), for `sync` and for downloads to restore.
pub const MTIME_METADATA: &str = "atrest-mtime";

/// S3's limit on an object's user metadata: the UTF-8 bytes of every key
/// and value together (2 KB).
pub const METADATA_LIMIT: usize = 2048;

/// The user-metadata entry where an encrypted copy of an S3 object records
/// the source's ETag ([`Upload::source_etag`](crate::Upload::source_etag)),
/// so that a later run can tell whether the source changed since.
pub const SOURCE_ETAG_METADATA: &str = "atrest-source-etag";

/// Room kept for the KMS key's ARN before it is known (ARNs of KMS keys
/// are well under this).
pub const KMS_KEY_ARN_ROOM: usize = 128;

/// Room kept for atrest's own entries within [`METADATA_LIMIT`]: the
/// modification time, the KMS key ARN ([`KMS_KEY_ARN_ROOM`]) and a
/// source's ETag (a quoted MD5, with `-N` for a multipart object).
pub const RESERVED_METADATA: usize = MTIME_METADATA.len()
    + 32
    + KMS_KEY_METADATA.len()
    + KMS_KEY_ARN_ROOM
    + SOURCE_ETAG_METADATA.len()
    + 48;

/// The prefixes of metadata names that user metadata may not use:
/// atrest's own entries, and the S3 Encryption Client's envelope (given
/// by a user, one would make an object that no client decrypts).
pub const RESERVED_PREFIXES: [&str; 2] = ["atrest-", "x-amz-"];

/// Checks that `user` metadata names none of atrest's or the S3 Encryption
/// Client's entries ([`Error::ReservedMetadata`]) and leaves room for
/// atrest's own within S3's limit ([`Error::MetadataTooLarge`]), so that an
/// upload fails before it sends anything rather than when S3 refuses it,
/// or with an entry silently replaced.
pub fn check_user_metadata(user: &HashMap<String, String>) -> Result<(), Error> {
    let reserved = |key: &str| {
        let key = key.to_ascii_lowercase();
        RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
    };
    if let Some(key) = user.keys().find(|k| reserved(k)) {
        return Err(Error::ReservedMetadata { key: key.clone() });
    }
    let used = entries_len(user.iter());
    let room = METADATA_LIMIT - RESERVED_METADATA;
    match used <= room {
        true => Ok(()),
        false => Err(Error::MetadataTooLarge { used, room }),
    }
}

/// Checks that `metadata` (the caller's entries and atrest's) and the S3
/// Encryption Client's `envelope` entries fit in S3's limit together: the
/// client's envelope (its wrapped key, its context) takes several hundred
/// bytes of it.
pub fn check_beside_envelope(
    metadata: &HashMap<String, String>,
    envelope: &[(String, String)],
) -> Result<(), Error> {
    let own = |k: &String| k.to_ascii_lowercase().starts_with("atrest-");
    let used = entries_len(metadata.iter().filter(|(k, _)| !own(k)));
    let taken = entries_len(metadata.iter().filter(|(k, _)| own(k)))
        + entries_len(envelope.iter().map(|(k, v)| (k, v)));
    if taken > METADATA_LIMIT {
        return Err(Error::EnvelopeTooLarge { taken });
    }
    let room = METADATA_LIMIT - taken;
    match used <= room {
        true => Ok(()),
        false => Err(Error::MetadataTooLarge { used, room }),
    }
}

/// What S3 counts of metadata entries: the bytes of every name and value.
fn entries_len<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> usize {
    entries.map(|(k, v)| k.len() + v.len()).sum()
}

/// The metadata of a copy whose user metadata is replaced (S3's REPLACE
/// directive): `user`'s entries, and the source's entries atrest and the
/// S3 Encryption Client need to read it (names with a
/// [`RESERVED_PREFIXES`] prefix), kept as they are.
pub fn replacing_user_metadata(
    source: &HashMap<String, String>,
    user: &HashMap<String, String>,
) -> HashMap<String, String> {
    let reserved = |key: &str| {
        let key = key.to_ascii_lowercase();
        RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
    };
    let kept = source.iter().filter(|(k, _)| reserved(k));
    user.iter()
        .chain(kept)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `time` as [`MTIME_METADATA`] records it.
pub fn encode_mtime(time: SystemTime) -> String {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => format!("{}.{:09}", since.as_secs(), since.subsec_nanos()),
        // Before 1970 (it was recorded as 0): the time before the epoch.
        Err(before) => {
            let before = before.duration();
            format!("-{}.{:09}", before.as_secs(), before.subsec_nanos())
        }
    }
}

/// The source modification time an upload recorded in `metadata`, if any
/// (and well formed).
pub fn recorded_mtime(metadata: &HashMap<String, String>) -> Option<SystemTime> {
    let value = metadata.get(MTIME_METADATA)?;
    let (before, value) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.as_str()),
    };
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = match nanos.len() {
        1..=9 => nanos.parse::<u32>().ok()? * 10u32.pow(9 - nanos.len() as u32),
        _ => return None,
    };
    let offset = Duration::new(secs, nanos);
    match before {
        true => UNIX_EPOCH.checked_sub(offset),
        false => UNIX_EPOCH.checked_add(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_1970_are_recorded_as_they_are() {
        let record = |t: SystemTime| {
            let map = HashMap::from([(MTIME_METADATA.to_owned(), encode_mtime(t))]);
            recorded_mtime(&map)
        };
        for t in [
            UNIX_EPOCH - Duration::new(86_400 * 365, 250_000_000),
            UNIX_EPOCH - Duration::from_nanos(1),
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 5),
        ] {
            assert_eq!(record(t), Some(t), "{t:?}");
        }
        assert_eq!(
            encode_mtime(UNIX_EPOCH - Duration::from_millis(1500)),
            "-1.500000000"
        );
    }

    #[test]
    fn a_replaced_copy_keeps_what_readers_need_and_only_that() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let source = map(&[
            ("team", "old"),
            ("gone", "x"),
            ("atrest-mtime", "1"),
            ("x-amz-3", "KEY"),
            ("X-Amz-T", "{}"),
        ]);
        let got = replacing_user_metadata(&source, &map(&[("team", "new")]));
        let want = map(&[
            ("team", "new"),
            ("atrest-mtime", "1"),
            ("x-amz-3", "KEY"),
            ("X-Amz-T", "{}"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn mtimes_round_trip_to_the_nanosecond() {
        let t = UNIX_EPOCH + Duration::new(1_733_080_000, 123_456_789);
        let encoded = encode_mtime(t);
        assert_eq!(encoded, "1733080000.123456789");
        let metadata = HashMap::from([(MTIME_METADATA.to_owned(), encoded)]);
        assert_eq!(recorded_mtime(&metadata), Some(t));
        let short = HashMap::from([(MTIME_METADATA.to_owned(), "5.5".to_owned())]);
        assert_eq!(
            recorded_mtime(&short),
            Some(UNIX_EPOCH + Duration::from_millis(5500))
        );
        for bad in ["x", "1.", "1.1234567890", "--1.0", "-"] {
            let m = HashMap::from([(MTIME_METADATA.to_owned(), bad.to_owned())]);
            assert_eq!(recorded_mtime(&m), None, "{bad}");
        }
    }

    #[test]
    fn atrest_and_s3_encryption_client_names_are_refused_in_any_case() {
        for key in [
            "atrest-mtime",
            "Atrest-KMS-Key-Arn",
            "x-amz-key-v2",
            "X-Amz-3",
            "atrest-x",
        ] {
            let user = HashMap::from([(key.to_owned(), "v".to_owned())]);
            assert!(
                matches!(check_user_metadata(&user), Err(Error::ReservedMetadata { key: k }) if k == key),
                "{key}"
            );
        }
        for key in ["atrest", "xamz-3", "team", "amz-x"] {
            let user = HashMap::from([(key.to_owned(), "v".to_owned())]);
            assert!(check_user_metadata(&user).is_ok(), "{key}");
        }
    }

    #[test]
    fn the_budget_counts_keys_and_values_and_keeps_room_for_atrest() {
        let room = METADATA_LIMIT - RESERVED_METADATA;
        let fits = HashMap::from([("k".to_owned(), "v".repeat(room - 1))]);
        assert!(check_user_metadata(&fits).is_ok());
        let over = HashMap::from([("k".to_owned(), "v".repeat(room))]);
        assert!(matches!(
            check_user_metadata(&over),
            Err(Error::MetadataTooLarge { used, .. }) if used == room + 1
        ));
    }

    #[test]
    fn the_s3_encryption_clients_entries_count_too() {
        let mtime = (MTIME_METADATA.to_owned(), "1.000000000".to_owned());
        let envelope = [("x-amz-3".to_owned(), "w".repeat(500))];
        let room = METADATA_LIMIT - (mtime.0.len() + 11) - (7 + 500);
        let with = |value_len: usize| {
            let user = ("k".to_owned(), "v".repeat(value_len));
            HashMap::from([user, mtime.clone()])
        };
        assert!(check_beside_envelope(&with(room - 1), &envelope).is_ok());
        assert!(matches!(
            check_beside_envelope(&with(room), &envelope),
            Err(Error::MetadataTooLarge { used, room: r }) if used == room + 1 && r == room
        ));
        // An envelope (a large context) over the limit on its own fails
        // with no user metadata at all (before, nothing was "used": passed).
        let huge = [("x-amz-t".to_owned(), "c".repeat(METADATA_LIMIT))];
        assert!(matches!(
            check_beside_envelope(&HashMap::new(), &huge),
            Err(Error::EnvelopeTooLarge { taken }) if taken == METADATA_LIMIT + 7
        ));
        let exact = [("x-amz-t".to_owned(), "c".repeat(METADATA_LIMIT - 7))];
        assert!(check_beside_envelope(&HashMap::new(), &exact).is_ok());
    }
}
