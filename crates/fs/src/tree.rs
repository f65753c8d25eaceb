//! A directory tree and the S3 keys below a prefix, mapped onto each other
//! as `aws s3 cp --recursive` maps them: a file's key is the prefix and its
//! path relative to the directory, in `/` form.

use std::path::{Component, Path, PathBuf};

use crate::output::{display_os, is_partial};
use crate::Error;

/// One `--include` or `--exclude` pattern (a glob over relative paths in
/// `/` form, where `*` also matches `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Take what the pattern matches.
    Include(String),
    /// Leave out what the pattern matches.
    Exclude(String),
}

/// Which relative paths (or keys below the prefix) to take: `--exclude`
/// and `--include` as the AWS CLI applies them. Everything is taken unless
/// a filter says otherwise, and of the filters that match a path the last
/// one given decides (so `--exclude '*' --include '*.jpg'` takes only the
/// `.jpg` files, and `--include` alone changes nothing).
#[derive(Debug)]
pub struct Filter {
    /// Each pattern and whether it takes (`--include`) what it matches.
    rules: Vec<(Pattern, bool)>,
    /// Whether symbolic links are taken (and followed).
    links: bool,
}

/// A filter pattern as the AWS CLI reads it: Python's `fnmatch` (`*` any
/// text, `/` included; `?` one character; `[seq]`, `[!seq]` a set; nothing
/// else is special: no `\` escapes, no `{a,b}`, and a `[` left open is a
/// plain `[`). No crate reads this dialect (globset's and glob's differ on
/// each of those), so it is translated to a regex here, as `fnmatch` does.
#[derive(Debug)]
struct Pattern {
    regex: regex::Regex,
    /// Ends with `*`: whatever it matches, it matches with anything after
    /// it too (a directory `DIR/` it matches is matched whole).
    open_ended: bool,
}

impl Pattern {
    fn new(pattern: &str) -> Result<Self, Error> {
        let regex = regex::Regex::new(&fnmatch_regex(pattern)).map_err(|e| Error::BadPattern {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Pattern {
            regex,
            open_ended: pattern.ends_with('*'),
        })
    }

    fn is_match(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }
}

/// Python's `fnmatch.translate`: the regex (anchored at both ends) of an
/// fnmatch pattern.
fn fnmatch_regex(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("(?s)^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => {
                // The set's end: a `]` first (after any `!`) is a member.
                let mut j = i;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str(r"\[");
                    continue;
                }
                out.push_str(&fnmatch_set(&chars[i..j]));
                i = j + 1;
            }
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('$');
    out
}

/// The regex of an fnmatch set's inside (`seq` of `[seq]`): a leading `!`
/// negates, `a-z` is a range (one whose ends are reversed matches nothing),
/// every other character is itself.
fn fnmatch_set(inside: &[char]) -> String {
    let (negated, inside) = match inside.first() {
        Some('!') => (true, &inside[1..]),
        _ => (false, inside),
    };
    let one = |c: char| regex::escape(c.encode_utf8(&mut [0; 4]));
    let mut members = String::new();
    let mut k = 0;
    while k < inside.len() {
        let c = inside[k];
        if inside.get(k + 1) == Some(&'-') && k + 2 < inside.len() {
            let end = inside[k + 2];
            if c <= end {
                members.push_str(&format!("{}-{}", one(c), one(end)));
            }
            k += 3;
        } else {
            members.push_str(&one(c));
            k += 1;
        }
    }
    match (negated, members.is_empty()) {
        // `[!]`: any one character; `[z-a]`: none.
        (true, true) => ".".into(),
        (false, true) => "[^\\s\\S]".into(),
        (true, false) => format!("[^{members}]"),
        (false, false) => format!("[{members}]"),
    }
}

impl Filter {
    /// The filter of `rules`, in the order given.
    pub fn new(rules: &[Rule]) -> Result<Self, Error> {
        let rules = rules
            .iter()
            .map(|rule| match rule {
                Rule::Include(p) => Ok((Pattern::new(p)?, true)),
                Rule::Exclude(p) => Ok((Pattern::new(p)?, false)),
            })
            .collect::<Result<_, Error>>()?;
        Ok(Filter { rules, links: true })
    }

    /// The filter that also leaves out every symbolic link, to a file or
    /// a directory, as `--no-follow-symlinks` does in the AWS CLI (a walk
    /// sees no such entry, and a sync does not count it as a source).
    pub fn without_links(self) -> Self {
        Filter {
            links: false,
            ..self
        }
    }

    /// Whether the directory `relative` is left unread: an --exclude
    /// pattern ending in `*` matches `relative/` (as `DIR/*` and `D*` do),
    /// so it matches everything below it, and no --include after it could
    /// take something back. (A pattern that matches `DIR/` itself but not
    /// what lies below, such as `DIR/`, leaves the directory's files in:
    /// skipping it made `sync --delete` delete their objects.)
    pub fn skips_dir(&self, relative: &str) -> bool {
        let dir = format!("{relative}/");
        let after_includes = match self.rules.iter().rposition(|(_, include)| *include) {
            Some(last) => last + 1,
            None => 0,
        };
        self.rules[after_includes..]
            .iter()
            .any(|(pattern, include)| !include && pattern.open_ended && pattern.is_match(&dir))
    }

    /// Whether the path is taken: by the last filter that matches it, or
    /// by default.
    pub fn takes(&self, relative: &str) -> bool {
        self.rules
            .iter()
            .rev()
            .find(|(pattern, _)| pattern.is_match(relative))
            .is_none_or(|(_, include)| *include)
    }
}

/// What a walk found.
#[derive(Debug)]
pub struct Walk {
    /// Every file the filter takes, by name: those that can be transferred
    /// and those that cannot (each with why).
    pub files: Vec<Walked>,
    /// The temporary files of interrupted downloads
    /// ([`crate::output::is_partial`]), left out: plaintext that
    /// must never be uploaded.
    pub partials: Vec<String>,
}

/// One entry of a walk.
#[derive(Debug)]
pub struct Walked {
    /// Its path relative to the root as messages show it (bytes that are
    /// not UTF-8 as `\xNN`); a directory that could not be listed ends in
    /// `/`.
    pub name: String,
    /// Its length (0 if it cannot be transferred).
    pub size: u64,
    /// The file, or why it is not transferred.
    pub source: Result<Source, Error>,
    /// The key below the prefix it stands for, also when it cannot be
    /// transferred, if its path is UTF-8 (a directory that could not be
    /// listed, or a link to one: its prefix, ending in `/`): a sync must
    /// not delete an object whose source exists but could not be read.
    pub key: Option<String>,
}

/// A regular file (or a link to one) to transfer.
#[derive(Clone, Debug)]
pub struct Source {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the root in `/` form: its key below the
    /// prefix.
    pub rel: String,
    /// Its modification time, if the system tells it.
    pub modified: Option<std::time::SystemTime>,
}

/// Every entry under `root` the filter takes, sorted by name. Only regular
/// files (and links to them) are transferred; a FIFO, socket or device
/// fails alone without being opened, as does a subdirectory that cannot be
/// listed, a name that is not UTF-8 (it cannot become a key without loss)
/// and files that would map to one key. A link to a directory is followed,
/// as `aws s3 cp --recursive` follows it, unless it leads back to a
/// directory that holds it: such a loop fails alone. Directories the
/// excludes cover are not read. Fails as a whole only if `root` itself
/// cannot be listed.
pub fn walk(root: &Path, filter: &Filter) -> Result<Walk, Error> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Walk {
        files: Vec::new(),
        partials: Vec::new(),
    };
    let identity = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let top = std::fs::metadata(root)
        .map_err(|e| Error::io(format!("cannot list {}", root.display()), e))?;
    // Each directory to read, with the directories that hold it (itself
    // included): a link to one of those is a loop.
    let mut dirs = vec![(PathBuf::new(), vec![identity(&top)])];
    while let Some((rel_dir, holders)) = dirs.pop() {
        let unlisted = |e| Error::io(format!("cannot list {}", root.join(&rel_dir).display()), e);
        let failed = |e| Walked {
            name: format!("{}/", shown(&rel_dir)),
            size: 0,
            source: Err(unlisted(e)),
            key: utf8_key(&rel_dir).map(|dir| format!("{dir}/")),
        };
        let entries = match std::fs::read_dir(root.join(&rel_dir)) {
            Ok(entries) => entries,
            // The directory the caller named: nothing to do at all.
            Err(e) if rel_dir.as_os_str().is_empty() => return Err(unlisted(e)),
            Err(e) => {
                found.files.push(failed(e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    found.files.push(failed(e));
                    break;
                }
            };
            let rel = rel_dir.join(entry.file_name());
            let lossy = slashed(&rel, |c| c.to_string_lossy().into_owned());
            // A directory, or a link to one, with its identity when the
            // system tells it (if not, reading it fails and says so).
            let followed = || std::fs::metadata(root.join(&rel));
            if !filter.links && entry.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            let directory = match entry.file_type() {
                Ok(t) if t.is_dir() => Some(followed().ok().map(|m| identity(&m))),
                Ok(t) if t.is_symlink() => followed()
                    .ok()
                    .filter(|m| m.is_dir())
                    .map(|m| Some(identity(&m))),
                _ => None,
            };
            if let Some(directory) = directory {
                if filter.skips_dir(&lossy) {
                    continue;
                }
                if directory.is_some_and(|id| holders.contains(&id)) {
                    found.files.push(Walked {
                        name: shown(&rel),
                        size: 0,
                        source: Err(Error::LinkLoop),
                        // It stands for the directory's keys.
                        key: utf8_key(&rel).map(|dir| format!("{dir}/")),
                    });
                    continue;
                }
                let mut holders = holders.clone();
                holders.extend(directory);
                dirs.push((rel, holders));
                continue;
            }
            if !filter.takes(&lossy) {
                continue;
            }
            if is_partial(&entry.file_name()) {
                found.partials.push(shown(&rel));
                continue;
            }
            found.files.push(source(root, &rel));
        }
    }
    found.files.sort_by(|a, b| a.name.cmp(&b.name));
    one_key_each(&mut found.files);
    Ok(found)
}

/// The file at `root/rel` as an entry: a regular file (or a link to one)
/// whose path is UTF-8, or the reason it is not transferred.
fn source(root: &Path, rel: &Path) -> Walked {
    let name = shown(rel);
    let path = root.join(rel);
    let key = utf8_key(rel);
    let failed = |name, e| Walked {
        name,
        size: 0,
        source: Err(e),
        key: key.clone(),
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => {
            return failed(
                name,
                Error::io(format!("cannot open {}", path.display()), e),
            )
        }
    };
    if !meta.is_file() {
        return failed(name, Error::not_regular(&meta));
    }
    let Some(rel) = key.clone() else {
        return failed(name, Error::NotUtf8);
    };
    Walked {
        name,
        size: meta.len(),
        source: Ok(Source {
            path,
            rel,
            modified: meta.modified().ok(),
        }),
        key,
    }
}

/// `rel` in `/` form, if every part of it is UTF-8.
fn utf8_key(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// `rel`'s components, each made text by `part`, joined with `/`.
fn slashed(rel: &Path, part: impl Fn(&std::ffi::OsStr) -> String) -> String {
    let parts: Vec<String> = rel.components().map(|c| part(c.as_os_str())).collect();
    parts.join("/")
}

/// `rel` as messages show it: exactly, bytes that are not UTF-8 as `\xNN`.
fn shown(rel: &Path) -> String {
    slashed(rel, display_os)
}

/// Two files must never write one key: any that would, fail, each naming
/// the others. (Keys are the exact UTF-8 paths, so on Unix this holds by
/// construction; the check keeps it true whatever the mapping becomes.)
fn one_key_each(files: &mut [Walked]) {
    let mut by_key: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for (i, file) in files.iter().enumerate() {
        if let Ok(source) = &file.source {
            by_key.entry(source.rel.clone()).or_default().push(i);
        }
    }
    for (key, same) in by_key.into_iter().filter(|(_, same)| same.len() > 1) {
        let all: Vec<String> = same.iter().map(|&i| files[i].name.clone()).collect();
        for &i in &same {
            files[i].source = Err(Error::SameKey {
                name: files[i].name.clone(),
                key: key.clone(),
                all: all.clone(),
            });
        }
    }
}

/// `dir` joined with the relative key `rel`, refusing keys that would leave
/// `dir` (`..`, absolute, empty parts).
pub fn join_key(dir: &Path, rel: &str) -> Result<PathBuf, Error> {
    let mut dest = dir.to_path_buf();
    for part in rel.split('/') {
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if name == part => dest.push(name),
            _ => return Err(Error::UnsafeKey(rel.to_owned())),
        }
    }
    Ok(dest)
}

/// For a relative key [`join_key`] refuses (`a//b`, `./b`, `a/../b`, a
/// name ending in `/`): the file it reads as where empty and `.` parts
/// are dropped and `..` steps back, as the AWS CLI reads it (`b`), if that
/// stays inside the tree. `sync --delete` must not delete that file: its
/// source exists, but atrest will not download it there.
pub fn lenient_name(rel: &str) -> Option<String> {
    if join_key(Path::new(""), rel).is_ok() {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Where the object of relative key `rel` is downloaded in the tree `dir`
/// ([`join_key`]), its directories made: refused if an existing entry
/// there is not a regular file (a device or FIFO in a tree is neither
/// written nor waited on).
pub fn destination(dir: &Path, rel: &str) -> Result<PathBuf, Error> {
    let dest = join_key(dir, rel)?;
    if let Ok(meta) = std::fs::metadata(&dest) {
        if !meta.is_file() {
            return Err(Error::not_regular(&meta));
        }
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
    }
    Ok(dest)
}

/// The key prefix objects go under: `key`, ending with `/` (an empty key
/// is the whole bucket).
pub fn as_prefix(key: &str) -> String {
    if key.ends_with('/') || key.is_empty() {
        key.to_owned()
    } else {
        format!("{key}/")
    }
}

/// The part of a listed `key` (of `size` bytes) after `prefix`, if the
/// filter takes it. Folder markers made by consoles (empty objects whose
/// keys end in `/`) hold no data and are left out, as the AWS CLI leaves
/// them out; an object of that name that holds data is not (its download
/// fails, loudly, as no file can have that name).
pub fn relative_key(prefix: &str, key: &str, size: u64, filter: &Filter) -> Option<String> {
    let rel = key.strip_prefix(prefix)?;
    let marker = rel.ends_with('/') && size == 0;
    (!rel.is_empty() && !marker && filter.takes(rel)).then(|| rel.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_keys_name_the_file_the_aws_cli_would_write() {
        for (rel, name) in [
            ("/report.txt", Some("report.txt")),
            ("a//b", Some("a/b")),
            ("./x", Some("x")),
            ("a/../b", Some("b")),
            ("dir/", Some("dir")),
            ("../x", None),
            ("ok/name", None),
            (".", None),
        ] {
            assert_eq!(lenient_name(rel).as_deref(), name, "{rel:?}");
        }
    }

    #[test]
    fn keys_cannot_leave_the_directory() {
        let dir = Path::new("out");
        assert_eq!(
            join_key(dir, "a/b c/d.txt").unwrap(),
            Path::new("out/a/b c/d.txt")
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", ".", "a/./b", ""] {
            assert!(join_key(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_directories_an_exclude_covers_whole_are_left_unread() {
        let f = Filter::new(&excludes(&["noperm/**", "*.log", "tmp/*"])).unwrap();
        assert!(f.skips_dir("noperm"));
        assert!(f.skips_dir("tmp"));
        // `x.log/` holds files `*.log` does not match.
        assert!(!f.skips_dir("x.log"));
        assert!(!f.skips_dir("sub"));
        let some = Filter::new(&excludes(&["noperm/*.txt"])).unwrap();
        assert!(!some.skips_dir("noperm"));
        // An include after the exclude may take files back: read it.
        let mut back = excludes(&["noperm/**"]);
        back.push(Rule::Include("noperm/keep".into()));
        assert!(!Filter::new(&back).unwrap().skips_dir("noperm"));
        back.push(Rule::Exclude("*".into()));
        assert!(Filter::new(&back).unwrap().skips_dir("noperm"));
    }

    /// Each case as Python's `fnmatch.fnmatchcase(path, pattern)` (the AWS
    /// CLI's matcher) answers it, checked with CPython 3.11.
    #[test]
    fn patterns_read_as_the_aws_clis_fnmatch_reads_them() {
        let cases = [
            (r"a\b", r"a\b", true),
            (r"a\*", r"a\x", true),
            (r"a\*", "a*", false),
            ("{a,b}", "a", false),
            ("{a,b}", "{a,b}", true),
            ("[^a]", "b", false),
            ("[^a]", "^", true),
            ("[^a]", "a", true),
            ("[!a]", "b", true),
            ("[!a]", "a", false),
            ("a[", "a[", true),
            ("a[*", "a[xyz", true),
            ("[]]", "a", false),
            ("[]]", "]", true),
            ("[!]]", "]", false),
            ("[!]]", "x", true),
            ("[a-c]", "b", true),
            ("[c-a]", "b", false),
            ("[a-]", "-", true),
            ("*.txt", "d/e.txt", true),
            ("?", "/", true),
            ("[!]", "x", false),
            ("[!]", "[!]", true),
            ("node_modules/", "node_modules/lib/m.js", false),
            ("*[!t]", "sub/", true),
            ("sub?", "sub/", true),
            ("[&&]", "&", true),
            ("a.b", "axb", false),
            (r"[\]", r"\", true),
        ];
        for (pattern, path, matches) in cases {
            let p = Pattern::new(pattern).unwrap();
            assert_eq!(p.is_match(path), matches, "{pattern:?} on {path:?}");
        }
    }

    /// A pattern that matches `DIR/` but not the files below it leaves the
    /// directory read: skipping it left its files out of the walk, and
    /// `sync --delete` deleted their objects.
    #[test]
    fn a_pattern_matching_only_the_directory_name_skips_nothing() {
        for pattern in ["node_modules/", "*/", "sub?", "*[!t]"] {
            let f = Filter::new(&excludes(&[pattern])).unwrap();
            let (dir, file) = match pattern {
                "node_modules/" => ("node_modules", "node_modules/lib/m.js"),
                _ => ("sub", "sub/a.txt"),
            };
            assert!(!f.skips_dir(dir), "{pattern}");
            assert!(f.takes(file), "{pattern}");
        }
        let f = Filter::new(&excludes(&["node_modules/*"])).unwrap();
        assert!(f.skips_dir("node_modules"));
        assert!(!f.takes("node_modules/lib/m.js"));
    }

    fn excludes(patterns: &[&str]) -> Vec<Rule> {
        patterns
            .iter()
            .map(|p| Rule::Exclude(p.to_string()))
            .collect()
    }

    #[test]
    fn the_last_matching_filter_decides_as_in_the_aws_cli() {
        use Rule::{Exclude, Include};
        let filter = |rules: &[Rule]| Filter::new(rules).unwrap();
        let jpgs = filter(&[Exclude("*".into()), Include("*.jpg".into())]);
        assert!(jpgs.takes("a.jpg") && jpgs.takes("sub/c.jpg"));
        assert!(!jpgs.takes("b.txt"));
        // The other way round the exclude comes last and wins.
        let none = filter(&[Include("*.jpg".into()), Exclude("*".into())]);
        assert!(!none.takes("a.jpg"));
        // --include alone re-includes what is included anyway.
        let alone = filter(&[Include("*.jpg".into())]);
        assert!(alone.takes("b.txt"));
        let nothing = filter(&[]);
        assert!(nothing.takes("anything/at/all"));
        assert!(!nothing.skips_dir("dir"));
    }

    #[test]
    fn files_mapping_to_one_key_all_fail_naming_each_other() {
        let file = |name: &str, key: &str| Walked {
            name: name.to_owned(),
            size: 1,
            source: Ok(Source {
                path: PathBuf::from(name),
                rel: key.to_owned(),
                modified: None,
            }),
            key: Some(key.to_owned()),
        };
        let mut files = vec![file("a", "k1"), file("b", "k2"), file("c", "k1")];
        one_key_each(&mut files);
        assert!(files[1].source.is_ok());
        for i in [0, 2] {
            let e = files[i].source.as_ref().unwrap_err().to_string();
            assert!(e.contains("`k1` (a, c)"), "{e}");
        }
    }

    #[test]
    fn names_show_their_exact_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let rel = Path::new(std::ffi::OsStr::from_bytes(b"nu/\xff\x1b.bin"));
        assert_eq!(shown(rel), r"nu/\xff\u{1b}.bin");
    }

    /// fnmatch has no invalid pattern: an open `[` is a plain `[` (it was
    /// refused, exit 2, where `aws s3` takes it).
    #[test]
    fn no_pattern_is_refused() {
        let f = Filter::new(&excludes(&["a[", "[", "[!", "]"])).unwrap();
        assert!(!f.takes("a["));
        assert!(f.takes("a"));
    }

    #[test]
    fn a_download_destination_is_made_inside_the_tree_over_regular_files_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        assert_eq!(destination(dir, "a/b/c").unwrap(), dir.join("a/b/c"));
        assert!(dir.join("a/b").is_dir(), "its directories are made");
        std::fs::write(dir.join("a/b/c"), b"old").unwrap();
        assert!(destination(dir, "a/b/c").is_ok(), "a file is replaced");
        assert!(matches!(
            destination(dir, "a/b"),
            Err(Error::NotRegular("a directory"))
        ));
        assert!(matches!(
            destination(dir, "a/../x"),
            Err(Error::UnsafeKey(_))
        ));
        // A file where a directory must be: the I/O error, named.
        let e = destination(dir, "a/b/c/d").unwrap_err().to_string();
        assert!(e.contains("cannot create"), "{e}");
    }

    #[test]
    fn a_walk_names_what_it_cannot_transfer_and_leaves_partials_out() {
        use std::os::unix::ffi::OsStrExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::create_dir_all(dir.join("sub/skip")).unwrap();
        std::fs::write(dir.join("a.txt"), b"abc").unwrap();
        std::fs::write(dir.join("sub/b.log"), b"").unwrap();
        std::fs::write(dir.join("sub/skip/c"), b"").unwrap();
        std::fs::write(dir.join(".atrest-x1y2z3.partial"), b"plain").unwrap();
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"n\xff")), b"").unwrap();
        // Links to directories are followed; one back up is a loop.
        std::os::unix::fs::symlink(dir.join("sub"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
        let filter = Filter::new(&excludes(&["sub/skip/**"])).unwrap();
        let found = walk(dir, &filter).unwrap();
        let names: Vec<_> = found.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a.txt",
                "link/b.log",
                "link/skip/c",
                "link/up",
                r"n\xff",
                "sub/b.log",
                "sub/up"
            ]
        );
        assert_eq!(found.partials, [".atrest-x1y2z3.partial"]);
        let source = found.files[0].source.as_ref().unwrap();
        assert_eq!((source.rel.as_str(), found.files[0].size), ("a.txt", 3));
        let source = found.files[1].source.as_ref().unwrap();
        assert_eq!(source.path, dir.join("link/b.log"));
        assert!(matches!(found.files[3].source, Err(Error::LinkLoop)));
        assert!(matches!(found.files[4].source, Err(Error::NotUtf8)));
        assert!(matches!(found.files[6].source, Err(Error::LinkLoop)));
        // What each stands for, failed or not (a name not UTF-8: nothing).
        let keys: Vec<_> = found.files.iter().map(|f| f.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                Some("a.txt"),
                Some("link/b.log"),
                Some("link/skip/c"),
                Some("link/up/"),
                None,
                Some("sub/b.log"),
                Some("sub/up/")
            ]
        );
        assert!(walk(&dir.join("missing"), &filter).is_err());

        // --no-follow-symlinks: no link seen, to a directory or a file.
        std::os::unix::fs::symlink(dir.join("a.txt"), dir.join("file-link")).unwrap();
        let found = walk(dir, &filter.without_links()).unwrap();
        let names: Vec<_> = found.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.txt", r"n\xff", "sub/b.log"]);
    }
}
