//! Runs candle-transformers' Llama on lrtop's Llama test checkpoints and
//! writes the logits at every position to
//! `tests/fixtures/llama-reference-logits.json`, which
//! `tests/it/train_llama.rs` compares lrtop's own Llama with. A separate
//! crate so that lrtop (and its tests) need not build candle-transformers.
//!
//! ```sh
//! cargo run --release --manifest-path tools/llama-reference/Cargo.toml
//! ```

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama as ct;
use serde_json::json;

#[path = "../../../tests/it/llama_checkpoints.rs"]
#[allow(dead_code)]
mod llama_checkpoints;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Logits of the last position of each prefix of `ids` (candle-transformers'
/// forward returns the last position only): one row per position.
fn logits(dir: &Path, ids: &[u32], rope_theta: f64) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let config: ct::LlamaConfig = serde_json::from_str(&text).expect("a Llama config");
    let mut config = config.into_config(false);
    // It does not read transformers 5's rope_parameters.
    config.rope_theta = rope_theta as f32;
    let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)
        .expect("model.safetensors");
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let model = ct::Llama::load(vb, &config).expect("the checkpoint loads");
    let input = Tensor::from_slice(ids, (1, ids.len()), &Device::Cpu).unwrap();
    (1..=ids.len())
        .map(|t| {
            let mut cache = ct::Cache::new(false, DType::F32, &config, &Device::Cpu).unwrap();
            model
                .forward(&input.narrow(1, 0, t).unwrap(), 0, &mut cache)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        })
        .collect()
}

fn main() {
    let ids = llama_checkpoints::logit_case_ids();
    let cases: Vec<_> = llama_checkpoints::logit_cases()
        .iter()
        .map(|case| {
            let dir = tempfile::tempdir().unwrap();
            case.write(dir.path());
            json!({ "logits": logits(dir.path(), &ids, case.rope_theta) })
        })
        .collect();
    let tiny: PathBuf = Path::new(ROOT).join("tests/fixtures/reference-models/tiny-llama");
    let tiny_ids = llama_checkpoints::tiny_llama_ids();
    let out = json!({
        "generator": "tools/llama-reference (candle-transformers 0.11 models::llama, f32, CPU)",
        "cases": cases,
        "tiny_llama": { "logits": logits(&tiny, &tiny_ids, 10_000.0) },
    });
    let path = Path::new(ROOT).join("tests/fixtures/llama-reference-logits.json");
    std::fs::write(&path, format!("{out}\n")).expect("writing the fixture");
    eprintln!("wrote {}", path.display());
}
