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
    // `-` is stdout everywhere else: refused, not a file named `-` (as
    // before) and not a key on stdout.
    let out = t.run(&["keygen", "-"]);
    assert_status(&out, 2, &["keygen -"]);
    assert_one_error_line(&out, "not stdout");
    assert!(out.stdout.is_empty());
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

/// A key file with mode 0600 made by the binary itself.
fn keygen(t: &Offline, name: &str) {
    t.ok(&["keygen", name]);
}

/// Encrypts `name` (holding `data`) to `name.atrest` with `args`, decrypts
/// it to `name.out`, and compares.
fn round_trip(t: &Offline, name: &str, data: &[u8], enc: &[&str], dec: &[&str]) {
    std::fs::write(t.path(name), data).unwrap();
    let sealed = format!("{name}.atrest");
    let back = format!("{name}.out");
    let mut args = vec!["encrypt", name, &sealed];
    args.extend_from_slice(enc);
    t.ok(&args);
    let stored = std::fs::read(t.path(&sealed)).unwrap();
    assert_eq!(stored[0], 2, "{name}: a v2 object");
    if data.len() >= 16 {
        assert!(
            !stored.windows(16).any(|w| w == &data[..16]),
            "{name}: plaintext stored"
        );
    }
    let mut args = vec!["decrypt", &sealed, &back];
    args.extend_from_slice(dec);
    t.ok(&args);
    assert!(
        std::fs::read(t.path(&back)).unwrap() == data,
        "{name}: round trip differs"
    );
}

/// The v2 round trips, on local files with a key file, in an environment
/// without a single AWS variable (so without a region: any AWS
/// configuration would fail the command).
#[test]
fn key_file_round_trips_local_files_with_no_aws_at_all() {
    let t = Offline::new();
    keygen(&t, "k.key");
    let kf = ["--key-file", "k.key"];
    for (i, len) in [
        0usize,
        1,
        15,
        16,
        17,
        4095,
        4096,
        4097,
        65535,
        65536,
        65537,
        (1 << 20) + 3,
    ]
    .into_iter()
    .enumerate()
    {
        let data = crate::harness::sample(len, i as u64);
        round_trip(&t, &format!("d-{len}"), &data, &kf, &kf);
        let mut small = kf.to_vec();
        small.extend(["--frame-size", "4K"]);
        round_trip(&t, &format!("s-{len}"), &data, &small, &kf);
    }
    // A context is stored, checked and bound to the wrapped key.
    let mut enc = kf.to_vec();
    enc.extend(["--context", "app=demo", "--context", "tier=cold"]);
    let mut dec = kf.to_vec();
    dec.extend(["--expect-context", "app=demo"]);
    round_trip(&t, "ctx", b"with a context", &enc, &dec);
    let out = t.run(&[
        "decrypt",
        "ctx.atrest",
        "x",
        "--key-file",
        "k.key",
        "--expect-context",
        "app=other",
    ]);
    assert_status(&out, 4, &["--expect-context app=other"]);
    assert!(!t.path("x").exists());

    // inspect names the keyring, offline too.
    let out = t.ok(&["inspect", "ctx.atrest", "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["keyring"], "key-file");
    assert_eq!(info["context"]["atrest:keyring"], "key-file");
    assert_eq!(info["context"]["app"], "demo");

    // stdin to stdout, both ways.
    let data = crate::harness::sample(200_000, 99);
    let mut child = t
        .atrest()
        .args(["encrypt", "--key-file", "k.key", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.clone();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &feed));
    let sealed = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_status(&sealed, 0, &["encrypt - -"]);
    std::fs::write(t.path("piped.atrest"), &sealed.stdout).unwrap();
    let out = t
        .atrest()
        .args(["decrypt", "--key-file", "k.key", "-", "-"])
        .stdin(std::fs::File::open(t.path("piped.atrest")).unwrap())
        .output()
        .unwrap();
    assert_status(&out, 0, &["decrypt - -"]);
    assert!(out.stdout == data, "stdin/stdout round trip differs");
    assert!(
        t.files().iter().all(|f| !f.contains(".partial")),
        "{:?}",
        t.files()
    );
}

/// The frozen vectors of fixtures/key-file decrypt through the binary.
#[test]
fn the_key_file_vectors_decrypt_through_the_binary() {
    let t = Offline::new();
    let dir = crate::harness::fixtures().join("key-file");
    for name in ["ok-hello", "ok-4097-e12"] {
        let meta = std::fs::read_to_string(dir.join(format!("{name}.meta"))).unwrap();
        let field = |k: &str| {
            meta.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .unwrap()
                .to_owned()
        };
        let key = t.path(&format!("{name}.key"));
        std::fs::write(&key, hex::decode(field("key_file")).unwrap()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let object = dir.join(format!("{name}.object"));
        let out = t
            .atrest()
            .args(["decrypt", "--key-file"])
            .arg(&key)
            .arg(&object)
            .arg("-")
            .output()
            .unwrap();
        assert_status(&out, 0, &[name]);
        let sha = sha256_hex(&out.stdout);
        assert_eq!(sha, field("plaintext_sha256"), "{name}");
    }
}

fn sha256_hex(data: &[u8]) -> String {
    // sha256sum: the test crate has no hash of its own.
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// Any flipped byte of a key-file object fails without output and with an
/// existing destination untouched.
#[test]
fn every_tampered_byte_of_a_key_file_object_is_rejected_without_output() {
    let t = Offline::new();
    keygen(&t, "k.key");
    std::fs::write(t.path("in"), crate::harness::sample(40, 5)).unwrap();
    t.ok(&[
        "encrypt",
        "in",
        "victim",
        "--key-file",
        "k.key",
        "--context",
        "k=v",
    ]);
    let object = std::fs::read(t.path("victim")).unwrap();
    std::fs::write(t.path("precious"), b"keep me").unwrap();
    let mut codes = std::collections::BTreeMap::new();
    for at in 0..object.len() {
        let mut bad = object.clone();
        bad[at] ^= 0x01;
        let name = format!("bad-{at}");
        std::fs::write(t.path(&name), &bad).unwrap();
        let out = t.run(&["decrypt", &name, "precious", "--key-file", "k.key"]);
        let code = out.status.code();
        // 4 (untrusted), or 2 where the flip turned the reserved keyring
        // entry into a user pair, so the header now claims KMS.
        assert!(
            matches!(code, Some(2 | 4)),
            "byte {at}: exit {code:?}, stderr {}",
            stderr(&out)
        );
        if code == Some(2) {
            assert_one_error_line(&out, "wrapped by KMS, not under a key file");
        } else {
            assert_one_error_line(&out, "");
        }
        *codes.entry(code).or_insert(0) += 1;
        std::fs::remove_file(t.path(&name)).unwrap();
    }
    // Only flips inside "atrest:keyring" that leave a valid user key.
    assert!(codes.get(&Some(2)).copied().unwrap_or(0) <= 8, "{codes:?}");
    assert_eq!(std::fs::read(t.path("precious")).unwrap(), b"keep me");
    assert!(
        t.files().iter().all(|f| !f.contains(".partial")),
        "{:?}",
        t.files()
    );
}

#[test]
fn truncated_extended_and_swapped_key_file_objects_fail() {
    let t = Offline::new();
    keygen(&t, "k.key");
    std::fs::write(t.path("in"), crate::harness::sample(3 * 4096, 9)).unwrap();
    t.ok(&[
        "encrypt",
        "in",
        "whole",
        "--key-file",
        "k.key",
        "--frame-size",
        "4K",
    ]);
    let object = std::fs::read(t.path("whole")).unwrap();
    let sealed = 4096 + 16;
    let header_len = object.len() - 3 * sealed;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("drop-last-frame", object[..object.len() - sealed].to_vec()),
        ("drop-one-byte", object[..object.len() - 1].to_vec()),
        ("header-only", object[..header_len].to_vec()),
    ];
    let mut extended = object.clone();
    extended.extend_from_slice(&object[header_len..header_len + sealed]);
    cases.push(("extended", extended));
    let mut swapped = object[..header_len].to_vec();
    swapped.extend_from_slice(&object[header_len + sealed..header_len + 2 * sealed]);
    swapped.extend_from_slice(&object[header_len..header_len + sealed]);
    swapped.extend_from_slice(&object[header_len + 2 * sealed..]);
    cases.push(("swapped", swapped));
    for (name, bytes) in cases {
        std::fs::write(t.path(name), bytes).unwrap();
        let out = t.run(&["decrypt", name, "out", "--key-file", "k.key"]);
        assert_status(&out, 4, &[name]);
        assert_one_error_line(&out, "decryption failed");
        assert!(!t.path("out").exists(), "{name}: output written");
    }
    assert!(
        t.files().iter().all(|f| !f.contains(".partial")),
        "{:?}",
        t.files()
    );
}

#[test]
fn a_wrong_key_file_gives_exit_4_and_one_line() {
    let t = Offline::new();
    keygen(&t, "right.key");
    keygen(&t, "wrong.key");
    std::fs::write(t.path("in"), b"secret").unwrap();
    t.ok(&["encrypt", "in", "obj", "--key-file", "right.key"]);
    std::fs::write(t.path("out"), b"keep me").unwrap();
    let out = t.run(&["decrypt", "obj", "out", "--key-file", "wrong.key"]);
    assert_status(&out, 4, &["decrypt with wrong.key"]);
    assert_one_error_line(&out, "with key file wrong.key");
    assert_eq!(std::fs::read(t.path("out")).unwrap(), b"keep me");

    // Without --key-file: says what to pass, and needs no AWS to say it.
    let out = t.run(&["decrypt", "obj", "out"]);
    assert_status(&out, 2, &["decrypt without --key-file"]);
    assert_one_error_line(&out, "pass --key-file");
    // A KMS-wrapped object (the seed tool's) with a key file.
    let seed = crate::harness::fixtures().join("seed-v1/set-a/obj-17.object");
    let out = t
        .atrest()
        .args(["decrypt", "--key-file", "right.key"])
        .arg(&seed)
        .arg("out")
        .output()
        .unwrap();
    assert_status(&out, 2, &["decrypt a KMS object with --key-file"]);
    assert_one_error_line(&out, "wrapped by KMS");
    // Not an atrest object at all.
    let out = t.run(&["decrypt", "in", "out", "--key-file", "right.key"]);
    assert_status(&out, 4, &["decrypt a plain file"]);
    assert_one_error_line(&out, "not an atrest object");
    assert_eq!(std::fs::read(t.path("out")).unwrap(), b"keep me");
    assert!(
        t.files().iter().all(|f| !f.contains(".partial")),
        "{:?}",
        t.files()
    );
}

#[test]
fn key_files_of_the_wrong_length_are_usage_errors() {
    let t = Offline::new();
    std::fs::write(t.path("in"), b"data").unwrap();
    for len in [0usize, 16, 31, 33, 64] {
        std::fs::write(t.path("bad.key"), vec![7u8; len]).unwrap();
        std::fs::set_permissions(t.path("bad.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        for args in [
            ["encrypt", "in", "obj", "--key-file", "bad.key"],
            ["decrypt", "in", "obj", "--key-file", "bad.key"],
        ] {
            let out = t.run(&args);
            assert_status(&out, 2, &args);
            assert_one_error_line(&out, &format!("key file bad.key: holds {len} bytes"));
        }
    }
    let out = t.run(&["encrypt", "in", "obj", "--key-file", "missing.key"]);
    assert_status(&out, 3, &["missing key file"]);
    assert_one_error_line(&out, "key file missing.key");
    assert!(!t.path("obj").exists());
}

/// As ssh does for private keys: a key file its group or others may access
/// is refused. Tests run as root, for whom access() would allow anything:
/// the rule is on the mode bits.
#[test]
fn group_or_world_accessible_key_files_are_refused() {
    let t = Offline::new();
    keygen(&t, "k.key");
    std::fs::write(t.path("in"), b"data").unwrap();
    t.ok(&["encrypt", "in", "obj", "--key-file", "k.key"]);
    for mode in [
        0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o620, 0o602,
    ] {
        std::fs::set_permissions(t.path("k.key"), std::fs::Permissions::from_mode(mode)).unwrap();
        for args in [
            ["encrypt", "in", "obj2", "--key-file", "k.key"],
            ["decrypt", "obj", "out", "--key-file", "k.key"],
        ] {
            let out = t.run(&args);
            assert_status(&out, 2, &args);
            assert_one_error_line(&out, &format!("mode {mode:04o}"));
            assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
        }
    }
    assert!(!t.path("obj2").exists() && !t.path("out").exists());
    for mode in [0o600, 0o400] {
        std::fs::set_permissions(t.path("k.key"), std::fs::Permissions::from_mode(mode)).unwrap();
        t.ok(&["decrypt", "obj", "out", "--key-file", "k.key"]);
    }
}

#[test]
fn key_file_flag_combinations_are_usage_errors() {
    let t = Offline::new();
    keygen(&t, "k.key");
    std::fs::write(t.path("in"), b"data").unwrap();
    for args in [
        vec![
            "encrypt",
            "in",
            "obj",
            "--key-file",
            "k.key",
            "--format",
            "v1",
        ],
        vec![
            "encrypt",
            "in",
            "obj",
            "--key-file",
            "k.key",
            "--key",
            "alias/x",
        ],
        vec![
            "encrypt",
            "in",
            "obj",
            "--key-file",
            "k.key",
            "--context",
            "atrest:keyring=kms",
        ],
        // Two key sources: which one was meant is not for atrest to guess.
        vec![
            "encrypt",
            "in",
            "obj",
            "--key-file",
            "k.key",
            "--data-key",
            "data.key",
        ],
        vec![
            "encrypt",
            "in",
            "obj",
            "--key",
            "alias/x",
            "--data-key",
            "d.key",
        ],
    ] {
        let out = t.run(&args);
        assert_status(&out, 2, &args);
    }
    assert!(!t.path("obj").exists());
}

/// Local files stream: a 96 MiB file goes through in a few MiB of memory
/// each way (peak RSS from GNU time), and comes back exact.
#[test]
fn local_files_stream_in_constant_memory() {
    let t = Offline::new();
    keygen(&t, "k.key");
    let data = crate::harness::sample(96 << 20, 96);
    std::fs::write(t.path("big"), &data).unwrap();
    let peak_kib = |args: &[&str]| -> u64 {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(env!("CARGO_BIN_EXE_atrest"))
            .args(args)
            .current_dir(t.dir.path())
            .env_clear()
            .output()
            .unwrap();
        assert_status(&out, 0, args);
        let err = stderr(&out);
        err.lines().last().unwrap().trim().parse().unwrap()
    };
    let enc = peak_kib(&["encrypt", "--key-file", "k.key", "big", "big.atrest"]);
    let dec = peak_kib(&["decrypt", "--key-file", "k.key", "big.atrest", "big.out"]);
    assert!(
        std::fs::read(t.path("big.out")).unwrap() == data,
        "round trip differs"
    );
    for (what, kib) in [("encrypt", enc), ("decrypt", dec)] {
        assert!(
            kib < 48 * 1024,
            "{what}: peak RSS {kib} KiB for a 96 MiB file"
        );
    }
}

/// Standard input that is a directory (`< dir`) is said as such, not as a
/// bare "Is a directory (os error 21)" naming neither stdin nor the step.
#[test]
fn standard_input_that_is_a_directory_is_named() {
    let t = Offline::new();
    keygen(&t, "k.key");
    std::fs::create_dir(t.path("d")).unwrap();
    let dir = std::fs::File::open(t.path("d")).unwrap();
    let out = t
        .atrest()
        .args(["encrypt", "-", "out.atrest", "--key-file", "k.key"])
        .stdin(dir)
        .output()
        .unwrap();
    assert_status(&out, 1, &["encrypt - < dir"]);
    assert_one_error_line(&out, "cannot read standard input: is a directory");
    assert!(!t.path("out.atrest").exists());
}
