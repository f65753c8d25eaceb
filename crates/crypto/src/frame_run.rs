//! Opening a run of consecutive v2 frames from chunks of any size, as they
//! arrive from the network: sans I/O, so every transport (a ranged GET, a
//! file read) drives the same state machine.

use atrest_format::v2::TAG_LEN;

use crate::v2::FrameCipher;
use crate::DecryptError;

/// Cuts a run of sealed frames `first..=last`, arriving in chunks of any
/// size, into frames and opens each one straight from its chunk into the
/// caller's plaintext buffer; only a frame split across chunks is copied
/// (into an internal buffer) first.
///
/// ```
/// use atrest_crypto::{v2, DataKey};
/// use atrest_format::v2::EncryptionContext;
///
/// let key = DataKey::from_slice(&[5; 32]).unwrap();
/// let ctx = EncryptionContext::new([("k", "v")]).unwrap();
/// let enc = v2::Encryptor::new(&key, vec![1], 12, ctx, &mut rand_core::OsRng).unwrap();
/// let header = enc.header().clone();
/// let object = v2::encrypt(enc, &[7; 10_000]);
/// let body = &object[header.encoded_len()..];
///
/// // Frames 0..=2 of 4 KiB, the last one final, in chunks of 1000 bytes.
/// let cipher = v2::FrameCipher::new(&key, &header).unwrap();
/// let mut run = v2::FrameRun::new(4096, 0, 2, body.len() as u64, true).unwrap();
/// let (mut plain, mut at) = (Vec::new(), 0);
/// for chunk in body.chunks(1000) {
///     let mut rest = chunk;
///     while !rest.is_empty() {
///         let used;
///         (at, used) = run.open(&cipher, rest, &mut plain, at, usize::MAX).unwrap();
///         rest = &rest[used..];
///     }
/// }
/// run.finish().unwrap();
/// assert_eq!(&plain[..at], &[7; 10_000][..]);
/// ```
#[derive(Clone, Debug)]
pub struct FrameRun {
    sealed: usize,
    /// The next frame to open.
    next: u64,
    last: u64,
    /// Sealed length of frame `last` (the object's final frame may be short).
    last_len: usize,
    /// Frame `last` is the object's final frame.
    last_is_final: bool,
    partial: Vec<u8>,
}

impl FrameRun {
    /// Frames `first..=last` of an object with `frame_size`-byte frames,
    /// `sealed_len` bytes in all; `last_is_final`: frame `last` is the
    /// object's final frame. Fails if no run of those frames has that length.
    pub fn new(
        frame_size: usize,
        first: u64,
        last: u64,
        sealed_len: u64,
        last_is_final: bool,
    ) -> Result<Self, DecryptError> {
        let sealed = frame_size + TAG_LEN;
        let full = last
            .checked_sub(first)
            .ok_or(DecryptError)?
            .checked_mul(sealed as u64)
            .ok_or(DecryptError)?;
        let last_len = sealed_len
            .checked_sub(full)
            .filter(|&n| n >= TAG_LEN as u64 && n <= sealed as u64)
            .ok_or(DecryptError)?;
        Ok(FrameRun {
            sealed,
            next: first,
            last,
            last_len: last_len as usize,
            last_is_final,
            partial: Vec::new(),
        })
    }

    /// The next frame to open: every frame before it has been opened.
    pub fn next_frame(&self) -> u64 {
        self.next
    }

    fn frame_len(&self) -> usize {
        if self.next == self.last {
            self.last_len
        } else {
            self.sealed
        }
    }

    /// Opens the frames that `chunk` completes, appending their plaintext
    /// to `plain[..at]`, until the plaintext reaches `limit`; returns the
    /// new end and how much of `chunk` was used (call again with the rest).
    /// `plain` grows as needed and never shrinks, so that reuse costs no
    /// clearing, and never past the frame that reaches `limit`. Fails if a
    /// frame does not authenticate or bytes arrive after frame `last`.
    pub fn open(
        &mut self,
        cipher: &FrameCipher,
        chunk: &[u8],
        plain: &mut Vec<u8>,
        mut at: usize,
        limit: usize,
    ) -> Result<(usize, usize), DecryptError> {
        let mut used = 0;
        while used < chunk.len() && at < limit {
            if self.next > self.last {
                return Err(DecryptError);
            }
            let need = self.frame_len();
            let rest = &chunk[used..];
            // Whole frames open straight from the chunk; only one split
            // across chunks is copied first.
            let sealed = if self.partial.is_empty() && rest.len() >= need {
                used += need;
                &rest[..need]
            } else {
                let take = (need - self.partial.len()).min(rest.len());
                self.partial.extend_from_slice(&rest[..take]);
                used += take;
                if self.partial.len() < need {
                    continue;
                }
                &self.partial[..]
            };
            let len = sealed.len() - TAG_LEN;
            if plain.len() < at + len {
                plain.resize(at + len, 0);
            }
            let is_final = self.last_is_final && self.next == self.last;
            cipher.open_frame_to(self.next, is_final, sealed, &mut plain[at..at + len])?;
            self.partial.clear();
            self.next += 1;
            at += len;
        }
        Ok((at, used))
    }

    /// Fails unless every frame arrived whole and opened (a short body, from
    /// a truncated object or connection, leaves frames unread).
    pub fn finish(&self) -> Result<(), DecryptError> {
        if self.next == self.last + 1 && self.partial.is_empty() {
            Ok(())
        } else {
            Err(DecryptError)
        }
    }
}
