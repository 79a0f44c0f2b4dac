//! Between a parser and the sink: `Batch` gathers the records and bad lines
//! a parser produced, `Out` sends them (and statuses) as `SourceEvent`s.

use crate::metrics::{Record, RunId};

use super::event::{FollowStatus, SourceEvent};
use super::formats::Format;
use super::tally::Tally;

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
    pub(crate) records: Vec<Record>,
    pub(crate) tally: Tally,
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
}
