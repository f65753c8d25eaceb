//! The peers: other tools on the same files. `aws s3 cp` (when the AWS
//! CLI is installed) moves them without encryption, so its rows count as
//! plain baselines; rclone crypt (when rclone is installed) encrypts too.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::files::{same_contents, tmpfs};
use super::measure::{no_check, run_quiet, Kind, Measurement, Row};
use super::servers::{Env, ACCESS_KEY, REGION, SECRET_KEY};
use super::{size_label, Ctx, BUCKET};
use crate::util::output;

impl Ctx<'_> {
    /// `aws s3 cp` pointed at s3s-fs.
    fn aws(&self) -> Command {
        let mut cmd = Command::new("aws");
        cmd.arg("--endpoint-url").arg(&self.servers.env.s3).args([
            "s3",
            "cp",
            "--only-show-errors",
        ]);
        cmd
    }
}

/// `aws s3 cp FILE s3://.../aws-SIZE`.
pub fn aws_upload(ctx: &Ctx, file: &Path, size: u64, runs: usize) -> Measurement {
    let uri = format!("s3://{BUCKET}/aws-{}", size_label(size));
    let row = Row::upload("aws s3 cp (upload)", Kind::Plain, size, runs);
    ctx.measure(
        &row,
        || {
            let mut c = ctx.aws();
            c.arg(file).arg(&uri);
            c
        },
        no_check,
    )
}

/// `aws s3 cp s3://.../aws-SIZE FILE` (the object of [`aws_upload`]), the
/// file removed after each run.
pub fn aws_download(ctx: &Ctx, size: u64, runs: usize) -> Measurement {
    let label = size_label(size);
    let out = ctx.work.join(format!("aws-{label}.out"));
    let row = Row::download("aws s3 cp (download)", Kind::Plain, size, runs);
    ctx.measure(
        &row,
        || {
            let mut c = ctx.aws();
            c.arg(format!("s3://{BUCKET}/aws-{label}")).arg(&out);
            c
        },
        |_| std::fs::remove_file(&out).context("aws s3 cp wrote no file"),
    )
}

/// rclone (Debian's package) configured from the environment only: an S3
/// remote on s3s-fs and a crypt remote over it. The Debian build fails when
/// `AWS_CA_BUNDLE` is set: `Env::apply` removes every `AWS_*` variable.
pub struct RcloneEnv {
    vars: Vec<(String, String)>,
    version: String,
}

impl RcloneEnv {
    pub fn new(env: &Env, version: &str) -> Result<Self> {
        let obscured = output(
            "rclone obscure",
            Command::new("rclone").args(["obscure", "atrest-bench-password"]),
        )?;
        let vars = [
            ("RCLONE_CONFIG", "/nonexistent/rclone.conf"),
            ("RCLONE_CONFIG_S3_TYPE", "s3"),
            ("RCLONE_CONFIG_S3_PROVIDER", "Other"),
            ("RCLONE_CONFIG_S3_ENDPOINT", &env.s3),
            ("RCLONE_CONFIG_S3_ACCESS_KEY_ID", ACCESS_KEY),
            ("RCLONE_CONFIG_S3_SECRET_ACCESS_KEY", SECRET_KEY),
            ("RCLONE_CONFIG_S3_REGION", REGION),
            ("RCLONE_CONFIG_S3_FORCE_PATH_STYLE", "true"),
            ("RCLONE_CONFIG_CRYPT_TYPE", "crypt"),
            ("RCLONE_CONFIG_CRYPT_REMOTE", &format!("s3:{BUCKET}/rclone")),
            ("RCLONE_CONFIG_CRYPT_PASSWORD", obscured.trim()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Ok(RcloneEnv {
            vars,
            version: version.to_owned(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("rclone");
        cmd.args(args).envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `rclone copyto FROM TO`.
    fn copyto(&self, from: impl AsRef<OsStr>, to: impl AsRef<OsStr>) -> Command {
        let mut cmd = self.command(&["copyto"]);
        cmd.arg(from).arg(to);
        cmd
    }
}

/// `rclone copyto FILE crypt:...`, the remote object deleted after each run
/// (rclone is much slower when it finds one to compare with).
pub fn rclone_upload(ctx: &Ctx, r: &RcloneEnv, file: &Path, size: u64, runs: usize) -> Measurement {
    let remote = format!("crypt:rclone-{}", size_label(size));
    let row = Row::upload(
        format!("rclone crypt upload ({})", r.version),
        Kind::Peer,
        size,
        runs,
    );
    ctx.measure(
        &row,
        || r.copyto(file, &remote),
        |run| {
            if run + 1 < runs {
                let mut c = r.command(&["deletefile", &remote]);
                ctx.servers.env.apply(&mut c);
                run_quiet("rclone deletefile", &mut c)?;
            }
            Ok(())
        },
    )
}

/// `rclone copyto crypt:... FILE` into tmpfs when there is one (rclone
/// downloads large files with 4 streams by default), checked once.
pub fn rclone_download(
    ctx: &Ctx,
    r: &RcloneEnv,
    file: &Path,
    size: u64,
    runs: usize,
) -> Measurement {
    let label = size_label(size);
    let remote = format!("crypt:rclone-{label}");
    let (dir, place) = match tmpfs() {
        Some(shm) => (shm, "a file on tmpfs"),
        None => (ctx.work, "a file"),
    };
    let out = dir.join(format!("rclone-{label}.out"));
    let row = Row::download(
        format!("rclone crypt download to {place}"),
        Kind::Peer,
        size,
        runs,
    );
    ctx.measure(
        &row,
        || r.copyto(&remote, &out),
        |run| {
            if run == 0 {
                same_contents(file, &out)?;
            }
            std::fs::remove_file(&out).context("removing rclone's output")
        },
    )
}

/// The AWS S3 Encryption Client for Python (in xtask's venv, for the
/// interop tests), driven by the tests' script: one V3 `upload_file` or
/// `get_object` per run. Its reads hold the whole object in memory.
pub struct PythonS3ec {
    python: std::path::PathBuf,
    script: std::path::PathBuf,
}

impl PythonS3ec {
    /// The client, if the venv has it.
    pub fn find() -> Option<Self> {
        let python = crate::moto::python();
        let has = Command::new(&python)
            .args(["-c", "import s3_encryption"])
            .output()
            .is_ok_and(|o| o.status.success());
        let script = crate::util::root().join("crates/cli/tests/cli/s3ec_client.py");
        (has && script.is_file()).then_some(PythonS3ec { python, script })
    }

    fn job(&self, ctx: &Ctx, op: &str, key: &str, path: &Path) -> Command {
        let job = serde_json::json!([{"op": op, "key": key, "path": path, "context": null}]);
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .arg(ctx.key_id)
            .arg(BUCKET)
            .arg(job.to_string());
        cmd
    }
}

/// The Python client's V3 upload of `file`.
pub fn s3ec_python_upload(
    ctx: &Ctx,
    py: &PythonS3ec,
    file: &Path,
    size: u64,
    runs: usize,
) -> Measurement {
    let key = format!("s3ec-python-{}", size_label(size));
    let row = Row::upload(
        "S3 Encryption Client for Python (V3 upload_file)",
        Kind::Peer,
        size,
        runs,
    );
    ctx.measure(&row, || py.job(ctx, "put", &key, file), no_check)
}

/// The Python client's read of its own object into a file (on tmpfs when
/// there is one), checked against the original once.
pub fn s3ec_python_download(
    ctx: &Ctx,
    py: &PythonS3ec,
    file: &Path,
    size: u64,
    runs: usize,
) -> Measurement {
    let label = size_label(size);
    let key = format!("s3ec-python-{label}");
    let out = tmpfs()
        .unwrap_or(ctx.work)
        .join(format!("s3ec-python-{label}.out"));
    let row = Row::download(
        "S3 Encryption Client for Python (V3 get_object)",
        Kind::Peer,
        size,
        runs,
    );
    ctx.measure(
        &row,
        || py.job(ctx, "get", &key, &out),
        |run| {
            if run == 0 {
                same_contents(file, &out)?;
            }
            std::fs::remove_file(&out).context("the Python client wrote no file")
        },
    )
}
