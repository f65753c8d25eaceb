//! What `sync` transfers: the decision `aws s3 sync` makes from sizes and
//! modification times, with the S3 side's *plaintext* size, learned from
//! listings alone wherever possible.
//!
//! A listing gives each object's length and LastModified, not its header.
//! An object's plaintext size follows from its length once its *layout* is
//! known (header length and, for v2, frame size; exact for v2, within a
//! 16-byte block for v1). The objects of one tree written by one command
//! share a layout (same key, context, frame size), so [`Sizes`] reads the
//! header of an object only when no layout it has learned so far explains
//! that object's length for the local file's size: a re-run over an
//! unchanged tree reads one header, or none when every size already
//! differs or matches a layout.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use atrest_transfer::sync::{decide, Action, Direction, Pair, Rules, SizeCheck};
//!
//! let pair = Pair {
//!     local_modified: UNIX_EPOCH + Duration::from_secs(100),
//!     remote_modified: UNIX_EPOCH + Duration::from_secs(200),
//!     size: SizeCheck::Same,
//! };
//! // Uploaded after the file last changed, same size: nothing to do.
//! assert_eq!(decide(Direction::Upload, Rules::default(), &pair), Action::Skip);
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use atrest_format::inspect::{inspect, Inspected, Inspection, PlaintextLen};
use atrest_s3::{ByteRange, S3Error, S3Uri};

use crate::HEADER_FETCH;

/// Which way a sync goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Local files to objects.
    Upload,
    /// Objects to local files.
    Download,
}

/// The flags that change the decision (`aws s3 sync`'s names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rules {
    /// `--size-only`: compare sizes only.
    pub size_only: bool,
    /// `--exact-timestamps`: downloads transfer same-sized objects unless
    /// the times match exactly, and replace local files newer than the
    /// object.
    pub exact_timestamps: bool,
}

impl Rules {
    /// `size_only` and `exact_timestamps` as given.
    pub fn new(size_only: bool, exact_timestamps: bool) -> Self {
        Rules {
            size_only,
            exact_timestamps,
        }
    }
}

/// Whether a file and an object have the same (plaintext) size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeCheck {
    /// The same size (v1: within the object's padding).
    Same,
    /// Different sizes.
    Differ,
    /// Not known (an S3 Encryption Client object, or an archived one that
    /// cannot be read): times decide. An object
    /// that is neither an atrest object nor the S3 Encryption Client's, or
    /// a damaged one, is no copy of any file: [`SizeCheck::Differ`].
    Unknown,
}

/// A file and the object of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The local file's modification time.
    pub local_modified: SystemTime,
    /// When the object was written (LastModified) or, for the exact
    /// comparison of `--exact-timestamps`, the source time it recorded.
    pub remote_modified: SystemTime,
    /// How their sizes compare.
    pub size: SizeCheck,
}

/// What to do with a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing: the destination is up to date.
    Skip,
    /// Transfer it.
    Transfer,
    /// Download direction: the local file is newer than the object, so it
    /// is kept (it may hold changes made since the last sync); only
    /// `--exact-timestamps` replaces it.
    KeepNewer,
    /// Same size, and the times cannot tell: the object's source time is
    /// needed ([`source_modified`]); decide again with it in
    /// [`Pair::remote_modified`] and [`decide_exact`]. Downloads with
    /// `--exact-timestamps`; uploads of a file modified within the second
    /// its object was written.
    NeedExactTime,
}

/// Whole seconds since the epoch: S3's LastModified has no finer
/// resolution, so a download's times compare at that grain (a file given
/// an object's time is never newer than it, even where the file system
/// rounds).
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The decision `aws s3 sync` makes for a file and an object that both
/// exist: transfer if the sizes differ, or if the source is newer (uploads:
/// the file changed after the object was written). Downloads do not
/// overwrite a local file newer than the object (see
/// [`Action::KeepNewer`]).
pub fn decide(direction: Direction, rules: Rules, pair: &Pair) -> Action {
    let local_newer = secs(pair.local_modified) > secs(pair.remote_modified);
    // LastModified keeps whole seconds: a file modified later in the
    // second its object was written may have changed after the upload
    // (`aws s3 sync` sends it again); the time the upload recorded tells.
    let same_second = pair.local_modified > pair.remote_modified && !local_newer;
    let differ = pair.size == SizeCheck::Differ;
    match direction {
        Direction::Upload => match (differ, rules.size_only) {
            (true, _) => Action::Transfer,
            (false, true) => Action::Skip,
            (false, false) if local_newer => Action::Transfer,
            (false, false) if same_second => Action::NeedExactTime,
            (false, false) => Action::Skip,
        },
        Direction::Download => {
            if rules.exact_timestamps {
                return match differ {
                    true => Action::Transfer,
                    false if rules.size_only => Action::Skip,
                    false => Action::NeedExactTime,
                };
            }
            match (differ, local_newer) {
                (_, true) if !rules.size_only || differ => Action::KeepNewer,
                (true, _) => Action::Transfer,
                _ => Action::Skip,
            }
        }
    }
}

/// The decision once [`Action::NeedExactTime`] has the object's source
/// time ([`source_modified`]) in [`Pair::remote_modified`]: transfer unless
/// the times match: to the second downloading, exactly uploading (the file
/// is the one uploaded only if its time is the one recorded).
pub fn decide_exact(direction: Direction, pair: &Pair) -> Action {
    let same = match direction {
        Direction::Download => secs(pair.local_modified) == secs(pair.remote_modified),
        Direction::Upload => pair.local_modified == pair.remote_modified,
    };
    match same {
        true => Action::Skip,
        false => Action::Transfer,
    }
}

/// The source time of the object at `uri` (one HeadObject): the one its
/// upload recorded ([`crate::metadata::MTIME_METADATA`]), or when it was
/// written. The time a download gives its file.
pub async fn source_modified(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
) -> Result<Option<SystemTime>, S3Error> {
    let head = atrest_s3::head(s3, uri).await?;
    Ok(
        crate::metadata::recorded_mtime(&head.properties.metadata).or_else(|| {
            head.last_modified
                .and_then(|t| SystemTime::try_from(t).ok())
        }),
    )
}

/// A file or a listed object, by what the decision reads of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// A file's size, or an object's length as listed (its ciphertext).
    pub size: u64,
    /// A file's modification time, or an object's LastModified.
    pub modified: SystemTime,
}

/// What changes a sync's plan besides [`Rules`] (`aws s3 sync`'s flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// `--size-only` and `--exact-timestamps`.
    pub rules: Rules,
    /// `--no-overwrite`: a destination that exists is left alone.
    pub no_overwrite: bool,
    /// `--delete`: destinations with no source are deleted.
    pub delete: bool,
}

impl Options {
    /// The rules and flags as given.
    pub fn new(rules: Rules, no_overwrite: bool, delete: bool) -> Self {
        Options {
            rules,
            no_overwrite,
            delete,
        }
    }
}

/// What one sync does, by relative name (a path in `/` form, or a key's
/// part after the prefix), each list in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// To transfer: new on the source side, or changed.
    pub transfer: Vec<String>,
    /// How many destinations are up to date (or left by `no_overwrite`).
    pub current: usize,
    /// Downloads: local files newer than their object, kept
    /// ([`Action::KeepNewer`]).
    pub kept: Vec<String>,
    /// With [`Options::delete`]: destinations that have no source.
    pub delete: Vec<String>,
}

impl Plan {
    /// Takes out of [`Plan::delete`] the destinations whose source exists
    /// but could not be read (`unreadable`: relative names; one ending in
    /// `/` is a directory, covering every name under it), and returns
    /// them: a source that failed is not a source that is gone, and a
    /// failed run must not lose what the destination had.
    pub fn spare(&mut self, unreadable: &[String]) -> Vec<String> {
        let covers = |name: &str| {
            unreadable.iter().any(|u| match u.ends_with('/') {
                true => name.starts_with(u.as_str()),
                false => name == u,
            })
        };
        let (spared, delete) = std::mem::take(&mut self.delete)
            .into_iter()
            .partition(|name| covers(name));
        self.delete = delete;
        spared
    }

    /// The part of the plan that needs no request: names on one side only,
    /// and `no_overwrite`. Returns the names on both sides, still to be
    /// compared.
    fn split(
        direction: Direction,
        options: Options,
        local: &BTreeMap<String, Entry>,
        remote: &BTreeMap<String, Entry>,
    ) -> (Plan, Vec<String>) {
        let (source, destination) = match direction {
            Direction::Upload => (local, remote),
            Direction::Download => (remote, local),
        };
        let mut plan = Plan::default();
        let mut both = Vec::new();
        for name in source.keys() {
            match destination.contains_key(name) {
                false => plan.transfer.push(name.clone()),
                true if options.no_overwrite => plan.current += 1,
                true => both.push(name.clone()),
            }
        }
        if options.delete {
            plan.delete = destination
                .keys()
                .filter(|name| !source.contains_key(*name))
                .cloned()
                .collect();
        }
        (plan, both)
    }
}

/// What a sync between the files `local` and the objects `remote` (listed
/// under `uri`'s bucket and `prefix`, by the same relative names) does in
/// `direction`, as `aws s3 sync` decides. Requests only what the listings
/// cannot tell: an object's header where no learned layout explains its
/// size ([`Sizes`]), one at a time so that each read teaches the rest, and
/// the source time of a same-sized object ([`source_modified`]) for
/// `--exact-timestamps` downloads and for uploads of a file modified within
/// the second its object was written.
pub async fn plan(
    sizes: &Sizes,
    direction: Direction,
    options: Options,
    (uri, prefix): (&S3Uri, &str),
    local: &BTreeMap<String, Entry>,
    remote: &BTreeMap<String, Entry>,
) -> Result<Plan, S3Error> {
    let (mut plan, both) = Plan::split(direction, options, local, remote);
    for name in both {
        let (file, object) = (&local[&name], &remote[&name]);
        let at = uri.with_key(format!("{prefix}{name}"));
        let mut pair = Pair {
            local_modified: file.modified,
            remote_modified: object.modified,
            size: sizes.compare(&at, object.size, file.size).await?,
        };
        let mut action = decide(direction, options.rules, &pair);
        // A file newer than its object may be the very file uploaded, its
        // time ahead of the clock (a future-dated file): the time its
        // upload recorded tells (one HeadObject per such file; it was kept
        // with a warning on the sync down right after the sync up).
        if action == Action::KeepNewer && pair.size == SizeCheck::Same {
            let source = source_modified(&sizes.s3, &at).await?;
            if source.is_some_and(|t| secs(t) == secs(file.modified)) {
                action = Action::Skip;
            }
        }
        if action == Action::NeedExactTime {
            let source = source_modified(&sizes.s3, &at).await?;
            pair.remote_modified = source.unwrap_or(pair.remote_modified);
            action = decide_exact(direction, &pair);
        }
        match action {
            Action::Transfer => plan.transfer.push(name),
            Action::KeepNewer => plan.kept.push(name),
            Action::Skip | Action::NeedExactTime => plan.current += 1,
        }
    }
    plan.transfer.sort();
    Ok(plan)
}

/// What a sync from the objects `source` to the objects `destination`
/// (two prefixes, by the same relative names) does, as `aws s3 sync`
/// decides between S3 locations: a copy inside S3 keeps every byte, so
/// listed lengths compare as they are, and an object is copied again when
/// the source was written after its copy. An object counts as written
/// when its instruction file was, too: rotating such an object rewrites
/// only that file. Needs no request.
pub fn plan_copy(options: Options, source: &Remote, destination: &Remote) -> Plan {
    let (mut plan, both) = Plan::split(
        Direction::Upload,
        options,
        &source.objects,
        &destination.objects,
    );
    for name in both {
        let pair = Pair {
            local_modified: source.written(&name),
            remote_modified: destination.written(&name),
            size: match source.objects[&name].size == destination.objects[&name].size {
                true => SizeCheck::Same,
                false => SizeCheck::Differ,
            },
        };
        match decide(Direction::Upload, options.rules, &pair) {
            Action::Transfer => plan.transfer.push(name),
            _ => plan.current += 1,
        }
    }
    plan.transfer.sort();
    plan
}

/// The objects under a prefix that a sync compares files with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remote {
    /// The objects taken, by relative name.
    pub objects: BTreeMap<String, Entry>,
    /// The S3 Encryption Client instruction files of listed objects, by
    /// relative name, with when each was written: not objects to sync, but
    /// deleted with theirs (and never to be replaced by an upload: that
    /// would leave their object undecryptable).
    pub instruction_files: BTreeMap<String, SystemTime>,
}

impl Remote {
    /// Lists the objects under `prefix` in `uri`'s bucket; `relative` gives
    /// an object's relative name from its key, or `None` to leave it out
    /// (outside a filter).
    pub async fn list(
        s3: &aws_sdk_s3::Client,
        uri: &S3Uri,
        prefix: &str,
        relative: impl Fn(&str, u64) -> Option<String>,
    ) -> Result<Remote, S3Error> {
        let mut listing = atrest_s3::list(s3, &uri.with_key(prefix)).await?;
        let modified = |o: &atrest_s3::Listed| {
            let at = o.last_modified.and_then(|t| SystemTime::try_from(t).ok());
            at.unwrap_or(UNIX_EPOCH)
        };
        let instruction_files = crate::list::take_instruction_files(s3, uri, &mut listing)
            .await?
            .into_iter()
            .filter_map(|o| Some((o.key.strip_prefix(prefix)?.to_owned(), modified(&o))))
            .collect();
        let objects = listing
            .iter()
            .filter_map(|o| {
                let entry = Entry {
                    size: o.size,
                    modified: modified(o),
                };
                Some((relative(&o.key, o.size)?, entry))
            })
            .collect();
        Ok(Remote {
            objects,
            instruction_files,
        })
    }

    /// `deleted` (relative names of objects) with the instruction files
    /// of those objects added.
    pub fn with_instruction_files(&self, mut deleted: Vec<String>) -> Vec<String> {
        let suffix = atrest_format::s3ec::INSTRUCTION_SUFFIX;
        let theirs: Vec<String> = deleted
            .iter()
            .map(|name| format!("{name}{suffix}"))
            .filter(|name| self.instruction_files.contains_key(name))
            .collect();
        deleted.extend(theirs);
        deleted
    }

    /// When the listed object `name` or its instruction file was last
    /// written, whichever is later.
    fn written(&self, name: &str) -> SystemTime {
        let suffix = atrest_format::s3ec::INSTRUCTION_SUFFIX;
        let instruction = self.instruction_files.get(&format!("{name}{suffix}"));
        let object = self.objects[name].modified;
        instruction.map_or(object, |&at| at.max(object))
    }
}

/// How an object is laid out: what turns its length into its plaintext
/// length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V1 { header_len: u64 },
    V2 { header_len: u64, frame_size: u64 },
}

impl Layout {
    fn of(info: &Inspection) -> Option<Layout> {
        let header_len = info.header_len();
        match (info.version(), info.frame_size()) {
            (1, _) => Some(Layout::V1 { header_len }),
            (2, Some(frame_size)) => Some(Layout::V2 {
                header_len,
                frame_size,
            }),
            _ => None,
        }
    }

    /// Whether an object of `object_len` bytes laid out so can hold
    /// `plaintext_len` bytes.
    fn holds(&self, object_len: u64, plaintext_len: u64) -> bool {
        match *self {
            Layout::V1 { header_len } => {
                object_len.checked_sub(header_len)
                    == Some(atrest_format::v1::ciphertext_len(plaintext_len))
            }
            Layout::V2 {
                header_len,
                frame_size,
            } => {
                let body = atrest_format::v2::body_len(plaintext_len, frame_size);
                body.and_then(|b| b.checked_add(header_len)) == Some(object_len)
            }
        }
    }
}

/// Compares local sizes with the plaintext sizes of listed objects,
/// reading an object's header only when no layout learned so far explains
/// its length (see the module's documentation). Shared by the tasks of one
/// sync.
#[derive(Debug)]
pub struct Sizes {
    s3: aws_sdk_s3::Client,
    layouts: Mutex<Vec<Layout>>,
    header_reads: std::sync::atomic::AtomicU64,
}

/// Bytes read first for a header: enough for the usual ones (a KMS-wrapped
/// key and a short context); a longer header is read on in a second GET.
const SMALL_HEADER: u64 = 1024;

impl Sizes {
    /// Sizes of objects read through `s3`.
    pub fn new(s3: aws_sdk_s3::Client) -> Self {
        Sizes {
            s3,
            layouts: Mutex::new(Vec::new()),
            header_reads: Default::default(),
        }
    }

    /// How many headers have been read so far.
    pub fn header_reads(&self) -> u64 {
        self.header_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a layout learned so far makes `object_len` hold exactly
    /// `plaintext_len` bytes: no request.
    pub fn known_same(&self, object_len: u64, plaintext_len: u64) -> bool {
        let layouts = self.layouts.lock().expect("not poisoned");
        layouts.iter().any(|l| l.holds(object_len, plaintext_len))
    }

    /// How the object at `uri` (`object_len` bytes) compares with a local
    /// file of `plaintext_len` bytes: from a learned layout if one fits,
    /// else from the object's header (then learned).
    pub async fn compare(
        &self,
        uri: &S3Uri,
        object_len: u64,
        plaintext_len: u64,
    ) -> Result<SizeCheck, S3Error> {
        if self.known_same(object_len, plaintext_len) {
            return Ok(SizeCheck::Same);
        }
        let info = match self.read_header(uri, object_len).await {
            Ok(Read::Atrest(info)) => info,
            // Archived objects are not read until restored: times decide,
            // so a sync up leaves one alone until its file changes.
            Ok(Read::S3ec) | Err(S3Error::Archived { .. }) => return Ok(SizeCheck::Unknown),
            Ok(Read::Other) => return Ok(SizeCheck::Differ),
            Err(e) => return Err(e),
        };
        if let Some(layout) = Layout::of(&info) {
            let mut layouts = self.layouts.lock().expect("not poisoned");
            if !layouts.contains(&layout) {
                layouts.push(layout);
            }
        }
        Ok(match info.plaintext_len {
            PlaintextLen::Exact(n) if n == plaintext_len => SizeCheck::Same,
            PlaintextLen::Between { min, max } if (min..=max).contains(&plaintext_len) => {
                SizeCheck::Same
            }
            _ => SizeCheck::Differ,
        })
    }

    /// The header of the object, from its first bytes (a second GET only
    /// for a long header), or what else it is.
    async fn read_header(&self, uri: &S3Uri, object_len: u64) -> Result<Read, S3Error> {
        if object_len == 0 {
            return Ok(Read::Other);
        }
        let mut want = object_len.min(SMALL_HEADER);
        loop {
            self.header_reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let got =
                atrest_s3::get_range(&self.s3, uri, ByteRange::new(0, want - 1), None).await?;
            match inspect(&got.bytes, got.object_len) {
                Ok(Inspected::Complete(info)) => return Ok(Read::Atrest(info)),
                Ok(Inspected::Incomplete { needed }) if want < HEADER_FETCH => {
                    want = (want + needed as u64).min(HEADER_FETCH).min(got.object_len);
                }
                _ if crate::list::is_s3_encryption_client(&got.metadata) => return Ok(Read::S3ec),
                _ => {
                    // Or one whose envelope is in an instruction file.
                    let suffix = atrest_format::s3ec::INSTRUCTION_SUFFIX;
                    let instruction = uri.with_key(format!("{}{suffix}", uri.key()));
                    return match atrest_s3::head(&self.s3, &instruction).await {
                        Ok(_) => Ok(Read::S3ec),
                        Err(S3Error::NoSuchKey { .. }) => Ok(Read::Other),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }
}

/// What the first bytes of an object (and its metadata) say it is.
enum Read {
    Atrest(Inspection),
    /// An S3 Encryption Client object: its plaintext size is not compared.
    S3ec,
    /// Neither: no encrypted copy of any file.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn what_could_not_be_read_is_not_deleted() {
        let mut plan = Plan {
            delete: ["a", "ab", "dir/x", "dir/y/z", "dirt", "fifo"]
                .map(str::to_owned)
                .into(),
            ..Plan::default()
        };
        let spared = plan.spare(&["a".into(), "dir/".into(), "fifo".into()]);
        assert_eq!(spared, ["a", "dir/x", "dir/y/z", "fifo"]);
        assert_eq!(plan.delete, ["ab", "dirt"]);
    }

    #[test]
    fn a_deleted_object_takes_its_instruction_file_along() {
        let remote = Remote {
            objects: BTreeMap::new(),
            instruction_files: ["a.instruction", "c.instruction"]
                .map(|n| (n.to_owned(), at(1)))
                .into(),
        };
        let deleted = remote.with_instruction_files(vec!["a".into(), "b".into()]);
        assert_eq!(deleted, ["a", "b", "a.instruction"]);
    }

    fn pair(local: u64, remote: u64, size: SizeCheck) -> Pair {
        Pair {
            local_modified: at(local),
            remote_modified: at(remote),
            size,
        }
    }

    #[test]
    fn uploads_go_when_the_size_differs_or_the_file_is_newer() {
        use Action::*;
        use SizeCheck::*;
        let up = |p: Pair, r: Rules| decide(Direction::Upload, r, &p);
        let plain = Rules::default();
        assert_eq!(up(pair(100, 200, Same), plain), Skip);
        assert_eq!(up(pair(100, 100, Same), plain), Skip);
        assert_eq!(up(pair(201, 200, Same), plain), Transfer);
        assert_eq!(up(pair(100, 200, Differ), plain), Transfer);
        assert_eq!(up(pair(100, 200, Unknown), plain), Skip);
        let size_only = Rules::new(true, false);
        assert_eq!(up(pair(300, 200, Same), size_only), Skip);
        assert_eq!(up(pair(100, 200, Differ), size_only), Transfer);
        // S3 keeps whole seconds: a file changed later in the second its
        // object was written (200 is 200.000) may have changed after it,
        // and goes again, as with `aws s3 sync`.
        let p = Pair {
            local_modified: at(200) + Duration::from_millis(700),
            ..pair(0, 200, Same)
        };
        assert_eq!(up(p, plain), NeedExactTime);
        // The upload recorded the file's time: the same file; or not.
        let recorded = Pair {
            remote_modified: p.local_modified,
            ..p
        };
        assert_eq!(decide_exact(Direction::Upload, &recorded), Skip);
        let other = Pair {
            remote_modified: at(200) + Duration::from_millis(300),
            ..p
        };
        assert_eq!(decide_exact(Direction::Upload, &other), Transfer);
    }

    #[test]
    fn downloads_keep_newer_local_files_unless_exact_timestamps() {
        use Action::*;
        use SizeCheck::*;
        let down = |p: Pair, r: Rules| decide(Direction::Download, r, &p);
        let plain = Rules::default();
        // As aws s3 sync: an older local file of the same size is current
        // (downloads give files the source's time, before LastModified).
        assert_eq!(down(pair(100, 200, Same), plain), Skip);
        assert_eq!(down(pair(100, 200, Differ), plain), Transfer);
        // A local file changed since: kept, whatever the sizes.
        assert_eq!(down(pair(300, 200, Same), plain), KeepNewer);
        assert_eq!(down(pair(300, 200, Differ), plain), KeepNewer);
        let size_only = Rules::new(true, false);
        assert_eq!(down(pair(300, 200, Same), size_only), Skip);
        assert_eq!(down(pair(300, 200, Differ), size_only), KeepNewer);
        let exact = Rules::new(false, true);
        assert_eq!(down(pair(300, 200, Differ), exact), Transfer);
        assert_eq!(down(pair(300, 200, Same), exact), NeedExactTime);
        let exact = |p: Pair| decide_exact(Direction::Download, &p);
        assert_eq!(exact(pair(200, 200, Same)), Skip);
        assert_eq!(exact(pair(300, 200, Same)), Transfer);
        assert_eq!(exact(pair(100, 200, Same)), Transfer);
    }

    fn entries(names: &[&str]) -> BTreeMap<String, Entry> {
        names
            .iter()
            .map(|n| {
                let entry = Entry {
                    size: 1,
                    modified: at(0),
                };
                (n.to_string(), entry)
            })
            .collect()
    }

    #[test]
    fn plans_transfer_names_only_the_source_has_and_delete_only_with_the_flag() {
        let local = entries(&["a", "both", "c"]);
        let remote = entries(&["both", "gone"]);
        let plain = Options::default();
        let (plan, both) = Plan::split(Direction::Upload, plain, &local, &remote);
        assert_eq!(plan.transfer, ["a", "c"]);
        assert_eq!(both, ["both"]);
        assert!(plan.delete.is_empty());
        let delete = Options::new(Rules::default(), false, true);
        let (plan, _) = Plan::split(Direction::Upload, delete, &local, &remote);
        assert_eq!(plan.delete, ["gone"]);
        // The other way round, the sides swap.
        let (plan, both) = Plan::split(Direction::Download, delete, &local, &remote);
        assert_eq!(plan.transfer, ["gone"]);
        assert_eq!(plan.delete, ["a", "c"]);
        assert_eq!(both, ["both"]);
        // --no-overwrite: what exists is current, never compared.
        let keep = Options::new(Rules::default(), true, false);
        let (plan, both) = Plan::split(Direction::Download, keep, &local, &remote);
        assert_eq!((plan.current, both.len()), (1, 0));
    }

    #[test]
    fn copies_go_when_the_length_differs_or_the_source_is_newer() {
        let remote = |objects: &[(&str, u64, u64)], instruction_files: &[(&str, u64)]| Remote {
            objects: objects
                .iter()
                .map(|&(name, size, modified)| {
                    let entry = Entry {
                        size,
                        modified: at(modified),
                    };
                    (name.to_owned(), entry)
                })
                .collect(),
            instruction_files: instruction_files
                .iter()
                .map(|&(name, modified)| (name.to_owned(), at(modified)))
                .collect(),
        };
        let source = remote(
            &[
                ("new", 5, 100),
                ("same", 5, 100),
                ("longer", 6, 100),
                ("rewritten", 5, 300),
                ("rotated", 5, 100),
                ("kept", 5, 100),
            ],
            &[("rotated.instruction", 300), ("kept.instruction", 100)],
        );
        let mut destination = remote(
            &[
                ("same", 5, 200),
                ("longer", 5, 200),
                ("rewritten", 5, 200),
                ("rotated", 5, 200),
                ("kept", 5, 200),
                ("extra", 1, 200),
            ],
            &[("rotated.instruction", 200), ("kept.instruction", 200)],
        );
        let plan = plan_copy(Options::default(), &source, &destination);
        assert_eq!(plan.transfer, ["longer", "new", "rewritten", "rotated"]);
        assert_eq!((plan.current, plan.delete.len()), (2, 0));
        let size_only = Options::new(Rules::new(true, false), false, true);
        let plan = plan_copy(size_only, &source, &destination);
        assert_eq!(plan.transfer, ["longer", "new"]);
        assert_eq!(plan.delete, ["extra"]);
        destination.objects.clear();
        let keep = Options::new(Rules::default(), true, false);
        assert_eq!(plan_copy(keep, &source, &destination).transfer.len(), 6);
    }

    #[test]
    fn layouts_give_exact_v2_and_padded_v1_sizes() {
        let v2 = Layout::V2 {
            header_len: 300,
            frame_size: 4096,
        };
        assert!(v2.holds(300 + 16, 0));
        assert!(v2.holds(300 + 4096 + 16, 4096));
        assert!(v2.holds(300 + 4097 + 32, 4097));
        assert!(!v2.holds(300 + 4097 + 32, 4096));
        assert!(!v2.holds(10, 0));
        let v1 = Layout::V1 { header_len: 200 };
        assert!(v1.holds(200 + 16, 0));
        assert!(v1.holds(200 + 16, 15));
        assert!(!v1.holds(200 + 16, 16));
    }
}
