//! Labelled images held as raw bytes; normalised to f32 when a batch is made.

use candle_core::{Device, Tensor};

use crate::train::error::Result;

/// How raw pixels become inputs: `x = (p * scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelNorm {
    pub scale: f32,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl PixelNorm {
    /// Pixels scaled into [0, 1] by `1 / max`, not centred.
    pub fn unit(max: f32, channels: usize) -> PixelNorm {
        PixelNorm {
            scale: 1.0 / max,
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }
}

/// Images of one shape with their class labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    /// Channels, height, width.
    shape: [usize; 3],
    /// One 256-entry table per channel: the input value of each byte.
    lut: Vec<[f32; 256]>,
}

impl ImageSet {
    /// `pixels` holds `labels.len()` images of `shape` (C, H, W), channel-major.
    pub fn new(pixels: Vec<u8>, labels: Vec<u32>, shape: [usize; 3], norm: &PixelNorm) -> ImageSet {
        debug_assert_eq!(pixels.len(), labels.len() * shape.iter().product::<usize>());
        let lut = (0..shape[0])
            .map(|c| {
                let (mean, std) = (norm.mean[c % norm.mean.len()], norm.std[c % norm.std.len()]);
                std::array::from_fn(|p| (p as f32 * norm.scale - mean) / std)
            })
            .collect();
        ImageSet {
            pixels,
            labels,
            shape,
            lut,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Values per image (C * H * W).
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Appends the normalised inputs of `indices` to `out`, image after image.
    pub fn features_into(&self, indices: &[usize], out: &mut Vec<f32>) {
        let len = self.sample_len();
        let plane = self.shape[1] * self.shape[2];
        out.reserve(indices.len() * len);
        for &i in indices {
            let image = &self.pixels[i * len..(i + 1) * len];
            for (c, channel) in image.chunks_exact(plane).enumerate() {
                let lut = &self.lut[c];
                out.extend(channel.iter().map(|&p| lut[usize::from(p)]));
            }
        }
    }

    /// Inputs `(n, C, H, W)` f32 and labels `(n,)` u32 of `indices`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<(Tensor, Tensor)> {
        let mut features = Vec::new();
        self.features_into(indices, &mut features);
        let [c, h, w] = self.shape;
        let x = Tensor::from_vec(features, (indices.len(), c, h, w), device)?;
        let labels: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        let y = Tensor::from_vec(labels, indices.len(), device)?;
        Ok((x, y))
    }
}
