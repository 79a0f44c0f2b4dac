//! The embedded default data set: UCI "Optical Recognition of Handwritten
//! Digits" (the 1,797-image copy shipped with scikit-learn), 8x8 images with
//! pixel values 0..16 and labels 0..9.
//!
//! Creators: E. Alpaydin, C. Kaynak (1998). UCI Machine Learning Repository,
//! <https://archive.ics.uci.edu/dataset/80>. Licensed CC BY 4.0.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::images::{ImageSet, PixelNorm};
use super::sampler::shuffle;

/// Attribution of the embedded digits data (CC BY 4.0 requires it).
pub const ATTRIBUTION: &str = "UCI Optical Recognition of Handwritten Digits: E. Alpaydin, C. Kaynak (1998), \
UCI Machine Learning Repository, https://archive.ics.uci.edu/dataset/80, CC BY 4.0";

static DIGITS_CSV_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/data/digits.csv.gz"
));

/// The split's own seed, independent of the training seed, so every run
/// evaluates on the same test images.
const SPLIT_SEED: u64 = 0x4c52_544f_5044; // "LRTOPD"
/// Fraction of each class held out for testing.
const TEST_FRACTION: f64 = 0.2;

pub const SIDE: usize = 8;
const PIXELS: usize = SIDE * SIDE;
pub const CLASSES: usize = 10;

/// The digits as (train, test): a stratified split, 20% of each class (in
/// file order, shuffled with a fixed seed) for testing; both sides keep file order.
pub fn load() -> Result<(ImageSet, ImageSet), String> {
    let csv = super::files::gunzip(DIGITS_CSV_GZ).map_err(|e| format!("embedded digits: {e}"))?;
    let text = std::str::from_utf8(&csv).map_err(|e| format!("embedded digits: {e}"))?;
    let (pixels, labels) = parse_csv(text)?;
    let (train_idx, test_idx) = stratified_split(&labels);
    let norm = PixelNorm::unit(16.0, 1);
    let pick = |idx: &[usize]| {
        let px = idx
            .iter()
            .flat_map(|&i| pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied())
            .collect();
        let lb = idx.iter().map(|&i| labels[i]).collect();
        ImageSet::new(px, lb, [1, SIDE, SIDE], &norm)
    };
    Ok((pick(&train_idx), pick(&test_idx)))
}

/// Rows of 64 pixel values 0..16 then the label 0..9.
fn parse_csv(text: &str) -> Result<(Vec<u8>, Vec<u32>), String> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != PIXELS + 1 {
            return Err(format!(
                "digits line {}: {} values, expected {}",
                n + 1,
                values.len(),
                PIXELS + 1
            ));
        }
        for (col, v) in values.iter().enumerate() {
            let value: u8 = v.trim().parse().map_err(|_| {
                format!(
                    "digits line {} column {}: '{v}' is not a small integer",
                    n + 1,
                    col + 1
                )
            })?;
            let max = if col == PIXELS { 9 } else { 16 };
            if value > max {
                return Err(format!(
                    "digits line {} column {}: {value} out of 0..{max}",
                    n + 1,
                    col + 1
                ));
            }
            if col == PIXELS {
                labels.push(u32::from(value));
            } else {
                pixels.push(value);
            }
        }
    }
    Ok((pixels, labels))
}

/// (train, test) indices, each sorted.
pub fn stratified_split(labels: &[u32]) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(SPLIT_SEED);
    let mut test = Vec::new();
    for class in 0..CLASSES as u32 {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        shuffle(&mut members, &mut rng);
        let n_test = (members.len() as f64 * TEST_FRACTION).round() as usize;
        test.extend_from_slice(&members[..n_test]);
    }
    test.sort_unstable();
    let mut is_test = vec![false; labels.len()];
    for &i in &test {
        is_test[i] = true;
    }
    let train = (0..labels.len()).filter(|&i| !is_test[i]).collect();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_embedded_file() {
        let csv = crate::train::data::files::gunzip(DIGITS_CSV_GZ).unwrap();
        let (pixels, labels) = parse_csv(std::str::from_utf8(&csv).unwrap()).unwrap();
        assert_eq!(labels.len(), 1797);
        assert_eq!(pixels.len(), 1797 * 64);
    }

    #[test]
    fn rejects_bad_rows() {
        assert!(parse_csv("1,2,3").unwrap_err().contains("line 1"));
        let mut row = vec!["0"; 64];
        row.push("12");
        assert!(
            parse_csv(&row.join(","))
                .unwrap_err()
                .contains("out of 0..9")
        );
    }
}
