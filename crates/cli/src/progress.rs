//! A progress bar on stderr (bytes, rate, ETA) while data flows, drawn only
//! when stderr is a terminal and neither `--quiet` nor `--no-progress` is
//! given. Scripts and logs never see it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress may be drawn at all.
pub fn wanted(quiet: bool, no_progress: bool) -> bool {
    !quiet && !no_progress && std::io::stderr().is_terminal()
}

/// Which bar a single-object transfer moves.
#[derive(Clone, Copy, Debug)]
pub enum Show<'a> {
    /// Its own bar, if progress is wanted at all.
    Own(bool),
    /// A `--recursive` run's overall bar.
    Within(&'a Progress),
}

impl Show<'_> {
    /// The bar for one object of `total` bytes (if known).
    pub fn bar(self, verb: &str, total: Option<u64>) -> Progress {
        match self {
            Show::Own(enabled) => Progress::new(enabled, verb, total),
            Show::Within(overall) => overall.part(),
        }
    }

    /// The bar for one object whose size is known later.
    pub fn pending(self, verb: &str) -> Progress {
        match self {
            Show::Own(enabled) => Progress::pending(enabled, verb),
            Show::Within(overall) => overall.part(),
        }
    }
}

/// A progress bar, or nothing. Cheap to clone; every clone moves the same bar.
#[derive(Clone, Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// One object's view of an overall bar: it adds bytes, but leaves the
    /// total and the end to the bulk run that owns the bar.
    part: bool,
}

impl Progress {
    /// No progress output.
    pub fn none() -> Self {
        Progress {
            bar: None,
            part: false,
        }
    }

    fn part(&self) -> Self {
        Progress {
            bar: self.bar.clone(),
            part: true,
        }
    }

    /// A bar labelled `verb` ("encrypting") if `enabled`: with a known
    /// `total` it shows bytes, a bar, rate and ETA; without, a spinner with
    /// bytes and rate.
    pub fn new(enabled: bool, verb: &str, total: Option<u64>) -> Self {
        Self::drawn_on(enabled, verb, total, ProgressDrawTarget::stderr())
    }

    fn drawn_on(enabled: bool, verb: &str, total: Option<u64>, target: ProgressDrawTarget) -> Self {
        if !enabled {
            return Self::none();
        }
        let bar = ProgressBar::with_draw_target(total, target);
        let template = match total {
            Some(_) => "{msg} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            None => "{msg} {spinner} {bytes} {binary_bytes_per_sec}",
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message(verb.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            part: false,
        }
    }

    /// The overall bar of a `--recursive` run: `total` bytes in `files`
    /// files, labelled "`verb` done/files files".
    pub fn overall(enabled: bool, verb: &str, total: u64, files: usize) -> Self {
        let progress = Self::new(enabled, verb, Some(total));
        progress.files_done(verb, 0, files);
        progress
    }

    /// Updates an overall bar's file count.
    pub fn files_done(&self, verb: &str, done: usize, files: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{verb} {done}/{files} files"));
        }
    }

    /// A bar whose total is not known yet: it stays hidden until
    /// [`set_total`](Self::set_total).
    pub fn pending(enabled: bool, verb: &str) -> Self {
        // Hidden from the start: drawn on stderr first, it would leave a
        // finished-looking `0 B/0 B` bar above the real one.
        Self::drawn_on(enabled, verb, Some(0), ProgressDrawTarget::hidden())
    }

    /// Sets the total once it is known, and shows the bar.
    pub fn set_total(&self, total: u64) {
        if self.part {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Prints `line` on stdout, the bar (on stderr) kept out of its way.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| crate::stdout::say!("{line}")),
            None => crate::stdout::say!("{line}"),
        }
    }

    /// Prints `line` on stderr (a warning), the bar kept out of its way.
    pub fn eprintln(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| crate::stdout::say_err!("{line}")),
            None => crate::stdout::say_err!("{line}"),
        }
    }

    /// `n` more bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// `reader`, moving the bar by the bytes read from it.
    pub fn reader<R>(&self, reader: R) -> Box<dyn tokio::io::AsyncRead + Unpin + Send>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        match &self.bar {
            Some(bar) => Box::new(bar.wrap_async_read(reader)),
            None => Box::new(reader),
        }
    }

    /// Leaves the completed bar on the terminal.
    pub fn finish(&self) {
        if self.part {
            return;
        }
        if let Some(bar) = &self.bar {
            if let Some(len) = bar.length() {
                // v1's length was an estimate: end at what was done.
                if len != bar.position() {
                    bar.set_length(bar.position());
                }
            }
            bar.finish();
        }
    }

    /// Ends the bar as `result` ended the work: finished on success,
    /// cleared on failure (the error then stands alone).
    pub fn end<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        match &result {
            Ok(_) => self.finish(),
            Err(_) => self.clear(),
        }
        result
    }

    /// Removes the bar (on failure, so the error line stands alone).
    pub fn clear(&self) {
        if self.part {
            return;
        }
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
    }
}

/// An upload's bar: its total is the object's length, and it moves as S3
/// acknowledges parts.
impl atrest_transfer::Observer for Progress {
    fn total(&self, bytes: u64) {
        self.set_total(bytes);
    }

    fn done(&self, bytes: u64) {
        self.inc(bytes);
    }
}
