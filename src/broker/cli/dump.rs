//! `kappalog dump PATH`: a segment's batches, every CRC verified.

use std::path::{Path, PathBuf};

use std::io::Write;

use super::output::{warn, write_error, CliError};
use super::{EXIT_CORRUPT, EXIT_FAILURE};
use crate::log::inspect_segment;

fn segments(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut list: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        list.sort();
        Ok(list)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Dumps `path`; returns the exit code. A closed standard output ends the dump quietly (exit 0).
pub fn run(path: &Path, show_records: bool) -> i32 {
    let files = match segments(path) {
        Ok(f) => f,
        Err(e) => {
            warn(format!("kappalog dump: {}: {e}", path.display()));
            return EXIT_FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let mut corrupt = false;
    for file in files {
        match dump_one(&mut out, &file, show_records) {
            Ok(clean) => corrupt |= !clean,
            Err(CliError::BrokenPipe) => return 0,
            Err(e) => {
                warn(format!("kappalog dump: {e}"));
                return EXIT_FAILURE;
            }
        }
    }
    if corrupt {
        EXIT_CORRUPT
    } else {
        0
    }
}

/// One segment's batches (and records); `Ok(false)` when it is corrupt.
fn dump_one(out: &mut impl Write, file: &Path, show_records: bool) -> Result<bool, CliError> {
    let mut records = Vec::new();
    let report = inspect_segment(file, show_records.then_some(&mut records)).map_err(|e| e.to_string())?;
    let w = |out: &mut dyn Write, args: std::fmt::Arguments| out.write_fmt(args).map_err(write_error);
    w(out, format_args!("{}: {} bytes, {} batches\n", report.path.display(), report.size_bytes, report.batches.len()))?;
    for b in &report.batches {
        w(
            out,
            format_args!(
                "  position {} length {} offsets {}..={} records {} crc32c {:#010x} timestamps {}..{}{} \
                 compression {} leader_epoch {} producer_id {} producer_epoch {} base_sequence {}\n",
                b.position,
                b.length,
                b.base_offset,
                b.last_offset,
                b.record_count,
                b.crc,
                b.first_timestamp,
                b.max_timestamp,
                if b.log_append_time { " (log append time)" } else { "" },
                b.compression,
                b.partition_leader_epoch,
                b.producer_id,
                b.producer_epoch,
                b.base_sequence,
            ),
        )?;
    }
    let show = |b: &Option<bytes::Bytes>| b.as_ref().map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned());
    for r in &records {
        w(
            out,
            format_args!(
                "    offset {} timestamp {} key {} value {}\n",
                r.offset,
                r.timestamp,
                show(&r.key),
                show(&r.value)
            ),
        )?;
    }
    if report.zero_tail_bytes > 0 {
        w(
            out,
            format_args!(
                "  zero tail: {} bytes after the last batch (an open or crashed sync segment)\n",
                report.zero_tail_bytes
            ),
        )?;
    }
    match &report.corruption {
        Some(e) => {
            w(out, format_args!("  CORRUPT: {e}\n"))?;
            Ok(false)
        }
        None => {
            w(out, format_args!("  all CRCs ok\n"))?;
            Ok(true)
        }
    }
}
