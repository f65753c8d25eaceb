//! Reused buffers: a fresh part-sized buffer costs a page fault and zeroing
//! per 4 KiB (a third of the client's CPU time in a profile of a 1 GiB
//! upload, a quarter in one of a download).

use std::sync::{Arc, Mutex};

/// Free buffers, shared by the tasks that fill and drain them.
#[derive(Clone, Debug)]
pub(crate) struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    keep: usize,
}

impl BufferPool {
    /// Keeps at most `keep` free buffers.
    pub(crate) fn new(keep: usize) -> Self {
        BufferPool {
            free: Arc::default(),
            keep,
        }
    }

    /// A free buffer (of whatever length it had), or an empty one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .expect("not poisoned")
            .pop()
            .unwrap_or_default()
    }

    /// Returns `buf` for reuse, unless enough are kept already.
    pub(crate) fn put(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().expect("not poisoned");
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

/// The first `len` bytes of a pooled buffer, which goes back to the pool
/// when dropped (as the owner of a `Bytes`, when the last reference is).
pub(crate) struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: BufferPool,
}

impl Pooled {
    pub(crate) fn new(buf: Vec<u8>, len: usize, pool: BufferPool) -> Self {
        Pooled { buf, len, pool }
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}
