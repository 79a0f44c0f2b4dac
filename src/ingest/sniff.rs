//! Format detection: by file name, else by the first bytes.

use std::path::Path;

use super::Format;
use super::trainer_state::has_log_history;

/// Bytes read from a file's start to decide its format.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// The format a name alone settles (`*.csv`, `*.jsonl`, `trainer_state.json`).
pub(crate) fn format_by_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name == "trainer_state.json" {
        Some(Format::HfTrainerState)
    } else if name.ends_with(".csv") {
        Some(Format::Csv)
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Some(Format::Jsonl)
    } else {
        None
    }
}

/// The format of content starting with `head`. `complete`: `head` is the
/// whole input, so an unfinished first line will not grow. None: not enough
/// to decide yet (empty, or a first line still being written).
pub(crate) fn sniff(head: &[u8], complete: bool) -> Option<Format> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &head[start..];
    if head[0] != b'{' {
        return Some(Format::Csv);
    }
    let first_line = match memchr::memchr(b'\n', head) {
        Some(nl) => &head[..nl],
        None if complete => head,
        None => &[],
    };
    match has_log_history(first_line.trim_ascii_end()) {
        Some(true) => return Some(Format::HfTrainerState),
        Some(false) => return Some(Format::Jsonl),
        None => {}
    }
    // A pretty-printed object (or a first line still being written).
    if memchr::memmem::find(head, b"\"log_history\"").is_some() {
        Some(Format::HfTrainerState)
    } else if complete || memchr::memchr(b'\n', head).is_some() {
        Some(Format::Jsonl)
    } else {
        None
    }
}

/// Name first; for JSON-ish names the content decides between JSONL and
/// trainer_state, since both are `{`-first.
pub(crate) fn detect(path: Option<&Path>, head: &[u8], complete: bool) -> Option<Format> {
    let by_name = path.and_then(format_by_name);
    match by_name {
        Some(Format::Csv) | Some(Format::HfTrainerState) => by_name,
        Some(Format::Jsonl) => match sniff(head, complete) {
            Some(Format::HfTrainerState) => Some(Format::HfTrainerState),
            _ => by_name,
        },
        None => sniff(head, complete),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"", true), None);
        assert_eq!(sniff(b" \n", true), None);
        assert_eq!(sniff(b"step,loss\n", false), Some(Format::Csv));
        assert_eq!(sniff(b"{\"a\": 1}\n{\"a\": 2}", false), Some(Format::Jsonl));
        assert_eq!(
            sniff(b"\xEF\xBB\xBF{\"a\": NaN}\n", false),
            Some(Format::Jsonl)
        );
        assert_eq!(sniff(b"{\"a\": 1", false), None);
        assert_eq!(sniff(b"{\"a\": 1", true), Some(Format::Jsonl));
        assert_eq!(
            sniff(b"{\"epoch\": 1, \"log_history\": []}", true),
            Some(Format::HfTrainerState)
        );
        assert_eq!(
            sniff(b"{\n  \"epoch\": 1,\n  \"log_history\": [\n", false),
            Some(Format::HfTrainerState)
        );
    }

    #[test]
    fn names_first() {
        let p = |s: &str| Some(Path::new(s).to_path_buf());
        assert_eq!(
            detect(p("a/metrics.csv").as_deref(), b"{", true),
            Some(Format::Csv)
        );
        assert_eq!(
            detect(p("x/trainer_state.json").as_deref(), b"", false),
            Some(Format::HfTrainerState)
        );
        assert_eq!(
            detect(p("log.jsonl").as_deref(), b"", false),
            Some(Format::Jsonl)
        );
        assert_eq!(detect(p("log.json").as_deref(), b"", false), None);
        assert_eq!(
            detect(p("log.json").as_deref(), b"{\"a\":1}\n", false),
            Some(Format::Jsonl)
        );
    }
}
