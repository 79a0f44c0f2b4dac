//! 2-D convolution on the CPU as im2col + one matrix product, forward and
//! backward. Candle 0.11's own CPU backward is the slow part of training a
//! CNN: the input's gradient goes through `conv_transpose2d`, a direct loop
//! with no matrix product, and the kernel's through a convolution with an
//! output-sized kernel; a ResNet-20 step was 20x PyTorch's. Here both
//! gradients are matrix products too (gemm), with the column matrix
//! recomputed in the backward pass rather than kept alive by the graph.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv_direct;
use super::cpu_storage::contiguous_f32;
use super::strided_gemm::{View, gemm};

/// The geometry of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub padding: usize,
    pub stride: usize,
}

impl Geometry {
    fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output positions per image.
    fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Whether to convolve without a column matrix (`conv_direct`): with
    /// stride 1 and enough input channels. Its products have only the
    /// channels as inner dimension, one per kernel offset; with few
    /// channels (LeNet-5's 1 and 6) im2col's single product is faster:
    /// LeNet-5 trained at 360 steps/s the direct way, 620 with im2col,
    /// while ResNet-20 (16 to 64 channels) went from 3.15 to 3.75.
    fn direct(&self) -> bool {
        self.stride == 1 && self.channels >= 16
    }

    /// Values per column-matrix row: one input patch.
    fn patch(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Every run of one image's column matrix `(C * k * k, positions)` that
    /// reads one input row: `visit(entry, first position, input index,
    /// length)`, where the run's `i`-th value is the input at `input + i *
    /// stride`. Padding is skipped (those values stay zero).
    fn for_each_run(&self, mut visit: impl FnMut(usize, usize, usize, usize)) {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (oh, ow) = (self.out_height(), self.out_width());
        for c in 0..self.channels {
            for ky in 0..k {
                for kx in 0..k {
                    let entry = (c * k + ky) * k + kx;
                    // Output columns whose input column ox*s + kx - p is inside the image.
                    let ox_from = p.saturating_sub(kx).div_ceil(s);
                    let Some(last) = (self.width + p).checked_sub(kx + 1) else {
                        continue;
                    };
                    let ox_to = ow.min(last / s + 1);
                    if ox_from >= ox_to {
                        continue;
                    }
                    let x_from = ox_from * s + kx - p;
                    for oy in 0..oh {
                        let Some(y) = (oy * s + ky).checked_sub(p).filter(|&y| y < self.height)
                        else {
                            continue;
                        };
                        let input = (c * self.height + y) * self.width + x_from;
                        visit(entry, oy * ow + ox_from, input, ox_to - ox_from);
                    }
                }
            }
        }
    }
}

/// One image `(C, H, W)` to its column matrix `(C * k * k, positions)`,
/// overwriting `out`: cleared first, then the runs copied in. (Writing each
/// row's padding zeros with it instead was 12% slower on LeNet-5's 8-wide
/// rows: three small writes a row instead of one.)
fn im2col_image(src: &[f32], g: &Geometry, out: &mut [f32]) {
    let (positions, s) = (g.positions(), g.stride);
    out.fill(0.0);
    g.for_each_run(|entry, at, input, len| {
        let dst = &mut out[entry * positions + at..][..len];
        if s == 1 {
            dst.copy_from_slice(&src[input..][..len]);
        } else {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[input + i * s];
            }
        }
    });
}

/// The adjoint of `im2col_image`: each column-matrix value added to the
/// input value it was read from.
fn col2im_image(cols: &[f32], g: &Geometry, out: &mut [f32]) {
    let (positions, s) = (g.positions(), g.stride);
    g.for_each_run(|entry, at, input, len| {
        let from = &cols[entry * positions + at..][..len];
        if s == 1 {
            for (o, v) in out[input..][..len].iter_mut().zip(from) {
                *o += v;
            }
        } else {
            for (i, v) in from.iter().enumerate() {
                out[input + i * s] += v;
            }
        }
    });
}

/// Threads to split `images` among: Candle's (`--threads`), at most one per image.
fn threads_for(images: usize) -> usize {
    candle_core::utils::get_num_threads().clamp(1, images.max(1))
}

/// Both gradients of the convolution, image by image: with one image's
/// column matrix `cols` (`C*k*k` x positions), `grad_w += grad · colsᵀ` and
/// `grad_x = col2im(kernelᵀ · grad)`. Working per image keeps every buffer
/// small enough to be reused by the allocator (the whole batch's column
/// matrix is tens of MB, freshly mapped and faulted in each time). The
/// output packs `grad_x` then `grad_w`, flattened.
struct ConvBackward(Geometry);

impl CustomOp3 for ConvBackward {
    fn name(&self) -> &'static str {
        "lrtop-conv2d-backward"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        w_storage: &CpuStorage,
        w_layout: &Layout,
        g_storage: &CpuStorage,
        g_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let x = contiguous_f32(x_storage, x_layout, "conv2d input")?;
        let kernel = contiguous_f32(w_storage, w_layout, "conv2d kernel")?;
        let grad = contiguous_f32(g_storage, g_layout, "conv2d gradient")?;
        let outputs = w_layout.dims()[0];
        let (positions, patch) = (g.positions(), g.patch());
        let image = g.channels * g.height * g.width;
        let mut packed = vec![0f32; g.batch * image + outputs * patch];
        let (grad_x, grad_w) = packed.split_at_mut(g.batch * image);
        let packed_shape = Shape::from(g.batch * image + outputs * patch);
        if image == 0 || outputs * positions == 0 {
            // No input values or no outputs: both gradients are zero.
            return Ok((CpuStorage::F32(packed), packed_shape));
        }
        // Images split among the threads, each with its own column matrix
        // and its own sum of the kernel's gradient.
        let per_thread = g.batch.div_ceil(threads_for(g.batch)).max(1);
        let partial_sums = grad_x
            .par_chunks_mut(per_thread * image)
            .enumerate()
            .map(|(chunk, grad_x)| -> Result<Vec<f32>> {
                if g.direct() {
                    let mut sums = vec![0f32; conv_direct::kernel_grad_len(g, outputs)];
                    let mut scratch = conv_direct::Scratch::new(g, outputs);
                    for (i, grad_x) in grad_x.chunks_exact_mut(image).enumerate() {
                        let n = chunk * per_thread + i;
                        conv_direct::backward_image(
                            &x[n * image..(n + 1) * image],
                            kernel,
                            &grad[n * outputs * positions..(n + 1) * outputs * positions],
                            &mut scratch,
                            grad_x,
                            &mut sums,
                        )?;
                    }
                    let mut grad_w = vec![0f32; outputs * patch];
                    conv_direct::add_kernel_grad(g, outputs, &sums, &mut grad_w);
                    return Ok(grad_w);
                }
                let mut grad_w = vec![0f32; outputs * patch];
                let mut cols = vec![0f32; patch * positions];
                let mut kernel_grad_t = vec![0f32; patch * outputs];
                let mut cols_grad = vec![0f32; patch * positions];
                for (i, grad_x) in grad_x.chunks_exact_mut(image).enumerate() {
                    let n = chunk * per_thread + i;
                    im2col_image(&x[n * image..(n + 1) * image], g, &mut cols);
                    let grad_n = View::rows(n * outputs * positions, outputs, positions, positions);
                    // The kernel's gradient transposed, cols (C*k*k, positions)
                    // x gradᵀ (positions, O): gemm computes a row-major
                    // product as its transpose, so in this order it reads the
                    // column matrix in place, where `grad x colsᵀ` made it
                    // copy (pack) the whole column matrix for every image.
                    gemm(
                        &mut kernel_grad_t,
                        View::rows(0, patch, outputs, outputs),
                        &cols,
                        View::rows(0, patch, positions, positions),
                        grad,
                        grad_n.t(),
                        false,
                    )?;
                    for (o, acc) in grad_w.chunks_exact_mut(patch).enumerate() {
                        for (e, a) in acc.iter_mut().enumerate() {
                            *a += kernel_grad_t[e * outputs + o];
                        }
                    }
                    // kernelᵀ (C*k*k, O) x grad (O, positions).
                    gemm(
                        &mut cols_grad,
                        View::rows(0, patch, positions, positions),
                        kernel,
                        View::rows(0, outputs, patch, patch).t(),
                        grad,
                        grad_n,
                        false,
                    )?;
                    col2im_image(&cols_grad, g, grad_x);
                }
                Ok(grad_w)
            })
            .collect::<Result<Vec<_>>>()?;
        for partial in partial_sums {
            for (acc, v) in grad_w.iter_mut().zip(partial) {
                *acc += v;
            }
        }
        Ok((CpuStorage::F32(packed), packed_shape))
    }
}

/// The convolution of `x` `(n, C, H, W)` by `w` `(O, C, k, k)`.
struct Conv2dOp {
    padding: usize,
    stride: usize,
}

impl Conv2dOp {
    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<Geometry> {
        let (&[batch, channels, height, width], &[_, w_channels, kernel, kernel_w]) = (x, w) else {
            candle_core::bail!("conv2d: expected 4-D input and kernel, found {x:?} and {w:?}");
        };
        if w_channels != channels || kernel != kernel_w || self.stride == 0 {
            candle_core::bail!("conv2d: input {x:?} does not fit kernel {w:?}");
        }
        if height + 2 * self.padding < kernel || width + 2 * self.padding < kernel {
            candle_core::bail!("conv2d: input {x:?} is smaller than kernel {w:?}");
        }
        Ok(Geometry {
            batch,
            channels,
            height,
            width,
            kernel,
            padding: self.padding,
            stride: self.stride,
        })
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "lrtop-conv2d"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        w_storage: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(x_layout.dims(), w_layout.dims())?;
        let x = contiguous_f32(x_storage, x_layout, "conv2d input")?;
        let kernel = contiguous_f32(w_storage, w_layout, "conv2d kernel")?;
        let outputs = w_layout.dims()[0];
        let (positions, patch) = (g.positions(), g.patch());
        let image = g.channels * g.height * g.width;
        let mut y = vec![0f32; g.batch * outputs * positions];
        let shape = Shape::from((g.batch, outputs, g.out_height(), g.out_width()));
        if y.is_empty() || image == 0 {
            // No output, or an input of no values: the output reads padding only.
            return Ok((CpuStorage::F32(y), shape));
        }
        // Images split among the threads, each with its own column matrices.
        let per_thread = g.batch.div_ceil(threads_for(g.batch)).max(1);
        y.par_chunks_mut(per_thread * outputs * positions)
            .enumerate()
            .try_for_each(|(chunk, y)| -> Result<()> {
                if g.direct() {
                    let mut scratch = conv_direct::Scratch::new(&g, outputs);
                    for (i, y) in y.chunks_exact_mut(outputs * positions).enumerate() {
                        let n = chunk * per_thread + i;
                        let image = &x[n * image..(n + 1) * image];
                        conv_direct::forward_image(image, kernel, &mut scratch, y)?;
                    }
                    return Ok(());
                }
                // Image by image: one image's column matrix (C*k*k x
                // positions, under a MB) is still in cache when gemm reads
                // it; the whole batch's (tens of MB) was not.
                let mut cols = vec![0f32; patch * positions];
                for (i, y) in y.chunks_exact_mut(outputs * positions).enumerate() {
                    let n = chunk * per_thread + i;
                    im2col_image(&x[n * image..(n + 1) * image], &g, &mut cols);
                    // kernel (O, C*k*k) x columns (C*k*k, positions): the
                    // output comes out as (O, H', W') directly.
                    gemm(
                        y,
                        View::rows(0, outputs, positions, positions),
                        kernel,
                        View::rows(0, outputs, patch, patch),
                        &cols,
                        View::rows(0, patch, positions, positions),
                        false,
                    )?;
                }
                Ok(())
            })?;
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.dims(), w.dims())?;
        let packed = x.apply_op3_no_bwd(w, &grad.contiguous()?, &ConvBackward(g))?;
        let inputs = x.elem_count();
        let grad_x = packed.narrow(0, 0, inputs)?.reshape(x.shape())?;
        let grad_w = packed
            .narrow(0, inputs, w.elem_count())?
            .reshape(w.shape())?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}

/// `x.conv2d(w, padding, stride)` (no dilation, one group); on the CPU in
/// f32 through im2col and gemm in both passes, elsewhere Candle's own.
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    if !super::cpu_storage::on_cpu_f32(x) || w.dtype() != DType::F32 {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Conv2dOp { padding, stride })
}

#[cfg(test)]
mod tests {
    use super::super::cpu_storage::max_abs_diff as max_diff;
    use super::*;
    use candle_core::{Device, Var};

    /// Values and both gradients equal Candle's own convolution's, for
    /// strides 1 and 2, paddings 0 to 2, odd sizes, 1x1 and 5x5 kernels,
    /// through im2col and the direct convolution.
    #[test]
    fn matches_candles_convolution_and_its_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let cases = [
            // (n, C, H, W, O, k, padding, stride)
            (2, 3, 8, 8, 4, 3, 1, 1),
            (2, 3, 9, 7, 5, 3, 1, 2),
            (1, 2, 8, 8, 3, 5, 2, 1),
            (3, 1, 6, 6, 2, 5, 0, 1),
            (2, 4, 5, 5, 6, 3, 0, 2),
            (1, 1, 1, 1, 1, 1, 0, 1),
            // 16 channels and more: the direct convolution.
            (2, 16, 6, 6, 4, 3, 1, 1),
            (1, 16, 5, 7, 3, 5, 2, 1),
            (2, 17, 4, 4, 5, 1, 0, 1),
            (1, 16, 6, 5, 2, 3, 0, 1),
            (5, 16, 4, 4, 3, 3, 1, 1),
            // Stride 2 with 16 channels: im2col still.
            (3, 16, 3, 3, 2, 3, 1, 2),
        ];
        for (n, c, h, w, o, k, padding, stride) in cases {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, h, w), &dev)?)?;
            let kernel = Var::from_tensor(&Tensor::randn(0f32, 1.0, (o, c, k, k), &dev)?)?;
            let weights = |shape: &Shape| Tensor::randn(0f32, 1.0, shape, &dev);
            let ours = conv2d(&x, &kernel, padding, stride)?;
            let theirs = x.conv2d(&kernel, padding, stride, 1, 1)?;
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_diff(&ours, &theirs)? < 1e-4, "{:?}", (n, c, h, w, o, k));
            // A weighted sum makes every output's gradient different.
            let mix = weights(ours.shape())?;
            let g_ours = (&ours * &mix)?.sum_all()?.backward()?;
            let g_theirs = (&theirs * &mix)?.sum_all()?.backward()?;
            for var in [x.as_tensor(), kernel.as_tensor()] {
                let (a, b) = (g_ours.get(var), g_theirs.get(var));
                let (Some(a), Some(b)) = (a, b) else {
                    panic!("no gradient for a variable");
                };
                assert!(
                    max_diff(a, b)? < 1e-3,
                    "{:?}",
                    (n, c, h, w, o, k, padding, stride)
                );
            }
        }
        Ok(())
    }

    /// The column matrix by its definition, value by value.
    fn im2col_by_definition(src: &[f32], g: &Geometry) -> Vec<f32> {
        let (k, s, p) = (g.kernel, g.stride, g.padding);
        let (oh, ow) = (g.out_height(), g.out_width());
        let mut out = Vec::new();
        for c in 0..g.channels {
            for ky in 0..k {
                for kx in 0..k {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let y = (oy * s + ky).checked_sub(p).filter(|&y| y < g.height);
                            let x = (ox * s + kx).checked_sub(p).filter(|&x| x < g.width);
                            out.push(match (y, x) {
                                (Some(y), Some(x)) => src[(c * g.height + y) * g.width + x],
                                _ => 0.0,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// im2col writes every value, padding included, so a reused buffer's
    /// old contents never leak into the product.
    #[test]
    fn the_column_matrix_overwrites_whatever_its_buffer_held() {
        // (C, H, W, k, padding, stride)
        let cases = [
            (3, 8, 8, 3, 1, 1),
            (3, 9, 7, 3, 1, 2),
            (2, 8, 8, 5, 2, 1),
            (1, 6, 6, 5, 0, 1),
            (4, 5, 5, 3, 0, 2),
            (1, 1, 1, 1, 0, 1),
            (2, 2, 3, 1, 2, 1),
            (1, 4, 4, 3, 2, 3),
        ];
        for (channels, height, width, kernel, padding, stride) in cases {
            let g = Geometry {
                batch: 1,
                channels,
                height,
                width,
                kernel,
                padding,
                stride,
            };
            let src: Vec<f32> = (0..channels * height * width)
                .map(|i| i as f32 + 1.0)
                .collect();
            let mut out = vec![f32::NAN; g.patch() * g.positions()];
            im2col_image(&src, &g, &mut out);
            assert_eq!(out, im2col_by_definition(&src, &g), "{g:?}");
        }
    }

    #[test]
    fn an_empty_batch_gives_an_empty_output() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((0, 2, 5, 5), DType::F32, &dev)?;
        let w = Tensor::zeros((3, 2, 3, 3), DType::F32, &dev)?;
        assert_eq!(conv2d(&x, &w, 1, 1)?.dims(), &[0, 3, 5, 5]);
        Ok(())
    }

    /// Degenerate shapes give empty or zero results and gradients, never a
    /// panic: no output channels, an empty image read through padding, no
    /// input channels.
    #[test]
    fn shapes_with_no_values_give_zeros_not_a_panic() -> Result<()> {
        let dev = Device::Cpu;
        // (x dims, kernel dims, padding)
        let cases = [
            ((2, 3, 5, 5), (0, 3, 3, 3), 1),
            ((2, 1, 0, 3), (2, 1, 1, 1), 1),
            ((1, 0, 3, 3), (2, 0, 1, 1), 0),
            ((1, 16, 0, 0), (2, 16, 1, 1), 1),
        ];
        for (x_dims, w_dims, padding) in cases {
            let x = Var::from_tensor(&Tensor::zeros(x_dims, DType::F32, &dev)?)?;
            let w = Var::from_tensor(&Tensor::ones(w_dims, DType::F32, &dev)?)?;
            let y = conv2d(&x, &w, padding, 1)?;
            let theirs = x.conv2d(&w, padding, 1, 1, 1)?;
            assert_eq!(y.dims(), theirs.dims(), "{x_dims:?} {w_dims:?}");
            assert!(y.flatten_all()?.to_vec1::<f32>()?.iter().all(|v| *v == 0.0));
            let grads = y.sum_all()?.backward()?;
            for var in [&x, &w] {
                if let Some(g) = grads.get(var.as_tensor()) {
                    assert_eq!(g.dims(), var.dims());
                    assert!(g.flatten_all()?.to_vec1::<f32>()?.iter().all(|v| *v == 0.0));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_kernel_larger_than_the_padded_input_is_an_error() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 1, 2, 2), DType::F32, &dev)?;
        let w = Tensor::zeros((1, 1, 5, 5), DType::F32, &dev)?;
        assert!(conv2d(&x, &w, 0, 1).is_err());
        Ok(())
    }
}
