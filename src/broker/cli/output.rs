//! What the client commands print: every line goes through [`print`] (standard output) or [`warn`]
//! (standard error), so a closed pipe (`kappalog groups describe g | head -1`) ends the command
//! quietly, as other Unix tools do, instead of panicking inside `println!`. The Rust runtime ignores
//! SIGPIPE, so a write to a closed pipe returns `EPIPE` (`ErrorKind::BrokenPipe`); [`CliError::BrokenPipe`]
//! carries it up to `cli::run`, which exits 0 without a message. Commands that hold state on the broker
//! (a consumer instance of `consume --group`) still clean it up on the way out.

use std::fmt;
use std::io::Write;

use clap::ValueEnum;
use serde_json::Value;

/// A client command's failure.
#[derive(Debug)]
pub enum CliError {
    /// A message for standard error (exit 1).
    Message(String),
    /// Standard output was closed by its reader: stop, say nothing, exit 0.
    BrokenPipe,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Message(m) => f.write_str(m),
            CliError::BrokenPipe => f.write_str("standard output closed"),
        }
    }
}

impl From<String> for CliError {
    fn from(m: String) -> CliError {
        CliError::Message(m)
    }
}

impl From<&str> for CliError {
    fn from(m: &str) -> CliError {
        CliError::Message(m.to_string())
    }
}

/// A write to standard output failed: a closed pipe ends the command quietly, anything else is an error.
pub fn write_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Message(format!("writing standard output: {e}"))
    }
}

/// How `describe` commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// The broker's JSON document, pretty-printed, for scripts.
    Json,
}

/// Writes `text` and a newline to standard output.
pub fn print(text: impl fmt::Display) -> Result<(), CliError> {
    writeln!(std::io::stdout().lock(), "{text}").map_err(write_error)
}

/// Writes `text` and a newline to standard error; a closed standard error is ignored.
pub fn warn(text: impl fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Pretty-printed JSON on standard output.
pub fn print_json(v: &Value) -> Result<(), CliError> {
    print(serde_json::to_string_pretty(v).unwrap_or_default())
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart; the last
/// column is not padded (no trailing blanks).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// A JSON number or string as a cell; `null` or a missing field as `-` (as Kafka's tools print).
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_without_trailing_blanks() {
        let t = table(&["A", "LONG-NAME", "C"], &[vec!["xyz".into(), "1".into(), "-".into()]]);
        assert_eq!(t, "A    LONG-NAME  C\nxyz  1          -");
        assert_eq!(table(&["ONLY"], &[]), "ONLY");
    }

    #[test]
    fn cells_show_null_as_a_dash() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&serde_json::json!(7)), "7");
        assert_eq!(cell(&serde_json::json!("m-1")), "m-1");
    }
}
