//! Cold load (`--no-follow`): read a source once, to its end. JSONL is read
//! in blocks (by a reader thread, ahead of the parse), split at newlines into
//! chunks parsed in parallel, each into its own `RunData`, appended in order
//! (by a merger thread, while the next block is parsed). Memory stays near
//! the size of the columns, not of the file.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::metrics::{Record, RunData};

use super::csv::CsvStream;
use super::fields::FieldMap;
use super::jsonl::{Chunk, parse_chunk};
use super::lines::MAX_LINE;
use super::sniff::{SNIFF_BYTES, detect};
use super::tally::Tally;
use super::{Format, IngestError, Source, trainer_state};

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

/// Most bytes read before parsing them (memory use follows it).
const MAX_BLOCK: usize = 64 << 20;

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
    let eof = fill(&mut reader, &mut head, SNIFF_BYTES).map_err(io_err)?;
    let format = source
        .format
        .or_else(|| detect(source.path.as_deref(), &head, eof))
        .unwrap_or(Format::Jsonl);
    let arrival = unix_now();
    let (data, tally) = match format {
        Format::Jsonl => load_jsonl(reader, head, map, options, arrival).map_err(io_err)?,
        Format::Csv => load_csv(reader, head, map, arrival).map_err(io_err)?,
        Format::HfTrainerState => {
            let mut bytes = head;
            reader.read_to_end(&mut bytes).map_err(io_err)?;
            let entries =
                trainer_state::parse(&bytes, map).map_err(|message| IngestError::TrainerState {
                    path: path.to_path_buf(),
                    message,
                })?;
            let mut data = RunData::new();
            let mut tally = Tally::default();
            for rec in entries.iter().flatten() {
                data.push(rec, arrival);
                tally.records += 1;
            }
            (data, tally)
        }
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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads until `buf` grew by `want` bytes or the input ended (returns true).
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
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

/// Reads blocks on a second thread while this one parses the previous block
/// (its newline-aligned chunks in parallel). Buffers are recycled, so memory
/// stays at a few blocks plus the columns.
fn load_jsonl(
    mut reader: impl Read + Send,
    mut head: Vec<u8>,
    map: &FieldMap,
    options: &LoadOptions,
    arrival: f64,
) -> io::Result<(RunData, Tally)> {
    let chunk_bytes = options.chunk_bytes.max(1);
    let chunks_per_block = if options.parallel {
        4 * rayon::current_num_threads()
    } else {
        1
    };
    let block = chunk_bytes
        .saturating_mul(chunks_per_block)
        .clamp(SNIFF_BYTES, MAX_BLOCK);
    if head.starts_with(b"\xEF\xBB\xBF") {
        head.drain(..3);
    }
    thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<(Vec<u8>, bool)>>(1);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
        scope.spawn(move || {
            loop {
                let mut buf = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(block));
                buf.clear();
                let read = fill(&mut reader, &mut buf, block);
                let done = !matches!(read, Ok(false));
                if full_tx.send(read.map(|eof| (buf, eof))).is_err() || done {
                    return;
                }
            }
        });
        // Appending to the run's columns is serial: done on a third thread
        // while the next block is parsed.
        let (merge_tx, merge_rx) = mpsc::sync_channel::<Merged>(2);
        let merger = scope.spawn(move || {
            let mut merge = Merge::default();
            for message in merge_rx {
                merge.take(message);
            }
            merge
        });
        let mut run = JsonlRun {
            merge: merge_tx,
            map,
            options,
            arrival,
            chunk_bytes,
            carry: Vec::new(),
            skipping: None,
        };
        run.feed(&head);
        for message in full_rx {
            let (buf, eof) = message?;
            run.feed(&buf);
            if eof {
                break;
            }
            // The reader may have quit; then this buffer is just dropped.
            let _ = empty_tx.send(buf);
        }
        run.finish();
        drop(run);
        let merge = merger
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((merge.data, merge.tally))
    })
}

/// A cold JSONL load in progress.
struct JsonlRun<'a> {
    merge: mpsc::SyncSender<Merged>,
    map: &'a FieldMap,
    options: &'a LoadOptions,
    arrival: f64,
    chunk_bytes: usize,
    /// Start of a line whose newline has not been read yet.
    carry: Vec<u8>,
    /// Length so far of an over-long line being passed over.
    skipping: Option<usize>,
}

impl JsonlRun<'_> {
    fn feed(&mut self, mut data: &[u8]) {
        if let Some(seen) = self.skipping {
            match memchr::memchr(b'\n', data) {
                None => {
                    self.skipping = Some(seen + data.len());
                    return;
                }
                Some(nl) => {
                    self.send(Merged::LongLine(seen + nl));
                    self.skipping = None;
                    data = &data[nl + 1..];
                }
            }
        }
        let (Some(first_nl), Some(last_nl)) =
            (memchr::memchr(b'\n', data), memchr::memrchr(b'\n', data))
        else {
            self.hold(data);
            return;
        };
        // The line begun in an earlier block, then the lines wholly in this one.
        let mut stitched = std::mem::take(&mut self.carry);
        stitched.extend_from_slice(&data[..=first_nl]);
        self.parse(&stitched);
        stitched.clear();
        self.carry = stitched;
        self.parse(&data[first_nl + 1..=last_nl]);
        self.hold(&data[last_nl + 1..]);
    }

    fn hold(&mut self, partial: &[u8]) {
        if self.carry.len() + partial.len() > MAX_LINE {
            self.skipping = Some(self.carry.len() + partial.len());
            self.carry.clear();
        } else {
            self.carry.extend_from_slice(partial);
        }
    }

    /// Complete lines, in chunks parsed in parallel, merged in order.
    fn parse(&mut self, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        let chunks = split_at_newlines(lines, self.chunk_bytes);
        let (map, arrival) = (self.map, self.arrival);
        let parsed: Vec<Chunk> = if self.options.parallel && chunks.len() > 1 {
            chunks
                .par_iter()
                .map(|c| parse_chunk(c, map, arrival))
                .collect()
        } else {
            chunks
                .iter()
                .map(|c| parse_chunk(c, map, arrival))
                .collect()
        };
        self.send(Merged::Chunks(parsed));
    }

    fn send(&self, message: Merged) {
        // The merger lives as long as this run; it cannot have hung up.
        let _ = self.merge.send(message);
    }

    /// The input ended: an unfinished last line is a bad line.
    fn finish(&mut self) {
        if let Some(seen) = self.skipping.take() {
            self.send(Merged::LongLine(seen));
        } else if !self.carry.trim_ascii().is_empty() {
            self.send(Merged::Unfinished);
        }
    }
}

/// What the parsing thread hands to the merging one, in file order.
enum Merged {
    Chunks(Vec<Chunk>),
    LongLine(usize),
    Unfinished,
}

/// Chunk results joined in file order.
#[derive(Default)]
struct Merge {
    data: RunData,
    tally: Tally,
    lines: u64,
}

impl Merge {
    fn take(&mut self, message: Merged) {
        match message {
            Merged::Chunks(chunks) => {
                for chunk in chunks {
                    self.add(chunk);
                }
            }
            Merged::LongLine(bytes) => {
                self.lines += 1;
                self.tally.too_long(self.lines, bytes);
            }
            Merged::Unfinished => {
                self.lines += 1;
                self.tally
                    .bad(self.lines, "unfinished last line (no newline)");
            }
        }
    }

    fn add(&mut self, chunk: Chunk) {
        self.data.append(chunk.data);
        self.tally.records += chunk.records;
        self.tally.bad += chunk.bad;
        if let Some((line, message)) = chunk.last_error {
            self.tally.last_error = Some(format!("line {}: {message}", self.lines + line));
        }
        self.lines += chunk.lines;
    }
}

/// Cuts complete lines into pieces of about `size` bytes, each ending at a newline.
fn split_at_newlines(bytes: &[u8], size: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(bytes.len() / size + 1);
    let mut start = 0;
    while start < bytes.len() {
        let mut end = start.saturating_add(size).min(bytes.len());
        if end < bytes.len() {
            end = memchr::memchr(b'\n', &bytes[end - 1..]).map_or(bytes.len(), |i| end + i);
        }
        pieces.push(&bytes[start..end]);
        start = end;
    }
    pieces
}

fn load_csv(
    mut reader: impl Read,
    head: Vec<u8>,
    map: &FieldMap,
    arrival: f64,
) -> io::Result<(RunData, Tally)> {
    let mut stream = CsvStream::new(map.clone());
    let mut data = RunData::new();
    let mut tally = Tally::default();
    let mut records: Vec<Record> = Vec::new();
    let mut buf = head;
    loop {
        stream.feed(&buf, &mut records, &mut tally);
        for rec in records.drain(..) {
            data.push(&rec, arrival);
        }
        buf.clear();
        if fill(&mut reader, &mut buf, 1 << 20)? && buf.is_empty() {
            break;
        }
    }
    stream.finish(&mut tally);
    Ok((data, tally))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_at_newlines() {
        let text = b"aa\nbbbb\nc\n\nddd\n";
        for size in 1..20 {
            let pieces = split_at_newlines(text, size);
            assert_eq!(pieces.concat(), text.to_vec(), "size {size}");
            assert!(pieces.iter().all(|p| p.ends_with(b"\n")), "size {size}");
        }
    }
}
