//! What a parser produced and not yet sent: records, and the running count
//! of bad lines.

use crate::metrics::Record;

use super::run_config::RunConfig;
use super::tally::Tally;

/// Most records in one `Records` event (a large catch-up is sent in parts).
const MAX_BATCH: usize = 64 * 1024;

/// Records and bad lines not yet sent.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) records: Vec<Record>,
    pub(crate) tally: Tally,
    /// Bad lines already reported.
    pub(crate) bad_sent: u64,
    /// The run's settings, when the format records them and they changed.
    pub(crate) config: Option<RunConfig>,
    /// The format's variant, and the one last sent.
    pub(crate) dialect: Option<&'static str>,
    pub(crate) dialect_sent: Option<&'static str>,
}

impl Batch {
    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= MAX_BATCH
    }

    /// Takes over the records of another batch (bad lines stay there).
    pub(crate) fn absorb(&mut self, mut other: Batch) {
        self.records.append(&mut other.records);
        self.tally.records += other.tally.records;
    }
}
