//! The CLI against a real broker: topics, produce from stdin, consume (stateless and in a group),
//! groups describe and reset-offsets (dry run, then execute), and `dump` (exit 3 on corruption).

mod broker_common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use broker_common::Broker;

fn kappalog(broker: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .args(args)
        .env("KAPPALOG_BROKER", broker)
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

fn ok(out: Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn cli_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let b = broker.url.clone();
    ok(kappalog(&b, &["topics", "create", "t", "-p", "2", "-c", "retention.ms=3600000"], None));
    assert_eq!(ok(kappalog(&b, &["topics", "list"], None)).trim(), "t");
    let describe = ok(kappalog(&b, &["topics", "describe", "t", "--output", "json"], None));
    assert!(describe.contains("\"retention.ms\": \"3600000\""), "{describe}");

    let input = "alice:1\nbob:2\ncarol:3 with: colons\n";
    let out = kappalog(&b, &["produce", "-t", "t", "--key-separator", ":"], Some(input));
    ok(out);
    let want = sorted_lines(input);
    assert_eq!(sorted_lines(&ok(kappalog(&b, &["consume", "-t", "t", "--key-separator", ":"], None))), want);
    assert_eq!(
        sorted_lines(&ok(kappalog(&b, &["consume", "-t", "t", "--group", "g", "--key-separator", ":"], None))),
        want
    );
    // The group committed everything: consuming again in the group reads nothing.
    assert_eq!(ok(kappalog(&b, &["consume", "-t", "t", "--group", "g"], None)), "");
    let describe = ok(kappalog(&b, &["groups", "describe", "g", "--output", "json"], None));
    assert!(describe.contains("\"lag\": 0"), "{describe}");
    assert_eq!(ok(kappalog(&b, &["groups", "list"], None)).trim(), "g");

    // Dry run changes nothing; --execute rewinds the group.
    let plan = ok(kappalog(&b, &["groups", "reset-offsets", "g", "-t", "t", "--to-earliest"], None));
    assert!(plan.contains("\"executed\": false"), "{plan}");
    assert_eq!(ok(kappalog(&b, &["consume", "-t", "t", "--group", "g"], None)), "");
    ok(kappalog(&b, &["groups", "reset-offsets", "g", "-t", "t", "--to-earliest", "--execute"], None));
    assert_eq!(ok(kappalog(&b, &["consume", "-t", "t", "--group", "g"], None)).lines().count(), 3);

    assert!(broker.terminate().success());
    // dump: every CRC checks; then flip a byte inside the first batch and it exits 3.
    // The partition that holds the most data.
    let pdir = (0..2)
        .map(|p| dir.path().join(format!("topics/t/{p}")))
        .max_by_key(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum::<u64>())
        .unwrap();
    let text = ok(kappalog(&b, &["dump", "--records", pdir.to_str().unwrap()], None));
    assert!(text.contains("all CRCs ok") && text.contains("value "), "{text}");
    let seg = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log") && std::fs::metadata(p).unwrap().len() > 70)
        .expect("a segment with a batch");
    let mut bytes = std::fs::read(&seg).unwrap();
    // A byte inside the first batch's records: its CRC no longer matches.
    bytes[70] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let out = kappalog(&b, &["dump", seg.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CORRUPT"));
}
