//! Record parsing: single JSONL lines of each kind (the flat fast path,
//! Python's NaN/Infinity, nested values through serde, a bad line), a
//! stream of 10k lines as a follower reads it, and CSV rows.
//!
//!     cargo bench --bench parse

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lrtop::ingest::{FieldMap, Format, raw};

const LINES: &[(&str, &str)] = &[
    (
        "hf_train",
        r#"{"step": 1234, "loss": 4.045986652374268, "grad_norm": 0.5356160998344421, "learning_rate": 2.9999999e-05, "epoch": 0.1579, "num_input_tokens_seen": 20217856}"#,
    ),
    (
        "nan",
        r#"{"step": 29, "lr": 20.0, "loss": NaN, "grad_norm": Infinity, "time": 1795870344.507398}"#,
    ),
    (
        "hf_eval",
        r#"{"step": 500, "eval_loss": 1.2345678, "eval_runtime": 12.5, "eval_samples_per_second": 350.2, "eval_steps_per_second": 11.1, "epoch": 0.064}"#,
    ),
    (
        "nested (serde path)",
        r#"{"step": 5, "loss": 1.5, "cfg": {"lr": 1, "betas": [0.9, 0.999]}, "tags": ["a", "b"], "lr": 0.001}"#,
    ),
    ("bad", r#"{"step": 5, "loss": 1.5, "lr": }"#),
];

fn line(step: u64) -> String {
    format!(
        "{{\"step\": {step}, \"loss\": {}, \"grad_norm\": {}, \"learning_rate\": {}, \"epoch\": {}}}\n",
        2.0 + (step as f64 * 0.37).sin(),
        0.5 + (step as f64 * 0.11).cos() * 0.2,
        3e-4 * (1.0 - step as f64 / 20_000.0),
        (step as f64 / 7813.0 * 1e4).round() / 1e4
    )
}

fn bench_parse(c: &mut Criterion) {
    let map = FieldMap::new();
    let mut group = c.benchmark_group("jsonl_line");
    for (name, text) in LINES {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), text, |b, text| {
            b.iter(|| raw::jsonl_line(black_box(text.as_bytes()), &map))
        });
    }
    group.finish();

    let n = 10_000u64;
    let text: String = (1..=n).map(line).collect();
    let mut group = c.benchmark_group("stream_10k");
    group.throughput(Throughput::Elements(n));
    group.bench_function("jsonl (64 KiB reads)", |b| {
        let parts: Vec<&[u8]> = text.as_bytes().chunks(64 * 1024).collect();
        b.iter(|| raw::stream(Format::JSONL, black_box(&parts), &map).count)
    });
    let with_nan: String = (1..=n)
        .map(|s| {
            if s % 2 == 0 {
                line(s).replace("\"loss\": ", "\"loss\": NaN, \"x\": ")
            } else {
                line(s)
            }
        })
        .collect();
    group.bench_function("jsonl, half the lines with NaN", |b| {
        let parts: Vec<&[u8]> = with_nan.as_bytes().chunks(64 * 1024).collect();
        b.iter(|| raw::stream(Format::JSONL, black_box(&parts), &map).count)
    });
    let mut csv = String::from("epoch,lr-AdamW,step,train_loss_step,val_loss\n");
    for s in 1..=n {
        if s % 50 == 0 {
            csv.push_str(&format!(
                "{},,{s},,{}\n",
                s / 1000,
                1.5 + (s as f64).sin() * 0.1
            ));
        } else {
            csv.push_str(&format!(
                ",{},{s},{},\n",
                3e-4 * (1.0 - s as f64 / 20_000.0),
                2.0 + (s as f64 * 0.37).sin()
            ));
        }
    }
    group.bench_function("csv rows (64 KiB reads)", |b| {
        let parts: Vec<&[u8]> = csv.as_bytes().chunks(64 * 1024).collect();
        b.iter(|| raw::stream(Format::CSV, black_box(&parts), &map).count)
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
