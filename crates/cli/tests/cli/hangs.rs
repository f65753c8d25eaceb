//! An endpoint that accepts connections and never answers (a small silent
//! server on 127.0.0.1; moto always answers): every command ends with a
//! clear one-line error once the read timeout passes, and exits 130/143 at
//! once on SIGINT/SIGTERM while it waits, whatever it waits for.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fake::{finishes_within, signal, Silent, Unreachable};
use crate::harness::*;

/// A command whose every request goes to `silent`.
fn against(env: &Env, silent: &Silent, args: &[&str]) -> Command {
    let mut cmd = env.atrest();
    cmd.env("AWS_ENDPOINT_URL", &silent.url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_silent_endpoint_times_out_with_one_line() {
    let Some(env) = env() else { return };
    let silent = Silent::start();
    std::fs::write(env.path("in"), b"secret").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["inspect", "s3://b/k"], "no answer from S3"),
        (
            &["encrypt", "in", "s3://b/k", "--key", "alias/k"],
            "no answer from KMS",
        ),
        (&["decrypt", "s3://b/k", "out"], "no answer from S3"),
    ];
    for (args, needle) in cases {
        let start = Instant::now();
        let child = against(&env, &silent, args)
            .arg("--cli-read-timeout")
            .arg("1")
            .spawn()
            .unwrap();
        // 3 attempts of 1 s and the backoff between them.
        let out = finishes_within(child, Duration::from_secs(40), &args.join(" "));
        assert_status(&out, 1, args);
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("read timeout"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(start.elapsed() < Duration::from_secs(40));
    }
    assert!(!env.path("out").exists());
    let leftovers: Vec<String> = env.files().into_iter().filter(|f| f != "in").collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// A host that never completes the TCP handshake: --cli-connect-timeout
/// ends each attempt, and the command fails with one line, not a hang.
#[test]
fn an_endpoint_that_never_accepts_times_out_connecting() {
    let Some(env) = env() else { return };
    let unreachable = Unreachable::start();
    for args in [
        &["inspect", "s3://b/k"][..],
        &["decrypt", "s3://b/k", "out"],
    ] {
        let start = Instant::now();
        let child = env
            .atrest()
            .env("AWS_ENDPOINT_URL", &unreachable.url)
            .args(args)
            .args(["--cli-connect-timeout", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // 3 attempts of 1 s and the backoff between them; the default
        // read timeout (60 s) must not be what ends it.
        let out = finishes_within(child, Duration::from_secs(30), &args.join(" "));
        assert_status(&out, 1, args);
        let err = stderr(&out);
        assert!(err.contains("S3"), "{args:?}: {err}");
        assert!(err.contains("connect"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(start.elapsed() < Duration::from_secs(30));
    }
    assert!(!env.path("out").exists());
}

#[test]
fn timeouts_are_flags_with_documented_defaults() {
    let Some(env) = env() else { return };
    let help = String::from_utf8(env.ok(&["--help"]).stdout).unwrap();
    assert!(help.contains("--cli-connect-timeout"), "{help}");
    assert!(help.contains("--cli-read-timeout"), "{help}");
    assert!(help.contains("[default: 10]"), "{help}");
    assert!(help.contains("[default: 60]"), "{help}");
    let out = env.run(&["--cli-read-timeout", "soon", "inspect", "s3://b/k"]);
    assert_status(&out, 2, &["a read timeout that is not a number"]);
}

/// SIGINT or SIGTERM while a command waits on a silent endpoint (default
/// timeouts: it would wait a minute and more) ends it at once.
#[test]
fn signals_stop_commands_waiting_on_a_silent_endpoint() {
    let Some(env) = env() else { return };
    let silent = Silent::start();
    env.create_data_key();
    std::fs::write(env.path("in"), b"secret").unwrap();
    std::fs::write(env.path("dest"), b"precious").unwrap();
    let key = env.key_id.clone();
    let cases: [(&[&str], &str, i32); 5] = [
        // KMS GenerateDataKey.
        (&["encrypt", "in", "s3://b/k", "--key", &key], "INT", 130),
        // KMS Decrypt of data.key.
        (&["encrypt", "in", "s3://b/k"], "TERM", 143),
        // S3 GetObject of the header.
        (&["inspect", "s3://b/k"], "TERM", 143),
        (&["decrypt", "s3://b/k", "dest"], "INT", 130),
        (
            &["create-data-key", &key, "--data-key", "other.key"],
            "INT",
            130,
        ),
    ];
    for (args, name, status) in cases {
        let child = against(&env, &silent, args).spawn().unwrap();
        // Long enough to be waiting on the network.
        std::thread::sleep(Duration::from_millis(1500));
        let start = Instant::now();
        signal(child.id(), name);
        let out = finishes_within(child, Duration::from_secs(10), &args.join(" "));
        assert_status(&out, status, args);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?}: {:?} after the signal",
            start.elapsed()
        );
        assert!(stderr(&out).contains(&format!("interrupted by SIG{name}")));
    }
    assert_eq!(std::fs::read(env.path("dest")).unwrap(), b"precious");
    assert!(!env.path("other.key").exists());
    assert!(
        !env.files().iter().any(|f| f.ends_with(".partial")),
        "temporary output left: {:?}",
        env.files()
    );
}
