//! File operations that may fail for real or by injection, and directory fsync.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fault::FaultInjector;

/// Appends `buf` to `file` (opened in append mode). An injected failure writes half of `buf` first.
pub(crate) fn append(file: &File, path: &Path, buf: &[u8], faults: Option<&FaultInjector>) -> Result<()> {
    if let Some(f) = faults {
        if let Err(e) = f.before_write() {
            let _ = (&*file).write_all(&buf[..buf.len() / 2]);
            return Err(Error::io(path, e));
        }
    }
    (&*file).write_all(buf).map_err(|e| Error::io(path, e))
}

/// `fdatasync`. Never retried: after a failure the caller poisons what it was syncing.
pub(crate) fn sync_data(file: &File, path: &Path, faults: Option<&FaultInjector>) -> Result<()> {
    if let Some(f) = faults {
        f.before_sync().map_err(|e| Error::io(path, e))?;
    }
    file.sync_data().map_err(|e| Error::io(path, e))
}

/// fsync a directory, so that a file created, renamed or deleted in it stays so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync it, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // `<file name>.tmp`: distinct for files that differ only by extension (`B.index`, `B.timeindex`).
    let mut tmp_name = path.file_name().expect("a file name").to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(path.parent().expect("a file has a parent directory"))
}
