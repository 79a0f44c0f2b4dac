//! The parsers on bytes in memory, for the fuzz targets (`fuzz/`) and the
//! benchmarks (`benches/`). Not a stable API: lrtop itself reads logs
//! through `load` and `follow`.

use crate::metrics::Record;

use super::batch::Batch;
use super::fields::FieldMap;
use super::formats::{self, Format, Reader, trainer_state};
use super::json::{LineState, parse_object_serde, parse_object_with};

/// One JSONL line as a follower parses it (fast path, then serde): the
/// record, None for a blank line or one without a number, or the error.
pub fn jsonl_line(line: &[u8], map: &FieldMap) -> Result<Option<Record>, String> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    parse_object_with(line, map, &mut LineState::default())
}

/// One JSONL line through serde only (no fast path), for differential checks.
pub fn jsonl_line_serde(line: &[u8], map: &FieldMap) -> Result<Option<Record>, String> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    parse_object_serde(line, map)
}

/// What a streamed parse produced.
#[derive(Debug, Clone, Default)]
pub struct Streamed {
    pub records: Vec<Record>,
    /// Lines or rows that became records.
    pub count: u64,
    pub bad: u64,
    pub last_error: Option<String>,
}

/// Feeds `parts` in order to the incremental parser of a followed JSONL or
/// CSV file (as if each part were one read), then ends the input.
/// trainer_state is parsed whole (`parts` concatenated).
pub fn stream(format: Format, parts: &[&[u8]], map: &FieldMap) -> Streamed {
    let mut batch = Batch::default();
    match format.spec().reader(map) {
        Reader::Stream(mut p) => {
            for part in parts {
                p.feed(part, &mut batch);
            }
            p.finish(&mut batch);
        }
        Reader::Whole(mut p) => {
            if let Err(e) = p.parse(&parts.concat(), &mut batch) {
                batch.tally.bad(1, e);
            }
        }
        Reader::Query(_) => batch.tally.bad(1, "a database is read from its file"),
    }
    Streamed {
        records: batch.records,
        count: batch.tally.records,
        bad: batch.tally.bad,
        last_error: batch.tally.last_error,
    }
}

/// A whole trainer_state.json: its `log_history` entries in order (None for
/// an entry without a number), or why it is not one.
pub fn trainer_state(bytes: &[u8], map: &FieldMap) -> Result<Vec<Option<Record>>, String> {
    trainer_state::parse(bytes, map)
}

/// The format of content starting with `head` (None: cannot tell yet).
pub fn sniff(head: &[u8], complete: bool) -> Option<Format> {
    formats::sniff(head, complete)
}
