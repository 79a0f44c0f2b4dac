//! Each log format, read from the real training logs in sample-logs/.

use std::path::PathBuf;

use lrtop::ingest::{FieldMap, Format, LoadedRun, Source, load};
use lrtop::metrics::XAxis;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sample-logs")
        .join(name)
}

fn load_sample(name: &str) -> LoadedRun {
    load(&Source::file(sample(name)), &FieldMap::new()).expect(name)
}

fn steps_of(run: &LoadedRun, metric: &str) -> Vec<u64> {
    run.data
        .points(metric, XAxis::Step)
        .iter()
        .map(|(s, _)| *s as u64)
        .collect()
}

fn values_of(run: &LoadedRun, metric: &str) -> Vec<f64> {
    run.data
        .column(metric)
        .map(|c| c.values.clone())
        .unwrap_or_default()
}

#[test]
fn format_names() {
    assert_eq!(Format::JSONL.as_str(), "jsonl");
    assert_eq!(Format::HF_TRAINER_STATE.as_str(), "hf-trainer-state");
    assert_eq!(Format::CSV.as_str(), "csv");
}

#[test]
fn hf_trainer_jsonl() {
    let run = load_sample("hf_trainer_cosine.jsonl");
    assert_eq!(run.format, Format::JSONL);
    assert_eq!((run.records, run.bad_lines), (311, 0));
    assert_eq!(run.data.len(), 311);
    assert_eq!(run.data.first_step(), Some(1));
    assert_eq!(run.data.last_step(), Some(300));
    assert_eq!(steps_of(&run, "loss"), (1..=300).collect::<Vec<_>>());
    assert_eq!(steps_of(&run, "lr").len(), 300);
    let lr = values_of(&run, "lr");
    assert_eq!((lr[0], lr[1], lr[30]), (0.0, 0.0001, 0.003));
    // Eval lines every 30 steps.
    assert_eq!(
        steps_of(&run, "eval_loss"),
        (1..=10).map(|i| i * 30).collect::<Vec<_>>()
    );
    assert_eq!(values_of(&run, "eval_loss")[0], 3.061741590499878);
    // The summary line: its train_loss is an extra, not a loss point.
    assert_eq!(steps_of(&run, "train_loss"), vec![300]);
    assert_eq!(values_of(&run, "train_loss"), vec![1.8161618856589]);
    assert!(!values_of(&run, "loss").contains(&1.8161618856589));
    assert_eq!(values_of(&run, "train_runtime"), vec![43.294]);
    let last_loss = run.data.column("loss").unwrap().last().unwrap().1;
    assert_eq!(last_loss, 1.3815287351608276);
    assert!(run.data.has_epoch());
    assert_eq!(run.data.last_epoch(), Some(1.2));
}

#[test]
fn trainer_state_gives_the_same_training_points_as_the_jsonl() {
    let state = load_sample("hf_trainer_cosine.trainer_state.json");
    let jsonl = load_sample("hf_trainer_cosine.jsonl");
    assert_eq!(state.format, Format::HF_TRAINER_STATE);
    // log_history has no summary entry: 300 training + 10 eval entries.
    assert_eq!((state.records, state.bad_lines), (310, 0));
    for metric in ["loss", "lr", "grad_norm", "eval_loss", "eval_runtime"] {
        assert_eq!(
            state.data.points(metric, XAxis::Step),
            jsonl.data.points(metric, XAxis::Step),
            "{metric}"
        );
    }
    assert_eq!(
        state.data.points("loss", XAxis::Epoch),
        jsonl.data.points("loss", XAxis::Epoch)
    );
    assert!(state.data.column("train_loss").is_none());
}

#[test]
fn trainer_state_is_found_by_content_under_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::copy(sample("hf_trainer_cosine.trainer_state.json"), &path).unwrap();
    let run = load(&Source::file(&path), &FieldMap::new()).unwrap();
    assert_eq!(run.format, Format::HF_TRAINER_STATE);
    assert_eq!(run.records, 310);
}

#[test]
fn diverged_run_keeps_nan_and_infinity() {
    let run = load_sample("torch_diverged_nan.jsonl");
    assert_eq!((run.records, run.bad_lines), (306, 0));
    let loss = run.data.column("loss").unwrap();
    let grad = run.data.column("grad_norm").unwrap();
    let first_bad_loss = loss.first_nonfinite_row.unwrap();
    let first_bad_grad = grad.first_nonfinite_row.unwrap();
    assert_eq!(run.data.step_at(first_bad_loss), Some(29));
    assert_eq!(run.data.step_at(first_bad_grad), Some(28));
    let (_, inf) = run
        .data
        .points("grad_norm", XAxis::Step)
        .into_iter()
        .find(|(s, _)| *s == 28.0)
        .unwrap();
    assert_eq!(inf, f64::INFINITY);
    assert!(values_of(&run, "loss").last().unwrap().is_nan());
    assert!(values_of(&run, "val_loss").last().unwrap().is_nan());
    // The finite part is intact: the huge loss right before NaN.
    let at_28 = run.data.points("loss", XAxis::Step)[27];
    assert_eq!(at_28, (28.0, 1.5753205844298704e25));
}

#[test]
fn torch_loop_with_logged_time() {
    let run = load_sample("torch_cyclic_triangular2.jsonl");
    assert_eq!((run.records, run.bad_lines), (1224, 0));
    assert_eq!(values_of(&run, "lr").len(), 1200);
    assert_eq!(steps_of(&run, "val_acc").len(), 24);
    assert_eq!(values_of(&run, "lr")[0], 0.004);
    // Logged Unix time is the wall-time axis.
    assert_eq!(run.data.x_at(0, XAxis::WallTime), 1795870308.7705014);
    let rel = run.data.points("loss", XAxis::RelativeTime);
    assert_eq!(rel[0].0, 0.0);
    assert!(rel.last().unwrap().0 > 0.0);
}

#[test]
fn lightning_metrics_csv() {
    let run = load_sample("lightning_onecycle.metrics.csv");
    assert_eq!(run.format, Format::CSV);
    assert_eq!((run.records, run.bad_lines), (300, 0));
    let lr = values_of(&run, "lr");
    assert_eq!(lr.len(), 135);
    assert_eq!(lr[0], 0.0004093312560439731);
    let max_lr = lr.iter().cloned().fold(0.0, f64::max);
    assert_eq!(max_lr, 0.009999309276218435);
    assert_eq!(values_of(&run, "loss").len(), 135);
    assert_eq!(values_of(&run, "loss")[0], 2.313889265060425);
    assert_eq!(values_of(&run, "val_acc").len(), 15);
    assert_eq!(values_of(&run, "val_loss").len(), 15);
    assert_eq!(values_of(&run, "train_loss_epoch").len(), 15);
    assert_eq!(
        *values_of(&run, "val_acc").last().unwrap(),
        0.9055555462837219
    );
    assert_eq!(run.data.first_step(), Some(4));
    assert_eq!(run.data.last_step(), Some(674));
    assert_eq!(run.data.last_epoch(), Some(14.0));
    // The LR rows carry no epoch; the loss rows do.
    assert_eq!(run.data.points("lr", XAxis::Epoch).len(), 0);
    assert_eq!(run.data.points("loss", XAxis::Epoch).len(), 135);
    assert!(run.data.column("epoch").is_none() && run.data.column("step").is_none());
}

#[test]
fn field_map_overrides_reach_the_columns() {
    let map = FieldMap::parse("loss=val_loss").unwrap();
    let run = load(
        &Source::file(sample("torch_cyclic_triangular2.jsonl")),
        &map,
    )
    .unwrap();
    // The override takes priority; lines without val_loss keep their `loss`.
    assert_eq!(values_of(&run, "loss").len(), 1224);
    let map = FieldMap::parse("lr=val_acc").unwrap();
    let run = load(
        &Source::file(sample("torch_cyclic_triangular2.jsonl")),
        &map,
    )
    .unwrap();
    assert_eq!(steps_of(&run, "lr").len(), 1224);
    assert!(run.data.column("val_acc").is_none());
}

#[test]
fn keras_csv_logger_and_wandb_style_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let keras = dir.path().join("training.log");
    std::fs::write(
        &keras,
        "epoch,accuracy,loss,lr,val_accuracy,val_loss\r\n0,0.5,1.2,0.001,0.55,1.1\r\n1,0.7,0.8,0.0005,0.72,0.9\r\n",
    )
    .unwrap();
    let run = load(&Source::file(&keras), &FieldMap::new()).unwrap();
    assert_eq!(run.format, Format::CSV);
    assert_eq!(
        run.data.points("lr", XAxis::Epoch),
        vec![(0.0, 0.001), (1.0, 0.0005)]
    );
    assert_eq!(values_of(&run, "val_loss"), vec![1.1, 0.9]);

    let wandb = dir.path().join("history.jsonl");
    std::fs::write(
        &wandb,
        "{\"trainer/global_step\": 10, \"train/loss\": 2.5, \"train/learning_rate\": 1e-4, \"train/grad_norm\": 0.7, \"_timestamp\": 1700000000.5, \"_runtime\": 12}\n\
         {\"trainer/global_step\": 20, \"eval/loss\": 2.0, \"_timestamp\": \"2024-01-01\"}\n",
    )
    .unwrap();
    let run = load(&Source::file(&wandb), &FieldMap::new()).unwrap();
    assert_eq!(run.data.points("loss", XAxis::Step), vec![(10.0, 2.5)]);
    assert_eq!(run.data.points("lr", XAxis::Step), vec![(10.0, 1e-4)]);
    assert_eq!(run.data.points("grad_norm", XAxis::Step), vec![(10.0, 0.7)]);
    assert_eq!(run.data.points("eval/loss", XAxis::Step), vec![(20.0, 2.0)]);
    assert_eq!(run.data.x_at(0, XAxis::WallTime), 1700000000.5);
    assert_eq!(values_of(&run, "_runtime"), vec![12.0]);
}
