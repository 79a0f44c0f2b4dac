//! Training-mode batch normalisation on the CPU, forward and backward, as
//! per-channel loops. Built from Candle ops it was a third of a ResNet
//! step: each per-channel mean over `(n, H, W)`, and each gradient of a
//! per-channel broadcast, is a reduction over non-adjacent axes, which
//! Candle's CPU backend does one strided index at a time.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu_storage::contiguous_f32;

/// `(n, C, H, W)` as `n` images of `C` planes of `plane` values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planes {
    images: usize,
    pub(super) channels: usize,
    pub(super) plane: usize,
}

impl Planes {
    pub(super) fn of(dims: &[usize]) -> Result<Planes> {
        let &[images, channels, h, w] = dims else {
            candle_core::bail!("expected (n, C, H, W), found {dims:?}");
        };
        Ok(Planes {
            images,
            channels,
            plane: h * w,
        })
    }

    /// Values per channel.
    fn count(&self) -> usize {
        self.images * self.plane
    }

    /// Every plane of channel `c`, in order.
    fn of_channel<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (channels, plane) = (self.channels, self.plane);
        (0..self.images).map(move |n| &data[(n * channels + c) * plane..][..plane])
    }
}

/// Lanes summed side by side: one running sum is a chain of dependent
/// additions (one per 4 cycles), 16 of them vectorise.
const LANES: usize = 16;

/// The sums over one plane of `f(a[i], b[i])`'s two values: f32 in 16
/// lanes, then lanes and planes added in f64. Each lane adds a sixteenth of
/// a plane: 64 values for 32x32 images, about 3,000 for 224x224 (relative
/// error then up to ~2e-4 in the worst case, well under the noise of a
/// batch's statistics).
#[inline(always)]
fn lane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut first, mut second) = ([0f32; LANES], [0f32; LANES]);
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (a, b) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            let (u, v) = f(a[l], b[l]);
            first[l] += u;
            second[l] += v;
        }
    }
    let (mut u_total, mut v_total) = (0f64, 0f64);
    for (a, b) in a_rest.iter().zip(b_rest) {
        let (u, v) = f(*a, *b);
        u_total += u as f64;
        v_total += v as f64;
    }
    for l in 0..LANES {
        u_total += first[l] as f64;
        v_total += second[l] as f64;
    }
    (u_total, v_total)
}

/// Per channel: the mean and the biased variance, as `(2, C)`.
struct ChannelStats;

impl CustomOp1 for ChannelStats {
    fn name(&self) -> &'static str {
        "lrtop-channel-stats"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = Planes::of(layout.dims())?;
        let x = contiguous_f32(storage, layout, "batch norm input")?;
        let count = p.count().max(1) as f64;
        let mut out = vec![0f32; 2 * p.channels];
        for c in 0..p.channels {
            // Two passes (the mean, then squares about it): the variance of
            // values far from zero keeps its precision.
            let sum: f64 = p
                .of_channel(x, c)
                .map(|s| lane_sums(s, s, |v, _| (v, 0.0)).0)
                .sum();
            let mean = sum / count;
            // Centred in f32 around the f64 mean: the values' own precision.
            let mean_f32 = mean as f32;
            let sq: f64 = p
                .of_channel(x, c)
                .map(|s| lane_sums(s, s, |v, _| ((v - mean_f32) * (v - mean_f32), 0.0)).0)
                .sum();
            out[c] = mean as f32;
            out[p.channels + c] = (sq / count) as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from((2, p.channels))))
    }
}

/// The normalisation with the batch's statistics: `(x - mean) / sqrt(var +
/// eps) * weight + bias`, and its gradients.
struct Normalize {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl CustomOp3 for Normalize {
    fn name(&self) -> &'static str {
        "lrtop-batch-norm"
    }

    fn cpu_fwd(
        &self,
        x_s: &CpuStorage,
        x_l: &Layout,
        w_s: &CpuStorage,
        w_l: &Layout,
        b_s: &CpuStorage,
        b_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let p = Planes::of(x_l.dims())?;
        let x = contiguous_f32(x_s, x_l, "batch norm input")?;
        let weight = contiguous_f32(w_s, w_l, "batch norm weight")?;
        let bias = contiguous_f32(b_s, b_l, "batch norm bias")?;
        let mut y = vec![0f32; x.len()];
        for (i, (src, dst)) in x
            .chunks_exact(p.plane.max(1))
            .zip(y.chunks_exact_mut(p.plane.max(1)))
            .enumerate()
        {
            let c = i % p.channels;
            let scale = self.inv_std[c] * weight[c];
            let shift = bias[c] - self.mean[c] * scale;
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v * scale + shift;
            }
        }
        Ok((CpuStorage::F32(y), x_l.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (count, channels) = (x.elem_count(), weight.elem_count());
        let backward = Backward {
            mean: self.mean.clone(),
            inv_std: self.inv_std.clone(),
        };
        let packed = x.apply_op3_no_bwd(weight, &grad.contiguous()?, &backward)?;
        let grad_x = packed.narrow(0, 0, count)?.reshape(x.shape())?;
        let grad_bias = packed.narrow(0, count, channels)?;
        let grad_weight = packed.narrow(0, count + channels, channels)?;
        Ok((Some(grad_x), Some(grad_weight), Some(grad_bias)))
    }
}

/// All three gradients in two passes over the batch: per channel `sum(dy)`
/// (the bias's) and `sum(dy * x_hat)` (the weight's), then the input's,
/// `weight * inv_std / N * (N dy - sum(dy) - x_hat sum(dy x_hat))`. The
/// output packs the input's gradient, the bias's, then the weight's.
struct Backward {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "lrtop-batch-norm-backward"
    }

    fn cpu_fwd(
        &self,
        x_s: &CpuStorage,
        x_l: &Layout,
        w_s: &CpuStorage,
        w_l: &Layout,
        g_s: &CpuStorage,
        g_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let p = Planes::of(x_l.dims())?;
        let x = contiguous_f32(x_s, x_l, "batch norm input")?;
        let weight = contiguous_f32(w_s, w_l, "batch norm weight")?;
        let g = contiguous_f32(g_s, g_l, "batch norm gradient")?;
        let mut packed = vec![0f32; x.len() + 2 * p.channels];
        let (dx, sums) = packed.split_at_mut(x.len());
        let (sum_g, sum_gx) = sums.split_at_mut(p.channels);
        for c in 0..p.channels {
            let (mut total_g, mut total_gx) = (0f64, 0f64);
            let (mean, inv_std) = (self.mean[c], self.inv_std[c]);
            for (xs, gs) in p.of_channel(x, c).zip(p.of_channel(g, c)) {
                let (sg, sgx) = lane_sums(gs, xs, |gv, xv| (gv, gv * (xv - mean) * inv_std));
                total_g += sg;
                total_gx += sgx;
            }
            sum_g[c] = total_g as f32;
            sum_gx[c] = total_gx as f32;
        }
        let n = p.count().max(1) as f32;
        let chunk = p.plane.max(1);
        for (i, ((xs, gs), out)) in x
            .chunks_exact(chunk)
            .zip(g.chunks_exact(chunk))
            .zip(dx.chunks_exact_mut(chunk))
            .enumerate()
        {
            let c = i % p.channels;
            let (mean, inv_std) = (self.mean[c], self.inv_std[c]);
            let scale = weight[c] * inv_std / n;
            for ((d, &xv), &gv) in out.iter_mut().zip(xs).zip(gs) {
                let x_hat = (xv - mean) * inv_std;
                *d = scale * (n * gv - sum_g[c] - x_hat * sum_gx[c]);
            }
        }
        Ok((
            CpuStorage::F32(packed),
            Shape::from(x.len() + 2 * p.channels),
        ))
    }
}

/// Training-mode batch norm of contiguous f32 `x` `(n, C, H, W)` on the
/// CPU: the output, and the batch's per-channel mean and biased variance
/// (for the running statistics).
pub fn train_forward(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<(Tensor, Vec<f32>, Vec<f32>)> {
    let x = x.contiguous()?;
    let stats = x.apply_op1_no_bwd(&ChannelStats)?.to_vec2::<f32>()?;
    let [mean, var] = [stats[0].clone(), stats[1].clone()];
    let inv_std = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    let op = Normalize {
        mean: mean.clone(),
        inv_std,
    };
    let y = x.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?;
    Ok((y, mean, var))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Mean and variance of values far from zero with a small spread (a
    /// plane of 33x31, not a multiple of the lanes), against f64 sums.
    #[test]
    fn channel_statistics_keep_a_small_spread_far_from_zero() -> Result<()> {
        let mut next = crate::test_rng(3);
        let (n, c, h, w) = (3, 2, 33, 31);
        let values: Vec<f32> = (0..n * c * h * w)
            .map(|_| 1000.0 + (next() % 2001) as f32 / 1000.0 * 0.01)
            .collect();
        let x = Tensor::from_vec(values.clone(), (n, c, h, w), &Device::Cpu)?;
        let stats = x.apply_op1_no_bwd(&ChannelStats)?.to_vec2::<f32>()?;
        for ch in 0..c {
            let of_channel: Vec<f64> = (0..n)
                .flat_map(|i| &values[(i * c + ch) * h * w..][..h * w])
                .map(|&v| v as f64)
                .collect();
            let mean = of_channel.iter().sum::<f64>() / of_channel.len() as f64;
            let var = of_channel.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                / of_channel.len() as f64;
            assert!(
                (stats[0][ch] as f64 - mean).abs() < 1e-4,
                "{} {mean}",
                stats[0][ch]
            );
            let relative = (stats[1][ch] as f64 - var).abs() / var;
            assert!(relative < 1e-3, "variance {} against {var}", stats[1][ch]);
        }
        Ok(())
    }
}
