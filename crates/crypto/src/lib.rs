//! AES-256 primitives and streaming encrypt/decrypt state machines for atrest
//! objects, built on the layouts in [`atrest_format`].
//!
//! The state machines do no I/O: callers feed input in chunks of any size and
//! collect output, so memory stays bounded by the chunk size whatever the
//! object size.
#![deny(missing_docs)]

mod key;
pub mod v1;

pub use key::{DataKey, KeyLengthError, DATA_KEY_LEN};

/// Decryption failed. Deliberately carries no detail: telling padding errors
/// apart from length errors would hand an attacker an oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptError;

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decryption failed: the object is corrupted or was encrypted with another key")
    }
}

impl std::error::Error for DecryptError {}
