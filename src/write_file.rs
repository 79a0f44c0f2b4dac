//! Writing a whole file so that a failure (a full disk, a quota) never
//! leaves a torn file in place of a good one: the bytes go to a temporary
//! file next to the target, are synced, and then renamed over it. A path
//! that is not a regular file (a device, a FIFO) is written directly.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` as the whole of `path` (the caller names the path in
/// its error).
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        let mut file = fs::OpenOptions::new().write(true).open(path)?;
        return file.write_all(bytes).and_then(|()| file.flush());
    }
    let tmp = temporary_next_to(path);
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        // A full disk shows here on file systems that allocate late.
        file.sync_all()
    });
    match written.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `dir/.name.lrtop-PID.tmp`: hidden, and unique to this process.
fn temporary_next_to(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.lrtop-{}.tmp", std::process::id()))
}

/// A writer whose errors name its file ("runs/a.jsonl: No space left on
/// device") instead of a bare OS error.
pub struct Named<W> {
    inner: W,
    path: PathBuf,
}

impl<W: Write> Named<W> {
    pub fn new(inner: W, path: &Path) -> Self {
        Named {
            inner,
            path: path.to_path_buf(),
        }
    }

    fn name(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("writing {}: {e}", self.path.display()))
    }
}

impl<W: Write> Write for Named<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.name(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.name(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        fs::write(&path, b"old").unwrap();
        write_whole(&path, b"new bytes").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new bytes");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("w.bin");
        assert!(write_whole(&path, b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_named_writer_says_which_file() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Named::new(Full, Path::new("runs/a.jsonl"));
        let err = writeln!(w, "x").unwrap_err().to_string();
        assert!(
            err.starts_with("writing runs/a.jsonl: No space left"),
            "{err}"
        );
    }
}
