//! `lrtop train --headless` through the real binary.

use std::path::Path;

use assert_cmd::Command;
use serde_json::{Value, json};

fn lrtop() -> Command {
    Command::cargo_bin("lrtop").unwrap()
}

fn last_json_line(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {text}"))
}

#[test]
fn digits_headless_summary_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let out = lrtop()
        .args([
            "train",
            "--headless",
            "--steps",
            "300",
            "--eval-every",
            "100",
            "--target-acc",
            "0.9",
        ])
        .args(["--policy", "OneCycleLR(max_lr=0.1,total_steps=300)"])
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = last_json_line(&out.stdout);
    for key in [
        "final_acc",
        "best_acc",
        "eval_loss",
        "steps",
        "steps_to_target",
        "wall_s",
        "steps_per_s",
        "log",
    ] {
        assert!(summary.get(key).is_some(), "{key} in {summary}");
    }
    assert_eq!(summary["steps"], 300);
    assert!(summary["final_acc"].as_f64().unwrap() > 0.9, "{summary}");
    assert_eq!(summary["steps_to_target"].as_u64().unwrap() % 100, 0);

    // The log: a header, one record per update with a 1-based step, eval records.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["header"]["total_steps"], 300);
    assert_eq!(
        lines[0]["header"]["policy"],
        "OneCycleLR(max_lr=0.1,total_steps=300)"
    );
    let steps: Vec<u64> = lines
        .iter()
        .filter(|l| l.get("lr").is_some())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=300).collect::<Vec<_>>());
    // The LR logged at step s is the policy's value at t = s-1.
    let first = lines
        .iter()
        .find(|l| l["step"] == 1 && l.get("lr").is_some())
        .unwrap();
    assert!(
        (first["lr"].as_f64().unwrap() - 0.004).abs() < 1e-9,
        "{first}"
    );
    assert!(lines.iter().filter(|l| l.get("eval_acc").is_some()).count() >= 3);

    // lrtop attach reads it back.
    let out = lrtop()
        .args(["attach", "--no-follow", "--summary"])
        .arg(&log)
        .output()
        .unwrap();
    let back: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back["last_step"], 300);
    assert_eq!(back["records"].as_u64().unwrap(), lines.len() as u64 - 1);
    assert!(
        back["schedule_fit"]["spec"]
            .as_str()
            .unwrap()
            .starts_with("OneCycleLR"),
        "{back}"
    );
}

/// `lrtop train --headless --model llama --seq-len 32` on the tiny
/// checkpoint `base` holds and its progressions, in `dir`, with `args`.
fn fine_tune(base: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    lrtop()
        .current_dir(dir)
        .args(["train", "--headless", "--model", "llama", "--seq-len", "32"])
        .args(args)
        .arg("--task")
        .arg(format!("tokens={}", base.join("progressions").display()))
        .arg("--init")
        .arg(base.join("tiny-llama"))
        .output()
        .unwrap()
}

#[test]
fn fine_tune_checkpoint_reproduces_transformers_eval_loss() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/reference-models");
    let base = if shared.join("tiny-llama").exists() {
        shared
    } else {
        root.join("tests/fixtures/reference-models")
    };
    let dir = tempfile::tempdir().unwrap();
    let out = fine_tune(&base, dir.path(), &["--steps", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = last_json_line(&out.stdout);
    let loss = summary["eval_loss"].as_f64().unwrap();
    assert!(
        (loss - 0.065498).abs() / 0.065498 < 1e-3,
        "eval_loss {loss}"
    );
}

#[test]
fn lora_fine_tuning_trains_a_fraction_and_says_so() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("lora.jsonl");
    let log_arg = log.display().to_string();
    let out = fine_tune(
        &base,
        dir.path(),
        &[
            "--batch-size",
            "4",
            "--steps",
            "3",
            "--optimizer",
            "adamw",
            "--lora",
            "r=4,alpha=8",
            "--log",
            &log_arg,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&log).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let header = &header["header"];
    // q_proj (64 -> 64) and v_proj (64 -> 32) of 2 layers at rank 4.
    assert_eq!(header["params"], 2 * (4 * (64 + 64) + 4 * (64 + 32)));
    assert!(
        header["total_params"].as_u64().unwrap() > 50_000,
        "{header}"
    );
    assert!(
        header["model"]
            .as_str()
            .unwrap()
            .ends_with("+ lora(r=4,alpha=8,targets=q_proj,v_proj)"),
        "{header}"
    );
    // The checkpoint's shape, not the --model defaults, and where it came from.
    assert!(
        header["model"]
            .as_str()
            .unwrap()
            .starts_with("llama(dim=64,layers=2,heads=4,kv_heads=2,intermediate=128"),
        "{header}"
    );
    assert!(
        header["init"]
            .as_str()
            .is_some_and(|p| p.ends_with("tiny-llama")),
        "{header}"
    );
    let all = format!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
    assert!(all.contains("training 1792 of "), "{all}");
    // The memory estimate, before training, counts the LoRA run as one.
    assert!(
        stderr.contains("note: memory: about ") && stderr.contains("LoRA r=4"),
        "{stderr}"
    );
}

/// The eval loss `lrtop train --steps 0` measures on the progressions for
/// the checkpoint in `init`.
fn eval_loss_of(base: &Path, init: &Path) -> f64 {
    let logs = tempfile::tempdir().unwrap();
    let out = lrtop()
        .args([
            "train",
            "--headless",
            "--model",
            "llama",
            "--seq-len",
            "32",
            "--steps",
            "0",
        ])
        .arg("--task")
        .arg(format!("tokens={}", base.join("progressions").display()))
        .arg("--init")
        .arg(init)
        .arg("--log")
        .arg(logs.path().join("eval.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_json_line(&out.stdout)["eval_loss"].as_f64().unwrap()
}

#[test]
fn lora_runs_save_a_peft_adapter_and_a_merged_checkpoint_that_reloads() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    let dir = tempfile::tempdir().unwrap();
    let (adapter, merged) = (dir.path().join("adapter"), dir.path().join("merged"));
    let out = fine_tune(
        &base,
        dir.path(),
        &[
            "--batch-size",
            "4",
            "--steps",
            "5",
            "--optimizer",
            "adamw",
            "--policy",
            "FIX(k0=0.01)",
            "--lora",
            "r=4,alpha=8,targets=q_proj,down_proj",
            "--save",
            "adapter",
            "--save-hf",
            "merged",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let trained = last_json_line(&out.stdout)["eval_loss"].as_f64().unwrap();

    // PEFT's folder: its config keys and its tensor names, adapters only.
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "down_proj"])
    );
    let bytes = std::fs::read(adapter.join("adapter_model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = tensors.names().into_iter().map(String::from).collect();
    names.sort();
    assert_eq!(names.len(), 2 * 2 * 2, "{names:?}");
    assert_eq!(
        names[0],
        "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"
    );
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("base_model.model.model.layers.")
                && (n.ends_with(".lora_A.weight") || n.ends_with(".lora_B.weight")))
    );
    let b = tensors
        .tensor("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight")
        .unwrap();
    assert_eq!(b.shape(), [64, 4]);
    assert!(b.data().iter().any(|&x| x != 0), "B trained away from zero");

    // The merged checkpoint is the adapted model: the same eval loss.
    assert!(merged.join("config.json").is_file());
    let reloaded = eval_loss_of(&base, &merged);
    assert!(
        (reloaded - trained).abs() <= 1e-5 * trained.abs(),
        "merged {reloaded} vs trained {trained}"
    );
    let untouched = eval_loss_of(&base, &base.join("tiny-llama"));
    assert!(
        (untouched - trained).abs() > 1e-4,
        "training changed the model"
    );
}

#[test]
fn save_hf_of_a_plain_llama_reloads_as_itself() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    let dir = tempfile::tempdir().unwrap();
    let out = fine_tune(&base, dir.path(), &["--steps", "0", "--save-hf", "hf"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = last_json_line(&out.stdout)["eval_loss"].as_f64().unwrap();
    assert_eq!(eval_loss_of(&base, &dir.path().join("hf")), before);
}

/// A checkpoint larger than --max-shard-size is written in shards with
/// transformers' index, and reloads as itself; saving it whole again
/// leaves no stale index behind.
#[test]
fn save_hf_writes_shards_past_the_max_shard_size() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    let dir = tempfile::tempdir().unwrap();
    let out = fine_tune(
        &base,
        dir.path(),
        &[
            "--steps",
            "0",
            "--save-hf",
            "hf",
            "--max-shard-size",
            "100KB",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = last_json_line(&out.stdout)["eval_loss"].as_f64().unwrap();
    let hf = dir.path().join("hf");
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(hf.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let mut files: Vec<&str> = map.values().map(|v| v.as_str().unwrap()).collect();
    files.sort_unstable();
    files.dedup();
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(
        files[0],
        format!("model-00001-of-{:05}.safetensors", files.len())
    );
    assert!(!hf.join("model.safetensors").exists());
    for file in &files {
        assert!(std::fs::metadata(hf.join(file)).unwrap().len() <= 100_000 + 70_000);
    }
    assert_eq!(eval_loss_of(&base, &hf), before);
    // Whole again: one file, the index gone.
    let out = fine_tune(&base, dir.path(), &["--steps", "0", "--save-hf", "hf"]);
    assert!(out.status.success());
    assert!(hf.join("model.safetensors").is_file());
    assert!(!hf.join("model.safetensors.index.json").exists());
    assert!(!hf.join(files[0]).exists(), "old shards removed");
    assert_eq!(eval_loss_of(&base, &hf), before);
    let out = fine_tune(
        &base,
        dir.path(),
        &[
            "--steps",
            "0",
            "--save-hf",
            "hf",
            "--max-shard-size",
            "5 parsecs",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-shard-size"));
}

#[test]
fn bad_options_are_clear_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--batch-size", "0"], "--batch-size"),
        (&["--momentum", "1.5"], "--momentum"),
        (&["--target-acc", "2"], "--target-acc"),
        (&["--policy", "FIX(k0=-1)"], "cannot be negative"),
        (&["--task", "mnist=/no/such/dir"], "/no/such/dir"),
        (&["--model", "transformer9000"], "--model"),
        (&["--optimizer", "lion"], "--optimizer"),
        (&["--device", "tpu"], "--device"),
        (&["--lora", "r=4"], "use it with --model llama"),
        (
            &["--model", "llama", "--lora", "dropout=1.5"],
            "dropout must be a probability in [0, 1)",
        ),
        (&["--save-hf", "out"], "use it with --model llama"),
        (&["--grad-accum", "0"], "--grad-accum must be"),
        (&["--dtype", "bf16"], "--dtype bf16 is for --model llama"),
        (
            &["--model", "llama", "--dtype", "int8"],
            "expected f32, bf16 or f16",
        ),
        (
            &["--model", "llama", "--lora", "r=2", "--save", "Cargo.toml"],
            "with --lora it names a folder",
        ),
    ];
    for (args, needle) in cases {
        let assert = lrtop()
            .args(["train", "--headless", "--steps", "10"])
            .args(*args)
            .assert();
        let output = assert.get_output();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    lrtop()
        .args(["train", "--headless", "--batch-size", "0"])
        .assert()
        .code(2);
}

#[test]
fn a_diverging_run_stops_with_a_critical_alert() {
    let dir = tempfile::tempdir().unwrap();
    let out = lrtop()
        .current_dir(dir.path())
        .args([
            "train",
            "--headless",
            "--steps",
            "100000",
            "--optimizer",
            "sgd",
            "--policy",
            "FIX(k0=1000)",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = last_json_line(&out.stdout);
    assert_eq!(summary["end"], "diverged", "{text}");
    assert!(summary["steps"].as_u64().unwrap() < 100_000);
    assert!(
        text.lines()
            .any(|l| l.contains("\"critical\"") && l.contains("divergence")),
        "{text}"
    );
}

#[test]
fn absurd_sizes_and_bad_output_paths_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("lrtop")
            .unwrap()
            .current_dir(dir.path())
            .args(["train", "--headless", "--steps", "1"])
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &["--batch-size", "18446744073709551615"][..],
        &["--hidden", "100000000,100000000"],
        &["--log", "same.x", "--save", "same.x"],
        &["--log", "."],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{err}"
        );
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    let err =
        String::from_utf8_lossy(&run(&["--batch-size", "18446744073709551615"]).stderr).to_string();
    assert!(
        err.contains("this job needs about") && err.contains("available"),
        "{err}"
    );
    // An existing log is never overwritten: the run gets a new name.
    std::fs::write(dir.path().join("keep.jsonl"), "precious\n").unwrap();
    let out = run(&["--log", "keep.jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.jsonl")).unwrap(),
        "precious\n"
    );
    assert!(dir.path().join("keep.2.jsonl").exists());
}

#[test]
fn a_checkpoint_too_big_for_the_machine_is_refused_by_its_config_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("huge");
    std::fs::create_dir(&ckpt).unwrap();
    // A 405B-sized config and no weights: the estimate comes first.
    std::fs::write(
        ckpt.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 16384,
            "intermediate_size": 53248, "num_hidden_layers": 126,
            "num_attention_heads": 128, "num_key_value_heads": 8,
            "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "max_position_embeddings": 131072}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("text.txt"), "hello world\n".repeat(100)).unwrap();
    let out = Command::cargo_bin("lrtop")
        .unwrap()
        .current_dir(dir.path())
        .args(["train", "--headless", "--steps", "1", "--model", "llama"])
        .args([
            "--task",
            "text=text.txt",
            "--seq-len",
            "16",
            "--init",
            "huge",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("this job needs about")
            && err.contains("the checkpoint huge: 126 layers of 16384, vocabulary 128256"),
        "{err}"
    );
}

#[test]
fn a_negative_number_and_a_bad_theme_get_messages_about_the_value_in_every_mode() {
    let out = Command::cargo_bin("lrtop")
        .unwrap()
        .args(["train", "--headless", "--steps", "-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value '-1' for '--steps"), "{err}");
    for args in [
        &["train", "--headless", "--steps", "1", "--theme", "neon"][..],
        &[
            "attach",
            "--no-follow",
            "--headless",
            "--theme",
            "neon",
            "-",
        ],
    ] {
        let out = Command::cargo_bin("lrtop")
            .unwrap()
            .args(args)
            .write_stdin("")
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unknown theme 'neon'"),
            "{args:?}"
        );
    }
}

#[test]
fn gradient_accumulation_is_in_the_header_and_steps_count_updates() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("accum.jsonl");
    let out = lrtop()
        .current_dir(dir.path())
        .args([
            "train",
            "--headless",
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--grad-accum",
            "3",
        ])
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let header = &lines[0]["header"];
    assert_eq!(header["grad_accum"], 3, "{header}");
    assert_eq!(header["step_counts"], "updates");
    let steps: Vec<u64> = lines
        .iter()
        .filter(|l| l.get("loss").is_some())
        .filter_map(|l| l["step"].as_u64())
        .collect();
    assert_eq!(steps, [1, 2, 3, 4], "{text}");
}

#[test]
fn bf16_and_f16_fine_tune_and_the_log_says_which() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["bf16", "f16"] {
        let log = dir.path().join(format!("{dtype}.jsonl"));
        let log_arg = log.display().to_string();
        let out = fine_tune(
            &base,
            dir.path(),
            &[
                "--steps",
                "3",
                "--dtype",
                dtype,
                "--optimizer",
                "adamw",
                "--log",
                &log_arg,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = last_json_line(&out.stdout);
        let eval_loss = summary["eval_loss"].as_f64().unwrap();
        // The checkpoint's f32 eval loss is 0.0655; 3 small updates in
        // half precision stay near it.
        assert!(eval_loss < 0.1, "{dtype}: eval_loss {eval_loss}");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["header"]["dtype"], dtype, "{text}");
        let steps: Vec<&Value> = lines.iter().filter(|l| l.get("loss").is_some()).collect();
        assert_eq!(steps.len(), 3, "{text}");
        for step in steps {
            // f16 logs the loss scale of each update; bf16 needs none.
            let scale = step.get("loss_scale").and_then(Value::as_f64);
            assert_eq!(scale, (dtype == "f16").then_some(65_536.0), "{step}");
        }
    }
}

#[test]
fn a_llama_on_the_cpu_trains_one_share_per_thread_and_says_so() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    let dir = tempfile::tempdir().unwrap();
    for (extra, shares) in [
        (&["--threads", "2"][..], 2),
        (&["--threads", "1"][..], 1),
        // Fewer examples than threads: Candle's kernels use the threads.
        (&["--threads", "2", "--batch-size", "1"][..], 1),
        // The dropout's seeded stream needs one thread drawing in order.
        (&["--threads", "2", "--lora", "dropout=0.1"][..], 1),
    ] {
        let log = dir.path().join("dp.jsonl");
        let _ = std::fs::remove_file(&log);
        let log_arg = log.display().to_string();
        let mut args = vec!["--steps", "2", "--device", "cpu", "--log", &log_arg];
        args.extend_from_slice(extra);
        let out = fine_tune(&base, dir.path(), &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&log).unwrap();
        let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            header["header"]["data_parallel"], shares,
            "{extra:?}: {text}"
        );
    }
}

#[test]
fn instruction_tuning_runs_on_every_shape_with_a_real_tokenizer() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..30 {
        let (a, b) = (i % 10, i / 10);
        let line = match i % 3 {
            0 => json!({"prompt": format!("{a}+{b}="), "completion": format!("{}", a + b)}),
            1 => {
                json!({"instruction": "Add the numbers.", "input": format!("{a} and {b}"), "output": format!("{}", a + b)})
            }
            _ => {
                json!({"messages": [{"role": "user", "content": format!("{a}+{b}?")}, {"role": "assistant", "content": format!("{}", a + b)}]})
            }
        };
        let _ = writeln!(text, "{line}");
    }
    std::fs::write(dir.path().join("sums.jsonl"), text).unwrap();
    let tokenizer =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/tokenizer.json");
    let out = lrtop()
        .current_dir(dir.path())
        .args([
            "train",
            "--headless",
            "--task",
            "instruct=sums.jsonl",
            "--tokenizer",
        ])
        .arg(&tokenizer)
        .args([
            "--model",
            "llama",
            "--dim",
            "32",
            "--layers",
            "1",
            "--heads",
            "2",
            "--kv-heads",
            "1",
        ])
        .args([
            "--seq-len",
            "64",
            "--batch-size",
            "4",
            "--steps",
            "4",
            "--eval-every",
            "2",
        ])
        .args(["--optimizer", "adamw", "--log", "run.jsonl"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sample @4: …"), "{stdout}");
    let log = std::fs::read_to_string(dir.path().join("run.jsonl")).unwrap();
    let header: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(header["header"]["task"], "instruct=sums.jsonl");
    let evals: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("eval_exact_match").is_some())
        .collect();
    assert_eq!(evals.len(), 2, "{log}");
    for e in &evals {
        let exact = e["eval_exact_match"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&exact) && e["eval_loss"].as_f64().unwrap().is_finite());
    }
    // A line that is no example names its line.
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"text\": 1}\n",
    )
    .unwrap();
    let out = lrtop()
        .current_dir(dir.path())
        .args([
            "train",
            "--headless",
            "--task",
            "instruct=bad.jsonl",
            "--model",
            "llama",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.jsonl") && stderr.contains("line 2: expected"),
        "{stderr}"
    );
}

/// `--val FILE` (or `instruct=FILE,val=FILE`): the validation examples come
/// from their own file and all of the training file is trained on.
#[test]
fn instruction_tuning_validates_on_its_own_file_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, n: usize| {
        let text: String = (0..n)
            .map(|i| format!("{}\n", json!({"prompt": format!("{}+{}=", i % 10, i / 10), "completion": format!("{}", i % 10 + i / 10)})))
            .collect();
        std::fs::write(dir.path().join(name), text).unwrap();
    };
    write("train.jsonl", 30);
    write("val.jsonl", 5);
    let tiny = [
        "--model",
        "llama",
        "--dim",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--kv-heads",
        "1",
        "--seq-len",
        "32",
        "--steps",
        "2",
        "--eval-every",
        "2",
    ];
    for task in [
        vec!["--task", "instruct=train.jsonl", "--val", "val.jsonl"],
        vec!["--task", "instruct=train.jsonl,val=val.jsonl"],
    ] {
        let out = lrtop()
            .current_dir(dir.path())
            .args(["train", "--headless", "--log", "run.jsonl"])
            .args(&task)
            .args(tiny)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("instruct: 30 examples to train on, 5 to validate"),
            "{stderr}"
        );
        let log = std::fs::read_to_string(dir.path().join("run.jsonl")).unwrap();
        let header: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!(
            header["header"]["task"],
            "instruct=train.jsonl,val=val.jsonl"
        );
    }
    for (args, says) in [
        (
            vec!["--task", "digits", "--val", "val.jsonl"],
            "for instruction tasks",
        ),
        (
            vec![
                "--task",
                "instruct=train.jsonl,val=val.jsonl",
                "--val",
                "val.jsonl",
            ],
            "both name a validation file",
        ),
        (
            vec!["--task", "instruct=train.jsonl,val="],
            "val= needs a file",
        ),
        (
            vec!["--task", "instruct=train.jsonl", "--val", "nope.jsonl"],
            "nope.jsonl",
        ),
    ] {
        let out = lrtop()
            .current_dir(dir.path())
            .args(["train", "--headless"])
            .args(&args)
            .args(tiny)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Qwen2 (q/k/v biases) and Mistral (sliding window) checkpoints fine-tune
/// and export as themselves: `--save-hf` keeps the family, the biases and
/// the window, and reloads with the eval loss the run ended with, merged
/// LoRA included.
#[test]
fn qwen2_and_mistral_fine_tune_and_save_as_themselves() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-models");
    for family in ["qwen2", "mistral"] {
        for lora in [
            None,
            Some("r=4,alpha=8,targets=q_proj,k_proj,v_proj,o_proj"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut args = vec![
                "--steps",
                "3",
                "--batch-size",
                "4",
                "--optimizer",
                "adamw",
                "--policy",
                "FIX(k0=0.01)",
                "--save-hf",
                "hf",
            ];
            if let Some(spec) = lora {
                args.extend(["--lora", spec]);
            }
            let out = lrtop()
                .current_dir(dir.path())
                .args(["train", "--headless", "--model", "llama", "--seq-len", "32"])
                .args(&args)
                .arg("--task")
                .arg(format!("tokens={}", base.join("progressions").display()))
                .arg("--init")
                .arg(base.join(format!("tiny-{family}")))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{family} {lora:?}: {stderr}");
            let trained = last_json_line(&out.stdout)["eval_loss"].as_f64().unwrap();
            let hf = dir.path().join("hf");
            let config: Value =
                serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap())
                    .unwrap();
            assert_eq!(config["model_type"], family);
            let bytes = std::fs::read(hf.join("model.safetensors")).unwrap();
            let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let has = |name: &str| tensors.names().contains(&name);
            let q_bias = has("model.layers.0.self_attn.q_proj.bias");
            assert_eq!(q_bias, family == "qwen2", "{family}");
            assert!(!has("model.layers.0.self_attn.o_proj.bias"));
            if family == "mistral" {
                assert_eq!(config["sliding_window"], 32);
            }
            let reloaded = eval_loss_of(&base, &hf);
            assert!(
                (reloaded - trained).abs() <= 1e-5 * trained.abs(),
                "{family} {lora:?}: reloaded {reloaded} vs trained {trained}"
            );
        }
    }
}
