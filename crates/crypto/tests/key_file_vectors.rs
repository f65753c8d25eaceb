//! The committed key-file vectors (`fixtures/key-file`): they match the
//! generator, and a reader holding each vector's key file reaches the
//! expected outcome: parse, keyring, unwrap, then decrypt.

#[allow(dead_code)]
#[path = "../../../xtask/src/key_file_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atrest_crypto::keyfile::KeyFileKey;
use atrest_format::keyring::Keyring;
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

fn metas() -> Vec<BTreeMap<String, String>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "meta"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "fixtures/key-file is incomplete");
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    let (k, v) = l.split_once(": ").unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    let mut seen = BTreeMap::new();
    for meta in metas() {
        let get = |k: &str| meta.get(k).unwrap_or_else(|| panic!("missing {k}"));
        let name = get("name");
        let expect = Expect::parse(get("expect")).unwrap();
        *seen.entry(get("expect").clone()).or_insert(0) += 1;
        let object = std::fs::read(dir().join(get("object"))).unwrap();
        let kek = KeyFileKey::from_slice(&hex::decode(get("key_file")).unwrap()).unwrap();
        let header = match parse_header(&object) {
            Ok(Parsed::Complete(Header::V2(h))) => h,
            other => {
                assert_eq!(expect, Expect::Header, "{name}: {other:?}");
                continue;
            }
        };
        assert_ne!(expect, Expect::Header, "{name}: header parsed");
        assert_eq!(hex::encode(header.wrapped_key()), *get("wrapped_key"));
        if header.context().keyring() != Keyring::KeyFile {
            assert_eq!(expect, Expect::Kms, "{name}");
            continue;
        }
        let unwrapped = kek.unwrap(header.wrapped_key(), header.context());
        let Ok(data_key) = unwrapped else {
            assert_eq!(expect, Expect::Unwrap, "{name}");
            continue;
        };
        assert_eq!(expect, Expect::Ok, "{name}: unwrapped");
        assert_eq!(hex::encode(data_key.expose()), *get("data_key"), "{name}");
        let mut reader = &object[..];
        let parsed = atrest_crypto::read_header(&mut reader).unwrap();
        let mut out = Vec::new();
        atrest_crypto::decrypt_stream(&data_key, &parsed, reader, &mut out).unwrap();
        assert_eq!(out.len().to_string(), *get("plaintext_len"), "{name}");
        assert_eq!(
            hex::encode(Sha256::digest(&out)),
            *get("plaintext_sha256"),
            "{name}"
        );
    }
    // Every outcome is exercised.
    assert_eq!(seen.len(), 4, "{seen:?}");
}
