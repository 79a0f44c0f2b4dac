//! MLflow's file store (`mlruns/<experiment>/<run>/`): a run is a directory
//! with `meta.yaml`, one file per metric under `metrics/` (a key with `/`
//! makes subdirectories) holding lines `<timestamp ms> <value> <step>`, and
//! one file per param under `params/`. The metric files of a run are read
//! together, merged by step.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ContentClaim, LogFormat, NameClaim, Reader, StreamParser};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder};
use crate::ingest::lines::{Line, LineBuffer};
use crate::ingest::run_config::{ConfigValue, RunConfig};

/// A run of MLflow's file store.
pub(crate) struct MlflowFiles;

impl LogFormat for MlflowFiles {
    fn name(&self) -> &'static str {
        "mlflow"
    }

    fn claim_name(&self, _name: &str) -> NameClaim {
        NameClaim::No
    }

    fn claim_content(&self, _head: &[u8], _complete: bool) -> ContentClaim {
        ContentClaim::No
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(MetricFile::new(map.clone(), "value".into())))
    }

    fn claims_dir(&self, dir: &Path) -> bool {
        dir.join("meta.yaml").is_file() && dir.join("metrics").is_dir()
    }

    fn members(&self, dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&dir.join("metrics"), 0, &mut files);
        files.sort();
        files
    }

    fn member_reader(&self, dir: &Path, member: &Path, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(MetricFile::new(
            map.clone(),
            metric_key(dir, member),
        )))
    }

    fn members_by_step(&self) -> bool {
        true
    }

    fn dir_config(&self, dir: &Path) -> Option<RunConfig> {
        let mut params = Vec::new();
        collect_files(&dir.join("params"), 0, &mut params);
        let base = dir.join("params");
        let values: Vec<(String, ConfigValue)> = params
            .iter()
            .filter_map(|p| {
                let key = relative_key(&base, p)?;
                let text = fs::read_to_string(p).ok()?;
                Some((key, ConfigValue::from_text(&text)))
            })
            .collect();
        let mut config =
            RunConfig::from_values(values.iter().map(|(k, v)| (k.as_str(), v.clone())));
        config.name = fs::read_to_string(dir.join("tags/mlflow.runName"))
            .ok()
            .or_else(|| meta_value(dir, "run_name"))
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        (!config.is_empty()).then_some(config)
    }
}

/// Most directory levels of a metric key (`a/b/c`).
const MAX_KEY_DEPTH: usize = 8;

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && depth < MAX_KEY_DEPTH => collect_files(&path, depth + 1, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn relative_key(base: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(base).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// The metric a file of `<run>/metrics/` holds: its path below `metrics/`.
fn metric_key(dir: &Path, member: &Path) -> String {
    relative_key(&dir.join("metrics"), member).unwrap_or_else(|| {
        member
            .file_name()
            .map_or("value".into(), |n| n.to_string_lossy().into_owned())
    })
}

/// A `key: value` line of the run's flat `meta.yaml`.
fn meta_value(dir: &Path, key: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join("meta.yaml")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().trim_matches(['\'', '"']).to_string())
    })
}

/// One metric file: `<timestamp ms> <value> <step>` per line (older MLflow
/// wrote no step).
#[derive(Debug)]
pub(crate) struct MetricFile {
    map: FieldMap,
    key: String,
    lines: LineBuffer,
    line_no: u64,
}

impl MetricFile {
    fn new(map: FieldMap, key: String) -> Self {
        MetricFile {
            map,
            key,
            lines: LineBuffer::new(),
            line_no: 0,
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Batch) {
        self.line_no += 1;
        let text = String::from_utf8_lossy(line);
        let mut parts = text.split_whitespace();
        let (Some(ts), Some(value)) = (parts.next(), parts.next()) else {
            if !text.trim().is_empty() {
                out.tally
                    .bad(self.line_no, "expected `timestamp value step`");
            }
            return;
        };
        let step = parts.next();
        let (Ok(ts), Ok(value)) = (ts.parse::<f64>(), value.parse::<f64>()) else {
            out.tally
                .bad(self.line_no, "expected `timestamp value step`");
            return;
        };
        let mut builder = RecordBuilder::new(&self.map);
        let role = builder.classify(&self.key);
        builder.add(&self.key, role, Num::Float(value));
        let step = step.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let role = builder.classify("step");
        builder.add("step", role, Num::Int(step));
        if ts.is_finite() {
            let role = builder.classify("time");
            builder.add("time", role, Num::Float(ts / 1000.0));
        }
        if let Some(rec) = builder.finish() {
            out.tally.records += 1;
            out.records.push(rec);
        }
    }
}

impl StreamParser for MetricFile {
    fn feed(&mut self, data: &[u8], out: &mut Batch) {
        let mut complete = Vec::new();
        self.lines.feed(data, |line| match line {
            Line::Complete(bytes) => complete.push(bytes.to_vec()),
            Line::TooLong(_) => complete.push(Vec::new()),
        });
        for line in complete {
            self.line(&line, out);
        }
    }

    fn finish(&mut self, out: &mut Batch) {
        if let Some(crate::ingest::lines::Partial::Bytes(rest)) = self.lines.take_partial() {
            self.line(&rest, out);
        }
    }

    fn reset(&mut self) {
        self.lines.reset();
        self.line_no = 0;
    }
}
