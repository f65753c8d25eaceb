//! `atrest sync SRC DST`, as `aws s3 sync`: only what is new or changed
//! goes, decided from listings alone (a counting proxy checks that a re-run
//! over an unchanged tree sends and fetches no bodies).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bulk::{keys, write};
use crate::faults::{Op, Proxy};
use crate::harness::*;

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Runs atrest through `proxy`, insisting on success.
pub(crate) fn via(env: &Env, proxy: &Proxy, args: &[&str]) -> std::process::Output {
    let out = proxy.atrest(env).args(args).output().unwrap();
    assert_status(&out, 0, args);
    out
}

/// Bodies that went up or came down through the proxy: PUTs, parts, GETs.
fn bodies(proxy: &Proxy) -> (usize, usize) {
    (
        proxy.seen(Op::PutObject) + proxy.seen(Op::UploadPart),
        proxy.seen(Op::GetObject) + proxy.seen(Op::GetLaterRange),
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sync_up_sends_only_what_changed_and_a_rerun_sends_no_bodies() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    let old = SystemTime::now() - Duration::from_secs(3600);
    for (rel, len) in [
        ("a.txt", 10),
        ("empty", 0),
        ("sub/b.bin", 70_000),
        ("sub/c", 5),
    ] {
        write(&src, rel, &sample(len, len as u64));
        set_mtime(&src.join(rel), old);
    }
    let to = env.uri("p");
    let out = env.ok(&["sync", "src", &to, "--key", &env.key_id]);
    assert_eq!(
        stdout(&out).matches("upload: ").count(),
        4,
        "{}",
        stdout(&out)
    );
    assert_eq!(
        keys(&env, "p/"),
        ["p/a.txt", "p/empty", "p/sub/b.bin", "p/sub/c"]
    );

    // Unchanged: only listings (and at most one header read, which
    // teaches the layout every other object shares).
    let proxy = Proxy::start(&env.endpoint);
    let out = via(&env, &proxy, &["sync", "src", &to, "--key", &env.key_id]);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("4 up to date"), "{}", stderr(&out));
    let (up, down) = bodies(&proxy);
    assert_eq!(up, 0, "bodies sent on an unchanged re-run");
    assert!(down <= 1, "{down} GETs on an unchanged re-run");
    assert_eq!(proxy.seen(Op::Kms), 0);

    // A grown file, and one of the same size touched later: both go.
    write(&src, "a.txt", &sample(11, 1));
    set_mtime(&src.join("a.txt"), old);
    write(&src, "sub/c", b"CCCCC");
    // (Times compare to the second, as S3 keeps them: later than the
    // upload, whatever the speed of the test.)
    let later = SystemTime::now() + Duration::from_secs(60);
    set_mtime(&src.join("sub/c"), later);
    let out = env.ok(&["sync", "src", &to, "--key", &env.key_id]);
    let lines = stdout(&out);
    assert!(lines.contains("upload: src/a.txt to "), "{lines}");
    assert!(lines.contains("upload: src/sub/c to "), "{lines}");
    assert_eq!(lines.lines().count(), 2, "{lines}");
    env.ok(&["cp", &env.uri("p/a.txt"), "a.back"]);
    assert_eq!(std::fs::read(env.path("a.back")).unwrap(), sample(11, 1));

    // --size-only: a touched file of the same size stays.
    set_mtime(
        &src.join("sub/b.bin"),
        SystemTime::now() + Duration::from_secs(60),
    );
    let out = env.ok(&["sync", "src", &to, "--size-only", "--key", &env.key_id]);
    assert_eq!(stdout(&out), "");

    // --delete, dry first: nothing changes, the plan is printed.
    std::fs::remove_file(src.join("empty")).unwrap();
    // (The KMS key from ATREST_KMS_KEY, as --key would give it.)
    let args = ["sync", "src", &to, "--delete", "--dryrun", "--size-only"];
    let out = env
        .atrest()
        .env("ATREST_KMS_KEY", &env.key_id)
        .args(args)
        .output()
        .unwrap();
    assert_status(&out, 0, &args);
    assert_eq!(
        stdout(&out),
        format!("(dryrun) delete: {}\n", env.uri("p/empty"))
    );
    assert_eq!(keys(&env, "p/").len(), 4);
    let out = env.ok(&[
        "sync",
        "src",
        &to,
        "--delete",
        "--size-only",
        "--key",
        &env.key_id,
    ]);
    assert!(stdout(&out).contains("delete: "), "{}", stdout(&out));
    assert_eq!(keys(&env, "p/"), ["p/a.txt", "p/sub/b.bin", "p/sub/c"]);
}

#[test]
fn sync_down_restores_times_and_keeps_newer_local_files() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    let then = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
    for (rel, len) in [("a.txt", 10), ("d/b.bin", 70_000)] {
        write(&src, rel, &sample(len, 7));
        set_mtime(&src.join(rel), then);
    }
    env.ok(&["sync", "src", &env.uri("p/"), "--key", &env.key_id]);
    let out = env.ok(&["sync", &env.uri("p"), "dst"]);
    assert_eq!(stdout(&out).matches("download: ").count(), 2);
    for rel in ["a.txt", "d/b.bin"] {
        let got = env.path("dst").join(rel);
        assert_eq!(
            std::fs::read(&got).unwrap(),
            std::fs::read(src.join(rel)).unwrap()
        );
        // The source file's time, recorded by the upload.
        assert_eq!(mtime(&got), then, "{rel}");
    }

    // Unchanged: listings only, no bodies.
    let proxy = Proxy::start(&env.endpoint);
    let out = via(&env, &proxy, &["sync", &env.uri("p"), "dst"]);
    assert_eq!(stdout(&out), "");
    let (up, down) = bodies(&proxy);
    assert_eq!(up, 0, "bodies sent on an unchanged re-run");
    assert!(down <= 1, "{down} GETs on an unchanged re-run");

    // A local edit since: kept, with a warning saying how to replace it.
    write(&env.path("dst"), "a.txt", b"edited locally");
    let later = SystemTime::now() + Duration::from_secs(60);
    set_mtime(&env.path("dst/a.txt"), later);
    let out = env.ok(&["sync", &env.uri("p"), "dst"]);
    assert!(stderr(&out).contains("kept "), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--exact-timestamps"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(env.path("dst/a.txt")).unwrap(),
        b"edited locally"
    );
    // --only-show-errors shows errors and warnings, as the AWS CLI's does
    // (it was -q, which hides warnings: the kept file went unsaid).
    let out = env.ok(&["sync", &env.uri("p"), "dst", "--only-show-errors"]);
    assert!(
        stderr(&out).starts_with("warning: kept "),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = env.ok(&["sync", &env.uri("p"), "dst", "-q"]);
    assert_eq!(stderr(&out), "");
    let out = env.ok(&["sync", &env.uri("p"), "dst", "--exact-timestamps"]);
    assert_eq!(
        stdout(&out).matches("download: ").count(),
        1,
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read(env.path("dst/a.txt")).unwrap(), sample(10, 7));
    // Exact times now match: nothing more to do, even with the flag.
    let out = env.ok(&["sync", &env.uri("p"), "dst", "--exact-timestamps"]);
    assert_eq!(stdout(&out), "");

    // --delete removes local files the prefix lacks; --no-overwrite
    // leaves existing files alone.
    write(&env.path("dst"), "extra", b"x");
    std::fs::write(env.path("dst/d/b.bin"), b"different").unwrap();
    set_mtime(&env.path("dst/d/b.bin"), then);
    let out = env.ok(&["sync", &env.uri("p"), "dst", "--delete", "--no-overwrite"]);
    assert!(!env.path("dst/extra").exists(), "{}", stdout(&out));
    assert_eq!(
        std::fs::read(env.path("dst/d/b.bin")).unwrap(),
        b"different"
    );
    env.ok(&["sync", &env.uri("p"), "dst"]);
    assert_eq!(
        std::fs::read(env.path("dst/d/b.bin")).unwrap(),
        sample(70_000, 7)
    );
}

#[test]
fn whole_buckets_are_prefixes_for_sync_cp_and_ls() {
    let Some(env) = env() else { return };
    write(&env.path("src"), "top.txt", b"top");
    write(&env.path("src"), "in/side.txt", b"side");
    let bucket = format!("s3://{}", env.bucket);
    env.ok(&["sync", "src", &bucket, "--key", &env.key_id]);
    assert_eq!(keys(&env, ""), ["in/side.txt", "top.txt"]);
    let out = env.ok(&["ls", &format!("{bucket}/")]);
    let listing = stdout(&out);
    assert!(
        listing.contains("PRE in/") && listing.contains("top.txt"),
        "{listing}"
    );
    env.ok(&["cp", "-r", &bucket, "all"]);
    assert_eq!(std::fs::read(env.path("all/in/side.txt")).unwrap(), b"side");
    // A single file to a bucket keeps its name, as aws s3 cp does.
    std::fs::write(env.path("one.txt"), b"1").unwrap();
    env.ok(&["cp", "one.txt", &bucket, "--key", &env.key_id]);
    assert!(keys(&env, "").contains(&"one.txt".to_owned()));
    // But a download needs an object.
    let out = env.run(&["cp", &bucket, "x"]);
    assert_status(&out, 2, &["cp s3://bucket x"]);
    assert!(
        stderr(&out).contains("names no object key"),
        "{}",
        stderr(&out)
    );
}

/// `aws s3 sync --delete` deletes the object of a file it skips (a FIFO,
/// a link that loops): the run fails, and the object is gone. Here a
/// source that exists but cannot be read keeps its object (said on
/// stderr); only a source that is really gone deletes it.
#[test]
fn delete_spares_objects_whose_source_could_not_be_read() {
    let Some(env) = env() else { return };
    write(&env.path("src"), "a", b"a");
    write(&env.path("src"), "fifo", b"was a file");
    write(&env.path("src"), "dir/in", b"in");
    env.ok(&["sync", "src", &env.uri("p"), "--key", &env.key_id]);
    std::fs::remove_file(env.path("src/fifo")).unwrap();
    crate::special::mkfifo(&env.path("src/fifo"));
    std::fs::remove_dir_all(env.path("src/dir")).unwrap();
    std::os::unix::fs::symlink(env.path("src"), env.path("src/dir")).unwrap();
    std::fs::remove_file(env.path("src/a")).unwrap();
    let args = [
        "sync",
        "src",
        &env.uri("p"),
        "--key",
        &env.key_id,
        "--delete",
    ];
    // A dry run says what the run would fail on, and fails as it would
    // (before: "kept ... (see below)", nothing below, exit 0).
    let dry = [&args[..], &["--dryrun"]].concat();
    let out = env.run(&dry);
    assert_status(&out, 1, &dry);
    let said = stderr(&out);
    assert!(said.contains("failed: fifo: not a regular file"), "{said}");
    assert!(said.contains("could not be read (dry run)"), "{said}");
    assert_eq!(keys(&env, "p/"), ["p/a", "p/dir/in", "p/fifo"]);
    let out = env.run(&args);
    assert_status(&out, 1, &["sync --delete with a FIFO"]);
    let said = stderr(&out);
    assert!(
        said.contains("warning: kept s3://") && said.contains("p/fifo"),
        "{said}"
    );
    // The FIFO's object stays, and those under dir/ (a link back to src
    // is not followed, but it is there); a's, whose file is gone, is
    // deleted.
    assert_eq!(keys(&env, "p/"), ["p/dir/in", "p/fifo"]);
}

/// LastModified keeps whole seconds. Before, a file modified later within
/// the second its object was written was taken as unchanged for good: the
/// backup stayed stale. Now the time the upload recorded decides (one
/// HEAD): the file changed is sent, the file as uploaded is not.
#[test]
fn sync_up_sees_a_change_within_the_second_of_the_upload() {
    let Some(env) = env() else { return };
    let prefix = env.uri("p");
    let args = ["sync", "src", &prefix, "--key", &env.key_id];
    let last_modified = || {
        let head = env.s3.head_object().bucket(&env.bucket).key("p/f").send();
        let head = block_on(head).unwrap();
        SystemTime::try_from(*head.last_modified().unwrap()).unwrap()
    };
    // A file whose time falls in the second its upload is written. The
    // file's time is set ahead, half-way into the second the upload is
    // expected to end in (from the last attempt's duration: a loaded
    // machine takes longer), and tried until the two agree.
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut took = Duration::from_millis(500);
    let within = (0..30)
        .find_map(|_| {
            let delete = env.s3.delete_object().bucket(&env.bucket).key("p/f").send();
            block_on(delete).unwrap();
            write(&env.path("src"), "f", b"abc");
            let start = SystemTime::now();
            let aim =
                UNIX_EPOCH + Duration::from_secs(secs(start + took)) + Duration::from_millis(500);
            set_mtime(&env.path("src/f"), aim);
            env.ok(&args);
            took = start.elapsed().unwrap();
            (secs(last_modified()) == secs(aim)).then_some(aim)
        })
        .expect("an upload within the second of its file's time");
    let out = env.ok(&args);
    assert_eq!(stdout(&out), "", "the same file, its time recorded");
    // Changed (same size) just after: sent.
    std::fs::write(env.path("src/f"), b"xyz").unwrap();
    set_mtime(&env.path("src/f"), within + Duration::from_millis(1));
    let out = env.ok(&args);
    assert!(stdout(&out).starts_with("upload: "), "{}", stdout(&out));
    env.ok(&["cp", &env.uri("p/f"), "back"]);
    assert_eq!(std::fs::read(env.path("back")).unwrap(), b"xyz");
}

/// An object at the destination that is not encrypted (neither atrest's
/// nor the S3 Encryption Client's) is no copy of the file: a sync up
/// replaces it even when it is newer and of the file's size, and a sync
/// down fails on it rather than calling the local file up to date.
#[test]
fn a_plaintext_object_is_never_up_to_date() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "notes.txt", b"four");
    set_mtime(
        &src.join("notes.txt"),
        SystemTime::now() - Duration::from_secs(86_400),
    );
    env.put_raw("p/notes.txt", b"four".to_vec());
    let out = env.ok(&["sync", "src", &env.uri("p/"), "--key", &env.key_id]);
    assert!(stderr(&out).contains("0 up to date"), "{}", stderr(&out));
    let header = crate::rewrap::header(&env.get_raw("p/notes.txt"));
    assert_eq!(header.version(), 2, "the object is encrypted now");
    // A re-run finds it current.
    let out = env.ok(&["sync", "src", &env.uri("p/"), "--key", &env.key_id]);
    assert!(stderr(&out).contains("1 up to date"), "{}", stderr(&out));

    env.put_raw("p/notes.txt", b"four".to_vec());
    let args = ["sync", &env.uri("p/"), "src"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    assert!(
        stderr(&out).contains("not an atrest object"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(src.join("notes.txt")).unwrap(), b"four");
}

#[test]
fn sync_between_prefixes_copies_inside_s3_only_what_changed() {
    let Some(env) = env() else { return };
    let src = env.path("tree");
    for (rel, len) in [("a.txt", 10), ("sub/b.bin", 70_000), ("x.tmp", 3)] {
        write(&src, rel, &sample(len, len as u64));
    }
    env.ok(&["cp", "-r", "tree", &env.uri("src"), "--key", &env.key_id]);
    env.put_raw("dst/gone", b"old".to_vec());
    env.put_raw("dst/keep.tmp", b"filtered out".to_vec());
    let (from, to) = (env.uri("src"), env.uri("dst"));
    let sync = |extra: &[&str]| {
        let args = [&["sync", &from, &to, "--exclude", "*.tmp"][..], extra].concat();
        let proxy = Proxy::start(&env.endpoint);
        let out = via(&env, &proxy, &args);
        (stdout(&out), stderr(&out), proxy)
    };

    let (said, _, _) = sync(&["--delete", "--dryrun"]);
    assert_eq!(
        said,
        format!(
            "(dryrun) copy: {0}/a.txt to {1}/a.txt\n(dryrun) copy: {0}/sub/b.bin to {1}/sub/b.bin\n(dryrun) delete: {1}/gone\n",
            env.uri("src"),
            env.uri("dst")
        )
    );
    assert_eq!(keys(&env, "dst/"), ["dst/gone", "dst/keep.tmp"]);

    let (said, _, proxy) = sync(&["--delete"]);
    assert_eq!(said.matches("copy: ").count(), 2, "{said}");
    assert!(said.contains(&format!("delete: {to}/gone\n")), "{said}");
    assert_eq!(
        keys(&env, "dst/"),
        ["dst/a.txt", "dst/keep.tmp", "dst/sub/b.bin"]
    );
    // Copied inside S3: nothing downloaded, no part uploaded, no key asked;
    // the traffic bound shows no 70 KB body went up either (the proxy counts
    // CopyObject as a PUT).
    assert_eq!(proxy.seen(Op::GetObject) + proxy.seen(Op::GetLaterRange), 0);
    assert_eq!(proxy.seen(Op::UploadPart), 0);
    assert_eq!(proxy.seen(Op::Kms), 0);
    let (sent, received) = proxy.traffic();
    assert!(
        sent + received < 64 << 10,
        "{sent} sent, {received} received"
    );
    env.ok(&["cp", &env.uri("dst/sub/b.bin"), "b.back"]);
    assert_eq!(
        std::fs::read(env.path("b.back")).unwrap(),
        sample(70_000, 70_000)
    );

    // Unchanged: nothing copied.
    let (said, told, _) = sync(&["--delete"]);
    assert_eq!(said, "");
    assert!(told.contains("2 up to date"), "{told}");

    // Rewritten later with the same length: copied again (LastModified
    // keeps whole seconds).
    std::thread::sleep(Duration::from_millis(1100));
    write(&src, "a.txt", b"0123456789");
    env.ok(&[
        "cp",
        "tree/a.txt",
        &env.uri("src/a.txt"),
        "--key",
        &env.key_id,
    ]);
    let (said, _, _) = sync(&[]);
    assert_eq!(said, format!("copy: {from}/a.txt to {to}/a.txt\n"));
    env.ok(&["cp", &env.uri("dst/a.txt"), "a.back"]);
    assert_eq!(std::fs::read(env.path("a.back")).unwrap(), b"0123456789");
    let (said, _, _) = sync(&["--size-only"]);
    assert_eq!(said, "");
    // --json: the copy's line and the summary, nothing else.
    std::thread::sleep(Duration::from_millis(1100));
    env.ok(&[
        "cp",
        "tree/a.txt",
        &env.uri("src/a.txt"),
        "--key",
        &env.key_id,
    ]);
    let (said, _, _) = sync(&["--json"]);
    let lines: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert_eq!(
        (&lines[0]["action"], &lines[0]["status"]),
        (&"copy".into(), &"done".into())
    );
    assert_eq!(
        (&lines[1]["type"], &lines[1]["objects"]),
        (&"summary".into(), &1.into())
    );

    // Nested prefixes, and flags that encrypt or decrypt, are refused.
    for (args, needle) in [
        (vec!["sync", &from, &env.uri("src/copy")], "overlap"),
        (vec!["sync", &env.uri(""), &to], "overlap"),
        (
            vec!["sync", &from, &to, "--key", &env.key_id],
            "--key applies to uploads, not to copies",
        ),
    ] {
        let out = env.run(&args);
        assert_status(&out, 2, &args);
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(keys(&env, "src/").len(), 3);
}

/// With `--json` a sync prints only JSON lines: what a dry run would
/// transfer and delete, and in a real run each deletion too.
#[test]
fn json_sync_reports_dry_runs_and_deletions_as_lines() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "a", b"a");
    env.put_raw("p/gone", b"old".to_vec());
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = env.ok(args);
        let said = stdout(&out);
        said.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let fields = |v: &serde_json::Value| {
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        (field("action"), field("destination"), field("status"))
    };
    let up = [
        "sync",
        "src",
        &env.uri("p"),
        "--key",
        &env.key_id,
        "--delete",
        "--json",
    ];
    let dry = lines(&[&up[..], &["--dryrun"]].concat());
    let (gone, a) = (env.uri("p/gone"), env.uri("p/a"));
    assert_eq!(
        dry.iter().map(fields).collect::<Vec<_>>(),
        [
            ("upload".into(), a.clone(), "dryrun".into()),
            (String::new(), String::new(), String::new()),
            ("delete".into(), gone.clone(), "dryrun".into())
        ]
    );
    assert_eq!(dry[1]["type"], "summary", "{dry:?}");
    assert_eq!(keys(&env, "p/"), ["p/gone"]);
    let run = lines(&up);
    let actions: Vec<_> = run.iter().map(fields).collect();
    assert!(
        actions.contains(&("upload".into(), a, "done".into())),
        "{run:?}"
    );
    assert!(
        actions.contains(&("delete".into(), gone, "done".into())),
        "{run:?}"
    );
    // Deletions run after the transfers, so their lines follow the summary.
    let summary = run.iter().position(|v| v["type"] == "summary").unwrap();
    assert_eq!(fields(&run[summary + 1]).0, "delete", "{run:?}");
    // Down: a local file deleted is named as the run names it.
    std::fs::create_dir(env.path("down")).unwrap();
    write(&env.path("down"), "stale", b"x");
    let down = ["sync", &env.uri("p"), "down", "--delete", "--json"];
    let run = lines(&down);
    let actions: Vec<_> = run.iter().map(fields).collect();
    assert!(
        actions.contains(&("delete".into(), "down/stale".into(), "done".into())),
        "{run:?}"
    );
    assert!(!env.path("down/stale").exists());
}

/// A local side that is missing, a file or `-` is refused before anything
/// is listed (by `sync` and `cp -r`), and `--delete` then deletes nothing (a mistyped directory
/// must not empty the prefix).
#[test]
fn a_local_side_that_is_no_directory_is_refused_and_deletes_nothing() {
    let Some(env) = env() else { return };
    env.put_raw("p/kept", b"x".to_vec());
    std::fs::write(env.path("file"), b"f").unwrap();
    std::os::unix::fs::symlink("nowhere", env.path("dangling")).unwrap();
    let to = env.uri("p/");
    let refused = |args: &[&str], code: i32, needle: &str| {
        let out = env.run(args);
        assert_status(&out, code, args);
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("atrest: error: {needle}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    };
    for (dir, code, needle) in [
        ("missing", 3, "missing does not exist"),
        ("dangling", 3, "dangling does not exist"),
        ("file", 2, "file is not a directory: sync takes a directory"),
        ("-", 2, "sync takes a directory, not `-`"),
    ] {
        let args = ["sync", dir, &to, "--delete", "--key", &env.key_id];
        refused(&args, code, needle);
        let args = ["cp", "-r", dir, &to, "--key", &env.key_id];
        refused(&args, code, &needle.replace("sync", "--recursive"));
    }
    // Downloads make a missing directory, but not over a file.
    let args = ["sync", &to, "file", "--delete"];
    let out = env.run(&args);
    assert_status(&out, 2, &args);
    assert_eq!(keys(&env, "p/"), ["p/kept"]);
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"f");
}

/// `--exclude 'node_modules/'` matches the directory's name, not the files
/// below it (as in `aws s3`): they stay in. The walk skipped the whole
/// directory, and `sync --delete` then deleted every object below it.
/// Patterns are Python's fnmatch: `{a,b}` and `\` are plain characters.
#[test]
fn an_exclude_matching_only_a_directory_name_deletes_nothing_below_it() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let site = env.path("site");
    write(&site, "index.html", b"i");
    write(&site, "node_modules/lib/m.js", b"m");
    write(&site, "{a,b}", b"braces");
    env.ok(&["sync", "site", &env.uri("site/")]);
    let all = [
        "site/index.html",
        "site/node_modules/lib/m.js",
        "site/{a,b}",
    ];
    assert_eq!(keys(&env, "site/"), all);
    for pattern in ["node_modules/", "*/", "{a,b}x"] {
        let args = [
            "sync",
            "site",
            &env.uri("site/"),
            "--delete",
            "--exclude",
            pattern,
        ];
        env.ok(&args);
        assert_eq!(keys(&env, "site/"), all, "--exclude {pattern}");
    }
    // A brace is a brace: `{a,b}` leaves out the file of that name only.
    let out = env.ok(&["sync", &env.uri("site/"), "back", "--exclude", "{a,b}"]);
    let _ = out;
    assert!(env.path("back/index.html").exists());
    assert!(!env.path("back/{a,b}").exists());
    // ...and a pattern ending in `*` leaves out the whole directory.
    let args = [
        "sync",
        "site",
        &env.uri("site/"),
        "--delete",
        "--exclude",
        "node_modules/*",
    ];
    env.ok(&args);
    assert_eq!(keys(&env, "site/"), all);
}

/// An object whose key is no safe file name (`p//report.txt`, which `sync
/// dir s3://b/p//` writes) fails to download, and `--delete` keeps the
/// local file it stands for (it deleted it: neither copy was left).
#[test]
fn delete_keeps_a_file_whose_object_cannot_be_downloaded() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let src = env.path("src");
    write(&src, "report.txt", b"in s3");
    env.ok(&["sync", "src", &env.uri("p//")]);
    assert_eq!(keys(&env, "p/"), ["p//report.txt"]);
    write(&env.path("mine"), "report.txt", b"my local copy");
    write(&env.path("mine"), "other.txt", b"sourceless");
    let args = ["sync", &env.uri("p/"), "mine", "--delete"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(err.contains("warning: kept mine/report.txt"), "{err}");
    assert!(err.contains("not a safe relative path"), "{err}");
    assert_eq!(
        std::fs::read(env.path("mine/report.txt")).unwrap(),
        b"my local copy"
    );
    assert!(!env.path("mine/other.txt").exists());
}

/// A key ending in `/` is a folder marker only when empty (as for the AWS
/// CLI): one that holds data is verified, rewrapped and copied as any
/// other (it was left out of every -r command: a "complete" rewrap left
/// it under the old key), and its download fails rather than vanishing.
#[test]
fn an_object_named_like_a_folder_that_holds_data_is_not_skipped() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("f"), b"data").unwrap();
    env.ok(&["cp", "f", &env.uri("q/other")]);
    let object = env.get_raw("q/other");
    env.put_raw("q/dir/", object);
    env.put_raw("q/empty/", Vec::new());
    let out = env.ok(&["verify", "-r", &env.uri("q/"), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verified: Vec<&str> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(verified, [env.uri("q/dir/"), env.uri("q/other")], "{doc}");
    // From a Batch Operations manifest, which gives no sizes: the same (its
    // `dir/` rows were all taken for folder markers and left out).
    let rows = format!("{0},q/dir/\n{0},q/empty/\n{0},q/other\n", env.bucket);
    std::fs::write(env.path("rows.csv"), rows).unwrap();
    let args = [
        "verify",
        "-r",
        &env.uri("q/"),
        "--json",
        "--manifest",
        "rows.csv",
    ];
    let from_manifest: serde_json::Value = serde_json::from_slice(&env.ok(&args).stdout).unwrap();
    assert_eq!(from_manifest["objects"], doc["objects"], "{from_manifest}");
    env.ok(&["cp", "-r", &env.uri("q/"), &env.uri("q2/")]);
    assert_eq!(keys(&env, "q2/"), ["q2/dir/", "q2/other"]);
    let args = ["cp", "-r", &env.uri("q/"), "down"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    assert!(stderr(&out).contains("dir/"), "{}", stderr(&out));
    assert_eq!(std::fs::read(env.path("down/other")).unwrap(), b"data");
}

/// The temporary file of an interrupted download is never uploaded, sync
/// says so as cp -r does (it said nothing), and `--delete` keeps an object
/// of that name (it deleted it, the file being left out of the walk).
#[test]
fn sync_skips_partial_files_aloud_and_deletes_nothing_for_them() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let src = env.path("src");
    write(&src, "a.txt", b"a");
    write(&src, "d/.atrest-x1.partial", b"plaintext");
    env.put_raw("p/d/.atrest-x1.partial", b"someone's object".to_vec());
    let out = env.ok(&["sync", "src", &env.uri("p/"), "--delete"]);
    let err = stderr(&out);
    assert!(
        err.contains("warning: skipped d/.atrest-x1.partial"),
        "{err}"
    );
    assert_eq!(keys(&env, "p/"), ["p/a.txt", "p/d/.atrest-x1.partial"]);
    assert_eq!(env.get_raw("p/d/.atrest-x1.partial"), b"someone's object");
}

/// A future-dated file, synced up then down into the same directory, is
/// up to date (the time its upload recorded is its own): it was "kept:
/// newer than the object" with a warning. A same-size edit since the
/// upload is still kept, and said.
#[test]
fn a_future_dated_file_is_its_own_upload_not_a_newer_edit() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let src = env.path("src");
    write(&src, "f", b"future");
    write(&src, "g", b"edit me");
    let ahead = SystemTime::now() + Duration::from_secs(10 * 365 * 86_400);
    set_mtime(&src.join("f"), ahead);
    env.ok(&["sync", "src", &env.uri("fd/")]);
    write(&src, "g", b"edit 42");
    set_mtime(&src.join("g"), SystemTime::now() + Duration::from_secs(60));
    let out = env.ok(&["sync", &env.uri("fd/"), "src"]);
    let err = stderr(&out);
    assert!(!err.contains("kept src/f"), "{err}");
    assert!(err.contains("warning: kept src/g"), "{err}");
    assert_eq!(stdout(&out), "", "nothing downloaded");
    assert_eq!(std::fs::read(src.join("g")).unwrap(), b"edit 42");
}
