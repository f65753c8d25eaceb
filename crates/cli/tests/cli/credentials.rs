//! Credentials as the AWS CLI picks them (`--profile` beats exported keys;
//! `AWS_PROFILE` does not), and every credentials failure as one line, exit
//! 3, saying how to configure credentials. Which key signed a request is
//! read off its `Authorization` header by a small recording server (moto
//! accepts any key and does not say which one it saw).

use std::process::Command;

use crate::fake::{Answer, Recorder};
use crate::harness::*;

/// AWS config and credentials files in the test directory: profile `other`
/// with its own keys, profile `nokeys` with a region only, and `failing`
/// whose credential_process fails.
fn profiles(env: &Env) -> (String, String) {
    let config = env.path("aws-config");
    let credentials = env.path("aws-credentials");
    std::fs::write(
        &config,
        "[profile other]\nregion = us-east-1\n\n[profile nokeys]\nregion = us-east-1\n\n\
         [profile failing]\ncredential_process = false\n",
    )
    .unwrap();
    std::fs::write(
        &credentials,
        "[other]\naws_access_key_id = AKIDPROFILEOTHER\naws_secret_access_key = other-secret\n",
    )
    .unwrap();
    (
        config.display().to_string(),
        credentials.display().to_string(),
    )
}

/// The binary against `server`, with the test's profile files and the
/// environment's keys exported as `AKIDFROMENV`.
fn signed(env: &Env, server: &Recorder) -> Command {
    let (config, credentials) = profiles(env);
    let mut cmd = env.atrest();
    cmd.env("AWS_ENDPOINT_URL", &server.url)
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "env-secret");
    cmd
}

fn not_found() -> Answer {
    Answer::s3_error("404 Not Found", "NoSuchKey", "no such key")
}

#[test]
fn the_profile_flag_beats_exported_keys_and_the_variable_does_not() {
    let Some(env) = env() else { return };
    let inspect = ["inspect", "s3://bucket/key"];

    let server = Recorder::start(not_found());
    let out = signed(&env, &server)
        .args(["--profile", "other"])
        .args(inspect)
        .output()
        .unwrap();
    assert_status(&out, 3, &["--profile other inspect"]);
    let keys = server.keys();
    assert!(!keys.is_empty(), "no request reached the server");
    assert!(
        keys.iter().all(|k| k == "AKIDPROFILEOTHER"),
        "--profile other signed with {keys:?}"
    );

    // AWS_PROFILE alone: the exported keys win, as in the AWS CLI.
    let server = Recorder::start(not_found());
    let out = signed(&env, &server)
        .env("AWS_PROFILE", "other")
        .args(inspect)
        .output()
        .unwrap();
    assert_status(&out, 3, &["AWS_PROFILE=other inspect"]);
    let keys = server.keys();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "AKIDFROMENV"),
        "AWS_PROFILE=other with exported keys signed with {keys:?}"
    );

    // Without exported keys the variable picks the profile.
    let server = Recorder::start(not_found());
    let out = signed(&env, &server)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "other")
        .args(inspect)
        .output()
        .unwrap();
    assert_status(&out, 3, &["AWS_PROFILE=other, no keys, inspect"]);
    assert!(server.keys().iter().all(|k| k == "AKIDPROFILEOTHER"));
}

#[test]
fn an_unknown_profile_is_an_error_naming_it() {
    let Some(env) = env() else { return };
    let server = Recorder::start(not_found());
    let out = signed(&env, &server)
        .args(["--profile", "nosuch", "inspect", "s3://bucket/key"])
        .output()
        .unwrap();
    assert_status(&out, 2, &["--profile nosuch"]);
    let err = stderr(&out);
    assert!(err.contains("`nosuch`"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        server.keys().is_empty(),
        "a request was sent: {:?}",
        server.keys()
    );
}

/// One line, exit 3, a hint on configuring credentials, and no `Debug`
/// dump of the SDK's error.
fn credentials_failure(out: &std::process::Output, what: &str) -> String {
    assert_status(out, 3, &[what]);
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with("atrest: error: "), "{what}: {err}");
    assert!(err.contains("aws configure"), "{what}: no hint: {err}");
    for dump in [
        "DispatchFailure",
        "ProviderError {",
        "ConnectorError",
        "source:",
    ] {
        assert!(!err.contains(dump), "{what}: Debug dump: {err}");
    }
    assert!(err.len() < 400, "{what}: {} characters: {err}", err.len());
    err
}

#[test]
fn every_credentials_failure_is_one_line_exit_3_with_a_hint() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let (config, credentials) = profiles(&env);
    let no_keys = || {
        let mut cmd = env.atrest();
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        cmd
    };
    let commands: [&[&str]; 2] = [
        &["decrypt", &env.uri("k"), "out"],
        &["encrypt", "in", &env.uri("k"), "--key", &env.key_id],
    ];
    for args in commands {
        // None anywhere, instance metadata disabled.
        let out = no_keys().args(args).output().unwrap();
        let err = credentials_failure(&out, "no credentials, IMDS disabled");
        assert!(err.contains("no usable AWS credentials"), "{err}");

        // Instance metadata enabled but refused (nothing listens).
        let out = no_keys()
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
            .args(args)
            .output()
            .unwrap();
        credentials_failure(&out, "no credentials, IMDS refused");

        // A profile without keys, named.
        let out = no_keys()
            .args(["--profile", "nokeys"])
            .args(args)
            .output()
            .unwrap();
        let err = credentials_failure(&out, "--profile nokeys");
        assert!(err.contains("`nokeys` holds no credentials"), "{err}");

        // A provider that fails (credential_process exits 1).
        let out = no_keys()
            .env("AWS_PROFILE", "failing")
            .args(args)
            .output()
            .unwrap();
        credentials_failure(&out, "failing credential_process");
    }
    assert!(!env.path("out").exists());
}

#[test]
fn expired_credentials_are_one_line_exit_3_with_a_hint() {
    let Some(env) = env() else { return };
    std::fs::write(env.path("in"), b"x").unwrap();
    let s3 = Recorder::start(Answer::s3_error(
        "400 Bad Request",
        "ExpiredToken",
        "The provided token has expired.",
    ));
    let out = signed(&env, &s3)
        .args(["inspect", "s3://bucket/key"])
        .output()
        .unwrap();
    let err = credentials_failure(&out, "S3 ExpiredToken");
    assert!(err.contains("ExpiredToken"), "{err}");

    let kms = Recorder::start(Answer::kms_error(
        "ExpiredTokenException",
        "The security token included in the request is expired",
    ));
    let out = signed(&env, &kms)
        .args(["encrypt", "in", "s3://bucket/key", "--key", "alias/k"])
        .output()
        .unwrap();
    let err = credentials_failure(&out, "KMS ExpiredTokenException");
    assert!(err.contains("expired"), "{err}");
}

/// A profile that assumes a role (`role_arn` with `source_profile`, as most
/// multi-account setups are written): before, every command failed with
/// "missing signing region", whatever region was given, as the STS client
/// behind the profile had none. Now its credentials come from STS (moto's)
/// in the profile's region, or --region's.
#[test]
fn a_profile_that_assumes_a_role_works() {
    let Some(env) = env() else { return };
    let config = env.path("role-config");
    std::fs::write(
        &config,
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/reader\n\
         source_profile = base\nregion = us-east-1\n\n\
         [profile base]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n\
         [profile role-no-region]\nrole_arn = arn:aws:iam::123456789012:role/reader\n\
         source_profile = base\n",
    )
    .unwrap();
    std::fs::write(env.path("in"), b"by a role").unwrap();
    env.ok(&["encrypt", "in", &env.uri("k"), "--key", &env.key_id]);
    for args in [
        &["--profile", "role"][..],
        &["--profile", "role-no-region", "--region", "us-east-1"],
    ] {
        let out = env
            .atrest()
            .env("AWS_CONFIG_FILE", &config)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .args(args)
            .args(["decrypt", &env.uri("k"), "-"])
            .output()
            .unwrap();
        assert_status(&out, 0, args);
        assert_eq!(out.stdout, b"by a role", "{args:?}");
    }
}
