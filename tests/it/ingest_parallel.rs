//! The parallel chunked cold load gives exactly what a sequential parse gives.

use std::fmt::Write as _;

use lrtop::ingest::{FieldMap, LoadOptions, LoadedRun, Source, load_with};
use lrtop::metrics::XAxis;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn float(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A few MB of HF-like lines with the awkward cases sprinkled in: lines
/// without a step, eval lines, metrics that appear late, NaN, CRLF, garbage.
fn generated_log(lines: usize) -> String {
    let mut rng = Rng(0x5eed);
    let mut text = String::new();
    let mut step = 0;
    for i in 0..lines {
        let r = rng.next() % 100;
        if r < 2 {
            text.push_str("garbage {\"step\": \n");
        } else if r < 6 {
            let _ = writeln!(text, "{{\"val_acc\": {}}}", rng.float());
        } else if r < 9 {
            let _ = writeln!(
                text,
                "{{\"step\": {step}, \"eval_loss\": {}, \"eval_runtime\": {}, \"epoch\": {}}}",
                rng.float() * 3.0,
                rng.float(),
                step as f64 / 250.0
            );
        } else {
            step += 1;
            let loss = if r == 99 {
                "NaN".to_string()
            } else {
                (rng.float() * 4.0).to_string()
            };
            let late = if i > lines / 2 && r.is_multiple_of(3) {
                format!(", \"late_metric_{}\": {}", r % 5, rng.float())
            } else {
                String::new()
            };
            let _ = write!(
                text,
                "{{\"step\": {step}, \"loss\": {loss}, \"grad_norm\": {}, \"learning_rate\": {:e}, \"epoch\": {}{late}}}",
                rng.float(),
                rng.float() * 1e-3,
                step as f64 / 250.0
            );
            text.push_str(if r.is_multiple_of(7) { "\r\n" } else { "\n" });
        }
    }
    text.push_str("{\"step\": 1, \"loss\": 0.5");
    text
}

fn assert_same(a: &LoadedRun, b: &LoadedRun, what: &str) {
    assert_eq!(
        (a.records, a.bad_lines, &a.last_error),
        (b.records, b.bad_lines, &b.last_error),
        "{what}"
    );
    assert_eq!(a.data.len(), b.data.len(), "{what}");
    assert_eq!(a.data.metric_names(), b.data.metric_names(), "{what}");
    assert_eq!(a.data.last_step(), b.data.last_step(), "{what}");
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for name in a.data.metric_names() {
        let (ca, cb) = (a.data.column(name).unwrap(), b.data.column(name).unwrap());
        assert_eq!(ca.rows, cb.rows, "{what}: {name}");
        assert_eq!(bits(&ca.values), bits(&cb.values), "{what}: {name}");
        assert_eq!(
            (
                ca.min.to_bits(),
                ca.max.to_bits(),
                ca.min_row,
                ca.first_nonfinite_row
            ),
            (
                cb.min.to_bits(),
                cb.max.to_bits(),
                cb.min_row,
                cb.first_nonfinite_row
            ),
            "{what}: {name}"
        );
    }
    for row in 0..a.data.len() as u32 {
        for axis in [XAxis::Step, XAxis::Epoch] {
            assert_eq!(
                a.data.x_at(row, axis).to_bits(),
                b.data.x_at(row, axis).to_bits(),
                "{what}: row {row} {axis:?}"
            );
        }
    }
}

#[test]
fn chunked_parallel_load_equals_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let text = generated_log(40_000);
    assert!(text.len() > 4 << 20, "{} bytes", text.len());
    std::fs::write(&path, &text).unwrap();
    let source = Source::file(&path);
    let map = FieldMap::new();
    let sequential = LoadOptions {
        chunk_bytes: usize::MAX,
        parallel: false,
        ..Default::default()
    };
    let reference = load_with(&source, &map, &sequential).unwrap();
    assert!(reference.bad_lines > 500, "{}", reference.bad_lines);
    assert!(reference.data.column("late_metric_0").is_some());
    // Stepless val_acc lines took the previous step.
    assert!(
        reference
            .data
            .points("val_acc", XAxis::Step)
            .iter()
            .all(|(s, _)| !s.is_nan())
    );
    for chunk_bytes in [1, 333, 4096, 1 << 20] {
        let options = LoadOptions {
            chunk_bytes,
            parallel: true,
            ..Default::default()
        };
        let run = load_with(&source, &map, &options).unwrap();
        assert_same(&run, &reference, &format!("chunk {chunk_bytes}"));
    }
}
