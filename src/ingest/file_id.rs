//! A file's identity (device and inode): it changes when another file takes
//! the path (rename and create), not when the file is truncated.

use std::fs::Metadata;

/// A file's identity: a new one after rename-and-create, the same after
/// truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId(u64, u64);

#[cfg(unix)]
pub(crate) fn file_id(meta: &Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

/// Without inode numbers, replacement shows only in the content.
#[cfg(not(unix))]
pub(crate) fn file_id(_meta: &Metadata) -> FileId {
    FileId(0, 0)
}
