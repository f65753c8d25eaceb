//! Known-answer tests against real objects written by the original Node tool
//! (`fixtures/seed-v1`): decrypting gives the plaintext, and re-encrypting the
//! plaintext with the object's own IV reproduces the object byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use atrest_crypto::{v1, DataKey};
use atrest_format::{parse_header, Header, Parsed};

struct Case {
    name: String,
    object: Vec<u8>,
    plain: Vec<u8>,
    wrapped_key: Vec<u8>,
    key: DataKey,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/seed-v1");
    let mut cases = Vec::new();
    for set in ["set-a", "set-b"] {
        let dir = root.join(set);
        let hex_key = fs::read_to_string(dir.join("data.key.plaintext.hex")).unwrap();
        let wrapped_key = fs::read(dir.join("data.key")).unwrap();
        let mut objects: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "object"))
            .collect();
        objects.sort();
        for path in objects {
            cases.push(Case {
                name: format!("{set}/{}", path.file_name().unwrap().to_string_lossy()),
                object: fs::read(&path).unwrap(),
                plain: fs::read(path.with_extension("plain")).unwrap(),
                wrapped_key: wrapped_key.clone(),
                key: DataKey::from_slice(&hex::decode(hex_key.trim()).unwrap()).unwrap(),
            });
        }
    }
    // 12 objects in set-a, 4 in set-b: guard against a fixture copy going missing.
    assert_eq!(cases.len(), 16, "fixtures/seed-v1 is incomplete");
    cases
}

fn v1_header(object: &[u8]) -> atrest_format::v1::Header {
    match parse_header(object).unwrap() {
        Parsed::Complete(Header::V1(h)) => h,
        other => panic!("not a complete v1 header: {other:?}"),
    }
}

#[test]
fn every_object_decrypts_to_its_plaintext_in_any_chunking() {
    for case in cases() {
        let header = v1_header(&case.object);
        assert_eq!(header.wrapped_key(), &case.wrapped_key[..], "{}", case.name);
        let body = &case.object[header.encoded_len()..];
        for chunk in [1, 7, 16, 4096, usize::MAX] {
            let mut out = Vec::new();
            let mut dec = v1::Decryptor::new(&case.key, &header.stored_iv());
            for piece in body.chunks(chunk.min(body.len().max(1))) {
                dec.update(piece, &mut out);
            }
            dec.finish(&mut out).unwrap();
            assert!(
                out == case.plain,
                "{} chunk {chunk}: wrong plaintext",
                case.name
            );
        }
    }
}

#[test]
fn re_encrypting_reproduces_every_object_byte_for_byte() {
    for case in cases() {
        let header = v1_header(&case.object);
        let mut object = Vec::new();
        atrest_format::v1::Header::new(case.wrapped_key.clone(), header.stored_iv())
            .unwrap()
            .encode(&mut object);
        let mut enc = v1::Encryptor::new(&case.key, &header.stored_iv());
        for piece in case.plain.chunks(1000) {
            enc.update(piece, &mut object);
        }
        enc.finish(&mut object);
        assert!(
            object == case.object,
            "{}: re-encryption differs",
            case.name
        );
    }
}
