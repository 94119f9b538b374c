//! Disk full, for real: a 4 MiB tmpfs made for the test. Appends fail with a clear ENOSPC error,
//! nothing acknowledged is lost, no segment is corrupt, and once space is freed (and the poisoned
//! partition reopened) appends work again. Skips, saying why, where the test cannot mount.

use std::path::{Path, PathBuf};
use std::process::Command;

use kappalog::{Error, NewRecord, Store, StoreConfig, TopicConfig};

struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}

#[test]
fn appends_fail_cleanly_when_the_disk_is_full_and_work_again_after_space_is_freed() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED disk_full: cannot mount a size-limited tmpfs here ({why})");
            return;
        }
    };
    let data = fs.path().join("data");
    // Ballast that we delete later to "free space".
    std::fs::write(fs.path().join("ballast"), vec![7u8; 1024 * 1024]).unwrap();
    let config = TopicConfig::default().segment_bytes(256 * 1024);
    let value = vec![b'v'; 1000];
    let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
    {
        let store = Store::open(&data, StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        let error = loop {
            assert!(acked.len() < 10_000, "4 MiB cannot hold 10,000 KiB records");
            let mut v = value.clone();
            v[..8].copy_from_slice(&(acked.len() as u64).to_le_bytes());
            match p.append(&[NewRecord::new(v.clone())]) {
                Ok(a) => acked.push((a.base_offset, v)),
                Err(e) => break e,
            }
        };
        assert!(error.is_disk_full(), "the error says the disk is full: {error}");
        assert!(error.to_string().contains("No space left"), "{error}");
        assert!(matches!(p.append(&[NewRecord::new("more")]), Err(Error::Poisoned { .. })));
        // Everything acknowledged is readable right away.
        let recs = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(recs.len(), acked.len());
        for (r, (o, v)) in recs.iter().zip(&acked) {
            assert_eq!((r.offset, r.value.as_deref().unwrap()), (*o, &v[..]));
        }
    }
    assert!(acked.len() > 1000, "most of the space was used: {} records", acked.len());
    std::fs::remove_file(fs.path().join("ballast")).unwrap();

    let store = Store::open(&data, StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.high_watermark(), acked.len() as u64, "nothing acknowledged is lost, nothing else appears");
    let recs = p.read(0, usize::MAX, usize::MAX).unwrap();
    for (r, (o, v)) in recs.iter().zip(&acked) {
        assert_eq!((r.offset, r.value.as_deref().unwrap()), (*o, &v[..]));
    }
    for log in segment_logs(&data.join("topics/t/0")) {
        let report = kappalog::log::inspect_segment(&log, None).unwrap();
        assert!(report.corruption.is_none(), "{}: {:?}", log.display(), report.corruption);
    }
    let a = p.append(&[NewRecord::new("after")]).unwrap();
    assert_eq!(a.base_offset, acked.len() as u64);
    assert_eq!(p.read(a.base_offset, 4096, 1).unwrap()[0].value.as_deref(), Some(&b"after"[..]));
}
