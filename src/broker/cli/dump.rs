//! `kappalog dump PATH`: a segment's batches, every CRC verified.

use std::path::{Path, PathBuf};

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

pub fn run(path: &Path, show_records: bool) -> i32 {
    let files = match segments(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kappalog dump: {}: {e}", path.display());
            return EXIT_FAILURE;
        }
    };
    let mut corrupt = false;
    for file in files {
        let mut records = Vec::new();
        let report = match inspect_segment(&file, show_records.then_some(&mut records)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("kappalog dump: {e}");
                return EXIT_FAILURE;
            }
        };
        println!("{}: {} bytes, {} batches", report.path.display(), report.size_bytes, report.batches.len());
        for b in &report.batches {
            println!(
                "  position {} length {} offsets {}..={} records {} crc {:#010x} timestamps {}..{}{}",
                b.position,
                b.length,
                b.base_offset,
                b.last_offset,
                b.record_count,
                b.crc,
                b.first_timestamp,
                b.max_timestamp,
                if b.log_append_time { " (log append time)" } else { "" }
            );
        }
        for r in &records {
            let show = |b: &Option<bytes::Bytes>| {
                b.as_ref().map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned())
            };
            println!("    offset {} timestamp {} key {} value {}", r.offset, r.timestamp, show(&r.key), show(&r.value));
        }
        if report.zero_tail_bytes > 0 {
            println!(
                "  zero tail: {} bytes after the last batch (an open or crashed sync segment)",
                report.zero_tail_bytes
            );
        }
        match &report.corruption {
            Some(e) => {
                corrupt = true;
                println!("  CORRUPT: {e}");
            }
            None => println!("  all CRCs ok"),
        }
    }
    if corrupt {
        EXIT_CORRUPT
    } else {
        0
    }
}
