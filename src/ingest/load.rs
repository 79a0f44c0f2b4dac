//! Cold load (`--no-follow`): read a source once, to its end, into columns,
//! with the format's own cold load (JSONL's is parallel) or its parser.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::clock::unix_now;
use crate::metrics::RunData;

use super::batch::Batch;
use super::fields::FieldMap;
use super::formats::{Format, LoadInput, Loaded, Reader, SNIFF_BYTES, detect};
use super::{IngestError, Source};

/// A source read to its end.
#[derive(Debug, Clone)]
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

/// Tuning of the cold load; the defaults suit any file.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Bytes of JSONL one parallel task parses (cut at a newline).
    pub chunk_bytes: usize,
    /// Parse chunks on rayon's pool (false: one by one, same result).
    pub parallel: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            chunk_bytes: 1 << 20,
            parallel: true,
        }
    }
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

/// Reads until `buf` grew by `want` bytes or the input ended (returns true).
pub(crate) fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let target = buf.len().saturating_add(want);
    buf.reserve(want);
    while buf.len() < target {
        let n = reader
            .by_ref()
            .take((target - buf.len()) as u64)
            .read_to_end(buf);
        match n {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The cold load of a format without a faster one: its own parser, fed the
/// input block by block (or the whole document), into columns.
pub(crate) fn load_with_reader(reader: Reader, input: LoadInput<'_>) -> io::Result<Loaded> {
    let mut data = RunData::new();
    let mut batch = Batch::default();
    match reader {
        Reader::Stream(mut parser) => {
            let mut rest = input.rest;
            let mut buf = input.head;
            loop {
                parser.feed(&buf, &mut batch);
                for rec in batch.records.drain(..) {
                    data.push(&rec, input.arrival);
                }
                buf.clear();
                if fill(&mut rest, &mut buf, 1 << 20)? && buf.is_empty() {
                    break;
                }
            }
            parser.finish(&mut batch);
        }
        Reader::Whole(mut parser) => {
            let mut bytes = input.head;
            input.rest.read_to_end(&mut bytes)?;
            if let Err(message) = parser.parse(&bytes, &mut batch) {
                return Ok(Err(message));
            }
            for rec in batch.records.drain(..) {
                data.push(&rec, input.arrival);
            }
        }
    }
    Ok(Ok((data, batch.tally)))
}
