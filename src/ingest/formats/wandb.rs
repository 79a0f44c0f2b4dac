//! W&B run files (`run-<id>.wandb` in `wandb/offline-run-*/` or
//! `wandb/run-*/`): the transaction log wandb-core writes while the job runs.
//!
//! Framing (W&B's variant of the LevelDB log, checked on files wandb 0.31
//! wrote): a 7-byte header `:W&B`, 0xBEE1 (u16 LE), version 0; then 32 KiB
//! blocks (the header counts towards the first) of chunks `u32 CRC | u16
//! length | u8 type | data`, all little-endian, the CRC being plain CRC-32
//! (IEEE, not masked) over the type byte and the data. Types: FULL 1, FIRST
//! 2, MIDDLE 3, LAST 4; a record never spans a block without being split.
//! Fewer than 7 bytes left in a block are zero padding; an all-zero header
//! skips the rest of the block. A chunk with a bad CRC is a bad record,
//! counted; the reader goes on with the next chunk.
//!
//! Records are protobuf `wandb_internal.Record`s; lrtop reads the history
//! rows (metrics, `_step`, `_timestamp`) and the run's config (its name,
//! planned length, a schedule HF's arguments declare).

use prost::Message;

use super::{ContentClaim, LogFormat, NameClaim, Reader, StreamParser};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder};
use crate::ingest::run_config::{ConfigValue, RunConfig};

/// W&B's transaction log.
pub(crate) struct Wandb;

pub(crate) const MAGIC: &[u8; 7] = b":W&B\xe1\xbe\x00";
const BLOCK: u64 = 32 * 1024;
const CHUNK_HEADER: usize = 7;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

impl LogFormat for Wandb {
    fn name(&self) -> &'static str {
        "wandb"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        if name.ends_with(".wandb") {
            NameClaim::Certain
        } else {
            NameClaim::No
        }
    }

    fn claim_content(&self, head: &[u8], _complete: bool) -> ContentClaim {
        if head.starts_with(&MAGIC[..4]) {
            ContentClaim::Strong
        } else {
            ContentClaim::No
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(WandbStream::new(map.clone())))
    }
}

// The messages, with the field numbers of wandb/proto/wandb_internal.proto
// (wandb 0.31). Only what lrtop reads is declared; prost skips the rest.

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Record {
    #[prost(int64, tag = "1")]
    pub num: i64,
    #[prost(message, optional, tag = "2")]
    pub history: Option<HistoryRecord>,
    #[prost(message, optional, tag = "5")]
    pub config: Option<ConfigRecord>,
    #[prost(message, optional, tag = "17")]
    pub run: Option<RunRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct HistoryRecord {
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<Item>,
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct HistoryStep {
    #[prost(int64, tag = "1")]
    pub num: i64,
}

/// HistoryItem and ConfigItem share these fields.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Item {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

impl Item {
    fn name(&self) -> String {
        if self.key.is_empty() {
            self.nested_key.join("/")
        } else {
            self.key.clone()
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ConfigRecord {
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct RunRecord {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(message, optional, tag = "4")]
    pub config: Option<ConfigRecord>,
    #[prost(string, tag = "8")]
    pub display_name: String,
}

/// A number as W&B's `value_json` holds it (`NaN`, `Infinity` are bare tokens).
fn json_number(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        t if t.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) => {
            t.parse().ok()
        }
        _ => None,
    }
}

/// Incremental reader of one `.wandb` file.
#[derive(Debug)]
pub(crate) struct WandbStream {
    map: FieldMap,
    pending: Vec<u8>,
    /// File offset of `pending[0]`.
    offset: u64,
    header_checked: bool,
    /// The header said this is not a W&B file: the rest is ignored.
    rejected: bool,
    /// A record begun by a FIRST chunk.
    assembling: Option<Vec<u8>>,
    index: u64,
    config: Vec<(String, ConfigValue)>,
    name: Option<String>,
}

impl WandbStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        WandbStream {
            map,
            pending: Vec::new(),
            offset: 0,
            header_checked: false,
            rejected: false,
            assembling: None,
            index: 0,
            config: Vec::new(),
            name: None,
        }
    }

    fn record(&mut self, data: &[u8], out: &mut Batch) {
        self.index += 1;
        let record = match Record::decode(data) {
            Ok(r) => r,
            Err(e) => {
                out.tally.bad(
                    self.index,
                    format!("record {}: not a W&B record: {e}", self.index),
                );
                return;
            }
        };
        if let Some(history) = record.history {
            self.history(history, out);
        }
        let mut config_changed = false;
        if let Some(run) = record.run {
            if !run.display_name.is_empty() {
                self.name = Some(run.display_name);
            } else if !run.run_id.is_empty() {
                self.name = Some(run.run_id);
            }
            if let Some(config) = run.config {
                self.add_config(config);
            }
            config_changed = true;
        }
        if let Some(config) = record.config {
            self.add_config(config);
            config_changed = true;
        }
        if config_changed {
            let values = self.config.iter().map(|(k, v)| (k.as_str(), v.clone()));
            let mut config = RunConfig::from_values(values);
            config.name = self.name.clone().or(config.name);
            out.config = Some(config);
        }
    }

    fn add_config(&mut self, config: ConfigRecord) {
        for item in config.update {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&item.value_json) else {
                continue;
            };
            // W&B wraps each value: {"value": ..., "desc": ...} in some versions.
            let value = value.get("value").cloned().unwrap_or(value);
            if let Some(v) = ConfigValue::from_json(&value) {
                let name = item.name();
                self.config.retain(|(k, _)| *k != name);
                self.config.push((name, v));
            }
        }
    }

    fn history(&mut self, history: HistoryRecord, out: &mut Batch) {
        let mut builder = RecordBuilder::new(&self.map);
        let mut step = history.step.map(|s| s.num);
        for item in &history.item {
            let name = item.name();
            let Some(value) = json_number(&item.value_json) else {
                continue;
            };
            if name == "_step" {
                step = step.or(Some(value as i64));
                continue;
            }
            let role = builder.classify(&name);
            builder.add(&name, role, Num::Float(value));
        }
        if let Some(s) = step.filter(|s| *s >= 0) {
            let role = builder.classify("step");
            builder.add("step", role, Num::Int(s as u64));
        }
        if let Some(rec) = builder.finish() {
            out.tally.records += 1;
            out.records.push(rec);
        }
    }
}

impl StreamParser for WandbStream {
    fn feed(&mut self, data: &[u8], out: &mut Batch) {
        if self.rejected {
            // Not a W&B file: said once, whatever follows.
            self.offset += data.len() as u64;
            return;
        }
        self.pending.extend_from_slice(data);
        let mut at = 0usize;
        if !self.header_checked {
            if self.pending.len() < MAGIC.len() {
                return;
            }
            if !self.pending.starts_with(&MAGIC[..4]) {
                out.tally.bad(0, "not a W&B file (no :W&B header)");
                self.offset += self.pending.len() as u64;
                self.pending.clear();
                self.header_checked = true;
                self.rejected = true;
                return;
            }
            self.header_checked = true;
            at = MAGIC.len();
        }
        loop {
            let pos = self.offset + at as u64;
            let left_in_block = (BLOCK - pos % BLOCK) as usize;
            let available = self.pending.len() - at;
            if left_in_block < CHUNK_HEADER {
                // Zero padding to the next block.
                if available < left_in_block {
                    break;
                }
                at += left_in_block;
                continue;
            }
            if available < CHUNK_HEADER {
                break;
            }
            let h = &self.pending[at..at + CHUNK_HEADER];
            let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let len = usize::from(u16::from_le_bytes([h[4], h[5]]));
            let kind = h[6];
            if crc == 0 && len == 0 && kind == 0 {
                // Preallocated zeros: nothing more in this block.
                if available < left_in_block {
                    break;
                }
                at += left_in_block;
                continue;
            }
            if CHUNK_HEADER + len > left_in_block {
                // A chunk cannot cross a block: the header is corrupt. Counted
                // once the rest of the block is here to skip (else it would
                // be counted again on the next read).
                if available < left_in_block {
                    break;
                }
                self.index += 1;
                out.tally
                    .bad(self.index, format!("chunk at byte {pos} crosses a block"));
                self.assembling = None;
                at += left_in_block;
                continue;
            }
            if available < CHUNK_HEADER + len {
                break;
            }
            let chunk = &self.pending[at + CHUNK_HEADER - 1..at + CHUNK_HEADER + len];
            let ok = crc32fast::hash(chunk) == crc;
            let payload = chunk[1..].to_vec();
            at += CHUNK_HEADER + len;
            if !ok {
                self.index += 1;
                out.tally
                    .bad(self.index, format!("chunk at byte {pos}: CRC mismatch"));
                self.assembling = None;
                continue;
            }
            match kind {
                FULL => {
                    self.assembling = None;
                    self.record(&payload, out);
                }
                FIRST => self.assembling = Some(payload),
                MIDDLE | LAST => match self.assembling.as_mut() {
                    Some(buf) => {
                        buf.extend_from_slice(&payload);
                        if kind == LAST
                            && let Some(whole) = self.assembling.take()
                        {
                            self.record(&whole, out);
                        }
                    }
                    None => {
                        self.index += 1;
                        out.tally.bad(
                            self.index,
                            format!("chunk at byte {pos} continues no record"),
                        );
                    }
                },
                other => {
                    self.index += 1;
                    out.tally.bad(
                        self.index,
                        format!("chunk at byte {pos}: unknown type {other}"),
                    );
                }
            }
        }
        self.pending.drain(..at);
        self.offset += at as u64;
    }

    fn finish(&mut self, out: &mut Batch) {
        let unfinished = self.assembling.take().is_some() || self.pending.iter().any(|&b| b != 0);
        if unfinished {
            self.index += 1;
            out.tally.bad(self.index, "unfinished last record");
        }
        self.pending.clear();
    }

    fn reset(&mut self) {
        *self = WandbStream::new(std::mem::take(&mut self.map));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A W&B file holding `records`, framed as wandb-core writes it.
    pub(crate) fn file_of(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for data in records {
            let mut rest: &[u8] = data;
            let mut first = true;
            loop {
                let left = (BLOCK - out.len() as u64 % BLOCK) as usize;
                if left < CHUNK_HEADER {
                    out.extend(std::iter::repeat_n(0u8, left));
                    continue;
                }
                let room = left - CHUNK_HEADER;
                let take = rest.len().min(room);
                let last = take == rest.len();
                let kind = match (first, last) {
                    (true, true) => FULL,
                    (true, false) => FIRST,
                    (false, true) => LAST,
                    (false, false) => MIDDLE,
                };
                let mut typed = vec![kind];
                typed.extend_from_slice(&rest[..take]);
                out.extend(crc32fast::hash(&typed).to_le_bytes());
                out.extend((take as u16).to_le_bytes());
                out.extend(typed);
                rest = &rest[take..];
                first = false;
                if last {
                    break;
                }
            }
        }
        out
    }

    pub(crate) fn history(step: i64, items: &[(&str, &str)]) -> Vec<u8> {
        Record {
            num: step + 1,
            history: Some(HistoryRecord {
                item: items
                    .iter()
                    .map(|(k, v)| Item {
                        key: String::new(),
                        nested_key: vec![k.to_string()],
                        value_json: v.to_string(),
                    })
                    .chain([Item {
                        key: "_step".into(),
                        nested_key: vec![],
                        value_json: step.to_string(),
                    }])
                    .collect(),
                step: Some(HistoryStep { num: step }),
            }),
            config: None,
            run: None,
        }
        .encode_to_vec()
    }

    fn parse(parts: &[&[u8]]) -> Batch {
        let mut p = WandbStream::new(FieldMap::new());
        let mut batch = Batch::default();
        for part in parts {
            p.feed(part, &mut batch);
        }
        p.finish(&mut batch);
        batch
    }

    #[test]
    fn records_across_blocks_and_any_split() {
        // Big enough rows that records span blocks (FIRST/MIDDLE/LAST).
        let pad = "x".repeat(20_000);
        let records: Vec<Vec<u8>> = (0..6)
            .map(|s| {
                history(
                    s,
                    &[
                        ("train/loss", &format!("{}", 2.0 - s as f64 / 10.0)),
                        ("note", &format!("\"{pad}\"")),
                    ],
                )
            })
            .collect();
        let file = file_of(&records);
        let whole = parse(&[&file]);
        assert_eq!(whole.tally.bad, 0, "{:?}", whole.tally.last_error);
        assert_eq!(whole.records.len(), 6);
        assert_eq!(whole.records[5].step, Some(5));
        assert_eq!(whole.records[5].loss, Some(1.5));
        for cut in (0..file.len()).step_by(997) {
            let split = parse(&[&file[..cut], &file[cut..]]);
            assert_eq!(split.records, whole.records, "cut at {cut}");
        }
    }

    #[test]
    fn a_file_that_is_not_wandb_is_one_bad_record_however_it_is_read() {
        // Found by the fuzzer: read in small pieces, the bytes after a
        // rejected header were parsed as chunks.
        let mut bytes = b"XW&B".to_vec();
        bytes.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
        let whole = parse(&[&bytes]);
        let pieces: Vec<&[u8]> = bytes.chunks(3).collect();
        let split = parse(&pieces);
        assert_eq!((whole.tally.bad, split.tally.bad), (1, 1));
    }

    #[test]
    fn nan_tokens_and_bad_chunks() {
        let mut file = file_of(&[
            history(0, &[("loss", "NaN")]),
            history(1, &[("loss", "0.5")]),
        ]);
        let b = parse(&[&file]);
        assert!(b.records[0].loss.unwrap().is_nan());
        // Corrupt the first record's payload: it is counted, the next is read.
        file[MAGIC.len() + CHUNK_HEADER + 2] ^= 0xff;
        let b = parse(&[&file]);
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.records[0].step, Some(1));
        assert_eq!(b.tally.bad, 1);
    }
}
