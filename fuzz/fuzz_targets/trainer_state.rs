//! Hugging Face trainer_state.json on arbitrary bytes: parse, sniff, and
//! the cold load must agree and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrtop::ingest::{FieldMap, Format, LoadOptions, load_bytes, raw};

fuzz_target!(|data: &[u8]| {
    let map = FieldMap::new();
    let parsed = raw::trainer_state(data, &map);
    let loaded = load_bytes(data, Format::HF_TRAINER_STATE, &map, &LoadOptions::default());
    match (&parsed, &loaded) {
        (Ok(entries), Ok(run)) => {
            let records = entries.iter().flatten().count() as u64;
            assert_eq!(run.records, records);
            assert_eq!(run.data.len() as u64, records);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("parse and load disagree: {:?} vs {:?}", parsed.is_ok(), loaded.is_ok()),
    }
    // Sniffing any prefix must not panic; a whole one-line document that
    // parses as trainer_state is recognised as one.
    for complete in [false, true] {
        let _ = raw::sniff(data, complete);
        let _ = raw::sniff(&data[..data.len() / 2], complete);
    }
    if parsed.is_ok() && !data.contains(&b'\n') {
        assert_eq!(
            raw::sniff(data, true),
            Some(Format::HF_TRAINER_STATE),
            "a valid trainer_state is not sniffed as one: {:?}",
            String::from_utf8_lossy(data)
        );
    }
});
