//! Arguments to sources: files, directories, patterns, stdin.

use std::fs;
use std::path::Path;

use lrtop::ingest::{Format, IngestError, discover};

fn touch(root: &Path, rel: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, "{}\n").unwrap();
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn a_directory_yields_its_logs_and_the_newest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for rel in [
        "hf/checkpoint-100/trainer_state.json",
        "hf/checkpoint-300/trainer_state.json",
        "hf/checkpoint-25/trainer_state.json",
        "hf/checkpoint-300/config.json",
        "lightning_logs/version_0/metrics.csv",
        "lightning_logs/version_0/hparams.yaml",
        "plain/train.jsonl",
        "plain/notes.txt",
        ".git/objects/x.jsonl",
        "a/b/c/d/deep.jsonl",
        "a/b/c/d/e/too_deep.jsonl",
    ] {
        touch(root, rel);
    }
    let sources = discover(&[arg(root)]).unwrap();
    let found: Vec<(String, Option<Format>)> = sources
        .iter()
        .map(|s| (s.label.clone(), s.format))
        .collect();
    assert_eq!(
        found,
        vec![
            ("a/b/c/d/deep.jsonl".to_string(), Some(Format::JSONL)),
            (
                "hf/checkpoint-300/trainer_state.json".to_string(),
                Some(Format::HF_TRAINER_STATE)
            ),
            (
                "lightning_logs/version_0/metrics.csv".to_string(),
                Some(Format::CSV)
            ),
            ("plain/train.jsonl".to_string(), Some(Format::JSONL)),
        ]
    );
    assert!(sources.iter().all(|s| s.exists() && !s.is_stdin()));
    assert_eq!(
        sources[1].path.as_deref(),
        Some(root.join("hf/checkpoint-300/trainer_state.json").as_path())
    );
}

#[test]
fn patterns_are_expanded_and_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for rel in ["runs/a/log.jsonl", "runs/b/log.jsonl", "runs/c/other.csv"] {
        touch(root, rel);
    }
    let sources = discover(&[arg(&root.join("runs/*/log.jsonl"))]).unwrap();
    let labels: Vec<&str> = sources.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["a/log.jsonl", "b/log.jsonl"]);
    // A pattern naming directories searches them.
    assert_eq!(discover(&[arg(&root.join("run?"))]).unwrap().len(), 3);
    let err = discover(&[arg(&root.join("runs/*/missing*.jsonl"))]).unwrap_err();
    assert!(matches!(err, IngestError::GlobNoMatch { .. }), "{err}");
    assert!(err.to_string().contains("missing*.jsonl"));
    let err = discover(&[arg(&root.join("runs/[a"))]).unwrap_err();
    assert!(matches!(err, IngestError::BadGlob { .. }), "{err}");
}

#[test]
fn missing_files_stdin_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "x.jsonl");
    let later = arg(&root.join("later.csv"));
    let x = arg(&root.join("x.jsonl"));
    let sources = discover(&[later.clone(), "-".into(), x.clone(), x]).unwrap();
    assert_eq!(sources.len(), 3);
    assert!(!sources[0].exists());
    assert_eq!(sources[0].format, Some(Format::CSV));
    assert_eq!(sources[0].label, "later.csv");
    assert!(sources[1].is_stdin() && sources[1].exists());
    assert_eq!(sources[1].label, "stdin");
    assert_eq!(sources[2].label, "x.jsonl");
}

#[test]
fn a_directory_without_logs_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "readme.txt");
    let err = discover(&[arg(dir.path())]).unwrap_err();
    assert!(matches!(err, IngestError::NoLogsInDir { .. }), "{err}");
}
