//! Stride-1 convolution without a column matrix: the image is padded once,
//! and for each kernel offset `(ky, kx)` the output gains `W[:, :, ky, kx]
//! · (the padded image shifted by ky rows and kx columns)`, one gemm. In
//! the padded image's flat layout that shift is a plain offset, so gemm
//! reads the image in place; outputs are computed on the padded width
//! ("wide" rows: the last `k - 1` values of each are discarded). im2col
//! wrote every input value `k * k` times, twice per step, and col2im read
//! them back: a third of a ResNet-20 step was that memory traffic.
//!
//! Backward, with the output's gradient laid out wide (zeros in the
//! discarded columns): the padded input's gradient gains `W[:, :, ky, kx]ᵀ
//! · grad` at the same shift, and the kernel's gradient at `(ky, kx)` is
//! `grad · (the shifted image)ᵀ`. (A NaN or infinite input value also
//! reaches kernel-gradient entries through those zeros, `0 · NaN`; the
//! loss is then NaN already.)

use candle_core::Result;

use super::conv::Geometry;
use super::strided_gemm::{View, gemm};

/// The padded image and its wide rows.
#[derive(Debug, Clone, Copy)]
struct Wide {
    channels: usize,
    outputs: usize,
    kernel: usize,
    padding: usize,
    height: usize,
    width: usize,
    /// The padded width: the stride of a wide row.
    wp: usize,
    /// Values per padded channel.
    plane: usize,
    out_height: usize,
    out_width: usize,
    /// Values per output channel, wide: `out_height * wp`.
    n: usize,
}

impl Wide {
    fn new(g: &Geometry, outputs: usize) -> Wide {
        let (hp, wp) = (g.height + 2 * g.padding, g.width + 2 * g.padding);
        let out_height = hp + 1 - g.kernel;
        Wide {
            channels: g.channels,
            outputs,
            kernel: g.kernel,
            padding: g.padding,
            height: g.height,
            width: g.width,
            wp,
            plane: hp * wp,
            out_height,
            out_width: wp + 1 - g.kernel,
            n: out_height * wp,
        }
    }

    /// Values of a padded image: the last wide row's discarded values read
    /// `k - 1` past the last plane.
    fn padded_len(&self) -> usize {
        self.channels * self.plane + self.kernel - 1
    }

    /// Kernel offsets `(index ky * k + kx, shift in the padded image)`.
    fn offsets(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let (k, wp) = (self.kernel, self.wp);
        (0..k * k).map(move |kk| (kk, (kk / k) * wp + kk % k))
    }

    /// `W[:, :, ky, kx]` (outputs x channels) in the kernel `(O, C, k, k)`.
    fn kernel_slice(&self, kk: usize) -> View {
        let k2 = self.kernel * self.kernel;
        View {
            offset: kk,
            rows: self.outputs,
            cols: self.channels,
            rs: self.channels * k2,
            cs: k2,
        }
    }

    /// The padded image shifted by `shift`: channels x wide positions.
    fn shifted(&self, shift: usize) -> View {
        View::rows(shift, self.channels, self.n, self.plane)
    }

    /// Index of input value `(c, y, x)` in the padded image.
    fn padded_index(&self, c: usize, y: usize) -> usize {
        c * self.plane + (y + self.padding) * self.wp + self.padding
    }
}

/// Per-thread buffers, reused from image to image. One scratch serves one
/// direction: the forward pass writes all of `out`; the backward pass only
/// its kept columns, relying on the discarded ones being zero from `new`.
pub(super) struct Scratch {
    wide: Wide,
    /// The padded image; its padding stays zero (only the inside is written).
    padded: Vec<f32>,
    /// Output, or output's gradient, wide: outputs x n.
    out: Vec<f32>,
    /// The output's gradient, wide and transposed: n x outputs.
    out_t: Vec<f32>,
    /// The padded input's gradient.
    padded_grad: Vec<f32>,
}

impl Scratch {
    pub(super) fn new(g: &Geometry, outputs: usize) -> Scratch {
        let wide = Wide::new(g, outputs);
        Scratch {
            wide,
            padded: vec![0.0; wide.padded_len()],
            out: vec![0.0; outputs * wide.n],
            out_t: Vec::new(),
            padded_grad: Vec::new(),
        }
    }

    fn pad(&mut self, image: &[f32]) {
        let w = self.wide;
        for c in 0..w.channels {
            for y in 0..w.height {
                let row = &image[(c * w.height + y) * w.width..][..w.width];
                self.padded[w.padded_index(c, y)..][..w.width].copy_from_slice(row);
            }
        }
    }
}

/// The values of the kernel's gradient at each offset, accumulated over
/// images: for offset `kk`, an outputs x channels matrix stored
/// column-major (`kk * C * O + c * O + o`), the layout gemm writes without
/// transposing.
pub(super) fn kernel_grad_len(g: &Geometry, outputs: usize) -> usize {
    g.kernel * g.kernel * g.channels * outputs
}

/// Adds `sums` (see `kernel_grad_len`) to the kernel's gradient `(O, C, k, k)`.
pub(super) fn add_kernel_grad(g: &Geometry, outputs: usize, sums: &[f32], grad_w: &mut [f32]) {
    let (k2, channels) = (g.kernel * g.kernel, g.channels);
    for kk in 0..k2 {
        for c in 0..channels {
            for o in 0..outputs {
                grad_w[(o * channels + c) * k2 + kk] += sums[(kk * channels + c) * outputs + o];
            }
        }
    }
}

/// One image `(C, H, W)` convolved by `kernel` `(O, C, k, k)` into `y`
/// `(O, H', W')`.
pub(super) fn forward_image(
    image: &[f32],
    kernel: &[f32],
    s: &mut Scratch,
    y: &mut [f32],
) -> Result<()> {
    s.pad(image);
    let w = s.wide;
    for (kk, shift) in w.offsets() {
        gemm(
            &mut s.out,
            View::rows(0, w.outputs, w.n, w.n),
            kernel,
            w.kernel_slice(kk),
            &s.padded,
            w.shifted(shift),
            kk > 0,
        )?;
    }
    for (o, y) in y.chunks_exact_mut(w.out_height * w.out_width).enumerate() {
        for (oy, y) in y.chunks_exact_mut(w.out_width).enumerate() {
            y.copy_from_slice(&s.out[o * w.n + oy * w.wp..][..w.out_width]);
        }
    }
    Ok(())
}

/// Both gradients for one image: `grad_x` `(C, H, W)` is written, the
/// kernel's gradient added to `kernel_sums` (see `kernel_grad_len`).
pub(super) fn backward_image(
    image: &[f32],
    kernel: &[f32],
    grad: &[f32],
    s: &mut Scratch,
    grad_x: &mut [f32],
    kernel_sums: &mut [f32],
) -> Result<()> {
    s.pad(image);
    let w = s.wide;
    // The output's gradient, wide, with zeros in the discarded columns (they
    // must add nothing: zero since `Scratch::new`, never written here), and
    // its transpose.
    for (o, grad) in grad.chunks_exact(w.out_height * w.out_width).enumerate() {
        for (oy, grad) in grad.chunks_exact(w.out_width).enumerate() {
            s.out[o * w.n + oy * w.wp..][..w.out_width].copy_from_slice(grad);
        }
    }
    s.out_t.resize(w.n * w.outputs, 0.0);
    for (o, row) in s.out.chunks_exact(w.n).enumerate() {
        for (q, v) in row.iter().enumerate() {
            s.out_t[q * w.outputs + o] = *v;
        }
    }
    s.padded_grad.clear();
    s.padded_grad.resize(w.padded_len(), 0.0);
    let grad_wide = View::rows(0, w.outputs, w.n, w.n);
    for (kk, shift) in w.offsets() {
        // Input: the shifted window gains W[:, :, ky, kx]ᵀ · grad.
        gemm(
            &mut s.padded_grad,
            w.shifted(shift),
            kernel,
            w.kernel_slice(kk).t(),
            &s.out,
            grad_wide,
            true,
        )?;
        // Kernel: grad · (shifted image)ᵀ, read from the transposed
        // gradient so that gemm packs neither operand.
        gemm(
            kernel_sums,
            View::rows(
                kk * w.channels * w.outputs,
                w.channels,
                w.outputs,
                w.outputs,
            )
            .t(),
            &s.out_t,
            View::rows(0, w.n, w.outputs, w.outputs).t(),
            &s.padded,
            w.shifted(shift).t(),
            true,
        )?;
    }
    for c in 0..w.channels {
        for y in 0..w.height {
            grad_x[(c * w.height + y) * w.width..][..w.width]
                .copy_from_slice(&s.padded_grad[w.padded_index(c, y)..][..w.width]);
        }
    }
    Ok(())
}
