//! Reused encode buffers. An append encodes its batch into one buffer, writes it, and the buffer
//! comes back here. A fresh megabyte per append costs page faults and page zeroing in the kernel
//! (the allocator hands large freed blocks back to the system); a few kept buffers avoid both.
//! A kept buffer also keeps its bytes: [`take`] hands out a buffer at least as long as asked for
//! without zeroing what an earlier batch already initialized, since the encoder overwrites every
//! byte it keeps.
//! Bounded: at most [`POOLED_MAX`] buffers of at most [`POOLED_BYTES_MAX`] each.

use parking_lot::Mutex;

/// Buffers kept at most.
pub(crate) const POOLED_MAX: usize = 8;
/// Smaller buffers are not kept: the allocator serves them cheaply.
pub(crate) const POOLED_BYTES_MIN: usize = 64 * 1024;
/// Larger buffers are not kept, so the pool holds at most `POOLED_MAX * POOLED_BYTES_MAX` bytes.
pub(crate) const POOLED_BYTES_MAX: usize = 4 * 1024 * 1024;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer of at least `len` bytes, reused when one is kept: its bytes are an earlier batch's, or
/// zeros. Its caller writes the bytes it uses and cuts the rest off.
pub(crate) fn take(len: usize) -> Vec<u8> {
    if (POOLED_BYTES_MIN..=POOLED_BYTES_MAX).contains(&len) {
        let mut pool = POOL.lock();
        // Prefer a buffer already that long: nothing to zero.
        let found = pool.iter().position(|b| b.len() >= len).or_else(|| pool.iter().position(|b| b.capacity() >= len));
        if let Some(i) = found {
            let mut buf = pool.swap_remove(i);
            drop(pool);
            if buf.len() < len {
                buf.resize(len, 0);
            }
            return buf;
        }
    }
    vec![0; len]
}

/// Gives a buffer back once its bytes are written.
pub(crate) fn give(buf: Vec<u8>) {
    if !(POOLED_BYTES_MIN..=POOLED_BYTES_MAX).contains(&buf.capacity()) {
        return;
    }
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
        let mut buf = take(POOLED_BYTES_MIN + 1);
        assert!(buf.len() > POOLED_BYTES_MIN);
        buf[..7].copy_from_slice(b"written");
        give(buf);
        // Other tests may take it first; whatever this one gets has the length asked for.
        for len in [POOLED_BYTES_MIN, POOLED_BYTES_MIN + 100, 10] {
            let again = take(len);
            assert!(again.len() >= len);
            give(again);
        }
        give(vec![0; POOLED_BYTES_MAX * 2]);
        assert!(POOL.lock().iter().all(|b| (POOLED_BYTES_MIN..=POOLED_BYTES_MAX).contains(&b.capacity())));
        assert!(POOL.lock().len() <= POOLED_MAX);
    }
}
