//! CIFAR-10's binary version: records of 1 label byte and 3,072 pixel bytes
//! (1,024 red, then green, then blue, row-major 32x32).

use std::path::{Path, PathBuf};

use super::images::{ImageSet, PixelNorm};
use crate::train::error::{Result, TrainError};

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const RECORD: usize = 1 + PIXELS;
const CLASSES: u8 = 10;

/// The per-channel mean and standard deviation of the CIFAR-10 training set,
/// the usual standardisation for the CIFAR ResNets.
fn norm() -> PixelNorm {
    PixelNorm {
        scale: 1.0 / 255.0,
        mean: vec![0.4914, 0.4822, 0.4465],
        std: vec![0.2470, 0.2435, 0.2616],
    }
}

/// (train, test) from `data_batch_1..5.bin` and `test_batch.bin` in `dir` or
/// in `dir/cifar-10-batches-bin`.
pub fn load(dir: &Path) -> Result<(ImageSet, ImageSet)> {
    let dir = batches_dir(dir)?;
    let mut train = (Vec::new(), Vec::new());
    for i in 1..=5 {
        read_batch(&dir.join(format!("data_batch_{i}.bin")), &mut train)?;
    }
    let mut test = (Vec::new(), Vec::new());
    read_batch(&dir.join("test_batch.bin"), &mut test)?;
    let shape = [3, SIDE, SIDE];
    Ok((
        ImageSet::new(train.0, train.1, shape, &norm()),
        ImageSet::new(test.0, test.1, shape, &norm()),
    ))
}

fn batches_dir(dir: &Path) -> Result<PathBuf> {
    if dir.join("test_batch.bin").is_file() {
        return Ok(dir.to_path_buf());
    }
    let nested = dir.join("cifar-10-batches-bin");
    if nested.join("test_batch.bin").is_file() {
        return Ok(nested);
    }
    if !dir.is_dir() {
        return Err(TrainError::file(dir, "not a folder (or does not exist)"));
    }
    Err(TrainError::file(
        dir.join("test_batch.bin"),
        "missing (expected CIFAR-10 binary batches here or in cifar-10-batches-bin/)",
    ))
}

fn read_batch(path: &Path, out: &mut (Vec<u8>, Vec<u32>)) -> Result<()> {
    if !path.is_file() {
        return Err(TrainError::file(path, "missing"));
    }
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(TrainError::file(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte records (1 label + 3072 pixels)",
                bytes.len()
            ),
        ));
    }
    for (n, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if label >= CLASSES {
            return Err(TrainError::file(
                path,
                format!(
                    "record {n}: label {label}, expected 0..9 (is this CIFAR-100? it has 2 label bytes per record)"
                ),
            ));
        }
        out.1.push(u32::from(label));
        out.0.extend_from_slice(&record[1..]);
    }
    Ok(())
}
