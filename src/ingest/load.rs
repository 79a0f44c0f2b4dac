//! Cold load (`--no-follow`): read a source once, to its end, into columns,
//! with the format's own cold load (JSONL's is parallel) or its parser.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::clock::unix_now;
use crate::metrics::RunData;

use super::fields::FieldMap;
use super::formats::{Format, LoadInput, LoadOptions, SNIFF_BYTES, detect, fill};
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
}

pub fn load(source: &Source, map: &FieldMap) -> Result<LoadedRun, IngestError> {
    load_with(source, map, &LoadOptions::default())
}

pub fn load_with(
    source: &Source,
    map: &FieldMap,
    options: &LoadOptions,
) -> Result<LoadedRun, IngestError> {
    let stdin_path = Path::new("<stdin>");
    let path = source.path.as_deref().unwrap_or(stdin_path);
    let io_err = |e| IngestError::io(path, e);
    let reader: Box<dyn Read + Send> = match &source.path {
        Some(p) => Box::new(File::open(p).map_err(io_err)?),
        None => Box::new(io::stdin()),
    };
    load_reader(reader, source, map, options)
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
    let (data, tally) = match format.spec().cold_load(input).map_err(io_err)? {
        Ok(run) => run,
        Err(message) => return Err(format.spec().invalid(path, message)),
    };
    Ok(LoadedRun {
        label: source.label.clone(),
        path: source.path.clone(),
        format,
        data,
        records: tally.records,
        bad_lines: tally.bad,
        last_error: tally.last_error,
    })
}
