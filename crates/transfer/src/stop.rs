//! Asking whole-object operations to stop cleanly.
//!
//! Dropping an operation's future would leave a multipart upload open (its
//! parts stored and billed) or a temporary object behind. An operation
//! given a [`Stop`] instead watches it: once stopped, it aborts what it has
//! open, removes what it made, and returns its `Stopped` error; the object
//! is as it was.

use tokio::sync::watch;

/// The watching side: cheap to clone, one per operation.
#[derive(Clone, Debug)]
pub struct Stop(watch::Receiver<bool>);

/// The side that stops (e.g. a signal handler).
#[derive(Debug)]
pub struct StopHandle(watch::Sender<bool>);

impl Stop {
    /// A handle and the stop it controls.
    pub fn new() -> (StopHandle, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(tx), Stop(rx))
    }

    /// A stop that never comes.
    pub fn never() -> Stop {
        Stop::new().1
    }

    /// Whether the stop has been asked for.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once the stop is asked for (never, if its handle is
    /// dropped first).
    pub async fn stopped(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Stop {
    fn default() -> Self {
        Stop::never()
    }
}

impl StopHandle {
    /// Asks every operation watching this stop to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}
