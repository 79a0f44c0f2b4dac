//! What real jobs leave behind, read with no flags: TensorBoard event files
//! (PyTorch's SummaryWriter with a restart, Lightning's default logger,
//! TF2-style tensor scalars), W&B offline runs, MLflow's file and SQLite
//! stores, Trackio, and a Hugging Face Trainer's printed output. For each,
//! `lrtop attach --no-follow --summary` must give the numbers the
//! library's own reader gives (`*.expected.json`, written by that reader;
//! see the fixtures' README).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The fixtures: `../shared/reference-logs/formats`, else the copy in the repo.
fn fixtures() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/reference-logs/formats");
    if shared.join("wandb.expected.json").is_file() {
        shared
    } else {
        root.join("tests/fixtures/formats")
    }
}

fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `lrtop attach PATH --no-follow --summary`, one JSON object per run.
fn summaries(path: &Path) -> Vec<Value> {
    crate::cli_support::attach_summaries([path])
}

/// The second fixture set, made with other tags and schedules.
fn fixtures2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats2")
}

fn expected2(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures2().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The name lrtop gives a logged key (its field aliases, printed formats'
/// names), or None for the axes it does not keep as metrics.
fn lrtop_name(key: &str) -> Option<&str> {
    match key {
        "epoch" | "_step" | "_timestamp" | "steps" => None,
        "train/loss" | "loss" | "Loss/train" | "epoch_loss" | "lm loss" | "train/nll_loss" => {
            Some("loss")
        }
        "train/lr"
        | "lr"
        | "lr-AdamW"
        | "learning_rate"
        | "LearningRate"
        | "epoch_learning_rate"
        | "learning rate" => Some("lr"),
        "grad_norm" | "grad norm" => Some("grad_norm"),
        // nanoGPT: the iteration's duration; the training loss estimated
        // at evaluation.
        "time" => Some("iter_time_ms"),
        "train loss" => Some("eval/train_loss"),
        other => Some(other),
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        other => other.as_f64().unwrap(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a.is_nan() && b.is_nan())
}

/// Compares one run's summary with the reader's per-key statistics.
fn check_run(what: &str, run: &Value, keys: &Value, records: Option<u64>) {
    let keys = keys.as_object().unwrap();
    let mut first = u64::MAX;
    let mut last = 0;
    for (key, stats) in keys {
        first = first.min(stats["first_step"].as_u64().unwrap());
        last = last.max(stats["last_step"].as_u64().unwrap());
        let Some(name) = lrtop_name(key) else {
            continue;
        };
        assert_eq!(
            run["points"][name].as_u64(),
            stats["count"].as_u64(),
            "{what}: points of {key}\n{run}"
        );
        if name == "loss" && keys.len() > 1 && run["min_loss"].is_number() {
            assert!(
                close(
                    run["min_loss"].as_f64().unwrap(),
                    number(&stats["min_value"])
                ),
                "{what}: min loss {} vs {}",
                run["min_loss"],
                stats["min_value"]
            );
            assert_eq!(
                run["min_loss_step"], stats["min_step"],
                "{what}: min loss step"
            );
        }
        if name == "lr" {
            assert!(
                close(
                    run["last_lr"].as_f64().unwrap(),
                    number(&stats["last_value"])
                ),
                "{what}: last lr {} vs {}",
                run["last_lr"],
                stats["last_value"]
            );
        }
    }
    assert_eq!(
        run["first_step"].as_u64(),
        Some(first),
        "{what}: first step"
    );
    assert_eq!(run["last_step"].as_u64(), Some(last), "{what}: last step");
    if let Some(records) = records {
        assert_eq!(run["records"].as_u64(), Some(records), "{what}: records");
    }
    assert_eq!(run["bad_lines"].as_u64(), Some(0), "{what}: bad lines");
}

fn only(runs: Vec<Value>) -> Value {
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn count_sum(keys: &Value) -> u64 {
    keys.as_object()
        .unwrap()
        .values()
        .map(|s| s["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn tensorboard_event_files_match_event_accumulator() {
    // PyTorch's SummaryWriter, a crash and a restart from step 300 (two
    // event files, one run): the accumulator purges the overlap.
    let exp = expected("tb_torch.expected.json");
    let run = only(summaries(&fixtures().join("tb_torch")));
    assert_eq!(run["format"], "tfevents");
    let tags = &exp["tags"];
    let records: u64 = tags
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    check_run("tb_torch", &run, tags, Some(records));
    assert_eq!(run["resumed_at"], serde_json::json!([300]));
    // Lightning's default logger.
    let exp = expected("tb_lightning.expected.json");
    let run = only(summaries(&fixtures().join("tb_lightning")));
    check_run(
        "tb_lightning",
        &run,
        &exp["tags"],
        Some(count_sum(&exp["tags"])),
    );
    // TF2-style scalars in `tensor` (float and double).
    let exp = expected("tb_tensor.expected.json");
    let runs = summaries(&fixtures().join("tb_tensor"));
    assert_eq!(runs.len(), 2);
    for run in runs {
        let name = run["label"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let tags = &exp["runs"][&name]["tags"];
        check_run(&name, &run, tags, Some(count_sum(tags)));
    }
}

#[test]
fn wandb_runs_match_wandb_own_reader() {
    let exp = expected("wandb.expected.json");
    let runs = summaries(&fixtures().join("wandb"));
    assert_eq!(runs.len(), 2, "W&B's output.log copy is not a third run");
    for run in runs {
        let label = run["label"].as_str().unwrap();
        let dir = label.split('/').next().unwrap();
        let expected_run = &exp["runs"][format!("wandb/{dir}")];
        assert_eq!(run["format"], "wandb");
        check_run(
            label,
            &run,
            &expected_run["keys"],
            expected_run["history_rows"].as_u64(),
        );
    }
}

#[test]
fn mlflow_stores_match_mlflow_client() {
    let exp = expected("mlflow.expected.json");
    let file_run = only(summaries(&fixtures().join("mlruns")));
    let keys = exp["mlruns"]["experiments"]["fix"]["runs"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["keys"]
        .clone();
    assert_eq!(file_run["format"], "mlflow");
    check_run("mlruns", &file_run, &keys, Some(count_sum(&keys)));
    assert_eq!(file_run["config"]["total_steps"], 300);
    let db_run = only(summaries(&fixtures().join("mlflow.db")));
    let keys = exp["mlflow.db"]["experiments"]["fix"]["runs"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["keys"]
        .clone();
    assert_eq!(db_run["format"], "mlflow-sqlite");
    check_run("mlflow.db", &db_run, &keys, Some(count_sum(&keys)));
}

#[test]
fn trackio_runs_match_its_database() {
    let exp = expected("trackio.expected.json");
    let runs = summaries(&fixtures().join("trackio"));
    assert_eq!(runs.len(), 2);
    for run in runs {
        let name = run["label"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let expected_run = &exp["runs"][&name];
        check_run(
            &name,
            &run,
            &expected_run["keys"],
            expected_run["metrics_rows"].as_u64(),
        );
    }
}

#[test]
fn hugging_face_printed_output_matches_its_log_history() {
    let exp = expected("hf_stdout.expected.json");
    let log = &exp["logs"]["hf_stdout.log"];
    let run = only(summaries(&fixtures().join("hf_stdout.log")));
    assert_eq!(run["format"], "printed");
    // The printed values are log_history's through HF's `.4g`.
    let printed = &log["printed"];
    check_run(
        "hf_stdout.log",
        &run,
        printed,
        log["printed_dict_lines"].as_u64(),
    );
}

#[test]
fn a_directory_of_every_format_shows_every_run() {
    let runs = summaries(&fixtures());
    let mut formats: Vec<&str> = runs.iter().map(|r| r["format"].as_str().unwrap()).collect();
    formats.sort();
    formats.dedup();
    assert_eq!(
        formats,
        [
            "hf-trainer-state",
            "mlflow",
            "mlflow-sqlite",
            "printed",
            "tfevents",
            "trackio",
            "wandb"
        ]
    );
    // tb x4, wandb x2, mlflow x2, trackio x2, printed, trainer_state.
    assert_eq!(
        runs.len(),
        12,
        "{:#?}",
        runs.iter().map(|r| &r["label"]).collect::<Vec<_>>()
    );
}

#[test]
fn other_tags_and_schedules_match_their_readers_too() {
    // tensorboardX: `Loss/train`, `LearningRate`; add_scalars makes runs.
    let exp = expected2("tb_x.expected.json");
    for run in summaries(&fixtures2().join("tb_x")) {
        let label = run["label"].as_str().unwrap();
        let key = label.strip_prefix("tb_x/").unwrap_or(".");
        let tags = &exp["runs"][key]["tags"];
        check_run(label, &run, tags, Some(count_sum(tags)));
    }
    let exp = expected2("tb_x_two_writers.expected.json");
    let run = only(summaries(&fixtures2().join("tb_x_two_writers")));
    let tags = &exp["runs"]["."]["tags"];
    check_run("two writers", &run, tags, Some(count_sum(tags)));
    assert_eq!(run["resumed_at"], serde_json::json!([]));
    // Keras/TF2 tensor scalars in `tensor_content`.
    let exp = expected2("tb_tf2.expected.json");
    for run in summaries(&fixtures2().join("tb_tf2")) {
        let label = run["label"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let tags = &exp["runs"][&label]["tags"];
        check_run(&label, &run, tags, Some(count_sum(tags)));
    }
    // W&B with HF-style config keys.
    let exp = expected2("wandb2.expected.json");
    let runs = summaries(&fixtures2().join("wandb2"));
    let run = runs
        .iter()
        .find(|r| r["format"] == "wandb")
        .expect("the W&B run");
    assert_eq!(
        runs.iter()
            .filter(|r| r["records"].as_u64() > Some(0))
            .count(),
        1,
        "W&B's debug logs are no runs"
    );
    let (_, expected_run) = exp["runs"].as_object().unwrap().iter().next().unwrap();
    check_run("wandb2", run, &expected_run["keys"], None);
    // MLflow, keys with a slash, two runs in one database.
    let exp = expected2("mlflow2.expected.json");
    let run = only(summaries(&fixtures2().join("mlruns2")));
    let with_runs = |store: &str| {
        exp[store]["experiments"]
            .as_object()
            .unwrap()
            .values()
            .find(|e| e["runs"].as_object().is_some_and(|r| !r.is_empty()))
            .unwrap()
            .clone()
    };
    let experiment = with_runs("mlruns2");
    let (_, r) = experiment["runs"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    check_run("mlruns2", &run, &r["keys"], Some(count_sum(&r["keys"])));
    let runs = summaries(&fixtures2().join("mlflow2.db"));
    assert_eq!(runs.len(), 2);
    let experiment = with_runs("mlflow2.db");
    for (_, r) in experiment["runs"].as_object().unwrap() {
        let n = r["keys"]["train/loss"]["count"].as_u64();
        let run = runs
            .iter()
            .find(|s| s["points"]["loss"].as_u64() == n)
            .unwrap();
        check_run("mlflow2.db", run, &r["keys"], Some(count_sum(&r["keys"])));
    }
    // Trackio, steps numbered by Trackio.
    let exp = expected2("trackio2.expected.json");
    let run = only(summaries(&fixtures2().join("trackio2")));
    let (_, r) = exp["runs"].as_object().unwrap().iter().next().unwrap();
    check_run("trackio2", &run, &r["keys"], None);
}

#[test]
fn printed_formats_of_other_trainers() {
    for (file, dialect) in [
        ("megatron", "Megatron-LM"),
        ("nanogpt", "nanoGPT"),
        ("deepspeed", "DeepSpeed"),
        ("torchtune", "torchtune"),
        ("keras_progress", "Keras"),
    ] {
        let exp = expected2(&format!("printed/{file}.expected.json"));
        let path = std::fs::read_dir(fixtures2().join("printed"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_stem().is_some_and(|s| s == file) && !p.to_string_lossy().ends_with(".json")
            })
            .unwrap();
        let run = only(summaries(&path));
        assert_eq!(run["dialect"], dialect, "{file}");
        check_run(file, &run, &exp["keys"], None);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_job_directory_as_real_jobs_leave_it() {
    // What one project's directory holds after a few jobs: Lightning's
    // logger tree, W&B's tree, MLflow's store and a Slurm job's output.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(
        &fixtures().join("tb_lightning/lightning_logs"),
        &root.join("lightning_logs"),
    );
    copy_tree(&fixtures().join("wandb"), &root.join("wandb"));
    copy_tree(&fixtures().join("mlruns"), &root.join("mlruns"));
    std::fs::copy(
        fixtures2().join("printed/megatron.log"),
        root.join("slurm-4242.out"),
    )
    .unwrap();
    std::fs::write(root.join("README.txt"), "notes about the runs\n").unwrap();
    let runs = summaries(root);
    let found: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r["label"].as_str().unwrap(), r["format"].as_str().unwrap()))
        .collect();
    assert_eq!(found.len(), 5, "{found:?}");
    for format in ["tfevents", "wandb", "mlflow", "printed"] {
        assert!(
            found.iter().any(|(_, f)| *f == format),
            "{format}: {found:?}"
        );
    }
    let slurm = runs.iter().find(|r| r["format"] == "printed").unwrap();
    assert_eq!(slurm["dialect"], "Megatron-LM");
    assert_eq!(slurm["points"]["loss"], 50);
    assert!(runs.iter().all(|r| r["records"].as_u64() > Some(0)));
}
