//! JSONL: one JSON object per line. Lines that do not parse are counted and
//! skipped; a record never depends on another line.

use crate::metrics::{Record, RunData};

use super::fields::FieldMap;
use super::json::{LineState, parse_object_with};
use super::lines::{Line, LineBuffer, Partial};
use super::tally::{Tally, too_long_message};

pub(crate) enum LineOutcome {
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
        Err(err) => LineOutcome::Bad(err),
    }
}

/// Incremental JSONL parser for followed files and stdin.
#[derive(Debug)]
pub(crate) struct JsonlStream {
    map: FieldMap,
    lines: LineBuffer,
    line_no: u64,
    state: LineState,
}

impl JsonlStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        JsonlStream {
            map,
            lines: LineBuffer::new(),
            line_no: 0,
            state: LineState::default(),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.lines.reset();
        self.line_no = 0;
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Vec<Record>, tally: &mut Tally) {
        let (map, line_no, state) = (&self.map, &mut self.line_no, &mut self.state);
        self.lines.feed(data, |line| {
            *line_no += 1;
            match line {
                Line::Complete(bytes) => match parse_line_with(bytes, map, state) {
                    LineOutcome::Record(rec) => {
                        tally.records += 1;
                        out.push(rec);
                    }
                    LineOutcome::Skip => {}
                    LineOutcome::Bad(err) => tally.bad(*line_no, err),
                },
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
        if line.len() > super::lines::MAX_LINE {
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
            LineOutcome::Skip => {}
            LineOutcome::Bad(err) => {
                chunk.bad += 1;
                chunk.last_error = Some((chunk.lines, err));
            }
        }
    }
    chunk
}
