//! Reading data files: whole files, gzip detected by its magic bytes, and
//! finding a file under one of its usual names.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::train::error::{Result, TrainError};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of a file, decompressed if it is gzip (whatever its name).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    if raw.starts_with(&GZIP_MAGIC) {
        gunzip(&raw).map_err(|e| TrainError::file(path, format!("not a valid gzip file: {e}")))
    } else if path.extension().is_some_and(|ext| ext == "gz") {
        Err(TrainError::file(
            path,
            "named .gz but not gzip-compressed (no gzip magic bytes)",
        ))
    } else {
        Ok(raw)
    }
}

pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    MultiGzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// The first of `names` (each also tried with `.gz`) that exists in `dir`.
pub fn find_file(dir: &Path, names: &[&str]) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(TrainError::file(dir, "not a folder (or does not exist)"));
    }
    for name in names {
        for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(TrainError::file(
        dir.join(names[0]),
        format!(
            "missing (looked for {} with or without .gz)",
            names.join(", ")
        ),
    ))
}
