//! Bad input is counted and skipped, never fatal, and nothing after it is lost.

use std::io::Write;
use std::path::Path;

use lrtop::ingest::{
    FieldMap, Format, IngestError, LoadOptions, LoadedRun, Source, load, load_with,
};
use lrtop::metrics::XAxis;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

fn loss_steps(run: &LoadedRun) -> Vec<u64> {
    run.data
        .points("loss", XAxis::Step)
        .iter()
        .map(|(s, _)| *s as u64)
        .collect()
}

/// BOM, CRLF, garbage, binary, a 2 MB line, non-objects, and a cut last line.
fn hostile_jsonl() -> Vec<u8> {
    let mut bytes = b"\xEF\xBB\xBF{\"step\": 1, \"loss\": 1.0}\r\n".to_vec();
    bytes.extend_from_slice(b"this is not json\n");
    bytes.extend_from_slice(b"{\"step\": 2, \"loss\": 2.0}\r\n");
    bytes.extend_from_slice(b"\x00\xff\xfe\x01binary\x9c\n");
    bytes.extend_from_slice(b"{\"step\": 3, \"loss\": 3.0}\n");
    let mut big = b"{\"step\": 99, \"loss\": 9.0, \"blob\": \"".to_vec();
    big.resize(2 << 20, b'x');
    big.extend_from_slice(b"\"}\n");
    bytes.extend_from_slice(&big);
    bytes.extend_from_slice(b"[1, 2]\n42\n\"text\"\n");
    bytes.extend_from_slice(b"{\"msg\": \"no numbers here\"}\n\n   \n");
    bytes.extend_from_slice(b"{\"step\": 4, \"loss\": NaN}\n");
    bytes.extend_from_slice(
        b"{\"step\": 5, \"loss\": 5.0, \"nested\": {\"a\": [1, {\"b\": null}]}}\n",
    );
    bytes.extend_from_slice(b"{\"step\": 6, \"lo");
    bytes
}

#[test]
fn hostile_jsonl_is_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "run.jsonl", &hostile_jsonl());
    let run = load(&Source::file(&path), &FieldMap::new()).unwrap();
    assert_eq!(run.format, Format::JSONL);
    assert_eq!(loss_steps(&run), vec![1, 2, 3, 4, 5]);
    assert_eq!(run.records, 5);
    // garbage, binary, 2 MB, [1,2], 42, "text", the cut last line
    assert_eq!(run.bad_lines, 7);
    let last = run.last_error.unwrap();
    assert!(last.starts_with("line 15:"), "{last}");
    assert!(last.contains("unfinished"), "{last}");
}

#[test]
fn hostile_jsonl_same_in_every_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "run.jsonl", &hostile_jsonl());
    let reference = load(&Source::file(&path), &FieldMap::new()).unwrap();
    for (chunk_bytes, parallel) in [(1, true), (7, false), (1000, true), (1 << 30, false)] {
        let options = LoadOptions {
            chunk_bytes,
            parallel,
            ..Default::default()
        };
        let run = load_with(&Source::file(&path), &FieldMap::new(), &options).unwrap();
        assert_eq!(loss_steps(&run), loss_steps(&reference), "{chunk_bytes}");
        assert_eq!(
            (run.records, run.bad_lines, &run.last_error),
            (
                reference.records,
                reference.bad_lines,
                &reference.last_error
            ),
            "{chunk_bytes}"
        );
    }
}

#[test]
fn long_valid_lines_across_read_blocks_are_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for step in 0..40u64 {
        let pad = "x".repeat(200_000 + step as usize * 1000);
        bytes.extend_from_slice(
            format!("{{\"step\": {step}, \"note\": \"{pad}\", \"loss\": 0.5}}\n").as_bytes(),
        );
    }
    let path = write(dir.path(), "run.jsonl", &bytes);
    for chunk_bytes in [1, 100_000, 1 << 20] {
        let options = LoadOptions {
            chunk_bytes,
            parallel: true,
            ..Default::default()
        };
        let run = load_with(&Source::file(&path), &FieldMap::new(), &options).unwrap();
        assert_eq!(loss_steps(&run), (0..40).collect::<Vec<_>>());
        assert_eq!(run.bad_lines, 0);
    }
}

#[test]
fn an_endless_last_line_is_one_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"{\"step\": 1, \"loss\": 1.0}\n".to_vec();
    bytes.resize(bytes.len() + (3 << 20), b'{');
    let path = write(dir.path(), "run.jsonl", &bytes);
    let run = load(&Source::file(&path), &FieldMap::new()).unwrap();
    assert_eq!((run.records, run.bad_lines), (1, 1));
    assert!(run.last_error.unwrap().contains("over the 1 MiB limit"));
}

#[test]
fn hostile_csv() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"\xEF\xBB\xBFstep,loss,lr,note\r\n1,2.5,0.1,ok\r\n\x00\xff,\xfe,zz\r\n2,,0.2,\r\n3,1.5,0.3,a,extra\r\n4,nan,0.4,\"quoted, note\"\r\n5,1.0";
    let path = write(dir.path(), "metrics.csv", text);
    let run = load(&Source::file(&path), &FieldMap::new()).unwrap();
    assert_eq!(run.format, Format::CSV);
    assert_eq!(loss_steps(&run), vec![1, 4]);
    let lr: Vec<f64> = run.data.column("lr").unwrap().values.clone();
    assert_eq!(lr, vec![0.1, 0.2, 0.4]);
    // The binary row has no number: skipped. Too many fields and the cut
    // last row are bad.
    assert_eq!((run.records, run.bad_lines), (3, 2));
}

#[test]
fn broken_trainer_state_is_an_error_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "trainer_state.json",
        b"{\"log_history\": [{\"loss\": 1",
    );
    let err = load(&Source::file(&path), &FieldMap::new()).unwrap_err();
    assert!(matches!(err, IngestError::TrainerState { .. }));
    assert!(err.to_string().contains("trainer_state.json"), "{err}");
}

#[test]
fn missing_file_and_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(
        &Source::file(dir.path().join("nope.jsonl")),
        &FieldMap::new(),
    )
    .unwrap_err();
    assert!(matches!(err, IngestError::NotFound { .. }), "{err}");
    let path = write(dir.path(), "empty.log", b"");
    let run = load(&Source::file(&path), &FieldMap::new()).unwrap();
    assert_eq!((run.records, run.bad_lines, run.data.len()), (0, 0, 0));
}
