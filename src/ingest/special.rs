//! Paths that are not regular files: devices are refused (reading
//! `/dev/zero` never ends), a FIFO is read as a stream (to its end with
//! `--no-follow`), and opening one never blocks on a missing writer.

use std::fs::File;
use std::io;
use std::path::Path;

/// What a path names, as far as reading a log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKind {
    /// A regular file, a directory, or nothing yet.
    Ordinary,
    Fifo,
    /// A character or block device, or a socket: never a log.
    Device,
}

pub(crate) fn kind(path: &Path) -> PathKind {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let t = meta.file_type();
            if t.is_fifo() {
                return PathKind::Fifo;
            }
            if t.is_char_device() || t.is_block_device() || t.is_socket() {
                return PathKind::Device;
            }
        }
    }
    let _ = path;
    PathKind::Ordinary
}

/// Why a device is not read.
pub(crate) const DEVICE: &str = "a device, not a log file (lrtop reads files, FIFOs and stdin)";

/// Opens a FIFO for reading without waiting for a writer: with none, reads
/// see the end at once.
pub(crate) fn open_fifo(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        // Back to blocking reads: a writer's data is waited for, and with
        // no writer a read returns the end instead of EAGAIN.
        // SAFETY: fcntl on a descriptor this function owns, with flags it
        // read from the same descriptor.
        unsafe {
            let fd = file.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    File::open(path)
}

/// Bytes no text log has: a NUL, or many control characters.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    if head.contains(&0) {
        return true;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b | 0x08 | 0x0c))
        .count();
    control * 20 > head.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_told_apart_and_a_fifo_opens_without_a_writer() {
        assert_eq!(kind(Path::new("/dev/null")), PathKind::Device);
        assert_eq!(kind(Path::new("/tmp")), PathKind::Ordinary);
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert_eq!(kind(&fifo), PathKind::Fifo);
            let mut f = open_fifo(&fifo).unwrap();
            let mut buf = Vec::new();
            use std::io::Read;
            assert_eq!(f.read_to_end(&mut buf).unwrap(), 0, "no writer: the end");
        }
    }

    #[test]
    fn binary_is_recognised() {
        assert!(looks_binary(b"\x00\x01\x02abc"));
        assert!(looks_binary(&[3u8; 100]));
        assert!(!looks_binary(b"step,loss\n1,2\n"));
        assert!(!looks_binary("Epoch 1/3\x08\x08\x08 \x1b[1m".as_bytes()));
    }
}
