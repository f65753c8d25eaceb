//! `atrest mv`: `cp`, then the source removed, as `aws s3 mv` does; but
//! only once the copy is whole, and only as the source was read.

use crate::bulk::{keys, write};
use crate::faults::{Op, Proxy};
use crate::harness::*;

fn exists(env: &Env, key: &str) -> bool {
    block_on(env.s3.head_object().bucket(&env.bucket).key(key).send()).is_ok()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn mv_moves_each_way_and_removes_each_source() {
    let Some(env) = env() else { return };
    let data = sample(300_000, 7);
    std::fs::write(env.path("a.bin"), &data).unwrap();

    // Up: the file goes, the object decrypts to it.
    let out = env.ok(&["mv", "a.bin", &env.uri("in/"), "--key", &env.key_id]);
    assert_eq!(
        stdout(&out),
        format!("move: a.bin to {}\n", env.uri("in/a.bin"))
    );
    assert!(!env.path("a.bin").exists());
    // Inside S3: the source object goes.
    env.ok(&["mv", &env.uri("in/a.bin"), &env.uri("kept/a.bin")]);
    assert_eq!(keys(&env, ""), ["kept/a.bin"]);
    // Down: the object goes, the file is the plaintext.
    let out = env.ok(&["mv", &env.uri("kept/a.bin"), "back.bin"]);
    assert_eq!(
        stdout(&out),
        format!("move: {} to back.bin\n", env.uri("kept/a.bin"))
    );
    assert_eq!(std::fs::read(env.path("back.bin")).unwrap(), data);
    assert!(keys(&env, "").is_empty());

    // Trees, each way: every file and object goes; directories stay, as
    // `aws s3 mv --recursive` leaves them.
    let src = env.path("tree");
    write(&src, "x", b"x");
    write(&src, "sub/y", b"y");
    let out = env.ok(&["mv", "-r", "tree", &env.uri("t"), "--key", &env.key_id]);
    assert_eq!(
        stdout(&out).matches("move: ").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("moved 2 files"), "{}", stderr(&out));
    assert!(src.join("sub").is_dir() && !src.join("x").exists() && !src.join("sub/y").exists());
    env.ok(&["mv", "-r", &env.uri("t"), &env.uri("u")]);
    assert_eq!(keys(&env, ""), ["u/sub/y", "u/x"]);
    let out = env.ok(&["mv", "-r", &env.uri("u"), "down", "--json"]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines[..2].iter().all(|l| l["action"] == "move"),
        "{lines:?}"
    );
    assert!(keys(&env, "").is_empty());
    assert_eq!(std::fs::read(env.path("down/sub/y")).unwrap(), b"y");

    // A dry run and a skipped destination move nothing.
    std::fs::write(env.path("b"), b"b").unwrap();
    let out = env.ok(&["mv", "b", &env.uri("b"), "--key", &env.key_id, "--dryrun"]);
    assert_eq!(
        stdout(&out),
        format!("(dryrun) move: b to {}\n", env.uri("b"))
    );
    env.put_raw("b", b"theirs".to_vec());
    let args = [
        "mv",
        "b",
        &env.uri("b"),
        "--key",
        &env.key_id,
        "--no-overwrite",
    ];
    env.ok(&args);
    assert!(env.path("b").exists());
    assert_eq!(env.get_raw("b"), b"theirs");
}

#[test]
fn mv_refuses_what_would_lose_the_source_with_one_line() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("f"), b"f").unwrap();
    env.ok(&["cp", "f", &env.uri("d/o"), "--key", &env.key_id]);
    let fifo = env.path("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (o, d) = (env.uri("d/o"), env.uri("d/"));
    std::fs::create_dir_all(env.path("mkd/o")).unwrap();
    let cases: [(&[&str], &str); 10] = [
        // cp cannot write there either: a directory, said as such.
        (&["mv", &o, "mkd/"], "mkd/o: it is a directory"),
        (&["mv", &o, &o], "onto itself"),
        // Into the "directory" it is in: the same key.
        (&["mv", &o, &d], "onto itself"),
        (&["mv", "-r", &d, &env.uri("d/sub")], "overlap"),
        (&["mv", "-", &o], "not streams"),
        (&["mv", &o, "-"], "not streams"),
        (
            &["mv", &o, "part", "--range", "0-0"],
            "mv moves whole objects",
        ),
        (&["mv", &o, "/dev/null"], "/dev/null is not one: use cp"),
        // A stream, as `-` is, even when the shell's stdout is a file.
        (&["mv", &o, "/dev/stdout"], "/dev/stdout is a stream"),
        (
            &["mv", "fifo", &o, "--key", &env.key_id],
            "fifo is not one: use cp",
        ),
    ];
    for (args, needle) in cases {
        let out = env.run(args);
        assert_status(&out, 2, args);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(exists(&env, "d/o"));
    assert!(env.path("f").exists());
}

/// What changed after it was read is someone's newer data: a file written
/// during its upload, or an object replaced before its delete, stays (exit
/// 1, saying so), and so does the copy made of the older version.
#[test]
fn mv_keeps_a_source_changed_after_it_was_read() {
    let Some(env) = env() else { return };
    let proxy = Proxy::start(&env.endpoint);
    let via = |args: &[&str]| {
        env.atrest()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(args)
            .output()
            .unwrap()
    };

    std::fs::write(env.path("f"), b"old").unwrap();
    let path = env.path("f");
    proxy.before(Op::PutObject, move || {
        std::fs::write(path, b"newer").unwrap()
    });
    let args = ["mv", "f", &env.uri("f"), "--key", &env.key_id];
    let out = via(&args);
    assert_status(&out, 1, &args);
    assert!(
        stderr(&out).contains("f changed after it was read: kept"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(env.path("f")).unwrap(), b"newer");
    env.ok(&["cp", &env.uri("f"), "f.old"]);
    assert_eq!(std::fs::read(env.path("f.old")).unwrap(), b"old");

    // Replaced between its download (or copy) and its delete.
    let original = env.get_raw("f");
    for (to, back) in [("down", "down"), (env.uri("copy").as_str(), "copy.back")] {
        env.put_raw("f", original.clone());
        let (s3, bucket) = (env.s3.clone(), env.bucket.clone());
        proxy.before(Op::DeleteObject, move || {
            let put = s3.put_object().bucket(bucket).key("f");
            block_on(put.body(b"theirs".to_vec().into()).send()).unwrap();
        });
        let args = ["mv", &env.uri("f"), to];
        let out = via(&args);
        assert_status(&out, 1, &args);
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "downloaded {}, but did not delete it",
                env.uri("f")
            )) || err.contains(&format!("copied {}, but did not delete it", env.uri("f"))),
            "{err}"
        );
        assert_eq!(env.get_raw("f"), b"theirs", "{to}");
        if back != "down" {
            env.ok(&["cp", to, back]);
        }
        assert_eq!(std::fs::read(env.path(back)).unwrap(), b"old", "{to}");
    }
}

/// A file rewritten at the same length while it is read (its first part
/// sent, the rest still to read) is not uploaded: before, `cp` made an
/// object of its old and new bytes mixed and exited 0, and `mv` left that
/// object, saying it was "the older version". Now the upload is aborted
/// before completion, and the file stays.
#[test]
fn a_file_rewritten_while_it_is_read_is_not_uploaded() {
    use std::os::unix::fs::FileExt;
    let Some(env) = env() else { return };
    let proxy = Proxy::start(&env.endpoint);
    let data = sample(12 * 1024 * 1024, 11);
    for verb in ["cp", "mv"] {
        std::fs::write(env.path("f"), &data).unwrap();
        let path = env.path("f");
        // One part in flight: the first part's request comes while the
        // last 2 MiB are still unread.
        proxy.before(Op::UploadPart, move || {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.write_all_at(b"rewritten", 0).unwrap();
        });
        let uri = env.uri(&format!("torn-{verb}"));
        let args = [
            verb,
            "f",
            &uri,
            "--key",
            &env.key_id,
            "--part-size",
            "5M",
            "--concurrency",
            "1",
        ];
        let out = proxy.atrest(&env).args(args).output().unwrap();
        assert_status(&out, 1, &args);
        let err = stderr(&out);
        assert!(
            err.contains("it changed while it was read") && err.contains("nothing was uploaded"),
            "{err}"
        );
        assert!(
            !exists(&env, &format!("torn-{verb}")),
            "{verb}: an object was made"
        );
        assert!(env.path("f").exists(), "{verb}: the file is gone");
        let left = crate::interrupt::open_uploads(&env);
        assert_eq!(left, 0, "{verb}: a multipart upload was left");
    }
}

/// An S3 Encryption Client object moves with its instruction file: both
/// go, and the moved object still decrypts.
#[test]
fn mv_takes_an_s3_encryption_client_instruction_file_along() {
    let Some(env) = env() else { return };
    let data = sample(70_000, 3);
    std::fs::write(env.path("p"), &data).unwrap();
    let args = [
        "cp",
        "p",
        &env.uri("s/p"),
        "--key",
        &env.key_id,
        "--format",
        "s3ec-v3",
    ];
    env.ok(&args);
    crate::s3ec::move_to_instruction_file(&env, "s/p");
    assert_eq!(keys(&env, "s/"), ["s/p", "s/p.instruction"]);

    env.ok(&["mv", &env.uri("s/p"), &env.uri("t/p")]);
    assert_eq!(keys(&env, ""), ["t/p", "t/p.instruction"]);
    env.ok(&["mv", "-r", &env.uri("t"), "down"]);
    assert!(keys(&env, "").is_empty());
    assert_eq!(std::fs::read(env.path("down/p")).unwrap(), data);
}
