//! The report: `target/bench/report.md` and `report.json`.

use std::fmt::Write as _;
use std::process::Command;

use serde_json::{json, Value};

use super::binary::AtrestBinary;
use super::e2e::{self, Direction, E2e, Measurement, RANGED_STREAMS, SMALL};
use super::{size_label, CryptoResult, OpensslSpeed, Options};

/// Everything one run measured.
#[derive(Debug)]
pub struct Report {
    opts: Options,
    started: String,
    commit: String,
    machine: Vec<(&'static str, String)>,
    load_start: String,
    load_end: String,
    /// The atrest binary measured end to end.
    pub atrest: Option<AtrestBinary>,
    pub openssl: Vec<OpensslSpeed>,
    pub crypto: Vec<CryptoResult>,
    pub e2e: Option<E2e>,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn first_line(program: &str, args: &[&str]) -> String {
    crate::util::tool_version(program, args).unwrap_or_else(|| "not installed".into())
}

impl Report {
    pub fn new(opts: &Options) -> Report {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "?".into());
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .unwrap_or("");
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let features: Vec<&str> = ["aes", "pclmulqdq", "avx2", "vaes", "vpclmulqdq", "avx512f"]
            .into_iter()
            .filter(|f| has(f))
            .collect();
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
            })
            .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_else(|| "?".into());
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let commit = Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .current_dir(crate::util::root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Report {
            opts: opts.clone(),
            started: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            commit,
            machine: vec![
                ("cpu", cpu),
                ("nproc", nproc.to_string()),
                ("cpu features", features.join(" ")),
                ("memory", mem),
                ("kernel", first_line("uname", &["-sr"])),
                ("rustc", first_line("rustc", &["--version"])),
                ("openssl", first_line("openssl", &["version"])),
                ("curl", first_line("curl", &["--version"])),
                ("aws", first_line("aws", &["--version"])),
            ],
            load_start: load_average(),
            load_end: String::new(),
            atrest: None,
            openssl: Vec::new(),
            crypto: Vec::new(),
            e2e: None,
        }
    }

    pub fn finish(&mut self) {
        self.load_end = load_average();
    }

    fn openssl(&self, cipher: &str, decrypt: bool) -> Option<f64> {
        self.openssl
            .iter()
            .find(|o| o.cipher == cipher && o.decrypt == decrypt)
            .map(|o| o.mib_s)
    }

    fn crypto(&self, group: &str, id: &str) -> Option<f64> {
        self.crypto
            .iter()
            .find(|c| c.group == group && c.id == id)
            .map(|c| c.mib_s)
    }

    pub fn json(&self) -> Value {
        let e2e = self.e2e.as_ref().map(|e| {
            let rows = |ms: &[Measurement]| -> Vec<Value> {
                ms.iter()
                    .map(|m| {
                        json!({
                            "name": m.name,
                            "direction": match m.direction { Direction::Upload => "upload", Direction::Download => "download" },
                            "plain": m.plain,
                            "peer": m.peer,
                            "format": m.format,
                            "bytes": m.bytes,
                            "command": m.command,
                            "seconds": m.secs,
                            "median_seconds": m.median_secs(),
                            "median_mib_s": m.mib_s(),
                            "peak_rss_kib": m.rss_kib,
                            "client_cpu_seconds": m.client_cpu,
                            "server_cpu_seconds": m.server_cpu,
                            "kms_requests": m.kms.iter().map(|k| k.requests).collect::<Vec<_>>(),
                            "kms_ops": m.kms.first().map(|k| json!(k.ops)),
                            "error": m.error,
                        })
                    })
                    .collect()
            };
            json!({
                "server": e.server,
                "formats": e.formats,
                "sizes": e.sizes.iter().map(|(size, ms)| json!({"bytes": size, "label": size_label(*size), "rows": rows(ms)})).collect::<Vec<_>>(),
                "small_round_trip": rows(&e.small),
                "notes": e.notes,
            })
        });
        json!({
            "command": self.opts.command,
            "date": self.started,
            "commit": self.commit,
            "machine": self.machine.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "load_average": {"start": self.load_start, "end": self.load_end},
            "atrest_binary": self.atrest.as_ref().map(|b| json!({
                "path": b.path, "version": b.version, "sha256": b.sha256,
                "given": b.given, "commit": b.commit, "commit_note": b.commit_note,
            })),
            "openssl_speed": self.openssl.iter().map(|o| json!({
                "cipher": o.cipher, "direction": if o.decrypt { "decrypt" } else { "encrypt" },
                "mib_s": o.mib_s, "command": o.command,
            })).collect::<Vec<_>>(),
            "crypto": self.crypto.iter().map(|c| json!({"group": c.group, "id": c.id, "median_mib_s": c.mib_s})).collect::<Vec<_>>(),
            "e2e": e2e,
            "targets": self.targets().iter().map(|t| json!({"target": t.0, "measured": t.1, "status": t.2})).collect::<Vec<_>>(),
        })
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let w = &mut md;
        let _ = writeln!(w, "# atrest benchmarks\n");
        let _ = writeln!(w, "Command: `{}`  ", self.opts.command);
        let _ = writeln!(w, "Date: {}; commit `{}`  ", self.started, self.commit);
        if let Some(b) = &self.atrest {
            let _ = writeln!(w, "atrest binary: {}  ", b.summary());
        }
        let _ = writeln!(
            w,
            "Load average (1/5/15 min): {} at the start, {} at the end. On a 2-core machine a load above ~0.5 before the run means other work competed for the CPU, and the figures are then lower bounds.\n",
            self.load_start, self.load_end
        );
        let _ = writeln!(w, "| machine | |\n| --- | --- |");
        for (k, v) in &self.machine {
            let _ = writeln!(w, "| {k} | {v} |");
        }

        let _ = writeln!(w, "\n## 1. Local crypto, in process\n");
        let _ = writeln!(
            w,
            "`openssl speed -evp CIPHER [-decrypt] -bytes 16384` (1 thread, 16 KiB blocks), run first as the yardstick:\n"
        );
        let _ = writeln!(
            w,
            "| openssl | encrypt MiB/s | decrypt MiB/s |\n| --- | ---: | ---: |"
        );
        for cipher in ["aes-256-gcm", "aes-256-cbc"] {
            let _ = writeln!(
                w,
                "| {cipher} | {} | {} |",
                fmt_opt(self.openssl(cipher, false), 0),
                fmt_opt(self.openssl(cipher, true), 0)
            );
        }
        if !self.crypto.is_empty() {
            let mib = if self.opts.quick { 16 } else { 64 };
            let _ = writeln!(
                w,
                "\nCriterion (`cargo bench -p atrest-crypto --bench crypto`), median MiB/s over a {mib} MiB buffer per iteration. v2: `FrameCipher::{{seal,open}}_frame_in_place` over every frame; v1: the streaming CBC `Encryptor`/`Decryptor` fed in chunks of that size, and `v1::decrypt_chunk_in_place` on 2 threads. 2 threads split the frames (or CBC blocks) in halves with `std::thread::scope`.\n"
            );
            let _ = writeln!(
                w,
                "| operation | frame / chunk | 1 thread | 2 threads | 1 thread ÷ openssl | 2 threads ÷ openssl |\n| --- | --- | ---: | ---: | ---: | ---: |"
            );
            for (group, label, cipher, decrypt) in [
                (
                    "v2_encrypt",
                    "v2 encrypt (AES-256-GCM)",
                    "aes-256-gcm",
                    false,
                ),
                (
                    "v2_decrypt",
                    "v2 decrypt (AES-256-GCM)",
                    "aes-256-gcm",
                    true,
                ),
                (
                    "v1_encrypt",
                    "v1 encrypt (AES-256-CBC)",
                    "aes-256-cbc",
                    false,
                ),
                (
                    "v1_decrypt",
                    "v1 decrypt (AES-256-CBC)",
                    "aes-256-cbc",
                    true,
                ),
            ] {
                for frame in ["64KiB", "1MiB"] {
                    let one = self.crypto(group, &format!("{frame}/1thread"));
                    let two = self.crypto(group, &format!("{frame}/2threads"));
                    let base = self.openssl(cipher, decrypt);
                    let _ = writeln!(
                        w,
                        "| {label} | {frame} | {} | {} | {} | {} |",
                        fmt_opt(one, 0),
                        fmt_opt(two, 0),
                        ratio(one, base),
                        ratio(two, base)
                    );
                }
            }
            let _ = writeln!(
                w,
                "\n### AES-256-GCM implementation (frames sealed and opened in place, 1 thread)\n"
            );
            let _ = writeln!(
                w,
                "| implementation | seal 64 KiB | open 64 KiB | seal 1 MiB | open 1 MiB |\n| --- | ---: | ---: | ---: | ---: |"
            );
            for imp in ["aes-gcm", "aws-lc-rs"] {
                let cell = |g: &str, f: &str| fmt_opt(self.crypto(g, &format!("{f}/{imp}")), 0);
                let _ = writeln!(
                    w,
                    "| {imp} | {} | {} | {} | {} |",
                    cell("aead_seal", "64KiB"),
                    cell("aead_open", "64KiB"),
                    cell("aead_seal", "1MiB"),
                    cell("aead_open", "1MiB")
                );
            }
            let _ = writeln!(
                w,
                "\nAES-256-CBC encryption (64 KiB chunks, 1 thread): RustCrypto `cbc` {} MiB/s, aws-lc-rs {} MiB/s.",
                fmt_opt(self.crypto("cbc_encrypt", "64KiB/cbc"), 0),
                fmt_opt(self.crypto("cbc_encrypt", "64KiB/aws-lc-rs"), 0)
            );
            let _ = writeln!(
                w,
                "\n`v2::FrameCipher` uses aws-lc-rs (`aead::LessSafeKey`, AES_256_GCM): the faster of the two here. RustCrypto's `aes-gcm` stays as a dev-dependency, as the independent implementation that checks the v2 vectors. `v1::Encryptor` uses AWS-LC's streaming CBC for the same reason; v1 decryption stays on RustCrypto `cbc` (its constant-time padding check is ours, and CBC decryption parallelises: `v1::decrypt_chunk_in_place`)."
            );
        }

        if let Some(e) = &self.e2e {
            self.e2e_markdown(w, e);
        }

        let _ = writeln!(w, "\n## Targets\n");
        let _ = writeln!(w, "| target | measured | status |\n| --- | --- | --- |");
        for (target, measured, status) in self.targets() {
            let _ = writeln!(w, "| {target} | {measured} | {status} |");
        }
        md
    }

    fn e2e_markdown(&self, w: &mut String, e: &E2e) {
        let through = match &self.atrest {
            Some(b) if b.given => "the binary given with `--atrest`",
            _ => "the release binary",
        };
        let _ = writeln!(w, "\n## 2. End to end, through {through}\n");
        let _ = writeln!(
            w,
            "S3: {}. KMS: moto_server 5.2.5 on 127.0.0.1. Formats measured: {} (those `atrest encrypt-with-kms --help` lists), at default settings except the row named with `--multipart-threshold 5120` (one streaming PUT instead of parts). Each figure is the median of the runs (files over 1 GiB: one run, atrest and single-stream curl only); peak RSS is the largest `Maximum resident set size` from `/usr/bin/time -v` over the runs. Plain downloads write to /dev/null; atrest decrypts to a file on tmpfs (`/dev/shm`: transfer and decryption without the disk), to a file on disk (adding the write and its `fsync`), and to stdout pointed at /dev/null (the plain downloads' sink; stdout is written in order, files by position from concurrent streams). \"÷ best plain\" divides by the fastest plain transfer (curl or aws) of the same size and direction. \"CPU s\" is the command's CPU time (user + system, with its children, from `/usr/bin/time -v`) + the S3 server's over the same run (from `/proc/PID/stat`), medians: client, server and KMS emulator share the 2 cores, so when both are busy the wall time follows their sum. The plain multipart upload has atrest's shape (8 MiB parts, 4 in flight). The throughput targets take atrest's fastest row of the direction, named in the targets table.\n",
            e.server,
            e.formats.join(", ")
        );
        for note in &e.notes {
            let _ = writeln!(w, "- {note}");
        }
        for (size, rows) in &e.sizes {
            let _ = writeln!(w, "\n### {} file\n", size_label(*size));
            let _ = writeln!(
                w,
                "| command | direction | runs | median s | MiB/s | ÷ best plain | peak RSS MiB | CPU s: client + server | KMS calls |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
            );
            for m in rows {
                let best = best_plain(rows, m.direction);
                let dir = match m.direction {
                    Direction::Upload => "upload",
                    Direction::Download => "download",
                };
                match &m.error {
                    Some(err) => {
                        let first = err.lines().next().unwrap_or_default().replace('|', "\\|");
                        let _ = writeln!(w, "| {} | {dir} | | | FAILED: {first} | | | | |", m.name);
                    }
                    None => {
                        let _ = writeln!(
                            w,
                            "| {} | {dir} | {} | {} | {} | {} | {} | {} | {} |",
                            m.name,
                            m.secs.len(),
                            fmt_opt(m.median_secs(), 2),
                            fmt_opt(m.mib_s(), 0),
                            ratio(m.mib_s(), best),
                            fmt_opt(m.peak_rss_mib(), 1),
                            fmt_cpu(m),
                            m.kms_summary().unwrap_or_default()
                        );
                    }
                }
            }
        }
        let _ = writeln!(
            w,
            "\nCommands (size 64M shown; the others differ only in names):\n"
        );
        if let Some((_, rows)) = e.sizes.first() {
            for m in rows {
                let _ = writeln!(w, "- {}: `{}`", m.name, m.command.replace('`', "'"));
            }
        }
        let _ = writeln!(
            w,
            "\nWhat limits the ceiling: s3s-fs {} serves a GET by reading its file in 4 KiB pieces (`ReaderStream::with_capacity(file, 4096)`), which caps one GET stream near 113 MiB/s on this class of machine (the same server with 1 MiB reads gave 459 MiB/s); concurrent range requests ({} or {RANGED_STREAMS}) spread that cost over both cores. Uploads are bounded by the server writing the body to disk (page cache) and, for a single PUT, by one TCP stream and one server task. Client, server and KMS emulator share the same 2 cores.",
            e2e::S3S_FS_VERSION,
            RANGED_STREAMS / 2
        );

        let _ = writeln!(w, "\n### Start-up and a {SMALL}-byte object round trip\n");
        let _ = writeln!(
            w,
            "| command | runs | median s | peak RSS MiB | KMS calls |\n| --- | ---: | ---: | ---: | --- |"
        );
        // The size tables' row without direction, throughput, ratio and CPU:
        // at 1 KiB they measure start-up, not bandwidth (a reason to keep
        // two row formats, not a copy).
        for m in &e.small {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} |",
                m.name,
                m.secs.len(),
                fmt_opt(m.median_secs(), 3),
                fmt_opt(m.peak_rss_mib(), 1),
                m.kms_summary().unwrap_or_default()
            );
        }
        let _ = writeln!(
            w,
            "\n## 3. KMS calls per operation\n\nCounted per run from moto's request log (every `POST /` is a KMS request: S3 goes to s3s-fs), with the operation names from atrest's own `kms call` debug lines (`RUST_LOG=atrest_kms=debug`); shown in the KMS column above. The target is exactly one GenerateDataKey (v2 encrypt) or Decrypt per object."
        );
    }

    /// (target, measured, status) rows.
    fn targets(&self) -> Vec<(String, String, String)> {
        let mut t = Vec::new();
        let met = |ok: bool| if ok { "met" } else { "NOT met" }.to_owned();
        let missing = "not measured".to_owned();

        for (group, cipher, decrypt, what) in [
            (
                "v2_encrypt",
                "aes-256-gcm",
                false,
                "v2 in-process encrypt ≥ 0.8 × openssl AES-256-GCM (1 thread)",
            ),
            (
                "v2_decrypt",
                "aes-256-gcm",
                true,
                "v2 in-process decrypt ≥ 0.8 × openssl AES-256-GCM (1 thread)",
            ),
            (
                "v1_encrypt",
                "aes-256-cbc",
                false,
                "v1 in-process encrypt ≥ 0.8 × openssl AES-256-CBC encrypt",
            ),
        ] {
            let base = self.openssl(cipher, decrypt);
            let worst = ["64KiB", "1MiB"]
                .iter()
                .filter_map(|f| self.crypto(group, &format!("{f}/1thread")))
                .min_by(f64::total_cmp);
            match (worst, base) {
                (Some(v), Some(b)) => t.push((
                    what.to_owned(),
                    format!("{v:.0} MiB/s = {:.2} × {b:.0} (slower frame size)", v / b),
                    met(v / b >= 0.8),
                )),
                _ => t.push((what.to_owned(), String::new(), missing.clone())),
            }
        }
        for (group, what) in [
            (
                "v2_encrypt",
                "v2 encrypt faster with both cores (1 MiB frames)",
            ),
            (
                "v2_decrypt",
                "v2 decrypt faster with both cores (1 MiB frames)",
            ),
            (
                "v1_decrypt",
                "v1 decrypt parallel (2 threads faster than 1, 1 MiB chunks)",
            ),
        ] {
            match (
                self.crypto(group, "1MiB/1thread"),
                self.crypto(group, "1MiB/2threads"),
            ) {
                (Some(one), Some(two)) => t.push((
                    what.to_owned(),
                    format!("{two:.0} vs {one:.0} MiB/s: {:.2}×", two / one),
                    met(two > one * 1.2),
                )),
                _ => t.push((what.to_owned(), String::new(), missing.clone())),
            }
        }

        let Some(e) = &self.e2e else {
            return t;
        };
        let gib = e.sizes.iter().find(|(s, _)| *s == 1 << 30);
        for (direction, what) in [
            (
                Direction::Upload,
                "1 GiB v2 encrypt+upload ≥ 0.9 × fastest plain upload (atrest's fastest mode)",
            ),
            (
                Direction::Download,
                "1 GiB v2 download+decrypt ≥ 0.9 × fastest plain download (atrest's fastest sink)",
            ),
        ] {
            let Some((_, rows)) = gib else {
                t.push((what.to_owned(), "no 1 GiB run".into(), missing.clone()));
                continue;
            };
            let best = best_plain(rows, direction);
            let find = |f: &str| fastest(rows, direction, f);
            match (find("v2").and_then(Measurement::mib_s), best) {
                (Some(v), Some(b)) => {
                    let atrest = find("v2").expect("measured");
                    let plain = best_plain_row(rows, direction).expect("measured");
                    t.push((
                        what.to_owned(),
                        format!(
                            "{v:.0} MiB/s = {:.2} × {b:.0} ({}); CPU s, client + server: {} vs {} for {}",
                            v / b,
                            atrest.name,
                            fmt_cpu(atrest),
                            fmt_cpu(plain),
                            plain.name
                        ),
                        met(v / b >= 0.9),
                    ))
                }
                _ => {
                    let v1 = find("v1").and_then(Measurement::mib_s);
                    let info = match (v1, best) {
                        (Some(v), Some(b)) => {
                            format!("v1 for reference: {v:.0} MiB/s = {:.2} × {b:.0}", v / b)
                        }
                        _ => String::new(),
                    };
                    t.push((
                        what.to_owned(),
                        info,
                        "not measured: v2 not in this build's CLI".into(),
                    ));
                }
            }
        }
        if let Some((_, rows)) = gib {
            let multipart = rows
                .iter()
                .find(|m| m.plain && m.name.starts_with("curl multipart"))
                .and_then(Measurement::mib_s);
            // atrest's own multipart upload (the default settings).
            let v2 = rows
                .iter()
                .find(|m| m.direction == Direction::Upload && m.format.as_deref() == Some("v2"))
                .and_then(Measurement::mib_s);
            let what = "1 GiB v2 encrypt+upload (default, in parts) ≥ 0.9 × plain multipart upload of the same shape"
                .to_owned();
            match (v2, multipart) {
                (Some(v), Some(b)) => t.push((
                    what,
                    format!("{v:.0} MiB/s = {:.2} × {b:.0}", v / b),
                    met(v / b >= 0.9),
                )),
                _ => t.push((what, String::new(), missing.clone())),
            }
        }
        if let Some((_, rows)) = gib {
            for direction in [Direction::Upload, Direction::Download] {
                let dir = match direction {
                    Direction::Upload => "encrypt+upload",
                    Direction::Download => "download+decrypt",
                };
                let what = format!("1 GiB v2 {dir} ≥ 2 × every encrypting peer measured");
                let v2 = fastest(rows, direction, "v2").and_then(Measurement::mib_s);
                let peers: Vec<(&str, f64)> = rows
                    .iter()
                    .filter(|m| m.peer && m.direction == direction)
                    .filter_map(|m| m.mib_s().map(|v| (m.name.as_str(), v)))
                    .collect();
                match (v2, peers.is_empty()) {
                    (Some(v), false) => {
                        let worst = peers
                            .iter()
                            .map(|(_, p)| v / p)
                            .fold(f64::INFINITY, f64::min);
                        let detail = peers
                            .iter()
                            .map(|(name, p)| format!("{:.2} × {name} ({p:.0} MiB/s)", v / p))
                            .collect::<Vec<_>>()
                            .join("; ");
                        t.push((what, detail, met(worst >= 2.0)));
                    }
                    _ => t.push((what, "no peer measured".into(), missing.clone())),
                }
            }
        }
        for (size, rows) in &e.sizes {
            if *size < 1 << 30 {
                continue;
            }
            let atrest: Vec<&Measurement> = rows.iter().filter(|m| !m.plain && !m.peer).collect();
            if atrest.is_empty() {
                continue;
            }
            let worst = atrest
                .iter()
                .filter_map(|m| m.peak_rss_mib().map(|r| (r, m.name.as_str())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let failed = atrest.iter().any(|m| m.error.is_some());
            let what = format!(
                "peak RSS ≤ 64 MiB, {} file, both directions",
                size_label(*size)
            );
            match worst {
                Some((r, name)) => t.push((
                    what,
                    format!("largest {r:.1} MiB ({name})"),
                    met(r <= 64.0 && !failed),
                )),
                None => t.push((what, String::new(), missing.clone())),
            }
        }
        if !e.sizes.iter().any(|(s, _)| *s >= 4 << 30) {
            t.push((
                "peak RSS ≤ 64 MiB, 4 GiB file".into(),
                "run with --sizes 64M,1G,4G".into(),
                missing.clone(),
            ));
        }
        let sum = |pred: &dyn Fn(&Measurement) -> bool| -> Option<f64> {
            let ms: Vec<&Measurement> = e.small.iter().filter(|m| pred(m)).collect();
            if ms.len() != 2 {
                return None;
            }
            ms.iter().map(|m| m.median_secs()).sum()
        };
        let atrest = sum(&|m| !m.plain && !m.peer);
        let aws = sum(&|m| m.name.starts_with("aws"));
        let what = "start-up + small round trip no slower than `aws s3 cp` up + down".to_owned();
        match (atrest, aws) {
            (Some(a), Some(b)) => t.push((what, format!("{a:.3} s vs {b:.3} s"), met(a <= b))),
            _ => t.push((what, String::new(), missing.clone())),
        }
        let counts: Vec<(String, usize)> = e
            .sizes
            .iter()
            .flat_map(|(_, rows)| rows.iter())
            .chain(&e.small)
            .filter(|m| !m.plain && !m.peer)
            .flat_map(|m| m.kms.iter().map(move |k| (m.name.clone(), k.requests)))
            .collect();
        let bad: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n != 1)
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        t.push((
            "exactly one KMS call per object (GenerateDataKey or Decrypt)".into(),
            if bad.is_empty() {
                format!("1 in each of {} atrest runs", counts.len())
            } else {
                bad.join("; ")
            },
            met(bad.is_empty() && !counts.is_empty()),
        ));
        t
    }
}

/// atrest's fastest row of `format` in `direction` (any sink or variant).
fn fastest<'a>(
    rows: &'a [Measurement],
    direction: Direction,
    format: &str,
) -> Option<&'a Measurement> {
    fastest_where(rows, |m| {
        m.direction == direction && m.format.as_deref() == Some(format)
    })
}

/// The measured row with the highest throughput among those `keep` takes.
fn fastest_where(
    rows: &[Measurement],
    keep: impl Fn(&Measurement) -> bool,
) -> Option<&Measurement> {
    rows.iter()
        .filter(|m| keep(m) && m.mib_s().is_some())
        .max_by(|a, b| {
            a.mib_s()
                .unwrap_or(0.0)
                .total_cmp(&b.mib_s().unwrap_or(0.0))
        })
}

fn best_plain(rows: &[Measurement], direction: Direction) -> Option<f64> {
    best_plain_row(rows, direction).and_then(Measurement::mib_s)
}

fn best_plain_row(rows: &[Measurement], direction: Direction) -> Option<&Measurement> {
    fastest_where(rows, |m| m.plain && m.direction == direction)
}

/// "client + server" CPU seconds.
fn fmt_cpu(m: &Measurement) -> String {
    m.median_cpu()
        .map(|(client, server)| format!("{client:.2} + {server:.2}"))
        .unwrap_or_default()
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

fn ratio(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
        _ => "–".into(),
    }
}
