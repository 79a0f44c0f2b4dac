//! CSV logs (Lightning's `metrics.csv`, Keras' CSVLogger): a header row, then
//! sparse rows (an empty cell is an absent value). The header can grow: a
//! header-like row in the stream replaces it, and a Lightning-style rewrite
//! of the whole file with more columns is continued after the rows already
//! read (see `CsvStream::continue_after_rewrite`).

use super::jsonl::count_partial;
use super::{ContentClaim, LogFormat, NameClaim, Reader, Rewrite, SNIFF_BYTES, StreamParser};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder, Role};
use crate::ingest::lines::{Line, LineBuffer};
use crate::ingest::tally::Tally;
use crate::metrics::Record;

/// CSV (`*.csv`, or a first line that is not JSON).
pub(crate) struct Csv;

impl LogFormat for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        if name.ends_with(".csv") {
            NameClaim::Certain
        } else {
            NameClaim::No
        }
    }

    /// Plain when the first line is a plausible header: at least two
    /// names of metrics (no numbers, no prose), comma-separated.
    fn claim_content(&self, head: &[u8], complete: bool) -> ContentClaim {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let Some(start) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
            return ContentClaim::No;
        };
        let head = &head[start..];
        let line = match memchr::memchr(b'\n', head) {
            Some(nl) => &head[..nl],
            None if complete => head,
            None => {
                return if plausible_header(head, false) {
                    ContentClaim::Undecided
                } else {
                    ContentClaim::No
                };
            }
        };
        if plausible_header(line, true) {
            ContentClaim::Plain
        } else {
            ContentClaim::No
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(CsvStream::new(map.clone())))
    }
}

/// Could `line` be a CSV header (all of it, or its start while `whole` is
/// false)?
fn plausible_header(line: &[u8], whole: bool) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let text = text.trim_end_matches('\r');
    let cells: Vec<&str> = text
        .split(',')
        .map(|c| c.trim().trim_matches('"'))
        .collect();
    let name_like = |c: &str| {
        c.len() <= 128
            && c.chars().any(|ch| ch.is_alphabetic())
            && c.chars().all(|ch| {
                ch.is_alphanumeric()
                    || matches!(
                        ch,
                        '_' | '-' | '/' | '.' | ' ' | '@' | '(' | ')' | '[' | ']'
                    )
            })
    };
    let complete_cells = if whole { cells.len() } else { cells.len() - 1 };
    (!whole || cells.len() >= 2)
        && cells[..complete_cells].iter().all(|c| name_like(c))
        && parse_number(cells[0].as_bytes()).is_none()
}

impl StreamParser for CsvStream {
    fn feed(&mut self, data: &[u8], out: &mut Batch) {
        CsvStream::feed(self, data, &mut out.records, &mut out.tally);
    }

    fn finish(&mut self, out: &mut Batch) {
        CsvStream::finish(self, &mut out.tally);
    }

    fn reset(&mut self) {
        CsvStream::reset(self);
    }

    /// Lightning's CSVLogger rewrites the whole file when a metric appears:
    /// the same rows under a header with more columns. Those rows are passed
    /// over; anything else is read again from its start.
    fn rewritten(&mut self, head: &[u8]) -> Rewrite {
        let old: Vec<&str> = self.header_names().collect();
        if old.is_empty() {
            self.reset();
            return Rewrite::FromStart;
        }
        let Some(nl) = memchr::memchr(b'\n', head) else {
            if head.len() < SNIFF_BYTES {
                return Rewrite::Undecided;
            }
            self.reset();
            return Rewrite::FromStart;
        };
        let new = header_cells(&head[..nl]);
        let grew = new.len() > old.len() && old.iter().all(|o| new.iter().any(|n| n == o));
        if grew {
            self.continue_after_rewrite();
            Rewrite::Continues
        } else {
            self.reset();
            Rewrite::FromStart
        }
    }
}

#[derive(Debug)]
pub(crate) struct CsvStream {
    map: FieldMap,
    lines: LineBuffer,
    /// Complete lines not yet given to the csv reader.
    batch: Vec<u8>,
    header: Vec<(String, Role)>,
    /// Data rows read since the file's start (header rows excluded).
    data_rows: u64,
    /// Data rows to pass over: those already read before a rewrite.
    skip_rows: u64,
    line_no: u64,
}

impl CsvStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        CsvStream {
            map,
            lines: LineBuffer::new(),
            batch: Vec::new(),
            header: Vec::new(),
            data_rows: 0,
            skip_rows: 0,
            line_no: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = CsvStream::new(std::mem::take(&mut self.map));
    }

    /// The file was rewritten from its start with the same rows and a
    /// grown header: read it again, passing over the rows already read.
    pub(crate) fn continue_after_rewrite(&mut self) {
        let skip = self.data_rows;
        self.reset();
        self.skip_rows = skip;
    }

    pub(crate) fn header_names(&self) -> impl Iterator<Item = &str> {
        self.header.iter().map(|(n, _)| n.as_str())
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Vec<Record>, tally: &mut Tally) {
        let (batch, line_no) = (&mut self.batch, &mut self.line_no);
        self.lines.feed(data, |line| match line {
            Line::Complete(bytes) => {
                // A BOM opening a later line (files concatenated) is dropped
                // here: the csv reader would drop it only at the start of a
                // batch, so the result would depend on where reads end.
                batch.extend_from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes));
                batch.push(b'\n');
            }
            Line::TooLong(n) => {
                *line_no += 1;
                tally.too_long(*line_no, n);
            }
        });
        self.parse_batch(out, tally);
    }

    /// The input is over: an unfinished last line is a bad line.
    pub(crate) fn finish(&mut self, tally: &mut Tally) {
        if let Some(partial) = self.lines.take_partial() {
            count_partial(partial, self.line_no + 1, tally);
        }
    }

    fn parse_batch(&mut self, out: &mut Vec<Record>, tally: &mut Tally) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&batch[..]);
        let mut row = ::csv::ByteRecord::new();
        let mut lines_before = 0;
        loop {
            match reader.read_byte_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {
                    let line = row.position().map_or(lines_before + 1, |p| p.line());
                    lines_before = line;
                    self.row(&row, self.line_no + line, out, tally);
                }
                Err(err) => {
                    tally.bad(self.line_no + lines_before + 1, err);
                    lines_before += 1;
                }
            }
        }
        self.line_no += memchr::memchr_iter(b'\n', &batch).count() as u64;
        // Keep the allocation for the next batch.
        self.batch = batch;
        self.batch.clear();
    }

    fn row(
        &mut self,
        row: &::csv::ByteRecord,
        line: u64,
        out: &mut Vec<Record>,
        tally: &mut Tally,
    ) {
        let cells = || row.iter().map(|c| c.trim_ascii());
        if cells().all(<[u8]>::is_empty) {
            return;
        }
        if self.header.is_empty() || self.is_header(row) {
            self.header = cells()
                .map(|c| {
                    let name = String::from_utf8_lossy(c).into_owned();
                    let role = self.map.classify(&name);
                    (name, role)
                })
                .collect();
            return;
        }
        self.data_rows += 1;
        if self.skip_rows > 0 {
            self.skip_rows -= 1;
            return;
        }
        if row.len() > self.header.len() {
            let message = format!(
                "row has {} fields, the header has {}",
                row.len(),
                self.header.len()
            );
            tally.bad(line, message);
            return;
        }
        let mut builder = RecordBuilder::new(&self.map);
        for ((name, role), cell) in self.header.iter().zip(cells()) {
            if let Some(value) = parse_number(cell) {
                builder.add(name, *role, value);
            }
        }
        if let Some(rec) = builder.finish() {
            tally.records += 1;
            out.push(rec);
        }
    }

    /// A row of names only, sharing at least one with the current header.
    fn is_header(&self, row: &::csv::ByteRecord) -> bool {
        let mut shares_a_name = false;
        for cell in row.iter().map(|c| c.trim_ascii()) {
            if cell.is_empty() || parse_number(cell).is_some() {
                return false;
            }
            shares_a_name |= self.header.iter().any(|(n, _)| n.as_bytes() == cell);
        }
        shares_a_name
    }
}

/// A numeric cell; `nan`, `inf`, `-inf` (any case) are numbers too.
fn parse_number(cell: &[u8]) -> Option<Num> {
    if cell.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(cell).ok()?;
    if let Ok(v) = text.parse::<u64>() {
        return Some(Num::Int(v));
    }
    text.parse::<f64>().ok().map(Num::Float)
}

fn header_cells(line: &[u8]) -> Vec<String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut row = ::csv::ByteRecord::new();
    match reader.read_byte_record(&mut row) {
        Ok(true) => row
            .iter()
            .map(|c| String::from_utf8_lossy(c.trim_ascii()).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> (Vec<Record>, Tally) {
        let mut stream = CsvStream::new(FieldMap::new());
        let (mut out, mut tally) = (Vec::new(), Tally::default());
        stream.feed(text.as_bytes(), &mut out, &mut tally);
        stream.finish(&mut tally);
        (out, tally)
    }

    #[test]
    fn sparse_rows_and_non_numeric_cells() {
        let (recs, tally) =
            parse_all("epoch,lr-AdamW,step,train_loss_step,note\n,0.1,4,,x\r\n0,,4,2.5,\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].lr, Some(0.1));
        assert_eq!(recs[0].epoch, None);
        assert_eq!(recs[1].loss, Some(2.5));
        assert_eq!(recs[1].epoch, Some(0.0));
        assert_eq!(recs[1].step, Some(4));
        assert_eq!(tally.bad, 0);
    }

    #[test]
    fn a_header_row_in_the_stream_replaces_the_header() {
        let (recs, _) = parse_all("step,loss\n1,2.0\nstep,loss,val_loss\n2,1.5,3.0\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].get("val_loss"), Some(3.0));
    }

    #[test]
    fn too_many_fields_and_unfinished_rows_are_bad() {
        let (recs, tally) = parse_all("step,loss\n1,2,3\n2,1.0\n3,0.");
        assert_eq!(recs.len(), 1);
        assert_eq!(tally.bad, 2);
        assert_eq!(recs[0].step, Some(2));
    }

    #[test]
    fn a_bom_inside_the_file_does_not_depend_on_read_boundaries() {
        // Found by fuzzing (csv_reader): two files concatenated, each with a BOM.
        let text = "\u{feff}step,loss\n1,2.0\n\u{feff}step,loss\n2,1.5\n";
        let (whole, tally) = parse_all(text);
        assert_eq!(tally.bad, 0);
        let cut = text.rfind('\u{feff}').unwrap();
        let mut stream = CsvStream::new(FieldMap::new());
        let (mut split, mut tally) = (Vec::new(), Tally::default());
        stream.feed(&text.as_bytes()[..cut], &mut split, &mut tally);
        stream.feed(&text.as_bytes()[cut..], &mut split, &mut tally);
        stream.finish(&mut tally);
        assert_eq!(split, whole);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[1].loss, Some(1.5));
        assert_eq!(whole[1].step, Some(2));
    }

    #[test]
    fn only_a_plausible_header_is_csv() {
        let claim = |t: &[u8]| Csv.claim_content(t, true);
        assert_eq!(
            claim(b"epoch,lr-AdamW,step,train/loss\n0,0.1,1,2\n"),
            ContentClaim::Plain
        );
        assert_eq!(claim(b"\"step\",\"loss\"\r\n1,2\r\n"), ContentClaim::Plain);
        assert_eq!(
            claim(b"[transformers] Model config: x, got 5.\n"),
            ContentClaim::No
        );
        assert_eq!(claim(b"1,2,3\n"), ContentClaim::No);
        assert_eq!(claim(b"loss\n0.5\n"), ContentClaim::No);
        assert_eq!(
            claim(&[0x8f, 0x00, 0x13, b',', 0xff, b'\n']),
            ContentClaim::No
        );
        assert_eq!(
            Csv.claim_content(b"step,lo", false),
            ContentClaim::Undecided
        );
    }

    #[test]
    fn non_finite_cells_are_numbers() {
        let (recs, _) = parse_all("step,loss\n1,nan\n2,inf\n");
        assert!(recs[0].loss.unwrap().is_nan());
        assert_eq!(recs[1].loss, Some(f64::INFINITY));
    }
}
