//! Releasing deleted segments off the caller's thread.
//!
//! A segment's file is unlinked (or renamed over) while readers may still hold its map; the kernel
//! frees the pages and disk blocks when the last `Arc<Segment>` drops. That costs about 2 s per GiB
//! on the machines we measure (page cache invalidation and block freeing), far more than the
//! cleaning that replaced it. [`release`] hands the cleaner's last references to one background
//! thread, as Kafka defers segment deletion (`file.delete.delay.ms`), so that a compaction pass or
//! a retention run does not wait for it, and neither does anything queued behind its lock.
//! Nothing depends on when a release happens: the files are already gone from the directory.

use std::sync::mpsc::Sender;
use std::sync::OnceLock;

type Garbage = Box<dyn Send>;

static QUEUE: OnceLock<Option<Sender<Garbage>>> = OnceLock::new();

/// Drops `segments` (segments, or lists of them) on the reaper thread (on this thread if the
/// reaper cannot be started).
pub(crate) fn release(segments: impl Send + 'static) {
    let segments: Garbage = Box::new(segments);
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Garbage>();
        let spawned = std::thread::Builder::new().name("kappalog-reaper".into()).spawn(move || {
            for segments in rx {
                drop(segments);
            }
        });
        match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the segment reaper thread; releasing inline");
                None
            }
        }
    });
    if let Some(tx) = queue {
        // A send fails only if the reaper thread died; then `segments` come back and drop here.
        if let Err(back) = tx.send(segments) {
            drop(back.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::log::segment::Segment;

    #[test]
    fn released_segments_are_dropped_by_the_reaper() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _files) = Segment::create(dir.path(), 0, 1 << 20, 4096).unwrap();
        let weak = Arc::downgrade(&s);
        release(vec![s]);
        // Bounded wait for the reaper thread to drop its reference.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while weak.strong_count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the reaper never dropped the segment");
            std::thread::yield_now();
        }
    }
}
