//! `--recursive`: directories to prefixes and back, concurrently, with
//! filters, a summary, and failures that do not stop the other files.

use std::path::Path;

use crate::harness::*;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Every key in the bucket under `prefix`, sorted.
fn keys(env: &Env, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = block_on(async {
        let mut pages = env
            .s3
            .list_objects_v2()
            .bucket(&env.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            for o in page.unwrap().contents() {
                keys.push(o.key().unwrap().to_owned());
            }
        }
        keys
    });
    keys.sort();
    keys
}

#[test]
fn nested_directories_round_trip_with_filters_and_json_summary() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    let files = [
        ("a.txt", sample(10, 1)),
        ("empty", Vec::new()),
        ("sub/b.bin", sample(70_000, 2)),
        ("sub/deep/c d.dat", sample(1000, 3)),
    ];
    for (rel, data) in &files {
        write(&src, rel, data);
    }
    write(&src, "sub/skip.log", b"not me");
    let out = env.ok(&[
        "encrypt",
        "src",
        &env.uri("tree"),
        "--recursive",
        "--key",
        &env.key_id,
        "--exclude",
        "*.log",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bytes: usize = files.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(summary["files"], 4, "{summary}");
    assert_eq!(summary["bytes"], bytes, "{summary}");
    assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
    assert_eq!(
        keys(&env, "tree/"),
        [
            "tree/a.txt",
            "tree/empty",
            "tree/sub/b.bin",
            "tree/sub/deep/c d.dat"
        ]
    );

    // Back into a new directory; the trailing slash is optional.
    let out = env.ok(&["decrypt", &env.uri("tree/"), "back", "--recursive"]);
    assert!(
        stderr(&out).contains("decrypted 4 files"),
        "{}",
        stderr(&out)
    );
    for (rel, data) in &files {
        let got = std::fs::read(env.path("back").join(rel)).unwrap();
        assert!(&got == data, "{rel} differs");
    }
    assert!(!env.path("back/sub/skip.log").exists());

    // --include keeps only matches.
    env.ok(&[
        "decrypt",
        &env.uri("tree"),
        "only",
        "-r",
        "--include",
        "sub/**",
    ]);
    assert!(env.path("only/sub/b.bin").exists());
    assert!(!env.path("only/a.txt").exists());
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let src = env.path("src");
    for i in 0..5 {
        write(&src, &format!("good{i}"), &sample(100, i));
    }
    // Tests run as root, where mode 000 does not stop reading: a dangling
    // symbolic link cannot be opened by anyone.
    std::os::unix::fs::symlink("/nonexistent/atrest", src.join("broken")).unwrap();
    let out = env.run(&[
        "encrypt",
        "src",
        &env.uri("p/"),
        "--recursive",
        "--jobs",
        "2",
    ]);
    assert_status(&out, 1, &["encrypt --recursive with a broken link"]);
    let err = stderr(&out);
    assert!(err.contains("failed: broken: cannot open"), "{err}");
    assert!(
        err.contains("encrypted 5 files (500 bytes), 1 failed"),
        "{err}"
    );
    assert!(err.contains("1 of 6 files failed"), "{err}");
    assert_eq!(keys(&env, "p/").len(), 5);

    // Decrypting: an object that is not atrest's, and a key that would
    // escape the directory, fail alone.
    env.put_raw("p/not-atrest", b"plain text".to_vec());
    env.put_raw("p/x/../../escape", b"whatever".to_vec());
    let out = env.run(&["decrypt", &env.uri("p"), "out", "--recursive"]);
    assert_status(&out, 1, &["decrypt --recursive with bad objects"]);
    let err = stderr(&out);
    assert!(err.contains("failed: not-atrest: cannot decrypt"), "{err}");
    assert!(err.contains("failed: x/../../escape: "), "{err}");
    assert!(err.contains("decrypted 5 files"), "{err}");
    for i in 0..5 {
        assert_eq!(
            std::fs::read(env.path("out").join(format!("good{i}"))).unwrap(),
            sample(100, i)
        );
    }
    assert!(!env.dir.path().join("escape").exists());
    assert!(!env.dir.path().parent().unwrap().join("escape").exists());
}

#[test]
fn more_than_one_page_of_objects() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let src = env.path("src");
    let count = 1001; // ListObjectsV2 returns at most 1000 keys a page.
    for i in 0..count {
        write(&src, &format!("d{}/f{i}", i % 7), format!("{i}").as_bytes());
    }
    let out = env.ok(&["encrypt", "src", &env.uri("many"), "-r", "--jobs", "16"]);
    assert!(
        stderr(&out).contains(&format!("encrypted {count} files")),
        "{}",
        stderr(&out)
    );
    assert_eq!(keys(&env, "many/").len(), count);
    let out = env.ok(&["decrypt", &env.uri("many"), "back", "-r", "--jobs", "16"]);
    assert!(
        stderr(&out).contains(&format!("decrypted {count} files")),
        "{}",
        stderr(&out)
    );
    for i in [0, 999, 1000] {
        let got = std::fs::read(env.path(&format!("back/d{}/f{i}", i % 7))).unwrap();
        assert_eq!(got, format!("{i}").as_bytes());
    }
}

/// The summary's KMS call count, from `--json`.
fn kms_calls(out: &std::process::Output) -> u64 {
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    summary["kms_calls"].as_u64().unwrap()
}

#[test]
fn data_keys_are_reused_within_the_cache_limits() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    for i in 0..10 {
        write(&src, &format!("f{i}"), &sample(50 + i as usize, i));
    }
    let encrypt = |prefix: &str, extra: &[&str]| {
        let uri = env.uri(prefix);
        let mut args = vec!["encrypt", "src", &uri, "-r", "--json", "--key", &env.key_id];
        args.extend_from_slice(extra);
        kms_calls(&env.ok(&args))
    };
    let decrypt = |prefix: &str, dir: &str, extra: &[&str]| {
        let uri = env.uri(prefix);
        let mut args = vec!["decrypt", &uri, dir, "-r", "--json"];
        args.extend_from_slice(extra);
        let calls = kms_calls(&env.ok(&args));
        for i in 0..10 {
            let got = std::fs::read(env.path(dir).join(format!("f{i}"))).unwrap();
            assert!(got == sample(50 + i as usize, i), "{dir}/f{i} differs");
        }
        calls
    };

    // Default limits: one data key for all ten objects, one unwrap for all.
    assert_eq!(encrypt("one", &[]), 1);
    assert_eq!(decrypt("one", "one", &[]), 1);
    // At most four objects per key: keys for 4 + 4 + 2 objects.
    assert_eq!(
        encrypt("four", &["--key-cache-max-objects", "4", "--jobs", "1"]),
        3
    );
    assert_eq!(decrypt("four", "four", &[]), 3);
    // No reuse: a key per object, an unwrap per object.
    assert_eq!(encrypt("each", &["--key-cache-max-objects", "1"]), 10);
    assert_eq!(
        decrypt("each", "each", &["--key-cache-max-objects", "1"]),
        10
    );
    // A zero age limit also means no reuse.
    assert_eq!(encrypt("aged", &["--key-cache-max-age", "0"]), 10);

    // The shared data.key is unwrapped once per run, not once per file.
    env.create_data_key();
    let uri = env.uri("shared");
    let out = env.ok(&["encrypt", "src", &uri, "-r", "--json"]);
    assert_eq!(kms_calls(&out), 1);
    assert_eq!(decrypt("shared", "shared", &[]), 1);

    // The limits belong to --recursive.
    let out = env.run(&[
        "encrypt",
        "src/f0",
        &env.uri("x"),
        "--key-cache-max-objects",
        "5",
    ]);
    assert_status(&out, 2, &["--key-cache-max-objects without --recursive"]);
    assert!(stderr(&out).contains("--recursive"), "{}", stderr(&out));
}
