//! Layers built only from differentiable tensor ops.

use candle_core::{Result as CResult, Tensor, Var};

use super::lora::Adapter;
use super::params::ParamBuilder;
use crate::train::error::Result;

/// `y = x W^T + b` with PyTorch's default initialisation, U(±1/sqrt(fan_in)),
/// plus a LoRA update when it has one.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub lora: Option<Adapter>,
    /// A frozen weight (the base of a LoRA model): no gradient computed for it.
    pub frozen: bool,
}

impl Linear {
    pub fn new(
        pb: &mut ParamBuilder,
        name: &str,
        inputs: usize,
        outputs: usize,
        bias: bool,
    ) -> Result<Linear> {
        let bound = 1.0 / (inputs as f64).sqrt();
        pb.scope(name, |pb| {
            let weight = pb.uniform("weight", (outputs, inputs), bound)?;
            let bias = if bias {
                Some(pb.uniform("bias", outputs, bound)?)
            } else {
                None
            };
            Ok(Linear {
                weight,
                bias,
                lora: None,
                frozen: false,
            })
        })
    }

    /// A layer whose weight is drawn from N(0, std²), no bias (Llama's init).
    pub fn normal(
        pb: &mut ParamBuilder,
        name: &str,
        inputs: usize,
        outputs: usize,
        std: f64,
    ) -> Result<Linear> {
        let weight = pb.scope(name, |pb| pb.normal("weight", (outputs, inputs), std))?;
        Ok(Linear {
            weight,
            bias: None,
            lora: None,
            frozen: false,
        })
    }

    /// `x`: `(..., inputs)`.
    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        self.forward_t(x, false)
    }

    /// As [`Linear::forward`]; `train` turns the adapter's dropout on.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        let dims = x.dims().to_vec();
        let inputs = dims[dims.len() - 1];
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x = x.reshape((rows, inputs))?;
        // Mixed precision: the variables are cast to the activations' type
        // (a no-op when they match; the cast's backward returns f32 gradients).
        let mut y = if self.frozen {
            super::lora::frozen_matmul(&x, &self.weight)?
        } else {
            x.matmul(&self.weight.to_dtype(x.dtype())?.t()?)?
        };
        if let Some(adapter) = &self.lora {
            y = (y + adapter.forward(&x, train)?)?;
        }
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?)?,
            None => y,
        };
        let mut out_dims = dims;
        let last = out_dims.len() - 1;
        out_dims[last] = self.weight.dim(0)?;
        y.reshape(out_dims)
    }
}

/// A 2-D convolution, square kernel, PyTorch's default initialisation unless
/// `he_normal` (He et al.'s N(0, 2/fan_out), the ResNet paper's).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    padding: usize,
    stride: usize,
}

pub struct ConvShape {
    pub inputs: usize,
    pub outputs: usize,
    pub kernel: usize,
    pub padding: usize,
    pub stride: usize,
}

impl Conv2d {
    pub fn new(
        pb: &mut ParamBuilder,
        name: &str,
        s: ConvShape,
        bias: bool,
        he_normal: bool,
    ) -> Result<Conv2d> {
        let fan_in = s.inputs * s.kernel * s.kernel;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let shape = (s.outputs, s.inputs, s.kernel, s.kernel);
        pb.scope(name, |pb| {
            let weight = if he_normal {
                let fan_out = s.outputs * s.kernel * s.kernel;
                pb.normal("weight", shape, (2.0 / fan_out as f64).sqrt())?
            } else {
                pb.uniform("weight", shape, bound)?
            };
            let bias = if bias {
                Some(pb.uniform("bias", s.outputs, bound)?)
            } else {
                None
            };
            Ok(Conv2d {
                weight,
                bias,
                padding: s.padding,
                stride: s.stride,
            })
        })
    }

    /// `x`: `(n, C, H, W)`.
    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let y = super::conv::conv2d(x, &self.weight, self.padding, self.stride)?;
        match &self.bias {
            Some(b) => super::channel_bias::add_channel_bias(&y, b),
            None => Ok(y),
        }
    }
}

/// Batch normalisation over `(n, H, W)` per channel, PyTorch's semantics:
/// training normalises with the batch's biased variance and moves the
/// running mean and unbiased variance by `momentum`; evaluation uses the
/// running statistics. (candle-nn's `BatchNorm` registers its running
/// statistics as trainable variables, hence this one.)
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl BatchNorm2d {
    pub fn new(pb: &mut ParamBuilder, name: &str, channels: usize) -> Result<BatchNorm2d> {
        pb.scope(name, |pb| {
            Ok(BatchNorm2d {
                weight: pb.constant("weight", channels, 1.0)?,
                bias: pb.constant("bias", channels, 0.0)?,
                running_mean: pb.buffer("running_mean", channels, 0.0)?,
                running_var: pb.buffer("running_var", channels, 1.0)?,
                eps: 1e-5,
                momentum: 0.1,
            })
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        if train && super::cpu_storage::on_cpu_f32(x) {
            return self.train_forward_cpu(x);
        }
        self.forward_with_ops(x, train)
    }

    /// The same from Candle ops (any device and float type).
    fn forward_with_ops(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        let channels = self.weight.dim(0)?;
        let per_channel = |t: &Tensor| t.reshape((1, channels, 1, 1));
        let (centred, var) = if train {
            let mean = x.mean_keepdim((0, 2, 3))?;
            let centred = x.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim((0, 2, 3))?;
            let count = (x.elem_count() / channels) as f64;
            let unbiased = var.detach().affine(count / (count - 1.0).max(1.0), 0.0)?;
            let m = self.momentum;
            let new_mean = ((self.running_mean.as_tensor() * (1.0 - m))?
                + (mean.detach().flatten_all()? * m)?)?;
            let new_var =
                ((self.running_var.as_tensor() * (1.0 - m))? + (unbiased.flatten_all()? * m)?)?;
            self.running_mean.set(&new_mean)?;
            self.running_var.set(&new_var)?;
            (centred, var)
        } else {
            let mean = per_channel(&self.running_mean.as_detached_tensor())?;
            let var = per_channel(&self.running_var.as_detached_tensor())?;
            (x.broadcast_sub(&mean)?, var)
        };
        centred
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&per_channel(&self.weight)?)?
            .broadcast_add(&per_channel(&self.bias)?)
    }

    /// Training mode on the CPU: per-channel loops (`super::batch_norm`).
    fn train_forward_cpu(&self, x: &Tensor) -> CResult<Tensor> {
        let (y, mean, var) =
            super::batch_norm::train_forward(x, &self.weight, &self.bias, self.eps)?;
        let count = (x.elem_count() / mean.len().max(1)) as f64;
        let unbiased = count / (count - 1.0).max(1.0);
        let m = self.momentum;
        let blend = |old: &Var, batch: Vec<f32>, factor: f64| -> CResult<()> {
            let batch = Tensor::from_vec(batch, old.dims(), old.device())?;
            old.set(&((old.as_tensor() * (1.0 - m))? + (batch * (factor * m))?)?)
        };
        blend(&self.running_mean, mean, 1.0)?;
        blend(&self.running_var, var, unbiased)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::super::cpu_storage::max_abs_diff as max_diff;
    use super::*;

    /// The CPU loops give Candle ops' output, gradients and running
    /// statistics.
    #[test]
    fn batch_norm_on_the_cpu_matches_candle_ops() -> CResult<()> {
        let dev = Device::Cpu;
        let weight = Var::from_tensor(&Tensor::randn(1f32, 0.5, 3, &dev)?)?;
        let bias = Var::from_tensor(&Tensor::randn(0f32, 0.5, 3, &dev)?)?;
        let make = || -> CResult<BatchNorm2d> {
            Ok(BatchNorm2d {
                weight: weight.as_tensor().clone(),
                bias: bias.as_tensor().clone(),
                running_mean: Var::from_tensor(&Tensor::randn(0f32, 1.0, 3, &dev)?)?,
                running_var: Var::from_tensor(&Tensor::ones(3, candle_core::DType::F32, &dev)?)?,
                eps: 1e-5,
                momentum: 0.1,
            })
        };
        let (fast, slow) = (make()?, make()?);
        slow.running_mean.set(fast.running_mean.as_tensor())?;
        let x = Var::from_tensor(&((Tensor::randn(0f32, 2.0, (4, 3, 5, 6), &dev)? + 3.0)?))?;
        let mix = Tensor::randn(0f32, 1.0, (4, 3, 5, 6), &dev)?;
        let y_fast = fast.forward(&x, true)?;
        let y_slow = slow.forward_with_ops(&x, true)?;
        assert!(max_diff(&y_fast, &y_slow)? < 1e-5);
        let g_fast = (&y_fast * &mix)?.sum_all()?.backward()?;
        let g_slow = (&y_slow * &mix)?.sum_all()?.backward()?;
        let pairs = [
            (x.as_tensor(), x.as_tensor()),
            (&fast.weight, &slow.weight),
            (&fast.bias, &slow.bias),
        ];
        for (a, b) in pairs {
            let (Some(ga), Some(gb)) = (g_fast.get(a), g_slow.get(b)) else {
                panic!("a missing gradient");
            };
            assert!(max_diff(ga, gb)? < 1e-4, "{ga} {gb}");
        }
        let stats = |bn: &BatchNorm2d| {
            [
                bn.running_mean.as_tensor().clone(),
                bn.running_var.as_tensor().clone(),
            ]
        };
        for (a, b) in stats(&fast).iter().zip(&stats(&slow)) {
            assert!(max_diff(a, b)? < 1e-5);
        }
        Ok(())
    }
}
