//! SIGINT / SIGTERM: commands stop cleanly (abort a multipart upload, drop
//! the temporary output file) and the process exits 128 + the signal number.
//! A second signal while that cleanup waits on the network (aborting an
//! upload at a server that stopped answering) exits at once.

use std::future::Future;

use atrest_transfer::Stop;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The run was stopped by a signal.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("interrupted by {name}")]
pub struct Interrupted {
    pub name: &'static str,
    pub number: i32,
}

/// Signals this soon after the first are the same one delivered twice
/// (as `timeout` delivers it), not a second Ctrl-C.
const SAME_SIGNAL: std::time::Duration = std::time::Duration::from_millis(250);

/// A cleanup still running this long after the signal is said to be
/// running (an abort at a server that stopped answering can wait minutes),
/// with how to skip it.
const CLEANUP_NOTICE: std::time::Duration = std::time::Duration::from_secs(5);

/// Learns of a signal; cheap to clone into each command.
#[derive(Clone, Debug)]
pub struct Interrupt(watch::Receiver<Option<Interrupted>>);

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM.
    pub fn listen() -> std::io::Result<Self> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let mut first: Option<std::time::Instant> = None;
            loop {
                let got = tokio::select! {
                    _ = int.recv() => Interrupted { name: "SIGINT", number: 2 },
                    _ = term.recv() => Interrupted { name: "SIGTERM", number: 15 },
                };
                match first {
                    // `timeout` signals its child, then the child's whole
                    // process group: one signal, twice, at once. Only a
                    // signal given again later means "stop now".
                    Some(at) if at.elapsed() < SAME_SIGNAL => continue,
                    Some(_) => {
                        crate::stdout::say_err!(
                            "atrest: {got} again: stopping without cleanup (a multipart upload begun may remain: `aws s3api list-multipart-uploads --bucket BUCKET`)"
                        );
                        std::process::exit(128 + got.number);
                    }
                    None => {
                        first = Some(std::time::Instant::now());
                        tokio::spawn(async move {
                            tokio::time::sleep(CLEANUP_NOTICE).await;
                            crate::stdout::say_err!(
                                "atrest: {got}: cleaning up (aborting uploads, removing temporary objects); {} again to stop without cleanup",
                                got.name
                            );
                        });
                    }
                }
                let _ = tx.send(Some(got));
            }
        });
        Ok(Interrupt(rx))
    }

    /// Completes when a signal arrives.
    pub async fn wait(&self) -> Interrupted {
        let mut rx = self.0.clone();
        loop {
            if let Some(got) = *rx.borrow_and_update() {
                return got;
            }
            if rx.changed().await.is_err() {
                // The listener is gone: no signal will ever be reported.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Runs `work` with a [`Stop`] that a signal triggers, for work that
    /// must not be dropped part-way (it has multipart uploads or temporary
    /// objects to clean up): on a signal, waits for `work` to stop cleanly,
    /// then reports the signal.
    pub async fn stopping<T, F>(&self, work: impl FnOnce(Stop) -> F) -> anyhow::Result<T>
    where
        F: Future<Output = anyhow::Result<T>>,
    {
        let (handle, stop) = Stop::new();
        let work = work(stop);
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => result,
            got = self.wait() => {
                handle.stop();
                let _ = work.await;
                Err(got.into())
            }
        }
    }

    /// Whether a signal has arrived.
    pub fn fired(&self) -> bool {
        self.0.borrow().is_some()
    }

    /// Runs `work` unless a signal arrives first, in which case `work` is
    /// dropped (its temporary files with it).
    pub async fn guard<T>(
        &self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            result = work => result,
            got = self.wait() => Err(got.into()),
        }
    }
}

/// Runs `work`, which has nothing to clean up (a listing, a HEAD), within
/// [`Interrupt::stopping`]'s work, unless the stop comes first: `work` is
/// then dropped at once rather than awaited (a silent server would hold a
/// signalled command until its time-outs). The error then is only a
/// placeholder: `stopping` reports the signal.
pub async fn unless_stopped<T>(
    stop: &Stop,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        () = stop.stopped() => Err(anyhow::anyhow!("stopped")),
    }
}
