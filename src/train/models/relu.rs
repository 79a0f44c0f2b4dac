//! ReLU on the CPU with a one-pass backward. Candle's backward of `relu`
//! is five ops over the whole tensor (zeros, a comparison, a cast, a
//! product, a sum), 8% of a ResNet-20 step; here the gradient is the
//! output's gradient where the output is positive, in one loop.
//!
//! At exactly zero the gradient is 0, as in PyTorch (`threshold_backward`
//! on the result); Candle's own passes it through (`x >= 0`).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_storage::{contiguous_f32, on_cpu_f32};

/// Values per parallel task: below this one thread does it all.
const CHUNK: usize = 1 << 16;

/// `max(x, 0)`, with lrtop's backward where it runs on the CPU in f32.
pub(crate) fn relu(x: &Tensor) -> Result<Tensor> {
    if !on_cpu_f32(x) {
        return x.relu();
    }
    x.contiguous()?.apply_op1(Relu)
}

/// `v` if `keep`, else 0, without a branch: signs are random in a
/// network's activations, and a branch mispredicted half the time made
/// these loops 15% of a ResNet-20 step.
#[inline(always)]
pub(super) fn keep_if(v: f32, keep: bool) -> f32 {
    f32::from_bits(v.to_bits() & u32::from(keep).wrapping_neg())
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "lrtop-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "relu input")?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                for (y, x) in y.iter_mut().zip(x) {
                    // NaN stays NaN, as with Candle's relu.
                    *y = keep_if(*x, *x >= 0.0 || x.is_nan());
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            y.apply_op2_no_bwd(&grad.contiguous()?, &ReluBackward)?,
        ))
    }
}

/// `grad` where the output `y` is positive, 0 elsewhere.
struct ReluBackward;

impl CustomOp2 for ReluBackward {
    fn name(&self) -> &'static str {
        "lrtop-relu-backward"
    }

    fn cpu_fwd(
        &self,
        y_storage: &CpuStorage,
        y_layout: &Layout,
        g_storage: &CpuStorage,
        g_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(y_storage, y_layout, "relu output")?;
        let grad = contiguous_f32(g_storage, g_layout, "relu gradient")?;
        if y.len() != grad.len() {
            candle_core::bail!(
                "relu backward: {} outputs, {} gradients",
                y.len(),
                grad.len()
            );
        }
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
            .for_each(|(out, (y, grad))| {
                for (o, (y, g)) in out.iter_mut().zip(y.iter().zip(grad)) {
                    *o = keep_if(*g, *y > 0.0);
                }
            });
        Ok((CpuStorage::F32(out), y_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu_storage::max_abs_diff;
    use super::*;
    use candle_core::{Device, Var};

    /// Values and gradients equal Candle's relu's away from zero, on a
    /// tensor large enough to be split among tasks and on a strided view.
    #[test]
    fn matches_candles_relu_and_its_gradient() -> Result<()> {
        let dev = Device::Cpu;
        for dims in [(3, 5, 7), (4, 160, 260)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, dims, &dev)?)?;
            let view = x.transpose(1, 2)?;
            let mix = Tensor::randn(0f32, 1.0, view.shape(), &dev)?;
            let ours = relu(&view)?;
            let theirs = view.relu()?;
            assert_eq!(max_abs_diff(&ours, &theirs)?, 0.0);
            let g_ours = (&ours * &mix)?.sum_all()?.backward()?;
            let g_theirs = (&theirs * &mix)?.sum_all()?.backward()?;
            let (Some(a), Some(b)) = (g_ours.get(x.as_tensor()), g_theirs.get(x.as_tensor()))
            else {
                panic!("no gradient");
            };
            assert_eq!(max_abs_diff(a, b)?, 0.0, "{dims:?}");
        }
        Ok(())
    }

    #[test]
    fn zero_gets_no_gradient_as_in_pytorch_and_nan_passes_through() -> Result<()> {
        let x = Var::new(&[-1f32, 0.0, 2.0, f32::NAN], &Device::Cpu)?;
        let y = relu(x.as_tensor())?;
        // NaN stays NaN: a diverging run must show it in its loss.
        assert!(y.to_vec1::<f32>()?[3].is_nan());
        let grads = y.narrow(0, 0, 3)?.sum_all()?.backward()?;
        let Some(g) = grads.get(x.as_tensor()) else {
            panic!("no gradient");
        };
        assert_eq!(g.to_vec1::<f32>()?, [0.0, 0.0, 1.0, 0.0]);
        Ok(())
    }
}
