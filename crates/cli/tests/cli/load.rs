//! Many concurrent processes against one endpoint: 60 encrypt/decrypt
//! round trips at once, under 6 data keys, with contents of varied sizes
//! (two of them multipart). Every round trip must be exact, and no
//! multipart upload may be left behind.

use std::process::{Child, Stdio};

use crate::harness::*;

const JOBS: usize = 60;
const DATA_KEYS: usize = 6;

/// Plaintext size of job `i`: the padding and framing edges, some larger
/// objects, and two multipart uploads (with 5 MiB parts).
fn size(i: usize) -> usize {
    const SIZES: &[usize] = &[
        0, 1, 15, 16, 17, 31, 32, 33, 4095, 4096, 4097, 65_535, 65_536, 65_537, 100_000, 300_001,
    ];
    match i {
        7 => 5 * 1024 * 1024 + 1,
        23 => 6 * 1024 * 1024 + 12_345,
        _ => SIZES[i % SIZES.len()] + i,
    }
}

fn spawn(env: &Env, args: &[String]) -> Child {
    env.atrest()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for every child and asserts each succeeded.
fn wait_all(children: Vec<(Vec<String>, Child)>) {
    for (args, child) in children {
        let out = child.wait_with_output().unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_status(&out, 0, &args);
    }
}

#[test]
fn sixty_concurrent_round_trips_are_exact() {
    let Some(env) = env() else { return };
    // Distinct data keys, made concurrently too.
    let children = (0..DATA_KEYS)
        .map(|k| {
            let args = vec![
                "create-data-key".to_owned(),
                env.key_id.clone(),
                "--data-key".to_owned(),
                format!("key{k}.bin"),
            ];
            let child = spawn(&env, &args);
            (args, child)
        })
        .collect();
    wait_all(children);
    let keys: Vec<Vec<u8>> = (0..DATA_KEYS)
        .map(|k| std::fs::read(env.path(&format!("key{k}.bin"))).unwrap())
        .collect();
    for (i, a) in keys.iter().enumerate() {
        assert!(keys[i + 1..].iter().all(|b| a != b), "data keys repeat");
    }

    let inputs: Vec<Vec<u8>> = (0..JOBS)
        .map(|i| sample(size(i), 1000 + i as u64))
        .collect();
    for (i, data) in inputs.iter().enumerate() {
        std::fs::write(env.path(&format!("in{i}")), data).unwrap();
    }

    // All encryptions at once.
    let children = (0..JOBS)
        .map(|i| {
            let args = vec![
                "encrypt-with-kms".to_owned(),
                format!("in{i}"),
                env.uri(&format!("load/{i}")),
                "--data-key".to_owned(),
                format!("key{}.bin", i % DATA_KEYS),
                "--part-size".to_owned(),
                "5".to_owned(),
            ];
            let child = spawn(&env, &args);
            (args, child)
        })
        .collect();
    wait_all(children);

    // Each object went up whole, under the data key it was given (v1
    // objects carry data.key's wrapped key in their header).
    for i in 0..JOBS {
        let stored = env.get_raw(&format!("load/{i}"));
        if stored[0] == 1 {
            let wrapped = &keys[i % DATA_KEYS];
            assert_eq!(&stored[8..8 + wrapped.len()], &wrapped[..], "object {i}");
            assert_eq!(
                stored.len(),
                16 + wrapped.len() + (size(i) / 16 + 1) * 16,
                "object {i}: size"
            );
        }
    }

    // All decryptions at once.
    let children = (0..JOBS)
        .map(|i| {
            let args = vec![
                "decrypt-with-kms".to_owned(),
                env.uri(&format!("load/{i}")),
                format!("out{i}"),
            ];
            let child = spawn(&env, &args);
            (args, child)
        })
        .collect();
    wait_all(children);

    for (i, data) in inputs.iter().enumerate() {
        let back = std::fs::read(env.path(&format!("out{i}"))).unwrap();
        assert!(
            back == *data,
            "job {i}: round trip differs ({} bytes back, {} sent)",
            back.len(),
            data.len()
        );
    }
    let uploads = block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send()).unwrap();
    assert!(uploads.uploads().is_empty(), "orphaned multipart uploads");
    assert!(
        !env.files().iter().any(|f| f.ends_with(".partial")),
        "temporary files left: {:?}",
        env.files()
    );
}
