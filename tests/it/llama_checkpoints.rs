//! Random Llama checkpoints in Hugging Face's layout, made from a seeded
//! generator: the integration tests write them, and
//! `tools/llama-reference` (which includes this file) runs
//! candle-transformers' Llama on the same ones to record the logits the
//! tests compare with (`tests/fixtures/llama-reference-logits.json`).
//! Only std and candle-core here, so both can build it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

/// A random checkpoint in Hugging Face's layout.
pub struct Checkpoint {
    pub hidden: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tied: bool,
    /// transformers 5 writes rope_theta under rope_parameters.
    pub rope_parameters: bool,
}

pub fn pseudo_random(n: usize, seed: u64, scale: f32, offset: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            offset + scale * (((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0)
        })
        .collect()
}

impl Checkpoint {
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let hd = self.hidden / self.heads;
        let mut shapes: Vec<(String, Vec<usize>, f32)> = vec![(
            "model.embed_tokens.weight".into(),
            vec![self.vocab, self.hidden],
            0.0,
        )];
        for l in 0..self.layers {
            let p = format!("model.layers.{l}");
            shapes.extend([
                (
                    format!("{p}.self_attn.q_proj.weight"),
                    vec![self.heads * hd, self.hidden],
                    0.0,
                ),
                (
                    format!("{p}.self_attn.k_proj.weight"),
                    vec![self.kv_heads * hd, self.hidden],
                    0.0,
                ),
                (
                    format!("{p}.self_attn.v_proj.weight"),
                    vec![self.kv_heads * hd, self.hidden],
                    0.0,
                ),
                (
                    format!("{p}.self_attn.o_proj.weight"),
                    vec![self.hidden, self.heads * hd],
                    0.0,
                ),
                (
                    format!("{p}.mlp.gate_proj.weight"),
                    vec![self.intermediate, self.hidden],
                    0.0,
                ),
                (
                    format!("{p}.mlp.up_proj.weight"),
                    vec![self.intermediate, self.hidden],
                    0.0,
                ),
                (
                    format!("{p}.mlp.down_proj.weight"),
                    vec![self.hidden, self.intermediate],
                    0.0,
                ),
                (
                    format!("{p}.input_layernorm.weight"),
                    vec![self.hidden],
                    1.0,
                ),
                (
                    format!("{p}.post_attention_layernorm.weight"),
                    vec![self.hidden],
                    1.0,
                ),
            ]);
        }
        shapes.push(("model.norm.weight".into(), vec![self.hidden], 1.0));
        if !self.tied {
            shapes.push(("lm_head.weight".into(), vec![self.vocab, self.hidden], 0.0));
        }
        shapes
            .into_iter()
            .enumerate()
            .map(|(i, (name, dims, offset))| {
                let n = dims.iter().product();
                let scale = if offset == 0.0 { 0.3 } else { 0.2 };
                (
                    name,
                    Tensor::from_vec(
                        pseudo_random(n, i as u64, scale, offset),
                        dims,
                        &Device::Cpu,
                    )
                    .unwrap(),
                )
            })
            .collect()
    }

    pub fn config_json(&self) -> String {
        let rope = if self.rope_parameters {
            format!(
                r#""rope_parameters": {{"rope_theta": {}, "rope_type": "default"}}"#,
                self.rope_theta
            )
        } else {
            format!(r#""rope_theta": {}, "rope_scaling": null"#, self.rope_theta)
        };
        format!(
            r#"{{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                "hidden_size": {}, "intermediate_size": {}, "vocab_size": {}, "num_hidden_layers": {},
                "num_attention_heads": {}, "num_key_value_heads": {}, "rms_norm_eps": {},
                "max_position_embeddings": 64, "tie_word_embeddings": {}, {rope}}}"#,
            self.hidden,
            self.intermediate,
            self.vocab,
            self.layers,
            self.heads,
            self.kv_heads,
            self.rms_norm_eps,
            self.tied
        )
    }

    pub fn write(&self, dir: &Path) {
        candle_core::safetensors::save(&self.tensors(), dir.join("model.safetensors")).unwrap();
        std::fs::write(dir.join("config.json"), self.config_json()).unwrap();
    }
}

/// The shapes whose logits are compared with candle-transformers'.
pub fn logit_cases() -> Vec<Checkpoint> {
    vec![
        // GQA, transformers 5 config layout.
        Checkpoint {
            hidden: 32,
            intermediate: 64,
            vocab: 50,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            tied: false,
            rope_parameters: true,
        },
        // Multi-head, large rope_theta, tied embeddings without lm_head.weight.
        Checkpoint {
            hidden: 48,
            intermediate: 80,
            vocab: 37,
            layers: 1,
            heads: 3,
            kv_heads: 3,
            rope_theta: 500_000.0,
            rms_norm_eps: 1e-6,
            tied: true,
            rope_parameters: false,
        },
        // Multi-query attention, 3 layers.
        Checkpoint {
            hidden: 64,
            intermediate: 96,
            vocab: 70,
            layers: 3,
            heads: 8,
            kv_heads: 1,
            rope_theta: 1_000.0,
            rms_norm_eps: 1e-5,
            tied: false,
            rope_parameters: false,
        },
    ]
}

/// The tokens fed to each of `logit_cases`.
pub fn logit_case_ids() -> Vec<u32> {
    (0..20u32).map(|i| (i * 11 + 3) % 37).collect()
}

/// The tokens fed to the shared tiny-llama checkpoint.
pub fn tiny_llama_ids() -> Vec<u32> {
    (0..32u32).map(|i| (7 + 3 * i) % 64).collect()
}
