//! Sampling text from a language model with candle-transformers'
//! `LogitsProcessor` (temperature, optional top-p, seeded).

use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;

use super::error::{Result, TrainError};
use super::models::Llama;

/// How to pick each next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    /// 0 (or below 1e-7) means greedy.
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this total probability.
    pub top_p: Option<f64>,
    pub seed: u64,
}

/// `n` tokens following `prompt`. Without a KV cache each token reruns the
/// model over the last `context` tokens, which is fine at the sizes trained here.
pub fn sample(
    model: &Llama,
    prompt: &[u32],
    n: usize,
    options: &SampleOptions,
    device: &Device,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(TrainError::Config(
            "sampling needs a prompt of at least one token".into(),
        ));
    }
    let vocab = model.shape().vocab;
    if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= vocab) {
        return Err(TrainError::Config(format!(
            "prompt token {bad} is outside the vocabulary (0..{vocab})"
        )));
    }
    if let Some(p) = options.top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(TrainError::Config(format!(
            "top-p must be in (0, 1], found {p}"
        )));
    }
    let mut processor =
        LogitsProcessor::new(options.seed, Some(options.temperature), options.top_p);
    let context = model.context();
    let mut tokens = prompt.to_vec();
    for _ in 0..n {
        let start = tokens.len().saturating_sub(context);
        let window = &tokens[start..];
        let ids = Tensor::from_slice(window, (1, window.len()), device)?;
        let logits = model.forward(&ids)?.detach();
        let last = logits.squeeze(0)?.get(window.len() - 1)?;
        let last = last.to_dtype(candle_core::DType::F32)?;
        let next = processor.sample(&last)?;
        tokens.push(next);
    }
    Ok(tokens[prompt.len()..].to_vec())
}
