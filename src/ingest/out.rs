//! Between a parser's output and the sink: `Out` sends a batch's records,
//! bad-line counts and statuses as `SourceEvent`s, and notes when the sink
//! stops listening.

use super::batch::Batch;
use super::event::{FollowStatus, SourceEvent};
use super::formats::Format;
use crate::metrics::RunId;

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

    /// Sends what `batch` holds: its records, and the bad-line count if it grew.
    pub(crate) fn flush(&mut self, batch: &mut Batch) {
        if batch.dialect != batch.dialect_sent
            && let Some(name) = batch.dialect
        {
            batch.dialect_sent = Some(name);
            let run = self.run;
            self.send(SourceEvent::Dialect { run, name });
        }
        if let Some(config) = batch.config.take() {
            let run = self.run;
            self.send(SourceEvent::Config { run, config });
        }
        if !batch.records.is_empty() {
            let records = std::mem::take(&mut batch.records);
            let run = self.run;
            self.send(SourceEvent::Records { run, records });
        }
        if batch.tally.bad > batch.bad_sent {
            batch.bad_sent = batch.tally.bad;
            let run = self.run;
            self.send(SourceEvent::BadLines {
                run,
                total: batch.tally.bad,
                last_error: batch.tally.last_error.clone().unwrap_or_default(),
            });
        }
    }
}
