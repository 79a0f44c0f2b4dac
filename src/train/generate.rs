//! Sampling text from a language model: greedy, or temperature with an
//! optional top-p, seeded. The same draws as candle-transformers'
//! `LogitsProcessor` for the same seed (StdRng, `WeightedIndex`).

use candle_core::{D, Device, Tensor};
use rand::SeedableRng;
use rand::distr::Distribution;

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
    let mut sampler = Sampler::new(options);
    let context = model.context();
    let mut tokens = prompt.to_vec();
    for _ in 0..n {
        let start = tokens.len().saturating_sub(context);
        let window = &tokens[start..];
        let ids = Tensor::from_slice(window, (1, window.len()), device)?;
        let logits = model.forward(&ids)?.detach();
        let last = logits.squeeze(0)?.get(window.len() - 1)?;
        let last = last.to_dtype(candle_core::DType::F32)?;
        let next = sampler.next(&last)?;
        tokens.push(next);
    }
    Ok(tokens[prompt.len()..].to_vec())
}

/// Picks tokens from logits; its random stream is seeded once per sample.
struct Sampler {
    rng: rand::rngs::StdRng,
    /// None: greedy.
    temperature: Option<f64>,
    top_p: Option<f32>,
}

impl Sampler {
    fn new(options: &SampleOptions) -> Sampler {
        Sampler {
            rng: rand::rngs::StdRng::seed_from_u64(options.seed),
            temperature: (options.temperature >= 1e-7).then_some(options.temperature),
            // 1 keeps every token: plain sampling.
            top_p: options.top_p.filter(|&p| p < 1.0).map(|p| p as f32),
        }
    }

    /// The next token for `logits` (one vocabulary row, f32).
    fn next(&mut self, logits: &Tensor) -> Result<u32> {
        let Some(temperature) = self.temperature else {
            return Ok(logits.argmax(D::Minus1)?.to_scalar::<u32>()?);
        };
        let mut probs = candle_nn::ops::softmax_last_dim(&(logits / temperature)?)?.to_vec1()?;
        if let Some(top_p) = self.top_p {
            keep_nucleus(&mut probs, top_p);
        }
        let pick = rand::distr::weighted::WeightedIndex::new(&probs)
            .map_err(|e| TrainError::Config(format!("cannot sample from these logits: {e}")))?;
        Ok(pick.sample(&mut self.rng) as u32)
    }
}

/// Top-p: zeroes the least likely tokens beyond the smallest set, most
/// likely first, whose probabilities reach `top_p`.
fn keep_nucleus(probs: &mut [f32], top_p: f32) {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&i, &j| probs[j].total_cmp(&probs[i]));
    let mut total = 0.0;
    for i in order {
        if total >= top_p {
            probs[i] = 0.0;
        } else {
            total += probs[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nucleus_keeps_the_most_likely_tokens_up_to_top_p() {
        let mut probs = [0.1, 0.5, 0.15, 0.25];
        keep_nucleus(&mut probs, 0.7);
        // 0.5 then 0.25 reach 0.7; the rest are dropped.
        assert_eq!(probs, [0.0, 0.5, 0.0, 0.25]);
    }

    #[test]
    fn greedy_takes_the_largest_logit_and_a_seed_repeats_its_draws() {
        let logits = Tensor::new(&[0.1f32, 2.0, -1.0, 1.5], &Device::Cpu).unwrap();
        let greedy = SampleOptions {
            temperature: 0.0,
            top_p: None,
            seed: 1,
        };
        assert_eq!(Sampler::new(&greedy).next(&logits).unwrap(), 1);
        let hot = SampleOptions {
            temperature: 5.0,
            top_p: None,
            seed: 7,
        };
        let draws = |o: &SampleOptions| {
            let mut s = Sampler::new(o);
            (0..64)
                .map(|_| s.next(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draws(&hot);
        assert_eq!(a, draws(&hot));
        // At a high temperature every token is drawn now and then.
        assert!((0..4).all(|t| a.contains(&t)), "{a:?}");
        // A tight nucleus leaves the top token only.
        let narrow = SampleOptions {
            top_p: Some(0.01),
            ..hot
        };
        assert!(draws(&narrow).iter().all(|&t| t == 1));
    }
}
