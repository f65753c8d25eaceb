//! `--manifest` and `--shard`: N worker processes over one manifest cover
//! every object exactly once, and a killed worker's shard, run again,
//! finishes without redoing what was done.
//!
//! "Exactly once" is checked object by object with a versioned bucket:
//! every rewrite makes a version, so each object must end with exactly two
//! (the original and one rewrap) and its current one under the target key.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use atrest_transfer::manifest::Shard;
use futures::StreamExt;

use crate::harness::*;

const OBJECTS: usize = 10_000;
const WORKERS: u64 = 4;

fn key(i: usize) -> String {
    match i % 1000 {
        // Keys that only survive URL-decoding the manifest.
        17 => format!("m/with space/obj+{i:05}"),
        _ => format!("m/obj-{i:05}"),
    }
}

fn encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn json(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(stdout)))
}

fn worker(env: &Env, manifest: &str, shard: u64, to_key: &str) -> Child {
    env.atrest()
        .args([
            "rewrap",
            "-r",
            &env.uri("m/"),
            "--to-key",
            to_key,
            "--manifest",
            manifest,
            "--shard",
            &format!("{shard}/{WORKERS}"),
            "--jobs",
            "8",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The object's current `atrest-kms-key-arn` metadata.
async fn key_arn(env: &Env, key: &str) -> Option<String> {
    let head = env
        .s3
        .head_object()
        .bucket(&env.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    head.metadata()
        .and_then(|m| m.get(atrest_transfer::KMS_KEY_METADATA))
        .cloned()
}

#[test]
fn four_workers_over_a_10000_object_manifest_one_killed_and_run_again() {
    let Some(env) = env() else { return };
    env.enable_versioning();
    // One small atrest object, stored under 10,000 keys (the header does
    // not name its key, so each copy is a valid object).
    std::fs::write(env.path("seed.txt"), b"sharded\n").unwrap();
    env.ok(&[
        "encrypt",
        "--key",
        &env.key_id,
        "seed.txt",
        &env.uri("seed"),
    ]);
    let object = env.get_raw("seed");
    block_on(
        futures::stream::iter(0..OBJECTS)
            .map(|i| {
                let (env, object) = (&env, object.clone());
                async move {
                    env.s3
                        .put_object()
                        .bucket(&env.bucket)
                        .key(key(i))
                        .body(object.into())
                        .send()
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>(),
    );
    // A Batch Operations CSV manifest, locally and in S3; one row twice and
    // one of another bucket, which no worker takes.
    let mut csv: String = (0..OBJECTS)
        .map(|i| format!("{},{}\n", env.bucket, encode(&key(i))))
        .collect();
    csv.push_str(&format!("{},{}\n", env.bucket, encode(&key(5))));
    csv.push_str("another-bucket,m%2Fobj-00001\n");
    std::fs::write(env.path("manifest.csv"), &csv).unwrap();
    env.put_raw("manifests/all.csv", csv.into_bytes());
    let (_, to_arn) = {
        let k = block_on(env.kms.create_key().send()).unwrap();
        let m = k.key_metadata().unwrap();
        (m.key_id().to_owned(), m.arn().unwrap().to_owned())
    };

    // Worker 0's shard, in the order it works (sorted by key).
    let mut shard0: Vec<String> = (0..OBJECTS)
        .map(key)
        .filter(|k| Shard::new(0, WORKERS).unwrap().contains(&env.bucket, k))
        .collect();
    shard0.sort();

    let s3_manifest = env.uri("manifests/all.csv");
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|i| {
            let manifest = match i {
                3 => s3_manifest.as_str(),
                _ => "manifest.csv",
            };
            worker(&env, manifest, i, &to_arn)
        })
        .collect();
    // Kill worker 0 once it is under way: its 100th object is done.
    let started = Instant::now();
    let marker = &shard0[100];
    while block_on(key_arn(&env, marker)).as_deref() != Some(to_arn.as_str()) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "worker 0 never got going"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    workers[0].kill().unwrap();
    let killed = workers.remove(0).wait_with_output().unwrap();
    assert!(!killed.status.success());

    let mut rewrapped = 0;
    for (i, w) in workers.into_iter().enumerate() {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "worker {}: {}", i + 1, stderr(&out));
        let report = json(&out.stdout);
        assert_eq!(report["failed"], 0, "{report}");
        assert_eq!(
            report["skipped"],
            0,
            "worker {} redid nothing: {report}",
            i + 1
        );
        rewrapped += report["rewrapped"].as_u64().unwrap();
    }
    // Worker 0 again: it finishes its shard and skips what it had done.
    let again = env.run(&[
        "rewrap",
        "-r",
        &env.uri("m/"),
        "--to-key",
        &to_arn,
        "--manifest",
        "manifest.csv",
        "--shard",
        "0/4",
        "--json",
    ]);
    assert_status(&again, 0, &["rewrap (worker 0 again)"]);
    let report = json(&again.stdout);
    let skipped = report["skipped"].as_u64().unwrap();
    let finished = report["rewrapped"].as_u64().unwrap();
    // What the killed run had done is skipped, the marker with it (the
    // run goes many at a time, so "the 101st done" does not say exactly
    // how many others were).
    let marker_uri = env.uri(marker);
    let status = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == marker_uri.as_str())
        .map(|o| o["status"].clone());
    assert_eq!(status, Some("skipped".into()), "{marker}");
    assert!(skipped >= 50, "the killed run had done ~100: {report}");
    assert!(finished > 0, "the killed run was killed mid-way: {report}");
    assert_eq!(skipped + finished, shard0.len() as u64);
    assert_eq!(rewrapped + skipped + finished, OBJECTS as u64);

    // Object by object: two versions each (one rewrite), the current one
    // under the target key.
    let mut versions = std::collections::HashMap::<String, usize>::new();
    // ListObjectVersions has no paginator: follow its markers.
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = block_on(
            env.s3
                .list_object_versions()
                .bucket(&env.bucket)
                .prefix("m/")
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send(),
        )
        .unwrap();
        for v in page.versions() {
            *versions.entry(v.key().unwrap().to_owned()).or_default() += 1;
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    assert_eq!(versions.len(), OBJECTS);
    for i in 0..OBJECTS {
        assert_eq!(versions[&key(i)], 2, "{}", key(i));
    }
    block_on(
        futures::stream::iter(0..OBJECTS)
            .map(|i| {
                let (env, to_arn) = (&env, &to_arn);
                async move {
                    assert_eq!(
                        key_arn(env, &key(i)).await.as_deref(),
                        Some(to_arn.as_str())
                    );
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>(),
    );
}

/// The keys `--shard I/N` keeps, by the library's hash.
fn in_shard(env: &Env, keys: &[String], i: u64, n: u64) -> Vec<String> {
    let shard: Shard = format!("{i}/{n}").parse().unwrap();
    let mut keys: Vec<String> = keys
        .iter()
        .filter(|k| shard.contains(&env.bucket, k))
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn reported(report: &serde_json::Value, status: &str) -> Vec<String> {
    let mut keys: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == status)
        // s3://bucket/key -> key
        .map(|o| {
            o["object"]
                .as_str()
                .unwrap()
                .splitn(4, '/')
                .nth(3)
                .unwrap()
                .to_owned()
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn verify_and_upgrade_take_a_manifest_and_a_shard() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("seed.txt"), b"a v1 object\n").unwrap();
    env.ok(&["encrypt", "seed.txt", &env.uri("seed"), "--format", "v1"]);
    let object = env.get_raw("seed");
    let all: Vec<String> = (0..40).map(|i| format!("u/obj-{i:02}")).collect();
    for key in &all {
        block_on(
            env.s3
                .put_object()
                .bucket(&env.bucket)
                .key(key)
                .body(object.clone().into())
                .send(),
        )
        .unwrap();
    }
    // The manifest names 30 of the 40, and one object outside u/.
    let listed = &all[..30];
    let csv: String = listed
        .iter()
        .chain([&"seed".to_owned()])
        .map(|k| format!("{},{}\n", env.bucket, encode(k)))
        .collect();
    std::fs::write(env.path("manifest.csv"), csv).unwrap();

    for (i, shard) in ["0/2", "1/2"].into_iter().enumerate() {
        let out = env.ok(&[
            "verify",
            "-r",
            &env.uri("u/"),
            "--manifest",
            "manifest.csv",
            "--shard",
            shard,
            "--json",
        ]);
        let mine = in_shard(&env, listed, i as u64, 2);
        assert_eq!(reported(&json(&out.stdout), "verified"), mine);
        // What it left to the other shard and outside the prefix, counted.
        let err = stderr(&out);
        let counts = format!(
            "shard {shard}: {} objects ({} manifest rows in other shards)",
            mine.len(),
            30 - mine.len()
        );
        assert!(err.contains(&counts), "{err}");
        let outside = format!("skipped 1 manifest row outside {}", env.uri("u/"));
        assert!(err.contains(&outside), "{err}");
    }

    let upgraded = json(
        &env.ok(&[
            "upgrade",
            "-r",
            &env.uri("u/"),
            "--manifest",
            "manifest.csv",
            "--shard",
            "1/2",
            "--json",
        ])
        .stdout,
    );
    let shard1 = in_shard(&env, listed, 1, 2);
    assert!(!shard1.is_empty());
    assert_eq!(reported(&upgraded, "upgraded"), shard1);
    // Exactly those are v2 now; the rest (shard 0, and the 10 the manifest
    // leaves out) are still v1.
    for key in &all {
        let version = crate::rewrap::header(&env.get_raw(key)).version();
        assert_eq!(version == 2, shard1.contains(key), "{key}");
    }
}

/// `encrypt -r --shard I/N` splits the files of a directory by their
/// destination key: three workers upload every file exactly once, each
/// saying how many it took (it said nothing); `--manifest` (S3 objects) is
/// refused, naming where it works.
#[test]
fn encrypt_r_shards_split_the_files_of_a_directory() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}")).collect();
    for name in &names {
        crate::bulk::write(&env.path("dir"), name, name.as_bytes());
    }
    let mut uploaded = Vec::new();
    for i in 0..3u64 {
        let shard = format!("{i}/3");
        let args = ["encrypt", "-r", "dir", &env.uri("e/"), "--shard", &shard];
        let out = env.ok(&args);
        let mine: Vec<_> = names
            .iter()
            .filter(|n| Shard::of(&env.bucket, &format!("e/{n}"), 3) == i)
            .collect();
        // (The bucket's name is random: a shard may take one file.)
        let files = |n: usize| format!("{n} file{}", if n == 1 { "" } else { "s" });
        let counted = format!(
            "shard {shard}: {} ({} in other shards)",
            files(mine.len()),
            files(20 - mine.len())
        );
        assert!(stderr(&out).contains(&counted), "{}", stderr(&out));
        let now = crate::bulk::keys(&env, "e/");
        assert_eq!(now.len(), uploaded.len() + mine.len(), "{now:?}");
        uploaded = now;
    }
    let all: Vec<String> = names.iter().map(|n| format!("e/{n}")).collect();
    assert_eq!(uploaded, all);

    std::fs::write(env.path("m.csv"), format!("{},e/f00\n", env.bucket)).unwrap();
    let args = [
        "encrypt",
        "-r",
        "dir",
        &env.uri("x/"),
        "--manifest",
        "m.csv",
    ];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(
        stderr(&out).contains("verify -r, upgrade -r"),
        "{}",
        stderr(&out)
    );
}

/// A manifest row whose object was deleted since the manifest was written
/// (an inventory is up to a day old) failed every run over it (exit 1, or
/// 4 for verify), so a shard could never finish: it is skipped with a
/// warning, as `ls` says it, and the rest is done.
#[test]
fn objects_deleted_since_the_manifest_are_skipped_aloud() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"kept").unwrap();
    env.ok(&["cp", "f", &env.uri("m/here"), "--key", &env.key_id]);
    let rows = format!("{0},m/here\n{0},m/deleted\n", env.bucket);
    std::fs::write(env.path("rows.csv"), rows).unwrap();
    let prefix = env.uri("m/");
    let to_key = ["--to-key", &env.key_id];
    for args in [
        vec!["verify", "-r", &prefix],
        [&["rewrap", "-r", &prefix][..], &to_key[..]].concat(),
        vec!["upgrade", "-r", &prefix],
        vec!["decrypt", "-r", &prefix, "down"],
    ] {
        let args = [&args[..], &["--manifest", "rows.csv"]].concat();
        let out = env.ok(&args);
        let err = stderr(&out);
        assert!(
            err.contains("warning: skipped")
                && err.contains("deleted")
                && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(env.path("down/here")).unwrap(), b"kept");
}
