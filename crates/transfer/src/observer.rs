//! Progress of a transfer, reported to an [`Observer`] (a progress bar, a
//! metric, a log): the library draws nothing itself.

/// Told how a transfer goes. Every method has a default that ignores it.
/// Calls come from several tasks at once (and from the blocking pool), so
/// an observer is `Send + Sync` and should return quickly.
pub trait Observer: Send + Sync {
    /// The bytes the transfer will move in all, once known: the plaintext
    /// of a download (for v1, within 16 bytes: its padding hides the exact
    /// length), the object (ciphertext) of an upload, as
    /// [`done`](Observer::done) counts what S3 acknowledged.
    fn total(&self, bytes: u64) {
        let _ = bytes;
    }

    /// `bytes` more are done: written to the sink (download), or
    /// acknowledged by S3 (upload; a part counts when its UploadPart
    /// returned).
    fn done(&self, bytes: u64) {
        let _ = bytes;
    }

    /// Something the user should know, that does not stop the transfer.
    fn warning(&self, warning: &Warning) {
        let _ = warning;
    }
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Observer for NoProgress {}

/// What [`Observer::warning`] reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Warning {
    /// The object is v1: its plaintext cannot be checked for tampering.
    #[error("{uri} is a v1 object: it is not authenticated, so tampering cannot be detected")]
    Unauthenticated {
        /// The object.
        uri: String,
    },
    /// The object is a legacy AES-CBC object of the S3 Encryption Client
    /// (read only with `allow_legacy`): it is not authenticated.
    #[error("{uri} is AES-CBC (legacy S3 Encryption Client): it is not authenticated, so tampering cannot be detected")]
    LegacyCbc {
        /// The object.
        uri: String,
    },
    /// A range of an S3 Encryption Client object read with `allow_legacy`:
    /// decrypted without its tag (AES-CTR).
    #[error("a range of the S3 Encryption Client object {uri} is decrypted without its tag (AES-CTR, --allow-legacy): it is not authenticated")]
    UnauthenticatedRange {
        /// The object.
        uri: String,
    },
}
