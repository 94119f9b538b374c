//! Reading a partition in order: a [`Cursor`] that yields records and knows its position, and the
//! async reads.

use std::collections::VecDeque;
use std::time::Duration;

use super::partition::Partition;
use super::record::Record;
use crate::error::Result;

/// Bytes a cursor asks for per read, unless [`Cursor::fetch_limits`] says otherwise.
pub const CURSOR_FETCH_BYTES_DEFAULT: usize = 1 << 20;
/// Records a cursor asks for per read, unless [`Cursor::fetch_limits`] says otherwise.
pub const CURSOR_FETCH_RECORDS_DEFAULT: usize = 1000;

/// Reads a partition's records in offset order from a position, in bounded reads.
///
/// As an [`Iterator`] it yields every record below the high watermark and ends there (a later
/// `next` yields records appended since); [`next_async`](Self::next_async) instead waits for a new
/// record, up to a timeout. [`position`](Self::position) is the offset to read next: past the last
/// record yielded, and past offsets that compaction removed. A read error (the position fell below
/// the log start after retention, corruption) is yielded once; [`seek`](Self::seek) moves on.
///
/// ```
/// use kappalog::{NewRecord, Store};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::builder(dir.path()).open()?;
/// let p = store.create_topic("clicks", 1, Default::default())?.partition(0)?;
/// p.append(&[NewRecord::new("a"), NewRecord::new("b"), NewRecord::new("c")])?;
///
/// let mut cursor = p.cursor(1);
/// let values: Vec<_> = cursor.by_ref().map(|r| r.map(|r| r.value)).collect::<Result<_, _>>()?;
/// assert_eq!(values.len(), 2);
/// assert_eq!(cursor.position(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Cursor {
    partition: Partition,
    position: u64,
    buffered: VecDeque<Record>,
    max_bytes: usize,
    max_records: usize,
}

impl Partition {
    /// A cursor over this partition's records from `offset` on (see [`Cursor`]).
    pub fn cursor(&self, offset: u64) -> Cursor {
        Cursor {
            partition: self.clone(),
            position: offset,
            buffered: VecDeque::new(),
            max_bytes: CURSOR_FETCH_BYTES_DEFAULT,
            max_records: CURSOR_FETCH_RECORDS_DEFAULT,
        }
    }

    /// A cursor from the log start offset.
    pub fn cursor_from_start(&self) -> Cursor {
        self.cursor(self.log_start_offset())
    }

    /// [`read`](Self::read) on tokio's blocking pool, for async callers (a read may fault pages of
    /// a segment in from disk).
    pub async fn read_async(&self, offset: u64, max_bytes: usize, max_records: usize) -> Result<Vec<Record>> {
        let p = self.clone();
        tokio::task::spawn_blocking(move || p.read(offset, max_bytes, max_records))
            .await
            .expect("a read does not panic")
    }
}

impl Cursor {
    /// The offset of the next record this cursor reads (or of the first offset after the gap it
    /// skips to).
    pub fn position(&self) -> u64 {
        self.buffered.front().map_or(self.position, |r| r.offset)
    }

    /// The partition it reads.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Reads from `offset` next.
    pub fn seek(&mut self, offset: u64) {
        self.buffered.clear();
        self.position = offset;
    }

    /// Bounds each read: about `max_bytes` of batches (the first batch whatever its size) and at
    /// most `max_records` records. Both at least 1.
    pub fn fetch_limits(mut self, max_bytes: usize, max_records: usize) -> Cursor {
        self.max_bytes = max_bytes.max(1);
        self.max_records = max_records.max(1);
        self
    }

    /// Records below the high watermark from the position on, at most one read's worth (nothing
    /// at the high watermark), and moves past them.
    pub fn next_batch(&mut self) -> Result<Vec<Record>> {
        if !self.buffered.is_empty() {
            return Ok(self.buffered.drain(..).collect());
        }
        self.read()
    }

    /// The next record, waiting up to `timeout` for one to be appended when the cursor is at the
    /// high watermark: `Ok(None)` when none came.
    pub async fn next_async(&mut self, timeout: Duration) -> Result<Option<Record>> {
        if self.buffered.is_empty() {
            let batch = self.next_batch_async(timeout).await?;
            self.buffered.extend(batch);
        }
        Ok(self.buffered.pop_front())
    }

    /// [`next_batch`](Self::next_batch), waiting up to `timeout` for records when the cursor is at
    /// the high watermark: empty when none came. The read runs on tokio's blocking pool.
    pub async fn next_batch_async(&mut self, timeout: Duration) -> Result<Vec<Record>> {
        if !self.buffered.is_empty() {
            return Ok(self.buffered.drain(..).collect());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.position != self.partition.high_watermark() {
                let (p, position, bytes, records) =
                    (self.partition.clone(), self.position, self.max_bytes, self.max_records);
                let (batch, next) = tokio::task::spawn_blocking(move || read_from(&p, position, bytes, records))
                    .await
                    .expect("a read does not panic")?;
                self.position = next;
                if !batch.is_empty() {
                    return Ok(batch);
                }
                // Only offsets removed by compaction: the position moved past them.
                continue;
            }
            let waited = tokio::time::timeout_at(deadline, self.partition.wait_for_data(self.position)).await;
            if waited.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    fn read(&mut self) -> Result<Vec<Record>> {
        // Offsets compaction removed at the end of a batch yield nothing but move the position:
        // read again while below the high watermark.
        // A position past the high watermark or below the log start is the read's error.
        while self.position != self.partition.high_watermark() {
            let (batch, next) = read_from(&self.partition, self.position, self.max_bytes, self.max_records)?;
            self.position = next;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
        Ok(Vec::new())
    }
}

impl Iterator for Cursor {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.buffered.is_empty() {
            match self.read() {
                Ok(batch) => self.buffered.extend(batch),
                Err(e) => return Some(Err(e)),
            }
        }
        self.buffered.pop_front().map(Ok)
    }
}

/// One bounded read from `offset`: the records and the offset to read next.
fn read_from(p: &Partition, offset: u64, max_bytes: usize, max_records: usize) -> Result<(Vec<Record>, u64)> {
    let mut out = Vec::new();
    let mut next = offset;
    for batch in p.read_batches(offset, max_bytes, max_records)? {
        next = batch.for_each(|r| out.push(batch.to_record(r)))?;
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use crate::{NewRecord, Store, StoreConfig, TopicConfig};
    use std::time::Duration;

    #[test]
    fn cursor_reads_in_bounded_steps_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        for i in 0..10 {
            p.append(&[NewRecord::new(format!("v{i}")), NewRecord::new("w")]).unwrap();
        }
        let mut cursor = p.cursor(3).fetch_limits(1, 3);
        let first = cursor.next_batch().unwrap();
        assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), [3]);
        assert_eq!(cursor.position(), 4);
        let rest: Vec<u64> = cursor.by_ref().map(|r| r.unwrap().offset).collect();
        assert_eq!(rest, (4..20).collect::<Vec<_>>());
        assert!(cursor.next().is_none(), "ends at the high watermark");
        p.append(&[NewRecord::new("late")]).unwrap();
        assert_eq!(cursor.next().unwrap().unwrap().offset, 20, "resumes after new appends");
        cursor.seek(0);
        assert_eq!(cursor.count(), 21);
    }

    #[test]
    fn cursor_out_of_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        p.append(&[NewRecord::new("a")]).unwrap();
        let mut cursor = p.cursor(5);
        assert!(matches!(cursor.next(), Some(Err(crate::Error::OffsetOutOfRange { .. }))));
    }

    #[test]
    fn next_async_waits_for_an_append_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let mut cursor = p.cursor(0);
            assert!(cursor.next_async(Duration::from_millis(20)).await.unwrap().is_none());
            let writer = p.clone();
            let append = tokio::spawn(async move { writer.append_async(vec![NewRecord::new("x")]).await });
            let got = cursor.next_async(Duration::from_secs(30)).await.unwrap().expect("the appended record");
            assert_eq!((got.offset, got.value.as_deref()), (0, Some(&b"x"[..])));
            append.await.unwrap().unwrap();
            assert_eq!(p.read_async(0, 1 << 20, 10).await.unwrap().len(), 1);
        });
    }
}
