//! `--recursive`: directories to prefixes and back, concurrently, with
//! filters, a summary, and failures that do not stop the other files.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::harness::*;
use crate::special::*;

pub fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Every key in the bucket under `prefix`, sorted.
pub fn keys(env: &Env, prefix: &str) -> Vec<String> {
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
    let summary = json_summary(&out.stdout);
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

    // As in the AWS CLI the last matching filter decides: everything
    // excluded, then sub/ taken back.
    env.ok(&[
        "decrypt",
        &env.uri("tree"),
        "only",
        "-r",
        "--exclude",
        "*",
        "--include",
        "sub/**",
    ]);
    assert!(env.path("only/sub/b.bin").exists());
    assert!(!env.path("only/a.txt").exists());
    // The other way round nothing is taken; --include alone takes all.
    let args = [
        "decrypt",
        &env.uri("tree"),
        "none",
        "-r",
        "--include",
        "sub/**",
    ];
    env.ok(&[&args[..], &["--exclude", "*"]].concat());
    assert!(
        !env.path("none").exists()
            || std::fs::read_dir(env.path("none"))
                .unwrap()
                .next()
                .is_none()
    );
    env.ok(&args.map(|a| if a == "none" { "all" } else { a }));
    assert!(env.path("all/a.txt").exists() && env.path("all/sub/b.bin").exists());
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

/// A link to a directory is followed, as `aws s3 cp --recursive` follows
/// it (into a directory outside the tree too); one back to a directory
/// that holds it would never end, so it fails alone and the rest goes.
#[test]
fn links_to_directories_are_followed_and_a_loop_fails_alone() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "own/a", b"a");
    write(&env.path("elsewhere"), "deep/b", b"b");
    std::os::unix::fs::symlink(env.path("elsewhere"), src.join("linked")).unwrap();
    std::os::unix::fs::symlink("..", src.join("own/up")).unwrap();
    let args = ["cp", "-r", "src", &env.uri("p"), "--key", &env.key_id];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(
        err.contains("failed: own/up: a symbolic link to a directory that holds it"),
        "{err}"
    );
    assert_eq!(keys(&env, "p/"), ["p/linked/deep/b", "p/own/a"]);
    env.ok(&["cp", &env.uri("p/linked/deep/b"), "b.back"]);
    assert_eq!(std::fs::read(env.path("b.back")).unwrap(), b"b");
    // A sync finds both current; the loop's keys are not deleted.
    env.put_raw("p/own/up/x", b"kept".to_vec());
    let sync = [
        "sync",
        "src",
        &env.uri("p"),
        "--key",
        &env.key_id,
        "--delete",
    ];
    let out = env.run(&sync);
    assert_status(&out, 1, &sync);
    assert!(stderr(&out).contains("2 up to date"), "{}", stderr(&out));
    assert_eq!(keys(&env, "p/").len(), 3);
}

/// `--no-follow-symlinks`, as in the AWS CLI: links (to files and to
/// directories) are left out of the tree, so they go up not at all, and a
/// sync --delete takes the objects they once made.
#[test]
fn no_follow_symlinks_leaves_every_link_out() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "own/a", b"a");
    write(&env.path("elsewhere"), "deep/b", b"b");
    std::os::unix::fs::symlink(env.path("elsewhere"), src.join("linked")).unwrap();
    std::os::unix::fs::symlink("own/a", src.join("file-link")).unwrap();
    let up = |prefix: &str, extra: &[&str]| {
        let uri = env.uri(prefix);
        let mut args = vec!["cp", "-r", "src", &uri, "--key", &env.key_id];
        args.extend_from_slice(extra);
        env.ok(&args);
    };
    up("followed/", &[]);
    assert_eq!(
        keys(&env, "followed/"),
        [
            "followed/file-link",
            "followed/linked/deep/b",
            "followed/own/a"
        ]
    );
    up("plain/", &["--no-follow-symlinks"]);
    assert_eq!(keys(&env, "plain/"), ["plain/own/a"]);
    // The last of the pair decides, as clap's overrides do.
    up("again/", &["--no-follow-symlinks", "--follow-symlinks"]);
    assert_eq!(keys(&env, "again/").len(), 3);

    let uri = env.uri("followed/");
    let sync = [
        "sync",
        "src",
        &uri,
        "--delete",
        "--no-follow-symlinks",
        "--key",
        &env.key_id,
    ];
    let out = env.ok(&sync);
    let err = stderr(&out);
    assert!(err.contains("1 up to date"), "{err}");
    assert_eq!(keys(&env, "followed/"), ["followed/own/a"]);
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
    let summary = json_summary(&out.stdout);
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

/// Issue 19, item 2: a name that is not UTF-8 cannot become a key without
/// loss. Before, `\xff.bin` and `\xfe.bin` both became `\u{fffd}.bin` (one
/// object, one file lost) and the run reported two files encrypted.
#[test]
fn names_that_are_not_utf8_fail_alone_and_lose_nothing() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "nu/ok.txt", b"fine");
    for b in [0xff, 0xfe] {
        let name = [b, b'.', b'b', b'i', b'n'];
        std::fs::write(src.join("nu").join(OsStr::from_bytes(&name)), [b]).unwrap();
    }
    let args = ["encrypt", "src", &env.uri("p/"), "-r", "--key", &env.key_id];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    for name in [r"nu/\xff.bin", r"nu/\xfe.bin"] {
        assert!(
            err.contains(&format!("failed: {name}: ")) && err.contains("not valid UTF-8"),
            "{err}"
        );
    }
    assert!(
        err.contains("encrypted 1 file (4 bytes), 2 failed"),
        "{err}"
    );
    assert!(err.contains("2 of 3 files failed"), "{err}");
    assert_eq!(keys(&env, "p/"), ["p/nu/ok.txt"]);
}

/// A single file whose name is not UTF-8 goes to a key given in full, and
/// an object comes down to such a name, with `cp` (both sides parsed from
/// the raw argument) as with `encrypt`/`decrypt`. Before, `cp` refused the
/// argument itself ("invalid UTF-8 was detected"), as did `decrypt` for a
/// local IN.
#[test]
fn one_file_with_a_name_that_is_not_utf8_goes_up_and_comes_down() {
    let Some(env) = env() else { return };
    let up = OsStr::from_bytes(b"n\xff.txt");
    std::fs::write(env.path("x").with_file_name(up), b"raw name").unwrap();
    let run = |args: &[&OsStr]| env.atrest().args(args).output().unwrap();
    let os = OsStr::new;
    let to = env.uri("raw/n.txt");
    let out = run(&[os("cp"), up, os(&to), os("--key"), os(&env.key_id)]);
    assert_status(&out, 0, &["cp of a non-UTF-8 name to a full key"]);
    let down = OsStr::from_bytes(b"o\xfe.txt");
    let out = run(&[os("cp"), os(&to), down]);
    assert_status(&out, 0, &["cp to a non-UTF-8 name"]);
    assert_eq!(
        std::fs::read(env.path("x").with_file_name(down)).unwrap(),
        b"raw name"
    );
    // To a prefix the name would become the key: refused, one line.
    let out = run(&[
        os("cp"),
        up,
        os(&env.uri("raw/")),
        os("--key"),
        os(&env.key_id),
    ]);
    assert_status(&out, 2, &["cp of a non-UTF-8 name to a prefix"]);
    assert!(
        stderr(&out).contains(r"n\xff.txt is not valid UTF-8"),
        "{}",
        stderr(&out)
    );
    // A local object with such a name decrypts (and inspects).
    let enc = OsStr::from_bytes(b"e\xfd.atrest");
    let out = run(&[os("encrypt"), up, enc, os("--key"), os(&env.key_id)]);
    assert_status(&out, 0, &["local encrypt to a non-UTF-8 name"]);
    let out = run(&[os("decrypt"), enc, os("-")]);
    assert_status(&out, 0, &["local decrypt of a non-UTF-8 name"]);
    assert_eq!(out.stdout, b"raw name");
    assert_status(
        &run(&[os("inspect"), enc]),
        0,
        &["inspect a non-UTF-8 name"],
    );
}

/// Issue 19, item 4 (bulk part): FIFOs, sockets and devices in the tree
/// fail alone without being opened. Before, the FIFO's open() waited for a
/// writer forever, and the other files never went up.
#[test]
fn special_files_in_the_tree_are_skipped_without_opening_them() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "a.txt", b"regular");
    mkfifo(&src.join("fifo"));
    std::os::unix::fs::symlink("fifo", src.join("to-fifo")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let device = mknod_null(&src.join("null"));
    let mut cmd = env.atrest();
    cmd.args(["encrypt", "src", &env.uri("p/"), "-r", "--key", &env.key_id]);
    let out = output_within(&mut cmd, Duration::from_secs(60));
    assert_status(&out, 1, &["encrypt -r with special files"]);
    let err = stderr(&out);
    for (name, kind) in [
        ("fifo", "a FIFO"),
        ("to-fifo", "a FIFO"),
        ("sock", "a socket"),
    ] {
        assert!(
            err.contains(&format!("failed: {name}: not a regular file ({kind})")),
            "{err}"
        );
    }
    if device {
        assert!(
            err.contains("failed: null: not a regular file (a character device)"),
            "{err}"
        );
    }
    assert!(err.contains("encrypted 1 file (7 bytes)"), "{err}");
    assert_eq!(keys(&env, "p/"), ["p/a.txt"]);

    // Decrypting: a FIFO where an object would go fails alone, unopened
    // (opening it to write would wait for a reader).
    env.put_raw("p/b.txt", b"not atrest, never fetched".to_vec());
    std::fs::create_dir(env.path("back")).unwrap();
    mkfifo(&env.path("back/b.txt"));
    let mut cmd = env.atrest();
    cmd.args(["decrypt", &env.uri("p/"), "back", "-r"]);
    let out = output_within(&mut cmd, Duration::from_secs(60));
    assert_status(&out, 1, &["decrypt -r onto a FIFO"]);
    let err = stderr(&out);
    assert!(
        err.contains("failed: b.txt: not a regular file (a FIFO)"),
        "{err}"
    );
    assert_eq!(std::fs::read(env.path("back/a.txt")).unwrap(), b"regular");
}

/// Gives everyone read access to `dir` and what is below it, so that the
/// binary run as nobody sees the test's files.
fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            open_to_all(&path);
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Issue 19, item 5: before, one unreadable subdirectory aborted the whole
/// run ("cannot list .: Permission denied", naming the root), and
/// `--exclude 'noperm/**'` did not help. Run as nobody: root reads anything.
#[test]
fn an_unreadable_subdirectory_fails_alone_and_excluded_ones_are_not_read() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "a.txt", b"aaa");
    write(&src, "sub/b.txt", b"bbbb");
    write(&src, "noperm/secret.txt", b"hidden");
    open_to_all(env.dir.path());
    let noperm = src.join("noperm");
    std::fs::set_permissions(&noperm, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = |prefix: &str, extra: &[&str]| {
        let mut cmd = env.atrest();
        cmd.args(["encrypt", "src", &env.uri(prefix), "-r"])
            .args(["--key", &env.key_id])
            .args(extra);
        unprivileged(&cmd).output().unwrap()
    };

    let out = run("p/", &[]);
    assert_status(&out, 1, &["encrypt -r with an unreadable subdirectory"]);
    let err = stderr(&out);
    assert!(err.contains("failed: noperm/: cannot list "), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        err.contains("encrypted 2 files (7 bytes), 1 failed"),
        "{err}"
    );
    assert_eq!(keys(&env, "p/"), ["p/a.txt", "p/sub/b.txt"]);

    let out = run("q/", &["--exclude", "noperm/**"]);
    assert_status(&out, 0, &["encrypt -r --exclude 'noperm/**'"]);
    let err = stderr(&out);
    assert!(!err.contains("noperm"), "{err}");
    assert!(
        err.contains("encrypted 2 files (7 bytes), 0 failed"),
        "{err}"
    );
    assert_eq!(keys(&env, "q/"), ["q/a.txt", "q/sub/b.txt"]);
    std::fs::set_permissions(&noperm, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Issue 19, item 7: a key holding ESC broke ListObjectsV2's XML reply, and
/// with it the whole `decrypt -r`. Keys are listed URL-encoded now.
#[test]
fn keys_with_control_characters_decrypt_and_are_escaped_in_messages() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"colourful").unwrap();
    let keys = ["z1/esc\x1b[31mred", "z1/a b+c%20.txt", "z1/caf\u{e9}"];
    for key in keys {
        env.ok(&["encrypt", "f", &env.uri(key), "--key", &env.key_id]);
    }
    env.put_raw("z1/bad\x1bnot-atrest", b"plain".to_vec());
    let args = ["decrypt", &env.uri("z1/"), "out", "-r"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(!err.contains('\x1b'), "a raw ESC reached stderr: {err:?}");
    assert!(
        err.contains("failed: bad\\u{1b}not-atrest: cannot decrypt"),
        "{err}"
    );
    assert!(err.contains("decrypted 3 files"), "{err}");
    for key in keys {
        let name = key.strip_prefix("z1/").unwrap();
        assert_eq!(
            std::fs::read(env.path("out").join(name)).unwrap(),
            b"colourful"
        );
    }
}

/// Issue 19, item 10 (bulk part): without data.key, one error up front,
/// not one per file.
#[test]
fn recursive_without_a_data_key_fails_once_up_front() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    for i in 0..3 {
        write(&src, &format!("f{i}"), b"x");
    }
    let args = ["encrypt", "src", &env.uri("p/"), "-r"];
    let out = env.run(&args);
    assert_status(&out, 3, &args);
    let err = stderr(&out);
    assert_eq!(err.matches("create-data-key").count(), 1, "{err}");
    assert!(!err.contains("failed:"), "{err}");
    assert!(keys(&env, "p/").is_empty());
    // A dry run needs no key: it says what it would upload, as one file's
    // dry run does, and sync's.
    for args in [
        &[&args[..], &["--dryrun"]].concat()[..],
        &["cp", "src/f0", &env.uri("p/f0"), "--dryrun"],
        &["sync", "src", &env.uri("p/"), "--dryrun"],
    ] {
        let out = env.ok(args);
        let text = String::from_utf8_lossy(&out.stdout);
        let want = format!("(dryrun) upload: src/f0 to {}\n", env.uri("p/f0"));
        assert!(text.starts_with(&want), "{text}");
    }
    assert!(keys(&env, "p/").is_empty());
}

/// Issue 19, item 11 (bulk part): with -q only errors are printed, as
/// `aws s3 cp --quiet`; before, the summary was printed anyway.
#[test]
fn quiet_recursive_runs_print_only_errors() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let src = env.path("src");
    write(&src, "a", b"1");
    write(&src, "b/c", b"22");
    let out = env.ok(&["encrypt", "src", &env.uri("p/"), "-r", "-q"]);
    assert_eq!(stderr(&out), "");
    let out = env.ok(&["decrypt", &env.uri("p/"), "back", "-r", "-q"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(std::fs::read(env.path("back/b/c")).unwrap(), b"22");

    env.put_raw("p/junk", b"not atrest".to_vec());
    let args = ["decrypt", &env.uri("p/"), "again", "-r", "-q"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(err.contains("failed: junk: "), "{err}");
    assert!(err.contains("1 of 3 files failed"), "{err}");
    assert!(!err.contains("decrypted 2 files"), "{err}");
}

/// Issue 19, "Also": a decryption killed with SIGKILL leaves its
/// `.atrest-*.partial` plaintext beside the target; `encrypt -r` must never
/// upload it.
#[test]
fn temporary_files_of_interrupted_decryptions_are_never_uploaded() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    write(&src, "a.txt", b"keep");
    write(&src, ".atrest-Ab12Cd.partial", b"plaintext left by SIGKILL");
    write(&src, "sub/.atrest-zz9YY8.partial", b"more of it");
    let out = env.ok(&["encrypt", "src", &env.uri("p/"), "-r", "--key", &env.key_id]);
    let err = stderr(&out);
    assert!(
        err.contains("warning: skipped .atrest-Ab12Cd.partial: ")
            && err.contains("warning: skipped sub/.atrest-zz9YY8.partial: "),
        "{err}"
    );
    assert!(
        err.contains("encrypted 1 file (4 bytes), 0 failed"),
        "{err}"
    );
    assert_eq!(keys(&env, "p/"), ["p/a.txt"]);
}

/// `--jobs 256` under a low soft limit of open files: atrest takes the
/// hard limit, so no file fails with "Too many open files" (248 of 300
/// did at a soft limit of 64).
#[test]
fn many_jobs_do_not_run_out_of_file_descriptors() {
    let Some(env) = env() else { return };
    let src = env.path("src");
    for i in 0..300 {
        write(&src, &format!("f{i}"), b"x");
    }
    let mut shell = env.atrest_under(&["sh", "-c", r#"ulimit -S -n 64 && exec "$0" "$@""#]);
    shell.args([
        "cp",
        "-r",
        "src",
        &env.uri("p/"),
        "--key",
        &env.key_id,
        "--jobs",
        "256",
    ]);
    let out = shell.output().unwrap();
    assert_status(&out, 0, &["cp -r --jobs 256 at a soft limit of 64 files"]);
    assert_eq!(keys(&env, "p/").len(), 300);
}
