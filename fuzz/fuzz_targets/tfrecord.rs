//! TensorBoard's TFRecord event-file decoder on arbitrary bytes, fed in
//! arbitrary pieces as a follower reads a file being written: never a
//! panic, records that do not depend on where reads end, and a cold load
//! that agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrtop::ingest::{FieldMap, Format, LoadOptions, load_bytes, raw};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, log)) = data.split_first() else {
        return;
    };
    let map = FieldMap::new();
    let whole = raw::stream(Format::TFEVENTS, &[log], &map);
    assert_eq!(whole.count as usize, whole.records.len());
    let mut parts = Vec::new();
    let mut rest = log;
    let mut k = knob as usize;
    while !rest.is_empty() {
        let n = (k % 97 + 1).min(rest.len());
        parts.push(&rest[..n]);
        rest = &rest[n..];
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    let pieces = raw::stream(Format::TFEVENTS, &parts, &map);
    let text = |s: &raw::Streamed| -> Vec<String> {
        s.records.iter().map(|r| format!("{r:?}")).collect()
    };
    assert_eq!(text(&pieces), text(&whole), "records depend on the cuts");
    assert_eq!(pieces.bad, whole.bad, "bad records depend on the cuts");
    let loaded = load_bytes(log, Format::TFEVENTS, &map, &LoadOptions::default())
        .expect("loading bytes cannot fail");
    assert_eq!(loaded.records, whole.count);
});
