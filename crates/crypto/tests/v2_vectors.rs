//! The committed v2 vectors (`fixtures/v2`): they match the generator, and
//! every one decodes to its expected outcome through every reader path.

#[allow(dead_code)]
#[path = "../../../xtask/src/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atrest_crypto::{v2, DataKey, DecryptError, StreamError};
use atrest_format::{parse_header, Header, Parsed};
use fixtures::Expect;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(fixtures::DIR)
}

#[test]
fn vectors_are_up_to_date() {
    if let Err(problems) = fixtures::check(&dir()) {
        panic!("{problems}");
    }
}

struct Meta {
    fields: BTreeMap<String, String>,
}

impl Meta {
    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("missing {key}"))
    }
}

fn metas() -> Vec<Meta> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "meta"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "fixtures/v2 is incomplete");
    paths
        .iter()
        .map(|p| Meta {
            fields: std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    let (k, v) = l.split_once(": ").unwrap_or((l.trim_end_matches(':'), ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
        })
        .collect()
}

/// Decrypts the body by the streaming decryptor in `chunk`-byte pieces.
fn stream(
    key: &DataKey,
    h: &atrest_format::v2::Header,
    body: &[u8],
    chunk: usize,
) -> (Result<(), DecryptError>, Vec<u8>) {
    let mut out = Vec::new();
    let mut dec = match v2::Decryptor::new(key, h) {
        Ok(d) => d,
        Err(e) => return (Err(e), out),
    };
    for piece in body.chunks(chunk) {
        if let Err(e) = dec.update(piece, &mut out) {
            return (Err(e), out);
        }
    }
    (dec.finish(&mut out), out)
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    for meta in metas() {
        let name = meta.get("name");
        let object = std::fs::read(dir().join(meta.get("object"))).unwrap();
        let key = DataKey::from_slice(&hex::decode(meta.get("data_key")).unwrap()).unwrap();
        let expect =
            Expect::parse(meta.get("expect")).unwrap_or_else(|| panic!("{name}: bad expect"));
        let header = match parse_header(&object) {
            Ok(Parsed::Complete(Header::V2(h))) => h,
            other => {
                assert_eq!(expect, Expect::Header, "{name}: header gave {other:?}");
                // Through the io path too.
                let err = atrest_crypto::read_header(&mut &object[..]).unwrap_err();
                assert!(
                    matches!(err, StreamError::Header(_) | StreamError::TruncatedHeader),
                    "{name}"
                );
                continue;
            }
        };
        assert_ne!(expect, Expect::Header, "{name}: header parsed");
        assert_eq!(
            hex::encode(header.wrapped_key()),
            meta.get("wrapped_key"),
            "{name}"
        );
        let commitment_ok = v2::FrameCipher::new(&key, &header).is_ok();
        assert_eq!(
            commitment_ok,
            expect != Expect::Commitment,
            "{name}: commitment"
        );

        let body = &object[header.encoded_len()..];
        let (len_key, sha_key) = match expect {
            Expect::Ok => ("plaintext_len", "plaintext_sha256"),
            _ => ("released_len", "released_sha256"),
        };
        let want_len: usize = meta.get(len_key).parse().unwrap();
        for chunk in [1, 17, 4096 + 16, 65_536, usize::MAX] {
            if chunk == 1 && body.len() > 20_000 {
                continue;
            }
            let (result, out) = stream(&key, &header, body, chunk.min(body.len().max(1)));
            assert_eq!(result.is_ok(), expect == Expect::Ok, "{name} chunk {chunk}");
            if expect == Expect::Ok {
                assert_eq!(out.len(), want_len, "{name}");
                assert_eq!(
                    hex::encode(Sha256::digest(&out)),
                    meta.get(sha_key),
                    "{name}"
                );
            } else {
                // Only authenticated frames, and never more than the whole-body
                // decoder releases (smaller chunks may release less).
                assert!(
                    out.len() <= want_len,
                    "{name} chunk {chunk}: released too much"
                );
            }
        }
        // Fed the whole body at once, it releases exactly the recorded prefix.
        if expect != Expect::Ok {
            let mut out = Vec::new();
            if let Ok(mut dec) = v2::Decryptor::new(&key, &header) {
                let _ = dec.update(body, &mut out);
            }
            assert_eq!(out.len(), want_len, "{name}");
            assert_eq!(
                hex::encode(Sha256::digest(&out)),
                meta.get(sha_key),
                "{name}"
            );
        }

        // The std::io path.
        let mut reader = &object[..];
        let parsed = atrest_crypto::read_header(&mut reader).unwrap();
        let mut out = Vec::new();
        let result = atrest_crypto::decrypt_stream(&key, &parsed, reader, &mut out);
        match expect {
            Expect::Ok => assert_eq!(result.unwrap(), want_len as u64, "{name}"),
            _ => assert!(
                matches!(result, Err(StreamError::Decrypt(DecryptError))),
                "{name}"
            ),
        }
    }
}

#[test]
fn format_doc_quotes_the_current_worked_example() {
    let example = std::fs::read_to_string(dir().join("ok-hello.worked-example.txt")).unwrap();
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md"))
            .unwrap();
    assert!(
        doc.contains(&example),
        "docs/FORMAT.md's worked example differs from fixtures/v2/ok-hello.worked-example.txt: copy it over"
    );
}
