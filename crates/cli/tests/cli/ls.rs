//! `atrest ls`: every kind of object under a prefix, described from its
//! header alone, and many of them quickly.

use crate::harness::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn ls_describes_every_kind_of_object_without_kms() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), sample(200_000, 5)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("d/v1"), "--format", "v1"]);
    env.ok(&[
        "encrypt",
        "in",
        &env.uri("d/v2-shared"),
        "--frame-size",
        "16K",
    ]);
    env.ok(&[
        "encrypt",
        "in",
        &env.uri("d/v2-own"),
        "--key",
        &env.key_id,
        "--context",
        "app=ledger",
    ]);
    // The S3 Encryption Client's V3, its envelope in its metadata.
    env.ok(&[
        "encrypt",
        "in",
        &env.uri("d/s3ec-v3"),
        "--format",
        "s3ec-v3",
        "--key",
        &env.key_id,
        "--context",
        "app=ledger",
    ]);
    // A key-file object: ls says it needs --key-file.
    env.ok(&["keygen", "k.key"]);
    env.ok(&["encrypt", "in", &env.uri("d/kf"), "--key-file", "k.key"]);
    env.put_raw("d/plain.txt", b"hello".to_vec());
    env.put_raw("d/empty", Vec::new());
    env.put_raw("d/sub/deeper", b"x".to_vec());
    block_on(
        env.s3
            .put_object()
            .bucket(&env.bucket)
            .key("d/s3ec")
            .body(vec![0u8; 48].into())
            .metadata("x-amz-key-v2", "AAAA")
            .metadata("x-amz-iv", "AAAA")
            .send(),
    )
    .unwrap();

    // KMS unreachable: ls must not need it.
    let out = env
        .atrest()
        .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1")
        .args(["ls", &env.uri("d/"), "--json"])
        .output()
        .unwrap();
    assert_status(&out, 0, &["ls --json"]);
    let doc = json(&out);
    assert_eq!(doc["prefixes"], serde_json::json!(["d/sub/"]));
    let objects = doc["objects"].as_array().unwrap();
    let by_key = |k: &str| {
        objects
            .iter()
            .find(|o| o["key"] == k)
            .unwrap_or_else(|| panic!("{k}: {doc}"))
    };
    let v1 = by_key("d/v1");
    assert_eq!(v1["format"], "v1");
    assert_eq!(
        (
            v1["plaintext_len_min"].as_u64(),
            v1["plaintext_len_max"].as_u64()
        ),
        (Some(200_000), Some(200_015))
    );
    assert_eq!(v1["shared_data_key"], true);
    let shared = by_key("d/v2-shared");
    assert_eq!(
        (shared["format"].as_str(), shared["plaintext_len"].as_u64()),
        (Some("v2"), Some(200_000))
    );
    assert_eq!(
        (
            shared["frame_size"].as_u64(),
            shared["shared_data_key"].as_bool()
        ),
        (Some(16384), Some(true))
    );
    let own = by_key("d/v2-own");
    assert_eq!(
        (
            own["shared_data_key"].as_bool(),
            own["context"]["app"].as_str()
        ),
        (Some(false), Some("ledger"))
    );
    assert!(
        own["last_modified"].as_str().unwrap().starts_with("20"),
        "{own}"
    );
    assert_eq!(by_key("d/s3ec")["format"], "s3ec");
    // Its envelope is damaged (no content algorithm, a 3-byte key): ls says
    // why, as for any object it cannot read (it said nothing).
    assert!(by_key("d/s3ec")["reason"].is_string(), "{doc}");
    assert!(by_key("d/s3ec-v3").get("reason").is_none(), "{doc}");
    assert_eq!(
        (&by_key("d/kf")["keyring"], &own["keyring"]),
        (&"key-file".into(), &"kms".into())
    );
    let v3 = by_key("d/s3ec-v3");
    assert_eq!(
        (v3["format"].as_str(), v3["plaintext_len"].as_u64()),
        (Some("s3ec"), Some(200_000))
    );
    assert_eq!(v3["context"], serde_json::json!({"app": "ledger"}));
    assert_eq!(v3["wrap"], "kms+context");
    assert_eq!(by_key("d/plain.txt")["format"], "not atrest");
    assert_eq!(by_key("d/empty")["format"], "not atrest");
    // Its time is the listing's (it had none: S3 refuses an empty range).
    assert!(by_key("d/empty")["last_modified"].is_string(), "{doc}");
    assert_eq!(objects.len(), 8, "{doc}");

    // Text, recursive: one line each, the deeper object included.
    let out = env.ok(&["ls", &env.uri("d/"), "--recursive"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 9, "{text}");
    let line = text.lines().find(|l| l.contains("d/s3ec  ")).unwrap();
    assert!(line.contains("  (damaged: "), "{line}");
    let line = text.lines().find(|l| l.ends_with("d/kf")).unwrap();
    assert!(line.contains(" key-file "), "{line}");
    let line = text.lines().find(|l| l.ends_with("d/s3ec-v3")).unwrap();
    assert!(
        line.contains(" s3ec ") && line.contains(" 200000 ") && line.contains("app=ledger"),
        "{line}"
    );
    let line = text.lines().find(|l| l.ends_with("d/v2-own")).unwrap();
    assert!(
        line.contains(" v2 ")
            && line.contains("200000")
            && line.contains("per-object")
            && line.contains("app=ledger"),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("d/plain.txt  (not an atrest object")),
        "{text}"
    );

    // --summarize counts every object and its stored bytes, as `aws s3 ls`;
    // --human-readable prints sizes as it does (v1: about, from below).
    let out = env.ok(&["ls", &env.uri("d/"), "-r", "--json", "--summarize"]);
    let doc = json(&out);
    let stored: u64 = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object_len"].as_u64().unwrap())
        .sum();
    assert!(stored > 3 * 200_000, "{doc}");
    assert_eq!(
        doc["summary"],
        serde_json::json!({"objects": 9, "bytes": stored})
    );
    let out = env.ok(&["ls", &env.uri("d/"), "-r", "--summarize"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.ends_with(&format!("\n\nTotal Objects: 9\n   Total Size: {stored}\n")),
        "{text}"
    );
    let out = env.ok(&["ls", &env.uri("d/"), "-r", "--human-readable"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |key: &str| text.lines().find(|l| l.ends_with(key)).unwrap().to_owned();
    assert!(line("d/v2-own").contains(" 195.3 KiB "), "{text}");
    assert!(line("d/v1").contains(" ~195.3 KiB "), "{text}");
}

#[test]
fn ls_lists_a_thousand_objects_in_a_few_seconds() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"small").unwrap();
    env.ok(&["encrypt", "in", &env.uri("one"), "--key", &env.key_id]);
    let object = env.get_raw("one");
    block_on(async {
        let puts = (0..1000).map(|i| {
            env.s3
                .put_object()
                .bucket(&env.bucket)
                .key(format!("many/{i:04}"))
                .body(object.clone().into())
                .send()
        });
        for chunk in futures::future::join_all(puts).await {
            chunk.unwrap();
        }
    });
    let started = std::time::Instant::now();
    let out = env.ok(&["ls", &env.uri("many/"), "--json"]);
    let took = started.elapsed();
    let doc = json(&out);
    assert_eq!(doc["objects"].as_array().unwrap().len(), 1000);
    assert!(doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["format"] == "v2"));
    eprintln!("ls of 1000 objects: {took:?}");
    assert!(took.as_secs() < 20, "ls of 1000 objects took {took:?}");
}

/// Runs the binary with stdout's reading end (and `stderr`'s too) closed
/// before anything is written.
fn with_closed(env: &Env, args: &[&str], stderr: bool) -> std::process::Output {
    let mut child = env
        .atrest()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    if stderr {
        drop(child.stderr.take());
    }
    child.wait_with_output().unwrap()
}

/// `atrest ls ... | head -1` closes the pipe before the listing is
/// printed: before, println! panicked ("failed printing to stdout", exit
/// 101 and a backtrace). Now the rest is dropped and the exit is 0, for a
/// listing as for a report of transfers (which all still happen); a full
/// disk is one error line and exit 1.
#[test]
fn a_closed_stdout_ends_the_report_quietly() {
    let Some(env) = env() else { return };
    env.create_data_key();
    for i in 0..3 {
        env.put_raw(&format!("dir/{i}"), vec![b'x'; 10]);
    }
    let closed = |args: &[&str]| with_closed(&env, args, false);
    let prefix = env.uri("dir/");
    for args in [&["ls", "-r", &prefix][..], &["ls", "-r", &prefix, "--json"]] {
        let out = closed(args);
        assert_status(&out, 0, args);
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    crate::bulk::write(&env.path("up"), "a", b"a");
    let out = closed(&["cp", "-r", "up", &env.uri("up/")]);
    assert_status(&out, 0, &["cp -r with stdout closed"]);
    assert_eq!(crate::bulk::keys(&env, "up/"), ["up/a"]);
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = env
        .atrest()
        .args(["ls", "-r", &prefix])
        .stdout(full)
        .output()
        .unwrap();
    assert_status(&out, 1, &["ls > /dev/full"]);
    assert!(
        stderr(&out).contains("cannot write to stdout"),
        "{}",
        stderr(&out)
    );
}

/// `atrest ... 2>&1 | head -1` closes stderr too: before, eprintln!
/// panicked on the first warning or error after it (exit 101, whatever
/// the run did). Now what cannot be said is dropped, and the exit status
/// is the run's own.
#[test]
fn a_closed_stderr_leaves_the_exit_status_the_runs() {
    let Some(env) = env() else { return };
    crate::bulk::write(&env.path("up"), "a", b"a");
    crate::bulk::write(&env.path("up"), "b", b"b");
    let closed = |args: &[&str]| with_closed(&env, args, true).status.code();
    let args = ["cp", "-r", "up", &env.uri("up/"), "--key", &env.key_id];
    assert_eq!(closed(&args), Some(0), "a summary on stderr");
    assert_eq!(crate::bulk::keys(&env, "up/"), ["up/a", "up/b"]);
    let args = ["cp", "missing", &env.uri("x"), "--key", &env.key_id];
    assert_eq!(closed(&args), Some(3), "an error on stderr");
    let args = ["cp", "a", "b"];
    assert_eq!(closed(&args), Some(2), "a usage error on stderr");
}

/// A Batch Operations manifest gives no sizes: before, `ls --manifest`
/// took each object for empty ("not an atrest object: it is empty")
/// without reading it. Now every object's header is read, and a key the
/// manifest names that does not exist says so (the rest still listed).
#[test]
fn ls_of_a_manifest_reads_each_object_and_names_missing_ones() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"twelve bytes").unwrap();
    env.ok(&["encrypt", "in", &env.uri("m/a")]);
    env.put_raw("m/empty", Vec::new());
    // A version id is not used: the warning says the current version is.
    let csv = format!("{0},m/a,v0\n{0},m/empty\n{0},m/gone\n", env.bucket);
    std::fs::write(env.path("manifest.csv"), csv).unwrap();
    let args = [
        "ls",
        "-r",
        &env.uri("m/"),
        "--manifest",
        "manifest.csv",
        "--json",
        "--summarize",
    ];
    let out = env.ok(&args);
    let said = stderr(&out);
    assert!(
        said.contains("warning: 1 object the manifest names does not exist"),
        "{said}"
    );
    assert!(
        said.contains("warning: 1 manifest row names a version id: atrest reads and writes the current version"),
        "{said}"
    );
    let doc = json(&out);
    // A missing object is no object (before: "not atrest", and counted).
    assert_eq!(doc["summary"]["objects"], 2, "{doc}");
    let objects = doc["objects"].as_array().unwrap();
    let field = |i: usize, name: &str| objects[i][name].clone();
    assert_eq!(
        (field(0, "key"), field(0, "format")),
        ("m/a".into(), "v2".into())
    );
    assert_eq!(field(0, "plaintext_len"), 12);
    assert_eq!(field(1, "reason"), "it is empty");
    assert_eq!(field(2, "reason"), "it does not exist");
    assert_eq!(field(2, "format"), "missing");
}

/// An S3 Inventory report in S3, through its manifest.json: its CSV files
/// (gzip'd or not) are read by its fileSchema, old versions and delete
/// markers left out; a data file that is not the one manifest.json
/// describes (replaced, cut short) is refused rather than read as other
/// objects.
#[test]
fn an_inventory_report_selects_current_objects_and_a_replaced_file_is_refused() {
    use std::io::Write;
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"twelve bytes").unwrap();
    env.ok(&["encrypt", "in", &env.uri("m/a")]);
    env.ok(&["encrypt", "in", &env.uri("m/b c")]);
    let b = &env.bucket;
    let gzipped = {
        let rows = format!(
            "\"{b}\",\"m/a\",\"true\",\"false\",\"60\"\n\
             \"{b}\",\"m/a\",\"false\",\"false\",\"50\"\n\
             \"{b}\",\"m/deleted\",\"true\",\"true\",\"\"\n\
             \"{b}\",\"other/x\",\"true\",\"false\",\"1\"\n"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(rows.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    let plain = format!("\"{b}\",\"m/b%20c\",\"true\",\"false\",\"60\"\n").into_bytes();
    let md5 = |data: &[u8]| hex::encode(<md5::Md5 as md5::Digest>::digest(data));
    let manifest = serde_json::json!({
        "sourceBucket": b,
        "destinationBucket": format!("arn:aws:s3:::{b}"),
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, IsLatest, IsDeleteMarker, Size",
        "files": [
            {"key": "inv/data/1.csv.gz", "size": gzipped.len(), "MD5checksum": md5(&gzipped)},
            {"key": "inv/data/2.csv", "size": plain.len(), "MD5checksum": md5(&plain)},
        ],
    });
    env.put_raw("inv/data/1.csv.gz", gzipped);
    env.put_raw("inv/data/2.csv", plain.clone());
    env.put_raw("inv/manifest.json", manifest.to_string().into_bytes());
    let manifest_uri = env.uri("inv/manifest.json");
    let args = [
        "ls",
        "-r",
        &env.uri("m/"),
        "--manifest",
        &manifest_uri,
        "--json",
    ];
    let out = env.ok(&args);
    let keys: Vec<_> = json(&out)["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["m/a", "m/b c"]);
    let said = stderr(&out);
    assert!(said.contains("skipped 1 manifest row outside"), "{said}");

    // The same length, other rows: its MD5 tells.
    let mut replaced = plain;
    let at = replaced.len() - 4;
    replaced[at] = b'1';
    env.put_raw("inv/data/2.csv", replaced);
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    let said = stderr(&out);
    assert!(
        said.contains("data/2.csv is not the S3 Inventory data file its manifest.json describes")
            && said.contains("its manifest.json says"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
}

/// As `aws s3 ls`: a prefix with nothing under it fails (exit 1, one line),
/// so that `atrest ls s3://b/p && ...` asks whether anything is there; an
/// empty bucket, an empty shard and a deeper prefix do not.
#[test]
fn a_prefix_with_nothing_under_it_fails_as_aws_s3_ls_does() {
    let Some(env) = env() else { return };
    let bucket = env.uri("");
    env.ok(&["ls", &bucket]);
    env.ok(&["ls", &bucket, "--recursive", "--json"]);
    for args in [
        &["ls", &env.uri("nothing/")][..],
        &["ls", &env.uri("no"), "--json"],
    ] {
        let out = env.run(args);
        assert_status(&out, 1, args);
        assert_eq!(
            stderr(&out).trim_end(),
            format!("atrest: error: nothing under {}", args[1])
        );
    }
    env.put_raw("d/e/f", b"x".to_vec());
    let out = env.ok(&["ls", &env.uri("d")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PRE d/"));
    env.ok(&["ls", &env.uri("d/e/f")]);
    // Shards may rightly be empty: one object, eight shards.
    let empty = (0..8)
        .filter(|n| {
            let shard = format!("{n}/8");
            let out = env.ok(&["ls", "-r", &env.uri("d/"), "--shard", &shard, "-q"]);
            out.stdout.is_empty()
        })
        .count();
    assert_eq!(empty, 7);
}

/// `atrest ls` with no URI lists the buckets, as `aws s3 ls` does; the
/// object-selecting flags need a URI.
#[test]
fn ls_with_no_uri_lists_the_buckets() {
    let Some(env) = env() else { return };
    let text = String::from_utf8(env.ok(&["ls"]).stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!("  {}", env.bucket)))
        .unwrap_or_else(|| panic!("{} not listed:\n{text}", env.bucket));
    // Its creation time, as the object listing shows times.
    let when = line.split_whitespace().next().unwrap();
    assert!(when.starts_with("20") && when.ends_with('Z'), "{line}");
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "by name");
    let doc: serde_json::Value = serde_json::from_slice(&env.ok(&["ls", "--json"]).stdout).unwrap();
    let listed = doc["buckets"].as_array().unwrap();
    let ours = listed.iter().find(|b| b["name"] == env.bucket.as_str());
    assert_eq!(ours.unwrap()["created"].as_str(), Some(when), "{doc}");
    for args in [&["ls", "-r"][..], &["ls", "-r", "--shard", "0/2"]] {
        let out = env.run(args);
        assert_status(&out, 2, args);
        let err = stderr(&out);
        assert!(err.contains("give s3://BUCKET[/PREFIX]"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

/// Folder markers (the console's "Create folder": an empty `dir/`) are
/// listed as `aws s3 ls` lists them: a line of their own with
/// `--recursive`, `PRE dir/` one level up, and the marker itself when its
/// prefix is listed (before, hidden: a marked, empty folder was "nothing
/// under"). One level is one ListObjectsV2 request, however many objects
/// are below it (before, every key was listed to find the prefixes).
#[test]
fn folder_markers_list_as_aws_s3_ls_lists_them_and_one_level_is_one_request() {
    let Some(env) = env() else { return };
    env.put_raw("m/empty/", Vec::new());
    env.put_raw("m/x", b"x".to_vec());
    // S3 URL-encodes common prefixes as it does keys (EncodingType=url).
    env.put_raw("m/a b+c%/k", b"k".to_vec());
    block_on(async {
        let puts = (0..1200).map(|i| {
            env.s3
                .put_object()
                .bucket(&env.bucket)
                .key(format!("m/deep/{i:04}"))
                .body(b"y".to_vec().into())
                .send()
        });
        for put in futures::future::join_all(puts).await {
            put.unwrap();
        }
    });

    let proxy = crate::faults::Proxy::start(&env.endpoint);
    let out = crate::sync::via(&env, &proxy, &["ls", &env.uri("m/"), "--json"]);
    let doc = json(&out);
    assert_eq!(
        doc["prefixes"],
        serde_json::json!(["m/a b+c%/", "m/deep/", "m/empty/"])
    );
    let keys: Vec<&str> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["m/x"]);
    // One list request and one header read (m/x), not two list pages.
    assert_eq!(
        proxy.seen(crate::faults::Op::OtherS3),
        1,
        "{:?}",
        proxy.traffic()
    );

    // As `aws s3 ls` names them: below the listed level, whole keys only
    // with --recursive (and --json).
    let out = env.ok(&["ls", &env.uri("m/")]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"                      PRE deep/"), "{text}");
    assert!(
        lines.contains(&"                      PRE a b+c%/"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("  x  (not an atrest object")),
        "{text}"
    );
    assert!(!text.contains("m/"), "{text}");
    let out = env.ok(&["ls", &env.uri("m/x")]);
    assert!(String::from_utf8(out.stdout).unwrap().contains("  x  (not"));

    let out = env.ok(&["ls", &env.uri("m/empty/"), "--json"]);
    let doc = json(&out);
    let objects = doc["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{doc}");
    assert_eq!(
        (objects[0]["key"].as_str(), objects[0]["format"].as_str()),
        (Some("m/empty/"), Some("folder marker"))
    );

    let out = env.ok(&["ls", &env.uri("m/"), "-r"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1203, "{}", &text[..400]);
    assert!(
        text.lines()
            .any(|l| l.ends_with("  m/empty/  (folder marker)")),
        "{}",
        &text[..400]
    );
}

/// `--page-size N`, as the AWS CLI's: every listing asks for N keys a
/// page (the proxy counts the pages); the listing is the same.
#[test]
fn page_size_sets_the_keys_per_listing_request() {
    let Some(env) = env() else { return };
    for i in 0..25 {
        env.put_raw(&format!("p/{i:02}"), b"x".to_vec());
    }
    let pages = |extra: &[&str]| {
        let proxy = crate::faults::Proxy::start(&env.endpoint);
        let prefix = env.uri("p/");
        let args = [&["ls", "-r", &prefix, "--json"][..], extra].concat();
        let out = crate::sync::via(&env, &proxy, &args);
        assert_eq!(json(&out)["objects"].as_array().unwrap().len(), 25);
        proxy.seen(crate::faults::Op::OtherS3)
    };
    assert_eq!(pages(&[]), 1);
    assert_eq!(pages(&["--page-size", "10"]), 3);
    let args = ["ls", &env.uri("p/"), "--page-size", "0"];
    assert_status(&env.run(&args), 2, &args);
}

/// An empty manifest in S3 selects nothing, as an empty local one does:
/// before, its GET (`Range: bytes=0-`) got S3's 416 and the run failed.
/// A warning says it had no rows (a failed export upstream makes one; a
/// run over it said nothing, exit 0).
#[test]
fn an_empty_manifest_in_s3_selects_nothing() {
    let Some(env) = env() else { return };
    env.put_raw("empty.csv", Vec::new());
    let manifest = env.uri("empty.csv");
    let args = [
        "ls",
        "-r",
        &env.uri("m/"),
        "--manifest",
        &manifest,
        "--json",
    ];
    let out = env.ok(&args);
    assert_eq!(json(&out)["objects"], serde_json::json!([]));
    let warning = format!("warning: the manifest {manifest} names no object: nothing to do");
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
    std::fs::write(env.path("empty.csv"), "").unwrap();
    let args = ["verify", "-r", &env.uri("m/"), "--manifest", "empty.csv"];
    let out = env.ok(&args);
    assert!(stderr(&out).contains("names no object"), "{}", stderr(&out));
}
