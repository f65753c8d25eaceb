//! Property and edge-case tests of the header codec.

use std::collections::BTreeMap;

use atrest_format::v2::{ContextError, EncryptionContext};
use atrest_format::{parse_header, v1, v2, Header, HeaderError, Parsed, MAX_WRAPPED_KEY_LEN};
use proptest::prelude::*;

fn encode(header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    header.encode(&mut out);
    out
}

fn v1_header() -> impl Strategy<Value = v1::Header> {
    (
        prop::collection::vec(any::<u8>(), 1..=MAX_WRAPPED_KEY_LEN),
        any::<[u8; 8]>(),
    )
        .prop_map(|(key, iv)| v1::Header::new(key, iv).unwrap())
}

fn user_context() -> impl Strategy<Value = EncryptionContext> {
    prop::collection::btree_map("[^a][\\PC]{0,12}|a[\\PC]{0,12}", "[\\PC]{0,20}", 0..6)
        .prop_filter("reserved prefix", |m: &BTreeMap<String, String>| {
            m.keys().all(|k| !k.starts_with("atrest:"))
        })
        .prop_map(|m| EncryptionContext::new(m).unwrap())
}

fn v2_header() -> impl Strategy<Value = v2::Header> {
    (
        prop::collection::vec(any::<u8>(), 1..=600),
        v2::MIN_FRAME_EXPONENT..=v2::MAX_FRAME_EXPONENT,
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        user_context(),
    )
        .prop_map(|(key, e, salt, commit, ctx)| v2::Header::new(key, e, salt, commit, ctx).unwrap())
}

fn any_header() -> impl Strategy<Value = Header> {
    prop_oneof![
        v1_header().prop_map(Header::V1),
        v2_header().prop_map(Header::V2)
    ]
}

/// A v2 header with the default context and a small wrapped key.
fn small_v2() -> v2::Header {
    v2::Header::new(
        vec![0xaa; 3],
        16,
        [1; 32],
        [2; 32],
        EncryptionContext::new([("k", "v")]).unwrap(),
    )
    .unwrap()
}

proptest! {
    #[test]
    fn round_trip_ignores_trailing_bytes(header in any_header(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = encode(&header);
        prop_assert_eq!(bytes.len(), header.encoded_len());
        bytes.extend_from_slice(&body);
        prop_assert_eq!(parse_header(&bytes), Ok(Parsed::Complete(header)));
    }

    #[test]
    fn every_truncation_asks_for_more(h in any_header(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&h);
        let n = cut.index(bytes.len());
        match parse_header(&bytes[..n]) {
            Ok(Parsed::Incomplete { needed }) => {
                prop_assert!(needed > 0);
                prop_assert!(n + needed <= bytes.len(), "asked for more bytes than the header has");
            }
            other => prop_assert!(false, "prefix of {} bytes gave {:?}", n, other),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_complete_parses_are_canonical(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Parsed::Complete(header)) = parse_header(&bytes) {
            let again = encode(&header);
            prop_assert_eq!(&bytes[..again.len()], &again[..]);
        }
    }

    /// Structured noise that gets past the prefix: a v2 prefix, a short key,
    /// then random tail bytes (with a plausible exponent and context length).
    #[test]
    fn arbitrary_v2_tails_never_panic_and_complete_parses_are_canonical(
        key_len in 1u8..4,
        e in 10u8..26,
        ctx_len in 0u16..80,
        rest in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![2, 1, 0, 0, key_len, 0, 0, 0];
        bytes.extend(std::iter::repeat_n(7, usize::from(key_len)));
        bytes.push(e);
        bytes.extend_from_slice(&[0; 64]);
        bytes.extend_from_slice(&ctx_len.to_le_bytes());
        bytes.extend_from_slice(&rest);
        if let Ok(Parsed::Complete(header)) = parse_header(&bytes) {
            let again = encode(&header);
            prop_assert_eq!(&bytes[..again.len()], &again[..]);
        }
    }

    /// Every single-byte change of a valid v2 header is rejected, asks for
    /// more, or parses to a header that re-encodes to the changed bytes.
    #[test]
    fn mutated_v2_headers_never_panic(h in v2_header(), at in any::<prop::sample::Index>(), xor in 1u8..) {
        let mut bytes = encode(&Header::V2(h));
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        if let Ok(Parsed::Complete(header)) = parse_header(&bytes) {
            let again = encode(&header);
            prop_assert_eq!(&bytes[..again.len()], &again[..]);
        }
    }

    #[test]
    fn v2_aad_is_the_header_bytes_without_the_wrapped_key(h in v2_header()) {
        let bytes = encode(&Header::V2(h.clone()));
        let tail_start = 8 + h.wrapped_key().len();
        let mut expected = bytes[..4].to_vec();
        expected.extend_from_slice(&bytes[tail_start..]);
        prop_assert_eq!(h.aad(), &expected[..]);
        prop_assert_eq!(bytes[tail_start], h.frame_exponent());
        prop_assert_eq!(&bytes[tail_start + 1..tail_start + 33], &h.salt()[..]);
        prop_assert_eq!(&bytes[tail_start + 33..tail_start + 65], &h.commitment()[..]);
    }

    #[test]
    fn rewrap_changes_only_the_wrapped_key_bytes(
        h in any_header(),
        key in prop::collection::vec(any::<u8>(), 1..=MAX_WRAPPED_KEY_LEN),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Parse an object as read, re-wrap it, and compare the encodings:
        // version and reserved bytes, then everything after the wrapped key
        // (v1 IV, v2 tail), are the original bytes.
        let mut object = encode(&h);
        object.extend_from_slice(&body);
        let Ok(Parsed::Complete(parsed)) = parse_header(&object) else {
            panic!("a valid header");
        };
        let old_end = 8 + parsed.wrapped_key().len();
        let rewrapped = encode(&parsed.clone().with_wrapped_key(key.clone()).unwrap());
        prop_assert_eq!(&rewrapped[..4], &object[..4]);
        prop_assert_eq!(&rewrapped[4..8], &(key.len() as u32).to_le_bytes()[..]);
        prop_assert_eq!(&rewrapped[8..8 + key.len()], &key[..]);
        prop_assert_eq!(&rewrapped[8 + key.len()..], &object[old_end..parsed.encoded_len()]);
        // And it parses back to the same header but for the key.
        let Ok(Parsed::Complete(again)) = parse_header(&rewrapped) else {
            panic!("the re-wrapped header parses");
        };
        prop_assert_eq!(again, parsed.with_wrapped_key(key).unwrap());
    }

    #[test]
    fn unknown_versions_are_rejected_from_the_first_byte(version in any::<u8>().prop_filter("known", |v| *v != v1::VERSION && *v != v2::VERSION)) {
        prop_assert_eq!(parse_header(&[version]), Err(HeaderError::UnknownVersion(version)));
    }
}

#[test]
fn empty_input_needs_the_prefix() {
    assert_eq!(parse_header(&[]), Ok(Parsed::Incomplete { needed: 8 }));
}

#[test]
fn non_zero_reserved_bytes_are_rejected() {
    for i in 1..4 {
        let mut bytes = vec![1, 0, 0, 0, 1, 0, 0, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes[i] = 1;
        assert_eq!(parse_header(&bytes), Err(HeaderError::ReservedNotZero));
        // Even before the rest of the prefix arrives.
        assert_eq!(
            parse_header(&bytes[..=i]),
            Err(HeaderError::ReservedNotZero)
        );
    }
}

#[test]
fn wrapped_key_length_bounds() {
    let with_len = |len: u32| {
        let mut b = vec![1, 0, 0, 0];
        b.extend_from_slice(&len.to_le_bytes());
        b
    };
    assert_eq!(
        parse_header(&with_len(0)),
        Err(HeaderError::EmptyWrappedKey)
    );
    let over = MAX_WRAPPED_KEY_LEN as u32 + 1;
    assert_eq!(
        parse_header(&with_len(over)),
        Err(HeaderError::WrappedKeyTooLong(over))
    );
    assert_eq!(
        parse_header(&with_len(u32::MAX)),
        Err(HeaderError::WrappedKeyTooLong(u32::MAX))
    );
    // The largest allowed length is accepted, and only asks for what it needs.
    let max = MAX_WRAPPED_KEY_LEN as u32;
    assert_eq!(
        parse_header(&with_len(max)),
        Ok(Parsed::Incomplete {
            needed: MAX_WRAPPED_KEY_LEN + 8
        })
    );
}

#[test]
fn constructor_enforces_the_same_bounds_as_the_parser() {
    assert_eq!(
        v1::Header::new(vec![], [0; 8]),
        Err(HeaderError::EmptyWrappedKey)
    );
    assert!(matches!(
        v1::Header::new(vec![0; MAX_WRAPPED_KEY_LEN + 1], [0; 8]),
        Err(HeaderError::WrappedKeyTooLong(_))
    ));
    assert!(v1::Header::new(vec![0; MAX_WRAPPED_KEY_LEN], [0; 8]).is_ok());
}

#[test]
fn parses_the_seed_fixture_headers() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/seed-v1/set-a");
    let wrapped = std::fs::read(format!("{dir}/data.key")).unwrap();
    let object = std::fs::read(format!("{dir}/obj-17.object")).unwrap();
    match parse_header(&object).unwrap() {
        Parsed::Complete(Header::V1(h)) => {
            assert_eq!(h.wrapped_key(), &wrapped[..]);
            assert_eq!(h.encoded_len(), 8 + 96 + 8);
            assert_eq!(&h.stored_iv()[..], &object[104..112]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn v2_unknown_suite_and_reserved_bytes_are_rejected_early() {
    assert_eq!(parse_header(&[2]), Ok(Parsed::Incomplete { needed: 7 }));
    assert_eq!(parse_header(&[2, 0]), Err(HeaderError::UnknownSuite(0)));
    assert_eq!(parse_header(&[2, 2]), Err(HeaderError::UnknownSuite(2)));
    assert_eq!(
        parse_header(&[2, 1, 0, 1]),
        Err(HeaderError::ReservedNotZero)
    );
    assert_eq!(parse_header(&[2, 1, 1]), Err(HeaderError::ReservedNotZero));
    let mut bytes = encode(&Header::V2(small_v2()));
    bytes[3] = 0x80;
    assert_eq!(parse_header(&bytes), Err(HeaderError::ReservedNotZero));
}

#[test]
fn v2_wrapped_key_bounds() {
    for (len, err) in [
        (0u32, HeaderError::EmptyWrappedKey),
        (8193, HeaderError::WrappedKeyTooLong(8193)),
    ] {
        let mut b = vec![2, 1, 0, 0];
        b.extend_from_slice(&len.to_le_bytes());
        assert_eq!(parse_header(&b), Err(err));
    }
}

#[test]
fn v2_frame_exponent_is_checked_as_soon_as_present() {
    let good = encode(&Header::V2(small_v2()));
    let t = 8 + 3;
    for e in [0, 11, 25, 255] {
        let mut bytes = good.clone();
        bytes[t] = e;
        assert_eq!(
            parse_header(&bytes[..=t]),
            Err(HeaderError::BadFrameExponent(e))
        );
        assert_eq!(parse_header(&bytes), Err(HeaderError::BadFrameExponent(e)));
    }
    for e in 12..=24 {
        let mut bytes = good.clone();
        bytes[t] = e;
        match parse_header(&bytes) {
            Ok(Parsed::Complete(Header::V2(h))) => assert_eq!(h.frame_size(), 1 << e),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        v2::Header::new(
            vec![1],
            11,
            [0; 32],
            [0; 32],
            EncryptionContext::new::<String, String>([]).unwrap()
        ),
        Err(HeaderError::BadFrameExponent(11))
    );
}

/// A v2 header whose context bytes are `ctx` (length field set to match).
fn with_context(ctx: &[u8]) -> Vec<u8> {
    let mut bytes = vec![2, 1, 0, 0, 1, 0, 0, 0, 0xaa, 16];
    bytes.extend_from_slice(&[0; 64]);
    bytes.extend_from_slice(&(ctx.len() as u16).to_le_bytes());
    bytes.extend_from_slice(ctx);
    bytes
}

/// Encodes pairs as raw bytes, in the given order, without any checks.
fn raw_context(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (pairs.len() as u16).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

const FMT: (&[u8], &[u8]) = (
    v2::FORMAT_CONTEXT_KEY.as_bytes(),
    v2::FORMAT_CONTEXT_VALUE.as_bytes(),
);

#[test]
fn v2_context_rules() {
    let bad = |ctx: Vec<u8>| match parse_header(&with_context(&ctx)) {
        Err(HeaderError::BadContext(e)) => e,
        other => panic!("{other:?}"),
    };
    // The minimal valid context: just the format entry.
    assert!(matches!(
        parse_header(&with_context(&raw_context(&[FMT]))),
        Ok(Parsed::Complete(Header::V2(_)))
    ));
    assert!(matches!(
        parse_header(&with_context(&raw_context(&[
            (b"a", b""),
            FMT,
            (b"b", b"x")
        ]))),
        Ok(Parsed::Complete(Header::V2(_)))
    ));
    assert_eq!(bad(vec![]), ContextError::Malformed);
    assert_eq!(bad(vec![0]), ContextError::Malformed);
    assert_eq!(bad(raw_context(&[])), ContextError::FormatEntry);
    let mut trailing = raw_context(&[FMT]);
    trailing.push(0);
    assert_eq!(bad(trailing), ContextError::Malformed);
    let mut count_too_big = raw_context(&[FMT]);
    count_too_big[0] = 2;
    assert_eq!(bad(count_too_big), ContextError::Malformed);
    let mut huge_count = raw_context(&[FMT]);
    huge_count[..2].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(bad(huge_count), ContextError::Malformed);
    assert_eq!(
        bad(raw_context(&[(b"b", b""), (b"a", b""), FMT])),
        ContextError::NotSorted
    );
    assert_eq!(
        bad(raw_context(&[(b"a", b""), (b"a", b""), FMT])),
        ContextError::NotSorted
    );
    assert_eq!(bad(raw_context(&[FMT, FMT])), ContextError::NotSorted);
    assert_eq!(
        bad(raw_context(&[(b"", b"x"), FMT])),
        ContextError::EmptyKey
    );
    assert_eq!(
        bad(raw_context(&[(b"\xff", b""), FMT])),
        ContextError::NotUtf8
    );
    assert_eq!(
        bad(raw_context(&[(b"a", b"\xc3"), FMT])),
        ContextError::NotUtf8
    );
    assert_eq!(
        bad(raw_context(&[(b"atrest:foo", b""), FMT])),
        ContextError::ReservedKey("atrest:foo".into())
    );
    assert_eq!(
        bad(raw_context(&[(v2::FORMAT_CONTEXT_KEY.as_bytes(), b"v3")])),
        ContextError::FormatEntry
    );
    // Too long is rejected from the length field, before the bytes arrive.
    let mut bytes = with_context(&[]);
    let at = bytes.len() - 2;
    bytes[at..].copy_from_slice(&8193u16.to_le_bytes());
    assert_eq!(parse_header(&bytes), Err(HeaderError::ContextTooLong(8193)));
    bytes[at..].copy_from_slice(&8192u16.to_le_bytes());
    assert_eq!(
        parse_header(&bytes),
        Ok(Parsed::Incomplete { needed: 8192 })
    );
}

#[test]
fn v2_context_construction() {
    let ctx = EncryptionContext::new([("z", "1"), ("a", "2")]).unwrap();
    assert_eq!(
        ctx.to_pairs(),
        [
            ("a".to_string(), "2".to_string()),
            (
                v2::FORMAT_CONTEXT_KEY.into(),
                v2::FORMAT_CONTEXT_VALUE.into()
            ),
            ("z".into(), "1".into()),
        ]
    );
    assert_eq!(ctx.get("z"), Some("1"));
    assert_eq!(
        EncryptionContext::new([("a", "1"), ("a", "2")]),
        Err(ContextError::DuplicateKey("a".into()))
    );
    assert_eq!(
        EncryptionContext::new([("", "1")]),
        Err(ContextError::EmptyKey)
    );
    assert_eq!(
        EncryptionContext::new([("atrest:format", "x")]),
        Err(ContextError::ReservedKey("atrest:format".into()))
    );
    assert!(matches!(
        EncryptionContext::new([("k", "v".repeat(9000))]),
        Err(ContextError::TooLong(_))
    ));
    assert_eq!(
        EncryptionContext::new([("k", "v".repeat(70_000))]),
        Err(ContextError::FieldTooLong)
    );
}

#[test]
fn v2_rewrap_keeps_the_aad() {
    let h = small_v2();
    let rewrapped = h.clone().with_wrapped_key(vec![9; 200]).unwrap();
    assert_eq!(h.aad(), rewrapped.aad());
    assert_eq!(rewrapped.encoded_len(), h.encoded_len() + 197);
    assert_eq!(
        h.with_wrapped_key(vec![]),
        Err(HeaderError::EmptyWrappedKey)
    );
}

#[test]
fn shared_data_key_marker_round_trips_and_empties_the_kms_context() {
    use atrest_format::v2::{self, EncryptionContext};
    let plain = EncryptionContext::new([("app", "x")]).unwrap();
    assert!(!plain.is_shared_data_key());
    assert_eq!(plain.kms_context(), plain.to_pairs());
    assert_eq!(plain.kms_context().len(), 2, "user pair + format entry");

    let shared = plain.clone().with_shared_data_key().unwrap();
    assert!(shared.is_shared_data_key());
    assert!(shared.kms_context().is_empty());
    assert_eq!(shared.user_pairs().collect::<Vec<_>>(), [("app", "x")]);
    // Users cannot set the reserved key themselves.
    assert!(EncryptionContext::new([(v2::SHARED_KEY_CONTEXT_KEY, "shared")]).is_err());

    // It survives encoding, and only its one value parses.
    let header = v2::Header::new(vec![1; 10], 16, [2; 32], [3; 32], shared.clone()).unwrap();
    let mut bytes = Vec::new();
    header.encode(&mut bytes);
    match parse_header(&bytes).unwrap() {
        Parsed::Complete(Header::V2(h)) => assert!(h.context().is_shared_data_key()),
        other => panic!("{other:?}"),
    }
    let at = bytes.windows(6).position(|w| w == b"shared").unwrap();
    bytes[at] = b'S';
    assert!(matches!(
        parse_header(&bytes),
        Err(HeaderError::BadContext(_))
    ));
}

/// Encodes a v2 header whose context holds exactly `pairs` (sorted by the
/// caller), bypassing the writer's checks, so hostile contexts can be parsed.
fn v2_bytes_with_raw_context(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut ctx = (pairs.len() as u16).to_le_bytes().to_vec();
    for (k, v) in pairs {
        ctx.extend_from_slice(&(k.len() as u16).to_le_bytes());
        ctx.extend_from_slice(k.as_bytes());
        ctx.extend_from_slice(&(v.len() as u16).to_le_bytes());
        ctx.extend_from_slice(v.as_bytes());
    }
    let mut out = vec![2, 1, 0, 0, 3, 0, 0, 0, 7, 7, 7, 16];
    out.extend_from_slice(&[5; 64]);
    out.extend_from_slice(&(ctx.len() as u16).to_le_bytes());
    out.extend_from_slice(&ctx);
    out
}

#[test]
fn keyring_entry_records_a_key_file_and_parses_back() {
    use atrest_format::keyring::Keyring;
    let plain = EncryptionContext::new([("app", "x")]).unwrap();
    assert_eq!(plain.keyring(), Keyring::Kms);
    assert_eq!(plain.clone().with_keyring(Keyring::Kms).unwrap(), plain);
    let keyed = plain.clone().with_keyring(Keyring::KeyFile).unwrap();
    assert_eq!(keyed.keyring(), Keyring::KeyFile);
    assert_eq!(keyed.get(v2::KEYRING_CONTEXT_KEY), Some("key-file"));
    assert_eq!(keyed.user_pairs().collect::<Vec<_>>(), [("app", "x")]);
    // Idempotent; cannot be taken back to KMS; users cannot set it.
    assert_eq!(keyed.clone().with_keyring(Keyring::KeyFile).unwrap(), keyed);
    assert!(keyed.clone().with_keyring(Keyring::Kms).is_err());
    assert!(EncryptionContext::new([(v2::KEYRING_CONTEXT_KEY, "key-file")]).is_err());
    // A shared data.key is KMS-wrapped: the two markers exclude each other.
    assert_eq!(
        keyed.clone().with_shared_data_key(),
        Err(ContextError::SharedKeyNotKms)
    );
    assert_eq!(
        plain
            .with_shared_data_key()
            .unwrap()
            .with_keyring(Keyring::KeyFile),
        Err(ContextError::SharedKeyNotKms)
    );

    let header = v2::Header::new(vec![1; 60], 16, [2; 32], [3; 32], keyed.clone()).unwrap();
    let bytes = encode(&Header::V2(header));
    match parse_header(&bytes).unwrap() {
        Parsed::Complete(h) => {
            assert_eq!(h.keyring(), Keyring::KeyFile);
            assert_eq!(encode(&h), bytes);
        }
        other => panic!("{other:?}"),
    }
    // v1 and older v2 objects: KMS.
    let v1 = Header::V1(v1::Header::new(vec![1; 10], [0; 8]).unwrap());
    assert_eq!(v1.keyring(), Keyring::Kms);
    assert_eq!(Header::V2(small_v2()).keyring(), Keyring::Kms);
}

#[test]
fn keyring_entry_rules_when_parsing() {
    let f = (v2::FORMAT_CONTEXT_KEY, v2::FORMAT_CONTEXT_VALUE);
    let ok = v2_bytes_with_raw_context(&[f, ("atrest:keyring", "key-file")]);
    assert!(matches!(parse_header(&ok), Ok(Parsed::Complete(_))));
    for (pairs, want) in [
        (
            vec![f, ("atrest:keyring", "kms")],
            ContextError::ReservedKey("atrest:keyring".into()),
        ),
        (
            vec![f, ("atrest:keyring", "")],
            ContextError::ReservedKey("atrest:keyring".into()),
        ),
        (
            vec![
                ("atrest:data-key", "shared"),
                f,
                ("atrest:keyring", "key-file"),
            ],
            ContextError::SharedKeyNotKms,
        ),
        (
            vec![f, ("atrest:keyrings", "key-file")],
            ContextError::ReservedKey("atrest:keyrings".into()),
        ),
    ] {
        assert_eq!(
            parse_header(&v2_bytes_with_raw_context(&pairs)),
            Err(HeaderError::BadContext(want)),
            "{pairs:?}"
        );
    }
}

#[test]
fn contexts_rebuild_from_all_their_pairs_by_the_parse_rules() {
    use atrest_format::keyring::Keyring;
    let ctx = EncryptionContext::new([("b", "2"), ("a", "1")])
        .unwrap()
        .with_keyring(Keyring::KeyFile)
        .unwrap();
    assert_eq!(EncryptionContext::from_pairs(&ctx.to_pairs()).unwrap(), ctx);
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let format = pair(v2::FORMAT_CONTEXT_KEY, v2::FORMAT_CONTEXT_VALUE);
    // Unsorted, no format entry, an unknown reserved key.
    for bad in [
        vec![pair("b", ""), format.clone(), pair("a", "")],
        vec![pair("a", "")],
        vec![format.clone(), pair("atrest:other", "")],
    ] {
        assert!(EncryptionContext::from_pairs(&bad).is_err(), "{bad:?}");
    }
}
