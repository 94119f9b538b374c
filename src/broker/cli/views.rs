//! `kappalog views …`: create (from a spec file), list, status, get, scan, update, rebuild (with a
//! progress line until the new version serves), delete.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{Client, Result};
use super::output::{print, print_json};

/// How often `views rebuild` polls the view's status.
pub const REBUILD_POLL_MS: u64 = 200;
/// How long `views rebuild` waits for the rebuilt version by default, in seconds.
pub const REBUILD_TIMEOUT_S_DEFAULT: u64 = 3600;

#[derive(Debug, Subcommand)]
pub enum ViewsCommand {
    /// Create a view from a JSON spec file (`-` for standard input).
    Create {
        file: PathBuf,
    },
    List,
    /// Spec, version, state, lag, watermark, counters, rebuild progress.
    Status {
        name: String,
    },
    /// A key's value (tables) or windows; --from/--to (epoch ms) bound window starts.
    Get {
        name: String,
        key: String,
        #[arg(long)]
        from: Option<i64>,
        #[arg(long)]
        to: Option<i64>,
    },
    /// Keys starting with --prefix, in order.
    Scan {
        name: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Replace a view's definition with a spec file (rebuilt while the old one serves).
    Update {
        file: PathBuf,
    },
    /// Rebuild a view, showing progress until the new version serves.
    Rebuild {
        name: String,
        /// Replay from this time (epoch ms) instead of the beginning.
        #[arg(long)]
        from_timestamp: Option<i64>,
        /// Return at once instead of waiting for the rebuild.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting (exit 1) after this many seconds; the rebuild goes on.
        #[arg(long, default_value_t = REBUILD_TIMEOUT_S_DEFAULT)]
        timeout_s: u64,
    },
    Delete {
        name: String,
    },
}

/// Percent-encodes one path segment (a view name or key may hold any character).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_spec(file: &PathBuf) -> Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(buf);
    }
    Ok(std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?)
}

pub(super) fn run(c: &Client, command: ViewsCommand) -> Result<()> {
    match command {
        ViewsCommand::Create { file } => {
            let status = c.send_json(reqwest::Method::POST, "/views", read_spec(&file)?)?;
            print(format!("created view {}", status["name"].as_str().unwrap_or("?")))?;
        }
        ViewsCommand::List => {
            for name in c.get("/views")?.as_array().into_iter().flatten() {
                print(name.as_str().unwrap_or_default())?;
            }
        }
        ViewsCommand::Status { name } => print_json(&c.get(&format!("/views/{}", segment(&name)))?)?,
        ViewsCommand::Get { name, key, from, to } => {
            let mut q = Vec::new();
            if let Some(f) = from {
                q.push(format!("from={f}"));
            }
            if let Some(t) = to {
                q.push(format!("to={t}"));
            }
            let query = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
            print_json(&c.get(&format!("/views/{}/keys/{}{query}", segment(&name), segment(&key)))?)?;
        }
        ViewsCommand::Scan { name, prefix, limit } => {
            print_json(&c.get(&format!("/views/{}/keys?prefix={}&limit={limit}", segment(&name), segment(&prefix)))?)?
        }
        ViewsCommand::Update { file } => {
            let body = read_spec(&file)?;
            let spec: Value =
                serde_json::from_slice(&body).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
            let name = spec["name"].as_str().ok_or_else(|| format!("{}: the spec has no \"name\"", file.display()))?;
            c.send_json(reqwest::Method::PUT, &format!("/views/{}", segment(name)), body)?;
            print(format!("view {name}: new definition accepted; rebuilding"))?;
        }
        ViewsCommand::Rebuild { name, from_timestamp, no_wait, timeout_s } => {
            let body = match from_timestamp {
                Some(ts) => json!({ "from_timestamp": ts }),
                None => json!({}),
            };
            let path = format!("/views/{}", segment(&name));
            let started = c.post(&format!("{path}/rebuild"), &body)?;
            let target = started["rebuild"]["version"].as_u64().unwrap_or(started["version"].as_u64().unwrap_or(0) + 1);
            if no_wait {
                print(format!("view {name}: rebuilding version {target}"))?;
                return Ok(());
            }
            wait_rebuilt(c, &path, &name, target, Duration::from_secs(timeout_s))?;
        }
        ViewsCommand::Delete { name } => {
            c.delete(&format!("/views/{}", segment(&name)))?;
            print(format!("deleted view {name}"))?;
        }
    }
    Ok(())
}

/// Polls the status until version `target` serves, printing progress on one line (stderr).
fn wait_rebuilt(c: &Client, path: &str, name: &str, target: u64, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut err = std::io::stderr();
    loop {
        let s = c.get(path)?;
        if s["state"] == "failed" {
            return Err(format!("view {name}: rebuild failed: {}", s["error"].as_str().unwrap_or("?")).into());
        }
        let version = s["version"].as_u64().unwrap_or(0);
        if version >= target && s["state"] == "running" {
            let _ = writeln!(err, "\r{}", progress_line(100.0, None, Some(0)));
            print(format!("view {name}: version {version} serving"))?;
            return Ok(());
        }
        let r = &s["rebuild"];
        if !r.is_null() {
            let line =
                progress_line(r["percent"].as_f64().unwrap_or(0.0), r["records_per_s"].as_f64(), r["eta_ms"].as_u64());
            let _ = write!(err, "\r{line}");
            let _ = err.flush();
        }
        if Instant::now() >= deadline {
            let _ = writeln!(err);
            return Err(
                format!("view {name}: version {target} not serving after {timeout:?} (the rebuild goes on)").into()
            );
        }
        std::thread::sleep(Duration::from_millis(REBUILD_POLL_MS));
    }
}

/// `rebuilding  42.0% | 12345 rec/s | ETA 3s`, padded so a shorter line overwrites a longer one.
pub fn progress_line(percent: f64, records_per_s: Option<f64>, eta_ms: Option<u64>) -> String {
    let rate = records_per_s.map_or("-".to_string(), |r| format!("{r:.0} rec/s"));
    let eta = match eta_ms {
        Some(ms) if ms >= 60_000 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        None => "?".to_string(),
    };
    format!("rebuilding {:5.1}% | {rate} | ETA {eta}    ", percent.clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(segment("user-1_x.y"), "user-1_x.y");
    }

    #[test]
    fn progress_line_shows_percent_rate_and_eta() {
        let l = progress_line(42.04, Some(1234.4), Some(3_500));
        assert!(l.starts_with("rebuilding  42.0% | 1234 rec/s | ETA 3.5s"), "{l}");
        assert!(progress_line(150.0, None, None).contains("100.0% | - | ETA ?"));
        assert!(progress_line(1.0, None, Some(125_000)).contains("ETA 2m05s"));
    }
}
