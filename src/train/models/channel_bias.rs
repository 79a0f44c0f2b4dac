//! A per-channel bias on `(n, C, H, W)` on the CPU: the add, and the bias's
//! gradient as per-channel sums of the output's. From Candle ops
//! (`broadcast_add` of a `(1, C, 1, 1)` bias) the gradient is a reduction
//! over the non-adjacent axes `(n, H, W)`, which Candle's CPU backend does
//! one strided index at a time: 15% of a LeNet-5 step on digits.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::batch_norm::Planes;
use super::cpu_storage::{contiguous_f32, on_cpu_f32};

/// `x + bias[c]` for every value of channel `c`: through the CPU loops for
/// a contiguous-able f32 tensor on the CPU, else through Candle's ops.
pub(super) fn add_channel_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if on_cpu_f32(x) && x.rank() == 4 {
        return x
            .contiguous()?
            .apply_op2(&bias.contiguous()?, AddChannelBias);
    }
    x.broadcast_add(&bias.reshape((1, (), 1, 1))?)
}

struct AddChannelBias;

impl CustomOp2 for AddChannelBias {
    fn name(&self) -> &'static str {
        "lrtop-add-channel-bias"
    }

    fn cpu_fwd(
        &self,
        x_s: &CpuStorage,
        x_l: &Layout,
        b_s: &CpuStorage,
        b_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Planes {
            channels, plane, ..
        } = Planes::of(x_l.dims())?;
        let x = contiguous_f32(x_s, x_l, "channel bias input")?;
        let bias = contiguous_f32(b_s, b_l, "channel bias")?;
        if bias.len() != channels {
            candle_core::bail!(
                "channel bias: {} values for {channels} channels",
                bias.len()
            );
        }
        let mut y = vec![0f32; x.len()];
        for (i, (src, dst)) in x
            .chunks_exact(plane.max(1))
            .zip(y.chunks_exact_mut(plane.max(1)))
            .enumerate()
        {
            let b = bias[i % channels];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v + b;
            }
        }
        Ok((CpuStorage::F32(y), x_l.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_bias = grad
            .contiguous()?
            .apply_op1_no_bwd(&ChannelSums)?
            .reshape(bias.shape())?;
        Ok((Some(grad.clone()), Some(grad_bias)))
    }
}

/// Per channel, the sum of its values over `(n, H, W)`, as `(C)`.
struct ChannelSums;

impl CustomOp1 for ChannelSums {
    fn name(&self) -> &'static str {
        "lrtop-channel-sums"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Planes {
            channels, plane, ..
        } = Planes::of(layout.dims())?;
        let x = contiguous_f32(storage, layout, "channel sums input")?;
        let mut sums = vec![0f64; channels];
        for (i, src) in x.chunks_exact(plane.max(1)).enumerate() {
            sums[i % channels] += src.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        let sums = sums.into_iter().map(|s| s as f32).collect();
        Ok((CpuStorage::F32(sums), Shape::from(channels)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::super::cpu_storage::max_abs_diff as max_diff;
    use super::*;

    /// Candle ops' output and both gradients, on a strided input too.
    #[test]
    fn the_cpu_bias_add_matches_candle_ops() -> Result<()> {
        let dev = Device::Cpu;
        let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, 5, &dev)?)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 4, 6), &dev)?)?;
        let mix = Tensor::randn(0f32, 1.0, (3, 5, 6, 4), &dev)?;
        // A transposed view: the op makes it contiguous first.
        let input = x.as_tensor().transpose(2, 3)?;
        let fast = add_channel_bias(&input, bias.as_tensor())?;
        let slow = input.broadcast_add(&bias.as_tensor().reshape((1, 5, 1, 1))?)?;
        assert_eq!(max_diff(&fast, &slow)?, 0.0);
        let g_fast = (&fast * &mix)?.sum_all()?.backward()?;
        let g_slow = (&slow * &mix)?.sum_all()?.backward()?;
        for v in [x.as_tensor(), bias.as_tensor()] {
            let (Some(a), Some(b)) = (g_fast.get(v), g_slow.get(v)) else {
                panic!("a missing gradient");
            };
            assert_eq!(a.shape(), b.shape());
            assert!(max_diff(a, b)? < 1e-5, "{a} {b}");
        }
        Ok(())
    }
}
