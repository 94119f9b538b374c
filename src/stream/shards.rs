//! Sharded apply: a keyed aggregation's records are applied by several threads at once, each
//! owning one shard of the state (the keys whose hash falls in it, `entries.rs`), as Kafka
//! Streams' tasks and Flink's key groups own theirs.
//!
//! The runner reads a pass of records and has the decode workers parse them and route each to
//! its key's shard (or find it filtered or in error). Then every shard's thread applies, in read
//! order, the records routed to it; the runner waits for all of them before it moves the offsets,
//! so a checkpoint (taken only between passes) is one consistent cut of every shard and the
//! offsets. Such a view's state does not depend on the order of records of different keys
//! (`Operator::order_free`: counts, sums, min/max, `latest` by stamps, no window, no TTL), so the
//! state is that of one thread applying every record, whatever the number of shards. Records
//! emitted on update are put back in read order.

use super::operator::{Incoming, Origin, PreParsed, Route};
use super::state::{State, ViewCounters};
use super::view::Version;
use crate::log::NewRecord;

/// A record of a pass, routed: what [`apply`] needs of it.
pub(crate) struct Routed<'a> {
    pub rec: Incoming<'a>,
    pub pre: Option<PreParsed>,
    pub route: Route,
}

/// Applies `records` (all from the source at `origin`) to `st`, each shard's by a thread of its
/// own (the caller's among them); emitted records go to `out` in read order.
pub(crate) fn apply(v: &Version, records: Vec<Routed<'_>>, origin: Origin, st: &mut State, out: &mut Vec<NewRecord>) {
    let counters = &mut st.snap.counters;
    counters.records_read += records.len() as u64;
    for r in &records {
        match r.route {
            Route::Filtered => counters.records_filtered += 1,
            Route::Error => counters.error_records += 1,
            Route::Shard(_) => {}
        }
    }
    let records = &records;
    let shards = st.snap.entries.shards_mut();
    let results: Vec<(ViewCounters, Vec<(usize, NewRecord)>)> = std::thread::scope(|scope| {
        let mut shards = shards.iter_mut().enumerate();
        let (_, first) = shards.next().expect("at least one shard");
        let others: Vec<_> = shards
            .map(|(i, shard)| {
                std::thread::Builder::new()
                    .name("view-shard".into())
                    .spawn_scoped(scope, move || v.operator.apply_in_shard(records, i, origin, shard))
                    .expect("spawn a view shard thread")
            })
            .collect();
        let mut results = vec![v.operator.apply_in_shard(records, 0, origin, first)];
        for handle in others {
            // A panic in a shard's thread (a bug) is the runner's panic, caught at its boundary.
            match handle.join() {
                Ok(r) => results.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    let mut emitted = Vec::new();
    for (c, e) in results {
        let counters = &mut st.snap.counters;
        counters.records_applied += c.records_applied;
        counters.error_records += c.error_records;
        emitted.extend(e);
    }
    emitted.sort_by_key(|(i, _)| *i);
    out.extend(emitted.into_iter().map(|(_, r)| r));
}
