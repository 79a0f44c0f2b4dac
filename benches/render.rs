//! Drawing: decimation of 2M points to a chart's width, and a whole
//! dashboard frame over a run of 2M records on ratatui's TestBackend (the
//! target: under 5 ms a frame). Steady-state frames: the smoothed loss is
//! computed once, as the live dashboard keeps it.
//!
//!     cargo bench --bench render

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lrtop::metrics::decimate::{BlockIndex, min_max, min_max_indexed};
use lrtop::metrics::{Record, RunData, XAxis};
use lrtop::session::{MonitorSetup, RunStatus, Session};
use lrtop::tui::app::App;
use lrtop::tui::panels;
use lrtop::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const N: u64 = 2_000_000;

fn noise(i: u64) -> f64 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    x as f64 / (1u64 << 53) as f64 - 0.5
}

fn record(s: u64) -> Record {
    let t = s as f64 / N as f64;
    let mut rec = Record {
        step: Some(s),
        epoch: Some(t * 3.0),
        time: Some(1.7e9 + s as f64 * 0.05),
        lr: Some(3e-4 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())),
        loss: Some(0.8 + 3.5 * (-t * 8.0).exp() + 0.1 * noise(s)),
        grad_norm: Some(0.6 + 0.2 * noise(s + 7)),
        extra: Vec::new(),
    };
    if s.is_multiple_of(1000) {
        rec.extra
            .push(("eval_loss".into(), 0.9 + 3.0 * (-t * 8.0).exp()));
    }
    rec
}

fn run_data() -> RunData {
    let mut data = RunData::new();
    for s in 1..=N {
        data.push(&record(s), 1.7e9);
    }
    data
}

fn bench_decimate(c: &mut Criterion, data: &RunData) {
    let points = data.points("loss", XAxis::Step);
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let index = BlockIndex::build(&values);
    let (x0, x1) = (1.0, N as f64);
    let mut group = c.benchmark_group("decimate_2M");
    group.throughput(Throughput::Elements(N));
    for buckets in [200usize, 800] {
        group.bench_with_input(
            BenchmarkId::new("min_max (scan)", buckets),
            &buckets,
            |b, &k| b.iter(|| min_max(black_box(&points), x0, x1, k).len()),
        );
        group.bench_with_input(
            BenchmarkId::new("min_max_indexed", buckets),
            &buckets,
            |b, &k| {
                b.iter(|| {
                    min_max_indexed(|i| points[i].0, black_box(&values), &index, x0, x1, k).len()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("RunData::decimated", buckets),
            &buckets,
            |b, &k| b.iter(|| data.decimated("loss", XAxis::Step, x0, x1, k).len()),
        );
    }
    // A zoomed view: the last 10% of the run.
    group.bench_function("RunData::decimated zoomed 10%", |b| {
        b.iter(|| {
            data.decimated("loss", XAxis::Step, 0.9 * N as f64, x1, 400)
                .len()
        })
    });
    group.finish();
}

fn bench_frame(c: &mut Criterion, data: RunData) {
    let mut session = Session::new(MonitorSetup::default());
    let run = session.add_run("big.jsonl".into(), None);
    session.load_run(run, data, 1.7e9 + N as f64 * 0.05);
    session.runs[run].status = RunStatus::Following;
    session.runs[run].total_steps = Some(N + N / 2);
    let mut app = App::new(session, Theme::default(), "lrtop attach · 1 run".into());
    app.now = 1.7e9 + N as f64 * 0.05 + 1.0;
    let mut group = c.benchmark_group("frame_2M_points");
    for (w, h) in [(80u16, 24u16), (120, 40), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        // The first frame computes the smoothed loss once.
        terminal.draw(|f| panels::render(f, &mut app)).unwrap();
        group.bench_function(format!("{w}x{h}"), |b| {
            b.iter(|| {
                terminal.draw(|f| panels::render(f, &mut app)).unwrap();
            })
        });
    }
    // Log y axis and epoch x axis: other paths through the charts.
    app.view.log_y = true;
    app.view.x_axis = XAxis::Epoch;
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    terminal.draw(|f| panels::render(f, &mut app)).unwrap();
    group.bench_function("200x60 log-y, epoch axis", |b| {
        b.iter(|| {
            terminal.draw(|f| panels::render(f, &mut app)).unwrap();
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let data = run_data();
    bench_decimate(c, &data);
    bench_frame(c, data);
}

criterion_group!(render, benches);
criterion_main!(render);
