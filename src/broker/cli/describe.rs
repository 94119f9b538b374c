//! The tables of `topics describe` and `groups describe` (the default output; `--output json`
//! prints the broker's documents instead), laid out as Kafka's `kafka-topics --describe` and
//! `kafka-consumer-groups --describe` are.

use serde_json::Value;

use super::output::{cell, table};

/// Header of the group table.
pub const GROUP_COLUMNS: [&str; 6] = ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "OWNER"];
/// Header of the topic's partition table.
pub const TOPIC_COLUMNS: [&str; 5] = ["PARTITION", "LOG-START", "HIGH-WATERMARK", "SEGMENTS", "BYTES"];

/// `GET /groups/{g}` as a summary line and one row per partition (`-`: no committed offset or no owner).
pub fn group_table(d: &Value) -> String {
    let members = d["members"].as_array().map_or(0, Vec::len);
    let mut out = format!(
        "group {}: state {}, generation {}, {members} member{}\n",
        cell(&d["group"]),
        cell(&d["state"]),
        cell(&d["generation"]),
        if members == 1 { "" } else { "s" }
    );
    let rows: Vec<Vec<String>> = d["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                cell(&p["topic"]),
                cell(&p["partition"]),
                cell(&p["committed"]),
                cell(&p["log_end"]),
                cell(&p["lag"]),
                cell(&p["owner"]),
            ]
        })
        .collect();
    out.push_str(&table(&GROUP_COLUMNS, &rows));
    out
}

/// `kappalog topics describe` as a summary line (with the topic id), one row per partition (segments and bytes from
/// the broker's `/metrics`; `-` where it has none), then the topic's configs.
pub fn topic_table(name: &str, t: &Value, metrics: &str) -> String {
    let offsets = t["offsets"].as_array().cloned().unwrap_or_default();
    let mut out = format!("topic {name}: {} partition{}", offsets.len(), if offsets.len() == 1 { "" } else { "s" });
    if let Some(id) = t["topic_id"].as_str() {
        out.push_str(&format!(", id {id}"));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = offsets
        .iter()
        .map(|o| {
            let p = cell(&o["partition"]);
            vec![
                p.clone(),
                cell(&o["beginning_offset"]),
                cell(&o["end_offset"]),
                gauge(metrics, "kappalog_partition_segments", name, &p),
                gauge(metrics, "kappalog_partition_size_bytes", name, &p),
            ]
        })
        .collect();
    out.push_str(&table(&TOPIC_COLUMNS, &rows));
    if let Some(configs) = t["configs"].as_object().filter(|c| !c.is_empty()) {
        let rows: Vec<Vec<String>> = configs.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
        out.push_str("\n\n");
        out.push_str(&table(&["CONFIG", "VALUE"], &rows));
    }
    out
}

/// The value of a per-partition gauge in Prometheus text, or `-`.
fn gauge(metrics: &str, metric: &str, topic: &str, partition: &str) -> String {
    let escaped = topic.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let prefix = format!("{metric}{{topic=\"{escaped}\",partition=\"{partition}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).map_or_else(|| "-".to_string(), |v| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn group_rows_show_offsets_lag_and_owner() {
        let d = json!({
            "group": "g", "state": "Stable", "generation": 3, "members": [{"member_id": "m-1"}],
            "partitions": [
                {"topic": "t", "partition": 0, "committed": 5, "log_start": 0, "log_end": 7, "lag": 2, "owner": "m-1"},
                {"topic": "t", "partition": 1, "committed": null, "log_start": 0, "log_end": 4, "lag": null,
                 "owner": null}
            ]
        });
        let text = group_table(&d);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "group g: state Stable, generation 3, 1 member");
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), GROUP_COLUMNS);
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["t", "0", "5", "7", "2", "m-1"]);
        assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["t", "1", "-", "4", "-", "-"]);
    }

    #[test]
    fn topic_rows_take_segments_and_bytes_from_metrics() {
        let t = json!({
            "name": "t", "configs": {"retention.ms": "60000"},
            "offsets": [{"partition": 0, "beginning_offset": 2, "end_offset": 9}]
        });
        let metrics = "kappalog_partition_segments{topic=\"t\",partition=\"0\"} 3\n\
                       kappalog_partition_size_bytes{topic=\"t\",partition=\"0\"} 4096\n\
                       kappalog_partition_segments{topic=\"t2\",partition=\"0\"} 8\n";
        let text = topic_table("t", &t, metrics);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "topic t: 1 partition");
        let with_id = json!({"name": "t", "topic_id": "kX4Vvd2MQ2m0EYJ2Wzx8Ow", "offsets": []});
        assert_eq!(
            topic_table("t", &with_id, "").lines().next(),
            Some("topic t: 0 partitions, id kX4Vvd2MQ2m0EYJ2Wzx8Ow")
        );
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "2", "9", "3", "4096"]);
        assert_eq!(lines[5].split_whitespace().collect::<Vec<_>>(), ["retention.ms", "60000"]);
        let without_metrics = topic_table("t", &t, "");
        let row: Vec<&str> = without_metrics.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(row, ["0", "2", "9", "-", "-"], "no metrics: dashes");
    }
}
