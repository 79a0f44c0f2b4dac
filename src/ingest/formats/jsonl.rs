//! JSONL: one JSON object per line (Python's `NaN`/`Infinity` allowed).
//! Lines that do not parse are counted and skipped; a record never depends
//! on another line, so a cold load parses newline-aligned chunks in
//! parallel, straight into columns.

use crate::metrics::{Record, RunData};

use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;

use rayon::prelude::*;

use super::{
    ContentClaim, LoadInput, LoadOptions, Loaded, LogFormat, NameClaim, Reader, SNIFF_BYTES,
    StreamParser, fill,
};
use crate::ingest::batch::Batch;
use crate::ingest::fields::FieldMap;
use crate::ingest::json::{LineState, parse_object_with};
use crate::ingest::lines::{Line, LineBuffer, MAX_LINE, Partial};
use crate::ingest::run_config::RunConfig;
use crate::ingest::tally::{Tally, too_long_message};

/// JSONL (`*.jsonl`, `*.ndjson`, or a first line that is a JSON object).
pub(crate) struct Jsonl;

impl LogFormat for Jsonl {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            NameClaim::Likely
        } else {
            NameClaim::No
        }
    }

    fn claim_content(&self, head: &[u8], complete: bool) -> ContentClaim {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let Some(start) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
            return ContentClaim::No;
        };
        if head[start] != b'{' {
            return ContentClaim::No;
        }
        if complete || memchr::memchr(b'\n', &head[start..]).is_some() {
            ContentClaim::Plain
        } else {
            ContentClaim::Undecided
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(JsonlStream::new(map.clone())))
    }

    fn cold_load(&self, input: LoadInput<'_>) -> io::Result<Loaded> {
        // lrtop's own log starts with its header.
        let first_line = input.head.split(|&b| b == b'\n').next().unwrap_or_default();
        let config = RunConfig::from_lrtop_header(first_line);
        let (data, tally) = load_jsonl(
            input.rest,
            input.head,
            input.map,
            input.options,
            input.arrival,
        )?;
        Ok(Ok(super::Cold {
            data,
            tally,
            config,
            dialect: None,
        }))
    }
}

impl StreamParser for JsonlStream {
    fn feed(&mut self, data: &[u8], out: &mut Batch) {
        JsonlStream::feed(self, data, &mut out.records, &mut out.tally);
        if let Some(config) = self.config.take() {
            out.config = Some(config);
        }
    }

    fn finish(&mut self, out: &mut Batch) {
        JsonlStream::finish(self, &mut out.tally);
    }

    fn reset(&mut self) {
        JsonlStream::reset(self);
    }
}

/// A writer that lost a newline glued objects together (`{...}{...}`):
/// each is a record, if every one parses.
fn glued(line: &[u8], map: &FieldMap, state: &mut LineState) -> Option<Vec<Record>> {
    let mut records = Vec::new();
    let mut rest = line;
    let mut pieces = 0;
    while !rest.is_empty() {
        let end = object_end(rest)?;
        let (object, after) = rest.split_at(end);
        pieces += 1;
        if let Some(rec) = parse_object_with(object, map, state).ok()? {
            records.push(rec);
        }
        rest = after.trim_ascii_start();
    }
    (pieces > 1).then_some(records)
}

/// The length of the JSON object `bytes` starts with (strings respected).
fn object_end(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

pub(crate) enum LineOutcome {
    /// Objects glued on one line.
    Records(Vec<Record>),
    Record(Record),
    /// Blank, or an object without a numeric field.
    Skip,
    Bad(String),
}

fn parse_line_with(line: &[u8], map: &FieldMap, state: &mut LineState) -> LineOutcome {
    let line = line.trim_ascii();
    if line.is_empty() {
        return LineOutcome::Skip;
    }
    match parse_object_with(line, map, state) {
        Ok(Some(rec)) => LineOutcome::Record(rec),
        Ok(None) => LineOutcome::Skip,
        Err(err) => match glued(line, map, state) {
            Some(records) => LineOutcome::Records(records),
            None => LineOutcome::Bad(err),
        },
    }
}

/// Incremental JSONL parser for followed files and stdin.
#[derive(Debug)]
pub(crate) struct JsonlStream {
    map: FieldMap,
    lines: LineBuffer,
    line_no: u64,
    state: LineState,
    /// An lrtop header line seen and not yet sent.
    config: Option<RunConfig>,
}

impl JsonlStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        JsonlStream {
            map,
            lines: LineBuffer::new(),
            line_no: 0,
            state: LineState::default(),
            config: None,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.lines.reset();
        self.line_no = 0;
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Vec<Record>, tally: &mut Tally) {
        let (map, line_no, state) = (&self.map, &mut self.line_no, &mut self.state);
        let config = &mut self.config;
        self.lines.feed(data, |line| {
            *line_no += 1;
            match line {
                Line::Complete(bytes) => {
                    if let Some(header) = RunConfig::from_lrtop_header(bytes) {
                        *config = Some(header);
                        return;
                    }
                    match parse_line_with(bytes, map, state) {
                        LineOutcome::Record(rec) => {
                            tally.records += 1;
                            out.push(rec);
                        }
                        LineOutcome::Records(recs) => {
                            tally.records += recs.len() as u64;
                            out.extend(recs);
                        }
                        LineOutcome::Skip => {}
                        LineOutcome::Bad(err) => tally.bad(*line_no, err),
                    }
                }
                Line::TooLong(n) => tally.too_long(*line_no, n),
            }
        });
    }

    /// The input is over: an unfinished last line is a bad line.
    pub(crate) fn finish(&mut self, tally: &mut Tally) {
        if let Some(partial) = self.lines.take_partial() {
            self.line_no += 1;
            count_partial(partial, self.line_no, tally);
        }
    }
}

pub(crate) fn count_partial(partial: Partial, line: u64, tally: &mut Tally) {
    match partial {
        Partial::Bytes(_) => tally.bad(line, "unfinished last line (no newline)"),
        Partial::TooLong(n) => tally.too_long(line, n),
    }
}

/// What one newline-aligned chunk of a cold load produced.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) data: RunData,
    pub(crate) lines: u64,
    pub(crate) records: u64,
    pub(crate) bad: u64,
    /// Line number within the chunk (1-based) and message.
    pub(crate) last_error: Option<(u64, String)>,
}

/// Parses complete lines (`bytes` ends with a newline or is empty) straight
/// into columns.
pub(crate) fn parse_chunk(bytes: &[u8], map: &FieldMap, arrival: f64) -> Chunk {
    let mut chunk = Chunk::default();
    let mut state = LineState::default();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', bytes) {
        let line = &bytes[start..nl];
        start = nl + 1;
        chunk.lines += 1;
        if line.len() > MAX_LINE {
            chunk.bad += 1;
            chunk.last_error = Some((chunk.lines, too_long_message(line.len())));
            continue;
        }
        match parse_line_with(line, map, &mut state) {
            LineOutcome::Record(rec) => {
                chunk.records += 1;
                chunk.data.push(&rec, arrival);
                state.spare.recycle(rec);
            }
            LineOutcome::Records(recs) => {
                chunk.records += recs.len() as u64;
                for rec in recs {
                    chunk.data.push(&rec, arrival);
                }
            }
            LineOutcome::Skip => {}
            LineOutcome::Bad(err) => {
                chunk.bad += 1;
                chunk.last_error = Some((chunk.lines, err));
            }
        }
    }
    chunk
}

/// Most bytes read before parsing them (memory use follows it).
const MAX_BLOCK: usize = 64 << 20;

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
        // Under a memory limit a thread's stack may be refused: an error
        // that says so, not a panic.
        let no_thread = |e: io::Error| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("the system refused a reader thread ({e})"),
            )
        };
        thread::Builder::new()
            .spawn_scoped(scope, move || {
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
            })
            .map_err(no_thread)?;
        // Appending to the run's columns is serial: done on a third thread
        // while the next block is parsed.
        let (merge_tx, merge_rx) = mpsc::sync_channel::<Merged>(2);
        let observer = options.observer.clone();
        let merger = thread::Builder::new()
            .spawn_scoped(scope, move || {
                let mut merge = Merge {
                    observer,
                    ..Merge::default()
                };
                for message in merge_rx {
                    merge.take(message);
                }
                merge
            })
            .map_err(no_thread)?;
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
    observer: Option<super::Observer>,
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

    fn add(&mut self, mut chunk: Chunk) {
        // The observer sees the rows as they will be stored.
        chunk.data.continue_after(&self.data);
        if let Some(observer) = &self.observer {
            (observer.0)(&chunk.data);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_glued_on_one_line_are_each_a_record() {
        let mut stream = JsonlStream::new(FieldMap::new());
        let (mut out, mut tally) = (Vec::new(), Tally::default());
        let text = b"{\"step\": 1, \"loss\": 2}{\"step\": 2, \"loss\": \"}{\", \"x\": 1} {\"step\": 3}\n{\"step\": 4}{bad\n";
        stream.feed(text, &mut out, &mut tally);
        let steps: Vec<Option<u64>> = out.iter().map(|r| r.step).collect();
        assert_eq!(steps, [Some(1), Some(2), Some(3)]);
        assert_eq!(
            tally.bad, 1,
            "a glued line with a broken object is one bad line"
        );
        let chunk = parse_chunk(
            &text[..text.iter().position(|&b| b == b'\n').unwrap() + 1],
            &FieldMap::new(),
            0.0,
        );
        assert_eq!(chunk.records, 3);
    }

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
