//! The JSONL record parser on arbitrary bytes.
//!
//! - Every line: the fast path (flat objects) and the general serde path
//!   agree whenever serde accepts the line.
//! - The follower's incremental parser, fed the input cut into arbitrary
//!   pieces (partial writes), gives the same records and bad-line count as
//!   the cold load, which splits the input into small chunks parsed apart
//!   and merged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrtop::ingest::{FieldMap, Format, LoadOptions, load_bytes, raw};
use lrtop::metrics::{Record, RunData};

/// Debug text is a fine equality for records: NaN prints as NaN.
fn text(records: impl IntoIterator<Item = Record>) -> Vec<String> {
    records.into_iter().map(|r| format!("{r:?}")).collect()
}

fn has_infinity(rec: Option<&Record>) -> bool {
    rec.is_some_and(|r| {
        [r.lr, r.loss, r.grad_norm, r.epoch, r.time]
            .into_iter()
            .flatten()
            .chain(r.extra.iter().map(|(_, v)| *v))
            .any(f64::is_infinite)
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the cut points and the chunk size; the rest is the log.
    let Some((&knob, log)) = data.split_first() else {
        return;
    };
    let map = FieldMap::new();

    for line in log.split(|&b| b == b'\n') {
        let fast = raw::jsonl_line(line, &map);
        let slow = raw::jsonl_line_serde(line, &map);
        match (&fast, &slow) {
            (Ok(f), Ok(s)) => assert_eq!(
                format!("{f:?}"),
                format!("{s:?}"),
                "fast and serde paths disagree on {:?}",
                String::from_utf8_lossy(line)
            ),
            (Err(_), Ok(s)) => panic!(
                "fast path rejects {:?}, serde reads {s:?}",
                String::from_utf8_lossy(line)
            ),
            // Numbers beyond f64 read as infinite on the fast path (by
            // design); serde refuses the line (its message may be about an
            // earlier NaN token, from before the non-finite rewrite).
            (Ok(f), Err(e)) => assert!(
                e.contains("out of range") || has_infinity(f.as_ref()),
                "fast path accepts {:?}, serde says {e}",
                String::from_utf8_lossy(line)
            ),
            (Err(_), Err(_)) => {}
        }
    }

    // Arbitrary partial writes: piece lengths cycle through 1..=16 from the knob.
    let mut parts = Vec::new();
    let mut rest = log;
    let mut k = knob as usize;
    while !rest.is_empty() {
        let n = (k % 16 + 1).min(rest.len());
        parts.push(&rest[..n]);
        rest = &rest[n..];
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    let streamed = raw::stream(Format::JSONL, &parts, &map);
    assert_eq!(streamed.count as usize, streamed.records.len());

    let options = LoadOptions {
        chunk_bytes: (knob as usize % 64) + 1,
        parallel: knob & 0x80 != 0,
            ..Default::default()
        };
    let loaded = load_bytes(log, Format::JSONL, &map, &options).expect("loading bytes cannot fail");
    assert_eq!(loaded.records, streamed.count, "records: stream vs cold load");
    assert_eq!(loaded.bad_lines, streamed.bad, "bad lines: stream vs cold load ({:?} vs {:?})", streamed.last_error, loaded.last_error);

    let mut data = RunData::new();
    for rec in &streamed.records {
        data.push(rec, 0.0);
    }
    assert_eq!(text(loaded.data.records()), text(data.records()), "stored rows: stream vs cold load");
});
