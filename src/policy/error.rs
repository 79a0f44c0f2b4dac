use std::fmt;

/// A problem with a policy spec, pointing at the text that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The whole spec, for the caret display.
    pub src: String,
    /// Byte range of the offending text in `src`.
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub help: Option<String>,
}

impl SpecError {
    pub fn at(src: &str, start: usize, end: usize, message: impl Into<String>) -> Self {
        let start = start.min(src.len());
        SpecError {
            src: src.to_string(),
            start,
            end: end.clamp(start, src.len()),
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// 1-based column (in characters) of the start of the problem.
    pub fn column(&self) -> usize {
        self.src
            .get(..self.start)
            .map_or(self.start, |s| s.chars().count())
            + 1
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column(), self.message)?;
        if !self.src.contains('\n') && self.src.chars().count() <= 300 {
            let pad = self.column() - 1;
            let width = self
                .src
                .get(self.start..self.end)
                .map_or(1, |s| s.chars().count())
                .max(1);
            write!(
                f,
                "\n  {}\n  {}{}",
                self.src,
                " ".repeat(pad),
                "^".repeat(width)
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}
