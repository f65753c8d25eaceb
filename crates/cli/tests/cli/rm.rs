//! `atrest rm`, as `aws s3 rm`: one object or a prefix, filters, dry runs,
//! and S3 Encryption Client instruction files kept with their objects.

use crate::bulk::keys;
use crate::faults::{Fault, Op, Proxy};
use crate::harness::*;

/// Puts each object; one named `KEY.instruction` holds an S3 Encryption
/// Client envelope, as an instruction file does.
fn put(env: &Env, names: &[&str]) {
    for name in names {
        let body = match name.ends_with(".instruction") {
            true => INSTRUCTION_FILE.to_vec(),
            false => b"x".to_vec(),
        };
        env.put_raw(name, body);
    }
}

/// An instruction file's body: the client's entries, a wrapped key among them.
pub const INSTRUCTION_FILE: &[u8] =
    br#"{"x-amz-key-v2":"AAAA","x-amz-wrap-alg":"kms+context","x-amz-iv":"AAAAAAAAAAAAAAAA"}"#;

fn stdout_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn rm_deletes_an_object_and_its_instruction_file() {
    let Some(env) = env() else { return };
    put(&env, &["k", "k.instruction", "other"]);
    let out = env.ok(&["rm", &env.uri("k")]);
    let want = [
        format!("delete: {}", env.uri("k")),
        format!("delete: {}", env.uri("k.instruction")),
    ];
    assert_eq!(stdout_lines(&out), want);
    assert_eq!(keys(&env, ""), ["other"]);
    // A key that does not exist is deleted all the same, as S3 says.
    let out = env.ok(&["rm", &env.uri("gone")]);
    assert_eq!(stdout_lines(&out), [format!("delete: {}", env.uri("gone"))]);
    // --dryrun and --json.
    let out = env.ok(&["rm", &env.uri("other"), "--dryrun"]);
    assert_eq!(
        stdout_lines(&out),
        [format!("(dryrun) delete: {}", env.uri("other"))]
    );
    assert_eq!(keys(&env, ""), ["other"]);
    let out = env.ok(&["rm", &env.uri("other"), "--json"]);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["action"], "delete");
    assert_eq!(line["status"], "done");
    assert!(keys(&env, "").is_empty());
}

#[test]
fn rm_recursive_takes_the_filters_and_keeps_pairs_whole() {
    let Some(env) = env() else { return };
    put(
        &env,
        &[
            "p/a",
            "p/a.instruction",
            "p/b",
            "p/b.instruction",
            "p/keep.txt",
            "p/dir/",
            "p/dir/c",
            "pq/outside",
        ],
    );
    // b stays (excluded), so its instruction file stays too, though taken;
    // a goes with its file, though the filter leaves `*.instruction` out
    // of what it takes.
    let args = [
        "rm",
        "-r",
        &env.uri("p"),
        "--exclude",
        "*.txt",
        "--exclude",
        "b",
        "--exclude",
        "a.instruction",
    ];
    let out = env.ok(&args);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("warning: kept {}", env.uri("p/b.instruction"))),
        "{err}"
    );
    assert!(err.contains("deleted 4 objects, 0 failed"), "{err}");
    assert_eq!(
        keys(&env, ""),
        ["p/b", "p/b.instruction", "p/keep.txt", "pq/outside"]
    );
    let lines = stdout_lines(&out);
    let last = lines.last().unwrap();
    assert_eq!(
        last,
        &format!("delete: {}", env.uri("p/a.instruction")),
        "{lines:?}"
    );

    let out = env.ok(&["rm", "-r", &env.uri("p/"), "--dryrun", "--json"]);
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let summary: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(
        (summary["type"].as_str(), summary["objects"].as_u64()),
        (Some("summary"), Some(3))
    );
    assert_eq!(keys(&env, "p/").len(), 3);
    env.ok(&["rm", "-r", &format!("s3://{}", env.bucket), "-q"]);
    assert!(keys(&env, "").is_empty());
}

#[test]
fn an_object_that_cannot_be_deleted_keeps_its_instruction_file() {
    let Some(env) = env() else { return };
    put(&env, &["p/a", "p/a.instruction"]);
    let proxy = Proxy::start(&env.endpoint);
    // Every attempt the SDK makes at the first delete.
    proxy.add(Op::DeleteObject, Fault::Status500, 3);
    let args = ["rm", "-r", &env.uri("p/")];
    let out = proxy.atrest(&env).args(args).output().unwrap();
    assert_status(&out, 1, &args);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("failed: {}: ", env.uri("p/a"))),
        "{err}"
    );
    assert!(err.contains("1 of 1 object could not be deleted"), "{err}");
    assert_eq!(keys(&env, ""), ["p/a", "p/a.instruction"]);
}

/// Before, any `KEY.instruction` beside `KEY` went with it: `rm KEY`
/// deleted a user's own `KEY.instruction`, and `rm -r --exclude` did not
/// keep it. Only an object that is an instruction file goes along.
#[test]
fn rm_leaves_an_object_merely_named_as_an_instruction_file() {
    let Some(env) = env() else { return };
    for (key, body) in [
        ("notes", &b"x"[..]),
        ("notes.instruction", b"my own notes"),
        ("p/a", b"x"),
        ("p/a.instruction", b"{}"),
        ("p/b", b"x"),
        ("p/b.instruction", INSTRUCTION_FILE),
    ] {
        env.put_raw(key, body.to_vec());
    }
    let out = env.ok(&["rm", &env.uri("notes")]);
    assert_eq!(
        stdout_lines(&out),
        [format!("delete: {}", env.uri("notes"))]
    );
    assert_eq!(env.get_raw("notes.instruction"), b"my own notes");
    let args = ["rm", "-r", &env.uri("p"), "--exclude", "*.instruction"];
    env.ok(&args);
    // b's instruction file went with b; a's namesake is an object, excluded.
    assert_eq!(keys(&env, ""), ["notes.instruction", "p/a.instruction"]);
}

#[test]
fn rm_refuses_what_it_cannot_mean() {
    let Some(env) = env() else { return };
    put(&env, &["k"]);
    let bucket = format!("s3://{}", env.bucket);
    for args in [
        vec!["rm", bucket.as_str()],
        vec!["rm", "local-file"],
        vec!["rm", "s3://b/k", "--exclude", "*"],
    ] {
        let out = env.run(&args);
        assert_status(&out, 2, &args);
    }
    assert_eq!(keys(&env, ""), ["k"]);
}
