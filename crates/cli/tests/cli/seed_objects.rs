//! Objects written by the original Node tool decrypt with atrest.
//!
//! The fixtures' wrapped keys belong to the emulator that made them, so each
//! test wraps the fixture's plaintext data key on this endpoint (KMS Encrypt)
//! and splices the new blob in place of the old one; the ciphertext stays
//! the original tool's.

use std::fs;

use aws_sdk_kms::primitives::Blob;

use crate::harness::*;

fn rewrap(env: &Env, object: &[u8], plaintext_key: &[u8]) -> Vec<u8> {
    let blob = block_on(
        env.kms
            .encrypt()
            .key_id(&env.key_id)
            .plaintext(Blob::new(plaintext_key))
            .send(),
    )
    .unwrap()
    .ciphertext_blob
    .unwrap()
    .into_inner();
    let old_len = u32::from_le_bytes(object[4..8].try_into().unwrap()) as usize;
    let mut out = object[..4].to_vec();
    out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    out.extend_from_slice(&blob);
    out.extend_from_slice(&object[8 + old_len..]);
    out
}

#[test]
fn original_tool_objects_decrypt() {
    let Some(env) = env() else { return };
    let mut seen = 0;
    for set in ["set-a", "set-b"] {
        let dir = fixtures().join("seed-v1").join(set);
        let hex_key = fs::read_to_string(dir.join("data.key.plaintext.hex")).unwrap();
        let key = hex::decode(hex_key.trim()).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "object") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            // The original tool stored s3://b/dir/f under the key "/dir/f".
            let key_name = format!("/legacy/{set}/{name}");
            env.put_raw(&key_name, rewrap(&env, &fs::read(&path).unwrap(), &key));
            let uri = format!("s3://{}/{key_name}", env.bucket);
            assert!(uri.contains("//legacy"));
            let out = format!("{set}-{name}.out");
            env.ok(&["decrypt-with-kms", &uri, &out]);
            let want = fs::read(path.with_extension("plain")).unwrap();
            assert!(
                fs::read(env.path(&out)).unwrap() == want,
                "{set}/{name} differs"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 16);
}

#[test]
fn original_tool_objects_under_their_old_wrapped_key_fail_cleanly() {
    let Some(env) = env() else { return };
    // The fixture's blob comes from another emulator: its KMS key does not
    // exist here, which KMS reports as access denied.
    let object = fs::read(fixtures().join("seed-v1/set-a/obj-17.object")).unwrap();
    env.put_raw("foreign", object);
    let out = env.run(&["decrypt", &env.uri("foreign"), "out"]);
    assert_status(&out, 3, &["decrypt foreign"]);
    let err = stderr(&out);
    assert!(err.contains("KMS refused to unwrap the data key"), "{err}");
    assert!(!env.path("out").exists());
}
