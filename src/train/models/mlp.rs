//! A multilayer perceptron: flattened input, ReLU hidden layers, linear output.

use candle_core::{Result as CResult, Tensor};

use super::layers::Linear;
use super::params::ParamBuilder;
use crate::train::error::Result;

#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
}

/// The parameter names of layer `i` (shared with the fused CPU path).
pub fn layer_names(i: usize) -> (String, String) {
    (format!("layers.{i}.weight"), format!("layers.{i}.bias"))
}

impl Mlp {
    /// Layer widths from input to output, e.g. `[64, 128, 128, 10]`.
    pub fn new(pb: &mut ParamBuilder, widths: &[usize]) -> Result<Mlp> {
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(pb, &format!("layers.{i}"), w[0], w[1], true))
            .collect::<Result<_>>()?;
        Ok(Mlp { layers })
    }

    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let mut h = x.flatten_from(1)?;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}
