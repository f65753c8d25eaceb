//! The plain baselines: the same files moved with `curl --aws-sigv4` and
//! no encryption (one PUT, a multipart upload of atrest's shape, one GET,
//! ranged GETs in parallel), the protocol ceiling that atrest's rows are
//! divided by.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::measure::{no_check, Kind, Measurement, Row};
use super::servers::{ACCESS_KEY, REGION, SECRET_KEY};
use super::{size_label, Ctx, BUCKET, SMALL};
use crate::util::{display, run};

/// Concurrent range requests of the multi-stream plain download: atrest's
/// default streams into a file (the harness also runs half as many).
pub const RANGED_STREAMS: u64 = 8;

impl Ctx<'_> {
    /// The path-style URL of `key` in the bench bucket.
    fn url(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{key}", self.servers.env.s3)
    }

    /// curl signing its requests for s3s-fs.
    fn curl(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-f", "--aws-sigv4"])
            .arg(format!("aws:amz:{REGION}:s3"))
            .arg("--user")
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"))
            // curl 7.88 signs no payload hash of its own; s3s-fs wants one.
            // (Any extra header is signed too: so no `-H Expect:`.)
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
        cmd
    }
}

/// One `curl -T` PUT of the whole file (to `plain-SIZE`, which the plain
/// downloads read).
pub fn plain_upload(ctx: &Ctx, file: &Path, size: u64, runs: usize) -> Measurement {
    let url = ctx.url(&format!("plain-{}", size_label(size)));
    let row = Row::upload("curl PUT (1 stream)", Kind::Plain, size, runs);
    ctx.measure(
        &row,
        || {
            let mut c = ctx.curl();
            c.args(["-o", "/dev/null", "-T"]).arg(file).arg(&url);
            c
        },
        no_check,
    )
}

/// atrest's default part size and concurrency, for the plain multipart
/// upload that has the same shape as atrest's.
pub const PART_SIZE: u64 = 8 << 20;
const PARTS_IN_FLIGHT: u64 = 4;

/// A plain multipart upload with curl: the file pre-split into 8 MiB parts
/// (not timed), CreateMultipartUpload, the parts 4 at a time (xargs -P),
/// CompleteMultipartUpload. On s3s-fs the completion reads every part back
/// and copies it into the object, so this is the ceiling for any multipart
/// upload to this server.
pub fn plain_multipart_upload(
    ctx: &Ctx,
    file: &Path,
    size: u64,
    runs: usize,
) -> Result<Measurement> {
    let label = size_label(size);
    let dir = ctx.dir.join(format!("multipart-{label}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts)?;
    run(
        "split the file into parts",
        Command::new("split")
            .args(["-b", &PART_SIZE.to_string(), "-d", "-a", "5"])
            .arg(file)
            .arg(parts.join("part-")),
    )?;
    let curl = display(&ctx.curl());
    let url = ctx.url(&format!("multipart-{label}"));
    // One part: `sh part.sh NUMBER FILE`, with URL and ID from the caller.
    std::fs::write(
        dir.join("part.sh"),
        format!(
            "set -eu\nexec {curl} -o /dev/null -D \"parts/$2.h\" -T \"parts/$2\" \"$URL?partNumber=$1&uploadId=$ID\"\n"
        ),
    )?;
    std::fs::write(
        dir.join("upload.sh"),
        format!(
            r#"set -eu
export URL='{url}'
ID=$({curl} -X POST "$URL?uploads=" | sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p')
test -n "$ID"
export ID
rm -f parts/*.h
ls parts | awk '{{print NR, $0}}' | xargs -P {PARTS_IN_FLIGHT} -n 2 sh part.sh
{{
  echo '<CompleteMultipartUpload>'
  n=0
  for f in $(ls parts | grep -v '\.h$'); do
    n=$((n+1))
    etag=$(grep -i '^etag:' "parts/$f.h" | tr -d '\r' | cut -d' ' -f2-)
    echo "<Part><PartNumber>$n</PartNumber><ETag>$etag</ETag></Part>"
  done
  echo '</CompleteMultipartUpload>'
}} > complete.xml
{curl} -o /dev/null -X POST --data-binary @complete.xml "$URL?uploadId=$ID"
"#
        ),
    )?;
    let row = Row::upload(
        format!("curl multipart PUT ({PARTS_IN_FLIGHT} × 8 MiB parts in flight)"),
        Kind::Plain,
        size,
        runs,
    );
    let m = ctx.measure(
        &row,
        || {
            let mut c = Command::new("sh");
            c.arg("upload.sh").current_dir(&dir);
            c
        },
        no_check,
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(m)
}

/// One GET, and with `full` ranged GETs in parallel, of `plain-SIZE` into
/// /dev/null.
pub fn plain_downloads(ctx: &Ctx, size: u64, runs: usize, full: bool) -> Vec<Measurement> {
    let url = ctx.url(&format!("plain-{}", size_label(size)));
    let mut rows = Vec::new();
    if size > SMALL {
        let row = Row::download("curl GET (1 stream)", Kind::Plain, size, runs);
        rows.push(ctx.measure(
            &row,
            || {
                let mut c = ctx.curl();
                c.args(["-o", "/dev/null"]).arg(&url);
                c
            },
            no_check,
        ));
    }
    // As many streams as atrest's default into a file, and half as many.
    for streams in [RANGED_STREAMS / 2, RANGED_STREAMS] {
        if !(full && size > SMALL) {
            break;
        }
        let part = size.div_ceil(streams);
        let curl = display(&ctx.curl());
        // Start every range, then wait for each and fail if any failed.
        let mut script = String::from("pids=; ");
        for i in 0..streams {
            let end = ((i + 1) * part).min(size) - 1;
            script.push_str(&format!(
                "{curl} -o /dev/null -r {}-{end} '{url}' & pids=\"$pids $!\"; ",
                i * part
            ));
        }
        script.push_str("for p in $pids; do wait $p || exit 1; done");
        let row = Row::download(
            format!("curl GET ({streams} ranged streams)"),
            Kind::Plain,
            size,
            runs,
        );
        rows.push(ctx.measure(
            &row,
            || {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&script);
                c
            },
            no_check,
        ));
    }
    rows
}
