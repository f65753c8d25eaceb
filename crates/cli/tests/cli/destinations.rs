//! Where single-object commands write (issue 19, items 3, 8 and 10): special
//! files written in place and never replaced, links written through, modes
//! kept, `/` meaning "into", and destinations checked before any download.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Stdio;

use crate::bulk::keys;
use crate::harness::*;
use crate::special::*;

const PLAIN: &[u8] = b"the plaintext, decrypted where it was asked to go\n";

/// An env with one object, `k`, holding [`PLAIN`].
fn with_object() -> Option<Env> {
    let env = env()?;
    std::fs::write(env.path("plain"), PLAIN).unwrap();
    env.ok(&["encrypt", "plain", &env.uri("k"), "--key", &env.key_id]);
    Some(env)
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// Before, `decrypt s3://b/k X` renamed a regular 0600 file over X whatever
/// X was: as root, over a device node (`/dev/null` itself), a FIFO, or a
/// link to /proc/self/fd/1.
#[test]
fn devices_fifos_sockets_and_links_to_them_are_written_in_place() {
    let Some(env) = with_object() else { return };
    let uri = env.uri("k");

    if mknod_null(&env.path("null")) {
        env.ok(&["decrypt", &uri, "null"]);
        let meta = std::fs::symlink_metadata(env.path("null")).unwrap();
        assert!(meta.file_type().is_char_device(), "{meta:?}");
        assert_eq!(meta.rdev(), std::fs::metadata("/dev/null").unwrap().rdev());
    }

    let fifo = env.path("fifo");
    mkfifo(&fifo);
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let mut got = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        }
    });
    env.ok(&["decrypt", &uri, "fifo"]);
    assert_eq!(reader.join().unwrap(), PLAIN);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    let listener = std::os::unix::net::UnixListener::bind(env.path("sock")).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        got
    });
    env.ok(&["decrypt", &uri, "sock"]);
    assert_eq!(reader.join().unwrap(), PLAIN);

    // A link to the process's own stdout (a pipe here) is followed.
    std::os::unix::fs::symlink("/proc/self/fd/1", env.path("stdout")).unwrap();
    let out = env
        .atrest()
        .args(["decrypt", &uri, "stdout"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_status(&out, 0, &["decrypt into a link to /proc/self/fd/1"]);
    assert_eq!(out.stdout, PLAIN);
    assert!(std::fs::symlink_metadata(env.path("stdout"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!env.files().iter().any(|f| f.starts_with(".atrest-")));
}

/// `/dev/stdout` of a command whose stdout is a file (`>> log`) is written
/// through the descriptor, as `-` is: before, the file it led to was
/// replaced by a rename, losing what was in it and what the shell wrote
/// after. `/dev/stderr` likewise; `/dev/fd/3` on a regular file cannot be
/// written where its descriptor is, and is refused.
#[test]
fn paths_to_this_processs_descriptors_are_written_through_them() {
    let Some(env) = with_object() else { return };
    let uri = env.uri("k");
    // `sh -c SCRIPT atrest URI`: the script's $0 is atrest, $1 the object.
    let shell = |script: &str| {
        env.atrest_under(&["sh", "-c", script])
            .arg(&uri)
            .output()
            .unwrap()
    };
    let out = shell(
        "echo header > log && \"$0\" decrypt \"$1\" /dev/stdout -q >> log && echo END >> log",
    );
    assert_status(&out, 0, &["decrypt to /dev/stdout >> log"]);
    let want = [&b"header\n"[..], PLAIN, b"END\n"].concat();
    assert_eq!(std::fs::read(env.path("log")).unwrap(), want);

    let out = shell("{ echo BEGIN; \"$0\" decrypt \"$1\" /dev/stderr -q; echo END; } 2> err");
    assert_status(&out, 0, &["decrypt to /dev/stderr"]);
    assert_eq!(std::fs::read(env.path("err")).unwrap(), PLAIN);
    assert_eq!(out.stdout, b"BEGIN\nEND\n");

    let out = shell("echo kept > three && \"$0\" decrypt \"$1\" /dev/fd/3 -q 3>> three");
    assert_status(&out, 2, &["decrypt to /dev/fd/3 on a file"]);
    assert!(stderr(&out).contains("descriptor 3"), "{}", stderr(&out));
    assert_eq!(std::fs::read(env.path("three")).unwrap(), b"kept\n");
}

/// A command started with stdin closed (`<&-`) read it as empty (Rust
/// opens /dev/null in its place) and replaced the object with an empty
/// one, exit 0; now it fails, as `aws s3 cp -` does. `< /dev/null` is
/// still an empty input.
#[test]
fn a_closed_stdin_is_refused_and_dev_null_is_empty() {
    let Some(env) = with_object() else { return };
    let uri = env.uri("k");
    let before = env.get_raw("k");
    // `-`, and /dev/stdin, its path.
    for input in ["-", "/dev/stdin"] {
        let script = format!("\"$0\" cp {input} \"$1\" --key {} <&-", env.key_id);
        let out = env
            .atrest_under(&["sh", "-c", &script])
            .arg(&uri)
            .output()
            .unwrap();
        assert_status(&out, 1, &["cp", input, "with stdin closed"]);
        let err = stderr(&out);
        assert!(
            err.contains("cannot read standard input") && err.contains("<&-"),
            "{err}"
        );
        assert_eq!(env.get_raw("k"), before);
    }

    let script = format!("\"$0\" cp - \"$1\" --key {} < /dev/null", env.key_id);
    let empty = env.uri("empty");
    let out = env
        .atrest_under(&["sh", "-c", &script])
        .arg(&empty)
        .output()
        .unwrap();
    assert_status(&out, 0, &["cp - < /dev/null"]);
    env.ok(&["cp", &empty, "back"]);
    assert_eq!(std::fs::read(env.path("back")).unwrap(), b"");
}

/// A link is written through (its regular target replaced, the link kept);
/// a replaced file keeps its mode; a new one gets the umask's; a dangling
/// link is refused. Before, the link itself was replaced and every output
/// was 0600.
#[test]
fn links_are_written_through_and_modes_follow_cp() {
    let Some(env) = with_object() else { return };
    let uri = env.uri("k");

    std::fs::write(env.path("target.txt"), b"old").unwrap();
    std::fs::set_permissions(env.path("target.txt"), PermissionsExt::from_mode(0o664)).unwrap();
    std::os::unix::fs::symlink("target.txt", env.path("link")).unwrap();
    env.ok(&["decrypt", &uri, "link"]);
    let link = std::fs::symlink_metadata(env.path("link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(std::fs::read(env.path("target.txt")).unwrap(), PLAIN);
    assert_eq!(mode(&env.path("target.txt")), 0o664);

    std::fs::write(env.path("private"), b"old").unwrap();
    std::fs::set_permissions(env.path("private"), PermissionsExt::from_mode(0o640)).unwrap();
    env.ok(&["decrypt", &uri, "private"]);
    assert_eq!(mode(&env.path("private")), 0o640);

    // A new file: the umask decides, as for cp (run through a shell that
    // sets it, with the binary's environment).
    let bin = env!("CARGO_BIN_EXE_atrest");
    let envs = env.atrest();
    for (umask, want) in [("022", 0o644), ("077", 0o600), ("027", 0o640)] {
        let name = format!("new-{umask}");
        let script = format!("umask {umask} && exec \"$0\" decrypt {uri} {name}");
        let out = std::process::Command::new("sh")
            .args(["-c", &script, bin])
            .env_clear()
            .envs(envs.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir(env.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_status(&out, 0, &["decrypt under umask", umask]);
        assert_eq!(mode(&env.path(&name)), want, "umask {umask}");
    }

    std::os::unix::fs::symlink("missing", env.path("dangling")).unwrap();
    let out = env.run(&["decrypt", &uri, "dangling"]);
    assert_status(&out, 3, &["decrypt into a dangling link"]);
    assert!(stderr(&out).contains("dangling"), "{}", stderr(&out));
    assert!(!env.path("missing").exists());
}

/// Item 8: before, `encrypt a.txt s3://b/dir/` stored the key `dir/`, which
/// `decrypt -r` then skipped. As `aws s3 cp`: a trailing `/` is a prefix,
/// and a local directory (or a name ending in `/`) receives the base name.
#[test]
fn a_trailing_slash_or_a_directory_means_into_it() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("a.txt"), b"into the prefix").unwrap();
    env.ok(&["encrypt", "a.txt", &env.uri("dir/"), "--key", &env.key_id]);
    assert_eq!(keys(&env, "dir"), ["dir/a.txt"]);

    let out = env.run(&["encrypt", "-", &env.uri("dir/"), "--key", &env.key_id]);
    assert_status(&out, 2, &["encrypt - s3://b/dir/"]);
    assert_eq!(keys(&env, "dir"), ["dir/a.txt"]);

    std::fs::create_dir(env.path("out")).unwrap();
    let uri = env.uri("dir/a.txt");
    env.ok(&["decrypt", &uri, "out"]);
    env.ok(&["decrypt", &uri, "out/"]);
    assert_eq!(
        std::fs::read(env.path("out/a.txt")).unwrap(),
        b"into the prefix"
    );
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 1);

    // A missing directory is made, as `aws s3 cp` makes it.
    env.ok(&["decrypt", &uri, "nodir/"]);
    assert_eq!(
        std::fs::read(env.path("nodir/a.txt")).unwrap(),
        b"into the prefix"
    );
}

/// Missing directories are made, as `aws s3 cp` makes them, and removed
/// again when the download fails (only those made, only if empty); a path
/// through a file fails before any request, and no message names the
/// temporary file (`.atrest-XXXX.partial`).
#[test]
fn missing_directories_are_made_and_removed_again_if_the_download_fails() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("file.txt"), b"a file, not a directory").unwrap();
    std::fs::create_dir(env.path("kept")).unwrap();
    let missing = env.uri("no-such-object");
    for (dest, why) in [
        ("newdir/sub/x", "does not exist"),
        ("kept/new/x", "does not exist"),
        (
            "file.txt/x",
            "cannot write file.txt/x: file.txt is not a directory",
        ),
        (
            "file.txt/a/x",
            "cannot write file.txt/a/x: file.txt is not a directory",
        ),
    ] {
        let out = env.run(&["decrypt", &missing, dest]);
        assert_status(&out, 3, &["decrypt into", dest]);
        let err = stderr(&out);
        assert!(err.contains(why), "{err}");
        assert!(
            !err.contains(".atrest-") && !err.contains(".partial"),
            "{err}"
        );
        assert!(!err.to_lowercase().contains("no such key"), "{err}");
    }
    assert!(!env.path("newdir").exists(), "a made directory was left");
    assert!(!env.path("kept/new").exists(), "a made directory was left");
    assert!(env.path("kept").is_dir(), "a directory that was there went");
    // Made and kept when the download succeeds, into a new directory too.
    std::fs::write(env.path("plain"), b"plaintext").unwrap();
    env.ok(&["encrypt", "plain", &env.uri("k"), "--key", &env.key_id]);
    env.ok(&["decrypt", &env.uri("k"), "a/b/c"]);
    assert_eq!(std::fs::read(env.path("a/b/c")).unwrap(), b"plaintext");
    env.ok(&["decrypt", &env.uri("k"), "d/e/"]);
    assert_eq!(std::fs::read(env.path("d/e/k")).unwrap(), b"plaintext");
}

/// A write that fails names what could not be written, for a device (here
/// one that is always full) and for stdout, and exits 1.
#[test]
fn a_full_destination_is_named_in_the_error() {
    let Some(env) = with_object() else { return };
    let uri = env.uri("k");
    let out = env.run(&["decrypt", &uri, "/dev/full"]);
    assert_status(&out, 1, &["decrypt into /dev/full"]);
    assert!(
        stderr(&out).contains("cannot write /dev/full: No space left on device"),
        "{}",
        stderr(&out)
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env
        .atrest()
        .args(["decrypt", &uri, "-"])
        .stdout(full)
        .output()
        .unwrap();
    assert_status(&out, 1, &["decrypt to a full stdout"]);
    assert!(
        stderr(&out).contains("cannot write stdout: No space left on device"),
        "{}",
        stderr(&out)
    );
}
