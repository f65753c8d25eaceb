//! SIGINT / SIGTERM mid-transfer: the upload is aborted, the temporary
//! output removed, the destination untouched, and the exit status 128+N.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

pub(crate) fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `check` for up to a minute.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn open_uploads(env: &Env) -> usize {
    block_on(env.s3.list_multipart_uploads().bucket(&env.bucket).send())
        .unwrap()
        .uploads()
        .len()
}

#[test]
fn sigint_during_upload_aborts_the_multipart_upload() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let mut child = env
        .atrest()
        .args(["encrypt", "-", &env.uri("interrupted"), "--part-size", "5"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // More than one part, then keep the pipe open: the upload is mid-way.
    stdin.write_all(&sample(12 * 1024 * 1024, 1)).unwrap();
    wait_for("the multipart upload to start", || open_uploads(&env) == 1);
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_status(&out, 130, &["encrypt interrupted"]);
    assert!(
        stderr(&out).contains("interrupted by SIGINT"),
        "{}",
        stderr(&out)
    );
    assert_eq!(open_uploads(&env), 0, "multipart upload left behind");
    let head = block_on(
        env.s3
            .head_object()
            .bucket(&env.bucket)
            .key("interrupted")
            .send(),
    );
    assert!(head.is_err(), "no object may appear");
}

/// `timeout -s INT` signals its child and then the child's process group:
/// the same SIGINT twice, a few microseconds apart. That is one signal
/// (the upload is aborted), not "Ctrl-C again" (which exits at once and
/// left the multipart upload behind).
#[test]
fn one_signal_delivered_twice_at_once_still_cleans_up() {
    let Some(env) = env() else { return };
    env.create_data_key();
    let mut child = env
        .atrest()
        .args(["encrypt", "-", &env.uri("twice"), "--part-size", "5"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&sample(12 * 1024 * 1024, 1)).unwrap();
    wait_for("the multipart upload to start", || open_uploads(&env) == 1);
    // Twice, 2 ms apart: far sooner than a second Ctrl-C, before the
    // abort is done, and late enough that the first was handled alone
    // (signals pending at once merge into one, which would prove nothing).
    // (sh's kill is a builtin: no process to start between the two.)
    let twice = format!("kill -INT {0}; sleep 0.002; kill -INT {0}", child.id());
    let status = std::process::Command::new("sh")
        .args(["-c", &twice])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_status(&out, 130, &["encrypt signalled twice at once"]);
    assert!(!stderr(&out).contains("again"), "{}", stderr(&out));
    assert_eq!(open_uploads(&env), 0, "multipart upload left behind");
}

#[test]
fn sigterm_during_download_leaves_the_destination_untouched() {
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("big"), sample(48 * 1024 * 1024, 2)).unwrap();
    env.ok(&["encrypt", "big", &env.uri("big")]);
    std::fs::write(env.path("dest"), b"precious").unwrap();
    let child = env
        .atrest()
        .args([
            "decrypt",
            &env.uri("big"),
            "dest",
            "--concurrency",
            "1",
            "--part-size",
            "5",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial = || env.files().iter().any(|f| f.ends_with(".partial"));
    wait_for("the temporary output to appear", partial);
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 143, &["decrypt interrupted"]);
    assert_eq!(std::fs::read(env.path("dest")).unwrap(), b"precious");
    assert!(!partial(), "temporary file left: {:?}", env.files());
}

/// Waits up to 30 s for `child` to exit; kills it and fails if it does not.
fn exits_soon(mut child: std::process::Child, what: &str) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{what}: still running 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Before, a data.key, manifest, key file or inspected file that was a
/// FIFO with no writer (or a data.key to write with no reader) was opened
/// on the command's own thread: the open
/// waited forever and the signal handler never ran, so one SIGTERM (from
/// `timeout`, systemd, Ctrl-C) did nothing. Now each wait is on the
/// blocking pool and one signal stops the command (a key file that is not
/// a regular file is refused at once, unopened).
#[test]
fn one_sigterm_stops_a_command_waiting_on_a_fifo() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("plain"), b"some plaintext").unwrap();
    let fifo = env.path("fifo");
    crate::special::mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    // (`create-data-key --data-key FIFO` waited for a reader too: it is now
    // refused at once, as a key file is.)
    let waits: [&[&str]; 5] = [
        &["encrypt", "plain", &env.uri("p"), "--data-key", f],
        &["encrypt", "plain", "local.atrest", "--data-key", f],
        &["encrypt", "-r", ".", &env.uri("dir/"), "--data-key", f],
        &["ls", "-r", &env.uri(""), "--manifest", f],
        &["inspect", f],
    ];
    for args in waits {
        let child = env
            .atrest()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Past start-up (the handler is installed), into the wait.
        std::thread::sleep(Duration::from_secs(2));
        signal(child.id(), "TERM");
        let out = exits_soon(child, &args.join(" "));
        assert_status(&out, 143, args);
    }
    let out = env.run(&["encrypt", "plain", "out", "--key-file", f]);
    assert_status(&out, 2, &["key file FIFO"]);
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// SIGINT while an object is copied inside S3 in parts, by `cp` or by
/// `sync --delete`: the multipart upload is aborted, no copy appears, and
/// sync deletes nothing.
#[test]
fn sigint_during_a_copy_in_parts_aborts_its_upload() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    env.put_raw("src/big", sample(12 * 1024 * 1024, 2));
    env.put_raw("dst/extra", b"kept".to_vec());
    let cp = ["cp", &env.uri("src/big"), &env.uri("dst/big")];
    let sync = ["sync", &env.uri("src"), &env.uri("dst"), "--delete"];
    for args in [&cp[..], &sync[..]] {
        let proxy = Proxy::start(&env.endpoint);
        // Every part's reply held: the copy is mid-way for long enough.
        proxy.add(Op::UploadPart, Fault::HoldResponse, 3);
        let child = env
            .atrest()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(args)
            .args(["--multipart-threshold", "5M", "--part-size", "5M"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the copy's multipart upload to start", || {
            open_uploads(&env) == 1
        });
        signal(child.id(), "INT");
        let out = child.wait_with_output().unwrap();
        assert_status(&out, 130, args);
        assert_eq!(
            open_uploads(&env),
            0,
            "{args:?}: multipart upload left behind"
        );
        assert_eq!(crate::bulk::keys(&env, "dst/"), ["dst/extra"], "{args:?}");
    }
}

/// SIGINT just after S3 completed the copy in parts that puts an upgraded
/// object in place, before its reply arrived: the abort finds no upload
/// (it is the object now), which is no failure to warn about; the object is
/// whole, upgraded, and reported so.
#[test]
fn sigint_racing_the_completion_of_a_copy_in_parts_warns_of_nothing() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    env.create_data_key();
    let data = sample(100_000, 3);
    std::fs::write(env.path("in"), &data).unwrap();
    env.ok(&["encrypt", "in", &env.uri("old"), "--format", "v1"]);
    let proxy = Proxy::start(&env.endpoint);
    // The completion among them (HEADs too: all are held).
    proxy.add(Op::OtherS3, Fault::HoldResponse, 100);
    let args = ["upgrade", &env.uri("old"), "--key", &env.key_id];
    let child = proxy
        .atrest(&env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("S3 to put the upgraded object in place", || {
        env.get_raw("old")[0] == 2
    });
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 130, &args);
    // (Held replies may make the cleanup long enough to be said: that
    // notice is no warning.)
    let err = stderr(&out);
    let said: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains(": cleaning up ("))
        .collect();
    assert_eq!(said, ["atrest: interrupted by SIGINT"], "{err}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(&format!("upgraded {}: v1 -> v2", env.uri("old"))),
        "{said}"
    );
    assert_eq!(open_uploads(&env), 0);
    assert_eq!(
        crate::bulk::keys(&env, ""),
        ["old"],
        "the temporary object is left"
    );
    env.ok(&["decrypt", &env.uri("old"), "out"]);
    assert_eq!(std::fs::read(env.path("out")).unwrap(), data);
}

/// The binary through `proxy`, waiting as long as any answer takes
/// (`--cli-read-timeout 0`).
fn waiting_forever(proxy: &crate::faults::Proxy, env: &Env, args: &[&str]) -> std::process::Child {
    let mut cmd = proxy.atrest(env);
    cmd.args(args).args(["--cli-read-timeout", "0"]);
    cmd.stderr(Stdio::piped()).spawn().unwrap()
}

/// Before, a signal while a command that cleans up after itself (rewrap
/// -r, upgrade -r, cp between s3:// locations, sync up) waited on a listing
/// or a HEAD had to wait for its answer too: from a silent server, its
/// time-outs (forever with --cli-read-timeout 0). Now nothing begun is
/// awaited, and the command stops at once.
#[test]
fn a_signal_during_a_stalled_listing_or_head_stops_at_once() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    std::fs::create_dir(env.path("up")).unwrap();
    std::fs::write(env.path("up/a"), b"a").unwrap();
    env.ok(&["cp", "-r", "up", &env.uri("p/"), "--key", &env.key_id]);
    let proxy = Proxy::start(&env.endpoint);
    proxy.add(Op::OtherS3, Fault::Stall, 1000);
    let (prefix, object) = (env.uri("p/"), env.uri("p/a"));
    let key = &env.key_id;
    for args in [
        &["rewrap", "-r", &prefix, "--to-key", key][..],
        &["upgrade", "-r", &prefix],
        &["cp", "-r", &prefix, &env.uri("q/")],
        &["cp", &object, &env.uri("q/a")],
        &["sync", "up", &prefix, "--key", key, "--delete"],
    ] {
        let before = proxy.seen(Op::OtherS3);
        let child = waiting_forever(&proxy, &env, args);
        wait_for("the stalled request", || proxy.seen(Op::OtherS3) > before);
        signal(child.id(), "INT");
        let out = exits_soon(child, &args.join(" "));
        assert_status(&out, 130, args);
    }
    assert_eq!(crate::bulk::keys(&env, ""), ["p/a"]);
}

/// Before, `sync --delete` up went on to its deletions after a signal had
/// stopped its uploads: Ctrl-C on a sync to the wrong prefix still
/// deleted what the directory lacked there.
#[test]
fn a_signal_during_sync_up_deletes_nothing() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    env.put_raw("p/extra", b"theirs".to_vec());
    std::fs::create_dir(env.path("up")).unwrap();
    std::fs::write(env.path("up/a"), b"a").unwrap();
    let proxy = Proxy::start(&env.endpoint);
    proxy.add(Op::Kms, Fault::Stall, 1000);
    let args = [
        "sync",
        "up",
        &env.uri("p/"),
        "--key",
        &env.key_id,
        "--delete",
    ];
    let child = waiting_forever(&proxy, &env, &args);
    wait_for("the KMS call", || proxy.seen(Op::Kms) > 0);
    signal(child.id(), "INT");
    let out = exits_soon(child, "sync --delete");
    assert_status(&out, 130, &args);
    assert_eq!(crate::bulk::keys(&env, ""), ["p/extra"]);
    assert_eq!(proxy.seen(Op::DeleteObject), 0);
}

/// A signal while the completion of an upload is on its way: S3 completes
/// it, and the abort then finds no upload. Before, the exit said only
/// "interrupted", as if nothing had been written; now it says the object
/// was written (the exit status is still the signal's).
#[test]
fn sigint_racing_the_completion_of_an_upload_says_the_object_is_written() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    let data = sample((11 << 20) + 1, 9);
    std::fs::write(env.path("in"), &data).unwrap();
    let proxy = Proxy::start(&env.endpoint);
    // The completion's reply (the only other S3 request) is held.
    proxy.add(Op::OtherS3, Fault::HoldResponse, 100);
    let uri = env.uri("obj");
    let args = ["cp", "in", &uri, "--key", &env.key_id, "--part-size", "5"];
    let child = proxy
        .atrest(&env)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("S3 to complete the upload", || {
        crate::bulk::keys(&env, "") == ["obj"]
    });
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 130, &args);
    let said = stderr(&out);
    assert!(
        said.contains(&format!("warning: {uri} was written all the same")),
        "{said}"
    );
    assert_eq!(open_uploads(&env), 0);
    env.ok(&["cp", &uri, "out"]);
    assert!(std::fs::read(env.path("out")).unwrap() == data);
}

/// SIGINT while `rewrap -r` waits for the answer to an object's PutObject,
/// which S3 has already applied: before, nothing was printed (exit 130),
/// though that object was rewrapped. Now the objects done before the
/// signal are reported, then the signal; the rest are as they were.
#[test]
fn an_interrupted_rewrap_reports_the_objects_it_rewrote() {
    use crate::faults::{Fault, Op, Proxy};
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"some text").unwrap();
    for name in ["r/a", "r/b", "r/c"] {
        env.ok(&["encrypt", "in", &env.uri(name)]);
    }
    let before = |name: &str| env.get_raw(name);
    let (a, b, c) = (before("r/a"), before("r/b"), before("r/c"));
    let (_, new_arn) = crate::rewrap::second_key(&env);
    let proxy = Proxy::start(&env.endpoint);
    proxy.add(Op::PutObject, Fault::HoldResponse, 1);
    let args = [
        "rewrap",
        "-r",
        &env.uri("r/"),
        "--to-key",
        &new_arn,
        "--jobs",
        "1",
    ];
    let child = proxy
        .atrest(&env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("S3 to take the first rewrite", || env.get_raw("r/a") != a);
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 130, &args);
    let said = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        said.starts_with(&format!("rewrapped {}", env.uri("r/a"))),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        stderr(&out).ends_with("atrest: interrupted by SIGINT\n"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        (env.get_raw("r/b"), env.get_raw("r/c")),
        (b.clone(), c.clone())
    );

    // The same with --json: the document says it was interrupted (it read
    // as a whole run, only the exit status telling).
    proxy.add(Op::PutObject, Fault::HoldResponse, 1);
    let child = proxy
        .atrest(&env)
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("S3 to take the next rewrite", || env.get_raw("r/b") != b);
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 130, &args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["interrupted"], true, "{doc}");
    assert_eq!(doc["rewrapped"], 1, "{doc}");
    assert_eq!(env.get_raw("r/c"), c);
    let out = env.ok(&[
        "rewrap",
        "-r",
        &env.uri("r/"),
        "--to-key",
        &new_arn,
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["interrupted"], false, "{doc}");
}

/// SIGINT while the PutObject of an upgrade's temporary object is on its
/// way (sent whole, not yet applied): before, atrest gave up on it and
/// deleted the temporary object first, and the PUT landed after, leaving
/// it in the bucket. Now the abort waits for that PUT's outcome, then
/// deletes: nothing is left but the original.
#[test]
fn an_interrupted_upgrade_leaves_no_temporary_object_behind() {
    use crate::faults::{Op, Proxy};
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), sample(100_000, 9)).unwrap();
    env.ok(&["encrypt", "in", &env.uri("old"), "--format", "v1"]);
    let original = env.get_raw("old");
    let proxy = Proxy::start(&env.endpoint);
    // The request is held in the proxy after the signal, then forwarded.
    let args = ["upgrade", &env.uri("old"), "--key", &env.key_id];
    let at = (Op::PutObject, 0, Duration::from_millis(1500));
    let out = interrupted_at(&proxy, &env, at, &args);
    assert_status(&out, 130, &args);
    // Whatever the proxy still held has reached S3 by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        crate::bulk::keys(&env, ""),
        ["old"],
        "the temporary object is left"
    );
    assert_eq!(env.get_raw("old"), original);
    assert_eq!(open_uploads(&env), 0);
}

/// SIGINT while `mv -r` inside S3 reads an object before copying it: the
/// copy that was stopped was reported as a failure ("failed: ... UploadPartCopy
/// ... stopped before it completed") of a one-object CopyObject. It is not
/// done, and not a failure: the run ends with the signal, the object where
/// it was.
#[test]
fn an_interrupted_move_inside_s3_reports_no_failure_for_what_it_stopped() {
    use crate::faults::{Op, Proxy};
    let Some(env) = env() else { return };
    env.create_data_key();
    std::fs::write(env.path("in"), b"to move").unwrap();
    for name in ["p/a", "p/b"] {
        env.ok(&["encrypt", "in", &env.uri(name)]);
    }
    let proxy = Proxy::start(&env.endpoint);
    // The listing goes through; the first HEAD of a copy is held, the
    // signal sent meanwhile.
    let args = ["mv", "-r", &env.uri("p/"), &env.uri("q/"), "--jobs", "1"];
    let at = (Op::OtherS3, 1, Duration::from_millis(500));
    let out = interrupted_at(&proxy, &env, at, &args);
    assert_status(&out, 130, &args);
    let err = stderr(&out);
    assert!(!err.contains("failed:"), "{err}");
    assert!(err.contains("0 failed"), "{err}");
    assert_eq!(crate::bulk::keys(&env, ""), ["p/a", "p/b"]);
}

/// Runs atrest with `args` through `proxy`, sending it SIGINT when the
/// proxy gets the request `at` names (its op, how many such requests go
/// first, and how long the proxy then holds that one); its output.
fn interrupted_at(
    proxy: &crate::faults::Proxy,
    env: &Env,
    at: (crate::faults::Op, usize, Duration),
    args: &[&str],
) -> std::process::Output {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let (op, before, hold) = at;
    let pid = Arc::new(AtomicU32::new(0));
    let signalled = pid.clone();
    for _ in 0..before {
        proxy.before(op, || {});
    }
    proxy.before(op, move || {
        // The pid once stored (the hook may run first: 0 would signal the
        // test's own process group).
        let pid = loop {
            match signalled.load(Ordering::SeqCst) {
                0 => std::thread::sleep(Duration::from_millis(10)),
                pid => break pid,
            }
        };
        signal(pid, "INT");
        std::thread::sleep(hold);
    });
    let child = proxy
        .atrest(env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pid.store(child.id(), Ordering::SeqCst);
    child.wait_with_output().unwrap()
}

/// A signal's cleanup that waits on a server gone silent (the abort of a
/// multipart upload: minutes of time-outs) says so after a few seconds,
/// and how to skip it; a second signal then exits at once, naming what may
/// remain. Before, nothing was said while it waited.
#[test]
fn a_cleanup_waiting_on_a_silent_server_says_so_and_a_second_signal_skips_it() {
    use crate::faults::{Fault, Op, Proxy};
    use std::io::BufRead;
    let Some(env) = env() else { return };
    std::fs::write(env.path("big"), sample(12 * 1024 * 1024, 4)).unwrap();
    let proxy = Proxy::start(&env.endpoint);
    proxy.add(Op::UploadPart, Fault::HoldResponse, 3);
    // The abort (a DELETE with uploadId) never answers.
    proxy.add(Op::OtherS3, Fault::Stall, 1000);
    let args = [
        "cp",
        "big",
        &env.uri("big"),
        "--key",
        &env.key_id,
        "--part-size",
        "5M",
    ];
    let mut child = waiting_forever(&proxy, &env, &args);
    wait_for("the multipart upload to start", || open_uploads(&env) == 1);
    signal(child.id(), "INT");
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let notice = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        notice.contains("SIGINT: cleaning up")
            && notice.contains("SIGINT again to stop without cleanup"),
        "{notice}"
    );
    signal(child.id(), "INT");
    let out = exits_soon(child, "the second SIGINT");
    assert_status(&out, 130, &args);
    let last = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        last.contains("again: stopping without cleanup") && last.contains("list-multipart-uploads"),
        "{last}"
    );
}
