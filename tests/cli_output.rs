//! What the CLI prints, against a real broker: `topics describe` and `groups describe` print tables
//! by default and the broker's JSON with `--output json`; a reader that closes the output pipe early
//! (`kappalog ... | head -1`) ends the command quietly (exit 0, nothing on stderr, no panic).

mod broker_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use broker_common::Broker;

/// How long a CLI command gets to finish.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn kappalog_cmd(broker: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kappalog"));
    c.args(args).env("KAPPALOG_BROKER", broker).env("RUST_BACKTRACE", "1");
    c
}

fn run(broker: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = kappalog_cmd(broker, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kappalog");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], out: Output) -> String {
    assert!(out.status.success(), "{args:?}: exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (bounded) for the child to exit.
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{what}: still running after {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    err
}

/// Runs the command with a standard output whose reader is already closed: its first write
/// fails with EPIPE, whatever the size of the output.
fn run_into_closed_pipe(broker: &str, args: &[&str]) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = kappalog_cmd(broker, args).stdout(writer).stderr(Stdio::piped()).spawn().expect("spawn kappalog");
    let status = wait(&mut child, &format!("{args:?}"));
    let err = stderr_of(&mut child);
    assert!(!err.contains("panicked"), "{args:?} panicked on a closed pipe: {err}");
    assert!(status.success(), "{args:?} into a closed pipe: exit {status:?}: {err}");
    assert_eq!(err, "", "{args:?}: a closed pipe is not an error to report");
}

/// The cells of each line of a table (split on runs of blanks).
fn cells(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.split_whitespace().map(String::from).collect()).collect()
}

#[test]
fn describe_prints_tables_by_default_and_json_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let b = broker.url.clone();
    ok(&[], run(&b, &["topics", "create", "t", "-p", "2", "-c", "retention.ms=3600000"], None));
    ok(&[], run(&b, &["produce", "-t", "t", "--partition", "1"], Some("a\nb\nc\n")));
    let consumed = ok(&[], run(&b, &["consume", "-t", "t", "--group", "g"], None));
    assert_eq!(consumed.lines().count(), 3, "{consumed}");

    let args = ["groups", "describe", "g"];
    let table = cells(&ok(&args, run(&b, &args, None)));
    assert_eq!(table[0][..2], ["group", "g:"], "{table:?}");
    assert_eq!(table[1], ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "OWNER"]);
    // Only partition 1 held records, so only it has a committed offset; the consumer left, so no owner.
    assert_eq!(table[2..], [["t", "1", "3", "3", "0", "-"]], "{table:?}");

    // A live member owns both partitions: the table names it in the OWNER column.
    let http = broker.client();
    let (s, inst) = http.post("/consumers/g2", &serde_json::json!({"format": "binary"}));
    assert_eq!(s, 200, "{inst}");
    let base = format!("/consumers/g2/instances/{}", inst["instance_id"].as_str().unwrap());
    let (s, body) = http.post(&format!("{base}/subscription"), &serde_json::json!({"topics": ["t"]}));
    assert!(s == 200 || s == 204, "{s} {body}");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let owned = loop {
        let (s, body) = http.get_accept(&format!("{base}/records?timeout=100"), broker_common::BINARY_V2);
        assert_eq!(s, 200, "{body}");
        let args = ["groups", "describe", "g2"];
        let table = cells(&ok(&args, run(&b, &args, None)));
        if table.len() == 4 && table[2..].iter().all(|r| r[5] != "-") {
            break table;
        }
        assert!(Instant::now() < deadline, "no owner shown within {COMMAND_TIMEOUT:?}: {table:?}");
    };
    assert_eq!(owned[2][5], owned[3][5], "one member owns both: {owned:?}");
    assert!(owned[0].contains(&"1".to_string()) && owned[0].contains(&"member".to_string()), "{owned:?}");
    assert_eq!(owned[2][..2], ["t", "0"]);
    assert_eq!(owned[3][..2], ["t", "1"]);

    let args = ["groups", "describe", "g", "--output", "json"];
    let json: serde_json::Value = serde_json::from_str(&ok(&args, run(&b, &args, None))).unwrap();
    assert_eq!(json["group"], "g");
    let p = json["partitions"].as_array().unwrap().iter().find(|p| p["partition"] == 1).unwrap().clone();
    assert_eq!((p["committed"].as_u64(), p["log_end"].as_u64(), p["lag"].as_u64()), (Some(3), Some(3), Some(0)));

    let args = ["topics", "describe", "t"];
    let table = cells(&ok(&args, run(&b, &args, None)));
    assert_eq!(table[0][..5], ["topic", "t:", "2", "partitions,", "id"]);
    assert_eq!(table[0][5].len(), 22, "the topic id: {:?}", table[0]);
    assert_eq!(table[1], ["PARTITION", "LOG-START", "HIGH-WATERMARK", "SEGMENTS", "BYTES"]);
    assert_eq!(table[2][..3], ["0", "0", "0"], "{table:?}");
    assert_eq!(table[3][..3], ["1", "0", "3"], "{table:?}");
    for row in &table[2..4] {
        let segments: u64 = row[3].parse().unwrap_or_else(|_| panic!("segments of {row:?}"));
        assert!(segments >= 1, "{row:?}");
        row[4].parse::<u64>().unwrap_or_else(|_| panic!("bytes of {row:?}"));
    }
    let config = table.iter().find(|r| r.first().is_some_and(|c| c == "retention.ms")).expect("the configs");
    assert_eq!(config[1], "3600000");

    let args = ["topics", "describe", "t", "--output", "json"];
    let json: serde_json::Value = serde_json::from_str(&ok(&args, run(&b, &args, None))).unwrap();
    assert_eq!(json["name"], "t");
    assert_eq!(json["configs"]["retention.ms"], "3600000");
    assert_eq!(json["offsets"][1]["end_offset"], 3);

    // Every print path, into a pipe nobody reads.
    let pdir = dir.path().join("topics/t/1");
    for args in [
        vec!["groups", "describe", "g"],
        vec!["groups", "describe", "g", "--output", "json"],
        vec!["groups", "list"],
        vec!["topics", "describe", "t"],
        vec!["topics", "describe", "t", "--output", "json"],
        vec!["topics", "list"],
        vec!["consume", "-t", "t"],
        vec!["groups", "reset-offsets", "g", "-t", "t", "--to-earliest"],
        vec!["dump", "--records", pdir.to_str().unwrap()],
    ] {
        run_into_closed_pipe(&b, &args);
    }
}

#[test]
fn a_reader_that_stops_early_ends_consume_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let b = broker.url.clone();
    ok(&[], run(&b, &["topics", "create", "big"], None));
    // Far more than a pipe holds (64 KiB on Linux): consume is still writing when the reader goes.
    let lines: String = (0..20_000).map(|i| format!("record {i:06} {}\n", "x".repeat(64))).collect();
    ok(&[], run(&b, &["produce", "-t", "big"], Some(&lines)));

    let mut child = kappalog_cmd(&b, &["consume", "-t", "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kappalog");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("record 000000 "), "{first:?}");
    // The reader (and with it the read end of the pipe) is dropped here, as `head -1` exits.
    let status = wait(&mut child, "consume | head -1");
    let err = stderr_of(&mut child);
    assert!(!err.contains("panicked"), "consume panicked when its reader left: {err}");
    assert!(status.success(), "exit {status:?}: {err}");
    assert_eq!(err, "");
}
