//! TensorBoard event files (`events.out.tfevents.*`): TFRecord framing
//! around protobuf `Event`s. Written by PyTorch's `SummaryWriter`,
//! tensorboardX, Lightning's default logger and TensorFlow.
//!
//! A TFRecord is `u64 length (LE) | u32 masked CRC32C of the length | data |
//! u32 masked CRC32C of the data`. A record whose data CRC fails is a bad
//! record, counted and skipped (its length was checked); a length whose CRC
//! fails cannot be trusted, so the reader looks for the next place where a
//! length and its CRC agree. A partial last record waits for more bytes.
//!
//! Scalars come in two encodings: `Summary.Value.simple_value` (PyTorch,
//! tensorboardX, Lightning) and, TF2-style, a scalar `TensorProto` in
//! `Summary.Value.tensor` (`float_val`, `double_val`, `half_val`, `int_val`,
//! `int64_val` or `tensor_content`). Tags go through the same field aliases
//! as JSONL keys (`train/loss`, `lr-AdamW`, `eval/loss`...).

use std::collections::HashMap;

use prost::Message;

use super::{ContentClaim, LogFormat, NameClaim, Reader, StreamParser};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder};

/// TensorBoard event files.
pub(crate) struct TfEvents;

impl LogFormat for TfEvents {
    fn name(&self) -> &'static str {
        "tfevents"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        if name.contains("tfevents") {
            NameClaim::Certain
        } else {
            NameClaim::No
        }
    }

    fn claim_content(&self, head: &[u8], _complete: bool) -> ContentClaim {
        match frame_header(head) {
            Header::Valid(_) => ContentClaim::Strong,
            Header::Short | Header::Invalid => ContentClaim::No,
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(TfEventsStream::new(map.clone())))
    }

    fn groups_by_directory(&self) -> bool {
        true
    }
}

/// The longest record accepted: a longer length is taken for corruption.
const MAX_RECORD: u64 = 256 << 20;
const HEADER: usize = 12;
const FOOTER: usize = 4;

/// TFRecord's CRC mask (from TensorFlow's `crc32c.h`).
pub(crate) fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

enum Header {
    /// Fewer than 12 bytes.
    Short,
    Invalid,
    /// The data length.
    Valid(u64),
}

fn frame_header(bytes: &[u8]) -> Header {
    if bytes.len() < HEADER {
        return Header::Short;
    }
    let len_bytes: [u8; 8] = bytes[..8].try_into().unwrap_or_default();
    let crc = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    let len = u64::from_le_bytes(len_bytes);
    if masked_crc32c(&len_bytes) == crc && len <= MAX_RECORD {
        Header::Valid(len)
    } else {
        Header::Invalid
    }
}

/// One TFRecord found in a byte buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A record and its length in the buffer (header and footer included).
    Record(&'a [u8], usize),
    /// A record whose data CRC failed, and its length in the buffer.
    BadData(usize),
    /// Bytes that do not start a valid header, up to the next that does
    /// (or all but the last 11 bytes when none does yet).
    Garbage(usize),
    /// The next record is not complete yet.
    Incomplete,
}

/// The first frame of `buf`.
pub(crate) fn next_frame(buf: &[u8]) -> Frame<'_> {
    match frame_header(buf) {
        Header::Short => Frame::Incomplete,
        Header::Valid(len) => {
            let len = len as usize;
            let total = HEADER + len + FOOTER;
            if buf.len() < total {
                return Frame::Incomplete;
            }
            let data = &buf[HEADER..HEADER + len];
            let crc = u32::from_le_bytes(buf[HEADER + len..total].try_into().unwrap_or_default());
            if masked_crc32c(data) == crc {
                Frame::Record(data, total)
            } else {
                Frame::BadData(total)
            }
        }
        Header::Invalid => {
            let skip = (1..buf.len().saturating_sub(HEADER - 1))
                .find(|&i| matches!(frame_header(&buf[i..]), Header::Valid(_)))
                .unwrap_or(buf.len().saturating_sub(HEADER - 1).max(1));
            Frame::Garbage(skip)
        }
    }
}

// The messages, with TensorFlow's field numbers (tensorflow/core/util/
// event.proto, framework/summary.proto, tensor.proto, tensor_shape.proto).
// Only the fields lrtop reads are declared; prost skips the others.

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "7")]
    pub session_log: Option<SessionLog>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct SessionLog {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorDim>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorDim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

// tensorflow/core/framework/types.proto
const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_BFLOAT16: i32 = 14;
const DT_HALF: i32 = 19;

/// Plugins whose tensors are not scalars to plot.
const NOT_SCALAR_PLUGINS: [&str; 6] = [
    "histograms",
    "images",
    "audio",
    "text",
    "hparams",
    "pr_curves",
];

impl TensorProto {
    /// The value of a tensor with one element, if it is a number.
    fn scalar(&self) -> Option<f64> {
        let elements: i64 = self
            .tensor_shape
            .as_ref()
            .map_or(1, |s| s.dim.iter().map(|d| d.size).product());
        if elements != 1 {
            return None;
        }
        let content = &self.tensor_content;
        match self.dtype {
            DT_FLOAT => self.float_val.first().map(|v| f64::from(*v)).or_else(|| {
                Some(f64::from(f32::from_le_bytes(
                    content.get(..4)?.try_into().ok()?,
                )))
            }),
            DT_DOUBLE => self
                .double_val
                .first()
                .copied()
                .or_else(|| Some(f64::from_le_bytes(content.get(..8)?.try_into().ok()?))),
            DT_HALF => self
                .half_val
                .first()
                .map(|v| half_to_f64(*v as u16))
                .or_else(|| {
                    Some(half_to_f64(u16::from_le_bytes(
                        content.get(..2)?.try_into().ok()?,
                    )))
                }),
            DT_BFLOAT16 => self
                .half_val
                .first()
                .map(|v| bf16_to_f64(*v as u16))
                .or_else(|| {
                    Some(bf16_to_f64(u16::from_le_bytes(
                        content.get(..2)?.try_into().ok()?,
                    )))
                }),
            DT_INT32 => self.int_val.first().map(|v| f64::from(*v)).or_else(|| {
                Some(f64::from(i32::from_le_bytes(
                    content.get(..4)?.try_into().ok()?,
                )))
            }),
            DT_INT64 => self
                .int64_val
                .first()
                .map(|v| *v as f64)
                .or_else(|| Some(i64::from_le_bytes(content.get(..8)?.try_into().ok()?) as f64)),
            _ => None,
        }
    }
}

fn bf16_to_f64(bits: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(bits) << 16))
}

fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Incremental reader of one event file.
#[derive(Debug)]
pub(crate) struct TfEventsStream {
    map: FieldMap,
    pending: Vec<u8>,
    /// Records read (good or bad), for error messages.
    index: u64,
    /// Tags known to hold non-scalar tensors (their metadata comes only
    /// with the first value).
    skip_tags: HashMap<String, bool>,
    /// Inside a run of bytes that do not frame a record.
    in_garbage: bool,
}

impl TfEventsStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        TfEventsStream {
            map,
            pending: Vec::new(),
            index: 0,
            skip_tags: HashMap::new(),
            in_garbage: false,
        }
    }

    fn event(&mut self, data: &[u8], out: &mut Batch) {
        let event = match Event::decode(data) {
            Ok(e) => e,
            Err(e) => {
                out.tally.bad(
                    self.index,
                    format!("record {}: not an Event: {e}", self.index),
                );
                return;
            }
        };
        let Some(summary) = event.summary else {
            return;
        };
        let mut builder = RecordBuilder::new(&self.map);
        let mut any = false;
        for value in &summary.value {
            if let Some(plugin) = value.metadata.as_ref().and_then(|m| m.plugin_data.as_ref()) {
                let skip = NOT_SCALAR_PLUGINS.contains(&plugin.plugin_name.as_str());
                self.skip_tags.insert(value.tag.clone(), skip);
            }
            if self.skip_tags.get(&value.tag).copied().unwrap_or(false) {
                continue;
            }
            let number = match (value.simple_value, &value.tensor) {
                (Some(v), _) => Some(f64::from(v)),
                (None, Some(t)) => t.scalar(),
                (None, None) => None,
            };
            if let Some(v) = number {
                let role = builder.classify(&value.tag);
                builder.add(&value.tag, role, Num::Float(v));
                any = true;
            }
        }
        if !any {
            return;
        }
        if event.step >= 0 {
            let role = builder.classify("step");
            builder.add("step", role, Num::Int(event.step as u64));
        }
        if event.wall_time.is_finite() && event.wall_time > 0.0 {
            let role = builder.classify("wall_time");
            builder.add("wall_time", role, Num::Float(event.wall_time));
        }
        if let Some(rec) = builder.finish() {
            out.tally.records += 1;
            out.records.push(rec);
        }
    }
}

impl StreamParser for TfEventsStream {
    fn feed(&mut self, data: &[u8], out: &mut Batch) {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        loop {
            match next_frame(&self.pending[at..]) {
                Frame::Incomplete => break,
                Frame::Record(record, used) => {
                    self.index += 1;
                    let record = record.to_vec();
                    self.event(&record, out);
                    at += used;
                    self.in_garbage = false;
                }
                Frame::BadData(used) => {
                    self.index += 1;
                    out.tally.bad(
                        self.index,
                        format!("record {}: data CRC mismatch", self.index),
                    );
                    at += used;
                    self.in_garbage = false;
                }
                Frame::Garbage(skipped) => {
                    // A run of garbage is one bad record however many reads
                    // it arrives in.
                    if !self.in_garbage {
                        self.index += 1;
                        out.tally.bad(
                            self.index,
                            format!(
                                "record {}: bytes that are not a TFRecord (bad length CRC)",
                                self.index
                            ),
                        );
                    }
                    self.in_garbage = true;
                    at += skipped;
                }
            }
        }
        self.pending.drain(..at);
    }

    fn finish(&mut self, out: &mut Batch) {
        if !self.pending.is_empty() {
            self.index += 1;
            out.tally.bad(
                self.index,
                format!("unfinished last record ({} bytes)", self.pending.len()),
            );
            self.pending.clear();
        }
    }

    fn reset(&mut self) {
        *self = TfEventsStream::new(std::mem::take(&mut self.map));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TFRecord around `data`, as TensorFlow writes it.
    pub(crate) fn frame(data: &[u8]) -> Vec<u8> {
        let len = (data.len() as u64).to_le_bytes();
        let mut out = len.to_vec();
        out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        out
    }

    fn scalar_event(step: i64, tag: &str, v: f32) -> Vec<u8> {
        Event {
            wall_time: 1_700_000_000.5,
            step,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: tag.into(),
                    simple_value: Some(v),
                    tensor: None,
                    metadata: None,
                }],
            }),
            session_log: None,
        }
        .encode_to_vec()
    }

    fn parse(parts: &[&[u8]]) -> Batch {
        let mut p = TfEventsStream::new(FieldMap::new());
        let mut batch = Batch::default();
        for part in parts {
            p.feed(part, &mut batch);
        }
        p.finish(&mut batch);
        batch
    }

    #[test]
    fn the_crc_mask_matches_tensorflow() {
        // crc32c("a") = 0xc1d04330 (RFC 3720 test vectors' algorithm).
        assert_eq!(crc32c::crc32c(b"a"), 0xc1d0_4330);
        assert_eq!(
            masked_crc32c(b"a"),
            0xc1d0_4330u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn records_split_anywhere_arrive_once() {
        let mut file = frame(&scalar_event(0, "train/loss", 2.5));
        file.extend(frame(&scalar_event(1, "train/lr", 0.1)));
        let whole = parse(&[&file]);
        assert_eq!(whole.records.len(), 2);
        assert_eq!(whole.records[0].loss, Some(2.5));
        assert_eq!(whole.records[1].lr, Some(0.10000000149011612));
        assert_eq!(whole.records[1].step, Some(1));
        for cut in 0..file.len() {
            let split = parse(&[&file[..cut], &file[cut..]]);
            assert_eq!(split.records, whole.records, "cut at {cut}");
            assert_eq!(split.tally.bad, 0);
        }
    }

    #[test]
    fn bad_crcs_are_bad_records_not_fatal() {
        let mut first = frame(&scalar_event(0, "loss", 1.0));
        let last = first.len() - 1;
        first[last] ^= 0xff;
        let mut file = first;
        file.extend(frame(&scalar_event(1, "loss", 0.5)));
        let batch = parse(&[&file]);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].step, Some(1));
        assert_eq!(batch.tally.bad, 1);
        // A corrupt length: the reader finds the next record.
        let mut file = frame(&scalar_event(0, "loss", 1.0));
        file[0] ^= 0x01;
        file.extend(frame(&scalar_event(1, "loss", 0.5)));
        let batch = parse(&[&file]);
        assert_eq!(batch.records.len(), 1);
        assert!(batch.tally.bad >= 1);
    }

    #[test]
    fn a_run_of_garbage_is_one_bad_record_however_it_is_read() {
        let mut log = vec![0xAB; 300];
        log.extend(frame(&scalar_event(1, "loss", 0.5)));
        let whole = parse(&[&log]);
        let pieces: Vec<&[u8]> = log.chunks(7).collect();
        let split = parse(&pieces);
        assert_eq!(whole.tally.bad, 1);
        assert_eq!(split.tally.bad, 1);
        assert_eq!(split.records.len(), 1);
    }

    #[test]
    fn a_partial_last_record_waits() {
        let file = frame(&scalar_event(3, "loss", 1.0));
        let mut p = TfEventsStream::new(FieldMap::new());
        let mut batch = Batch::default();
        p.feed(&file[..file.len() - 2], &mut batch);
        assert!(batch.records.is_empty());
        assert_eq!(batch.tally.bad, 0);
        p.feed(&file[file.len() - 2..], &mut batch);
        assert_eq!(batch.records.len(), 1);
    }

    #[test]
    fn tensor_scalars_in_every_encoding() {
        let tensor = |dtype, f: &dyn Fn(&mut TensorProto)| {
            let mut t = TensorProto {
                dtype,
                ..Default::default()
            };
            f(&mut t);
            t.scalar()
        };
        assert_eq!(tensor(DT_FLOAT, &|t| t.float_val = vec![0.5]), Some(0.5));
        assert_eq!(
            tensor(DT_DOUBLE, &|t| t.double_val = vec![0.25]),
            Some(0.25)
        );
        assert_eq!(
            tensor(DT_DOUBLE, &|t| t.tensor_content =
                0.125f64.to_le_bytes().to_vec()),
            Some(0.125)
        );
        assert_eq!(tensor(DT_HALF, &|t| t.half_val = vec![0x3c00]), Some(1.0));
        assert_eq!(
            tensor(DT_BFLOAT16, &|t| t.half_val = vec![0x3f80]),
            Some(1.0)
        );
        assert_eq!(tensor(DT_INT64, &|t| t.int64_val = vec![7]), Some(7.0));
        assert_eq!(
            tensor(DT_FLOAT, &|t| {
                t.float_val = vec![1.0, 2.0];
                t.tensor_shape = Some(TensorShape {
                    dim: vec![TensorDim { size: 2 }],
                });
            }),
            None
        );
    }
}
