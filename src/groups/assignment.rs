//! The assignors: which member owns which partition. Pure functions of the members' subscriptions,
//! the topics' partition counts and (for sticky) the previous owners; deterministic (sorted inputs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{GroupError, TopicPartition};

/// How partitions are spread over members (Kafka's `partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStrategy {
    /// Balanced (counts differ by at most one among members of the same subscription), and moving
    /// as few partitions as possible from their previous owners (Kafka's `StickyAssignor`).
    #[default]
    Sticky,
    /// Per topic, contiguous ranges of partitions to the subscribers in member-id order (`RangeAssignor`).
    Range,
    /// All partitions in (topic, partition) order dealt to the subscribers in turn (`RoundRobinAssignor`).
    RoundRobin,
}

impl std::fmt::Display for AssignmentStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AssignmentStrategy::Sticky => "sticky",
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "round_robin",
        })
    }
}

impl std::str::FromStr for AssignmentStrategy {
    type Err = GroupError;
    fn from_str(s: &str) -> Result<Self, GroupError> {
        match s {
            "sticky" => Ok(AssignmentStrategy::Sticky),
            "range" => Ok(AssignmentStrategy::Range),
            "round_robin" | "roundrobin" => Ok(AssignmentStrategy::RoundRobin),
            _ => Err(GroupError::InvalidRequest(format!(
                "assignment strategy {s:?} is not one of sticky, range, round_robin"
            ))),
        }
    }
}

/// Member id → subscribed topics (sorted, deduplicated).
pub(crate) type Subscriptions = BTreeMap<String, Vec<String>>;

/// Assigns every partition of every subscribed topic (`partition_counts`: topic → count) to exactly one
/// subscriber. Every member appears in the result, possibly with nothing; each list is sorted.
pub(crate) fn assign(
    strategy: AssignmentStrategy,
    members: &Subscriptions,
    partition_counts: &BTreeMap<String, u32>,
    previous: &BTreeMap<TopicPartition, String>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let owners = match strategy {
        AssignmentStrategy::Range => range(members, partition_counts),
        AssignmentStrategy::RoundRobin => round_robin(members, partition_counts),
        AssignmentStrategy::Sticky => sticky(members, partition_counts, previous),
    };
    let mut out: BTreeMap<String, Vec<TopicPartition>> = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    for (tp, m) in owners {
        out.get_mut(&m).expect("owners are members").push(tp);
    }
    out
}

fn subscribers<'a>(members: &'a Subscriptions, topic: &str) -> Vec<&'a String> {
    members.iter().filter(|(_, topics)| topics.iter().any(|t| t == topic)).map(|(m, _)| m).collect()
}

/// Partitions of topics some member subscribes to, sorted.
fn subscribed_partitions(members: &Subscriptions, partition_counts: &BTreeMap<String, u32>) -> Vec<TopicPartition> {
    partition_counts
        .iter()
        .filter(|(t, _)| members.values().any(|topics| topics.contains(t)))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

fn range(members: &Subscriptions, partition_counts: &BTreeMap<String, u32>) -> BTreeMap<TopicPartition, String> {
    let mut owners = BTreeMap::new();
    for (topic, &count) in partition_counts {
        let subs = subscribers(members, topic);
        if subs.is_empty() {
            continue;
        }
        let m = subs.len() as u32;
        let (per, extra) = (count / m, count % m);
        for (i, member) in subs.iter().enumerate() {
            let i = i as u32;
            let start = i * per + i.min(extra);
            let len = per + u32::from(i < extra);
            for p in start..start + len {
                owners.insert(TopicPartition::new(topic.clone(), p), (*member).clone());
            }
        }
    }
    owners
}

fn round_robin(members: &Subscriptions, partition_counts: &BTreeMap<String, u32>) -> BTreeMap<TopicPartition, String> {
    let ids: Vec<&String> = members.keys().collect();
    let mut owners = BTreeMap::new();
    let mut next = 0;
    for tp in subscribed_partitions(members, partition_counts) {
        for step in 0..ids.len() {
            let i = (next + step) % ids.len();
            if members[ids[i]].contains(&tp.topic) {
                owners.insert(tp, ids[i].clone());
                next = i + 1;
                break;
            }
        }
    }
    owners
}

fn sticky(
    members: &Subscriptions,
    partition_counts: &BTreeMap<String, u32>,
    previous: &BTreeMap<TopicPartition, String>,
) -> BTreeMap<TopicPartition, String> {
    let all = subscribed_partitions(members, partition_counts);
    let mut counts: BTreeMap<&String, usize> = members.keys().map(|m| (m, 0)).collect();
    let mut owners: BTreeMap<TopicPartition, String> = BTreeMap::new();
    // 1. Keep every previous owner that is still a member subscribed to the topic.
    for tp in &all {
        if let Some(prev) = previous.get(tp) {
            if members.get(prev).is_some_and(|topics| topics.contains(&tp.topic)) {
                *counts.get_mut(prev).expect("a member") += 1;
                owners.insert(tp.clone(), prev.clone());
            }
        }
    }
    let least_loaded = |counts: &BTreeMap<&String, usize>, topic: &str| -> Option<String> {
        subscribers(members, topic).into_iter().min_by_key(|m| (counts[m], *m)).cloned()
    };
    // 2. Give each unowned partition to its least loaded subscriber.
    for tp in &all {
        if !owners.contains_key(tp) {
            let m = least_loaded(&counts, &tp.topic).expect("a subscribed partition has a subscriber");
            *counts.get_mut(&m).expect("a member") += 1;
            owners.insert(tp.clone(), m);
        }
    }
    // 3. Balance: move a partition from its owner to a subscriber with at least two fewer. Each move
    //    lowers the sum of squared counts, so this ends; at the end no owner has two more than the
    //    least loaded subscriber of any of its partitions.
    loop {
        let mut moved = false;
        for tp in &all {
            let owner = owners[tp].clone();
            let best = least_loaded(&counts, &tp.topic).expect("a subscriber");
            if counts[&best] + 1 < counts[&owner] {
                *counts.get_mut(&owner).expect("a member") -= 1;
                *counts.get_mut(&best).expect("a member") += 1;
                owners.insert(tp.clone(), best);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(list: &[(&str, &[&str])]) -> Subscriptions {
        list.iter().map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect())).collect()
    }

    fn counts(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn owners(a: &BTreeMap<String, Vec<TopicPartition>>) -> BTreeMap<TopicPartition, String> {
        let mut o = BTreeMap::new();
        for (m, tps) in a {
            for tp in tps {
                assert!(o.insert(tp.clone(), m.clone()).is_none(), "{tp} owned twice");
            }
        }
        o
    }

    #[test]
    fn every_strategy_assigns_each_partition_once() {
        let members = subs(&[("a", &["x", "y"]), ("b", &["x"]), ("c", &["y", "z"])]);
        let parts = counts(&[("x", 5), ("y", 3), ("z", 2), ("unsubscribed", 4)]);
        for s in [AssignmentStrategy::Sticky, AssignmentStrategy::Range, AssignmentStrategy::RoundRobin] {
            let a = assign(s, &members, &parts, &BTreeMap::new());
            let o = owners(&a);
            assert_eq!(o.len(), 10, "{s}");
            for (tp, m) in &o {
                assert!(members[m].contains(&tp.topic), "{s}: {tp} given to {m}, not a subscriber");
            }
        }
    }

    #[test]
    fn range_is_contiguous() {
        let members = subs(&[("a", &["t"]), ("b", &["t"])]);
        let a = assign(AssignmentStrategy::Range, &members, &counts(&[("t", 5)]), &BTreeMap::new());
        let ps = |m: &str| a[m].iter().map(|tp| tp.partition).collect::<Vec<_>>();
        assert_eq!(ps("a"), vec![0, 1, 2]);
        assert_eq!(ps("b"), vec![3, 4]);
    }

    #[test]
    fn round_robin_deals_in_turn() {
        let members = subs(&[("a", &["t"]), ("b", &["t"])]);
        let a = assign(AssignmentStrategy::RoundRobin, &members, &counts(&[("t", 5)]), &BTreeMap::new());
        assert_eq!(a["a"].iter().map(|tp| tp.partition).collect::<Vec<_>>(), vec![0, 2, 4]);
        assert_eq!(a["b"].iter().map(|tp| tp.partition).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn sticky_moves_only_what_balance_needs() {
        let parts = counts(&[("t", 12)]);
        let two = subs(&[("a", &["t"]), ("b", &["t"])]);
        let first = owners(&assign(AssignmentStrategy::Sticky, &two, &parts, &BTreeMap::new()));
        let three = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let a = assign(AssignmentStrategy::Sticky, &three, &parts, &first);
        for m in ["a", "b", "c"] {
            assert_eq!(a[m].len(), 4, "{m}: {a:?}");
        }
        let second = owners(&a);
        let moved = first.iter().filter(|(tp, m)| &second[*tp] != *m).count();
        assert_eq!(moved, 4, "only c's four partitions move");
        // b leaves: a and c keep theirs and split b's.
        let two = subs(&[("a", &["t"]), ("c", &["t"])]);
        let third = owners(&assign(AssignmentStrategy::Sticky, &two, &parts, &second));
        for (tp, m) in &second {
            if m != "b" {
                assert_eq!(&third[tp], m, "{tp} stays");
            }
        }
        assert_eq!(third.values().filter(|m| *m == "a").count(), 6);
    }

    #[test]
    fn no_subscriber_no_assignment() {
        let members = subs(&[("a", &[])]);
        let a = assign(AssignmentStrategy::Sticky, &members, &counts(&[("t", 3)]), &BTreeMap::new());
        assert!(a["a"].is_empty());
    }
}
