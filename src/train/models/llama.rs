//! A Llama-architecture language model that trains under Candle's autograd:
//! RMSNorm via `rms_norm_slow`, RoPE (the rotate-half form of Hugging Face)
//! from narrow/cat/mul, grouped-query attention (keys and values repeated per
//! query group), a causal mask, the generic softmax and a SwiGLU MLP. Candle's
//! fused `rms_norm`, `softmax_last_dim` and `rotary_emb` have no backward
//! pass, so none of them appears here. Parameter names are those of
//! transformers' `LlamaForCausalLM`, so checkpoints load and save as is.

use candle_core::{D, DType, Device, Result as CResult, Tensor};

use super::layers::Linear;
use super::llama_config::{LlamaShape, RopeScaling};
use super::lora::{Adapter, LoraSpec};
use super::params::ParamBuilder;
use crate::train::error::{Result, TrainError};

/// transformers' default `initializer_range`.
const INIT_STD: f64 = 0.02;

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
}

#[derive(Debug, Clone)]
struct Block {
    input_norm: Tensor,
    attn: Attention,
    post_attention_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

#[derive(Debug, Clone)]
pub struct Llama {
    shape: LlamaShape,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    /// A LoRA model: every base weight is frozen.
    frozen: bool,
    /// `(context, head_dim)` tables, the halves repeated as transformers does.
    cos: Tensor,
    sin: Tensor,
    /// `(context, context)` additive causal mask: 0 where a query may attend (on and below the diagonal, within a sliding window), -inf elsewhere.
    mask: Tensor,
    /// The float type activations are computed in (`--dtype`); the
    /// variables keep theirs and are cast where they are used.
    compute: DType,
}

impl Llama {
    /// Creates the variables (seeded, or from the checkpoint `pb` holds).
    /// `context` is the longest sequence the model will see. With `lora`,
    /// every base variable is frozen and the targeted projections get
    /// trainable adapters.
    pub fn new(
        pb: &mut ParamBuilder,
        shape: &LlamaShape,
        context: usize,
        lora: Option<&LoraSpec>,
        device: &Device,
    ) -> Result<Llama> {
        let s = shape;
        if s.heads == 0 || s.kv_heads == 0 || !s.heads.is_multiple_of(s.kv_heads) {
            return Err(TrainError::Model(format!(
                "llama: heads ({}) must be a positive multiple of kv-heads ({})",
                s.heads, s.kv_heads
            )));
        }
        if s.head_dim == 0 || !s.head_dim.is_multiple_of(2) {
            return Err(TrainError::Model(format!(
                "llama: head dim {} must be even",
                s.head_dim
            )));
        }
        if lora.is_some() {
            pb.freeze();
        }
        let biased = |pb: &mut ParamBuilder, name: &str, inputs: usize, outputs: usize, bias| {
            let mut layer = Linear::normal(pb, name, inputs, outputs, INIT_STD)?;
            layer.frozen = lora.is_some();
            if bias {
                // transformers starts biases at zero.
                layer.bias = Some(pb.scope(name, |pb| pb.constant("bias", outputs, 0.0))?);
            }
            if let Some(spec) = lora.filter(|spec| spec.targets(name)) {
                layer.lora = Some(pb.scope(name, |pb| Adapter::new(pb, inputs, outputs, spec))?);
            }
            Ok::<_, TrainError>(layer)
        };
        let linear = |pb: &mut ParamBuilder, name: &str, inputs: usize, outputs: usize| {
            biased(pb, name, inputs, outputs, false)
        };
        let (qkv_bias, o_bias) = (s.qkv_bias(), s.o_bias());
        let embed = pb.scope("model", |pb| {
            pb.normal("embed_tokens.weight", (s.vocab, s.dim), INIT_STD)
        })?;
        let mut blocks = Vec::with_capacity(s.layers);
        for i in 0..s.layers {
            let block = pb.scope(&format!("model.layers.{i}"), |pb| {
                let attn = pb.scope("self_attn", |pb| {
                    Ok(Attention {
                        q: biased(pb, "q_proj", s.dim, s.heads * s.head_dim, qkv_bias)?,
                        k: biased(pb, "k_proj", s.dim, s.kv_heads * s.head_dim, qkv_bias)?,
                        v: biased(pb, "v_proj", s.dim, s.kv_heads * s.head_dim, qkv_bias)?,
                        o: biased(pb, "o_proj", s.heads * s.head_dim, s.dim, o_bias)?,
                    })
                })?;
                let input_norm = pb.constant("input_layernorm.weight", s.dim, 1.0)?;
                let post_attention_norm =
                    pb.constant("post_attention_layernorm.weight", s.dim, 1.0)?;
                let (gate, up, down) = pb.scope("mlp", |pb| {
                    Ok((
                        linear(pb, "gate_proj", s.dim, s.intermediate)?,
                        linear(pb, "up_proj", s.dim, s.intermediate)?,
                        linear(pb, "down_proj", s.intermediate, s.dim)?,
                    ))
                })?;
                Ok(Block {
                    input_norm,
                    attn,
                    post_attention_norm,
                    gate,
                    up,
                    down,
                })
            })?;
            blocks.push(block);
        }
        let norm = pb.scope("model", |pb| pb.constant("norm.weight", s.dim, 1.0))?;
        // transformers ignores a stored lm_head when the embeddings are tied.
        let lm_head = if s.tie_embeddings {
            embed.clone()
        } else {
            pb.normal("lm_head.weight", (s.vocab, s.dim), INIT_STD)?
        };
        let context = context.max(1);
        let (cos, sin) = rope_tables(s, context, device)?;
        let mask = causal_mask(context, s.sliding_window, device)?;
        let (cos, sin, mask) = (
            cos.to_dtype(pb.dtype())?,
            sin.to_dtype(pb.dtype())?,
            mask.to_dtype(pb.dtype())?,
        );
        Ok(Llama {
            shape: s.clone(),
            embed,
            blocks,
            norm,
            lm_head,
            frozen: lora.is_some(),
            cos,
            sin,
            mask,
            compute: pb.dtype(),
        })
    }

    /// Computes in `dtype` from now on (mixed precision: bf16 or f16
    /// activations over f32 variables). The logits come out in f32.
    pub fn set_compute_dtype(&mut self, dtype: DType) -> CResult<()> {
        self.cos = self.cos.to_dtype(dtype)?;
        self.sin = self.sin.to_dtype(dtype)?;
        self.mask = self.mask.to_dtype(dtype)?;
        self.compute = dtype;
        Ok(())
    }

    /// The float type activations are computed in.
    pub fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// The weights under transformers' names with every LoRA update folded
    /// in (`W + scale * B A`): a plain checkpoint that behaves as this model.
    pub fn merged_weights(&self) -> CResult<Vec<(String, Tensor)>> {
        let merged = |layer: &Linear| match &layer.lora {
            Some(adapter) => adapter.merge(&layer.weight),
            None => layer.weight.copy(),
        };
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed.copy()?)];
        for (i, block) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &block.attn;
            for (name, layer) in [
                ("self_attn.q_proj", &a.q),
                ("self_attn.k_proj", &a.k),
                ("self_attn.v_proj", &a.v),
                ("self_attn.o_proj", &a.o),
                ("mlp.gate_proj", &block.gate),
                ("mlp.up_proj", &block.up),
                ("mlp.down_proj", &block.down),
            ] {
                out.push((format!("{p}.{name}.weight"), merged(layer)?));
                if let Some(bias) = &layer.bias {
                    out.push((format!("{p}.{name}.bias"), bias.copy()?));
                }
            }
            out.push((
                format!("{p}.input_layernorm.weight"),
                block.input_norm.copy()?,
            ));
            out.push((
                format!("{p}.post_attention_layernorm.weight"),
                block.post_attention_norm.copy()?,
            ));
        }
        out.push(("model.norm.weight".to_string(), self.norm.copy()?));
        if !self.shape.tie_embeddings {
            out.push(("lm_head.weight".to_string(), self.lm_head.copy()?));
        }
        Ok(out)
    }

    pub fn shape(&self) -> &LlamaShape {
        &self.shape
    }

    /// The longest sequence `forward` accepts.
    pub fn context(&self) -> usize {
        self.mask.dim(0).unwrap_or(0)
    }

    /// Logits `(n, L, vocab)` for token ids `(n, L)` u32, as in evaluation.
    pub fn forward(&self, ids: &Tensor) -> CResult<Tensor> {
        self.forward_t(ids, false)
    }

    /// As [`Llama::forward`]; `train` turns the adapters' dropout on.
    pub fn forward_t(&self, ids: &Tensor, train: bool) -> CResult<Tensor> {
        let (n, len) = ids.dims2()?;
        if len > self.context() {
            candle_core::bail!(
                "sequence of {len} tokens is longer than the model's context {}",
                self.context()
            );
        }
        let eps = self.shape.rms_norm_eps as f32;
        // Rows are picked in the variables' type, then cast: casting the
        // whole table every step would copy every embedding.
        let mut x = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .to_dtype(self.compute)?
            .reshape((n, len, self.shape.dim))?;
        // A no-op without mixed precision (to_dtype to the same type).
        let weight = |w: &Tensor| w.to_dtype(self.compute);
        let cos = self.cos.narrow(0, 0, len)?;
        let sin = self.sin.narrow(0, 0, len)?;
        let mask = self.mask.narrow(0, 0, len)?.narrow(1, 0, len)?;
        for block in &self.blocks {
            let h = candle_nn::ops::rms_norm_slow(&x, &weight(&block.input_norm)?, eps)?;
            x = (x + self.attention(&block.attn, &h, &cos, &sin, &mask, train)?)?;
            let h = candle_nn::ops::rms_norm_slow(&x, &weight(&block.post_attention_norm)?, eps)?;
            let mlp =
                (block.gate.forward_t(&h, train)?.silu()? * block.up.forward_t(&h, train)?)?;
            x = (x + block.down.forward_t(&mlp, train)?)?;
        }
        let x = candle_nn::ops::rms_norm_slow(&x, &weight(&self.norm)?, eps)?;
        let x = x.reshape((n * len, self.shape.dim))?;
        let logits = if self.frozen {
            super::lora::frozen_matmul(&x, &self.lm_head)?
        } else {
            x.matmul(&weight(&self.lm_head)?.t()?)?
        };
        // In the variables' type (f32): the loss, a log-softmax over the
        // vocabulary, is reduced in f32 under mixed precision.
        logits
            .to_dtype(self.embed.dtype())?
            .reshape((n, len, self.shape.vocab))
    }

    fn attention(
        &self,
        a: &Attention,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        train: bool,
    ) -> CResult<Tensor> {
        let s = &self.shape;
        let (n, len, _) = x.dims3()?;
        let heads = |t: Tensor, count: usize| -> CResult<Tensor> {
            t.reshape((n, len, count, s.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = rope(&heads(a.q.forward_t(x, train)?, s.heads)?, cos, sin)?;
        let k = rope(&heads(a.k.forward_t(x, train)?, s.kv_heads)?, cos, sin)?;
        let v = heads(a.v.forward_t(x, train)?, s.kv_heads)?;
        let groups = s.heads / s.kv_heads;
        let k = repeat_kv(k, groups)?;
        let v = repeat_kv(v, groups)?.contiguous()?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (s.head_dim as f64).sqrt()))?;
        let scores = scores.broadcast_add(mask)?;
        // As transformers' eager attention: the softmax in f32 whatever the
        // compute type, then back.
        let weights = softmax_f32(&scores)?;
        let y = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((n, len, s.heads * s.head_dim))?;
        a.o.forward_t(&y, train)
    }
}

/// Softmax over the last dimension, computed in f32 (or f64) and returned
/// in the input's type.
fn softmax_f32(scores: &Tensor) -> CResult<Tensor> {
    match scores.dtype() {
        DType::BF16 | DType::F16 => {
            candle_nn::ops::softmax(&scores.to_dtype(DType::F32)?, D::Minus1)?
                .to_dtype(scores.dtype())
        }
        _ => candle_nn::ops::softmax(scores, D::Minus1),
    }
}

/// transformers' rotate-half RoPE: `x * cos + rotate_half(x) * sin`, with
/// `rotate_half(x) = cat(-x2, x1)`. `x`: `(n, heads, L, head_dim)`.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> CResult<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// The inverse frequencies, with Llama 3's scaling when configured.
pub fn inverse_frequencies(shape: &LlamaShape) -> Vec<f64> {
    let d = shape.head_dim;
    let base: Vec<f64> = (0..d)
        .step_by(2)
        .map(|i| 1.0 / shape.rope_theta.powf(i as f64 / d as f64))
        .collect();
    match &shape.rope_scaling {
        None => base,
        Some(sc) => base.into_iter().map(|f| llama3_scale(f, sc)).collect(),
    }
}

fn llama3_scale(freq: f64, sc: &RopeScaling) -> f64 {
    let old = sc.original_max_position_embeddings as f64;
    let low_wavelen = old / sc.low_freq_factor;
    let high_wavelen = old / sc.high_freq_factor;
    let wavelen = std::f64::consts::TAU / freq;
    if wavelen < high_wavelen {
        freq
    } else if wavelen > low_wavelen {
        freq / sc.factor
    } else {
        let smooth =
            (old / wavelen - sc.low_freq_factor) / (sc.high_freq_factor - sc.low_freq_factor);
        (1.0 - smooth) * freq / sc.factor + smooth * freq
    }
}

fn rope_tables(shape: &LlamaShape, context: usize, device: &Device) -> CResult<(Tensor, Tensor)> {
    let inv = inverse_frequencies(shape);
    let d = shape.head_dim;
    let mut cos = Vec::with_capacity(context * d);
    let mut sin = Vec::with_capacity(context * d);
    for pos in 0..context {
        for i in 0..d {
            let angle = pos as f64 * inv[i % (d / 2)];
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (context, d), device)?,
        Tensor::from_vec(sin, (context, d), device)?,
    ))
}

fn causal_mask(context: usize, window: Option<usize>, device: &Device) -> CResult<Tensor> {
    // transformers' sliding window: query i sees key j when i - j < window.
    let window = window.unwrap_or(usize::MAX);
    let values: Vec<f32> = (0..context)
        .flat_map(|i| {
            (0..context).map(move |j| {
                if j > i || i - j >= window {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (context, context), device)
}

/// Grouped-query attention: each of the `n_kv` key/value heads of
/// `(batch, n_kv, seq, head_dim)` repeated `groups` times in place, as
/// transformers' `repeat_kv` (head `h` of the result is kv head `h / groups`).
fn repeat_kv(xs: Tensor, groups: usize) -> candle_core::Result<Tensor> {
    if groups == 1 {
        return Ok(xs);
    }
    let (batch, n_kv, seq, head_dim) = xs.dims4()?;
    // One cat along the sequence then a reshape: no strided copy (candle#2043).
    Tensor::cat(&vec![&xs; groups], 2)?.reshape((batch, n_kv * groups, seq, head_dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_kv_repeats_each_head_in_place() {
        // Two kv heads of one position, head_dim 2: [[0, 1]], [[2, 3]].
        let xs = Tensor::arange(0f32, 4.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 1, 2))
            .unwrap();
        let out = repeat_kv(xs.clone(), 3).unwrap();
        assert_eq!(out.dims(), &[1, 6, 1, 2]);
        let heads: Vec<Vec<f32>> = out
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .chunks(2)
            .map(<[f32]>::to_vec)
            .collect();
        let want = [[0., 1.], [0., 1.], [0., 1.], [2., 3.], [2., 3.], [2., 3.]];
        assert_eq!(heads, want.map(|h| h.to_vec()).to_vec());
        let same = repeat_kv(xs.clone(), 1).unwrap();
        assert_eq!(same.dims(), xs.dims());
        assert_eq!(
            same.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0., 1., 2., 3.]
        );
    }
}
