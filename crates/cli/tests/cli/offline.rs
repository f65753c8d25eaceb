//! Key files and local files: no AWS at all. These run without the test
//! endpoint, with an empty environment (no AWS variables, no region, no
//! home directory), so anything that reached for AWS configuration or the
//! network would fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{assert_status, stderr};

/// A working directory and the binary with nothing from the environment.
pub struct Offline {
    pub dir: tempfile::TempDir,
}

impl Offline {
    pub fn new() -> Self {
        Offline {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn atrest(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atrest"));
        cmd.current_dir(self.dir.path())
            .env_clear()
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.atrest().args(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_status(&out, 0, args);
        out
    }

    /// Entries of the working directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Exactly one line on stderr, an `atrest: error:` line containing `want`.
pub fn assert_one_error_line(out: &Output, want: &str) {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    assert!(
        lines[0].starts_with("atrest: error: ") && lines[0].contains(want),
        "expected an error line with {want:?}:\n{err}"
    );
}

#[test]
fn keygen_writes_a_private_32_byte_key_once() {
    let t = Offline::new();
    t.ok(&["keygen", "a.key"]);
    t.ok(&["-q", "keygen", "b.key"]);
    let a = std::fs::read(t.path("a.key")).unwrap();
    let b = std::fs::read(t.path("b.key")).unwrap();
    assert_eq!((a.len(), b.len()), (32, 32));
    assert_ne!(a, b, "fresh random keys");
    assert_eq!(mode(&t.path("a.key")), 0o600);
    assert_eq!(mode(&t.path("b.key")), 0o600);

    // Never over an existing file, key or not; nothing changes.
    std::fs::write(t.path("other"), b"precious").unwrap();
    for target in ["a.key", "other"] {
        let out = t.run(&["keygen", target]);
        assert_status(&out, 2, &["keygen", target]);
        assert_one_error_line(&out, "already exists");
    }
    assert_eq!(std::fs::read(t.path("a.key")).unwrap(), a);
    assert_eq!(std::fs::read(t.path("other")).unwrap(), b"precious");
    // No temporary files are left behind.
    assert_eq!(t.files(), ["a.key", "b.key", "other"]);
}

#[test]
fn keygen_into_a_missing_or_unwritable_directory_fails_cleanly() {
    let t = Offline::new();
    let out = t.run(&["keygen", "missing/k.key"]);
    assert_status(&out, 3, &["keygen", "missing/k.key"]);
    assert_one_error_line(&out, "key file missing/k.key");

    // Root ignores directory permissions: drop to nobody for this one (who
    // may enter the test directory, but not write in `ro`).
    std::fs::set_permissions(t.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(t.path("ro")).unwrap();
    std::fs::set_permissions(t.path("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_atrest"))
        .args(["keygen", "ro/k.key"])
        .current_dir(t.dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert_status(&out, 3, &["keygen", "ro/k.key"]);
    assert_one_error_line(&out, "permission denied");
    assert_eq!(std::fs::read_dir(t.path("ro")).unwrap().count(), 0);
}
