//! What a follower sends and the parsers that fill it: `Out` wraps the
//! sink, `Batch` gathers records and bad lines between sends, `Parser` is a
//! format's incremental parser (stream formats line by line, trainer_state
//! whole).

use crate::metrics::{Record, RunId};

use super::csv::CsvStream;
use super::fields::FieldMap;
use super::follow::{FollowStatus, SourceEvent};
use super::jsonl::JsonlStream;
use super::tally::Tally;
use super::{Format, trainer_state};

/// Most records in one `Records` event (a large catch-up is sent in parts).
const MAX_BATCH: usize = 64 * 1024;

/// The sink and whether it still wants events.
pub(crate) struct Out<'a> {
    run: RunId,
    sink: &'a mut dyn FnMut(SourceEvent) -> bool,
    alive: bool,
}

impl<'a> Out<'a> {
    pub(crate) fn new(run: RunId, sink: &'a mut dyn FnMut(SourceEvent) -> bool) -> Self {
        Out {
            run,
            sink,
            alive: true,
        }
    }

    pub(crate) fn alive(&self) -> bool {
        self.alive
    }

    fn send(&mut self, event: SourceEvent) {
        if self.alive {
            self.alive = (self.sink)(event);
        }
    }

    pub(crate) fn status(&mut self, status: FollowStatus, detail: Option<String>) {
        let run = self.run;
        self.send(SourceEvent::Status {
            run,
            status,
            detail,
        });
    }

    pub(crate) fn format(&mut self, format: Format) {
        let run = self.run;
        self.send(SourceEvent::Format { run, format });
    }
}

/// Records and bad lines not yet sent.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    records: Vec<Record>,
    tally: Tally,
    bad_sent: u64,
}

impl Batch {
    pub(crate) fn flush(&mut self, out: &mut Out) {
        if !self.records.is_empty() {
            let records = std::mem::take(&mut self.records);
            let run = out.run;
            out.send(SourceEvent::Records { run, records });
        }
        if self.tally.bad > self.bad_sent {
            self.bad_sent = self.tally.bad;
            let run = out.run;
            out.send(SourceEvent::BadLines {
                run,
                total: self.tally.bad,
                last_error: self.tally.last_error.clone().unwrap_or_default(),
            });
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= MAX_BATCH
    }

    /// Takes over the records of another batch (bad lines stay there).
    pub(crate) fn absorb(&mut self, mut other: Batch) {
        self.records.append(&mut other.records);
        self.tally.records += other.tally.records;
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.tally.last_error.clone()
    }
}

/// A format's incremental parser.
#[derive(Debug)]
pub(crate) enum Parser {
    Jsonl(JsonlStream),
    Csv(CsvStream),
    /// Parsed whole on every change; `sent` entries of `log_history` are out.
    TrainerState {
        map: FieldMap,
        sent: usize,
    },
}

impl Parser {
    pub(crate) fn new(format: Format, map: &FieldMap) -> Parser {
        match format {
            Format::Jsonl => Parser::Jsonl(JsonlStream::new(map.clone())),
            Format::Csv => Parser::Csv(CsvStream::new(map.clone())),
            Format::HfTrainerState => Parser::TrainerState {
                map: map.clone(),
                sent: 0,
            },
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8], batch: &mut Batch) {
        match self {
            Parser::Jsonl(p) => p.feed(data, &mut batch.records, &mut batch.tally),
            Parser::Csv(p) => p.feed(data, &mut batch.records, &mut batch.tally),
            Parser::TrainerState { .. } => {}
        }
    }

    /// The input ended: an unfinished last line is a bad line.
    pub(crate) fn finish(&mut self, batch: &mut Batch) {
        match self {
            Parser::Jsonl(p) => p.finish(&mut batch.tally),
            Parser::Csv(p) => p.finish(&mut batch.tally),
            Parser::TrainerState { .. } => {}
        }
    }

    pub(crate) fn reset(&mut self) {
        match self {
            Parser::Jsonl(p) => p.reset(),
            Parser::Csv(p) => p.reset(),
            Parser::TrainerState { sent, .. } => *sent = 0,
        }
    }

    /// A whole trainer_state document: the entries not sent yet. False when
    /// it does not parse (e.g. caught in the middle of being written).
    pub(crate) fn parse_whole(&mut self, bytes: &[u8], batch: &mut Batch, out: &mut Out) -> bool {
        let Parser::TrainerState { map, sent } = self else {
            return false;
        };
        match trainer_state::parse(bytes, map) {
            Ok(entries) => {
                if entries.len() < *sent {
                    out.status(FollowStatus::Truncated, None);
                    *sent = 0;
                }
                let new = entries.len() - *sent;
                for rec in entries.into_iter().skip(*sent).flatten() {
                    batch.tally.records += 1;
                    batch.records.push(rec);
                }
                *sent += new;
                true
            }
            Err(message) => {
                batch
                    .tally
                    .bad(1, format!("not a valid trainer_state.json: {message}"));
                false
            }
        }
    }
}
