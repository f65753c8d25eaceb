//! Local input and output: `-` for stdin/stdout, atomic file replacement,
//! devices and FIFOs written in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use tempfile::NamedTempFile;
use tokio::io::AsyncRead;

use crate::Error;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `path` is `-`: standard input or output.
pub fn is_std_stream(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens FILE for reading, or stdin for `-`.
pub async fn open_input(path: &Path) -> Result<Box<dyn AsyncRead + Unpin + Send>> {
    if is_std_stream(path) {
        // `< dir` opens a directory as stdin: say so, not a bare errno.
        if std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_dir()) {
            let why = std::io::Error::from(std::io::ErrorKind::IsADirectory);
            return Err(Error::io("cannot read standard input", why));
        }
        refuse_closed_stdin()?;
        return Ok(Box::new(tokio::io::stdin()));
    }
    if descriptor_named(path) == Some(0) {
        refuse_closed_stdin()?;
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    if meta.is_dir() {
        return Err(Error::InputIsDirectory(path.to_owned()));
    }
    Ok(Box::new(file))
}

/// Fails if stdin looks closed ([`stdin_is_closed`]).
fn refuse_closed_stdin() -> Result<()> {
    if !stdin_is_closed() {
        return Ok(());
    }
    let why = std::io::Error::other(
        "it is /dev/null opened read-write, as for a command started with stdin closed (<&-): refusing to read it as an empty input (give < /dev/null, or an empty file)",
    );
    Err(Error::io("cannot read standard input", why))
}

/// Whether the command was started with stdin closed: Rust's runtime then
/// opens /dev/null read-write in its place, which a shell's `< /dev/null`
/// (read-only) does not. Read as empty, it would replace an object with
/// an empty one; `aws s3 cp -` refuses a closed stdin too.
fn stdin_is_closed() -> bool {
    use rustix::fs::{FileType, OFlags};
    let stdin = std::io::stdin();
    let Ok(flags) = rustix::fs::fcntl_getfl(&stdin) else {
        return false;
    };
    let (Ok(fd), Ok(null)) = (rustix::fs::fstat(&stdin), rustix::fs::stat("/dev/null")) else {
        return false;
    };
    flags & OFlags::RWMODE == OFlags::RDWR
        && FileType::from_raw_mode(fd.st_mode) == FileType::CharacterDevice
        && fd.st_rdev == null.st_rdev
}

/// What writing a destination path means, decided before any download.
enum Target {
    /// Standard output (`-`, or a path to it such as `/dev/stdout`).
    Stdout,
    /// Standard error, by a path to it (`/dev/stderr`, `/dev/fd/2`).
    Stderr,
    /// An existing file that is not a regular one (a device such as
    /// /dev/null, a FIFO, a socket), or a link to one: written in place as a
    /// stream, never replaced.
    InPlace(PathBuf),
    /// A regular file, new or replaced through a temporary file beside it.
    Replace(Box<Replace>),
}

/// A regular file to create or replace atomically.
struct Replace {
    /// The file renamed onto: the destination, or the target of the link
    /// that the destination is (written through, as cp does).
    path: PathBuf,
    /// Mode and owner of the file replaced, kept as cp keeps them; `None`
    /// for a new file.
    existing: Option<std::fs::Metadata>,
    /// The directories made for a new file.
    made: Option<MadeDirs>,
}

/// Directories made for a download's file, removed again (those still
/// empty) if it fails, so that a failed run leaves nothing behind.
#[derive(Debug)]
struct MadeDirs {
    /// The file's directory.
    deepest: PathBuf,
    /// The outermost directory made.
    top: PathBuf,
}

impl MadeDirs {
    fn remove(&self) {
        for dir in self.deepest.ancestors() {
            if std::fs::remove_dir(dir).is_err() || dir == self.top {
                return;
            }
        }
    }
}

/// Makes the missing directories of `dest`, as `aws s3 cp` does; fails if
/// the nearest one that exists is not a directory.
fn make_parents(dest: &Path) -> Result<Option<MadeDirs>> {
    let dir = parent_dir(dest);
    if dir.is_dir() {
        return Ok(None);
    }
    let exists = |a: &Path| a.as_os_str().is_empty() || std::fs::symlink_metadata(a).is_ok();
    let missing = dir.ancestors().take_while(|a| !exists(a)).count();
    // The nearest that exists ("" is the current directory) must be a
    // directory, and something must be missing below it.
    let nearest = dir.ancestors().nth(missing).unwrap_or(Path::new(""));
    let top = missing.checked_sub(1).and_then(|n| dir.ancestors().nth(n));
    let Some(top) = top.filter(|_| nearest.as_os_str().is_empty() || nearest.is_dir()) else {
        return Err(Error::NoDirectory {
            dest: dest.to_owned(),
            dir: nearest.to_owned(),
        });
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    Ok(Some(MadeDirs {
        deepest: dir.to_owned(),
        top: top.to_owned(),
    }))
}

impl Target {
    /// Looks at `dest` (following symbolic links); changes nothing but
    /// the missing directories of a new file, which it makes.
    fn of(dest: &Path) -> Result<Target> {
        if is_std_stream(dest) {
            return Ok(Target::Stdout);
        }
        // `/dev/stdout` of a redirected command leads to the file the shell
        // opened: written through the descriptor, as `-` is, never replaced
        // (a rename would drop what `>>` or `{ ...; } >` put around it).
        match descriptor_named(dest) {
            Some(1) => return Ok(Target::Stdout),
            Some(2) => return Ok(Target::Stderr),
            Some(fd) if std::fs::metadata(dest).is_ok_and(|m| m.is_file()) => {
                return Err(Error::DescriptorFile {
                    dest: dest.to_owned(),
                    fd,
                })
            }
            _ => {}
        }
        match std::fs::metadata(dest) {
            Ok(m) if m.is_dir() => Err(Error::OutputIsDirectory(dest.to_owned())),
            Ok(m) if m.is_file() => {
                let path = match std::fs::symlink_metadata(dest) {
                    Ok(link) if link.file_type().is_symlink() => std::fs::canonicalize(dest)
                        .map_err(|e| Error::io(format!("cannot resolve {}", dest.display()), e))?,
                    _ => dest.to_owned(),
                };
                Ok(Target::Replace(Box::new(Replace {
                    path,
                    existing: Some(m),
                    made: None,
                })))
            }
            Ok(_) => Ok(Target::InPlace(dest.to_owned())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                if std::fs::symlink_metadata(dest).is_ok() {
                    return Err(Error::DanglingLink(dest.to_owned()));
                }
                let made = make_parents(dest)?;
                Ok(Target::Replace(Box::new(Replace {
                    path: dest.to_owned(),
                    existing: None,
                    made,
                })))
            }
            Err(e) => Err(Error::io(format!("cannot write {}", dest.display()), e)),
        }
    }
}

/// The descriptor of this process that `path` names, through any links:
/// `/dev/stdout` (1), `/dev/stderr` (2), `/dev/stdin` (0), `/dev/fd/N`,
/// `/proc/self/fd/N`, `/proc/thread-self/fd/N` or `/proc/PID/fd/N` of this
/// process. Opening such a path opens the file anew, at offset 0 and
/// without `O_APPEND`, not the descriptor itself.
fn descriptor_named(path: &Path) -> Option<u32> {
    let mut path = path.to_owned();
    // Bounded, as the kernel bounds link chains.
    for _ in 0..40 {
        // Its directory resolved (`/dev/./fd/1`, `fd/1` in /dev, a relative
        // link's `../..`; /dev/fd is /proc/PID/fd), its own name as it is.
        let named = match (std::fs::canonicalize(parent_dir(&path)), path.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => path.clone(),
        };
        if let Some(fd) = descriptor_path(&named).or_else(|| descriptor_path(&path)) {
            return Some(fd);
        }
        let target = std::fs::read_link(&named).ok()?;
        path = parent_dir(&named).join(target);
    }
    None
}

/// Whether `path` names a descriptor of this process (`/dev/stdout`,
/// `/dev/fd/N`, through any links): a stream, whatever it is open on, not a
/// file to replace or to fsync.
pub fn names_descriptor(path: &Path) -> bool {
    descriptor_named(path).is_some()
}

/// [`descriptor_named`] of `path` itself, not following links.
fn descriptor_path(path: &Path) -> Option<u32> {
    let text = path.to_str()?;
    match text {
        "/dev/stdin" => return Some(0),
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => {}
    }
    let own = std::process::id().to_string();
    let rest = text.strip_prefix("/dev/fd/").or_else(|| {
        let rest = text.strip_prefix("/proc/")?;
        let (process, rest) = rest.split_once('/')?;
        // A thread's own: /proc/PID/task/TID/fd/N.
        let rest = match rest.strip_prefix("task/") {
            Some(task) => task.split_once('/')?.1,
            None => rest,
        };
        let rest = rest.strip_prefix("fd/")?;
        matches!(process, "self" | "thread-self")
            .then_some(rest)
            .or((process == own).then_some(rest))
    })?;
    rest.parse().ok()
}

/// The directory a file path is in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Replace {
    /// A temporary file beside the destination, mode 0600 while it is
    /// written, so that partial plaintext is never readable by others. The
    /// errors name the directory, never the temporary file.
    fn temp(&self) -> Result<NamedTempFile> {
        let dir = parent_dir(&self.path);
        tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .suffix(PARTIAL_SUFFIX)
            .make_in(dir, |path| {
                let mut options = std::fs::OpenOptions::new();
                options.read(true).write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                options.open(path)
            })
            .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))
    }

    /// Gives `temp` its final mode (and owner) and renames it into place.
    fn commit(&self, temp: NamedTempFile, new_mode: u32) -> Result<()> {
        let fail = |e| Error::io(format!("cannot write {}", self.path.display()), e);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let mode = match &self.existing {
                Some(m) => {
                    // Best effort, as cp: only root may give a file away.
                    let _ = std::os::unix::fs::fchown(temp.as_file(), Some(m.uid()), Some(m.gid()));
                    m.mode() & 0o7777
                }
                None => new_mode,
            };
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(fail)?;
        }
        #[cfg(not(unix))]
        let _ = new_mode;
        temp.persist(&self.path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

/// The name of the temporary file a decryption writes beside its
/// destination: `.atrest-XXXXXX.partial`.
const PARTIAL_PREFIX: &str = ".atrest-";
const PARTIAL_SUFFIX: &str = ".partial";

/// Whether `name` is a temporary file of an unfinished decryption (left
/// behind by SIGKILL): plaintext that must never be uploaded.
pub fn is_partial(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(PARTIAL_PREFIX.as_bytes()) && name.ends_with(PARTIAL_SUFFIX.as_bytes())
}

/// The mode a new file gets from the umask (`0666 & !umask`), as cp and the
/// AWS CLI give it. Read from /proc (setting the umask to learn it would
/// race with other threads); where that is not possible, 0600.
fn new_file_mode() -> u32 {
    static MODE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| {
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
                u32::from_str_radix(line.trim(), 8).ok()
            });
        match umask {
            Some(umask) => 0o666 & !umask,
            None => 0o600,
        }
    })
}

/// Opens an existing non-regular file for writing in place (blocking: a
/// FIFO waits for its reader). A socket is connected to.
fn open_in_place(path: &Path) -> Result<Box<dyn Write + Send>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            let socket = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                Error::io(
                    format!("cannot connect to the socket {}", path.display()),
                    e,
                )
            })?;
            return Ok(Box::new(socket));
        }
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    Ok(Box::new(file))
}

/// Writes `bytes` to `dest` atomically (a new file gets mode 0600 on Unix,
/// as it holds a key; a replaced one keeps its mode; a device or FIFO is
/// written in place). Returns whether an existing file was replaced.
pub fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<bool> {
    let replace = match Target::of(dest)? {
        Target::Stdout => {
            std::io::stdout()
                .write_all(bytes)
                .map_err(|e| Error::io("cannot write stdout", e))?;
            return Ok(false);
        }
        Target::Stderr => {
            std::io::stderr()
                .write_all(bytes)
                .map_err(|e| Error::io("cannot write stderr", e))?;
            return Ok(false);
        }
        Target::InPlace(path) => {
            open_in_place(&path)?
                .write_all(bytes)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
            return Ok(true);
        }
        Target::Replace(replace) => replace,
    };
    let temp = replace.temp()?;
    let write = |mut file: &std::fs::File| file.write_all(bytes).and_then(|()| file.sync_all());
    write(temp.as_file()).map_err(|e| Error::io(format!("cannot write {}", dest.display()), e))?;
    replace.commit(temp, 0o600)?;
    Ok(replace.existing.is_some())
}

/// Shows a file name exactly: bytes that are not UTF-8 as `\xNN`, control
/// characters escaped.
pub fn display_os(name: &std::ffi::OsStr) -> String {
    let mut out = String::new();
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        out.push_str(&atrest_transfer::escape(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Where decrypted output goes: stdout, or a temporary file renamed into
/// place by [`Output::commit`].
///
/// Writes run on the blocking pool with std I/O on owned buffers: tokio's
/// file and stdout types would copy every buffer once more on the way.
/// Small writes are gathered into 1 MiB ones.
pub struct Output {
    /// `None` only while a write is running, or after one panicked.
    writer: Option<Box<dyn Write + Send>>,
    pending: BytesMut,
    file: Option<(NamedTempFile, Replace)>,
    /// The modification time a file gets on commit.
    modified: Option<std::time::SystemTime>,
    /// What a failed write names: the destination, or stdout.
    name: String,
    /// Removed on drop unless committed.
    made: Option<MadeDirs>,
}

impl Drop for Output {
    fn drop(&mut self) {
        // The temporary file first: then the directories can be empty.
        self.file = None;
        if let Some(made) = self.made.take() {
            made.remove();
        }
    }
}

/// A range of a buffer, written without copying it out.
struct Part {
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

/// Small writes are gathered into writes of about this size.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes at least this large go to the kernel as they are (after what was
/// gathered): copying them would cost more than the system call saved.
const DIRECT_WRITE: usize = 256 << 10;

impl Output {
    /// Prepares output to `dest` (`-` for stdout). Fails before anything is
    /// downloaded if the destination cannot be written. A regular file (or
    /// a link to one) is replaced on [`Output::commit`]; an existing device,
    /// FIFO or socket is written in place, as stdout is.
    pub async fn create(dest: &Path) -> Result<Self> {
        let name = match is_std_stream(dest) {
            true => "stdout".to_string(),
            false => dest.display().to_string(),
        };
        let writer: Box<dyn Write + Send> = match Target::of(dest)? {
            Target::Stdout => Box::new(std::io::stdout()),
            Target::Stderr => Box::new(std::io::stderr()),
            Target::InPlace(path) => {
                // Off the runtime: opening a FIFO waits for a reader, and a
                // signal must still stop the command meanwhile.
                tokio::task::spawn_blocking(move || open_in_place(&path))
                    .await
                    .map_err(|e| Error::Write(std::io::Error::other(e)))??
            }
            Target::Replace(mut replace) => {
                // Dropped on an error below, it removes the directories made.
                let mut output = Output {
                    writer: None,
                    pending: BytesMut::new(),
                    file: None,
                    modified: None,
                    name,
                    made: replace.made.take(),
                };
                let temp = replace.temp()?;
                let writer = temp.as_file().try_clone().map_err(Error::Write)?;
                output.writer = Some(Box::new(writer));
                output.file = Some((temp, *replace));
                return Ok(output);
            }
        };
        Ok(Output {
            writer: Some(writer),
            pending: BytesMut::new(),
            file: None,
            modified: None,
            name,
            made: None,
        })
    }

    /// Gives a file this modification time when it is committed (as the
    /// AWS CLI gives a download its object's time); stdout and devices keep
    /// theirs.
    pub fn set_modified(&mut self, time: Option<std::time::SystemTime>) {
        self.modified = time;
    }

    /// For a file with nothing written yet: a handle for writing at any
    /// offset (on Unix), so that parts can be written out of order.
    pub fn positional(&self) -> Result<Option<std::fs::File>> {
        match &self.file {
            Some((temp, _)) if self.pending.is_empty() => {
                Ok(Some(temp.as_file().try_clone().map_err(Error::Write)?))
            }
            _ => Ok(None),
        }
    }

    /// Appends `data`.
    pub async fn write(&mut self, data: Bytes) -> std::io::Result<()> {
        if self.gather(&data).await? {
            return Ok(());
        }
        self.write_now(data).await.map(drop)
    }

    /// Appends `buf[range]`, and hands the buffer back, unchanged, for
    /// reuse.
    pub async fn write_buf(
        &mut self,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> std::io::Result<Vec<u8>> {
        if self.gather(&buf[range.clone()]).await? {
            return Ok(buf);
        }
        let part = Part { buf, range };
        Ok(self.write_now(part).await?.buf)
    }

    /// Adds a small `data` to the pending bytes (flushing them first if they
    /// would grow past [`WRITE_CHUNK`]); returns false if `data` is large
    /// and must be written as it is, after what was pending.
    async fn gather(&mut self, data: &[u8]) -> std::io::Result<bool> {
        let large = data.len() >= DIRECT_WRITE;
        if large || self.pending.len() + data.len() >= WRITE_CHUNK {
            self.flush_pending().await?;
        }
        if large {
            return Ok(false);
        }
        self.pending.extend_from_slice(data);
        Ok(true)
    }

    async fn flush_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let data = self.pending.split().freeze();
        self.write_now(data).await.map(drop)
    }

    async fn write_now<B>(&mut self, data: B) -> std::io::Result<B>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| std::io::Error::other("an earlier write did not finish"))?;
        let (writer, data, result) = tokio::task::spawn_blocking(move || {
            let result = writer
                .write_all(data.as_ref())
                .and_then(|()| writer.flush());
            (writer, data, result)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.writer = Some(writer);
        // The kind stays (a closed pipe is still one), the text names the
        // destination.
        let name = &self.name;
        result
            .map(|()| data)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {name}: {e}")))
    }

    /// Writes what is pending and, for a file, syncs it and renames it into
    /// place (a replaced file keeps its mode; a new one gets the umask's).
    pub async fn commit(mut self) -> Result<()> {
        self.flush_pending().await.map_err(Error::Write)?;
        if let Some((temp, replace)) = self.file.take() {
            let fail = |e| Error::io(format!("cannot write {}", replace.path.display()), e);
            let file = temp.as_file().try_clone().map_err(fail)?;
            let modified = self.modified;
            tokio::task::spawn_blocking(move || {
                if let Some(time) = modified {
                    file.set_modified(time)?;
                }
                file.sync_all()
            })
            .await
            .map_err(|e| fail(std::io::Error::other(e)))?
            .map_err(fail)?;
            replace.commit(temp, new_file_mode())?;
            self.made = None;
        }
        Ok(())
    }
}

/// The length of `path` if it is a regular file: only a regular file's
/// length is known before reading it (not stdin's, a FIFO's or a device's).
pub fn regular_file_len(path: &Path) -> Option<u64> {
    if is_std_stream(path) {
        return None;
    }
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// A download written in order (to stdout, a device, or a file that is not
/// written at offsets).
impl atrest_transfer::OrderedSink for Output {
    fn write(
        &mut self,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> BoxFuture<'_, std::io::Result<Vec<u8>>> {
        Box::pin(self.write_buf(buf, range))
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("name", &self.name)
            .field("pending", &self.pending.len())
            .field("file", &self.file.as_ref().map(|(_, r)| &r.path))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_naming_this_processs_descriptors_are_known() {
        let own = format!("/proc/{}/fd/7", std::process::id());
        for (path, fd) in [
            ("/dev/stdout", Some(1)),
            ("/dev/stderr", Some(2)),
            ("/dev/stdin", Some(0)),
            ("/dev/fd/63", Some(63)),
            ("/proc/self/fd/1", Some(1)),
            ("/proc/thread-self/fd/4", Some(4)),
            (own.as_str(), Some(7)),
            ("/proc/1/fd/1", None),
            ("/dev/fd/x", None),
            ("/dev/null", None),
            ("dev/stdout", None),
        ] {
            assert_eq!(descriptor_path(Path::new(path)), fd, "{path}");
        }
        // Through links: one of ours to /dev/stdout, a relative one, and
        // spellings with `.` and `..`.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out");
        std::os::unix::fs::symlink("/dev/stdout", &link).unwrap();
        assert_eq!(descriptor_named(&link), Some(1));
        let depth = dir.path().components().count() - 1;
        let up = "../".repeat(depth);
        let relative = dir.path().join("rel");
        std::os::unix::fs::symlink(format!("{up}dev/fd/2"), &relative).unwrap();
        assert_eq!(descriptor_named(&relative), Some(2));
        assert_eq!(descriptor_named(Path::new("/dev/./fd/1")), Some(1));
        assert_eq!(descriptor_named(Path::new("/dev/../dev/stdout")), Some(1));
        assert_eq!(descriptor_named(&dir.path().join("plain")), None);
    }

    #[tokio::test]
    async fn missing_directories_are_made_and_only_those_removed_on_failure() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("a/b/c/file");
        // Dropped uncommitted: every directory made goes.
        drop(Output::create(&dest).await.unwrap());
        assert!(!root.path().join("a").exists());
        // One that someone else filled meanwhile stays, with its parents.
        let output = Output::create(&dest).await.unwrap();
        std::fs::write(root.path().join("a/b/other"), b"theirs").unwrap();
        drop(output);
        assert!(!root.path().join("a/b/c").exists());
        assert!(root.path().join("a/b/other").exists());
        // Committed: kept, with the file.
        let dest = root.path().join("x/y/file");
        let mut output = Output::create(&dest).await.unwrap();
        output.write(Bytes::from_static(b"data")).await.unwrap();
        output.commit().await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        // Through a file: refused, nothing made.
        let through = root.path().join("x/y/file/z/w");
        let err = Output::create(&through).await.err().unwrap().to_string();
        assert!(err.ends_with("x/y/file is not a directory"), "{err}");
        assert!(!root.path().join("x/y/file/z").exists());
    }
}
