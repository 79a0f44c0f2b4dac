//! Hugging Face `trainer_state.json`: every entry of its `log_history` list
//! is a record. The file is rewritten whole on each save, so it is parsed
//! whole.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{ContentClaim, LogFormat, NameClaim, Reader, Whole, WholeParser};
use crate::ingest::IngestError;
use crate::ingest::batch::Batch;
use crate::ingest::fields::FieldMap;
use crate::ingest::json::{RecordSeed, rewrite_non_finite};
use crate::metrics::Record;

/// Hugging Face's `trainer_state.json` (also renamed: `*trainer_state.json`).
pub(crate) struct TrainerState;

impl LogFormat for TrainerState {
    fn name(&self) -> &'static str {
        "hf-trainer-state"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        // Also renamed copies: `run.trainer_state.json`, `hf_trainer_state.json`.
        if name.ends_with("trainer_state.json") {
            NameClaim::Certain
        } else {
            NameClaim::No
        }
    }

    /// Strong when the object has a top-level `log_history`; undecided
    /// while its first line is still being written.
    fn claim_content(&self, head: &[u8], complete: bool) -> ContentClaim {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let Some(start) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
            return ContentClaim::No;
        };
        let head = &head[start..];
        if head[0] != b'{' {
            return ContentClaim::No;
        }
        let first_line = match memchr::memchr(b'\n', head) {
            Some(nl) => &head[..nl],
            None if complete => head,
            None => &[],
        };
        match has_log_history(first_line.trim_ascii_end()) {
            Some(true) => return ContentClaim::Strong,
            Some(false) => return ContentClaim::No,
            None => {}
        }
        // A pretty-printed object (or a first line still being written).
        if memchr::memmem::find(head, b"\"log_history\"").is_some() {
            ContentClaim::Strong
        } else if complete || memchr::memchr(b'\n', head).is_some() {
            ContentClaim::No
        } else {
            ContentClaim::Undecided
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Whole(Box::new(StateParser {
            map: map.clone(),
            sent: 0,
        }))
    }

    /// HF saves each checkpoint in a new `checkpoint-N/` directory with the
    /// whole log history so far: move on to the newest.
    fn newer_file(&self, path: &Path) -> Option<PathBuf> {
        let (run_dir, current) = checkpoint_of(path)?;
        fs::read_dir(&run_dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let n: u64 = e
                    .file_name()
                    .to_str()?
                    .strip_prefix("checkpoint-")?
                    .parse()
                    .ok()?;
                let state = e.path().join("trainer_state.json");
                (n > current && state.is_file()).then_some((n, state))
            })
            .max_by_key(|(n, _)| *n)
            .map(|(_, state)| state)
    }

    fn invalid(&self, path: &Path, message: String) -> IngestError {
        IngestError::TrainerState {
            path: path.to_path_buf(),
            message,
        }
    }
}

/// Parsed whole on every change; `sent` entries of `log_history` are out.
#[derive(Debug)]
struct StateParser {
    map: FieldMap,
    sent: usize,
}

impl WholeParser for StateParser {
    fn parse(&mut self, bytes: &[u8], out: &mut Batch) -> Result<Whole, String> {
        let entries = parse(bytes, &self.map)?;
        let mut outcome = Whole::Grew;
        if entries.len() < self.sent {
            outcome = Whole::Shrank;
            self.sent = 0;
        }
        let new = entries.len() - self.sent;
        for rec in entries.into_iter().skip(self.sent).flatten() {
            out.tally.records += 1;
            out.records.push(rec);
        }
        self.sent += new;
        Ok(outcome)
    }
}

/// `RUN/checkpoint-N/trainer_state.json` -> (RUN, N).
pub(crate) fn checkpoint_of(path: &Path) -> Option<(PathBuf, u64)> {
    let dir = path.parent()?;
    let n = dir.file_name()?.to_str()?.strip_prefix("checkpoint-")?;
    Some((dir.parent()?.to_path_buf(), n.parse().ok()?))
}

/// The `log_history` entries in order; None for an entry without a number.
pub(crate) fn parse(bytes: &[u8], map: &FieldMap) -> Result<Vec<Option<Record>>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match parse_strict(bytes, map) {
        Ok(entries) => Ok(entries),
        Err(err) => match rewrite_non_finite(bytes) {
            Some(rewritten) => parse_strict(&rewritten, map).map_err(|_| err),
            None => Err(err),
        },
    }
}

fn parse_strict(bytes: &[u8], map: &FieldMap) -> Result<Vec<Option<Record>>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let entries = de
        .deserialize_map(StateVisitor { map })
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    entries.ok_or_else(|| "no \"log_history\" list".to_string())
}

/// Does this complete JSON object have a top-level `log_history` key?
pub(crate) fn has_log_history(bytes: &[u8]) -> Option<bool> {
    let check = |bytes: &[u8]| -> Option<bool> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let found = de.deserialize_map(KeyProbe).ok()?;
        de.end().ok()?;
        Some(found)
    };
    check(bytes).or_else(|| check(&rewrite_non_finite(bytes)?))
}

struct StateVisitor<'m> {
    map: &'m FieldMap,
}

impl<'de> Visitor<'de> for StateVisitor<'_> {
    type Value = Option<Vec<Option<Record>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trainer_state object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut history = None;
        while let Some(key) = access.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "log_history" {
                history = Some(access.next_value_seed(HistorySeed { map: self.map })?);
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok(history)
    }
}

struct HistorySeed<'m> {
    map: &'m FieldMap,
}

impl<'de> DeserializeSeed<'de> for HistorySeed<'_> {
    type Value = Vec<Option<Record>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for HistorySeed<'_> {
    type Value = Vec<Option<Record>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of log entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0));
        let seed = || RecordSeed {
            map: self.map,
            lenient: true,
        };
        while let Some(entry) = access.next_element_seed(seed())? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

struct KeyProbe;

impl<'de> Visitor<'de> for KeyProbe {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = access.next_key::<std::borrow::Cow<'de, str>>()? {
            found |= key == "log_history";
            access.next_value::<IgnoredAny>()?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_positions() {
        let text = br#"{"epoch": 1, "log_history": [{"loss": 1.0, "step": 1}, {"note": "x"}, 3, {"loss": NaN, "step": 2}], "x": [1]}"#;
        let entries = parse(text, &FieldMap::new()).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].as_ref().unwrap().loss, Some(1.0));
        assert!(entries[1].is_none() && entries[2].is_none());
        assert!(entries[3].as_ref().unwrap().loss.unwrap().is_nan());
    }

    #[test]
    fn missing_history_or_broken_json_is_an_error() {
        assert!(parse(br#"{"a": 1}"#, &FieldMap::new()).is_err());
        assert!(parse(br#"{"log_history": [{"loss": 1}"#, &FieldMap::new()).is_err());
        assert!(parse(br#"{"log_history": 3}"#, &FieldMap::new()).is_err());
        assert_eq!(has_log_history(br#"{"log_history": []}"#), Some(true));
        assert_eq!(has_log_history(br#"{"loss": NaN}"#), Some(false));
        assert_eq!(has_log_history(br#"{"loss": "#), None);
    }
}
