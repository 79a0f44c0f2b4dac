//! Reading a Hugging Face Llama checkpoint: `config.json` (the fields of
//! transformers 4 and 5, including `rope_parameters` and `head_dim`) and the
//! weights in `model.safetensors` or a sharded `model.safetensors.index.json`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Deserialize;

use super::params::Checkpoint;
use crate::train::error::{Result, TrainError};

/// Llama 3's frequency-dependent RoPE scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// The Llama-family architectures lrtop trains (transformers' `model_type`):
/// one decoder, told apart by biases and the attention window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Llama,
    /// Llama's layout with a sliding attention window.
    Mistral,
    /// Biases on the q, k and v projections.
    Qwen2,
}

impl Family {
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
        }
    }

    pub fn architecture(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
        }
    }
}

/// Everything the trainable Llama needs to know about its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaShape {
    pub vocab: usize,
    pub dim: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub rms_norm_eps: f64,
    pub tie_embeddings: bool,
    pub max_positions: usize,
    pub family: Family,
    /// Llama's `attention_bias`: biases on q, k, v and o.
    pub attention_bias: bool,
    /// Mistral's window: a token attends to itself and the `w - 1` before it.
    pub sliding_window: Option<usize>,
}

impl LlamaShape {
    /// Whether q, k and v have biases (Qwen2 always; Llama with attention_bias).
    pub fn qkv_bias(&self) -> bool {
        self.family == Family::Qwen2 || self.attention_bias
    }

    pub fn o_bias(&self) -> bool {
        self.attention_bias
    }
}

/// The fields of `config.json` that give the model's shape, with the
/// defaults transformers (and candle-transformers' `LlamaConfig`) use.
#[derive(Debug, Deserialize)]
struct LlamaConfig {
    hidden_size: usize,
    intermediate_size: usize,
    vocab_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f32,
    max_position_embeddings: usize,
    tie_word_embeddings: Option<bool>,
}

impl LlamaConfig {
    fn num_key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
}

fn default_rope_theta() -> f32 {
    10_000.0
}

/// Llama 3's `rope_scaling` / `rope_parameters` block.
#[derive(Debug, Deserialize)]
struct Llama3RopeConfig {
    factor: f32,
    low_freq_factor: f32,
    high_freq_factor: f32,
    original_max_position_embeddings: usize,
}

/// The fields read before the shape, to pick the RoPE variant and refuse
/// architectures this model is not.
#[derive(Debug, Deserialize)]
struct Extras {
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rope_parameters: Option<serde_json::Value>,
    rope_scaling: Option<serde_json::Value>,
    hidden_act: Option<String>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    model_type: Option<String>,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
}

/// Parses `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<LlamaShape> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    parse_config(&text).map_err(|message| TrainError::file(&path, message))
}

/// The shape described by a `config.json` text.
pub fn parse_config(text: &str) -> std::result::Result<LlamaShape, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let extras: Extras = serde_json::from_value(value.clone()).map_err(|e| format!("{e}"))?;
    if let Some(act) = &extras.hidden_act
        && act != "silu"
    {
        return Err(format!(
            "hidden_act '{act}' is not supported (Llama uses silu)"
        ));
    }
    if extras.mlp_bias == Some(true) {
        return Err("mlp_bias is not supported (the Llama family's MLP has no biases)".into());
    }
    let family = match extras.model_type.as_deref() {
        None | Some("llama") => Family::Llama,
        Some("mistral") => Family::Mistral,
        Some("qwen2") => Family::Qwen2,
        Some(other) => {
            return Err(format!(
                "model_type '{other}' is not supported (llama, mistral and qwen2 are)"
            ));
        }
    };
    // Qwen2 reads sliding_window only with use_sliding_window, and then
    // for some layers only: not supported.
    if family == Family::Qwen2 && extras.use_sliding_window == Some(true) {
        return Err("qwen2 with use_sliding_window is not supported".into());
    }
    let sliding_window = match family {
        Family::Mistral => extras.sliding_window.filter(|&w| w > 0),
        _ => None,
    };
    // Llama 3 scaling may sit in rope_scaling (transformers 4) or rope_parameters (5).
    let scaling_source = match (&extras.rope_scaling, &extras.rope_parameters) {
        (Some(s), _) if !s.is_null() => Some(s.clone()),
        (_, Some(p)) => Some(p.clone()),
        _ => None,
    };
    let rope_scaling = match &scaling_source {
        Some(s) => parse_scaling(s)?,
        None => None,
    };
    // rope_scaling was read above, in either form.
    if let Some(obj) = value.as_object_mut() {
        obj.remove("rope_scaling");
    }
    let config: LlamaConfig = serde_json::from_value(value).map_err(|e| format!("{e}"))?;
    let rope_theta = extras
        .rope_theta
        .or_else(|| {
            extras
                .rope_parameters
                .as_ref()
                .and_then(|p| p.get("rope_theta"))
                .and_then(|t| t.as_f64())
        })
        .unwrap_or(f64::from(config.rope_theta));
    let heads = config.num_attention_heads;
    let kv_heads = config.num_key_value_heads();
    if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
        return Err(format!(
            "num_attention_heads {heads} must be a positive multiple of num_key_value_heads {kv_heads}"
        ));
    }
    let head_dim = match extras.head_dim {
        Some(d) => d,
        None if config.hidden_size.is_multiple_of(heads) => config.hidden_size / heads,
        None => {
            return Err(format!(
                "hidden_size {} is not divisible by {heads} heads",
                config.hidden_size
            ));
        }
    };
    if head_dim == 0 || !head_dim.is_multiple_of(2) {
        return Err(format!(
            "head_dim {head_dim} must be even and positive (RoPE rotates pairs)"
        ));
    }
    Ok(LlamaShape {
        vocab: config.vocab_size,
        dim: config.hidden_size,
        layers: config.num_hidden_layers,
        heads,
        kv_heads,
        head_dim,
        intermediate: config.intermediate_size,
        rope_theta,
        rope_scaling,
        rms_norm_eps: config.rms_norm_eps,
        tie_embeddings: config.tie_word_embeddings.unwrap_or(false),
        max_positions: config.max_position_embeddings,
        family,
        attention_bias: extras.attention_bias.unwrap_or(false) && family != Family::Qwen2,
        sliding_window,
    })
}

fn parse_scaling(value: &serde_json::Value) -> std::result::Result<Option<RopeScaling>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let kind = value
        .get("rope_type")
        .or_else(|| value.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    match kind {
        "default" => Ok(None),
        "llama3" => {
            let cfg: Llama3RopeConfig =
                serde_json::from_value(value.clone()).map_err(|e| format!("rope scaling: {e}"))?;
            Ok(Some(RopeScaling {
                factor: f64::from(cfg.factor),
                low_freq_factor: f64::from(cfg.low_freq_factor),
                high_freq_factor: f64::from(cfg.high_freq_factor),
                original_max_position_embeddings: cfg.original_max_position_embeddings,
            }))
        }
        other => Err(format!(
            "rope type '{other}' is not supported (default and llama3 are)"
        )),
    }
}

/// The checkpoint's tensors, from `model.safetensors` or the shards listed in
/// `model.safetensors.index.json`.
pub fn read_weights(dir: &Path) -> Result<Checkpoint> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let mut tensors = HashMap::new();
    let origin;
    if single.is_file() {
        tensors = load_file(&single)?;
        origin = single.display().to_string();
    } else if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| TrainError::io(&index, e))?;
        let parsed: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TrainError::file(&index, format!("not valid JSON: {e}")))?;
        let map = parsed
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| TrainError::file(&index, "no weight_map object"))?;
        let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
        shards.sort_unstable();
        shards.dedup();
        for shard in shards {
            // A shard is a file of the checkpoint folder: no `..`, no
            // absolute path, no subfolder walk out of it.
            let plain = std::path::Path::new(shard)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || shard.is_empty() {
                return Err(TrainError::file(
                    &index,
                    format!(
                        "weight_map names '{shard}', which is not a file in the checkpoint folder"
                    ),
                ));
            }
            tensors.extend(load_file(&dir.join(shard))?);
        }
        origin = index.display().to_string();
    } else {
        return Err(TrainError::file(
            single,
            "missing (and no model.safetensors.index.json for a sharded checkpoint)",
        ));
    }
    Ok(Checkpoint { origin, tensors })
}

fn load_file(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| TrainError::file(path, format!("not a readable safetensors file: {e}")))
}
