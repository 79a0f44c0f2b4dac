//! The CIFAR ResNets of He et al. 2016 (section 4.2): a 3x3 convolution with
//! 16 channels, three stages of `n` basic blocks with 16, 32 and 64 channels
//! (the first block of stages 2 and 3 halves the resolution), global average
//! pooling and a linear classifier: 6n + 2 layers (resnet20: n = 3, resnet32:
//! n = 5). Shortcuts are the paper's option A: identity, or stride-2
//! subsampling with zero-padded channels. Convolutions use He-normal init.

use candle_core::{Result as CResult, Tensor};

use super::layers::{BatchNorm2d, Conv2d, ConvShape, Linear};
use super::params::ParamBuilder;
use super::relu::relu;
use crate::train::error::Result;

const WIDTHS: [usize; 3] = [16, 32, 64];

#[derive(Debug, Clone)]
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    /// Subsample and widen the shortcut (first block of stages 2 and 3).
    downsample: Option<usize>,
}

impl BasicBlock {
    fn new(
        pb: &mut ParamBuilder,
        inputs: usize,
        outputs: usize,
        stride: usize,
    ) -> Result<BasicBlock> {
        let conv = |inputs, outputs, stride| ConvShape {
            inputs,
            outputs,
            kernel: 3,
            padding: 1,
            stride,
        };
        Ok(BasicBlock {
            conv1: Conv2d::new(pb, "conv1", conv(inputs, outputs, stride), false, true)?,
            bn1: BatchNorm2d::new(pb, "bn1", outputs)?,
            conv2: Conv2d::new(pb, "conv2", conv(outputs, outputs, 1), false, true)?,
            bn2: BatchNorm2d::new(pb, "bn2", outputs)?,
            downsample: (stride != 1 || inputs != outputs).then_some(outputs),
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        let h = relu(&self.bn1.forward(&self.conv1.forward(x)?, train)?)?;
        let h = self.bn2.forward(&self.conv2.forward(&h)?, train)?;
        let shortcut = match self.downsample {
            Some(outputs) => shortcut_a(x, outputs)?,
            None => x.clone(),
        };
        relu(&(h + shortcut)?)
    }
}

/// `x[:, :, ::2, ::2]` with the channels zero-padded equally on both sides to `outputs`.
fn shortcut_a(x: &Tensor, outputs: usize) -> CResult<Tensor> {
    let (_, channels, h, w) = x.dims4()?;
    let x = if h % 2 == 1 {
        x.pad_with_zeros(2, 0, 1)?
    } else {
        x.clone()
    };
    let x = if w % 2 == 1 {
        x.pad_with_zeros(3, 0, 1)?
    } else {
        x
    };
    let (n, c, h, w) = x.dims4()?;
    let sub = x
        .reshape((n, c, h / 2, 2, w / 2, 2))?
        .narrow(3, 0, 1)?
        .narrow(5, 0, 1)?
        .reshape((n, c, h / 2, w / 2))?;
    let extra = outputs - channels;
    sub.pad_with_zeros(1, extra / 2, extra - extra / 2)
}

#[derive(Debug, Clone)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet {
    /// `n` blocks per stage (depth 6n + 2).
    pub fn new(
        pb: &mut ParamBuilder,
        n: usize,
        input: [usize; 3],
        classes: usize,
    ) -> Result<ResNet> {
        let [channels, _, _] = input;
        let stem = ConvShape {
            inputs: channels,
            outputs: WIDTHS[0],
            kernel: 3,
            padding: 1,
            stride: 1,
        };
        let conv1 = Conv2d::new(pb, "conv1", stem, false, true)?;
        let bn1 = BatchNorm2d::new(pb, "bn1", WIDTHS[0])?;
        let mut blocks = Vec::new();
        let mut inputs = WIDTHS[0];
        for (stage, &width) in WIDTHS.iter().enumerate() {
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let block = pb.scope(&format!("stage{}.{b}", stage + 1), |pb| {
                    BasicBlock::new(pb, inputs, width, stride)
                })?;
                blocks.push(block);
                inputs = width;
            }
        }
        let fc = Linear::new(pb, "fc", inputs, classes, true)?;
        Ok(ResNet {
            conv1,
            bn1,
            blocks,
            fc,
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        let mut h = relu(&self.bn1.forward(&self.conv1.forward(x)?, train)?)?;
        for block in &self.blocks {
            h = block.forward(&h, train)?;
        }
        let pooled = h.mean((2, 3))?;
        self.fc.forward(&pooled)
    }
}
