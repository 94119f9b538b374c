//! The HTTP client commands: produce, consume, topics, groups (binary embedded format throughout,
//! so any line of text round-trips).

use std::io::{BufRead, Write};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use super::output::{print, print_json, warn, write_error, CliError, OutputFormat};
use super::{Command, ConsumeArgs, GroupsCommand, ProduceArgs, ResetArgs, TopicsCommand};
use crate::broker::http::content::CONTENT_TYPE_BINARY;

/// Records per produce request.
pub const PRODUCE_BATCH_RECORDS: usize = 1000;
/// Bytes of lines per produce request (before base64).
pub const PRODUCE_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Long-poll of `consume --follow`, in ms.
pub const CONSUME_POLL_MS: u64 = 1000;

pub(super) type Result<T> = std::result::Result<T, CliError>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(super) struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    pub(super) fn new(base: &str) -> Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Client { http, base: base.trim_end_matches('/').to_string() })
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<Value> {
        let resp = req.send().map_err(|e| format!("cannot reach the broker at {}: {e}", self.base))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| format!("reading the response: {e}"))?;
        if !status.is_success() {
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or(text);
            return Err(format!("{status}: {msg}").into());
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text).map_err(|e| format!("the broker's response is not JSON: {e}"))?)
    }

    pub(super) fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }
    /// A `GET` whose answer is text (`/metrics`).
    fn get_text(&self, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().map_err(|e| format!("cannot reach the broker at {}: {e}", self.base))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| format!("reading the response: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {text}").into());
        }
        Ok(text)
    }
    fn get_binary(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)).header("Accept", CONTENT_TYPE_BINARY))
    }
    pub(super) fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("Content-Type", CONTENT_TYPE_BINARY)
                .body(body.to_string()),
        )
    }
    /// `POST`/`PUT` of a JSON document as is (a view spec).
    pub(super) fn send_json(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> Result<Value> {
        self.send(
            self.http
                .request(method, format!("{}{path}", self.base))
                .header("Content-Type", "application/json")
                .body(body),
        )
    }
    pub(super) fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
    }
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Produce(a) => produce(a),
        Command::Consume(a) => consume(a),
        Command::Topics { command, broker } => topics(&Client::new(&broker)?, command),
        Command::Groups { command, broker } => groups(&Client::new(&broker)?, command),
        Command::Views { command, broker } => super::views::run(&Client::new(&broker)?, command),
        Command::Serve(_) | Command::Dump { .. } | Command::Migrate { .. } => unreachable!("handled by cli::run"),
    }
}

fn produce(a: ProduceArgs) -> Result<()> {
    let c = Client::new(&a.broker)?;
    let path = match a.partition {
        Some(p) => format!("/topics/{}/partitions/{p}", a.topic),
        None => format!("/topics/{}", a.topic),
    };
    let stdin = std::io::stdin();
    let mut batch: Vec<Value> = Vec::new();
    let mut bytes = 0;
    let mut total = 0usize;
    let flush = |batch: &mut Vec<Value>, bytes: &mut usize, total: &mut usize| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        c.post(&path, &json!({ "records": batch }))?;
        *total += batch.len();
        batch.clear();
        *bytes = 0;
        Ok(())
    };
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("reading standard input: {e}"))?;
        let (key, value) = match &a.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, line.clone()),
            },
            None => (None, line.clone()),
        };
        bytes += line.len();
        let mut rec = json!({ "value": B64.encode(value.as_bytes()) });
        if let Some(k) = key {
            rec["key"] = json!(B64.encode(k.as_bytes()));
        }
        batch.push(rec);
        if batch.len() >= PRODUCE_BATCH_RECORDS || bytes >= PRODUCE_BATCH_BYTES {
            flush(&mut batch, &mut bytes, &mut total)?;
        }
    }
    flush(&mut batch, &mut bytes, &mut total)?;
    warn(format!("produced {total} records to {}", a.topic));
    Ok(())
}

fn decode(v: &Value) -> String {
    match v.as_str() {
        Some(s) => B64.decode(s).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|_| s.to_string()),
        None => "null".into(),
    }
}

fn print_record(out: &mut impl Write, r: &Value, a: &ConsumeArgs) -> Result<()> {
    let mut line = match &a.key_separator {
        Some(sep) => format!("{}{sep}{}", decode(&r["key"]), decode(&r["value"])),
        None => decode(&r["value"]),
    };
    if a.print_headers {
        let headers: Vec<String> = r["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| format!("{}:{}", h["name"].as_str().unwrap_or_default(), decode(&h["value"])))
            .collect();
        let headers = if headers.is_empty() { "NO_HEADERS".to_string() } else { headers.join(",") };
        line = format!("{headers}\t{line}");
    }
    writeln!(out, "{line}").map_err(write_error)
}

/// The `include` query parameter of a fetch for `a`.
fn include(a: &ConsumeArgs) -> &'static str {
    if a.print_headers {
        "&include=headers"
    } else {
        ""
    }
}

fn consume(a: ConsumeArgs) -> Result<()> {
    let c = Client::new(&a.broker)?;
    match &a.group {
        Some(g) => consume_group(&c, &a, g),
        None => consume_stateless(&c, &a),
    }
}

fn consume_stateless(c: &Client, a: &ConsumeArgs) -> Result<()> {
    let t = c.get(&format!("/topics/{}", a.topic))?;
    let count = t["partitions"].as_array().map_or(0, |p| p.len()) as u32;
    let mut positions = Vec::new();
    let mut ends = Vec::new();
    for p in 0..count {
        let o = c.get(&format!("/topics/{}/partitions/{p}/offsets", a.topic))?;
        let (begin, end) = (o["beginning_offset"].as_u64().unwrap_or(0), o["end_offset"].as_u64().unwrap_or(0));
        let pos = match a.from.as_str() {
            "beginning" => begin,
            "end" => end,
            n => n
                .parse::<u64>()
                .map_err(|e| format!("--from {n:?}: not beginning, end or an offset: {e}"))?
                .clamp(begin, end),
        };
        positions.push(pos);
        ends.push(end);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let mut any = false;
        for p in 0..count as usize {
            if !a.follow && positions[p] >= ends[p] {
                continue;
            }
            let timeout = if a.follow && count == 1 { CONSUME_POLL_MS } else { 0 };
            let recs = c.get_binary(&format!(
                "/topics/{}/partitions/{p}/records?offset={}&timeout={timeout}{}",
                a.topic,
                positions[p],
                include(a)
            ))?;
            for r in recs.as_array().into_iter().flatten() {
                print_record(&mut out, r, a)?;
                positions[p] = r["offset"].as_u64().unwrap_or(positions[p]) + 1;
                any = true;
            }
        }
        let _ = out.flush();
        if !a.follow && positions.iter().zip(&ends).all(|(p, e)| p >= e) {
            return Ok(());
        }
        if a.follow && !any && count > 1 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn consume_group(c: &Client, a: &ConsumeArgs, group: &str) -> Result<()> {
    let reset = match a.from.as_str() {
        "beginning" => "earliest",
        "end" => "latest",
        other => {
            return Err(format!("--from {other:?} with --group: use beginning or end (committed offsets win)").into())
        }
    };
    let inst = c.post(
        &format!("/consumers/{group}"),
        &json!({"format": "binary", "auto.offset.reset": reset, "auto.commit.enable": "false"}),
    )?;
    let id = inst["instance_id"].as_str().ok_or("no instance_id in the response")?.to_string();
    let base = format!("/consumers/{group}/instances/{id}");
    let result = (|| -> Result<()> {
        c.post(&format!("{base}/subscription"), &json!({"topics": [a.topic]}))?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let mut empty_polls = 0;
        loop {
            let recs = c.get_binary(&format!("{base}/records?timeout={CONSUME_POLL_MS}{}", include(a)))?;
            let list = recs.as_array().cloned().unwrap_or_default();
            for r in &list {
                print_record(&mut out, r, a)?;
            }
            let _ = out.flush();
            if list.is_empty() {
                empty_polls += 1;
                // Without --follow: stop after two empty long-polls (the first may precede the assignment).
                if !a.follow && empty_polls >= 2 {
                    return Ok(());
                }
            } else {
                empty_polls = 0;
                c.post(&format!("{base}/offsets"), &json!({}))?;
            }
        }
    })();
    let _ = c.delete(&base);
    result
}

fn topics(c: &Client, command: TopicsCommand) -> Result<()> {
    match command {
        TopicsCommand::List => {
            for t in c.get("/topics")?.as_array().into_iter().flatten() {
                print(t.as_str().unwrap_or_default())?;
            }
        }
        TopicsCommand::Create { name, partitions, config } => {
            let mut configs = serde_json::Map::new();
            for kv in config {
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("--config {kv:?}: expected key=value"))?;
                configs.insert(k.to_string(), json!(v));
            }
            print_json(&c.post("/topics", &json!({"name": name, "partitions": partitions, "configs": configs}))?)?;
        }
        TopicsCommand::Describe { name, output } => {
            let mut t = c.get(&format!("/topics/{name}"))?;
            let mut offsets = Vec::new();
            for p in t["partitions"].as_array().cloned().unwrap_or_default() {
                let id = p["partition"].as_u64().unwrap_or(0);
                let o = c.get(&format!("/topics/{name}/partitions/{id}/offsets"))?;
                offsets.push(
                    json!({"partition": id, "beginning_offset": o["beginning_offset"], "end_offset": o["end_offset"]}),
                );
            }
            t["offsets"] = json!(offsets);
            match output {
                OutputFormat::Json => print_json(&t)?,
                OutputFormat::Table => {
                    let metrics = c.get_text("/metrics")?;
                    print(super::describe::topic_table(&name, &t, &metrics))?
                }
            }
        }
        TopicsCommand::Delete { name } => {
            c.delete(&format!("/topics/{name}"))?;
            print(format!("deleted {name}"))?;
        }
    }
    Ok(())
}

/// Parses `--to-datetime`: milliseconds, or `YYYY-MM-DDTHH:MM:SS[.fff][Z]` in UTC.
pub fn parse_datetime_ms(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad =
        || CliError::from(format!("--to-datetime {s:?}: expected milliseconds or YYYY-MM-DDTHH:MM:SS[.fff][Z] (UTC)"));
    let out_of_range = |what: &str, v: i64| CliError::from(format!("--to-datetime {s:?}: {what} {v} is out of range"));
    let digits = |x: &str| -> Result<i64> {
        if x.is_empty() || x.len() > 4 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse().map_err(|_| bad())
    };
    let s2 = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s2.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date.split('-').map(digits).collect::<Result<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(digits).collect::<Result<_>>()?;
    if d.len() != 3 || t.len() != 3 || d[0] < 1 || frac.is_empty() || frac.len() > 9 {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let leap = (d[0] % 4 == 0 && d[0] % 100 != 0) || d[0] % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&d[1]) {
        return Err(out_of_range("month", d[1]));
    }
    if !(1..=month_days[d[1] as usize - 1]).contains(&d[2]) {
        return Err(out_of_range("day", d[2]));
    }
    for (what, v, max) in [("hour", t[0], 23), ("minute", t[1], 59), ("second", t[2], 59)] {
        if !(0..=max).contains(&v) {
            return Err(out_of_range(what, v));
        }
    }
    let ms_frac: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms_frac)
}

fn reset(c: &Client, a: ResetArgs) -> Result<()> {
    let (strategy, value) = if a.to_earliest {
        ("to_earliest", None)
    } else if a.to_latest {
        ("to_latest", None)
    } else if let Some(o) = a.to_offset {
        ("to_offset", Some(o))
    } else if let Some(dt) = &a.to_datetime {
        ("to_timestamp", Some(parse_datetime_ms(dt)?))
    } else if let Some(n) = a.shift_by {
        ("shift_by", Some(n))
    } else {
        return Err("give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by".into());
    };
    let mut body = json!({"topic": a.topic, "strategy": strategy, "dry_run": !a.execute, "force": a.force});
    if let Some(v) = value {
        body["value"] = json!(v);
    }
    if !a.partition.is_empty() {
        body["partitions"] = json!(a.partition);
    }
    let plan = c.send(
        c.http
            .post(format!("{}/groups/{}/reset-offsets", c.base, a.group))
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )?;
    print_json(&plan)?;
    if !a.execute {
        warn("dry run: nothing changed (pass --execute to apply)");
    }
    Ok(())
}

fn groups(c: &Client, command: GroupsCommand) -> Result<()> {
    match command {
        GroupsCommand::List => {
            for g in c.get("/groups")?.as_array().into_iter().flatten() {
                print(g.as_str().unwrap_or_default())?;
            }
        }
        GroupsCommand::Describe { group, output } => {
            let d = c.get(&format!("/groups/{group}"))?;
            match output {
                OutputFormat::Json => print_json(&d)?,
                OutputFormat::Table => print(super::describe::group_table(&d))?,
            }
        }
        GroupsCommand::ResetOffsets(a) => reset(c, a)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_as_utc() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_datetime_ms("2001-09-09T01:46:40Z").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_datetime_ms("2001-09-09T01:46:40.5").unwrap(), 1_000_000_000_500);
        assert_eq!(parse_datetime_ms("42").unwrap(), 42);
        assert!(parse_datetime_ms("yesterday").is_err());
    }
}
