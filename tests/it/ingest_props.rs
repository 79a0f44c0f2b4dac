//! Property tests: no input makes the parsers panic, and chunking never
//! changes what a cold load finds.

use std::io::Write;

use lrtop::ingest::{FieldMap, Format, IngestError, LoadOptions, Source, load_with};
use lrtop::metrics::XAxis;
use proptest::prelude::*;

/// Bytes that look like logs often enough to reach the deep code paths.
fn log_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\"",
            "\\",
            "\n",
            "\r\n",
            "\u{feff}",
            "\"step\"",
            "\"loss\"",
            "\"lr-AdamW\"",
            "\"train_runtime\"",
            "\"log_history\"",
            "NaN",
            "-Infinity",
            "Infinity",
            "1e999",
            "-0",
            "18446744073709551616",
            "-5",
            "0.25",
            "null",
            "true",
            "\"x\"",
            "step,loss,lr\n",
            ",",
            "nan",
            "inf",
            "\\u0000NaN",
        ])
        .prop_map(|s: &str| s.as_bytes().to_vec()),
        Just(b"{\"step\": 3, \"loss\": 1.5}\n".to_vec()),
    ];
    prop::collection::vec(piece, 0..200).prop_map(|v| v.concat())
}

fn load_bytes(
    bytes: &[u8],
    format: Option<Format>,
    options: &LoadOptions,
) -> lrtop::ingest::LoadedRun {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    let source = Source {
        format,
        ..Source::file(&path)
    };
    match load_with(&source, &FieldMap::new(), options) {
        Ok(run) => run,
        // Only a whole-document format (named, or sniffed from a
        // `log_history` key) may reject the input as a whole.
        Err(err) => {
            // Or, unnamed, bytes that are binary and no format's.
            let binary = format.is_none() && matches!(err, IngestError::NotALog { .. });
            assert!(
                matches!(err, IngestError::TrainerState { .. }) || binary,
                "{err}"
            );
            assert!(
                format != Some(Format::JSONL) && format != Some(Format::CSV),
                "{err}"
            );
            lrtop::ingest::LoadedRun {
                label: String::new(),
                path: None,
                format: Format::HF_TRAINER_STATE,
                data: Default::default(),
                records: 0,
                bad_lines: 0,
                last_error: None,
                config: None,
                dialect: None,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(bytes in log_soup()) {
        for format in [None, Some(Format::JSONL), Some(Format::CSV), Some(Format::HF_TRAINER_STATE)] {
            let run = load_bytes(&bytes, format, &LoadOptions::default());
            prop_assert_eq!(run.records as usize, run.data.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        for format in [Some(Format::JSONL), Some(Format::CSV), Some(Format::HF_TRAINER_STATE)] {
            load_bytes(&bytes, format, &LoadOptions::default());
        }
    }

    #[test]
    fn chunking_does_not_change_a_jsonl_load(bytes in log_soup(), chunk in 1usize..300) {
        let whole = LoadOptions { chunk_bytes: usize::MAX, parallel: false, ..Default::default() };
        let chunked = LoadOptions { chunk_bytes: chunk, parallel: true, ..Default::default() };
        let a = load_bytes(&bytes, Some(Format::JSONL), &whole);
        let b = load_bytes(&bytes, Some(Format::JSONL), &chunked);
        prop_assert_eq!((a.records, a.bad_lines, &a.last_error), (b.records, b.bad_lines, &b.last_error));
        prop_assert_eq!(a.data.metric_names(), b.data.metric_names());
        for name in a.data.metric_names() {
            let bits = |r: &lrtop::ingest::LoadedRun| -> Vec<(u64, u64)> {
                r.data.points(name, XAxis::Step).iter().map(|(x, y)| (x.to_bits(), y.to_bits())).collect()
            };
            prop_assert_eq!(bits(&a), bits(&b));
        }
    }
}
