//! `atrest completions SHELL` and the hidden `atrest man`: generated from
//! the CLI definition, with no AWS configuration needed.

use std::process::{Command, Output};

use crate::harness::assert_status;

/// Runs the binary with no environment at all (no AWS settings).
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atrest"))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = bare(&["completions", shell]);
        assert_status(&out, 0, &["completions", shell]);
        let script = String::from_utf8(out.stdout).unwrap();
        for word in [
            "encrypt-with-kms",
            "decrypt-with-kms",
            "inspect",
            "part-size",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        // The hidden `man` subcommand is for packaging, not for users.
        let words = script.split(|c: char| !c.is_ascii_alphanumeric() && c != '-');
        assert!(
            !words.into_iter().any(|w| w == "man"),
            "{shell} completions offer the hidden `man`"
        );
    }
    let bash = String::from_utf8(bare(&["completions", "bash"]).stdout).unwrap();
    assert!(
        bash.contains("complete -F _atrest"),
        "bash registers a function"
    );
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = bare(&["completions", "tcsh"]);
    assert_status(&out, 2, &["completions", "tcsh"]);
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
    assert_status(&bare(&["completions"]), 2, &["completions"]);
}

#[test]
fn man_page_documents_the_commands() {
    let out = bare(&["man"]);
    assert_status(&out, 0, &["man"]);
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH atrest 1"),
        "{page}"
    );
    assert!(page.contains(".TH atrest 1"));
    assert!(page.contains("encrypt\\-with\\-kms"), "{page}");
    // The exit statuses are set line for line (filled, they ran together).
    let status = page.split(".SH \"EXIT STATUS\"").nth(1).expect("a section");
    assert!(status.starts_with("\n.nf\n  0  success\n"), "{status}");

    // Every page atrest(1) names is written by `man --out-dir`.
    let dir = tempfile::tempdir().unwrap();
    let out = bare(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_status(&out, 0, &["man --out-dir"]);
    let named: Vec<&str> = page
        .match_indices("atrest\\-")
        .filter_map(|(at, _)| page[at..].split_once("(1)").map(|(name, _)| name))
        .filter(|name| !name.contains([' ', '\n']))
        .collect();
    assert!(named.len() >= 14, "{named:?}");
    for name in named {
        let file = dir.path().join(format!("{}.1", name.replace("\\-", "-")));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".SH SYNOPSIS"), "{name}");
    }
    let cp = std::fs::read_to_string(dir.path().join("atrest-cp.1")).unwrap();
    assert!(cp.contains(".SH \"EXAMPLES\"\n.nf\n"), "{cp}");
    let out = bare(&["man", "--out-dir", "/nonexistent/dir"]);
    assert_status(&out, 1, &["man --out-dir /nonexistent/dir"]);
    // Not offered in --help.
    let help = String::from_utf8(bare(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("completions") && !help.contains("  man "),
        "{help}"
    );
}

/// Before, `atrest completions bash | head -1` (or `> /dev/full`) panicked
/// in clap_complete (exit 101, a backtrace). Now a closed pipe is no
/// failure, and a full disk one line and exit 1, as for `man`.
#[test]
fn completions_to_a_closed_pipe_or_a_full_disk_do_not_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrest"))
        .args(["completions", "bash"])
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_status(&out, 0, &["completions bash | (closed)"]);
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atrest"))
        .args(["completions", "zsh"])
        .env_clear()
        .stdout(full)
        .output()
        .unwrap();
    assert_status(&out, 1, &["completions zsh > /dev/full"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.starts_with("atrest: error: cannot write to stdout"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
}
