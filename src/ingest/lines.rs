//! Splits a byte stream into lines as it arrives: a partial last line is held
//! until its newline comes; an endless line is cut off at `MAX_LINE` bytes
//! instead of growing memory without bound.

/// Longest line parsed; longer lines count as bad.
pub(crate) const MAX_LINE: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One unit handed to a format parser.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A line without its `\n` (a trailing `\r` is left to the parser).
    Complete(&'a [u8]),
    /// A line over `MAX_LINE` bytes (reported once, when it ends or is cut).
    TooLong(usize),
}

#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    pending: Vec<u8>,
    /// Bytes of an over-long line seen so far; we skip to its newline.
    skipping: Option<usize>,
    started: bool,
}

impl LineBuffer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Forgets everything, for reading a file again from its start.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    /// Feeds bytes, calling `on_line` for every line they complete.
    pub(crate) fn feed(&mut self, mut data: &[u8], mut on_line: impl FnMut(Line<'_>)) {
        if !self.started {
            // A BOM can only be recognised once its three bytes are here.
            if self.pending.len() + data.len() < BOM.len()
                && BOM.starts_with(&[&self.pending[..], data].concat())
            {
                self.pending.extend_from_slice(data);
                return;
            }
            self.started = true;
            let mut head = std::mem::take(&mut self.pending);
            head.extend_from_slice(data);
            let body = head.strip_prefix(BOM).unwrap_or(&head);
            self.feed_started(body, &mut on_line);
            return;
        }
        if let Some(seen) = self.skipping {
            match memchr::memchr(b'\n', data) {
                None => {
                    self.skipping = Some(seen + data.len());
                    return;
                }
                Some(nl) => {
                    on_line(Line::TooLong(seen + nl));
                    self.skipping = None;
                    data = &data[nl + 1..];
                }
            }
        }
        self.feed_started(data, &mut on_line);
    }

    fn feed_started(&mut self, mut data: &[u8], on_line: &mut impl FnMut(Line<'_>)) {
        if !self.pending.is_empty() {
            match memchr::memchr(b'\n', data) {
                None => {
                    self.hold(data);
                    return;
                }
                Some(nl) => {
                    if self.pending.len() + nl > MAX_LINE {
                        on_line(Line::TooLong(self.pending.len() + nl));
                    } else {
                        self.pending.extend_from_slice(&data[..nl]);
                        on_line(Line::Complete(&self.pending));
                    }
                    self.pending.clear();
                    data = &data[nl + 1..];
                }
            }
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            emit(&data[start..nl], on_line);
            start = nl + 1;
        }
        self.hold(&data[start..]);
    }

    fn hold(&mut self, partial: &[u8]) {
        if self.pending.len() + partial.len() > MAX_LINE {
            self.skipping = Some(self.pending.len() + partial.len());
            self.pending.clear();
        } else {
            self.pending.extend_from_slice(partial);
        }
    }

    /// The input ended: an unfinished line left over (None if there is none).
    /// The caller decides what it means (lrtop counts it as a bad line).
    pub(crate) fn take_partial(&mut self) -> Option<Partial> {
        let partial = if let Some(seen) = self.skipping.take() {
            Some(Partial::TooLong(seen))
        } else if self.pending.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(Partial::Bytes(std::mem::take(&mut self.pending)))
        };
        self.pending.clear();
        partial
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Partial {
    Bytes(Vec<u8>),
    TooLong(usize),
}

fn emit(line: &[u8], on_line: &mut impl FnMut(Line<'_>)) {
    if line.len() > MAX_LINE {
        on_line(Line::TooLong(line.len()));
    } else {
        on_line(Line::Complete(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(parts: &[&[u8]]) -> (Vec<String>, Option<Partial>) {
        let mut buf = LineBuffer::new();
        let mut out = Vec::new();
        for part in parts {
            buf.feed(part, |line| {
                out.push(match line {
                    Line::Complete(l) => String::from_utf8_lossy(l).into_owned(),
                    Line::TooLong(n) => format!("<{n}>"),
                })
            });
        }
        (out, buf.take_partial())
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let (lines, rest) = lines_of(&[b"ab", b"c\nd", b"e\n\nf"]);
        assert_eq!(lines, ["abc", "de", ""]);
        assert_eq!(rest, Some(Partial::Bytes(b"f".to_vec())));
    }

    #[test]
    fn bom_is_stripped_even_when_split() {
        let (lines, rest) = lines_of(&[b"\xEF", b"\xBB", b"\xBFx\n"]);
        assert_eq!(lines, ["x"]);
        assert_eq!(rest, None);
        let (lines, _) = lines_of(&[b"\xEF\xBB\xBFa\n\xEF\xBB\xBFb\n"]);
        assert_eq!(lines, ["a", "\u{feff}b"]);
    }

    #[test]
    fn overlong_lines_are_cut_and_reported_once() {
        let big = vec![b'x'; MAX_LINE + 10];
        let (lines, _) = lines_of(&[b"a\n", &big, b"yy\nb\n"]);
        assert_eq!(lines, ["a", &format!("<{}>", MAX_LINE + 12), "b"]);
        let mut one = big.clone();
        one.extend_from_slice(b"\nc\n");
        let (lines, _) = lines_of(&[&one]);
        assert_eq!(lines, [format!("<{}>", MAX_LINE + 10), "c".to_string()]);
        let (_, rest) = lines_of(&[b"a\n", &big]);
        assert_eq!(rest, Some(Partial::TooLong(MAX_LINE + 10)));
    }
}
