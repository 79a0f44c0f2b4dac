//! The trainable Llama against references: transformers' validation loss
//! for the shared tiny checkpoint, candle-transformers' own Llama inference
//! on the same weights (several shapes, GQA, tied embeddings, rope_theta;
//! its logits recorded by `tools/llama-reference`), config parsing,
//! checkpoint errors, fine-tuning and sampling.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::llama_checkpoints::{Checkpoint, logit_case_ids, logit_cases, tiny_llama_ids};
use candle_core::{DType, Device, Tensor};
use lrtop::train::models::llama_config::parse_config;
use lrtop::train::models::{LlamaSpec, LoraSpec, Model, ModelSpec};
use lrtop::train::{
    DataKind, DeviceSpec, Learner, LearnerConfig, OptimizerKind, Precision, SampleOptions, TaskSpec,
};

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference-models");
/// transformers 5.24's mean cross-entropy of tiny-llama on progressions/val.bin (seq-len 32).
const REFERENCE_EVAL_LOSS: f64 = 0.065498;

/// Copies of the shared checkpoint and data, for checkouts without `../shared`.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference-models"
);

fn reference() -> Option<PathBuf> {
    [REFERENCE, FIXTURE]
        .into_iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("tiny-llama/model.safetensors").is_file())
}

fn reference_learner(dir: &Path, optimizer: OptimizerKind) -> Learner {
    reference_learner_with(dir, LlamaSpec::default(), optimizer)
}

/// The shared tiny checkpoint on its progressions, batch 16, seq-len 32.
fn reference_learner_with(dir: &Path, model: LlamaSpec, optimizer: OptimizerKind) -> Learner {
    let cfg = LearnerConfig {
        task: TaskSpec::Tokens {
            dir: dir.join("progressions"),
            vocab: None,
            dtype: None,
        },
        model: ModelSpec::Llama(model),
        init: Some(dir.join("tiny-llama")),
        optimizer,
        seq_len: 32,
        batch_size: 16,
        device: DeviceSpec::Cpu,
        ..LearnerConfig::default()
    };
    Learner::new(&cfg).unwrap()
}

#[test]
fn reference_checkpoint_eval_loss_matches_transformers() {
    let dir = reference().expect("the reference checkpoint is in tests/fixtures/reference-models");
    let mut learner = reference_learner(&dir, OptimizerKind::AdamW);
    let info = learner.info();
    assert_eq!(info.vocab, Some(64));
    assert_eq!(info.test_size, 200);
    let eval = learner.evaluate().unwrap();
    let rel = (eval.loss - REFERENCE_EVAL_LOSS).abs() / REFERENCE_EVAL_LOSS;
    println!(
        "reference eval_loss {:.6} (transformers {REFERENCE_EVAL_LOSS}), relative error {rel:.2e}",
        eval.loss
    );
    assert!(
        rel < 1e-3,
        "eval_loss {} vs {REFERENCE_EVAL_LOSS}",
        eval.loss
    );
    assert_eq!(eval.count, 200 * 31);
    assert_eq!(
        learner.model_spec().to_string(),
        "llama(dim=64,layers=2,heads=4,kv_heads=2,intermediate=128,rope_theta=10000,rms_norm_eps=0.00001,tied=false)"
    );

    // Fine-tuning: a few AdamW steps at a small LR keep it good, and train.
    let before = learner.train_step(1e-4).unwrap().loss;
    assert!(before < 0.5, "train loss {before}");
    for _ in 0..5 {
        learner.train_step(1e-4).unwrap();
    }
    assert!(learner.evaluate().unwrap().loss < 0.1);
}

#[test]
fn reference_checkpoint_greedy_continues_a_progression() {
    let dir = reference().expect("the reference checkpoint is in tests/fixtures/reference-models");
    let learner = reference_learner(&dir, OptimizerKind::Sgd);
    let prompt = [10u32, 13, 16, 19, 22, 25];
    let greedy = learner.sample_text(&prompt, 5, 0.0, 0).unwrap();
    assert_eq!(greedy, vec![28, 31, 34, 37, 40]);
    let options = SampleOptions {
        temperature: 1.0,
        top_p: Some(0.9),
        seed: 3,
    };
    let a = learner.sample_text_with(&prompt, 8, &options).unwrap();
    let b = learner.sample_text_with(&prompt, 8, &options).unwrap();
    assert_eq!(a, b, "seeded");
    assert!(a.iter().all(|&t| t < 64));
    assert!(learner.sample_text(&[], 3, 1.0, 0).is_err());
    assert!(learner.sample_text(&[64], 3, 1.0, 0).is_err());
}

fn tokens_kind(vocab: usize, seq_len: usize) -> DataKind {
    DataKind::LanguageModel { vocab, seq_len }
}

/// candle-transformers' logits for the checkpoints of `llama_checkpoints`,
/// recorded by `tools/llama-reference` (lrtop does not build
/// candle-transformers: it took 2.5 minutes of a fresh test build).
const REFERENCE_LOGITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/llama-reference-logits.json"
);

fn reference_logits() -> serde_json::Value {
    let text = std::fs::read_to_string(REFERENCE_LOGITS).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Largest |difference| between lrtop's logits for `ids` and the recorded
/// rows of candle-transformers' (one per position).
fn max_logit_difference(dir: &Path, ids: &[u32], want: &serde_json::Value) -> f64 {
    let want = want.as_array().unwrap();
    assert_eq!(want.len(), ids.len(), "one recorded row per position");
    let len = ids.len();
    let vocab = want[0].as_array().unwrap().len();
    let ours = Model::build(
        &ModelSpec::Llama(LlamaSpec::default()),
        &tokens_kind(vocab, len),
        Some(dir),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let input = Tensor::from_slice(ids, (1, len), &Device::Cpu).unwrap();
    let logits: Vec<Vec<f32>> = ours
        .forward(&input, false)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    let mut worst = 0f64;
    for (got, want) in logits.iter().zip(want) {
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "vocabulary size");
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((f64::from(*g) - w.as_f64().unwrap()).abs());
        }
    }
    worst
}

#[test]
fn logits_equal_candle_transformers() {
    let reference = reference_logits();
    let cases = logit_cases();
    let recorded = reference["cases"].as_array().unwrap();
    assert_eq!(recorded.len(), cases.len(), "rerun tools/llama-reference");
    let ids = logit_case_ids();
    for (i, (case, want)) in cases.iter().zip(recorded).enumerate() {
        let dir = tempfile::tempdir().unwrap();
        case.write(dir.path());
        let diff = max_logit_difference(dir.path(), &ids, &want["logits"]);
        println!("case {i}: max |logit difference| = {diff:.2e}");
        assert!(diff < 1e-4, "case {i}: {diff}");
    }
    let dir = Path::new(FIXTURE).join("tiny-llama");
    let diff = max_logit_difference(&dir, &tiny_llama_ids(), &reference["tiny_llama"]["logits"]);
    println!("tiny-llama: max |logit difference| = {diff:.2e}");
    assert!(diff < 1e-4, "tiny-llama: {diff}");
}

#[test]
fn sharded_checkpoints_load() {
    let case = Checkpoint {
        hidden: 32,
        intermediate: 64,
        vocab: 40,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        tied: false,
        rope_parameters: true,
    };
    let single = tempfile::tempdir().unwrap();
    case.write(single.path());
    let sharded = tempfile::tempdir().unwrap();
    std::fs::write(sharded.path().join("config.json"), case.config_json()).unwrap();
    let (a, b): (Vec<_>, Vec<_>) = case
        .tensors()
        .into_iter()
        .partition(|(n, _)| n.contains("layers.0") || n.contains("embed"));
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        for (name, _) in &part {
            map.insert(name.clone(), file.into());
        }
        candle_core::safetensors::save(
            &part.into_iter().collect::<HashMap<_, _>>(),
            sharded.path().join(file),
        )
        .unwrap();
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": map });
    std::fs::write(
        sharded.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let ids = Tensor::from_slice(&[1u32, 5, 9, 2], (1, 4), &Device::Cpu).unwrap();
    let logits = |dir: &Path| -> Vec<f32> {
        let m = Model::build(
            &ModelSpec::Llama(LlamaSpec::default()),
            &tokens_kind(40, 4),
            Some(dir),
            0,
            &Device::Cpu,
        )
        .unwrap();
        m.forward(&ids, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_eq!(logits(single.path()), logits(sharded.path()));
}

#[test]
fn configs_from_both_transformers_versions() {
    let base = r#""hidden_size": 64, "intermediate_size": 128, "vocab_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "max_position_embeddings": 64"#;
    let v5 = parse_config(&format!(
        r#"{{{base}, "rope_parameters": {{"rope_theta": 250000.0, "rope_type": "default"}}}}"#
    ))
    .unwrap();
    assert_eq!(
        (
            v5.rope_theta,
            v5.rope_scaling.clone(),
            v5.head_dim,
            v5.tie_embeddings
        ),
        (250_000.0, None, 16, false)
    );
    assert_eq!(v5.rms_norm_eps, 1e-6);
    let v4 = parse_config(&format!(
        r#"{{{base}, "rope_theta": 500000.0, "rope_scaling": null, "tie_word_embeddings": true}}"#
    ))
    .unwrap();
    assert_eq!((v4.rope_theta, v4.tie_embeddings), (500_000.0, true));
    let default_theta = parse_config(&format!("{{{base}}}")).unwrap();
    assert_eq!(default_theta.rope_theta, 10_000.0);
    let head_dim = parse_config(&format!(r#"{{{base}, "head_dim": 32}}"#)).unwrap();
    assert_eq!(head_dim.head_dim, 32);
    let llama3 = parse_config(&format!(
        r#"{{{base}, "rope_theta": 500000.0, "rope_scaling": {{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}}}"#
    ))
    .unwrap();
    assert_eq!(llama3.rope_scaling.map(|s| s.factor), Some(8.0));
    let in_parameters = parse_config(&format!(
        r#"{{{base}, "rope_parameters": {{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}}}"#
    ))
    .unwrap();
    assert_eq!(
        (
            in_parameters.rope_theta,
            in_parameters.rope_scaling.map(|s| s.factor)
        ),
        (500_000.0, Some(32.0))
    );

    for (extra, message) in [
        (
            r#", "rope_scaling": {"type": "linear", "factor": 2.0}"#,
            "rope type 'linear' is not supported",
        ),
        (
            r#", "hidden_act": "gelu""#,
            "hidden_act 'gelu' is not supported",
        ),
        (r#", "mlp_bias": true"#, "mlp_bias is not supported"),
        (
            r#", "model_type": "gemma""#,
            "model_type 'gemma' is not supported",
        ),
        (
            r#", "model_type": "qwen2", "use_sliding_window": true"#,
            "use_sliding_window is not supported",
        ),
        (
            r#", "num_key_value_heads": 3"#,
            "multiple of num_key_value_heads 3",
        ),
    ] {
        let text = format!(
            "{{{}{extra}}}",
            base.replace(
                r#", "num_key_value_heads": 2"#,
                if extra.contains("num_key") {
                    ""
                } else {
                    r#", "num_key_value_heads": 2"#
                }
            )
        );
        let err = parse_config(&text).unwrap_err();
        assert!(err.contains(message), "{extra}: {err}");
    }
    assert!(
        parse_config(r#"{"hidden_size": 64}"#)
            .unwrap_err()
            .contains("missing field")
    );
    assert!(
        parse_config("not json")
            .unwrap_err()
            .contains("not valid JSON")
    );
}

#[test]
fn checkpoint_errors_are_clear() {
    let case = Checkpoint {
        hidden: 32,
        intermediate: 64,
        vocab: 40,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        tied: false,
        rope_parameters: true,
    };
    let build = |dir: &Path, vocab: usize| {
        Model::build(
            &ModelSpec::Llama(LlamaSpec::default()),
            &tokens_kind(vocab, 8),
            Some(dir),
            0,
            &Device::Cpu,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let err = build(dir.path(), 40);
    assert!(err.contains("config.json"), "{err}");
    case.write(dir.path());
    let err = build(dir.path(), 41);
    assert!(
        err.contains("token ids up to 40 but the checkpoint's vocab_size is 40"),
        "{err}"
    );
    let mut tensors = case.tensors();
    tensors.remove("lm_head.weight");
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = build(dir.path(), 40);
    assert!(
        err.contains("model.safetensors: missing tensor 'lm_head.weight'"),
        "{err}"
    );
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    let err = build(dir.path(), 40);
    assert!(
        err.contains("model.safetensors: not a readable safetensors file"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = build(dir.path(), 40);
    assert!(err.contains("model.safetensors: missing"), "{err}");
    // A sharded index may only name files of the checkpoint folder.
    for shard in ["../../etc/passwd", "/etc/passwd", "sub/../../x"] {
        let index = serde_json::json!({ "weight_map": { "model.norm.weight": shard } });
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
        let err = build(dir.path(), 40);
        assert!(
            err.contains("not a file in the checkpoint folder"),
            "{shard}: {err}"
        );
    }
    std::fs::remove_file(dir.path().join("model.safetensors.index.json")).unwrap();
    let mut wrong = case.tensors();
    wrong.insert(
        "model.norm.weight".into(),
        Tensor::ones(7, DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&wrong, dir.path().join("model.safetensors")).unwrap();
    let err = build(dir.path(), 40);
    assert!(
        err.contains("'model.norm.weight' has shape [7], expected [32]"),
        "{err}"
    );
    let err = Model::build(
        &ModelSpec::LeNet5,
        &DataKind::Classification {
            input_shape: [1, 8, 8],
            classes: 10,
        },
        Some(dir.path()),
        0,
        &Device::Cpu,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--init loads Hugging Face Llama checkpoints"),
        "{err}"
    );
}

#[test]
fn loaded_checkpoint_trains_every_variable() {
    let case = Checkpoint {
        hidden: 32,
        intermediate: 64,
        vocab: 40,
        layers: 2,
        heads: 4,
        kv_heads: 1,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        tied: true,
        rope_parameters: true,
    };
    let dir = tempfile::tempdir().unwrap();
    case.write(dir.path());
    let model = Model::build(
        &ModelSpec::Llama(LlamaSpec::default()),
        &tokens_kind(40, 8),
        Some(dir.path()),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let ids = Tensor::from_vec((0..16u32).collect::<Vec<_>>(), (2, 8), &Device::Cpu).unwrap();
    let targets = Tensor::from_vec(
        (1..17u32).map(|t| t % 40).collect::<Vec<_>>(),
        (2, 8),
        &Device::Cpu,
    )
    .unwrap();
    let logits = model
        .forward(&ids, true)
        .unwrap()
        .reshape((16, 40))
        .unwrap();
    let grads = candle_nn::loss::cross_entropy(&logits, &targets.reshape(16).unwrap())
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        model.params().params().len(),
        20,
        "tied: no separate lm_head"
    );
    for (name, var) in model.params().params() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert!(
            g.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0,
            "{name}"
        );
    }
}

/// Checkpoints of other shapes made by transformers itself (GQA, MQA, tied
/// embeddings, head_dim, rope_theta, Llama 3 RoPE scaling) against the loss
/// transformers computes: `scripts/train_check_hf.py DIR`, then this with
/// `LRTOP_HF_CHECK_DIR=DIR` (needs Python with torch and transformers).
#[test]
#[ignore = "needs checkpoints from scripts/train_check_hf.py (LRTOP_HF_CHECK_DIR)"]
fn hf_checkpoints_match_transformers() {
    let Ok(dir) = std::env::var("LRTOP_HF_CHECK_DIR") else {
        eprintln!("note: set LRTOP_HF_CHECK_DIR (see scripts/train_check_hf.py)");
        return;
    };
    let dir = PathBuf::from(dir);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let seq_len = expected["seq_len"].as_u64().unwrap() as usize;
    let losses = expected["losses"].as_object().unwrap();
    assert!(!losses.is_empty());
    for (name, want) in losses {
        let want = want.as_f64().unwrap();
        let cfg = LearnerConfig {
            task: TaskSpec::Tokens {
                dir: dir.join("data"),
                vocab: None,
                dtype: None,
            },
            model: ModelSpec::Llama(LlamaSpec::default()),
            init: Some(dir.join(name)),
            seq_len,
            device: DeviceSpec::Cpu,
            ..LearnerConfig::default()
        };
        let got = Learner::new(&cfg).unwrap().evaluate().unwrap().loss;
        let rel = (got - want).abs() / want;
        println!("{name}: lrtop {got:.6}, transformers {want:.6}, relative error {rel:.1e}");
        assert!(rel < 1e-4, "{name}: {got} vs {want}");
    }
}

fn lora_learner(dir: &Path, lora: &str) -> Learner {
    let model = LlamaSpec {
        lora: Some(LoraSpec::parse(lora).unwrap()),
        ..LlamaSpec::default()
    };
    reference_learner_with(dir, model, OptimizerKind::AdamW)
}

#[test]
fn lora_trains_its_adapters_only_and_leaves_the_base_bit_identical() {
    let dir = reference().expect("the reference checkpoint is in tests/fixtures/reference-models");
    let mut learner = lora_learner(&dir, "r=4,alpha=8,targets=q_proj,v_proj,down_proj");
    // tiny-llama: dim 64, 2 layers, 4 heads of 16, 2 kv heads, intermediate 128.
    let per_layer = 4 * (64 + 64) + 4 * (64 + 32) + 4 * (128 + 64);
    let info = learner.info();
    assert_eq!(info.params, 2 * per_layer, "only the adapters train");
    let mut base = reference_learner(&dir, OptimizerKind::AdamW);
    assert_eq!(
        info.total_params,
        base.info().params + info.params,
        "the base is frozen"
    );
    assert!(
        info.model
            .ends_with(" + lora(r=4,alpha=8,targets=q_proj,v_proj,down_proj)")
    );
    let before: HashMap<String, Tensor> = learner.weights().unwrap().into_iter().collect();
    // B starts at zero: the adapted model is the base model.
    let base_loss = base.evaluate().unwrap().loss;
    assert_eq!(learner.evaluate().unwrap().loss, base_loss);
    for _ in 0..3 {
        learner.train_step(1e-3).unwrap();
    }
    let after: HashMap<String, Tensor> = learner.weights().unwrap().into_iter().collect();
    assert_eq!(before.len(), after.len());
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut adapters = 0;
    for (name, old) in &before {
        let (old, new) = (values(old), values(&after[name]));
        if name.contains(".lora_") {
            adapters += 1;
            assert_ne!(old, new, "{name} did not train");
        } else {
            // Bit for bit: compare the bits, so -0.0 and NaN count too.
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&old), bits(&new), "{name} changed");
        }
    }
    assert_eq!(adapters, 2 * 3 * 2, "A and B per target per layer");
    assert!(learner.evaluate().unwrap().loss.is_finite());
}

#[test]
fn merged_lora_weights_give_the_adapted_logits() {
    let case = &logit_cases()[0];
    let dir = tempfile::tempdir().unwrap();
    case.write(dir.path());
    let spec = LlamaSpec {
        lora: Some(LoraSpec::parse("r=2,alpha=4,targets=q_proj,k_proj,o_proj,up_proj").unwrap()),
        ..LlamaSpec::default()
    };
    let kind = tokens_kind(case.vocab, 12);
    let model = Model::build(
        &ModelSpec::Llama(spec),
        &kind,
        Some(dir.path()),
        3,
        &Device::Cpu,
    )
    .unwrap();
    // Give every B a non-zero value so that the adapters matter.
    let mut values: HashMap<String, Tensor> =
        model.params().values().unwrap().into_iter().collect();
    for (name, value) in values.iter_mut() {
        if name.ends_with("lora_B.weight") {
            *value = (value.ones_like().unwrap() * 0.05).unwrap();
        }
    }
    model.params().set_values(&values, "test").unwrap();
    let ids = Tensor::from_slice(
        &[1u32, 5, 9, 2, 7, 3, 3, 0, 11, 4, 8, 6],
        (1, 12),
        &Device::Cpu,
    )
    .unwrap();
    let logits = |m: &Model| -> Vec<f32> {
        m.forward(&ids, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let adapted = logits(&model);
    let plain_model = |dir: &Path| {
        Model::build(
            &ModelSpec::Llama(LlamaSpec::default()),
            &kind,
            Some(dir),
            3,
            &Device::Cpu,
        )
        .unwrap()
    };
    let base = plain_model(dir.path());
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    assert!(
        max_diff(&adapted, &logits(&base)) > 1e-3,
        "the adapters change the output"
    );
    let merged_dir = tempfile::tempdir().unwrap();
    let merged: HashMap<String, Tensor> = model
        .llama()
        .unwrap()
        .merged_weights()
        .unwrap()
        .into_iter()
        .collect();
    candle_core::safetensors::save(&merged, merged_dir.path().join("model.safetensors")).unwrap();
    std::fs::write(merged_dir.path().join("config.json"), case.config_json()).unwrap();
    let plain = plain_model(merged_dir.path());
    let diff = max_diff(&adapted, &logits(&plain));
    println!("merged vs adapted: max |logit difference| = {diff:.2e}");
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn lora_dropout_drops_in_training_only_and_repeats_from_its_seed() {
    let case = &logit_cases()[0];
    let dir = tempfile::tempdir().unwrap();
    case.write(dir.path());
    let kind = tokens_kind(case.vocab, 12);
    let build = |lora: &str| {
        let spec = LlamaSpec {
            lora: Some(LoraSpec::parse(lora).unwrap()),
            ..LlamaSpec::default()
        };
        let model = Model::build(
            &ModelSpec::Llama(spec),
            &kind,
            Some(dir.path()),
            3,
            &Device::Cpu,
        )
        .unwrap();
        // Non-zero B, so that what the adapters see matters.
        let mut values: HashMap<String, Tensor> =
            model.params().values().unwrap().into_iter().collect();
        for (name, value) in values.iter_mut() {
            if name.ends_with("lora_B.weight") {
                *value = (value.ones_like().unwrap() * 0.05).unwrap();
            }
        }
        model.params().set_values(&values, "test").unwrap();
        model
    };
    let ids = Tensor::from_slice(
        &[1u32, 5, 9, 2, 7, 3, 3, 0, 11, 4, 8, 6],
        (1, 12),
        &Device::Cpu,
    )
    .unwrap();
    let logits = |m: &Model, train: bool| -> Vec<f32> {
        m.forward(&ids, train)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let plain = build("r=2,alpha=4,targets=q_proj,v_proj");
    let dropped = build("r=2,alpha=4,dropout=0.5,targets=q_proj,v_proj");
    // The same initialisation, with or without dropout.
    let weights = |m: &Model| format!("{:?}", m.params().values().unwrap());
    assert_eq!(weights(&plain), weights(&dropped));
    // Evaluation sees the whole input; training drops half of it.
    assert_eq!(logits(&plain, false), logits(&dropped, false));
    assert_eq!(logits(&plain, true), logits(&plain, false));
    let first = logits(&dropped, true);
    assert_ne!(first, logits(&dropped, false));
    // A fresh mask per step, and the same masks from the same seed.
    let second = logits(&dropped, true);
    assert_ne!(first, second);
    let again = build("r=2,alpha=4,dropout=0.5,targets=q_proj,v_proj");
    assert_eq!(logits(&again, true), first);
    assert_eq!(logits(&again, true), second);
}

/// Checkpoints made by transformers itself (`scripts/make_variant_checkpoints.py`):
/// Qwen2 (q/k/v biases, tied embeddings, rope_theta 1e6) and Mistral (one
/// key/value head, a sliding window of 32 that the 40 tokens go past), and
/// a Llama with `attention_bias` (biases on q, k, v and o). lrtop's
/// logits equal transformers', and every variable gets a gradient.
#[test]
fn qwen2_and_mistral_checkpoints_match_transformers() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/variant-logits.json"
    ))
    .unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (name, params) in [
        ("qwen2", 2 + 2 * 12),
        ("mistral", 3 + 2 * 9),
        ("llama-bias", 3 + 13),
    ] {
        let dir = Path::new(FIXTURE).join(format!("tiny-{name}"));
        let ids: Vec<u32> = reference[name]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let diff = max_logit_difference(&dir, &ids, &reference[name]["logits"]);
        println!("{name}: max |logit difference| against transformers = {diff:.2e}");
        assert!(diff < 1e-4, "{name}: {diff}");

        let model = Model::build(
            &ModelSpec::Llama(LlamaSpec::default()),
            &tokens_kind(64, 40),
            Some(&dir),
            0,
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(model.params().params().len(), params, "{name}");
        let input = Tensor::from_slice(&ids, (1, 40), &Device::Cpu).unwrap();
        let targets: Vec<u32> = ids.iter().map(|t| (t + 1) % 64).collect();
        let targets = Tensor::from_slice(&targets, 40, &Device::Cpu).unwrap();
        let logits = model
            .forward(&input, true)
            .unwrap()
            .reshape((40, 64))
            .unwrap();
        let grads = candle_nn::loss::cross_entropy(&logits, &targets)
            .unwrap()
            .backward()
            .unwrap();
        for (var_name, var) in model.params().params() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name} {var_name}: no gradient"));
            let largest = g
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(largest > 0.0, "{name} {var_name}");
        }
    }
}

/// A randomly initialised Llama (loss near ln(vocab), where a relative
/// difference means something) on the progressions, in `precision`.
fn precision_learner(dir: &Path, precision: Precision, initial_loss_scale: f64) -> Learner {
    let cfg = LearnerConfig {
        task: TaskSpec::Tokens {
            dir: dir.join("progressions"),
            vocab: None,
            dtype: None,
        },
        model: ModelSpec::Llama(LlamaSpec {
            dim: 64,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            ..LlamaSpec::default()
        }),
        optimizer: OptimizerKind::AdamW,
        seq_len: 32,
        batch_size: 8,
        seed: 3,
        device: DeviceSpec::Cpu,
        precision,
        initial_loss_scale,
        ..LearnerConfig::default()
    };
    Learner::new(&cfg).unwrap()
}

fn losses(learner: &mut Learner, steps: usize) -> Vec<f64> {
    (0..steps)
        .map(|_| learner.train_step(3e-3).unwrap().loss)
        .collect()
}

#[test]
fn bf16_and_f16_follow_the_f32_run() {
    let dir = reference().expect("the reference checkpoint is in tests/fixtures/reference-models");
    let steps = 40;
    let mut full = precision_learner(&dir, Precision::F32, 65_536.0);
    let want = losses(&mut full, steps);
    let want_eval = full.evaluate().unwrap().loss;
    assert!(want[steps - 1] < 0.8 * want[0], "f32 learns: {want:?}");
    for precision in [Precision::Bf16, Precision::F16] {
        let mut learner = precision_learner(&dir, precision, 65_536.0);
        assert_eq!(learner.info().precision, precision);
        let got = losses(&mut learner, steps);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / w)
            .fold(0.0, f64::max);
        println!("{precision}: worst relative loss difference to f32 {worst:.2e}");
        for (step, (g, w)) in got.iter().zip(&want).enumerate() {
            let rel = (g - w).abs() / w;
            assert!(rel < 0.02, "{precision} step {}: {g} vs f32 {w}", step + 1);
        }
        let eval = learner.evaluate().unwrap().loss;
        let rel = (eval - want_eval).abs() / want_eval;
        assert!(rel < 0.02, "{precision} eval: {eval} vs f32 {want_eval}");
        // And not f32 under another name: the sums differ in their last bits.
        assert_ne!(got, want, "{precision} computed in f32");
    }
}

#[test]
fn f16_skips_an_overflowing_update_and_halves_the_scale() {
    let dir = reference().expect("the reference checkpoint is in tests/fixtures/reference-models");
    // 2^40 times a token's gradient overflows f16 (largest 65,504) at once.
    let mut learner = precision_learner(&dir, Precision::F16, 2f64.powi(40));
    let start = learner.snapshot().unwrap();
    let untouched = learner.evaluate().unwrap().loss;
    let first = learner.train_step(3e-3).unwrap();
    assert!(first.skipped, "{first:?}");
    assert_eq!(first.loss_scale, Some(2f64.powi(40)));
    assert!(!first.grad_norm.is_finite());
    assert!(first.loss.is_finite(), "the loss itself is f32");
    // The skipped update left the weights as they were.
    assert_eq!(learner.evaluate().unwrap().loss, untouched);
    let second = learner.train_step(3e-3).unwrap();
    assert_eq!(second.loss_scale, Some(2f64.powi(39)), "halved");
    // Halving finds a scale that fits within a few dozen updates, and
    // training then proceeds.
    let mut applied = 0;
    let mut last = Vec::new();
    for _ in 0..60 {
        let s = learner.train_step(3e-3).unwrap();
        if !s.skipped {
            applied += 1;
            assert!(s.grad_norm.is_finite());
            last.push(s.loss);
        }
    }
    assert!(applied >= 20, "{applied} updates applied");
    // A restart from the first snapshot starts at its scale again.
    learner.restore(&start).unwrap();
    let again = learner.train_step(3e-3).unwrap();
    assert_eq!(again.loss_scale, Some(2f64.powi(40)));
    assert_eq!(again.loss, first.loss);
    assert!(
        last.last().unwrap() < &first.loss,
        "{} -> {:?}",
        first.loss,
        last
    );
}

#[test]
fn mixed_precision_gives_every_variable_an_f32_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let case = Checkpoint {
        hidden: 32,
        intermediate: 64,
        vocab: 40,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-5,
        tied: false,
        rope_parameters: true,
    };
    case.write(dir.path());
    for precision in [Precision::Bf16, Precision::F16] {
        for lora in [None, Some("r=2,targets=q_proj,v_proj,down_proj")] {
            let spec = LlamaSpec {
                lora: lora.map(|l| LoraSpec::parse(l).unwrap()),
                ..LlamaSpec::default()
            };
            let mut model = Model::build(
                &ModelSpec::Llama(spec),
                &tokens_kind(40, 8),
                Some(dir.path()),
                0,
                &Device::Cpu,
            )
            .unwrap();
            model.set_precision(precision).unwrap();
            let ids =
                Tensor::from_vec((0..16u32).collect::<Vec<_>>(), (2, 8), &Device::Cpu).unwrap();
            let targets: Vec<u32> = (1..17u32).map(|t| t % 40).collect();
            let logits = model.forward(&ids, true).unwrap();
            assert_eq!(logits.dtype(), DType::F32, "the loss is reduced in f32");
            let logits = logits.reshape((16, 40)).unwrap();
            let targets = Tensor::from_vec(targets, 16, &Device::Cpu).unwrap();
            let grads = candle_nn::loss::cross_entropy(&logits, &targets)
                .unwrap()
                .backward()
                .unwrap();
            let params = model.params().params();
            assert!(!params.is_empty());
            for (name, var) in params {
                assert_eq!(var.dtype(), DType::F32, "{name}: master weights in f32");
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{precision} {lora:?} {name}: no gradient"));
                assert_eq!(g.dtype(), DType::F32, "{name}");
                let top = g
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                // LoRA's B starts at zero, so A's gradient is zero at first.
                if !name.contains("lora_A") {
                    assert!(top > 0.0, "{precision} {lora:?} {name}");
                }
            }
        }
    }
}
