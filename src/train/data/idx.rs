//! MNIST / Fashion-MNIST in the IDX format: a big-endian header (magic
//! 0x00000801 for labels, 0x00000803 for images, then one u32 per dimension)
//! followed by unsigned bytes.

use std::path::Path;

use super::files::{find_file, read_maybe_gz};
use super::images::{ImageSet, PixelNorm};
use crate::train::error::{Result, TrainError};

const LABELS_MAGIC: u32 = 0x0801;
const IMAGES_MAGIC: u32 = 0x0803;

/// (train, test) from the four IDX files in `dir`, gzipped or not.
pub fn load(dir: &Path) -> Result<(ImageSet, ImageSet)> {
    let train = load_pair(dir, "train-images", "train-labels")?;
    let test = load_pair(dir, "t10k-images", "t10k-labels")?;
    if train.0 != test.0 {
        return Err(TrainError::file(
            dir,
            format!(
                "train images are {:?} but test images are {:?}",
                train.0, test.0
            ),
        ));
    }
    let shape = [1, train.0[0], train.0[1]];
    let norm = PixelNorm::unit(255.0, 1);
    Ok((
        ImageSet::new(train.1, train.2, shape, &norm),
        ImageSet::new(test.1, test.2, shape, &norm),
    ))
}

type Pair = ([usize; 2], Vec<u8>, Vec<u32>);

fn load_pair(dir: &Path, images: &str, labels: &str) -> Result<Pair> {
    // Some copies use a dot instead of the last dash (train-images.idx3-ubyte).
    let images_path = find_file(
        dir,
        &[
            &format!("{images}-idx3-ubyte"),
            &format!("{images}.idx3-ubyte"),
        ],
    )?;
    let labels_path = find_file(
        dir,
        &[
            &format!("{labels}-idx1-ubyte"),
            &format!("{labels}.idx1-ubyte"),
        ],
    )?;
    let image_bytes = read_maybe_gz(&images_path)?;
    let label_bytes = read_maybe_gz(&labels_path)?;
    let (dims, pixels) = parse(&image_bytes, IMAGES_MAGIC, 3, "images", &images_path)?;
    let (label_dims, label_data) = parse(&label_bytes, LABELS_MAGIC, 1, "labels", &labels_path)?;
    if dims[0] != label_dims[0] {
        return Err(TrainError::file(
            &labels_path,
            format!(
                "{} labels but {} has {} images",
                label_dims[0],
                images_path.display(),
                dims[0]
            ),
        ));
    }
    if dims[1] == 0 || dims[2] == 0 {
        return Err(TrainError::file(
            &images_path,
            format!("empty images ({}x{})", dims[1], dims[2]),
        ));
    }
    let labels = label_data.iter().map(|&l| u32::from(l)).collect();
    Ok(([dims[1], dims[2]], pixels.to_vec(), labels))
}

/// The dimensions and data of an IDX file of unsigned bytes.
fn parse<'a>(
    bytes: &'a [u8],
    magic: u32,
    rank: usize,
    what: &str,
    path: &Path,
) -> Result<(Vec<usize>, &'a [u8])> {
    let fail = |message: String| Err(TrainError::file(path, message));
    let header = 4 + 4 * rank;
    if bytes.len() < 4 {
        return fail(format!(
            "{} bytes, too short for an IDX header",
            bytes.len()
        ));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return fail(format!("magic number {found}, expected {magic} ({what})"));
    }
    if bytes.len() < header {
        return fail(format!(
            "{} bytes, too short for a {rank}-dimensional IDX header",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|d| {
            let at = 4 + 4 * d;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let data = &bytes[header..];
    match expected {
        Some(n) if n == data.len() => Ok((dims, data)),
        _ => fail(format!(
            "header says {} ({} bytes of data) but the file has {} bytes of data",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x"),
            expected.map_or("too many".to_string(), |n| n.to_string()),
            data.len()
        )),
    }
}
