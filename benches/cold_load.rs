//! Cold load (`lrtop attach --no-follow`) of a ~50 MB Hugging Face-style
//! JSONL log: training lines with full-precision floats and an eval line
//! every 500 steps, as `scripts/gen_big_jsonl.py` writes them. The file is
//! generated once in the temp directory (`LRTOP_BENCH_JSONL` overrides it).
//! The 2M-line (330 MB) comparison with Python's `json.loads` is
//! `scripts/bench_cold_load.py`.
//!
//!     cargo bench --bench cold_load

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lrtop::ingest::{FieldMap, LoadOptions, Source, load_with};

/// Lines of the generated file: about 50 MB.
const LINES: u64 = 300_000;

/// A small deterministic generator (the file must not change between runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        mean + sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn big_file() -> PathBuf {
    if let Some(path) = std::env::var_os("LRTOP_BENCH_JSONL") {
        return PathBuf::from(path);
    }
    let path = std::env::temp_dir().join(format!("lrtop_bench_{LINES}.jsonl"));
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&tmp).unwrap());
    let mut rng = Lcg(1234);
    let mut written = 0;
    let mut step = 0u64;
    while written < LINES {
        step += 1;
        let s = step as f64;
        let warmup = (s / 2000.0).min(1.0);
        let lr = 3e-4 * warmup * 0.5 * (1.0 + (std::f64::consts::PI * s / LINES as f64).cos());
        let loss = 4.5 * (-s / 400_000.0).exp() + 0.8 + rng.gauss(0.0, 0.05);
        let epoch = (s / 7813.0 * 1e4).round() / 1e4;
        writeln!(
            out,
            "{{\"step\": {step}, \"loss\": {loss:?}, \"grad_norm\": {:?}, \"learning_rate\": {lr:?}, \"epoch\": {epoch:?}, \"num_input_tokens_seen\": {}}}",
            rng.gauss(0.6, 0.2).abs(),
            step * 16384
        )
        .unwrap();
        written += 1;
        if step.is_multiple_of(500) && written < LINES {
            writeln!(
                out,
                "{{\"step\": {step}, \"eval_loss\": {:?}, \"eval_runtime\": {:?}, \"eval_samples_per_second\": {:?}, \"eval_steps_per_second\": {:?}, \"epoch\": {epoch:?}}}",
                loss + rng.gauss(0.05, 0.01),
                10.0 + 10.0 * rng.next(),
                300.0 + 100.0 * rng.next(),
                10.0 + 3.0 * rng.next()
            )
            .unwrap();
            written += 1;
        }
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn bench_cold_load(c: &mut Criterion) {
    let path = big_file();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let source = Source::file(&path);
    let map = FieldMap::new();
    // Into the page cache.
    let _ = std::fs::read(&path).unwrap();
    let mut group = c.benchmark_group(format!("cold_load_{}MB", bytes / 1_000_000));
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    for (name, parallel) in [("parallel", true), ("one thread", false)] {
        let options = LoadOptions {
            parallel,
            ..LoadOptions::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let run = load_with(&source, &map, &options).unwrap();
                assert_eq!(run.bad_lines, 0);
                run.records
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_cold_load);
criterion_main!(benches);
