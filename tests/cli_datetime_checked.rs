//! `kappalog groups reset-offsets --to-datetime` checks its argument before anything is sent: a
//! non-ASCII fraction, an hour past 23 or a day the month does not have is an error naming the
//! value (exit 1), never a panic; a valid one is parsed (and only then the broker is called).

use std::process::Command;

fn reset_to(datetime: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kappalog"))
        // Nothing listens on port 9: a parsed datetime fails on the connection instead.
        .args(["groups", "reset-offsets", "g", "-t", "t", "--to-datetime", datetime, "--broker", "http://127.0.0.1:9"])
        .output()
        .expect("run kappalog");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_datetimes_are_errors_not_panics() {
    for (bad, says) in [
        ("2024-01-01T00:00:00.é", "expected"),
        ("2024-01-01T00:00:00.1é", "expected"),
        ("2024-01-01T24:00:00Z", "hour 24"),
        ("2024-01-01T00:60:00Z", "minute 60"),
        ("2023-02-29T00:00:00Z", "day 29"),
        ("2024-04-31T00:00:00Z", "day 31"),
        ("2024-13-01T00:00:00Z", "month 13"),
        ("99999999999999-01-01T00:00:00Z", "expected"),
        ("2024-01-01T-1:00:00Z", "expected"),
    ] {
        let (code, stderr) = reset_to(bad);
        assert_eq!(code, 1, "{bad}: {stderr}");
        assert!(stderr.contains(says) && !stderr.contains("panicked"), "{bad}: {stderr}");
    }
    let (code, stderr) = reset_to("2024-02-29T23:59:59.999Z");
    assert!(code != 101 && !stderr.contains("out of range") && !stderr.contains("expected"), "{stderr}");
}
