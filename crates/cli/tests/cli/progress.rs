//! The progress bar: drawn on a terminal, never into pipes or logs, and off
//! with --quiet or --no-progress.

use std::process::{Command, Output};

use crate::harness::*;

/// Progress output is drawn with carriage returns and ANSI escapes (a
/// terminal ends lines with `\r\n`: those do not count).
fn has_progress(text: &str) -> bool {
    text.replace("\r\n", "\n").contains('\r') || text.contains('\x1b')
}

#[test]
fn no_progress_when_stderr_is_not_a_terminal() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), sample(3 * 1024 * 1024, 1)).unwrap();
    let uri = env.uri("piped-progress");
    for out in [
        env.ok(&["encrypt", "in", &uri, "--key", &env.key_id]),
        env.ok(&["decrypt", &uri, "out"]),
    ] {
        let err = stderr(&out);
        assert!(!has_progress(&err), "progress in a pipe: {err:?}");
        assert!(!err.contains("crypting"), "progress in a pipe: {err:?}");
    }
    assert_eq!(
        std::fs::read(env.path("out")).unwrap(),
        std::fs::read(env.path("in")).unwrap()
    );
}

/// Runs `atrest args` on a pseudo-terminal (util-linux `script`), returning
/// what the terminal showed, or `None` without `script`.
fn on_terminal(env: &Env, args: &[&str]) -> Option<Output> {
    on_terminal_with(env, args, "")
}

/// As [`on_terminal`], with `redirect` (shell syntax) after the command.
fn on_terminal_with(env: &Env, args: &[&str], redirect: &str) -> Option<Output> {
    let which = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .ok()?;
    if !which.status.success() {
        eprintln!("no `script` (util-linux): skipping the terminal check");
        return None;
    }
    let template = env.atrest();
    let mut line = shell_quote(env!("CARGO_BIN_EXE_atrest"));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    line.push_str(redirect);
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(template.get_current_dir().unwrap())
        .env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    // A terminal without TERM counts as dumb: no bar (as it should).
    cmd.env("TERM", "xterm");
    Some(cmd.output().unwrap())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn progress_bar_on_a_terminal_with_total_and_rate() {
    let Some(env) = env() else { return };
    let len = 3 * 1024 * 1024;
    std::fs::write(env.path("in"), sample(len, 2)).unwrap();
    let uri = env.uri("tty-progress");
    let Some(out) = on_terminal(&env, &["encrypt", "in", &uri, "--key", &env.key_id]) else {
        return;
    };
    assert_status(&out, 0, &["encrypt on a terminal"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("encrypting"), "{shown:?}");
    // The total is the file's size, and the bar ends full.
    assert!(shown.contains("3.00 MiB/3.00 MiB"), "{shown:?}");
    assert!(shown.contains("/s"), "a rate: {shown:?}");
    assert!(shown.contains("ETA"), "{shown:?}");

    let out = on_terminal(&env, &["decrypt", &uri, "out"]).unwrap();
    assert_status(&out, 0, &["decrypt on a terminal"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    // The total is the plaintext's exact length (v2).
    assert!(shown.contains("decrypting"), "{shown:?}");
    assert!(shown.contains("3.00 MiB/3.00 MiB"), "{shown:?}");
    assert_eq!(std::fs::read(env.path("out")).unwrap().len(), len);

    // From stdin the total is unknown: a spinner with bytes and rate.
    let args = ["encrypt", "-", &uri, "--key", &env.key_id];
    let out = on_terminal_with(&env, &args, " < in").unwrap();
    assert_status(&out, 0, &["encrypt - on a terminal"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("encrypting"), "{shown:?}");
    assert!(shown.contains("3.00 MiB"), "{shown:?}");
    assert!(
        !shown.contains("MiB/3.00 MiB"),
        "no total from stdin: {shown:?}"
    );

    for flag in ["--no-progress", "-q"] {
        let out = on_terminal(&env, &[flag, "decrypt", &uri, "out2"]).unwrap();
        assert_status(&out, 0, &["decrypt", flag]);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(!shown.contains("decrypting"), "{flag}: {shown:?}");
        assert!(!has_progress(&shown), "{flag}: {shown:?}");
    }
}

#[test]
fn one_overall_bar_for_a_recursive_run() {
    let Some(env) = env() else { return };
    let src = env.path("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), sample(1024 * 1024, 3)).unwrap();
    std::fs::write(src.join("sub/b"), sample(2 * 1024 * 1024, 4)).unwrap();
    let uri = env.uri("tty-bulk/");
    let args = ["encrypt", "tree", &uri, "-r", "--key", &env.key_id];
    let Some(out) = on_terminal(&env, &args) else {
        return;
    };
    assert_status(&out, 0, &["encrypt -r on a terminal"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    // One bar over both files' bytes, counting files as they finish.
    assert!(shown.contains("encrypting 2/2 files"), "{shown:?}");
    assert!(shown.contains("3.00 MiB/3.00 MiB"), "{shown:?}");
    assert!(
        !shown.contains("MiB/1.00 MiB"),
        "no per-file bar: {shown:?}"
    );
    assert!(shown.contains("encrypted 2 files"), "{shown:?}");

    let out = on_terminal(&env, &["decrypt", &uri, "back", "-r"]).unwrap();
    assert_status(&out, 0, &["decrypt -r on a terminal"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("decrypting 2/2 files"), "{shown:?}");
    // The bar ends at the plaintext written.
    assert!(shown.contains("3.00 MiB/3.00 MiB"), "{shown:?}");
    assert_eq!(
        std::fs::read(env.path("back/sub/b")).unwrap(),
        sample(2 * 1024 * 1024, 4)
    );
}

/// The bar of a single decrypt is hidden until the object's size is known:
/// no finished-looking `0 B/0 B` bar above the real one.
#[test]
fn a_single_decrypt_draws_no_empty_bar_first() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), sample(1024 * 1024, 5)).unwrap();
    let uri = env.uri("no-empty-bar");
    env.ok(&["encrypt", "in", &uri, "--key", &env.key_id]);
    let Some(out) = on_terminal(&env, &["decrypt", &uri, "out"]) else {
        return;
    };
    assert_status(&out, 0, &["decrypt on a terminal"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("1.00 MiB/1.00 MiB"), "{shown:?}");
    assert!(!shown.contains("0 B/0 B"), "an empty bar first: {shown:?}");
    // The AWS CLI's line after the bar.
    assert!(
        shown.contains(&format!("download: {uri} to out")),
        "{shown:?}"
    );
}
