//! `atrest cp SRC DST`, as `aws s3 cp`: the direction by which side is
//! s3://, and the object properties of uploads with the AWS CLI's names.

use std::io::Write;
use std::process::Stdio;

use crate::bulk::{keys, write};
use crate::harness::*;

#[test]
fn cp_uploads_or_downloads_by_which_side_is_s3() {
    let Some(env) = env() else { return };
    let data = sample(70_000, 1);
    std::fs::write(env.path("a.bin"), &data).unwrap();
    // Upload to a prefix: the key gets the file's name.
    let out = env.ok(&["cp", "a.bin", &env.uri("dir/"), "--key", &env.key_id]);
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains(&format!("upload: a.bin to {}", env.uri("dir/a.bin"))),
        "{line}"
    );
    // Download into a directory: the file gets the key's base name.
    std::fs::create_dir(env.path("back")).unwrap();
    let out = env.ok(&["cp", &env.uri("dir/a.bin"), "back"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("download: "));
    assert_eq!(std::fs::read(env.path("back/a.bin")).unwrap(), data);

    // `-`: stdin up, stdout down.
    let mut child = env
        .atrest()
        .args(["cp", "-", &env.uri("piped"), "--key", &env.key_id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    assert_status(&child.wait_with_output().unwrap(), 0, &["cp - s3://"]);
    let out = env.ok(&["cp", &env.uri("piped"), "-"]);
    assert_eq!(out.stdout, b"from stdin");

    // --recursive, both ways.
    write(&env.path("tree"), "x/y.txt", b"y");
    write(&env.path("tree"), "z.txt", b"z");
    env.ok(&["cp", "-r", "tree", &env.uri("t"), "--key", &env.key_id]);
    assert_eq!(keys(&env, "t/"), ["t/x/y.txt", "t/z.txt"]);
    env.ok(&["cp", "--recursive", &env.uri("t"), "tree2"]);
    assert_eq!(std::fs::read(env.path("tree2/x/y.txt")).unwrap(), b"y");

    // The original tool's names still work, in its argument order.
    env.ok(&[
        "encrypt-with-kms",
        "a.bin",
        &env.uri("old"),
        "--key",
        &env.key_id,
    ]);
    env.ok(&["decrypt-with-kms", &env.uri("old"), "old.bin"]);
    assert_eq!(std::fs::read(env.path("old.bin")).unwrap(), data);
}

#[test]
fn cp_refuses_what_does_not_apply_with_one_clear_line() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("a"), b"a").unwrap();
    let cases: [(&[&str], &str); 11] = [
        (&["cp", "a", "b"], "cp needs one s3:// side"),
        // S3 would refuse each (before: its error, after a request).
        (
            &["cp", "s3://b/x", "s3://b/x"],
            "onto itself changes nothing",
        ),
        (
            &["cp", "-r", "s3://b/p", "s3://b/p/"],
            "copying s3://b/p/ onto itself changes nothing",
        ),
        (
            &["cp", "s3://b/x", "s3://b/y", "--key", "k"],
            "--key applies to uploads, not to copies between s3:// locations",
        ),
        (
            &["cp", "s3://b/x", "s3://b/y", "--acl", "private"],
            "--acl applies to uploads, not to copies between s3:// locations",
        ),
        (
            &["cp", "s3://b/k", "out", "--no-guess-mime-type"],
            "--no-guess-mime-type applies to uploads",
        ),
        (
            &["cp", "a", "s3://b/k", "--expect-context", "k=v"],
            "--expect-context applies to downloads",
        ),
        (
            &["cp", "s3://b/k", "out", "--content-type", "text/plain"],
            "--content-type applies to uploads",
        ),
        (
            &["cp", "a", "s3://b/k", "--include", "*.txt"],
            "--include applies to --recursive only",
        ),
        (
            &["cp", "s3://b/x", "s3://b/y", "--exclude", "*.txt"],
            "--exclude applies to --recursive only",
        ),
        (
            &["cp", "-r", "s3://b/k", "out", "--range", "0-1"],
            "--range takes one object",
        ),
    ];
    for (args, needle) in cases {
        let out = env.run(args);
        assert_status(&out, 2, args);
        let err = stderr(&out);
        assert!(
            err.starts_with("atrest: error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
    assert_eq!(env.files(), ["a"]);
}

/// What a plain HeadObject says about `key`.
fn head(env: &Env, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap()
}

fn tags(env: &Env, key: &str) -> Vec<(String, String)> {
    let out = block_on(
        env.s3
            .get_object_tagging()
            .bucket(&env.bucket)
            .key(key)
            .send(),
    )
    .unwrap();
    let mut tags: Vec<_> = out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    tags
}

#[test]
fn uploads_carry_the_aws_cli_object_properties() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("report.pdf"), sample(1000, 2)).unwrap();
    // Over one 5 MiB part: the properties go on CreateMultipartUpload.
    std::fs::write(env.path("big.csv"), sample(6 << 20, 3)).unwrap();
    let props = [
        "--content-disposition",
        "attachment; filename=\"r.pdf\"",
        "--content-encoding",
        "identity",
        "--content-language",
        "fr",
        "--cache-control",
        "max-age=60",
        "--expires",
        "2027-01-31T12:00:00Z",
        "--metadata",
        "team=finance,year=2026",
        "--metadata",
        "owner=ana",
        "--storage-class",
        "STANDARD_IA",
        "--tagging",
        "k=v&sp=a%20b",
        "--sse",
        "AES256",
        "--acl",
        "bucket-owner-full-control",
    ];
    for (file, key, part_size) in [("report.pdf", "r.pdf", "8M"), ("big.csv", "b.csv", "5M")] {
        let uri = env.uri(key);
        let mut args = vec![
            "cp",
            file,
            &uri,
            "--key",
            &env.key_id,
            "--part-size",
            part_size,
        ];
        args.extend_from_slice(&props);
        env.ok(&args);
        let got = head(&env, key);
        // Guessed from the extension, as the AWS CLI does.
        let want_type = if file.ends_with(".pdf") {
            "application/pdf"
        } else {
            "text/csv"
        };
        assert_eq!(got.content_type(), Some(want_type), "{file}");
        assert_eq!(
            got.content_disposition(),
            Some("attachment; filename=\"r.pdf\"")
        );
        assert_eq!(got.content_encoding(), Some("identity"));
        assert_eq!(got.content_language(), Some("fr"));
        assert_eq!(got.cache_control(), Some("max-age=60"));
        assert_eq!(
            got.expires_string(),
            Some("Sun, 31 Jan 2027 12:00:00 GMT"),
            "{file}"
        );
        assert_eq!(got.storage_class().map(|c| c.as_str()), Some("STANDARD_IA"));
        assert_eq!(
            got.server_side_encryption().map(|s| s.as_str()),
            Some("AES256")
        );
        let meta = got.metadata().unwrap();
        assert_eq!(meta.get("team").map(String::as_str), Some("finance"));
        assert_eq!(meta.get("year").map(String::as_str), Some("2026"));
        assert_eq!(meta.get("owner").map(String::as_str), Some("ana"));
        // The source's modification time, for sync.
        assert!(meta.contains_key("atrest-mtime"), "{meta:?}");
        assert_eq!(
            tags(&env, key),
            [("k".into(), "v".into()), ("sp".into(), "a b".into())]
        );
        let acl = block_on(env.s3.get_object_acl().bucket(&env.bucket).key(key).send()).unwrap();
        assert!(!acl.grants().is_empty(), "{file}: no grants");
        // And it still decrypts.
        env.ok(&["cp", &uri, &format!("{key}.back")]);
        assert_eq!(
            std::fs::read(env.path(&format!("{key}.back"))).unwrap(),
            std::fs::read(env.path(file)).unwrap()
        );
    }

    // SSE-KMS with its key; an explicit --content-type wins over the guess.
    let uri = env.uri("kms.pdf");
    env.ok(&[
        "encrypt",
        "report.pdf",
        &uri,
        "--key",
        &env.key_id,
        "--content-type",
        "application/x-custom",
        "--sse",
        "aws:kms",
        "--sse-kms-key-id",
        &env.key_arn,
    ]);
    let got = head(&env, "kms.pdf");
    assert_eq!(got.content_type(), Some("application/x-custom"));
    assert_eq!(
        got.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert_eq!(got.ssekms_key_id(), Some(env.key_arn.as_str()));

    // --no-guess-mime-type, with the AWS CLI's --only-show-errors (-q):
    // no type from the extension, and nothing on stdout.
    let uri = env.uri("plain.pdf");
    let args = [
        "cp",
        "report.pdf",
        &uri,
        "--key",
        &env.key_id,
        "--no-guess-mime-type",
        "--only-show-errors",
    ];
    let out = env.ok(&args);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let got = head(&env, "plain.pdf");
    assert_ne!(got.content_type(), Some("application/pdf"));
    assert!(
        got.content_type()
            .is_some_and(|t| t.contains("octet-stream")),
        "{got:?}"
    );
}

#[test]
fn bad_properties_and_key_flags_fail_once_before_anything_is_sent() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("a.txt"), b"a").unwrap();
    let big = format!("big={}", "x".repeat(1900));
    let uri = env.uri("a.txt");
    let args = [
        "cp",
        "a.txt",
        &uri,
        "--key",
        &env.key_id,
        "--metadata",
        &big,
    ];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    let err = stderr(&out);
    assert!(err.contains("2 KB limit"), "{err}");
    assert!(keys(&env, "").is_empty());
    // The usual bad inputs: one line each, exit 2.
    for bad in [
        &["--storage-class", "CHEAP"][..],
        &["--sse", "rot13"],
        &["--acl", "everyone"],
        &["--sse-kms-key-id", "k"],
        &["--metadata", "novalue"],
        // Values that cannot be HTTP headers: one usage error before any
        // KMS call, not a failed request per file.
        &["--metadata", "K Y=v"],
        &["--metadata", "a:b=v"],
        &["--metadata", "k=a\nb"],
        &["--content-type", "text/plain\r\nX-Evil: 1"],
        &["--cache-control", "a\u{1}"],
        &["--expires", "tomorrow"],
        // atrest's own entries and the S3 Encryption Client's envelope:
        // once silently replaced, or (with --format s3ec-v3) written into
        // an envelope that then decrypted nowhere.
        &["--metadata", "atrest-mtime=1"],
        &["--metadata", "X-Amz-Key-V2=evil", "--format", "s3ec-v3"],
        // S3 lower-cases names: these would merge into one entry.
        &["--metadata", "Team=a,team=b"],
        // S3's limits on tags, found before the KMS call rather than by
        // S3 refusing each file after it.
        &[
            "--tagging",
            "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v&k10=v",
        ],
        &["--tagging", "k=1&k=2"],
        &["--tagging", "aws:owner=me"],
        // A bad --context: once per file after a listing, before; a pair
        // given twice was "not in ascending order", or (s3ec-v3) the last
        // value silently.
        &["--context", "k=1", "--context", "k=2"],
        &[
            "--context",
            "k=1",
            "--context",
            "k=2",
            "--format",
            "s3ec-v3",
        ],
        &["--context", "atrest:x=1"],
    ] {
        std::fs::create_dir_all(env.path("dir")).unwrap();
        std::fs::write(env.path("dir/b.txt"), b"b").unwrap();
        let prefix = env.uri("dir/");
        let one = ["cp", "a.txt", &uri];
        let tree = ["cp", "-r", "dir", &prefix];
        let sync = ["sync", "dir", &prefix];
        for command in [&one[..], &tree, &sync] {
            let mut args = command.to_vec();
            args.extend_from_slice(&["--key", &env.key_id]);
            args.extend_from_slice(bad);
            let out = env.run(&args);
            assert_status(&out, 2, &args);
            let err = stderr(&out);
            assert!(err.starts_with("atrest: error: "), "{err}");
            assert_eq!(err.matches("error").count(), 1, "one error: {err}");
        }
    }
    assert!(keys(&env, "").is_empty());
}

#[test]
fn no_overwrite_skips_destinations_that_exist() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::create_dir_all(env.path("tree")).unwrap();
    for name in ["old.txt", "new.txt"] {
        std::fs::write(env.path(&format!("tree/{name}")), name).unwrap();
    }
    env.ok(&["cp", "tree/old.txt", &env.uri("p/old.txt")]);
    let stored = env.get_raw("p/old.txt");
    std::fs::write(env.path("tree/old.txt"), b"changed").unwrap();

    // One object: it exists, so nothing is uploaded.
    let out = env.ok(&[
        "cp",
        "tree/old.txt",
        &env.uri("p/old.txt"),
        "--no-overwrite",
    ]);
    assert!(
        stderr(&out).contains("exists (--no-overwrite)"),
        "{}",
        stderr(&out)
    );
    assert!(env.get_raw("p/old.txt") == stored);
    // A tree: only what is missing goes up.
    let out = env.ok(&["cp", "-r", "tree", &env.uri("p"), "--no-overwrite"]);
    assert!(
        stderr(&out).contains("skipped 1 that exist"),
        "{}",
        stderr(&out)
    );
    assert!(env.get_raw("p/old.txt") == stored);
    assert_eq!(crate::bulk::keys(&env, "p/"), ["p/new.txt", "p/old.txt"]);

    // Downloads: an existing local file is left as it is.
    std::fs::create_dir_all(env.path("down")).unwrap();
    std::fs::write(env.path("down/old.txt"), b"mine").unwrap();
    env.ok(&[
        "cp",
        &env.uri("p/old.txt"),
        "down/old.txt",
        "--no-overwrite",
    ]);
    assert_eq!(std::fs::read(env.path("down/old.txt")).unwrap(), b"mine");
    env.ok(&["cp", "-r", &env.uri("p"), "down", "--no-overwrite"]);
    assert_eq!(std::fs::read(env.path("down/old.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read(env.path("down/new.txt")).unwrap(), b"new.txt");
    // Without the flag, cp replaces as `aws s3 cp` does.
    env.ok(&["cp", &env.uri("p/old.txt"), "down/old.txt"]);
    assert_eq!(std::fs::read(env.path("down/old.txt")).unwrap(), b"old.txt");

    // --json: a line of status `skipped` for each (before: nothing at all).
    let statuses = |args: &[&str]| -> Vec<(String, String)> {
        let out = env.ok(args);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["type"] == "object")
            .map(|v| {
                let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (field("destination"), field("status"))
            })
            .collect()
    };
    let (old, prefix) = (env.uri("p/old.txt"), env.uri("p"));
    let no_overwrite = ["--no-overwrite", "--json"];
    let one = [&["cp", "tree/old.txt", &old][..], &no_overwrite].concat();
    assert_eq!(statuses(&one), [(old.clone(), "skipped".into())]);
    let tree = [&["cp", "-r", "tree", &prefix][..], &no_overwrite].concat();
    let mut all = statuses(&tree);
    all.sort();
    let new = env.uri("p/new.txt");
    assert_eq!(
        all,
        [(new, "skipped".into()), (old.clone(), "skipped".into())]
    );
    let copy = [
        &["cp", &old, &old][..],
        &["--storage-class", "STANDARD"],
        &no_overwrite,
    ]
    .concat();
    assert_eq!(statuses(&copy), [(old, "skipped".into())]);
    let down = [&["cp", "-r", &prefix, "down"][..], &no_overwrite].concat();
    assert_eq!(statuses(&down).len(), 2);
    assert!(statuses(&down)
        .iter()
        .all(|(_, status)| status == "skipped"));
}

/// A part size far above the input costs the input's memory, not the part
/// size's: a 16 MiB upload with `--part-size 5G` once touched 5 GiB (a
/// whole part-sized buffer zeroed up front) and took 20 s.
#[test]
fn a_part_size_far_above_the_input_costs_no_more_memory() {
    let Some(env) = env() else { return };
    let data = sample(16 << 20, 16);
    std::fs::write(env.path("in"), &data).unwrap();
    let peak_kib = |args: &[&str], stdin: Stdio| -> u64 {
        let mut time = env.atrest_under(&["/usr/bin/time", "-f", "%M"]);
        let out = time.args(args).stdin(stdin).output().unwrap();
        assert_status(&out, 0, args);
        stderr(&out).lines().last().unwrap().trim().parse().unwrap()
    };
    let key = ["--key", &env.key_id, "--part-size", "5G", "--no-progress"];
    let from_file = peak_kib(
        &[&["cp", "in", &env.uri("f")][..], &key].concat(),
        Stdio::null(),
    );
    let stdin = std::fs::File::open(env.path("in")).unwrap();
    let from_stdin = peak_kib(
        &[&["cp", "-", &env.uri("s")][..], &key].concat(),
        stdin.into(),
    );
    for (what, kib) in [("a file", from_file), ("stdin", from_stdin)] {
        assert!(kib < 160 << 10, "{what}: peak RSS {kib} KiB for 16 MiB");
    }
    for object in ["f", "s"] {
        env.ok(&["cp", &env.uri(object), "out"]);
        assert!(std::fs::read(env.path("out")).unwrap() == data, "{object}");
    }
}

/// `cp s3://A s3://B` copies inside S3, as `aws s3 cp` does: the copy is
/// the same object (it decrypts as the original), its metadata and tags
/// go along, and no body passes through the client (byte counts through a
/// proxy), in one CopyObject or, above the threshold, UploadPartCopy parts.
#[test]
fn cp_between_s3_locations_copies_inside_s3() {
    use crate::faults::{Op, Proxy};
    let Some(env) = env() else { return };
    let data = sample(12 << 20, 12);
    std::fs::write(env.path("in.bin"), &data).unwrap();
    let up = ["cp", "in.bin", &env.uri("src/in.bin"), "--key", &env.key_id];
    env.ok(&[&up[..], &["--metadata", "team=x", "--tagging", "p=1"]].concat());
    env.ok(&[
        "cp",
        "in.bin",
        &env.uri("src/skip.tmp"),
        "--key",
        &env.key_id,
    ]);
    let proxy = Proxy::start(&env.endpoint);
    let via =
        |args: &[&str]| String::from_utf8(crate::sync::via(&env, &proxy, args).stdout).unwrap();
    let said = via(&["cp", &env.uri("src/in.bin"), &env.uri("one/")]);
    assert_eq!(
        said,
        format!(
            "copy: {} to {}\n",
            env.uri("src/in.bin"),
            env.uri("one/in.bin")
        )
    );
    let parts = ["--multipart-threshold", "5M", "--part-size", "5M"];
    via(&[
        &["cp", &env.uri("src/in.bin"), &env.uri("parts.bin")][..],
        &parts,
    ]
    .concat());
    assert_eq!(
        proxy.seen(Op::UploadPart),
        3,
        "12 MiB in 5 MiB parts, copied"
    );
    assert_eq!(proxy.seen(Op::CreateMultipartUpload), 1);
    let said = via(&[
        "cp",
        "-r",
        &env.uri("src"),
        &env.uri("tree"),
        "--exclude",
        "*.tmp",
    ]);
    assert_eq!(
        said,
        format!(
            "copy: {} to {}\n",
            env.uri("src/in.bin"),
            env.uri("tree/in.bin")
        )
    );
    let (sent, received) = proxy.traffic();
    assert!(
        sent + received < 256 << 10,
        "{sent} sent, {received} received for 36 MiB copied"
    );
    // The one GET of a key is the parts copy's GetObjectTagging.
    assert_eq!(proxy.seen(Op::GetObject) + proxy.seen(Op::GetLaterRange), 1);
    for copy in ["one/in.bin", "parts.bin", "tree/in.bin"] {
        env.ok(&["cp", &env.uri(copy), "out"]);
        assert!(std::fs::read(env.path("out")).unwrap() == data, "{copy}");
        let head = block_on(env.s3.head_object().bucket(&env.bucket).key(copy).send()).unwrap();
        assert_eq!(
            head.metadata().unwrap().get("team").map(String::as_str),
            Some("x")
        );
        let tags = block_on(
            env.s3
                .get_object_tagging()
                .bucket(&env.bucket)
                .key(copy)
                .send(),
        );
        assert_eq!(tags.unwrap().tag_set().len(), 1, "{copy}");
    }
    // --storage-class, in one request or in parts (else the bucket's
    // default, as CopyObject).
    for (key, extra) in [("cold.bin", &[][..]), ("cold-parts.bin", &parts[..])] {
        let args = [
            "cp",
            &env.uri("src/in.bin"),
            &env.uri(key),
            "--storage-class",
            "STANDARD_IA",
        ];
        env.ok(&[&args[..], extra].concat());
        let head = block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap();
        assert_eq!(
            head.storage_class().map(|c| c.as_str()),
            Some("STANDARD_IA"),
            "{key}"
        );
    }
    let head = block_on(
        env.s3
            .head_object()
            .bucket(&env.bucket)
            .key("parts.bin")
            .send(),
    );
    assert_eq!(head.unwrap().storage_class(), None);
    // A dry run copies nothing, nor --no-overwrite over what exists; flags
    // of uploads and downloads are refused; a missing source is "not
    // found".
    let out = env.ok(&[
        "cp",
        "-r",
        &env.uri("src/"),
        &env.uri("tree/"),
        "--no-overwrite",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "copy: {} to {}\n",
            env.uri("src/skip.tmp"),
            env.uri("tree/skip.tmp")
        )
    );
    assert!(
        stderr(&out).contains("skipped 1 that exist"),
        "{}",
        stderr(&out)
    );
    let out = env.ok(&[
        "cp",
        &env.uri("src/in.bin"),
        &env.uri("parts.bin"),
        "--no-overwrite",
    ]);
    assert!(out.stdout.is_empty() && stderr(&out).contains("exists (--no-overwrite)"));
    // --json: a line per copy (the stored bytes: nothing is decrypted),
    // and a summary with -r; nothing else on stdout.
    let (from, to) = (env.uri("src/in.bin"), env.uri("js/one"));
    let stored = env.get_raw("src/in.bin").len() as u64;
    let out = env.ok(&["cp", &from, &to, "--json"]);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = serde_json::json!({"type": "object", "action": "copy", "source": from,
        "destination": to, "status": "done", "bytes": stored});
    assert_eq!(line, expected);
    let args = ["cp", "-r", &env.uri("src/"), &env.uri("js/"), "--json"];
    let out = env.ok(&[&args[..], &["--exclude", "*.tmp"]].concat());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["destination"], env.uri("js/in.bin"));
    let summary =
        serde_json::json!({"type": "summary", "objects": 1, "bytes": stored, "failed": []});
    assert_eq!(lines[1], summary);
    let out = env.ok(&[&args[..], &["--dryrun"]].concat());
    let said = String::from_utf8(out.stdout).unwrap();
    assert_eq!(said.matches(r#""status":"dryrun""#).count(), 2, "{said}");
    let before = keys(&env, "");
    let out = env.ok(&["cp", "-r", &env.uri("src/"), &env.uri("dry/"), "--dryrun"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("(dryrun) copy: "));
    // As `aws s3 cp --dryrun`, a missing source fails (it said it would copy).
    for verb in ["cp", "mv"] {
        let args = [verb, &env.uri("src/missing"), &env.uri("dry/m"), "--dryrun"];
        let out = env.run(&args);
        assert_status(&out, 3, &args);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let (from, to) = (env.uri("src/in.bin"), env.uri("x"));
    for flag in [&["--key", "k"][..], &["--range", "0-1"]] {
        let args = [&["cp", &from, &to][..], flag].concat();
        let out = env.run(&args);
        assert_status(&out, 2, &args);
        assert!(
            stderr(&out).contains("not to copies between s3:// locations"),
            "{}",
            stderr(&out)
        );
    }
    let out = env.run(&["cp", &env.uri("nothing"), &env.uri("x")]);
    assert_status(&out, 3, &["copy of a missing object"]);
    assert_eq!(keys(&env, ""), before);
}

/// `--request-payer requester` marks every S3 request of every kind (one
/// part and many, GETs, listings, copies, deletes), as a Requester Pays
/// bucket needs; without it, none is.
#[test]
fn request_payer_marks_every_s3_request() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("big"), sample(6 << 20, 4)).unwrap();
    std::fs::write(env.path("small"), b"small").unwrap();
    let runs: [&[&str]; 6] = [
        &[
            "cp",
            "big",
            &env.uri("p/big"),
            "--key",
            &env.key_id,
            "--part-size",
            "5M",
        ],
        &["cp", "small", &env.uri("p/small"), "--key", &env.key_id],
        &["cp", &env.uri("p/big"), "big.back"],
        &["ls", "-r", &env.uri("p/")],
        &["cp", "-r", &env.uri("p"), &env.uri("q")],
        &["mv", &env.uri("q/small"), "small.back"],
    ];
    let proxy = crate::faults::Proxy::start(&env.endpoint);
    for args in runs {
        let mut args = args.to_vec();
        args.extend(["--request-payer", "requester"]);
        crate::sync::via(&env, &proxy, &args);
    }
    let (marked, all) = proxy.requester_pays();
    assert!(all > 12, "{all} S3 requests");
    assert_eq!(marked, all);
    assert_eq!(std::fs::read(env.path("small.back")).unwrap(), b"small");

    let proxy = crate::faults::Proxy::start(&env.endpoint);
    crate::sync::via(&env, &proxy, &["ls", "-r", &env.uri("p/")]);
    assert_eq!(proxy.requester_pays().0, 0);
    let args = ["ls", "--request-payer", "me"];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
}

/// `--metadata-directive REPLACE` (or `--metadata` alone, as the AWS CLI
/// takes it): the copy gets the headers and user metadata given instead
/// of the source's, in one CopyObject or in parts, onto itself too (the
/// AWS CLI's way to change an object's headers); atrest's own entries
/// stay, so it still decrypts; the tags stay. Without REPLACE, header
/// flags are refused; on uploads, the directive is.
#[test]
fn a_copy_can_replace_headers_and_metadata_and_still_decrypts() {
    let Some(env) = env() else { return };
    let data = sample(6 << 20, 13);
    std::fs::write(env.path("in.csv"), &data).unwrap();
    let up = ["cp", "in.csv", &env.uri("a.csv"), "--key", &env.key_id];
    let props = [
        "--metadata",
        "team=x",
        "--cache-control",
        "max-age=1",
        "--tagging",
        "t=1",
    ];
    env.ok(&[&up[..], &props].concat());
    let source = head(&env, "a.csv");

    let (a, b) = (env.uri("a.csv"), env.uri("b.csv"));
    for (args, key) in [
        // Onto itself, in one CopyObject.
        (
            vec!["cp", &a, &a, "--metadata-directive", "REPLACE"],
            "a.csv",
        ),
        // Elsewhere, in 5 MiB parts; --metadata alone means REPLACE.
        (
            vec![
                "cp",
                &a,
                &b,
                "--multipart-threshold",
                "5M",
                "--part-size",
                "5M",
            ],
            "b.csv",
        ),
    ] {
        let replaced = ["--metadata", "owner=y", "--content-type", "text/x-new"];
        let replaced = [&replaced[..], &["--cache-control", "no-store"]].concat();
        env.ok(&[&args[..], &replaced].concat());
        let got = head(&env, key);
        assert_eq!(got.content_type(), Some("text/x-new"), "{key}");
        assert_eq!(got.cache_control(), Some("no-store"), "{key}");
        let meta = got.metadata().unwrap();
        assert_eq!(meta.get("owner").map(String::as_str), Some("y"), "{key}");
        assert!(!meta.contains_key("team"), "{key}: {meta:?}");
        for own in ["atrest-mtime", "atrest-kms-key-arn"] {
            assert_eq!(
                meta.get(own),
                source.metadata().unwrap().get(own),
                "{key}: {own}"
            );
        }
        assert_eq!(tags(&env, key), [("t".into(), "1".into())], "{key}");
        env.ok(&["cp", &env.uri(key), "back"]);
        assert!(std::fs::read(env.path("back")).unwrap() == data, "{key}");
    }

    for (args, needle) in [
        (
            vec!["cp", &a, &b, "--content-type", "x/y"],
            "--content-type applies to uploads, or to copies with --metadata-directive REPLACE",
        ),
        (
            vec!["cp", "in.csv", &b, "--metadata-directive", "COPY"],
            "--metadata-directive applies to copies between s3:// locations",
        ),
        (
            vec!["cp", &a, &b, "--metadata", "atrest-mtime=1"],
            "reserved",
        ),
        (vec!["cp", &a, &b, "--metadata-directive", "MERGE"], "MERGE"),
    ] {
        let out = env.run(&args);
        assert_status(&out, 2, &args);
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn expected_size_sizes_a_streams_parts_to_fit() {
    let Some(env) = env() else { return };
    let proxy = crate::faults::Proxy::start(&env.endpoint);
    let data = sample(12 << 20, 7);
    let parts_for = |key: &str, extra: &[&str]| {
        let before = proxy.seen(crate::faults::Op::UploadPart);
        let uri = env.uri(key);
        let mut args = vec!["cp", "-", &uri, "--key", &env.key_id, "--part-size", "5M"];
        args.extend(extra);
        let mut child = proxy
            .atrest(&env)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_status(&out, 0, &args);
        env.ok(&["cp", &uri, key]);
        assert_eq!(std::fs::read(env.path(key)).unwrap(), data);
        proxy.seen(crate::faults::Op::UploadPart) - before
    };
    // 12 MiB in 5 MiB parts; told of 200 GiB, parts of ~21 MiB hold it all.
    assert_eq!(parts_for("plain", &[]), 3);
    assert!(parts_for("sized", &["--expected-size", "200G"]) <= 1);
    assert!(parts_for("bytes", &["--expected-size", "214748364800"]) <= 1);
    for bad in ["12X", "1iB", "", "99999999999999999999"] {
        let args = ["cp", "-", &env.uri("x"), "--expected-size", bad];
        assert_status(&env.run(&args), 2, &args);
    }
}

#[test]
fn an_access_point_arn_is_a_bucket() {
    let Some(env) = env() else { return };
    write(env.dir.path(), "f", b"x");
    let ap = "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap";
    let to = format!("{ap}/dir/");
    let out = env.ok(&["cp", "f", &to, "--key", &env.key_id, "--dryrun"]);
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.trim(), format!("(dryrun) upload: f to {ap}/dir/f"));
    let bad = "s3://arn:aws:s3:us-west-2:123456789012:bucket/b/k";
    let args = ["cp", "f", bad, "--key", &env.key_id, "--dryrun"];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert!(
        stderr(&out).contains("invalid bucket name"),
        "{}",
        stderr(&out)
    );
}
