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
    lines: LineBuffer,
    /// Complete lines not yet split into rows.
    batch: Vec<u8>,
    splitter: RowSplitter,
    rows: RowReader,
    line_no: u64,
}

impl CsvStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        CsvStream {
            lines: LineBuffer::new(),
            batch: Vec::new(),
            splitter: RowSplitter::new(),
            rows: RowReader::new(map),
            line_no: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.lines = LineBuffer::new();
        self.batch.clear();
        self.rows = RowReader::new(std::mem::take(&mut self.rows.map));
        self.line_no = 0;
    }

    /// The file was rewritten from its start with the same rows and a
    /// grown header: read it again, passing over the rows already read.
    pub(crate) fn continue_after_rewrite(&mut self) {
        let skip = self.rows.data_rows;
        self.reset();
        self.rows.skip_rows = skip;
    }

    pub(crate) fn header_names(&self) -> impl Iterator<Item = &str> {
        self.rows.header.iter().map(|(n, _)| n.as_str())
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

    /// Each batch of complete lines is an input of its own: a quoted field
    /// left open ends with the batch.
    fn parse_batch(&mut self, out: &mut Vec<Record>, tally: &mut Tally) {
        if self.batch.is_empty() {
            return;
        }
        self.splitter.start();
        let mut input = &self.batch[..];
        while let Some((line, row)) = self.splitter.next_row(&mut input) {
            self.rows.row(row, self.line_no + line, out, tally);
        }
        self.line_no += memchr::memchr_iter(b'\n', &self.batch).count() as u64;
        // Keep the allocation for the next batch.
        self.batch.clear();
    }
}

/// Splits CSV text into rows (RFC 4180 quoting; `\n`, `\r` or `\r\n` end a
/// row; blank lines are passed over). One parser serves a whole stream:
/// building one (its DFA) costs more than splitting a typical batch, and a
/// follower splits a batch on every read that completes a line.
#[derive(Debug)]
struct RowSplitter {
    core: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

/// One row's cells, borrowed from the splitter.
#[derive(Clone, Copy)]
struct Row<'a> {
    fields: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Row<'a> {
    fn len(self) -> usize {
        self.ends.len()
    }

    /// The cells, trimmed of ASCII white space.
    fn cells(self) -> impl Iterator<Item = &'a [u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let cell = &self.fields[start..end];
            start = end;
            cell.trim_ascii()
        })
    }
}

impl RowSplitter {
    fn new() -> Self {
        RowSplitter {
            core: csv_core::Reader::new(),
            fields: vec![0; 1024],
            ends: vec![0; 32],
        }
    }

    /// The next input starts: forget any row left open and count lines from 1.
    fn start(&mut self) {
        self.core.reset();
    }

    /// The next row of `input` (which advances past it) with the line its
    /// read started on, counted from 1 at `start`; `None` when the input is
    /// used up.
    fn next_row(&mut self, input: &mut &[u8]) -> Option<(u64, Row<'_>)> {
        use csv_core::ReadRecordResult::{End, InputEmpty, OutputEndsFull, OutputFull, Record};
        let line = self.core.line();
        let (mut field_len, mut end_len) = (0, 0);
        loop {
            // An empty input tells the parser that the text is over.
            let (result, read, wrote, ended) = self.core.read_record(
                input,
                &mut self.fields[field_len..],
                &mut self.ends[end_len..],
            );
            *input = &input[read..];
            field_len += wrote;
            end_len += ended;
            match result {
                InputEmpty => {}
                OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                Record => {
                    let row = Row {
                        fields: &self.fields[..field_len],
                        ends: &self.ends[..end_len],
                    };
                    return Some((line, row));
                }
                End => return None,
            }
        }
    }
}

/// Turns rows into records under the current header.
#[derive(Debug)]
struct RowReader {
    map: FieldMap,
    header: Vec<(String, Role)>,
    /// Data rows read since the file's start (header rows excluded).
    data_rows: u64,
    /// Data rows to pass over: those already read before a rewrite.
    skip_rows: u64,
}

impl RowReader {
    fn new(map: FieldMap) -> Self {
        RowReader {
            map,
            header: Vec::new(),
            data_rows: 0,
            skip_rows: 0,
        }
    }

    fn row(&mut self, row: Row<'_>, line: u64, out: &mut Vec<Record>, tally: &mut Tally) {
        if row.cells().all(<[u8]>::is_empty) {
            return;
        }
        if self.header.is_empty() || self.is_header(row) {
            self.header = row
                .cells()
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
        for ((name, role), cell) in self.header.iter().zip(row.cells()) {
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
    fn is_header(&self, row: Row<'_>) -> bool {
        let mut shares_a_name = false;
        for cell in row.cells() {
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
    let mut line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let mut splitter = RowSplitter::new();
    match splitter.next_row(&mut line) {
        Some((_, row)) => row
            .cells()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect(),
        None => Vec::new(),
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

    /// The splitter gives the rows, and the lines they start on, that the
    /// csv crate gives; one splitter serves input after input.
    #[test]
    fn rows_and_lines_are_the_csv_crates() {
        let long_cell = format!("a,\"{}\"\n", "x".repeat(3000));
        let many_cells = format!("{}\n1\n", vec!["7"; 100].join(","));
        let inputs = [
            "step,loss\n1,2.0\n",
            "\n\nstep,loss\n\n1, 2.0 \r\n\r\n2,3\r4,5\n",
            "a,\"b\nc\",d\n1,\"2\"\"3\",4\n",
            "a,\"open quote\n1,2\n",
            "a,b\n1,2,3,4\n,\n\"\"\n",
            "no newline at the end",
            long_cell.as_str(),
            many_cells.as_str(),
            "",
        ];
        let mut splitter = RowSplitter::new();
        for text in inputs {
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let expected: Vec<(u64, Vec<Vec<u8>>)> = reader
                .byte_records()
                .map(|r| {
                    let r = r.expect("a slice cannot fail to read");
                    let line = r.position().expect("a read record has a position").line();
                    (line, r.iter().map(|c| c.trim_ascii().to_vec()).collect())
                })
                .collect();
            splitter.start();
            let mut input = text.as_bytes();
            let mut got = Vec::new();
            while let Some((line, row)) = splitter.next_row(&mut input) {
                got.push((line, row.cells().map(<[u8]>::to_vec).collect()));
            }
            assert_eq!(got, expected, "{text:?}");
        }
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
