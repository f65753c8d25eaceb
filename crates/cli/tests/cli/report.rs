//! What a run reports: one `upload: a to s3://b/a` line per object, as the
//! AWS CLI prints; with `--json`, one JSON object a line (JSON Lines) per
//! object and, for many objects, a summary line last. And the help: each
//! command its own options and examples, no text of the other direction,
//! no global option that means nothing there.

use std::collections::BTreeSet;

use crate::harness::*;

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn object_len(env: &Env, key: &str) -> u64 {
    let head = block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).unwrap();
    head.content_length().unwrap() as u64
}

#[test]
fn one_object_reports_as_one_json_line() {
    let Some(env) = env() else { return };
    let data = sample(3 * 1024 * 1024 + 5, 7);
    std::fs::write(env.path("in.bin"), &data).unwrap();
    let out = env.ok(&[
        "encrypt",
        "in.bin",
        &env.uri("dir/"),
        "--key",
        &env.key_id,
        "--json",
    ]);
    let up = json_lines(&out.stdout);
    assert_eq!(up.len(), 1, "{up:?}");
    let up = &up[0];
    assert_eq!(up["type"], "object");
    assert_eq!(up["action"], "upload");
    assert_eq!(up["status"], "done");
    assert_eq!(up["source"], "in.bin");
    assert_eq!(up["destination"], env.uri("dir/in.bin"));
    assert_eq!(up["bytes"], data.len() as u64);
    assert_eq!(up["object_bytes"], object_len(&env, "dir/in.bin"));
    assert_eq!(up["format"], "v2");
    assert_eq!(up["kms_key"], env.key_arn.as_str());
    assert_eq!(up["kms_calls"], 1, "one GenerateDataKey");

    let out = env.ok(&["cp", &env.uri("dir/in.bin"), "out.bin", "--json"]);
    let down = json_lines(&out.stdout);
    assert_eq!(down.len(), 1, "{down:?}");
    let down = &down[0];
    assert_eq!(down["action"], "download");
    assert_eq!(down["source"], env.uri("dir/in.bin"));
    assert_eq!(down["destination"], "out.bin");
    assert_eq!(down["bytes"], data.len() as u64);
    assert_eq!(down["format"], "v2");
    assert_eq!(down["kms_calls"], 1, "one Decrypt");
    assert_eq!(std::fs::read(env.path("out.bin")).unwrap(), data);

    // stdout carries the plaintext: no room for a report.
    let out = env.run(&["decrypt", &env.uri("dir/in.bin"), "-", "--json"]);
    assert_status(&out, 2, &["--json to stdout"]);
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("--json"), "{}", stderr(&out));
    // Between local files there is nothing to report.
    let out = env.run(&["decrypt", "out.bin", "again.bin", "--json"]);
    assert_status(&out, 2, &["--json locally"]);
}

#[test]
fn many_objects_report_a_line_each_and_a_summary_line_last() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let tree = env.path("tree");
    // (Named relative to the working directory, as given.)
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    for (name, len) in [("a.txt", 10), ("sub/b.txt", 20), ("sub/c.txt", 0)] {
        std::fs::write(tree.join(name), sample(len, len as u64)).unwrap();
    }
    // A FIFO fails alone (it is never opened).
    let fifo = tree.join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    // Text: the AWS CLI's line per object.
    let out = env.run(&["cp", "-r", "tree", &env.uri("p/")]);
    assert_status(&out, 1, &["cp -r with a FIFO"]);
    let text: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let want: BTreeSet<String> = ["a.txt", "sub/b.txt", "sub/c.txt"]
        .iter()
        .map(|n| format!("upload: tree/{n} to {}", env.uri(&format!("p/{n}"))))
        .collect();
    assert_eq!(text, want);

    // JSON Lines: one per object, failures too, then the summary.
    let out = env.run(&["cp", "-r", "tree", &env.uri("q/"), "--json"]);
    assert_status(&out, 1, &["cp -r --json with a FIFO"]);
    let mut lines = json_lines(&out.stdout);
    let summary = lines.pop().unwrap();
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(summary["files"], 3);
    assert_eq!(summary["bytes"], 30);
    assert_eq!(summary["failed"].as_array().unwrap().len(), 1);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let done: BTreeSet<(String, u64)> = lines
        .iter()
        .filter(|l| l["status"] == "done")
        .map(|l| {
            assert_eq!(l["type"], "object");
            assert_eq!(l["action"], "upload");
            (
                l["destination"].as_str().unwrap().to_owned(),
                l["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: BTreeSet<(String, u64)> = [("a.txt", 10), ("sub/b.txt", 20), ("sub/c.txt", 0)]
        .iter()
        .map(|(n, len)| (env.uri(&format!("q/{n}")), *len))
        .collect();
    assert_eq!(done, want);
    let failed: Vec<_> = lines.iter().filter(|l| l["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"].as_str().unwrap().contains("FIFO"),
        "{}",
        failed[0]
    );

    // Downloads report the same way.
    let out = env.ok(&["cp", "-r", &env.uri("q/"), "down", "--json"]);
    let mut lines = json_lines(&out.stdout);
    assert_eq!(lines.pop().unwrap()["type"], "summary");
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(l["action"], "download");
        assert_eq!(l["status"], "done");
        let to = l["destination"].as_str().unwrap();
        assert!(std::path::Path::new(to).starts_with("down"), "{to}");
    }
}

/// `--json` names local files as they are (JSON escapes what needs it),
/// and text lines escape control characters: before, the JSON carried the
/// escaped display form (`t\\tx` for a file named with a real tab), a path
/// that does not exist.
#[test]
fn json_names_local_files_as_they_are() {
    let Some(env) = env() else { return };
    env.create_data_key();
    crate::bulk::write(&env.path("d"), "t\tx", b"tab");
    let out = env.ok(&["cp", "-r", "d", &env.uri("j/"), "--json"]);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["source"], "d/t\tx", "{lines:?}");
    assert_eq!(lines[0]["destination"], env.uri("j/t\tx").as_str());
    let out = env.ok(&["cp", &env.uri("j/t\tx"), "back\u{1}x", "--json"]);
    assert_eq!(json_lines(&out.stdout)[0]["destination"], "back\u{1}x");
    assert!(env.path("back\u{1}x").exists());
    let out = env.ok(&["cp", &env.uri("j/t\tx"), "again\u{1}x"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("download: {} to again\\u{{1}}x\n", env.uri("j/t\\tx"))
    );
}

/// A dry run of copies inside S3 says each object's stored length, as a
/// real run does, and `-r` ends with the summary line (before: `bytes` 0,
/// and no summary).
#[test]
fn dry_run_copies_inside_s3_report_their_lengths() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), sample(1000, 1)).unwrap();
    env.ok(&["cp", "in", &env.uri("c/a")]);
    env.ok(&["cp", "in", &env.uri("c/b")]);
    let len = object_len(&env, "c/a");
    let out = env.ok(&[
        "cp",
        "-r",
        &env.uri("c/"),
        &env.uri("d/"),
        "--dryrun",
        "--json",
    ]);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines[..2] {
        assert_eq!(
            (line["status"].as_str(), line["bytes"].as_u64()),
            (Some("dryrun"), Some(len))
        );
    }
    assert_eq!(lines[2]["type"], "summary");
    assert_eq!(lines[2]["bytes"], 2 * len);
    let out = env.ok(&["cp", &env.uri("c/a"), &env.uri("d/a"), "--dryrun", "--json"]);
    assert_eq!(json_lines(&out.stdout)[0]["bytes"], len);
    let out = env.ok(&["sync", &env.uri("c/"), &env.uri("d/"), "--dryrun", "--json"]);
    assert_eq!(json_lines(&out.stdout)[0]["bytes"], len);
    assert!(crate::bulk::keys(&env, "d/").is_empty());
}

/// A file that cannot be uploaded (a FIFO) fails alone, and its `--json`
/// line has the fields of the others (before: no action, no destination,
/// and a source relative to the directory).
#[test]
fn a_failed_file_has_a_json_line_like_the_others() {
    let Some(env) = env() else { return };
    env.create_data_key();
    crate::bulk::write(&env.path("d"), "a.txt", b"a");
    let fifo = env.path("d/pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let args = ["cp", "-r", "d", &env.uri("x/"), "--json"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let lines = json_lines(&out.stdout);
    let failed = lines
        .iter()
        .find(|l| l["status"] == "failed")
        .expect("a failure line");
    assert_eq!(failed["action"], "upload", "{failed}");
    assert_eq!(failed["source"], "d/pipe", "{failed}");
    assert_eq!(
        failed["destination"],
        env.uri("x/pipe").as_str(),
        "{failed}"
    );
    assert!(
        failed["error"].as_str().unwrap().contains("FIFO"),
        "{failed}"
    );

    // One object that fails has its line too (before: nothing on stdout),
    // and the error and exit status of a run without --json.
    env.put_raw("plain", b"not encrypted".to_vec());
    let cases: [(&[&str], i32, &str); 3] = [
        (&["cp", "d/missing", &env.uri("x/one")], 3, "upload"),
        (&["cp", &env.uri("plain"), "got"], 4, "download"),
        (&["mv", &env.uri("plain"), "got"], 4, "move"),
    ];
    for (args, status, action) in cases {
        let args = [args, &["--json"]].concat();
        let out = env.run(&args);
        assert_status(&out, status, &args);
        let lines = json_lines(&out.stdout);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["status"], "failed", "{lines:?}");
        assert_eq!(lines[0]["action"], action, "{lines:?}");
        assert_eq!(lines[0]["source"], args[1], "{lines:?}");
        assert_eq!(lines[0]["destination"], args[2], "{lines:?}");
        let error = lines[0]["error"].as_str().unwrap();
        assert!(stderr(&out).contains(error), "{}", stderr(&out));
    }
    assert!(!env.path("got").exists());
}

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atrest"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_command_has_its_own_help() {
    let decrypt = help(&["decrypt"]).to_lowercase();
    assert!(!decrypt.contains("upload"), "decrypt --help:\n{decrypt}");
    let encrypt = help(&["encrypt"]).to_lowercase();
    assert!(!encrypt.contains("download"), "encrypt --help:\n{encrypt}");
    assert!(
        encrypt.contains("--kms-key-id"),
        "--key answers to the AWS name"
    );
    // Options of the command first, the global ones under their heading.
    let own = encrypt.find("--key ").unwrap();
    let global = encrypt.find("global options:").unwrap();
    assert!(own < global && encrypt[global..].contains("--profile"));
    // Commands that touch no AWS list no AWS options; nothing without a
    // progress bar lists --no-progress.
    for command in ["completions", "keygen"] {
        let text = help(&[command]);
        for flag in ["--profile", "--region", "--endpoint-url", "--no-progress"] {
            assert!(
                !text.contains(flag),
                "{command} --help lists {flag}:\n{text}"
            );
        }
    }
    for command in ["inspect", "ls"] {
        let text = help(&[command]);
        assert!(!text.contains("--no-progress"), "{command}:\n{text}");
        assert!(text.contains("--profile"), "{command} reads S3");
    }
    // The usage line names S3URI; every command shows examples.
    assert!(help(&["decrypt"]).contains("<S3URI|IN>"));
    for command in [
        "cp",
        "sync",
        "encrypt",
        "decrypt",
        "inspect",
        "ls",
        "verify",
        "upgrade",
        "rewrap",
        "rewrap-data-key",
        "create-data-key",
        "keygen",
        "completions",
    ] {
        let text = help(&[command]);
        let examples = text.split("Examples:").nth(1).unwrap_or_default();
        let n = examples
            .lines()
            .filter(|l| l.trim_start().starts_with("atrest "))
            .count();
        assert!(n >= 2, "{command} --help has {n} examples:\n{text}");
    }
    // The exit statuses include the signals'.
    assert!(help(&[]).contains("130, 143"));
}

#[test]
fn hidden_global_options_still_parse_where_they_mean_nothing() {
    // `atrest --profile x completions bash` keeps working.
    for args in [
        &["--profile", "p", "completions", "bash"][..],
        &["completions", "bash", "--no-progress"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_atrest"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(String::from_utf8(out.stdout).unwrap().contains("atrest"));
    }
}

#[test]
fn dry_runs_say_what_they_would_do_and_touch_nothing() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::create_dir_all(env.path("tree/sub")).unwrap();
    std::fs::write(env.path("tree/a.txt"), b"a").unwrap();
    std::fs::write(env.path("tree/sub/b.txt"), b"bb").unwrap();
    env.ok(&["cp", "tree/a.txt", &env.uri("have/a.txt")]);
    let before = crate::bulk::keys(&env, "");
    // KMS unreachable: a dry run asks it nothing.
    let dry = |args: &[&str]| {
        env.atrest()
            .env("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")
            .args(args)
            .output()
            .unwrap()
    };
    let stdout = |out: &std::process::Output| String::from_utf8(out.stdout.clone()).unwrap();

    let out = dry(&["cp", "tree/a.txt", &env.uri("new/"), "--dryrun"]);
    assert_status(&out, 0, &["cp --dryrun up"]);
    assert_eq!(
        stdout(&out),
        format!("(dryrun) upload: tree/a.txt to {}\n", env.uri("new/a.txt"))
    );
    let out = dry(&["cp", "-r", "tree", &env.uri("new"), "--dryrun"]);
    assert_status(&out, 0, &["cp -r --dryrun up"]);
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("(dryrun) upload: tree/a.txt to {}", env.uri("new/a.txt")),
            format!(
                "(dryrun) upload: tree/sub/b.txt to {}",
                env.uri("new/sub/b.txt")
            ),
        ]
    );
    assert!(
        stderr(&out).contains("would encrypt 2 files"),
        "{}",
        stderr(&out)
    );
    let out = dry(&["cp", &env.uri("have/a.txt"), "got.txt", "--dryrun"]);
    assert_status(&out, 0, &["cp --dryrun down"]);
    assert_eq!(
        stdout(&out),
        format!("(dryrun) download: {} to got.txt\n", env.uri("have/a.txt"))
    );
    // One object with --json: its JSON line, as -r prints each (before, a
    // text line that a script could not parse).
    let out = dry(&[
        "cp",
        &env.uri("have/a.txt"),
        "got.txt",
        "--dryrun",
        "--json",
    ]);
    assert_status(&out, 0, &["cp --dryrun --json down"]);
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(
        (&line["status"], &line["action"]),
        (&"dryrun".into(), &"download".into())
    );
    assert_eq!(line["destination"], "got.txt");
    let out = dry(&["cp", "tree/a.txt", &env.uri("n"), "--dryrun", "--json"]);
    assert_status(&out, 0, &["cp --dryrun --json up"]);
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(
        (&line["status"], &line["action"]),
        (&"dryrun".into(), &"upload".into())
    );
    assert_eq!(
        line["bytes"],
        std::fs::metadata(env.path("tree/a.txt")).unwrap().len()
    );
    let out = dry(&[
        "decrypt",
        "-r",
        &env.uri("have"),
        "down",
        "--dryrun",
        "--json",
    ]);
    assert_status(&out, 0, &["decrypt -r --dryrun --json"]);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["status"], "dryrun");
    assert_eq!(lines[0]["action"], "download");
    assert_eq!(lines[1]["type"], "summary");
    // sync's dry runs end their transfers with the summary a real run
    // prints (before: none), its deletions after it, both ways.
    assert_eq!(crate::bulk::keys(&env, ""), before);
    std::fs::write(env.path("tree/gone"), b"g").unwrap();
    env.ok(&["sync", "tree", &env.uri("s/")]);
    std::fs::remove_file(env.path("tree/gone")).unwrap();
    std::fs::write(env.path("tree/new.txt"), b"new").unwrap();
    let up = [
        "sync",
        "tree",
        &env.uri("s/"),
        "--delete",
        "--dryrun",
        "--json",
    ];
    let back = [
        "sync",
        &env.uri("s/"),
        "tree",
        "--delete",
        "--dryrun",
        "--json",
    ];
    let before = crate::bulk::keys(&env, "");
    for (args, action, deleted) in [
        (&up, "upload", env.uri("s/gone")),
        (&back, "download", "tree/new.txt".into()),
    ] {
        let out = dry(args);
        assert_status(&out, 0, args);
        let lines = json_lines(&out.stdout);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            (&lines[0]["action"], &lines[0]["status"]),
            (&action.into(), &"dryrun".into())
        );
        let summary = &lines[1];
        assert_eq!(summary["type"], "summary", "{lines:?}");
        assert_eq!(
            (&summary["files"], &summary["kms_calls"]),
            (&1.into(), &0.into())
        );
        assert_eq!(summary["bytes"], lines[0]["bytes"]);
        assert_eq!(
            (&lines[2]["action"], &lines[2]["destination"]),
            (&"delete".into(), &deleted.into())
        );
    }
    assert!(env.path("tree/new.txt").exists());

    // Nothing was written anywhere.
    assert_eq!(crate::bulk::keys(&env, ""), before);
    for path in ["got.txt", "down"] {
        assert!(!env.path(path).exists(), "{path}");
    }
    // What would fail still fails: a missing source, a missing object.
    let out = dry(&["cp", "nope.txt", &env.uri("x"), "--dryrun"]);
    assert_status(&out, 3, &["cp --dryrun of a missing file"]);
    let out = dry(&["cp", &env.uri("nope"), "x", "--dryrun"]);
    assert_status(&out, 3, &["cp --dryrun of a missing object"]);
    // Local files too.
    let out = dry(&["encrypt", "tree/a.txt", "a.atrest", "--dryrun"]);
    assert_status(&out, 0, &["local --dryrun"]);
    assert_eq!(stdout(&out), "(dryrun) encrypt: tree/a.txt to a.atrest\n");
    assert!(!env.path("a.atrest").exists());
}

/// rewrap and upgrade of one object with --json: a failure has its
/// document (as verify's, and as with -r) before the error and its exit
/// status (stdout was empty); an object upgrade skips (already v2) does
/// not claim a data-key kind it never looked at.
#[test]
fn one_object_rewrap_and_upgrade_failures_have_their_json() {
    let Some(env) = env() else { return };
    env.put_raw("plain", b"not encrypted".to_vec());
    for args in [
        vec![
            "rewrap",
            &env.uri("plain"),
            "--to-key",
            &env.key_id,
            "--json",
        ],
        vec!["upgrade", &env.uri("plain"), "--json"],
    ] {
        let out = env.run(&args);
        assert_status(&out, 4, &args);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["failed"], 1, "{doc}");
        let object = &doc["objects"][0];
        assert_eq!(object["status"], "failed", "{doc}");
        assert_eq!(object["object"], env.uri("plain").as_str(), "{doc}");
        assert_eq!(object["retry"], "permanent", "{doc}");
        assert!(
            stderr(&out).contains("not an atrest object"),
            "{}",
            stderr(&out)
        );
    }
    env.create_data_key();
    std::fs::write(env.path("f"), b"f").unwrap();
    env.ok(&["cp", "f", &env.uri("v2")]);
    let uri = env.uri("v2");
    for key in [None, Some(env.key_id.as_str())] {
        let mut args = vec!["upgrade", &uri, "--json"];
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        let out = env.ok(&args);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["objects"][0]["status"], "skipped", "{doc}");
        assert!(doc["objects"][0]["shared_data_key"].is_null(), "{doc}");
    }
}
