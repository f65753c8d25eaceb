//! `inspect`: never panics, agrees with `parse_header` and the length
//! functions, and describes the real objects in `fixtures/` correctly.

use std::path::{Path, PathBuf};

use atrest_format::inspect::{inspect, InspectError, Inspected, Inspection, PlaintextLen};
use atrest_format::{parse_header, v1, v2, Header, Parsed};
use proptest::prelude::*;

/// What `inspect` must answer, derived from `parse_header` and the length
/// functions directly.
fn expected(prefix: &[u8], object_len: u64) -> Result<Inspected, InspectError> {
    if prefix.len() as u64 > object_len {
        return Err(InspectError::PrefixLongerThanObject {
            prefix_len: prefix.len() as u64,
            object_len,
        });
    }
    match parse_header(prefix).map_err(InspectError::Header)? {
        Parsed::Incomplete { needed } if prefix.len() as u64 + needed as u64 > object_len => {
            Err(InspectError::TruncatedHeader {
                object_len,
                header_len_at_least: prefix.len() as u64 + needed as u64,
            })
        }
        Parsed::Incomplete { needed } => Ok(Inspected::Incomplete { needed }),
        Parsed::Complete(header) => {
            let body_len = object_len - header.encoded_len() as u64;
            let plaintext_len = match &header {
                Header::V1(_) if body_len > 0 && body_len % 16 == 0 => PlaintextLen::Between {
                    min: body_len - 16,
                    max: body_len - 1,
                },
                Header::V2(h) => v2::plaintext_len(body_len, h.frame_size())
                    .map_or(PlaintextLen::InvalidBody, PlaintextLen::Exact),
                _ => PlaintextLen::InvalidBody,
            };
            let Ok(Inspected::Complete(got)) = inspect(prefix, object_len) else {
                panic!("inspect disagrees on completeness");
            };
            // Inspection is non_exhaustive: compare field by field.
            assert_eq!(got.header, header);
            assert_eq!(got.object_len, object_len);
            assert_eq!(got.body_len, body_len);
            assert_eq!(got.plaintext_len, plaintext_len);
            Ok(Inspected::Complete(got))
        }
    }
}

/// A valid header of either version followed by some body bytes.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let v1 = (prop::collection::vec(any::<u8>(), 1..200), any::<[u8; 8]>()).prop_map(|(k, iv)| {
        let mut out = Vec::new();
        v1::Header::new(k, iv).unwrap().encode(&mut out);
        out
    });
    let v2 = (
        prop::collection::vec(any::<u8>(), 1..200),
        v2::MIN_FRAME_EXPONENT..=v2::MAX_FRAME_EXPONENT,
        prop::collection::btree_map("[b-z]{1,8}", "[\\PC]{0,8}", 0..4),
    )
        .prop_map(|(k, e, ctx)| {
            let ctx = v2::EncryptionContext::new(ctx).unwrap();
            let mut out = Vec::new();
            v2::Header::new(k, e, [3; 32], [4; 32], ctx)
                .unwrap()
                .encode(&mut out);
            out
        });
    prop_oneof![v1, v2]
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300), len in any::<u64>()) {
        let _ = inspect(&bytes, len);
        let _ = inspect(&bytes, bytes.len() as u64);
    }

    #[test]
    fn agrees_with_parse_header_on_arbitrary_input(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        extra in prop_oneof![0u64..100, any::<u64>()],
        shrink in any::<bool>(),
    ) {
        let len = if shrink {
            (bytes.len() as u64).saturating_sub(extra)
        } else {
            (bytes.len() as u64).saturating_add(extra)
        };
        prop_assert_eq!(inspect(&bytes, len), expected(&bytes, len));
    }

    #[test]
    fn agrees_with_parse_header_on_valid_headers(
        header in header_bytes(),
        cut in any::<prop::sample::Index>(),
        body in prop_oneof![0u64..100_000, any::<u64>()],
    ) {
        let len = (header.len() as u64).saturating_add(body);
        // Every prefix, including the whole header.
        let prefix = &header[..cut.index(header.len() + 1)];
        let got = inspect(prefix, len);
        prop_assert_eq!(&got, &expected(prefix, len));
        if prefix.len() == header.len() {
            prop_assert!(matches!(got, Ok(Inspected::Complete(_))), "complete");
        } else {
            prop_assert!(matches!(got, Ok(Inspected::Incomplete { .. })), "incomplete");
        }
    }

    /// Feeding exactly the bytes asked for reaches the whole header in
    /// steps that never pass its end.
    #[test]
    fn incremental_reads_never_overshoot(header in header_bytes(), body in 0u64..1000) {
        let len = header.len() as u64 + body;
        let mut have = 0;
        loop {
            match inspect(&header[..have], len).unwrap() {
                Inspected::Complete(i) => {
                    prop_assert_eq!(i.header_len(), header.len() as u64);
                    break;
                }
                Inspected::Incomplete { needed } => {
                    prop_assert!(needed > 0 && have + needed <= header.len());
                    have += needed;
                }
            }
        }
    }

    /// The v1 range always holds the true plaintext length, and v2's exact
    /// length matches the framing functions.
    #[test]
    fn lengths_match_what_a_writer_produces(plain in 0u64..(1 << 40), e in 12u8..=24) {
        let mut v1h = Vec::new();
        v1::Header::new(vec![1; 10], [0; 8]).unwrap().encode(&mut v1h);
        let obj = v1h.len() as u64 + v1::ciphertext_len(plain);
        let Ok(Inspected::Complete(i)) = inspect(&v1h, obj) else { panic!() };
        let PlaintextLen::Between { min, max } = i.plaintext_len else { panic!() };
        prop_assert!(min <= plain && plain <= max && max - min == 15);

        let mut v2h = Vec::new();
        let ctx = v2::EncryptionContext::new::<String, String>([]).unwrap();
        v2::Header::new(vec![1; 10], e, [0; 32], [0; 32], ctx).unwrap().encode(&mut v2h);
        let obj = v2h.len() as u64 + v2::body_len(plain, 1 << e).unwrap();
        let Ok(Inspected::Complete(i)) = inspect(&v2h, obj) else { panic!() };
        prop_assert_eq!(i.plaintext_len, PlaintextLen::Exact(plain));
        prop_assert_eq!(i.frame_count(), Some(v2::frame_count(plain, 1 << e)));
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Inspects a whole stored object the way the CLI does: a first small range,
/// then exactly what is asked for.
fn inspect_file(path: &Path) -> Result<Inspection, InspectError> {
    let object = std::fs::read(path).unwrap();
    let len = object.len() as u64;
    let mut have = object.len().min(16);
    loop {
        match inspect(&object[..have], len)? {
            Inspected::Complete(i) => return Ok(i),
            Inspected::Incomplete { needed } => have += needed,
        }
    }
}

fn meta(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn meta_get<'a>(meta: &'a [(String, String)], key: &str) -> Option<&'a str> {
    meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn seed_v1_objects() {
    let mut seen = 0;
    for set in ["set-a", "set-b"] {
        let dir = fixtures().join("seed-v1").join(set);
        let wrapped = std::fs::read(dir.join("data.key")).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "object") {
                continue;
            }
            let plain_len = std::fs::metadata(path.with_extension("plain"))
                .unwrap()
                .len();
            let i = inspect_file(&path).unwrap();
            let name = path.display();
            assert_eq!(i.version(), 1, "{name}");
            assert_eq!((i.suite(), i.frame_size(), i.context()), (None, None, None));
            assert_eq!(i.wrapped_key_len(), wrapped.len(), "{name}");
            assert_eq!(i.header.wrapped_key(), &wrapped[..], "{name}");
            assert_eq!(i.header_len(), 16 + wrapped.len() as u64, "{name}");
            assert_eq!(i.body_len, v1::ciphertext_len(plain_len), "{name}");
            let PlaintextLen::Between { min, max } = i.plaintext_len else {
                panic!("{name}: {:?}", i.plaintext_len)
            };
            assert!(min <= plain_len && plain_len <= max, "{name}");
            assert_eq!((min, max), (i.body_len - 16, i.body_len - 1));
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} seed objects found");
}

#[test]
fn v2_vectors() {
    let dir = fixtures().join("v2");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "meta") {
            continue;
        }
        let meta = meta(&path);
        let name = meta_get(&meta, "name").unwrap();
        let object = dir.join(meta_get(&meta, "object").unwrap());
        let got = inspect_file(&object);
        match meta_get(&meta, "expect").unwrap() {
            "ok" => {
                let i = got.clone().unwrap_or_else(|e| panic!("{name}: {e}"));
                let want: u64 = meta_get(&meta, "plaintext_len").unwrap().parse().unwrap();
                assert_eq!(i.version(), 2, "{name}");
                assert_eq!(i.suite(), Some(v2::SUITE_AES256GCM_HKDF_SHA256));
                assert_eq!(i.plaintext_len, PlaintextLen::Exact(want), "{name}");
                let wrapped = hex(meta_get(&meta, "wrapped_key").unwrap());
                assert_eq!(i.header.wrapped_key(), &wrapped[..], "{name}");
                assert_eq!(i.wrapped_key_len(), wrapped.len());
                let ctx = i.context().unwrap();
                assert_eq!(
                    ctx.get(v2::FORMAT_CONTEXT_KEY),
                    Some(v2::FORMAT_CONTEXT_VALUE)
                );
                assert_eq!(
                    i.header_len() + i.body_len,
                    std::fs::metadata(&object).unwrap().len()
                );
            }
            "header-error" => assert!(got.is_err(), "{name}: {got:?}"),
            _ => {
                // Frame or commitment failures: the header is fine.
                let i = got.clone().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(i.version(), 2);
            }
        }
        // Lengths that no writer produces are flagged.
        match name {
            "fail-empty-body" | "fail-empty-final-frame" => {
                let i = inspect_file(&object).unwrap();
                assert_eq!(i.plaintext_len, PlaintextLen::InvalidBody, "{name}");
            }
            // A truncation can leave a plausible length: only the final
            // frame's authentication proves it.
            "fail-truncated-mid-frame" | "fail-truncated-at-boundary" => {
                let i = inspect_file(&object).unwrap();
                assert!(matches!(i.plaintext_len, PlaintextLen::Exact(_)), "{name}");
            }
            "fail-header-truncated" => assert!(
                matches!(got, Err(InspectError::TruncatedHeader { .. })),
                "{name}: {got:?}"
            ),
            _ => {}
        }
        seen += 1;
    }
    assert!(seen >= 30, "only {seen} v2 vectors found");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
