//! Known answers from the AWS S3 Encryption Client for Python 4.0.0: the
//! objects in `fixtures/s3ec` (made by `fixtures/s3ec/make.py`, which says
//! how) decrypt to their plaintext through every path, re-encrypt to the
//! same body, and fail on every kind of tampering.

use std::collections::BTreeMap;
use std::path::PathBuf;

use atrest_crypto::s3ec::{ContentCipher, Decryptor, Encryptor, TAG_LEN};
use atrest_crypto::DataKey;
use atrest_format::s3ec::{self, Content, Policy, Version};

struct Vector {
    name: String,
    metadata: BTreeMap<String, String>,
    caller_context: BTreeMap<String, String>,
    key: DataKey,
    body: Vec<u8>,
    plaintext: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/s3ec");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let strings = |field: &str| -> BTreeMap<String, String> {
            serde_json::from_value(v[field].clone()).unwrap()
        };
        let bytes = |field: &str| hex::decode(v[field].as_str().unwrap()).unwrap();
        out.push(Vector {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            metadata: strings("metadata"),
            caller_context: strings("caller_context"),
            key: DataKey::from_slice(&bytes("data_key")).unwrap(),
            body: bytes("body"),
            plaintext: bytes("plaintext"),
        });
    }
    assert!(out.len() >= 7, "fixtures/s3ec has too few vectors");
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn envelope(v: &Vector) -> s3ec::Envelope {
    s3ec::parse(&v.metadata, None, Policy::default()).unwrap_or_else(|e| panic!("{}: {e}", v.name))
}

#[test]
fn python_objects_parse_with_their_context() {
    for v in vectors() {
        let env = envelope(&v);
        let want = if v.name.starts_with("v3") {
            Version::V3
        } else {
            Version::V2
        };
        assert_eq!(env.version, want, "{}", v.name);
        assert!(env.wrap.is_kms(), "{}", v.name);
        let user: BTreeMap<String, String> = env
            .user_context()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(user, v.caller_context, "{}", v.name);
        assert_eq!(
            s3ec::gcm_plaintext_len(v.body.len() as u64),
            Some(v.plaintext.len() as u64)
        );
    }
}

#[test]
fn python_objects_decrypt_sequentially_in_any_chunking() {
    for v in vectors() {
        let env = envelope(&v);
        for chunk in [1, 7, 16, 17, 4096] {
            let mut dec = Decryptor::new(ContentCipher::new(&v.key, &env.content).unwrap());
            let mut out = Vec::new();
            for piece in v.body.chunks(chunk) {
                dec.update(piece, &mut out).unwrap();
            }
            assert_eq!(dec.finish().unwrap(), v.plaintext.len() as u64);
            assert_eq!(out, v.plaintext, "{} in chunks of {chunk}", v.name);
        }
    }
}

#[test]
fn python_objects_decrypt_by_runs_in_any_order() {
    for v in vectors() {
        let env = envelope(&v);
        let cipher = ContentCipher::new(&v.key, &env.content).unwrap();
        let len = v.plaintext.len();
        for run in [16, 32, 160, 1024] {
            let mut ct = v.body[..len].to_vec();
            let tag = &v.body[len..];
            let mut hashes = Vec::new();
            // Decrypt the runs back to front, to show order does not matter.
            let mut chunks: Vec<(usize, &mut [u8])> = ct.chunks_mut(run).enumerate().collect();
            chunks.reverse();
            for (i, chunk) in chunks {
                hashes.push((i, cipher.open_run((i * run) as u64, chunk)));
            }
            hashes.sort_by_key(|(i, _)| *i);
            let hashes: Vec<_> = hashes.into_iter().map(|(_, h)| h).collect();
            cipher.verify(&hashes, tag).unwrap();
            assert_eq!(ct, v.plaintext, "{} in runs of {run}", v.name);
        }
    }
}

#[test]
fn reencrypting_with_the_same_key_and_iv_gives_the_python_body() {
    for v in vectors() {
        let env = envelope(&v);
        let cipher = ContentCipher::new(&v.key, &env.content).unwrap();
        let mut enc = Encryptor::new(cipher, v.plaintext.len() as u64).unwrap();
        let mut body = Vec::new();
        enc.update(&v.plaintext, &mut body).unwrap();
        enc.finish(&mut body).unwrap();
        assert_eq!(body, v.body, "{}", v.name);
    }
}

#[test]
fn a_forged_commitment_or_message_id_or_key_fails_before_decryption() {
    for v in vectors().into_iter().filter(|v| v.name.starts_with("v3")) {
        let env = envelope(&v);
        let Content::Committed {
            message_id,
            commitment,
        } = env.content
        else {
            panic!("{} is not V3", v.name);
        };
        let mut forged = commitment;
        forged[27] ^= 1;
        let bad = Content::Committed {
            message_id,
            commitment: forged,
        };
        assert!(ContentCipher::new(&v.key, &bad).is_err(), "{}", v.name);
        let mut forged_id = message_id;
        forged_id[0] ^= 0x80;
        let bad = Content::Committed {
            message_id: forged_id,
            commitment,
        };
        assert!(ContentCipher::new(&v.key, &bad).is_err(), "{}", v.name);
        let other_key = DataKey::from_slice(&[0x5a; 32]).unwrap();
        assert!(ContentCipher::new(&other_key, &env.content).is_err());
    }
}

fn decrypts(v: &Vector, content: &Content, body: &[u8]) -> bool {
    let Ok(cipher) = ContentCipher::new(&v.key, content) else {
        return false;
    };
    let mut dec = Decryptor::new(cipher);
    let mut out = Vec::new();
    dec.update(body, &mut out).is_ok() && dec.finish().is_ok()
}

#[test]
fn tampered_bodies_fail_the_tag() {
    let all = vectors();
    for v in &all {
        let env = envelope(v);
        assert!(decrypts(v, &env.content, &v.body));
        for i in [0, v.body.len() / 2, v.body.len() - 1] {
            let mut body = v.body.clone();
            body[i] ^= 0x01;
            assert!(!decrypts(v, &env.content, &body), "{} flip {i}", v.name);
        }
        assert!(!decrypts(v, &env.content, &v.body[..v.body.len() - 1]));
        assert!(!decrypts(v, &env.content, &v.body[..TAG_LEN - 1]));
        let mut longer = v.body.clone();
        longer.push(0);
        assert!(!decrypts(v, &env.content, &longer), "{} extended", v.name);
        // The body of another object under this one's metadata.
        for other in all.iter().filter(|o| o.name != v.name) {
            assert!(
                !decrypts(v, &env.content, &other.body),
                "{} <- {}",
                v.name,
                other.name
            );
        }
        // V2 content parameters on a V3 body (and the other way round).
        let swapped = match env.content {
            Content::Committed { message_id, .. } => Content::Gcm {
                iv: message_id[..12].try_into().unwrap(),
            },
            Content::Gcm { .. } => Content::Committed {
                message_id: [1; 28],
                commitment: [2; 28],
            },
            Content::Cbc { .. } => unreachable!(),
        };
        assert!(!decrypts(v, &swapped, &v.body), "{} swapped", v.name);
    }
}
