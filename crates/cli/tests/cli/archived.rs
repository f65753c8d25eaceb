//! Archived objects (S3 Glacier Flexible Retrieval, Deep Archive), as
//! lifecycle rules leave them: S3 lists them but serves and copies them
//! only once restored (moto refuses them as S3 does, 403
//! InvalidObjectState). One must neither fail a whole listing or sync nor
//! hide what was not transferred; a restored one is read as any other.

use crate::bulk::{keys, write};
use crate::harness::*;

/// Under `a/`: `warm` (STANDARD), `cold` (GLACIER), `thawed` (DEEP_ARCHIVE,
/// restored), each holding its name.
fn objects(env: &Env) {
    for (name, class) in [
        ("warm", None),
        ("cold", Some("GLACIER")),
        ("thawed", Some("DEEP_ARCHIVE")),
    ] {
        write(env.dir.path(), name, name.as_bytes());
        let uri = env.uri(&format!("a/{name}"));
        let mut args = vec!["cp", name, &uri, "--key", &env.key_id];
        if let Some(class) = class {
            args.extend(["--storage-class", class]);
        }
        env.ok(&args);
    }
    let restore = aws_sdk_s3::types::RestoreRequest::builder().days(1).build();
    let request = env.s3.restore_object().bucket(&env.bucket).key("a/thawed");
    block_on(request.restore_request(restore).send()).unwrap();
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn ls_lists_an_archived_object_without_reading_it() {
    let Some(env) = env() else { return };
    objects(&env);
    let out = env.ok(&["ls", &env.uri("a/")]);
    let lines = text(&out.stdout);
    // Named below the listed level, as `aws s3 ls` names them.
    let cold = lines.lines().find(|l| l.contains("  cold  ")).unwrap();
    assert!(
        cold.ends_with("(not read: archived: restore it to read it)"),
        "{lines}"
    );
    let thawed = lines.lines().find(|l| l.ends_with("  thawed")).unwrap();
    assert!(thawed.contains(" v2 "), "{lines}");
    let out = env.ok(&["ls", &env.uri("a/"), "--json"]);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cold = &listing["objects"][0];
    assert_eq!(
        (cold["key"].as_str(), cold["format"].as_str()),
        (Some("a/cold"), Some("not read"))
    );
    assert!(cold["object_len"].as_u64().unwrap() > 4, "{cold}");
}

#[test]
fn downloads_fail_an_archived_object_alone_saying_so_or_leave_it_out() {
    let Some(env) = env() else { return };
    objects(&env);
    let cold = env.uri("a/cold");
    let args = ["cp", &cold, "out"];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{cold} is archived: restore it first")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!env.path("out").exists());
    let out = env.ok(&["cp", &cold, "out", "--ignore-glacier-warnings"]);
    assert_eq!(stderr(&out), "");
    assert!(!env.path("out").exists());
    env.ok(&["cp", &env.uri("a/thawed"), "thawed.out"]);
    assert_eq!(std::fs::read(env.path("thawed.out")).unwrap(), b"thawed");

    // A tree, and a sync: the others come down, the archived one fails
    // alone (exit 1), or is left out with --ignore-glacier-warnings.
    let prefix = env.uri("a/");
    for (command, dir) in [("cp", "tree"), ("sync", "synced")] {
        let mut args = vec![command, &prefix, dir, "--force-glacier-transfer"];
        if command == "cp" {
            args.push("-r");
        }
        let out = env.run(&args);
        assert_status(&out, 1, &args);
        let err = stderr(&out);
        assert!(
            err.contains("failed: cold: ") && err.contains("is archived"),
            "{err}"
        );
        for name in ["warm", "thawed"] {
            let got = std::fs::read(env.path(&format!("{dir}/{name}"))).unwrap();
            assert_eq!(got, name.as_bytes());
        }
        assert!(!env.path(&format!("{dir}/cold")).exists());
        args.push("--ignore-glacier-warnings");
        let out = env.ok(&args);
        assert!(!stderr(&out).contains("cold"), "{}", stderr(&out));
    }
}

#[test]
fn copies_name_the_archived_source_and_a_sync_up_leaves_it_alone() {
    let Some(env) = env() else { return };
    objects(&env);
    let (prefix, to) = (env.uri("a/"), env.uri("b/"));
    let args = ["cp", "-r", &prefix, &to];
    let out = env.run(&args);
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} is archived", env.uri("a/cold"))),
        "{err}"
    );
    assert_eq!(keys(&env, "b/"), ["b/thawed", "b/warm"]);
    env.ok(&["cp", "-r", &prefix, &to, "--ignore-glacier-warnings"]);

    // Files older than their objects: the archived object, whose size
    // cannot be read (its file's differs, so no layout explains it), is up
    // to date by its time, not a failure.
    let dir = env.path("up");
    for (name, body) in [("warm", "warm"), ("cold", "colder"), ("thawed", "thawed")] {
        write(&dir, name, body.as_bytes());
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let out = env.ok(&["sync", "up", &prefix, "--key", &env.key_id]);
    assert!(stderr(&out).contains("3 up to date"), "{}", stderr(&out));
}

#[test]
fn ls_lists_an_object_it_may_not_read() {
    let Some(env) = env() else { return };
    for name in ["a", "b"] {
        write(env.dir.path(), name, name.as_bytes());
        env.ok(&[
            "cp",
            name,
            &env.uri(&format!("p/{name}")),
            "--key",
            &env.key_id,
        ]);
    }
    let proxy = crate::faults::Proxy::start(&env.endpoint);
    // The first header read is refused (only that one: no retry of a 403).
    proxy.add(
        crate::faults::Op::GetObject,
        crate::faults::Fault::S3AccessDenied,
        1,
    );
    let args = ["ls", &env.uri("p/")];
    let out = proxy.atrest(&env).args(args).output().unwrap();
    assert_status(&out, 0, &args);
    let lines = text(&out.stdout);
    let refused: Vec<&str> = lines
        .lines()
        .filter(|l| l.contains("(not read: access denied (AccessDenied))"))
        .collect();
    assert_eq!(refused.len(), 1, "{lines}");
    assert_eq!(
        lines.lines().filter(|l| l.contains(" v2 ")).count(),
        1,
        "{lines}"
    );
}
