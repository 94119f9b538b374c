//! A view's decode workers: the values of the records a runner read are parsed (projected to what
//! the view reads, see `project.rs`) on several threads at once, and applied to the state, in the
//! order they were read, by the runner thread alone.
//!
//! Parsing a value is a pure function of the record, so which thread parses it changes nothing:
//! the state, the watermark, what is late, what is emitted and the offsets a checkpoint holds are
//! those of the runner parsing every record itself (`ViewsConfig::workers` = 1). The runner reads
//! `workers` times as many records per pass when it has workers, so that each has a share worth a
//! thread's start.

/// The least share of a pass's records worth a thread of its own (or one read,
/// `ViewsConfig::read_records_max`, when that is smaller).
const SHARE_RECORDS_MIN: usize = 256;

/// The decode workers of `ViewsConfig::workers`: at least one (the runner thread itself).
pub(crate) fn count(configured: usize) -> usize {
    configured.max(1)
}

/// `parse` of every item, in order, computed on up to `workers` threads (the caller's among them):
/// contiguous shares of `items`, one per thread, none smaller than `SHARE_RECORDS_MIN` or
/// `read_records_max`, whichever is less.
pub(crate) fn parse_all<I: Sync, T: Send>(
    items: &[I],
    workers: usize,
    read_records_max: usize,
    parse: impl Fn(&I) -> T + Sync,
) -> Vec<T> {
    let share_min = SHARE_RECORDS_MIN.min(read_records_max).max(1);
    let threads = workers.min(items.len() / share_min).max(1);
    if threads == 1 {
        return items.iter().map(&parse).collect();
    }
    let share = items.len().div_ceil(threads);
    let parse = &parse;
    std::thread::scope(|scope| {
        let mut shares = items.chunks(share);
        let first = shares.next().expect("at least one share");
        let others: Vec<_> = shares
            .map(|chunk| {
                std::thread::Builder::new()
                    .name("view-decode".into())
                    .spawn_scoped(scope, move || chunk.iter().map(parse).collect::<Vec<T>>())
                    .expect("spawn a view decode worker")
            })
            .collect();
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        out.extend(first.iter().map(parse));
        for handle in others {
            // A panic in a worker (a bug) is the runner's panic, caught at its boundary.
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_in_order_whatever_the_workers() {
        let items: Vec<u64> = (0..10_000).collect();
        let one = parse_all(&items, 1, 4096, |x| x * 3 + 1);
        for (workers, share) in [(2, 4096), (3, 4096), (7, 5), (64, 1)] {
            assert_eq!(parse_all(&items, workers, share, |x| x * 3 + 1), one, "{workers} workers");
        }
        for n in 0..20 {
            assert_eq!(parse_all(&items[..n], 8, 1, |x| *x), items[..n].to_vec(), "{n} items");
        }
    }
}
