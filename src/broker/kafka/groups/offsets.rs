//! OffsetCommit (key 8) v2-7 and OffsetFetch (key 9) v1-5: committed offsets in the same
//! `__consumer_offsets` as HTTP groups.

use std::collections::BTreeMap;

use super::{code_of, coordinator};
use crate::broker::kafka::wire::{Reader, Result, Writer};
use crate::broker::kafka::{code, Context};
use crate::groups::TopicPartition;

/// One partition of an OffsetCommit: (partition, offset, metadata).
pub(super) type CommitPartition = (i32, i64, Option<String>);

#[derive(Debug, PartialEq, Eq)]
pub(super) struct OffsetCommitRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: Vec<(String, Vec<CommitPartition>)>,
}

impl OffsetCommitRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let group_id = r.string("group_id")?;
        let generation_id = r.i32("generation_id")?;
        let member_id = r.string("member_id")?;
        let group_instance_id = if v >= 7 { r.nullable_string("group_instance_id")? } else { None };
        if v <= 4 {
            r.i64("retention_time_ms")?; // offsets are kept until deleted, as compaction keeps them
        }
        let n = r.array_len("topics", 2 + 4)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string("topics.name")?;
            let np = r.array_len("topics.partitions", 4 + 8 + 2)?;
            let mut partitions = Vec::with_capacity(np);
            for _ in 0..np {
                let partition = r.i32("partitions.partition_index")?;
                let offset = r.i64("partitions.committed_offset")?;
                if v >= 6 {
                    r.i32("partitions.committed_leader_epoch")?;
                }
                let metadata = r.nullable_string("partitions.committed_metadata")?;
                partitions.push((partition, offset, metadata));
            }
            topics.push((name, partitions));
        }
        Ok(OffsetCommitRequest { group_id, generation_id, member_id, group_instance_id, topics })
    }
}

pub(super) fn encode_commit(v: i16, topics: &[(String, Vec<(i32, i16)>)]) -> Writer {
    let mut w = Writer::new();
    if v >= 3 {
        w.i32(0);
    }
    w.array_len(topics.len());
    for (name, partitions) in topics {
        w.string(name).array_len(partitions.len());
        for (p, error) in partitions {
            w.i32(*p).i16(*error);
        }
    }
    w
}

pub(super) async fn offset_commit(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = OffsetCommitRequest::decode(v, r)?;
    // Partitions with a negative index are answered here; the rest go to the coordinator in one commit.
    let mut valid = Vec::new();
    for (name, partitions) in &req.topics {
        for (p, offset, metadata) in partitions {
            if let Ok(p) = u32::try_from(*p) {
                valid.push((TopicPartition::new(name.clone(), p), *offset, metadata.clone()));
            }
        }
    }
    let answers = match coordinator(ctx) {
        Ok(c) => c.classic_commit_async(req.group_id.clone(), req.member_id.clone(), req.generation_id, valid).await,
        Err(e) => return Ok(encode_commit(v, &every(&req, e))),
    };
    let mut answers = answers.into_iter();
    let topics: Vec<(String, Vec<(i32, i16)>)> = req
        .topics
        .iter()
        .map(|(name, partitions)| {
            let codes = partitions
                .iter()
                .map(|(p, _, _)| {
                    let error = if *p < 0 {
                        code::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        code_of(answers.next().expect("an answer per valid partition"))
                    };
                    (*p, error)
                })
                .collect();
            (name.clone(), codes)
        })
        .collect();
    Ok(encode_commit(v, &topics))
}

fn every(req: &OffsetCommitRequest, error: i16) -> Vec<(String, Vec<(i32, i16)>)> {
    req.topics.iter().map(|(n, ps)| (n.clone(), ps.iter().map(|(p, _, _)| (*p, error)).collect())).collect()
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct OffsetFetchRequest {
    pub group_id: String,
    /// `None`: every partition with a committed offset (v2+).
    pub topics: Option<Vec<(String, Vec<i32>)>>,
}

impl OffsetFetchRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let group_id = r.string("group_id")?;
        let topics = match r.nullable_array_len("topics", 2 + 4)? {
            None if v >= 2 => None,
            None => return Err(crate::broker::kafka::wire::Error::Length { field: "topics", len: -1 }),
            Some(n) => {
                let mut topics = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.string("topics.name")?;
                    let np = r.array_len("topics.partition_indexes", 4)?;
                    let mut partitions = Vec::with_capacity(np);
                    for _ in 0..np {
                        partitions.push(r.i32("topics.partition_indexes")?);
                    }
                    topics.push((name, partitions));
                }
                Some(topics)
            }
        };
        Ok(OffsetFetchRequest { group_id, topics })
    }
}

/// One partition of an OffsetFetch answer: (partition, offset or -1, metadata, error).
pub(super) type FetchPartition = (i32, i64, String, i16);

pub(super) fn encode_fetch(v: i16, topics: &[(String, Vec<FetchPartition>)], error: i16) -> Writer {
    let mut w = Writer::new();
    if v >= 3 {
        w.i32(0);
    }
    w.array_len(topics.len());
    for (name, partitions) in topics {
        w.string(name).array_len(partitions.len());
        for (p, offset, metadata, e) in partitions {
            w.i32(*p).i64(*offset);
            if v >= 5 {
                w.i32(-1); // committed_leader_epoch: kappalog keeps none
            }
            w.string(metadata).i16(*e);
        }
    }
    if v >= 2 {
        w.i16(error);
    }
    w
}

pub(super) fn offset_fetch(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = OffsetFetchRequest::decode(v, r)?;
    let committed = coordinator(ctx).and_then(|c| c.classic_committed(&req.group_id).map_err(|e| e.code()));
    let (committed, error) = match committed {
        Ok(c) => (c, code::NONE),
        Err(e) => (BTreeMap::new(), e),
    };
    // Before v2 an error has no top-level field: each partition carries it.
    let each = if v < 2 { error } else { code::NONE };
    let topics: Vec<(String, Vec<FetchPartition>)> = match req.topics {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let ps = partitions
                    .into_iter()
                    .map(|p| {
                        let c =
                            u32::try_from(p).ok().and_then(|pi| committed.get(&TopicPartition::new(name.clone(), pi)));
                        match c {
                            Some(c) => (p, c.offset as i64, c.metadata.clone().unwrap_or_default(), each),
                            None => (p, -1, String::new(), each),
                        }
                    })
                    .collect();
                (name, ps)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
            for (tp, c) in &committed {
                by_topic.entry(tp.topic.clone()).or_default().push((
                    tp.partition as i32,
                    c.offset as i64,
                    c.metadata.clone().unwrap_or_default(),
                    code::NONE,
                ));
            }
            by_topic.into_iter().collect()
        }
    };
    Ok(encode_fetch(v, &topics, error))
}
