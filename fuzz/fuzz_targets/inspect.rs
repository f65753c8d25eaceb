//! Any bytes and object lengths through `inspect`: never panics, agrees with
//! `parse_header` and the length functions, and reading exactly what it asks
//! for reaches the end of the header without passing it.
#![no_main]

use atrest_format::inspect::{inspect, InspectError, Inspected, PlaintextLen};
use atrest_format::{parse_header, v1, v2, Header, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The input is a whole object; also try it as the prefix of objects of
    // other lengths, chosen from its last bytes.
    let mut tail = [0u8; 8];
    let n = data.len().min(8);
    tail[..n].copy_from_slice(&data[data.len() - n..]);
    let other = u64::from_le_bytes(tail);
    let len = data.len() as u64;
    for object_len in [
        len,
        len + 1,
        len + 16,
        len.saturating_add(other),
        other,
        u64::MAX,
    ] {
        check(data, object_len);
        check(&data[..data.len() / 2], object_len);
    }
    incremental(data);
});

fn check(prefix: &[u8], object_len: u64) {
    let got = inspect(prefix, object_len);
    if prefix.len() as u64 > object_len {
        assert!(matches!(
            got,
            Err(InspectError::PrefixLongerThanObject { .. })
        ));
        return;
    }
    match (parse_header(prefix), got) {
        (Err(e), Err(InspectError::Header(g))) => assert_eq!(e, g),
        (Ok(Parsed::Incomplete { needed }), Ok(Inspected::Incomplete { needed: g })) => {
            assert_eq!(needed, g);
            assert!(prefix.len() as u64 + needed as u64 <= object_len);
        }
        (Ok(Parsed::Incomplete { needed }), Err(InspectError::TruncatedHeader { .. })) => {
            assert!(prefix.len() as u64 + needed as u64 > object_len);
        }
        (Ok(Parsed::Complete(h)), Ok(Inspected::Complete(i))) => {
            assert_eq!(i.header, h);
            assert_eq!(i.object_len, object_len);
            assert_eq!(i.body_len, object_len - h.encoded_len() as u64);
            assert_eq!(i.header_len(), h.encoded_len() as u64);
            assert_eq!(i.wrapped_key_len(), h.wrapped_key().len());
            let body = i.body_len;
            match (&h, i.plaintext_len) {
                (Header::V1(_), PlaintextLen::Between { min, max }) => {
                    assert!(v1::is_valid_ciphertext_len(body));
                    assert_eq!((min, max), (body - 16, body - 1));
                }
                (Header::V1(_), PlaintextLen::InvalidBody) => {
                    assert!(!v1::is_valid_ciphertext_len(body));
                }
                (Header::V2(h2), PlaintextLen::Exact(p)) => {
                    assert_eq!(v2::plaintext_len(body, h2.frame_size()), Some(p));
                    assert_eq!(v2::body_len(p, h2.frame_size()), Some(body));
                    assert_eq!(i.frame_count(), Some(v2::frame_count(p, h2.frame_size())));
                }
                (Header::V2(h2), PlaintextLen::InvalidBody) => {
                    assert_eq!(v2::plaintext_len(body, h2.frame_size()), None);
                }
                (h, p) => panic!("{} with {p:?}", h.version()),
            }
        }
        (want, got) => panic!("parse_header gave {want:?}, inspect {got:?}"),
    }
}

/// Reads as the CLI does: start empty, fetch exactly what is asked for.
fn incremental(object: &[u8]) {
    let len = object.len() as u64;
    let mut have = 0usize;
    loop {
        match inspect(&object[..have], len) {
            Ok(Inspected::Complete(i)) => {
                assert!(i.header_len() as usize <= object.len());
                return;
            }
            Ok(Inspected::Incomplete { needed }) => {
                assert!(needed > 0 && have + needed <= object.len());
                have += needed;
            }
            Err(_) => return,
        }
    }
}
