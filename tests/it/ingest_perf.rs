//! Cold-load timing of a big JSONL file, for scripts/bench_cold_load.sh.
//! Ignored by default; run with
//! `LRTOP_BIG_JSONL=/tmp/lrtop_big.jsonl cargo test --release --test it ingest_perf -- --ignored --nocapture`.

use std::time::Instant;

use lrtop::ingest::{FieldMap, Source, load};

/// Peak resident memory of this process so far (kB), from /proc.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "needs LRTOP_BIG_JSONL (see scripts/bench_cold_load.sh)"]
fn cold_load_big_jsonl() {
    let Ok(path) = std::env::var("LRTOP_BIG_JSONL") else {
        eprintln!("LRTOP_BIG_JSONL is not set; nothing to measure");
        return;
    };
    let reps: usize = std::env::var("LRTOP_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let source = Source::file(&path);
    let map = FieldMap::new();
    for _ in 0..reps {
        let started = Instant::now();
        let run = load(&source, &map).expect("load");
        let seconds = started.elapsed().as_secs_f64();
        let loss_points = run.data.column("loss").map_or(0, |c| c.len());
        println!(
            "LRTOP_RESULT seconds={seconds:.3} records={} bad={} rows={} loss_points={loss_points} heap_mb={:.1} peak_rss_kb={}",
            run.records,
            run.bad_lines,
            run.data.len(),
            run.data.heap_bytes() as f64 / 1e6,
            peak_rss_kb().unwrap_or(0)
        );
    }
}
