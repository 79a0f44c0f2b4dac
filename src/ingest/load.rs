//! Cold load (`--no-follow`): read a source once, to its end, into columns,
//! with the format's own cold load (JSONL's is parallel) or its parser.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::clock::unix_now;
use crate::metrics::RunData;

use super::fields::FieldMap;
use super::formats::{Format, LoadInput, LoadOptions, SNIFF_BYTES, detect, fill};
use super::run_config::RunConfig;
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
    let stdin_path = Path::new("<stdin>");
    let path = source.path.as_deref().unwrap_or(stdin_path);
    let io_err = |e| IngestError::io(path, e);
    let reader: Box<dyn Read + Send> = match &source.path {
        Some(p) => Box::new(File::open(p).map_err(io_err)?),
        None => Box::new(io::stdin()),
    };
    load_reader(reader, source, map, options)
}

/// The files of a group, each read to its end, in name order, as one run.
fn load_group(
    source: &Source,
    map: &FieldMap,
    options: &LoadOptions,
) -> Result<LoadedRun, IngestError> {
    let mut run = LoadedRun {
        label: source.label.clone(),
        path: source.path.clone(),
        format: source.format.unwrap_or(Format::JSONL),
        data: RunData::new(),
        records: 0,
        bad_lines: 0,
        last_error: None,
        config: None,
    };
    for member in source.members() {
        let file = Source {
            format: source.format,
            ..Source::file(member)
        };
        let loaded = load_with(&file, map, options)?;
        run.data.append(loaded.data);
        run.records += loaded.records;
        run.bad_lines += loaded.bad_lines;
        run.config = loaded.config.or(run.config);
        if loaded.last_error.is_some() {
            run.last_error = loaded.last_error.map(|e| format!("{}: {e}", file.label));
        }
    }
    Ok(run)
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
    let format = source
        .format
        .or_else(|| detect(source.path.as_deref(), &head, true))
        .unwrap_or(Format::JSONL);
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
    })
}
