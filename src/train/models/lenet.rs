//! LeNet-5 (LeCun et al. 1998) in its common modern form: ReLU and max
//! pooling. Padding adapts to the input so the classic shapes come out:
//! 28x28 (MNIST) is padded by 2 and 32x32 (CIFAR) is not, both giving 16x5x5
//! before the dense layers; small images (digits, 8x8) pad both convolutions.

use candle_core::{Result as CResult, Tensor};

use super::layers::{Conv2d, ConvShape, Linear};
use super::params::ParamBuilder;
use super::relu::relu;
use crate::train::error::{Result, TrainError};

#[derive(Debug, Clone)]
pub struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl LeNet5 {
    pub fn new(pb: &mut ParamBuilder, input: [usize; 3], classes: usize) -> Result<LeNet5> {
        let [channels, h, w] = input;
        let side = h.min(w);
        let pad1 = if side < 32 { 2 } else { 0 };
        let after1 = |s: usize| (s + 2 * pad1 - 4) / 2;
        let pad2 = if after1(side) >= 10 { 0 } else { 2 };
        let after2 = |s: usize| {
            (after1(s) + 2 * pad2)
                .checked_sub(4)
                .map(|v| v / 2)
                .unwrap_or(0)
        };
        let (h2, w2) = (after2(h), after2(w));
        if h2 == 0 || w2 == 0 {
            return Err(TrainError::Model(format!(
                "lenet5 needs images of at least 4x4, found {h}x{w}"
            )));
        }
        let conv = |inputs, outputs, padding| ConvShape {
            inputs,
            outputs,
            kernel: 5,
            padding,
            stride: 1,
        };
        let flat = 16 * h2 * w2;
        Ok(LeNet5 {
            conv1: Conv2d::new(pb, "conv1", conv(channels, 6, pad1), true, false)?,
            conv2: Conv2d::new(pb, "conv2", conv(6, 16, pad2), true, false)?,
            fc1: Linear::new(pb, "fc1", flat, 120, true)?,
            fc2: Linear::new(pb, "fc2", 120, 84, true)?,
            fc3: Linear::new(pb, "fc3", 84, classes, true)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let h = pool2(&relu(&self.conv1.forward(x)?)?)?;
        let h = pool2(&relu(&self.conv2.forward(&h)?)?)?;
        let h = h.flatten_from(1)?;
        let h = relu(&self.fc1.forward(&h)?)?;
        let h = relu(&self.fc2.forward(&h)?)?;
        self.fc3.forward(&h)
    }
}

/// 2x2 max pooling (an odd last row or column is dropped, as PyTorch does):
/// CPU loops for f32 on the CPU (`max_pool`), else [`pool2_with_ops`].
fn pool2(x: &Tensor) -> CResult<Tensor> {
    if super::max_pool::runs_on_cpu(x) {
        return super::max_pool::pool2_cpu(x);
    }
    pool2_with_ops(x)
}

/// 2x2 max pooling from plain ops. Candle 0.11's `max_pool2d` backward
/// multiplies the gradient by the fraction of maxima in the window (1/4 for
/// a unique maximum) instead of dividing by their count, and a bare max
/// reduction gives every tied maximum the whole gradient; ties are common
/// here (flat background after a ReLU). This splits the gradient evenly
/// among ties, so it always sums to the output's gradient.
fn pool2_with_ops(x: &Tensor) -> CResult<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (h2, w2) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 {
        x.narrow(2, 0, 2 * h2)?.narrow(3, 0, 2 * w2)?.contiguous()?
    } else {
        x.clone()
    };
    let windows = x.reshape((n, c, h2, 2, w2, 2))?;
    let max = windows.max_keepdim(5)?.max_keepdim(3)?.detach();
    let is_max = windows.broadcast_eq(&max)?.to_dtype(x.dtype())?;
    let count = is_max.sum_keepdim(5)?.sum_keepdim(3)?;
    (windows * is_max)?
        .sum_keepdim(5)?
        .sum_keepdim(3)?
        .broadcast_div(&count)?
        .reshape((n, c, h2, w2))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::super::cpu_storage::max_abs_diff as diff;
    use super::*;

    /// The CPU loops give the ops' values and gradient: ties (zeros after
    /// a ReLU, repeated values), an odd height and width.
    #[test]
    fn max_pooling_on_the_cpu_matches_the_ops() -> CResult<()> {
        let dev = Device::Cpu;
        for (h, w) in [(6, 8), (5, 7), (2, 2), (3, 3)] {
            let raw = Tensor::randn(0f32, 1.0, (3, 4, h, w), &dev)?;
            // Rounded to halves and ReLU'd: many equal values in a window.
            let x = Var::from_tensor(&((raw * 2.0)?.round()? * 0.5)?.relu()?)?;
            let fast = pool2(x.as_tensor())?;
            let slow = pool2_with_ops(x.as_tensor())?;
            assert_eq!(fast.dims(), slow.dims());
            assert_eq!(diff(&fast, &slow)?, 0.0, "{h}x{w}");
            let mix = Tensor::randn(0f32, 1.0, fast.shape(), &dev)?;
            let g_fast = (&fast * &mix)?.sum_all()?.backward()?;
            let g_slow = (&slow * &mix)?.sum_all()?.backward()?;
            let (Some(a), Some(b)) = (g_fast.get(x.as_tensor()), g_slow.get(x.as_tensor())) else {
                panic!("a missing gradient");
            };
            assert!(diff(a, b)? < 1e-6, "{h}x{w}: {a} {b}");
        }
        Ok(())
    }
}
