//! `--ca-bundle` and `AWS_CA_BUNDLE`, as the AWS CLI takes them: the
//! certificates TLS trusts instead of the system's. A Python TLS endpoint
//! (`tls_server.py`) serves a certificate of its own CA.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::harness::*;

/// The TLS endpoint, killed when dropped.
struct Endpoint(Child);

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_ca_bundle_is_what_tls_trusts() {
    let Some(env) = env() else { return };
    let python = std::env::var("ATREST_TEST_PYTHON").expect("the venv's python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/tls_server.py");
    let mut child = Command::new(python)
        .args([script, env.dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let _endpoint = Endpoint(child);
    let url = format!("https://127.0.0.1:{}", port.trim());
    let ca = env.path("ca.pem");
    let ca = ca.to_str().unwrap();
    let ls = |bundle: Option<&str>, flags: &[&str]| {
        let mut command = env.atrest();
        command
            .env("AWS_ENDPOINT_URL", &url)
            .args(["ls", "s3://b/"])
            .args(flags);
        if let Some(bundle) = bundle {
            command.env("AWS_CA_BUNDLE", bundle);
        }
        command.output().unwrap()
    };
    // The system's roots do not know the endpoint's CA.
    let out = ls(None, &[]);
    assert_status(&out, 1, &["ls, untrusted"]);
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
    // The bundle, by flag or variable: trusted (an empty listing).
    assert_status(&ls(None, &["--ca-bundle", ca]), 0, &["ls --ca-bundle"]);
    assert_status(&ls(Some(ca), &[]), 0, &["ls, AWS_CA_BUNDLE"]);
    // The profile's `ca_bundle` (the default profile's here).
    let config = env.path("config");
    std::fs::write(&config, format!("[default]\nca_bundle = {ca}\n")).unwrap();
    let mut command = env.atrest();
    command
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_CONFIG_FILE", &config);
    let out = command.args(["ls", "s3://b/"]).output().unwrap();
    assert_status(&out, 0, &["ls, ca_bundle in the config file"]);
    // A file that is no bundle, or none at all.
    std::fs::write(env.path("not.pem"), "hello").unwrap();
    let not = env.path("not.pem");
    let out = ls(None, &["--ca-bundle", not.to_str().unwrap()]);
    assert_status(&out, 2, &["ls --ca-bundle not.pem"]);
    assert!(
        stderr(&out).contains("holds no PEM certificate"),
        "{}",
        stderr(&out)
    );
    assert_status(&ls(Some("/nonexistent/ca.pem"), &[]), 3, &["ls, no bundle"]);
}
