//! Which objects a bulk run works on: listed under a prefix or read from a
//! manifest, then only those of one shard, so that N workers (a Kubernetes
//! Indexed Job, an AWS Batch array job) cover a bucket exactly once.
//!
//! Manifests ([`ManifestSource`]):
//!
//! - an S3 Batch Operations CSV: `bucket,key[,versionId]` per line, keys
//!   URL-encoded;
//! - an S3 Inventory report, through its `manifest.json`: the CSV or
//!   CSV.gz files it lists (in its `destinationBucket`), read by its
//!   `fileSchema`. Delete markers and versions that are not the latest are
//!   left out: the bulk commands work on current objects.
//!
//! A [`Shard`] `I/N` takes the objects whose stable hash of bucket and key
//! ([`Shard::of`]) is `I` modulo `N`: every object belongs to exactly one
//! shard whatever the order or the source of the list, so a shard run again
//! (after its worker was killed) covers the same objects.
//!
//! ```
//! use atrest_transfer::manifest::{parse_batch_csv, Shard};
//!
//! let objects = parse_batch_csv("bucket,a%20b.txt\nbucket,c.txt,v1\n".as_bytes()).unwrap();
//! assert_eq!(objects[0].key, "a b.txt");
//! assert_eq!(objects[1].version_id.as_deref(), Some("v1"));
//! let shard: Shard = "1/4".parse().unwrap();
//! let mine = objects.iter().filter(|o| shard.contains(&o.bucket, &o.key)).count();
//! assert!(mine <= 2);
//! ```

use std::io::{BufRead, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use atrest_s3::{ByteRange, Listed, S3Error, S3Uri};
use sha2::{Digest, Sha256};

/// One object a manifest names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// The version, if the manifest names one.
    pub version_id: Option<String>,
    /// The size, if the manifest says (an inventory with `Size`).
    pub size: Option<u64>,
}

/// Where a manifest is: a local file or an S3 object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestSource {
    /// A local file.
    File(PathBuf),
    /// An S3 object.
    S3(S3Uri),
}

impl ManifestSource {
    /// `s3://BUCKET/KEY` or a local path.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.starts_with("s3://") {
            true => S3Uri::parse(s)
                .map(ManifestSource::S3)
                .map_err(|e| e.to_string()),
            false => Ok(ManifestSource::File(s.into())),
        }
    }
}

impl std::fmt::Display for ManifestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestSource::File(path) => write!(f, "{}", path.display()),
            ManifestSource::S3(uri) => write!(f, "{uri}"),
        }
    }
}

/// One of `count` shards, numbered from 0 (as Kubernetes'
/// `JOB_COMPLETION_INDEX` and AWS Batch's `AWS_BATCH_JOB_ARRAY_INDEX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Everything: shard `0/1`.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Self> {
        (index < count).then_some(Shard { index, count })
    }

    /// The shard of `count` that an object belongs to: the first 8 bytes of
    /// SHA-256(`bucket` `/` `key`), big-endian, modulo `count`. Fixed by
    /// this definition (not by a hasher that may change between Rust
    /// releases), so other programs can compute it too.
    pub fn of(bucket: &str, key: &str, count: u64) -> u64 {
        let digest = Sha256::new()
            .chain_update(bucket.as_bytes())
            .chain_update(b"/")
            .chain_update(key.as_bytes())
            .finalize();
        let first = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        first % count.max(1)
    }

    /// Whether the object belongs to this shard.
    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        self.count == 1 || Shard::of(bucket, key, self.count) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, `0 <= I < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: expected I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        Shard::new(i, n).ok_or_else(bad)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A manifest could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Reading the local file failed.
    #[error("cannot read the manifest {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Fetching it (or an inventory file) from S3 failed.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// A line is not what the format says.
    #[error("{source_name}, line {line}: {reason}")]
    Bad {
        /// The manifest or inventory file.
        source_name: String,
        /// The line (from 1).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The inventory's `manifest.json` cannot be used.
    #[error("{source_name} is not a usable S3 Inventory manifest.json: {reason}")]
    Inventory {
        /// The manifest.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A data file of the inventory is not the one its `manifest.json`
    /// describes.
    #[error(
        "{source_name} is not the S3 Inventory data file its manifest.json describes: {reason}"
    )]
    InventoryFile {
        /// The data file.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The rows of a Batch Operations CSV manifest: `bucket,key[,versionId]`,
/// keys URL-encoded. Blank lines are skipped; a row of more fields, a line
/// break inside a field (an unclosed quote) or a `%` that escapes nothing
/// is an error, so a damaged manifest does not quietly select other keys.
pub fn parse_batch_csv(input: impl Read) -> Result<Vec<ObjectRef>, ManifestError> {
    parse_rows(input, "the manifest", &Columns::BATCH, &|_| true)
}

/// The rows of one S3 Inventory CSV file (gunzipped), read by the
/// manifest's `fileSchema` (`Bucket, Key, VersionId, IsLatest, ...`).
/// Delete markers and versions that are not the latest are left out.
pub fn parse_inventory_csv(
    input: impl Read,
    file_schema: &str,
    source_name: &str,
) -> Result<Vec<ObjectRef>, ManifestError> {
    let columns = Columns::of_schema(file_schema, source_name)?;
    parse_rows(input, source_name, &columns, &|_| true)
}

/// Which CSV column holds what.
struct Columns {
    bucket: usize,
    key: usize,
    version_id: Option<usize>,
    size: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
    /// The fewest and the most fields a row may have.
    widths: (usize, usize),
}

impl Columns {
    /// An inventory's, by its `fileSchema` (`Bucket, Key, VersionId,
    /// ...`), which must name the bucket and key columns; `source_name`
    /// is what an error names.
    fn of_schema(file_schema: &str, source_name: &str) -> Result<Columns, ManifestError> {
        let names: Vec<String> = file_schema
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let find = |name: &str| names.iter().position(|n| n == name);
        let bad = |reason: &str| ManifestError::Inventory {
            source_name: source_name.to_owned(),
            reason: reason.to_owned(),
        };
        Ok(Columns {
            bucket: find("bucket").ok_or_else(|| bad("its fileSchema has no Bucket"))?,
            key: find("key").ok_or_else(|| bad("its fileSchema has no Key"))?,
            version_id: find("versionid"),
            size: find("size"),
            is_latest: find("islatest"),
            is_delete_marker: find("isdeletemarker"),
            widths: (names.len(), names.len()),
        })
    }

    /// A Batch Operations CSV manifest's.
    const BATCH: Columns = Columns {
        bucket: 0,
        key: 1,
        version_id: Some(2),
        size: None,
        is_latest: None,
        is_delete_marker: None,
        widths: (2, 3),
    };
}

fn parse_rows(
    input: impl Read,
    source_name: &str,
    columns: &Columns,
    keep: &dyn Fn(&ObjectRef) -> bool,
) -> Result<Vec<ObjectRef>, ManifestError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(Counting {
            inner: input,
            quotes: 0,
            read: 0,
            newlines: std::collections::VecDeque::new(),
            lines_before: 0,
            last: 0,
            seen: 0,
            odd_quote_line: 0,
        });
    let mut found = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut last_line = 1;
    loop {
        // The line a record starts on, from its byte offset (the csv
        // reader's line numbers leave out blank lines).
        let line = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => match record.position() {
                Some(at) => reader.get_mut().line_at(at.byte()),
                None => last_line,
            },
            Err(e) => {
                let line = match e.position() {
                    Some(at) => reader.get_mut().line_at(at.byte()),
                    None => last_line,
                };
                return Err(ManifestError::Bad {
                    source_name: source_name.to_owned(),
                    line,
                    reason: e.to_string(),
                });
            }
        };
        last_line = line;
        let bad = |reason: String| ManifestError::Bad {
            source_name: source_name.to_owned(),
            line,
            reason,
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let (fewest, most) = columns.widths;
        if !(fewest..=most).contains(&record.len()) {
            let expected = match fewest == most {
                true => format!("{fewest}"),
                false => format!("{fewest} to {most}"),
            };
            let fields = match record.len() {
                1 => "1 field".to_owned(),
                n => format!("{n} fields"),
            };
            return Err(bad(format!("{fields}, expected {expected}")));
        }
        // Keys are URL-encoded: a raw line break is a quote left open.
        if record.iter().any(|f| f.contains(['\n', '\r'])) {
            return Err(bad(
                "a line break inside a field (a quote not closed?)".into()
            ));
        }
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let flag = |i: Option<usize>| field(i).map(|v| v.eq_ignore_ascii_case("true"));
        if flag(columns.is_delete_marker) == Some(true) || flag(columns.is_latest) == Some(false) {
            continue;
        }
        let bucket = field(Some(columns.bucket)).ok_or_else(|| bad("no bucket".into()))?;
        let key = field(Some(columns.key)).ok_or_else(|| bad("no key".into()))?;
        let key = strict_url_decode(key)
            .ok_or_else(|| bad(format!("the key `{key}` is not URL-encoded UTF-8")))?;
        let size = match field(columns.size) {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| bad(format!("the size `{s}` is not a number")))?,
            ),
            None => None,
        };
        let object = ObjectRef {
            bucket: bucket.to_owned(),
            key,
            version_id: field(columns.version_id).map(str::to_owned),
            size,
        };
        if keep(&object) {
            found.push(object);
        }
    }
    // A quote still open at the end (no line break after it to tell): the
    // csv reader takes the rest as the field. Its line is the quote's.
    if reader.get_ref().quotes % 2 == 1 {
        return Err(ManifestError::Bad {
            source_name: source_name.to_owned(),
            line: reader.get_ref().odd_quote_line,
            reason: "a quote not closed".into(),
        });
    }
    Ok(found)
}

/// A reader that counts the `"` read through it (in well-formed CSV they
/// pair up: an escaped quote is two), and the line breaks, to tell the line
/// of a byte offset.
struct Counting<R> {
    inner: R,
    quotes: u64,
    /// Bytes read so far.
    read: u64,
    /// Offsets of the line breaks (`\n`, and whether a `\r` came before)
    /// read and not yet passed by [`Counting::line_at`]: those of the
    /// reader's buffer ahead, and of the record being read (16 bytes each;
    /// a run of a million blank lines holds 16 MB until the next record).
    newlines: std::collections::VecDeque<(u64, bool)>,
    /// Line breaks before the first of `newlines`.
    lines_before: u64,
    /// The last byte read.
    last: u8,
    /// Line breaks read.
    seen: u64,
    /// The line of the quote that last left an odd count open.
    odd_quote_line: u64,
}

impl<R> Counting<R> {
    /// The line (from 1) of the record that starts at `offset`, or after
    /// the blank lines there (the csv reader skips them, and its position
    /// is before them); offsets asked for never go back.
    fn line_at(&mut self, mut offset: u64) -> u64 {
        while let Some(&(at, crlf)) = self.newlines.front() {
            let blank = at == offset || (crlf && at == offset + 1);
            if at >= offset && !blank {
                break;
            }
            if blank {
                offset = at + 1;
            }
            self.newlines.pop_front();
            self.lines_before += 1;
        }
        self.lines_before + 1
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            match b {
                b'"' => {
                    self.quotes += 1;
                    if self.quotes % 2 == 1 {
                        self.odd_quote_line = self.seen + 1;
                    }
                }
                b'\n' => {
                    self.seen += 1;
                    let crlf = self.last == b'\r';
                    self.newlines.push_back((self.read + i as u64, crlf));
                }
                _ => {}
            }
            self.last = b;
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// A URL-encoded key, decoded; `None` if a `%` is not followed by two hex
/// digits (a literal `%` is `%25`) or the bytes are not UTF-8.
fn strict_url_decode(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    escapes_ok.then(|| atrest_s3::url_decode(key)).flatten()
}

/// A manifest's rows, as [`load`] read them.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Loaded {
    /// The objects `keep` took.
    pub rows: Vec<ObjectRef>,
    /// Read from an S3 Inventory report (whose rows are current versions),
    /// not a Batch Operations CSV (whose version ids name any version).
    pub inventory: bool,
}

/// Reads a manifest: an S3 Inventory `manifest.json` (recognised by its
/// name or by starting with `{`), whose files are fetched from its
/// destination bucket one at a time; otherwise a Batch Operations CSV,
/// read as a stream (from S3 through an anonymous temporary file), so that
/// memory holds only the rows `keep` takes: a worker holds its shard.
/// Rows are parsed off the async runtime.
pub async fn load(
    s3: &aws_sdk_s3::Client,
    source: &ManifestSource,
    keep: impl Fn(&ObjectRef) -> bool + Send + Sync + 'static,
) -> Result<Loaded, ManifestError> {
    let name = source.to_string();
    let file = open(s3, source).await?;
    let keep = Arc::new(keep);
    let csv_keep = Arc::clone(&keep);
    let csv_name = name.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Found, ManifestError> {
        let mut reader = std::io::BufReader::with_capacity(PEEK, file);
        let io = |source| ManifestError::Io {
            path: csv_name.clone(),
            source,
        };
        // Looked at, not taken: a CSV's line numbers count from its start.
        let first = reader
            .fill_buf()
            .map_err(io)?
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .copied();
        if !(csv_name.ends_with("manifest.json") || first == Some(b'{')) {
            let rows = parse_rows(reader, &csv_name, &Columns::BATCH, &*csv_keep)?;
            return Ok(Found::Csv(rows));
        }
        let mut json = Vec::new();
        reader
            .take(MAX_INVENTORY_MANIFEST)
            .read_to_end(&mut json)
            .map_err(io)?;
        Ok(Found::Json(json))
    });
    let bytes = match read.await.map_err(|e| ManifestError::Io {
        path: name.clone(),
        source: std::io::Error::other(e),
    })?? {
        Found::Csv(rows) => {
            return Ok(Loaded {
                rows,
                inventory: false,
            })
        }
        Found::Json(json) => json,
    };
    let inventory = Inventory::parse(&bytes, &name)?;
    let mut found = Vec::new();
    for file in &inventory.files {
        let uri = S3Uri::parse(&format!("s3://{}/x", inventory.bucket))
            .map_err(|e| ManifestError::Inventory {
                source_name: name.clone(),
                reason: e.to_string(),
            })?
            .with_key(file.key.clone());
        let data = fetch(s3, &uri).await?;
        let file_name = uri.to_string();
        file.check(&data, &file_name)?;
        let rows = match file.key.ends_with(".gz") {
            true => parse_inventory_csv(
                flate2::read::MultiGzDecoder::new(&data[..]),
                &inventory.file_schema,
                &file_name,
            )?,
            false => parse_inventory_csv(&data[..], &inventory.file_schema, &file_name)?,
        };
        found.extend(rows.into_iter().filter(|o| keep(o)));
    }
    Ok(Loaded {
        rows: found,
        inventory: true,
    })
}

/// What [`load`] found at a manifest's source.
enum Found {
    Csv(Vec<ObjectRef>),
    Json(Vec<u8>),
}

/// How much of a manifest is looked at to tell JSON from CSV.
const PEEK: usize = 64 << 10;

/// An inventory `manifest.json` larger than this is no manifest (it lists
/// files, not objects).
const MAX_INVENTORY_MANIFEST: u64 = 64 << 20;

/// A manifest's bytes to read: a local file (or FIFO, a generated
/// manifest) where it is, an S3 object spooled first to an anonymous
/// temporary file (removed when dropped), in chunks: a manifest of
/// millions of rows is never held in memory.
async fn open(
    s3: &aws_sdk_s3::Client,
    source: &ManifestSource,
) -> Result<std::fs::File, ManifestError> {
    match source {
        ManifestSource::File(path) => {
            let io = |source| ManifestError::Io {
                path: path.display().to_string(),
                source,
            };
            // A device (`/dev/zero`) would be read without end.
            let kind = tokio::fs::metadata(path).await.map_err(io)?.file_type();
            if kind.is_char_device() || kind.is_block_device() || kind.is_dir() {
                let why = "a device or a directory, not a manifest file";
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    why,
                )));
            }
            // On the blocking pool: a FIFO waits for its writer, and the
            // caller may give up on a signal meanwhile.
            let owned = path.clone();
            tokio::task::spawn_blocking(move || std::fs::File::open(owned))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)
        }
        ManifestSource::S3(uri) => {
            use std::io::Seek;
            use tokio::io::AsyncWriteExt;
            let io = |source| ManifestError::Io {
                path: format!("{uri} (spooled to a temporary file)"),
                source,
            };
            let mut download = atrest_s3::get(s3, uri, ByteRange::from(0), None).await?;
            let mut spool = tokio::fs::File::from_std(tempfile::tempfile().map_err(io)?);
            while let Some(chunk) = download.next_chunk().await {
                spool.write_all(&chunk?).await.map_err(io)?;
            }
            spool.flush().await.map_err(io)?;
            let mut file = spool.into_std().await;
            file.rewind().map_err(io)?;
            Ok(file)
        }
    }
}

/// The parts of an inventory `manifest.json` that locate its rows.
#[derive(Debug)]
struct Inventory {
    bucket: String,
    file_schema: String,
    files: Vec<InventoryFile>,
}

/// One data file of an inventory, with what `manifest.json` says it holds.
#[derive(Debug, PartialEq)]
struct InventoryFile {
    key: String,
    size: Option<u64>,
    /// Hex, of the file as stored (gzip'd).
    md5: Option<String>,
}

impl InventoryFile {
    /// A file that is not the one the manifest describes (cut short,
    /// replaced, rewritten) is refused: its rows would select other
    /// objects than the inventory did.
    fn check(&self, data: &[u8], file_name: &str) -> Result<(), ManifestError> {
        let bad = |reason: String| ManifestError::InventoryFile {
            source_name: file_name.to_owned(),
            reason,
        };
        if let Some(size) = self.size.filter(|&size| size != data.len() as u64) {
            return Err(bad(format!(
                "it holds {} bytes, its manifest.json says {size}",
                data.len()
            )));
        }
        if let Some(md5) = &self.md5 {
            let actual = hex::encode(<md5::Md5 as md5::Digest>::digest(data));
            if !actual.eq_ignore_ascii_case(md5) {
                return Err(bad(format!(
                    "its MD5 is {actual}, its manifest.json says {md5}"
                )));
            }
        }
        Ok(())
    }
}

impl Inventory {
    fn parse(json: &[u8], name: &str) -> Result<Self, ManifestError> {
        let bad = |reason: String| ManifestError::Inventory {
            source_name: name.to_owned(),
            reason,
        };
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        let text = |field: &str| {
            doc.get(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("no `{field}`")))
        };
        let format = text("fileFormat")?;
        if !format.eq_ignore_ascii_case("CSV") {
            return Err(bad(format!(
                "its fileFormat is {format}: only CSV inventories can be read"
            )));
        }
        let destination = text("destinationBucket")?;
        // `arn:aws:s3:::bucket`, or a plain name.
        let bucket = destination
            .rsplit(':')
            .next()
            .unwrap_or(&destination)
            .to_owned();
        let files = doc
            .get("files")
            .and_then(|f| f.as_array())
            .ok_or_else(|| bad("no `files`".into()))?
            .iter()
            .map(|f| {
                let key = f
                    .get("key")
                    .and_then(|k| k.as_str())
                    .ok_or_else(|| bad("a file without `key`".into()))?;
                Ok(InventoryFile {
                    key: key.to_owned(),
                    size: f.get("size").and_then(|s| s.as_u64()),
                    md5: f
                        .get("MD5checksum")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned),
                })
            })
            .collect::<Result<_, ManifestError>>()?;
        // Checked here, so that the error names manifest.json, not a file.
        let file_schema = text("fileSchema")?;
        Columns::of_schema(&file_schema, name)?;
        Ok(Inventory {
            bucket,
            file_schema,
            files,
        })
    }
}

/// One inventory data file, whole (checked against its size and MD5
/// before its rows are read; gzip'd, and one at a time).
async fn fetch(s3: &aws_sdk_s3::Client, uri: &S3Uri) -> Result<Vec<u8>, ManifestError> {
    let mut download = atrest_s3::get(s3, uri, ByteRange::from(0), None).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = download.next_chunk().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// What a bulk run works on, and what it left to others.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Selection {
    /// The objects, in the bucket of the prefix, sorted by key (sizes from
    /// the listing; from a manifest, its `Size` or 0, but for a `dir/` key
    /// read with a HeadObject).
    pub objects: Vec<Listed>,
    /// Objects of other shards listed, or manifest rows of other shards
    /// read (duplicate rows each counted: telling them apart would hold
    /// every other shard's key).
    pub other_shards: u64,
    /// Manifest rows outside the prefix (another bucket or key prefix).
    pub outside_prefix: u64,
    /// Rows the manifest holds (all of them, in any shard or prefix): none
    /// is worth a word, as a failed export upstream gives an empty file.
    pub manifest_rows: u64,
    /// The S3 Encryption Client instruction files of selected objects, left
    /// out of `objects`: each goes with its object
    /// ([`crate::list::take_instruction_files`]).
    pub instruction_files: Vec<Listed>,
    /// Selected manifest rows that name a version id: the current version
    /// of each object is what is read and written (version ids are not
    /// used), which the caller should say.
    pub with_version_id: u64,
}

/// The objects under `prefix` (its key used as is: end it with `/` for a
/// "directory"), listed or, with a manifest, those of the manifest under
/// it; folder markers left out; then only `shard`'s (an instruction file
/// goes to its object's shard, and is left out with it selected).
/// Duplicate manifest rows (several versions of a key) count once.
pub async fn select(
    s3: &aws_sdk_s3::Client,
    prefix: &S3Uri,
    manifest: Option<&ManifestSource>,
    shard: Shard,
) -> Result<Selection, ManifestError> {
    let mut selection = Selection::default();
    let listed: Vec<Listed> = match manifest {
        None => atrest_s3::list(s3, prefix).await?,
        Some(source) => {
            // Rows are sorted out as they are read (a manifest may hold
            // millions), and counted.
            let outside = Arc::new(AtomicU64::new(0));
            let other_shards = Arc::new(AtomicU64::new(0));
            let (bucket, key) = (prefix.bucket().to_owned(), prefix.key().to_owned());
            let counted = (Arc::clone(&outside), Arc::clone(&other_shards));
            let rows = load(s3, source, move |o| {
                let left_out = if !(o.bucket == bucket && o.key.starts_with(&key)) {
                    &counted.0
                } else if !shard.contains(&o.bucket, crate::list::group_key(&o.key)) {
                    &counted.1
                } else {
                    return true;
                };
                left_out.fetch_add(1, Ordering::Relaxed);
                false
            })
            .await?;
            selection.outside_prefix = outside.load(Ordering::Relaxed);
            selection.other_shards = other_shards.load(Ordering::Relaxed);
            selection.manifest_rows =
                rows.rows.len() as u64 + selection.outside_prefix + selection.other_shards;
            if !rows.inventory {
                let named = rows.rows.iter().filter(|o| o.version_id.is_some());
                selection.with_version_id = named.count() as u64;
            }
            let (mut listed, mut sizeless_dirs) = (Vec::new(), Vec::new());
            for o in rows.rows {
                let row = Listed {
                    key: o.key,
                    size: o.size.unwrap_or(0),
                    last_modified: None,
                };
                match o.size.is_none() && row.key.ends_with('/') {
                    true => sizeless_dirs.push(row),
                    false => listed.push(row),
                }
            }
            listed.extend(sizes_of(s3, prefix, sizeless_dirs).await?);
            listed
        }
    };
    for object in listed {
        // Folder markers; an object of such a name that holds data is
        // rewrapped, verified and copied as any other.
        if object.key.ends_with('/') && object.size == 0 {
            continue;
        }
        match shard.contains(prefix.bucket(), crate::list::group_key(&object.key)) {
            true => selection.objects.push(object),
            false => selection.other_shards += 1,
        }
    }
    selection.objects.sort_by(|a, b| a.key.cmp(&b.key));
    selection.objects.dedup_by(|a, b| a.key == b.key);
    selection.instruction_files =
        crate::list::take_instruction_files(s3, prefix, &mut selection.objects).await?;
    Ok(selection)
}

/// Manifest rows that name `dir/` keys and give no size (a Batch
/// Operations CSV gives none), with their sizes, read with a HeadObject
/// each: only an empty one is a folder marker, and one that holds data
/// must not be left out for one. A row whose object is gone stays 0 (no
/// marker to leave out, no data to lose); one whose HEAD fails otherwise
/// (access denied) is kept, as 1 byte, for its run to meet the failure as
/// that object's, not the whole selection's.
async fn sizes_of(
    s3: &aws_sdk_s3::Client,
    prefix: &S3Uri,
    rows: Vec<Listed>,
) -> Result<Vec<Listed>, S3Error> {
    use futures::StreamExt;
    let heads = rows.into_iter().map(|mut row| async move {
        row.size = match atrest_s3::head(s3, &prefix.with_key(&row.key)).await {
            Ok(head) => head.len,
            Err(S3Error::NoSuchKey { .. }) => 0,
            Err(_) => 1,
        };
        row
    });
    Ok(futures::stream::iter(heads)
        .buffer_unordered(32)
        .collect()
        .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_csv_rows_decode_keys_and_keep_versions() {
        let rows = parse_batch_csv(
            "b1,dir/a%20b%2Bc.txt\n\nb2,%E2%82%AC.txt,3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY\n\"b3\",\"q.txt\"\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].bucket.as_str(), rows[0].key.as_str()),
            ("b1", "dir/a b+c.txt")
        );
        assert_eq!(rows[1].key, "€.txt");
        assert_eq!(
            rows[1].version_id.as_deref(),
            Some("3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY")
        );
        assert_eq!(rows[2].key, "q.txt");
        let err = parse_batch_csv("b1,ok\nb1\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the manifest, line 2: 1 field, expected 2 to 3"
        );
        let err = parse_batch_csv("b1,ok\nb1,\n".as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "the manifest, line 2: no key");
    }

    /// A damaged manifest is refused, not read as other keys.
    #[test]
    fn malformed_rows_are_errors_naming_their_line() {
        let cases = [
            ("b,k,v,extra\n", "line 1: 4 fields, expected 2 to 3"),
            (
                "b,a\nb,\"open\nb,c\n",
                "line 2: a line break inside a field",
            ),
            ("b,100%\n", "line 1: the key `100%` is not URL-encoded"),
            (
                "b,ok\nb,%zz1\n",
                "line 2: the key `%zz1` is not URL-encoded",
            ),
            (
                "b,%E2%82\n",
                "line 1: the key `%E2%82` is not URL-encoded UTF-8",
            ),
            // Cut short inside a quote, with no line break after it.
            ("b,a\nb,\"dir/x,y", "line 2: a quote not closed"),
            // The line the bad row is on, past blank lines, CRLFs, and a
            // stray quote before the end.
            ("b,k\n\n\nb\n", "line 4: 1 field"),
            ("b,k\r\nb\r\n", "line 2: 1 field"),
            ("b,1\r\nb,2\r\nb,3\r\nb,%zz\r\n", "line 4: the key `%zz`"),
            ("b,1\nb,2\nb,3\nb,p\"q/1\nb,4\n", "line 4: a"),
        ];
        for (csv, want) in cases {
            let err = parse_batch_csv(csv.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{csv:?}: {err}");
        }
        assert_eq!(
            parse_batch_csv("b,100%25\n".as_bytes()).unwrap()[0].key,
            "100%"
        );
        // Quotes that pair up, escaped ones too, are well formed.
        let rows = parse_batch_csv("\"b\",\"a\"\"b\"".as_bytes()).unwrap();
        assert_eq!(rows[0].key, "a\"b");
        let err = parse_inventory_csv("\"b\",\"k\",\"1\"\n".as_bytes(), "Bucket, Key", "inv")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "inv, line 1: 3 fields, expected 2");
    }

    #[test]
    fn an_inventory_file_must_be_the_one_its_manifest_describes() {
        let data = b"\"b\",\"k\"\n";
        let file = |size, md5: &str| InventoryFile {
            key: "data/a.csv".into(),
            size,
            md5: Some(md5.into()),
        };
        // md5sum of the bytes above.
        let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(data));
        file(Some(8), &md5).check(data, "f").unwrap();
        file(None, &md5.to_uppercase()).check(data, "f").unwrap();
        let err = file(Some(9), &md5)
            .check(data, "f")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("it holds 8 bytes, its manifest.json says 9"),
            "{err}"
        );
        let other = "0".repeat(32);
        let err = file(Some(8), &other)
            .check(data, "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("its MD5 is {md5}")), "{err}");
    }

    #[test]
    fn inventory_rows_follow_the_file_schema_and_skip_old_versions_and_delete_markers() {
        let schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate";
        let csv = concat!(
            "\"b\",\"a%20file\",\"v2\",\"true\",\"false\",\"10\",\"2026-01-01T00:00:00.000Z\"\n",
            "\"b\",\"a%20file\",\"v1\",\"false\",\"false\",\"9\",\"2025-01-01T00:00:00.000Z\"\n",
            "\"b\",\"gone\",\"v3\",\"true\",\"true\",\"\",\"2026-01-01T00:00:00.000Z\"\n",
        );
        let rows = parse_inventory_csv(csv.as_bytes(), schema, "inv").unwrap();
        assert_eq!(
            rows,
            [ObjectRef {
                bucket: "b".into(),
                key: "a file".into(),
                version_id: Some("v2".into()),
                size: Some(10),
            }]
        );
        // Column order is the schema's.
        let rows =
            parse_inventory_csv("\"k%2F1\",\"b\"\n".as_bytes(), "Key, Bucket", "inv").unwrap();
        assert_eq!(
            (rows[0].bucket.as_str(), rows[0].key.as_str()),
            ("b", "k/1")
        );
        assert!(parse_inventory_csv("x".as_bytes(), "Bucket, Size", "inv").is_err());
    }

    #[test]
    fn inventory_manifest_json_names_its_files_and_schema() {
        let json = br#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::inv-dest",
            "version":"2016-11-30","creationTimestamp":"1514944800000","fileFormat":"CSV",
            "fileSchema":"Bucket, Key, Size",
            "files":[{"key":"src/config/data/a.csv.gz","size":2147,"MD5checksum":"x"}]}"#;
        let inv = Inventory::parse(json, "manifest.json").unwrap();
        assert_eq!(inv.bucket, "inv-dest");
        assert_eq!(
            inv.files,
            [InventoryFile {
                key: "src/config/data/a.csv.gz".into(),
                size: Some(2147),
                md5: Some("x".into()),
            }]
        );
        assert_eq!(inv.file_schema, "Bucket, Key, Size");
        let orc = br#"{"destinationBucket":"d","fileFormat":"ORC","fileSchema":"s","files":[]}"#;
        let err = Inventory::parse(orc, "m").unwrap_err().to_string();
        assert!(err.contains("only CSV"), "{err}");
    }

    #[test]
    fn every_object_is_in_exactly_one_shard_and_shards_are_balanced() {
        let n = 4;
        let mut sizes = [0u32; 4];
        for i in 0..4000 {
            let key = format!("dir/obj-{i}");
            let owners: Vec<u64> = (0..n)
                .filter(|&s| Shard::new(s, n).unwrap().contains("bucket", &key))
                .collect();
            assert_eq!(owners.len(), 1, "{key}");
            sizes[owners[0] as usize] += 1;
        }
        assert!(sizes.iter().all(|&s| (850..1150).contains(&s)), "{sizes:?}");
        // Fixed by definition: SHA-256("b/k") starts with these bytes.
        assert_eq!(Shard::of("b", "k", u64::MAX), {
            let d = Sha256::digest(b"b/k");
            u64::from_be_bytes(d[..8].try_into().unwrap()) % u64::MAX
        });
        assert!(Shard::ALL.contains("any", "thing"));
    }

    #[test]
    fn shards_parse_as_i_of_n() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        for bad in ["4/4", "1", "-1/4", "a/b", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
