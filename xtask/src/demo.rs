//! `cargo xtask demo`: the quick start without an AWS account. Runs the real
//! `atrest` binary first offline (a key file and local files: no emulator,
//! no AWS configuration at all), then against a local moto_server (S3 +
//! KMS). `--offline` stops after the first part.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::moto::{self, Moto};
use crate::util::{self, output, run, step};

const BUCKET: &str = "atrest-demo";

/// Creates a KMS key and the bucket; prints the key id then the key ARN.
const SETUP_PY: &str = r#"
import os, sys, boto3
endpoint, region = os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_REGION"]
kms = boto3.client("kms", endpoint_url=endpoint, region_name=region)
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
key = kms.create_key(Description="atrest demo")["KeyMetadata"]
s3.create_bucket(Bucket=sys.argv[1])
print(key["KeyId"])
print(key["Arn"])
"#;

/// Saves the raw stored object to a file; prints its user metadata.
const FETCH_PY: &str = r#"
import os, sys, boto3
endpoint, region = os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_REGION"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
obj = s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])
with open(sys.argv[3], "wb") as f:
    f.write(obj["Body"].read())
for k, v in sorted(obj.get("Metadata", {}).items()):
    print(f"{k}: {v}")
"#;

pub fn demo(offline_only: bool) -> Result<()> {
    step("build atrest");
    let bin = util::build_atrest("build atrest", &[])?;

    offline(&bin)?;
    if offline_only {
        eprintln!("\ndemo OK (offline part)");
        return Ok(());
    }

    step("moto venv");
    moto::ensure_venv()?;
    step("moto_server");
    let moto = Moto::start()?;

    step("create a KMS key and an S3 bucket (boto3, in the moto venv)");
    eprintln!("kms.create_key(); s3.create_bucket(Bucket=\"{BUCKET}\")");
    let setup = output("setup", python(&moto, SETUP_PY).arg(BUCKET))?;
    let mut lines = setup.lines();
    let (Some(key_id), Some(key_arn)) = (lines.next(), lines.next()) else {
        bail!("step `setup`: unexpected output from boto3: {setup:?}");
    };
    eprintln!("KMS key: {key_id} ({key_arn})\nS3 bucket: {BUCKET}");

    let work = TempDir::new("s3")?;
    let dir = work.path();
    eprintln!("working directory: {}", dir.display());
    let plaintext = demo_text();
    std::fs::write(dir.join("demo.txt"), &plaintext)?;
    eprintln!("wrote demo.txt ({} bytes)", plaintext.len());

    step("atrest create-data-key");
    atrest(
        "create-data-key",
        &bin,
        dir,
        &moto,
        &["create-data-key", key_id],
    )?;
    match std::fs::metadata(dir.join("data.key")) {
        Ok(m) => eprintln!("data.key: {} bytes (the KMS-wrapped data key)", m.len()),
        Err(e) => bail!("step `create-data-key`: no ./data.key afterwards: {e}"),
    }

    round_trip(&bin, dir, &moto, &plaintext, None)?;

    let help = Command::new(&bin)
        .args(["encrypt-with-kms", "--help"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running `atrest encrypt-with-kms --help`")?;
    if String::from_utf8_lossy(&help.stdout).contains("--format") {
        round_trip(&bin, dir, &moto, &plaintext, Some("v1"))?;
    } else {
        eprintln!("\n(atrest encrypt-with-kms has no --format flag: skipping the v1 round trip)");
    }

    drop(work);
    drop(moto);
    eprintln!("\ndemo OK");
    Ok(())
}

/// The main job with no cloud at all: keygen, encrypt, inspect, decrypt on
/// local files, each command run with an empty environment (no AWS
/// variables, no region, no home directory).
fn offline(bin: &Path) -> Result<()> {
    step("offline: a key file and local files (no emulator, no AWS configuration)");
    let work = TempDir::new("offline")?;
    let dir = work.path();
    eprintln!("working directory: {}", dir.display());
    let plaintext = demo_text();
    std::fs::write(dir.join("demo.txt"), &plaintext)?;
    eprintln!("wrote demo.txt ({} bytes)", plaintext.len());
    let bare = |args: &[&str]| {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .stdin(Stdio::null());
        cmd
    };

    step("atrest keygen demo.key");
    run("keygen", &mut bare(&["keygen", "demo.key"]))?;
    let meta = std::fs::metadata(dir.join("demo.key")).context("no demo.key afterwards")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        eprintln!(
            "demo.key: {} bytes, mode {:04o} (a raw AES-256 key: keep it secret, keep a copy)",
            meta.len(),
            meta.permissions().mode() & 0o7777
        );
    }

    step("atrest encrypt --key-file demo.key demo.txt demo.txt.atrest");
    let enc = [
        "encrypt",
        "--key-file",
        "demo.key",
        "--context",
        "purpose=demo",
        "demo.txt",
        "demo.txt.atrest",
    ];
    run("encrypt", &mut bare(&enc))?;
    let sealed = std::fs::read(dir.join("demo.txt.atrest"))?;
    let probe = &plaintext[..32];
    if sealed.windows(probe.len()).any(|w| w == probe) {
        bail!("demo.txt.atrest contains the plaintext");
    }
    eprintln!(
        "demo.txt.atrest: {} bytes, first bytes {}",
        sealed.len(),
        hex(&sealed[..16])
    );

    step("atrest inspect demo.txt.atrest (the header, without the key)");
    run("inspect", &mut bare(&["inspect", "demo.txt.atrest"]))?;

    step("atrest decrypt --key-file demo.key demo.txt.atrest demo.out.txt");
    let dec = [
        "decrypt",
        "--key-file",
        "demo.key",
        "--expect-context",
        "purpose=demo",
        "demo.txt.atrest",
        "demo.out.txt",
    ];
    run("decrypt", &mut bare(&dec))?;
    if std::fs::read(dir.join("demo.out.txt"))? != plaintext {
        bail!("offline round trip FAILED: demo.txt and demo.out.txt differ");
    }
    eprintln!(
        "demo.txt and demo.out.txt are identical ({} bytes): round trip OK",
        plaintext.len()
    );

    step("atrest decrypt with another key file (must fail, exit 4)");
    run("keygen", &mut bare(&["keygen", "other.key"]))?;
    let wrong = bare(&[
        "decrypt",
        "--key-file",
        "other.key",
        "demo.txt.atrest",
        "x.txt",
    ])
    .output()
    .context("running atrest decrypt")?;
    eprint!("{}", String::from_utf8_lossy(&wrong.stderr));
    if wrong.status.code() != Some(4) || dir.join("x.txt").exists() {
        bail!("decrypting with another key file did not fail with exit 4 and no output");
    }
    eprintln!("exit 4, no output written");
    Ok(())
}

/// encrypt-with-kms, decrypt-with-kms, compare, and show the stored object.
fn round_trip(
    bin: &Path,
    dir: &Path,
    moto: &Moto,
    plaintext: &[u8],
    format: Option<&str>,
) -> Result<()> {
    let (name, label) = match format {
        Some(f) => (format!("demo-{f}"), format!(" (--format {f})")),
        None => ("demo".to_owned(), String::new()),
    };
    let key = format!("demo/{name}.txt");
    let url = format!("s3://{BUCKET}/{key}");
    let out_file = format!("{name}.out.txt");

    step(&format!("atrest encrypt-with-kms{label}"));
    let mut args = vec!["encrypt-with-kms"];
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    args.extend(["demo.txt", &url]);
    atrest("encrypt-with-kms", bin, dir, moto, &args)?;

    step(&format!("atrest decrypt-with-kms{label}"));
    atrest(
        "decrypt-with-kms",
        bin,
        dir,
        moto,
        &["decrypt-with-kms", &url, &out_file],
    )?;

    let decrypted =
        std::fs::read(dir.join(&out_file)).with_context(|| format!("reading {out_file}"))?;
    if decrypted != plaintext {
        let at = plaintext
            .iter()
            .zip(&decrypted)
            .position(|(a, b)| a != b)
            .unwrap_or(plaintext.len().min(decrypted.len()));
        bail!(
            "round trip{label} FAILED: demo.txt ({} bytes) and {out_file} ({} bytes) differ at byte {at}",
            plaintext.len(),
            decrypted.len()
        );
    }
    eprintln!(
        "demo.txt and {out_file} are identical ({} bytes): round trip OK{label}",
        plaintext.len()
    );

    step(&format!("the object as stored in S3{label}"));
    let raw_file = dir.join(format!("{name}.raw"));
    let metadata = output(
        "fetch raw object",
        python(moto, FETCH_PY).args([BUCKET, &key]).arg(&raw_file),
    )?;
    let raw = std::fs::read(&raw_file)?;
    eprintln!(
        "s3.get_object(Bucket=\"{BUCKET}\", Key=\"{key}\"): {} bytes (plaintext: {} bytes)",
        raw.len(),
        plaintext.len()
    );
    eprintln!("first bytes: {}", hex(&raw[..raw.len().min(32)]));
    if !metadata.trim().is_empty() {
        eprintln!("user metadata:");
        for line in metadata.lines() {
            eprintln!("  {line}");
        }
    }
    let probe = &plaintext[..plaintext.len().min(32)];
    if raw == plaintext || raw.windows(probe.len()).any(|w| w == probe) {
        bail!("the stored object{label} contains the plaintext");
    }
    eprintln!("the plaintext does not appear in the stored object");
    Ok(())
}

/// Runs the real binary in `dir`, echoing its command line first.
fn atrest(step: &str, bin: &Path, dir: &Path, moto: &Moto, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    moto.apply_env(&mut cmd);
    run(step, &mut cmd)
}

/// `python -c SCRIPT` from the moto venv, pointed at `moto`.
fn python(moto: &Moto, script: &str) -> Command {
    let mut cmd = Command::new(moto::python());
    cmd.arg("-c").arg(script).stdin(Stdio::null());
    moto.apply_env(&mut cmd);
    cmd
}

/// A few KiB of text, not a multiple of the AES block size.
fn demo_text() -> Vec<u8> {
    let mut text = String::from(
        "atrest demo: this file is encrypted on the client; S3 only stores ciphertext.\n",
    );
    for i in 1..=80 {
        let _ = writeln!(
            text,
            "line {i:03}: envelope encryption with a data key issued and wrapped by AWS KMS."
        );
    }
    text.push_str("the end");
    text.into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(part: &str) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("atrest-demo-{part}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}
