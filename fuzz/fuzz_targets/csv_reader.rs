//! The CSV reader (Lightning's metrics.csv, Keras' CSVLogger) on arbitrary
//! bytes, fed in arbitrary pieces as a follower reads them. Without quoted
//! fields (which may hold newlines and so depend on where a read ends), the
//! records must not depend on the cuts, and the cold load must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrtop::ingest::{FieldMap, Format, LoadOptions, load_bytes, raw};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, log)) = data.split_first() else {
        return;
    };
    let map = FieldMap::new();
    let whole = raw::stream(Format::CSV, &[log], &map);
    assert_eq!(whole.count as usize, whole.records.len());

    let mut parts = Vec::new();
    let mut rest = log;
    let mut k = knob as usize;
    while !rest.is_empty() {
        // Pieces of 1 to 48 bytes: reads that end inside lines and cells.
        let n = (k % 48 + 1).min(rest.len());
        parts.push(&rest[..n]);
        rest = &rest[n..];
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    let pieces = raw::stream(Format::CSV, &parts, &map);
    let loaded = load_bytes(log, Format::CSV, &map, &LoadOptions::default())
        .expect("loading bytes cannot fail");
    assert_eq!(loaded.records, whole.count);
    if !log.contains(&b'"') {
        let text = |s: &raw::Streamed| -> Vec<String> {
            s.records.iter().map(|r| format!("{r:?}")).collect()
        };
        assert_eq!(text(&pieces), text(&whole), "records depend on the cuts");
        assert_eq!(pieces.bad, whole.bad, "bad rows depend on the cuts");
    }
});
