//! Counts of what a parse produced: records, bad lines and the last error.

/// Running totals of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Lines or rows that became records.
    pub(crate) records: u64,
    pub(crate) bad: u64,
    pub(crate) last_error: Option<String>,
}

impl Tally {
    pub(crate) fn bad(&mut self, line: u64, message: impl std::fmt::Display) {
        self.bad += 1;
        self.last_error = Some(format!("line {line}: {message}"));
    }

    pub(crate) fn too_long(&mut self, line: u64, bytes: usize) {
        self.bad(line, too_long_message(bytes));
    }
}

pub(crate) fn too_long_message(bytes: usize) -> String {
    format!(
        "line of {bytes} bytes is over the {} MiB limit",
        super::lines::MAX_LINE >> 20
    )
}
