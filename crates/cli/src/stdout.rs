//! What commands print on stdout (reports, listings) and stderr (errors,
//! warnings, summaries), written so that a closed stream is not a crash:
//! `atrest ls -r s3://b | head` stops reading early (and `... 2>&1 | head`
//! closes stderr too), and `println!`/`eprintln!` would then panic (exit
//! 101). A closed pipe drops what is left to print, and the command goes on
//! (a transfer and its clean-up are never cut short by its report); any
//! other write error on stdout (a full disk) is said once on stderr and
//! makes the exit status 1. Nothing is said of a failing stderr: there is
//! nowhere left to say it, and the exit status still tells.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const FAILED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(OPEN);

/// Prints `text` and a newline.
pub fn line(text: impl std::fmt::Display) {
    write(format_args!("{text}\n"));
}

/// Prints `text` as it is.
pub fn text(text: impl std::fmt::Display) {
    write(format_args!("{text}"));
}

fn write(args: std::fmt::Arguments<'_>) {
    if STATE.load(Ordering::Relaxed) != OPEN {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STATE.store(CLOSED, Ordering::Relaxed);
        } else if STATE.swap(FAILED, Ordering::Relaxed) != FAILED {
            say_err!("atrest: error: cannot write to stdout: {e}");
        }
    }
}

/// Prints `text` and a newline on stderr; a write that fails is dropped.
pub fn error_line(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// `--only-show-errors`: quiet, but warnings are still shown, as the AWS
/// CLI shows them (`-q` hides them too, as its `--quiet` does).
static WARNINGS_WHEN_QUIET: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Shows warnings even when quiet (`--only-show-errors`).
pub fn keep_warnings() {
    WARNINGS_WHEN_QUIET.store(true, Ordering::Relaxed);
}

/// Whether a warning is shown when the command is `quiet` or not.
pub fn warns(quiet: bool) -> bool {
    !quiet || WARNINGS_WHEN_QUIET.load(Ordering::Relaxed)
}

/// Whether a write to stdout failed other than by a closed pipe.
pub fn failed() -> bool {
    STATE.load(Ordering::Relaxed) == FAILED
}

/// `println!` through [`line()`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}

/// `print!` through [`text`].
macro_rules! say_text {
    ($($arg:tt)*) => {
        $crate::stdout::text(format_args!($($arg)*))
    };
}

/// `eprintln!` through [`error_line`].
macro_rules! say_err {
    ($($arg:tt)*) => {
        $crate::stdout::error_line(format_args!($($arg)*))
    };
}

pub(crate) use {say, say_err, say_text};
