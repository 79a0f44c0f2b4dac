//! Cold load (`--no-follow`): read a source once, to its end, into columns,
//! with the format's own cold load (JSONL's is parallel) or its parser.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::clock::unix_now;
use crate::metrics::{Record, RunData};

use super::batch::Batch;
use super::fields::FieldMap;
use super::formats::{
    Format, LoadInput, LoadOptions, Reader, SNIFF_BYTES, detect, fill, load_with_reader,
};
use super::run_config::RunConfig;
use super::special::{self, PathKind};
use super::{IngestError, Source};

/// A source read to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRun {
    pub label: String,
    /// None for stdin.
    pub path: Option<PathBuf>,
    /// JSONL when the input was empty and its name said nothing.
    pub format: Format,
    pub data: RunData,
    /// Lines or rows that became records.
    pub records: u64,
    /// Lines that did not parse (an unfinished last line counts).
    pub bad_lines: u64,
    /// The last bad line's error, with its line number.
    pub last_error: Option<String>,
    /// The run's settings, for formats that record them (W&B, MLflow).
    pub config: Option<RunConfig>,
    /// The format's variant (which trainer printed a printed log).
    pub dialect: Option<&'static str>,
}

pub fn load(source: &Source, map: &FieldMap) -> Result<LoadedRun, IngestError> {
    load_with(source, map, &LoadOptions::default())
}

pub fn load_with(
    source: &Source,
    map: &FieldMap,
    options: &LoadOptions,
) -> Result<LoadedRun, IngestError> {
    if source.group {
        return load_group(source, map, options);
    }
    if let Some(format) = source.format.or_else(|| {
        source
            .path
            .as_deref()
            .and_then(|p| detect(Some(p), &[], false))
    }) && matches!(format.spec().reader(map), Reader::Query(_))
    {
        return load_query(source, format, map);
    }
    let stdin_path = Path::new("<stdin>");
    let path = source.path.as_deref().unwrap_or(stdin_path);
    let io_err = |e| IngestError::io(path, e);
    let reader: Box<dyn Read + Send> = match &source.path {
        Some(p) => match special::kind(p) {
            PathKind::Device => {
                return Err(IngestError::NotALog {
                    path: p.clone(),
                    why: special::DEVICE.into(),
                });
            }
            // Read to its end, without waiting for a writer that is not there.
            PathKind::Fifo => Box::new(special::open_fifo(p).map_err(io_err)?),
            PathKind::Ordinary => Box::new(File::open(p).map_err(io_err)?),
        },
        None => Box::new(io::stdin()),
    };
    load_reader(reader, source, map, options)
}

/// The files of a group, each read to its end, as one run: one after
/// another in name order, or merged by step when they hold different
/// metrics of the same steps (MLflow's one file per metric).
fn load_group(
    source: &Source,
    map: &FieldMap,
    options: &LoadOptions,
) -> Result<LoadedRun, IngestError> {
    let format = source.format.unwrap_or(Format::JSONL);
    let spec = format.spec();
    let dir = source.path.clone().unwrap_or_default();
    let mut run = LoadedRun {
        label: source.label.clone(),
        path: source.path.clone(),
        format,
        data: RunData::new(),
        records: 0,
        bad_lines: 0,
        last_error: None,
        config: spec.dir_config(&dir),
        dialect: None,
    };
    let mut merged: Vec<Record> = Vec::new();
    for member in source.members() {
        let io_err = |e| IngestError::io(&member, e);
        let mut file = File::open(&member).map_err(io_err)?;
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        fill(&mut file, &mut head, SNIFF_BYTES).map_err(io_err)?;
        let input = LoadInput {
            head,
            rest: &mut file,
            map,
            options,
            arrival: unix_now(),
        };
        let reader = spec.member_reader(&dir, &member, map);
        let cold = match load_with_reader(reader, input).map_err(io_err)? {
            Ok(cold) => cold,
            Err(message) => return Err(spec.invalid(&member, message)),
        };
        run.records += cold.tally.records;
        run.bad_lines += cold.tally.bad;
        if let Some(e) = cold.tally.last_error {
            run.last_error = Some(format!("{}: {e}", member.display()));
        }
        if spec.members_by_step() {
            merged.extend(cold.data.records());
        } else {
            run.data.append(cold.data);
        }
    }
    if spec.members_by_step() {
        // Stable: within a step, the members' order.
        merged.sort_by_key(|r| r.step.unwrap_or(0));
        let arrival = unix_now();
        for rec in &merged {
            run.data.push(rec, arrival);
        }
    }
    Ok(run)
}

/// A run of a tracker's database, read as it is now.
fn load_query(source: &Source, format: Format, map: &FieldMap) -> Result<LoadedRun, IngestError> {
    let spec = format.spec();
    let path = source.path.clone().unwrap_or_default();
    let reader = match &source.part {
        Some(key) => spec.part_reader(map, key),
        None => spec.reader(map),
    };
    let Reader::Query(mut reader) = reader else {
        return Err(spec.invalid(&path, "not a database".into()));
    };
    if !path.exists() {
        return Err(IngestError::NotFound { path });
    }
    let mut batch = Batch::default();
    reader
        .poll(&path, &mut batch)
        .map_err(|message| spec.invalid(&path, message))?;
    let mut data = RunData::new();
    let arrival = unix_now();
    for rec in &batch.records {
        data.push(rec, arrival);
    }
    Ok(LoadedRun {
        label: source.label.clone(),
        path: source.path.clone(),
        format,
        data,
        records: batch.tally.records,
        bad_lines: batch.tally.bad,
        last_error: batch.tally.last_error,
        config: batch.config,
        dialect: None,
    })
}

/// Loads a log held in memory as `format` (what `load` does with a file's
/// bytes), for tests, fuzzing and benchmarks.
pub fn load_bytes(
    bytes: &[u8],
    format: Format,
    map: &FieldMap,
    options: &LoadOptions,
) -> Result<LoadedRun, IngestError> {
    let source = Source {
        path: None,
        label: "bytes".to_string(),
        format: Some(format),
        group: false,
        part: None,
    };
    load_reader(bytes, &source, map, options)
}

fn load_reader(
    mut reader: impl Read + Send,
    source: &Source,
    map: &FieldMap,
    options: &LoadOptions,
) -> Result<LoadedRun, IngestError> {
    let path = source.path.as_deref().unwrap_or(Path::new("<stdin>"));
    let io_err = |e| IngestError::io(path, e);
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    fill(&mut reader, &mut head, SNIFF_BYTES).map_err(io_err)?;
    let detected = source
        .format
        .or_else(|| detect(source.path.as_deref(), &head, true));
    if detected.is_none() && special::looks_binary(&head) {
        return Err(IngestError::NotALog {
            path: path.to_path_buf(),
            why: "binary data in no format lrtop reads".into(),
        });
    }
    let format = detected.unwrap_or(Format::JSONL);
    let input = LoadInput {
        head,
        rest: &mut reader,
        map,
        options,
        arrival: unix_now(),
    };
    let cold = match format.spec().cold_load(input).map_err(io_err)? {
        Ok(cold) => cold,
        Err(message) => return Err(format.spec().invalid(path, message)),
    };
    Ok(LoadedRun {
        label: source.label.clone(),
        path: source.path.clone(),
        format,
        data: cold.data,
        records: cold.tally.records,
        bad_lines: cold.tally.bad,
        last_error: cold.tally.last_error,
        config: cold.config,
        dialect: cold.dialect,
    })
}
