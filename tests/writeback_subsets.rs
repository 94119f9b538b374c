//! Out-of-order writeback through the fault-injection seam (segment-format.md, sections 0 and 9).
//! Groups are appended through the real write path while the seam records every log and index
//! write no fsync covers yet. A crash image is a copy of the data directory in which any subset
//! of those writes, cut into pages (4 KiB) or sectors (512 B), never reached the disk (they read
//! as zeros, and the file may also end early): the state a power loss leaves after the kernel
//! wrote back pages in any order. Every image is opened with the real recovery and checked
//! against a model that knows only what was appended and the bytes of the crash image: the
//! records read are exactly the appended ones up to the first batch with a missing byte, which
//! holds every record acknowledged as durable; nothing past that hole is served (not a later
//! batch that did reach the disk, not a batch written inside a record value), no corruption is
//! reported, and appends go on at the recovered end. Random images use a printed seed
//! (`KAPPALOG_SEED=n` replays); small cases are exhaustive over every subset.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::batch as b;
use kappalog::fault::{FaultInjector, UnsyncedWrite};
use kappalog::{Durability, NewRecord, Partition, Store, StoreConfig, TopicConfig};

/// What the test appended (record `i` at offset `i`) and how far it was acknowledged durable.
struct Model {
    records: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    durable: u64,
}

struct Live {
    dir: tempfile::TempDir,
    store: Store,
    faults: Arc<FaultInjector>,
    p: Partition,
    model: Model,
}

fn open_live(durability: Durability, segment_bytes: u64) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = common::store_with_faults(dir.path());
    let config = TopicConfig::default().durability(durability).segment_bytes(segment_bytes);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    faults.record_writeback();
    Live { dir, store, faults, p, model: Model { records: Vec::new(), durable: 0 } }
}

impl Live {
    /// Appends one group of `values` (one batch), some keyed. With `embed`, the last value ends
    /// with a whole valid batch of this log whose base offset is the one after this batch's.
    fn append(&mut self, rng: &mut common::Rng, mut values: Vec<Vec<u8>>, embed: bool) {
        let next = self.model.records.len() as u64;
        if embed {
            let log = common::segment_files(&common::partition_dir(self.dir.path(), "t", 0), "log").remove(0);
            let bytes = std::fs::read(&log).unwrap();
            if let Some(&at) = b::starts(&bytes).first() {
                let mut inner = bytes[at..at + b::len_at(&bytes, at)].to_vec();
                b::set_base_offset(&mut inner, next + values.len() as u64);
                values.last_mut().unwrap().extend_from_slice(&inner);
            }
        }
        let records: Vec<(Option<Vec<u8>>, Vec<u8>)> =
            values.into_iter().map(|v| ((rng.below(2) == 0).then(|| rng.bytes(8)), v)).collect();
        let new: Vec<NewRecord> = records
            .iter()
            .map(|(k, v)| match k {
                Some(k) => NewRecord::keyed(k.clone(), v.clone()),
                None => NewRecord::new(v.clone()),
            })
            .collect();
        let appended = self.p.append(&new).unwrap();
        assert_eq!(appended.base_offset, next);
        self.model.records.extend(records);
        if self.p.config().durability == Durability::Sync {
            self.model.durable = self.model.records.len() as u64;
        }
    }

    /// `flush()`: everything appended is acknowledged durable.
    fn flush(&mut self) {
        self.p.flush().unwrap();
        self.model.durable = self.model.records.len() as u64;
    }

    /// Durable so far: what was flushed, and everything below the active segment (a roll fsyncs).
    fn durable(&self) -> u64 {
        let active = self.p.segment_infos().unwrap().last().unwrap().base_offset;
        self.model.durable.max(active)
    }

    fn pieces(&self, unit: u64) -> Vec<UnsyncedWrite> {
        self.faults.unsynced_writes().iter().flat_map(|w| w.pieces(unit)).collect()
    }

    /// Makes the crash image in `to` without `missing`, and with the active log cut at `cut` if set.
    fn image(&self, to: &Path, missing: &[UnsyncedWrite], cut: Option<u64>) {
        self.faults.crash_copy(self.dir.path(), to, missing).unwrap();
        if let Some(cut) = cut {
            let log = common::segment_files(&common::partition_dir(to, "t", 0), "log").pop().unwrap();
            std::fs::OpenOptions::new().write(true).open(log).unwrap().set_len(cut).unwrap();
        }
    }

    /// Opens the image in `image` with the real recovery and checks it against the model.
    fn check(&self, image: &Path, what: &str) {
        let durable = self.durable();
        let expected = expected_end(self.dir.path(), image, what);
        assert!(expected >= durable, "{what}: the model lost a durable record ({expected} < {durable}): a seam bug");
        let store = Store::open(image, StoreConfig::default()).unwrap();
        let p = store.topic("t").unwrap().partition(0).unwrap();
        assert!(p.corruption().is_none(), "{what}: {:?}", p.corruption());
        assert_eq!(p.high_watermark(), expected, "{what}: the log ends at the first batch with a missing byte");
        let got = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(got.len() as u64, expected, "{what}: records read");
        for (r, (k, v)) in got.iter().zip(&self.model.records) {
            assert_eq!(r.value.as_deref(), Some(&v[..]), "{what}: value at offset {}", r.offset);
            assert_eq!(r.key.as_deref(), k.as_deref(), "{what}: key at offset {}", r.offset);
        }
        let after = p.append(&[NewRecord::new("after")]).unwrap();
        assert_eq!(after.base_offset, expected, "{what}: appends go on at the recovered end");
        assert_eq!(p.read(expected, usize::MAX, usize::MAX).unwrap().len(), 1, "{what}");
    }
}

/// The model: the offset the recovered log must end at, from the live files (the page cache:
/// every byte written) and the image's: the first byte where they differ (or where the image's
/// file ends) is the first missing byte; the log ends at the batch holding it. Batches are walked
/// with Kafka's published header layout, not kappalog's decoder.
fn expected_end(live: &Path, image: &Path, what: &str) -> u64 {
    let live_logs = common::segment_files(&common::partition_dir(live, "t", 0), "log");
    let image_logs = common::segment_files(&common::partition_dir(image, "t", 0), "log");
    assert_eq!(live_logs.len(), image_logs.len(), "{what}");
    let mut end = 0;
    for (i, (l, c)) in live_logs.iter().zip(&image_logs).enumerate() {
        let (l, c) = (std::fs::read(l).unwrap(), std::fs::read(c).unwrap());
        let first_missing = l.iter().zip(&c).position(|(a, b)| a != b).unwrap_or(l.len().min(c.len()));
        for at in b::starts(&l) {
            let len = b::len_at(&l, at);
            if at + len > first_missing {
                assert_eq!(i, live_logs.len() - 1, "{what}: a sealed segment lost bytes: a seam bug");
                return b::base_offset_at(&l, at);
            }
            let delta =
                u32::from_be_bytes(l[at + b::LAST_OFFSET_DELTA..at + b::LAST_OFFSET_DELTA + 4].try_into().unwrap());
            end = b::base_offset_at(&l, at) + delta as u64 + 1;
        }
    }
    end
}

/// The position of the first unsynced write of the active log: the image's log may end anywhere
/// from there (its size was never fsynced past it).
fn unsynced_log_start(pieces: &[UnsyncedWrite]) -> Option<u64> {
    pieces.iter().filter(|w| w.path.extension().is_some_and(|e| e == "log")).map(|w| w.position).min()
}

fn random_values(rng: &mut common::Rng) -> Vec<Vec<u8>> {
    (0..1 + rng.below(4))
        .map(|_| {
            let len = 1 + rng.below(1500) as usize;
            rng.bytes(len)
        })
        .collect()
}

#[test]
fn any_subset_of_unsynced_pages_or_sectors_recovers_to_the_first_missing_byte() {
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let mut images = 0;
    for trial in 0..16 {
        let durability = if trial % 4 == 3 { Durability::Sync } else { Durability::None };
        let mut live = open_live(durability, 16 * 1024 + rng.below(48 * 1024));
        for i in 0..10 + rng.below(50) {
            let values = random_values(&mut rng);
            let embed = i > 0 && rng.below(3) == 0;
            live.append(&mut rng, values, embed);
            if rng.below(12) == 0 {
                live.flush();
            }
        }
        for image_no in 0..6 {
            let unit = if image_no % 2 == 0 { 4096 } else { 512 };
            let pieces = live.pieces(unit);
            let keep = [0.1, 0.5, 0.9][rng.below(3) as usize];
            let mut missing: Vec<UnsyncedWrite> =
                pieces.iter().filter(|_| (rng.below(1000) as f64) >= keep * 1000.0).cloned().collect();
            if image_no == 5 && !pieces.is_empty() {
                // Exactly one piece missing, the rest (later pages too) written back.
                missing = vec![pieces[rng.below(pieces.len() as u64) as usize].clone()];
            }
            let len = std::fs::metadata(&live.p.segment_infos().unwrap().last().unwrap().path).unwrap().len();
            let cut =
                unsynced_log_start(&pieces).filter(|_| rng.below(3) == 0).map(|from| from + rng.below(len - from + 1));
            let crashed = tempfile::tempdir().unwrap();
            live.image(crashed.path(), &missing, cut);
            let what = format!(
                "seed {seed} trial {trial} image {image_no}: {durability:?}, {} records, {} durable, unit {unit}, {} of {} pieces missing, cut {cut:?}",
                live.model.records.len(),
                live.durable(),
                missing.len(),
                pieces.len()
            );
            live.check(crashed.path(), &what);
            images += 1;
        }
        drop(live.store);
    }
    println!("{images} crash images recovered as the model says");
}

/// Every subset of the pieces of a few unsynced groups (after a flush), at both granularities:
/// each possible writeback order stopped at each possible instant leaves one of these.
#[test]
fn every_subset_of_a_small_unsynced_tail_recovers_to_the_first_missing_byte() {
    for (unit, sizes) in [(4096u64, [1800usize, 2500, 3000]), (512, [300, 500, 200])] {
        let mut rng = common::Rng::new(unit);
        let mut live = open_live(Durability::None, 1 << 20);
        for _ in 0..3 {
            let values = vec![rng.bytes(700)];
            live.append(&mut rng, values, false);
        }
        live.flush();
        for (i, size) in sizes.into_iter().enumerate() {
            let values = vec![rng.bytes(size)];
            live.append(&mut rng, values, i == 1);
        }
        let pieces = live.pieces(unit);
        assert!((4..=12).contains(&pieces.len()), "unit {unit}: {} pieces: {pieces:?}", pieces.len());
        for subset in 0u32..1 << pieces.len() {
            let missing: Vec<UnsyncedWrite> =
                pieces.iter().enumerate().filter(|(i, _)| subset & (1 << i) != 0).map(|(_, w)| w.clone()).collect();
            let crashed = tempfile::tempdir().unwrap();
            live.image(crashed.path(), &missing, None);
            live.check(crashed.path(), &format!("unit {unit}, missing subset {subset:#b} of {pieces:?}"));
        }
        println!("unit {unit}: all {} subsets of {} pieces", 1u32 << pieces.len(), pieces.len());
    }
}

/// The other side of the recovery point: bytes below it were fsynced, so damage there is reported
/// as corruption (and not cut as a torn tail), whatever byte it is.
#[test]
fn damage_below_the_recovery_point_is_reported_as_corruption() {
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let mut live = open_live(Durability::None, 1 << 20);
    for _ in 0..8 {
        let values = random_values(&mut rng);
        live.append(&mut rng, values, false);
    }
    live.flush();
    let durable_len = std::fs::metadata(&live.p.segment_infos().unwrap().last().unwrap().path).unwrap().len();
    for _ in 0..3 {
        let values = random_values(&mut rng);
        live.append(&mut rng, values, false);
    }
    for round in 0..12 {
        let crashed = tempfile::tempdir().unwrap();
        live.image(crashed.path(), &live.pieces(4096), None);
        let log: PathBuf = common::segment_files(&common::partition_dir(crashed.path(), "t", 0), "log").pop().unwrap();
        let mut bytes = std::fs::read(&log).unwrap();
        let at = rng.below(durable_len) as usize;
        bytes[at] ^= 1 << rng.below(8);
        std::fs::write(&log, &bytes).unwrap();
        let store = Store::open(crashed.path(), StoreConfig::default()).unwrap();
        let p = store.topic("t").unwrap().partition(0).unwrap();
        assert!(
            p.corruption().is_some(),
            "seed {seed} round {round}: a flipped bit at byte {at} below the recovery point"
        );
    }
}
