//! Reused encode buffers. An append encodes its batch into one buffer, writes it, and the buffer
//! comes back here. A fresh megabyte per append costs page faults and page zeroing in the kernel
//! (the allocator hands large freed blocks back to the system); a few kept buffers avoid both.
//! Bounded: at most [`POOLED_MAX`] buffers of at most [`POOLED_BYTES_MAX`] each.

use parking_lot::Mutex;

/// Buffers kept at most.
pub(crate) const POOLED_MAX: usize = 8;
/// Smaller buffers are not kept: the allocator serves them cheaply.
pub(crate) const POOLED_BYTES_MIN: usize = 64 * 1024;
/// Larger buffers are not kept, so the pool holds at most `POOLED_MAX * POOLED_BYTES_MAX` bytes.
pub(crate) const POOLED_BYTES_MAX: usize = 4 * 1024 * 1024;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with room for `capacity` bytes, reused when one is kept.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if (POOLED_BYTES_MIN..=POOLED_BYTES_MAX).contains(&capacity) {
        let mut pool = POOL.lock();
        if let Some(i) = pool.iter().position(|b| b.capacity() >= capacity) {
            return pool.swap_remove(i);
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives a buffer back once its bytes are written.
pub(crate) fn give(mut buf: Vec<u8>) {
    if !(POOLED_BYTES_MIN..=POOLED_BYTES_MAX).contains(&buf.capacity()) {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock();
    if pool.len() < POOLED_MAX {
        pool.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_within_bounds() {
        let mut buf = take(POOLED_BYTES_MIN);
        assert!(buf.is_empty() && buf.capacity() >= POOLED_BYTES_MIN);
        buf.extend_from_slice(b"written");
        give(buf);
        // Other tests may take it first; whatever this one gets is empty and big enough.
        let again = take(POOLED_BYTES_MIN);
        assert!(again.is_empty() && again.capacity() >= POOLED_BYTES_MIN);
        give(again);
        give(Vec::with_capacity(POOLED_BYTES_MAX * 2));
        assert!(POOL.lock().iter().all(|b| b.capacity() <= POOLED_BYTES_MAX && b.is_empty()));
        assert!(POOL.lock().len() <= POOLED_MAX);
    }
}
