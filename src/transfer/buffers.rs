//! Recycled part buffers. Every uploaded 256 KiB passes through one freshly sealed buffer that
//! storage holds until the store acknowledged it, usually on another thread. Freed there and
//! allocated anew here, those buffers made mimalloc (the allocator then) keep about 30 MiB more
//! than the pipeline holds (1 GiB upload: 96 MiB peak RSS; returning memory to the OS at once
//! brought it to 64 MiB but cost 0.75 CPU-s per GiB). Handing them back instead keeps memory at
//! what is in use and costs nothing per byte; with the pool, the system allocator does better
//! still (57 MiB, see src/main.rs).
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A bounded stack of empty buffers. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    max_buffers: usize,
}

impl BufferPool {
    /// Keeps at most `max_buffers` idle buffers; more are freed when they come back.
    pub fn new(max_buffers: usize) -> BufferPool {
        BufferPool {
            free: Arc::new(Mutex::new(Vec::new())),
            max_buffers,
        }
    }

    /// An empty buffer, recycled when one is idle. Its capacity is whatever it had; the caller
    /// reserves what it needs (recycled buffers of one pool all have the same size in practice).
    pub fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Wraps a filled buffer for storage; dropping the last clone of the `Bytes` returns the
    /// buffer to the pool.
    pub fn share(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Returning {
            buf,
            pool: self.clone(),
        })
    }

    /// Idle buffers right now.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.lock().len()
    }

    fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        buf.clear();
        let mut free = self.lock();
        if free.len() < self.max_buffers {
            free.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // The stack stays consistent whatever panicked while holding it.
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The owner behind a pooled `Bytes`: gives its buffer back on drop.
struct Returning {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl AsRef<[u8]> for Returning {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_the_last_clone_drops() {
        let pool = BufferPool::new(4);
        let mut buf = pool.take();
        buf.extend_from_slice(b"sealed bytes");
        let ptr = buf.as_ptr();
        let bytes = pool.share(buf);
        let clone = bytes.clone();
        assert_eq!(&bytes[..], b"sealed bytes");
        drop(bytes);
        assert_eq!(pool.idle(), 0, "a clone still holds it");
        drop(clone);
        assert_eq!(pool.idle(), 1);
        let again = pool.take();
        assert!(again.is_empty(), "handed out empty");
        assert_eq!(again.as_ptr(), ptr, "the same allocation, not a new one");
        assert!(again.capacity() >= 12);
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit() {
        let pool = BufferPool::new(2);
        let shared: Vec<Bytes> = (0..5).map(|_| pool.share(vec![1; 8])).collect();
        drop(shared);
        assert_eq!(pool.idle(), 2);
        // Empty, capacity-less buffers are not worth keeping.
        drop(pool.share(Vec::new()));
        assert_eq!(pool.idle(), 2);
    }
}
