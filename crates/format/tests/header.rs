//! Property and edge-case tests of the header codec.

use atrest_format::{parse_header, v1, Header, HeaderError, Parsed, MAX_WRAPPED_KEY_LEN};
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

proptest! {
    #[test]
    fn v1_round_trip_ignores_trailing_bytes(h in v1_header(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let header = Header::V1(h);
        let mut bytes = encode(&header);
        prop_assert_eq!(bytes.len(), header.encoded_len());
        bytes.extend_from_slice(&body);
        prop_assert_eq!(parse_header(&bytes), Ok(Parsed::Complete(header)));
    }

    #[test]
    fn every_truncation_asks_for_more(h in v1_header(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&Header::V1(h));
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

    #[test]
    fn unknown_versions_are_rejected_from_the_first_byte(version in any::<u8>().prop_filter("known", |v| *v != v1::VERSION)) {
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
