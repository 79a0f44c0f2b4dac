//! Writing what Hugging Face tools load: a transformers checkpoint folder
//! (`config.json` + `model.safetensors`, transformers' names for the
//! checkpoint's family: Llama, Mistral or Qwen2) and a
//! PEFT LoRA adapter folder (`adapter_config.json` +
//! `adapter_model.safetensors`, PEFT's key names).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde_json::{Value, json};

use super::llama_config::{Family, LlamaShape};
use super::lora::LoraSpec;
use crate::train::error::{Result, TrainError};

/// PEFT saves adapter weights under the wrapped model's names with this
/// prefix and without the adapter's name (`default`).
pub const PEFT_PREFIX: &str = "base_model.model.";

/// The `config.json` transformers builds this shape from.
pub fn config_json(shape: &LlamaShape) -> Value {
    let rope_scaling = shape.rope_scaling.as_ref().map_or(Value::Null, |r| {
        json!({
            "rope_type": "llama3",
            "factor": r.factor,
            "low_freq_factor": r.low_freq_factor,
            "high_freq_factor": r.high_freq_factor,
            "original_max_position_embeddings": r.original_max_position_embeddings,
        })
    });
    let mut config = json!({
        "architectures": [shape.family.architecture()],
        "model_type": shape.family.model_type(),
        "vocab_size": shape.vocab,
        "hidden_size": shape.dim,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": shape.max_positions,
        "rms_norm_eps": shape.rms_norm_eps,
        "rope_theta": shape.rope_theta,
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": shape.tie_embeddings,
        "attention_bias": shape.attention_bias,
        "mlp_bias": false,
        "torch_dtype": "float32",
    });
    match shape.family {
        Family::Mistral => config["sliding_window"] = json!(shape.sliding_window),
        Family::Qwen2 => config["use_sliding_window"] = json!(false),
        Family::Llama => {}
    }
    config
}

/// transformers 4's `save_pretrained` default, `max_shard_size="5GB"`.
pub const DEFAULT_SHARD_BYTES: u64 = 5_000_000_000;

fn tensor_bytes(t: &Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}

/// `dir/config.json` and the weights (the folder is made): one
/// `model.safetensors`, or when they pass `max_shard` bytes, shards
/// `model-0000K-of-0000N.safetensors` (in name order, as many tensors as
/// fit, a larger one alone) with `model.safetensors.index.json`, as
/// transformers writes them.
pub fn write_checkpoint(
    dir: &Path,
    shape: &LlamaShape,
    weights: Vec<(String, Tensor)>,
    max_shard: u64,
) -> Result<()> {
    let config = serde_json::to_string_pretty(&config_json(shape)).unwrap_or_default();
    let total: u64 = weights.iter().map(|(_, t)| tensor_bytes(t)).sum();
    if total <= max_shard {
        return write_folder(dir, ("config.json", config), "model.safetensors", weights);
    }
    prepare_folder(dir)?;
    let mut weights = weights;
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    let mut shards: Vec<Vec<(String, Tensor)>> = Vec::new();
    let mut size = 0;
    for (name, tensor) in weights {
        let bytes = tensor_bytes(&tensor);
        if shards.is_empty() || (size > 0 && size + bytes > max_shard) {
            shards.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(last) = shards.last_mut() {
            last.push((name, tensor));
        }
    }
    // A single file left from an earlier save would be read instead.
    let single = dir.join("model.safetensors");
    if single.is_file() {
        std::fs::remove_file(&single).map_err(|e| TrainError::io(&single, e))?;
    }
    remove_old_shards(dir)?;
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    for (i, shard) in shards.into_iter().enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
        for (name, _) in &shard {
            weight_map.insert(name.clone(), Value::String(file.clone()));
        }
        write_safetensors(&dir.join(&file), shard)?;
    }
    let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    let index_path = dir.join("model.safetensors.index.json");
    let text = serde_json::to_string_pretty(&index).unwrap_or_default();
    crate::write_file::write_whole(&index_path, text.as_bytes())
        .map_err(|e| TrainError::io(&index_path, e))?;
    let config_path = dir.join("config.json");
    crate::write_file::write_whole(&config_path, config.as_bytes())
        .map_err(|e| TrainError::io(&config_path, e))
}

/// The adapter weights of a LoRA model by lrtop's names (those of
/// transformers plus `.lora_A.weight` / `.lora_B.weight`): PEFT's folder.
/// `base` is the checkpoint the adapter was trained on, when there was one.
pub fn write_adapter(
    dir: &Path,
    spec: &LoraSpec,
    base: Option<&Path>,
    adapters: Vec<(String, Tensor)>,
) -> Result<()> {
    let weights = adapters
        .into_iter()
        .map(|(name, t)| (format!("{PEFT_PREFIX}{name}"), t))
        .collect();
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base.map(|b| b.display().to_string()),
        "r": spec.rank,
        "lora_alpha": spec.alpha,
        "lora_dropout": spec.dropout,
        "target_modules": spec.targets,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "modules_to_save": null,
        "use_rslora": false,
        "use_dora": false,
        "revision": null,
    });
    let config = serde_json::to_string_pretty(&config).unwrap_or_default();
    write_folder(
        dir,
        ("adapter_config.json", config),
        "adapter_model.safetensors",
        weights,
    )
}

/// `model-0000K-of-0000N.safetensors` files of an earlier sharded save.
fn remove_old_shards(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let shard = name
            .strip_prefix("model-")
            .and_then(|rest| rest.strip_suffix(".safetensors"))
            .and_then(|rest| rest.split_once("-of-"))
            .is_some_and(|(k, n)| {
                k.len() == 5
                    && n.len() == 5
                    && k.bytes().all(|b| b.is_ascii_digit())
                    && n.bytes().all(|b| b.is_ascii_digit())
            });
        if shard {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| TrainError::io(&path, e))?;
        }
    }
    Ok(())
}

fn prepare_folder(dir: &Path) -> Result<()> {
    if dir.is_file() {
        return Err(TrainError::file(dir, "is a file; name a folder"));
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))
}

fn write_safetensors(path: &Path, weights: Vec<(String, Tensor)>) -> Result<()> {
    let values: HashMap<String, Tensor> = weights.into_iter().collect();
    // transformers reads the format from the metadata ("pt": PyTorch tensors).
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    let bytes = safetensors::serialize(&values, metadata)
        .map_err(|e| TrainError::file(path, format!("cannot write safetensors: {e}")))?;
    crate::write_file::write_whole(path, &bytes).map_err(|e| TrainError::io(path, e))
}

fn write_folder(
    dir: &Path,
    (config_name, config): (&str, String),
    weights_name: &str,
    weights: Vec<(String, Tensor)>,
) -> Result<()> {
    prepare_folder(dir)?;
    let weights_path = dir.join(weights_name);
    // A sharded index left from an earlier save would name stale shards.
    let index = dir.join("model.safetensors.index.json");
    if weights_name == "model.safetensors" && index.is_file() {
        std::fs::remove_file(&index).map_err(|e| TrainError::io(&index, e))?;
        remove_old_shards(dir)?;
    }
    write_safetensors(&weights_path, weights)?;
    let config_path = dir.join(config_name);
    crate::write_file::write_whole(&config_path, config.as_bytes())
        .map_err(|e| TrainError::io(&config_path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::models::RopeScaling;

    #[test]
    fn the_config_written_reads_back_as_the_same_shape() {
        let mut shape = LlamaShape {
            vocab: 96,
            dim: 32,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 8,
            intermediate: 64,
            rope_theta: 500_000.0,
            rope_scaling: None,
            rms_norm_eps: 1e-5,
            tie_embeddings: true,
            max_positions: 128,
            family: Family::Llama,
            attention_bias: false,
            sliding_window: None,
        };
        for scaling in [
            None,
            Some(RopeScaling {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 64,
            }),
        ] {
            shape.rope_scaling = scaling;
            let text = config_json(&shape).to_string();
            let back = super::super::llama_config::parse_config(&text).unwrap();
            assert_eq!(back, shape, "{text}");
        }
    }
}
