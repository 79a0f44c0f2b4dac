//! Training speed of the digits MLP (64-128-128-10, batch 64, SGD, an LR
//! that changes every step). Ignored by default; `scripts/train_bench_mlp.sh`
//! runs it next to the PyTorch baseline (`scripts/train_bench_mlp.py`).
//!
//! Settings from the environment: `LRTOP_BENCH_STEPS` (3000),
//! `LRTOP_BENCH_WARMUP` (300), `LRTOP_BENCH_REPS` (5), `LRTOP_BENCH_THREADS`
//! (1), `LRTOP_BENCH_ENGINE` (`fused` or `autograd`), `LRTOP_BENCH_MOMENTUM` (0).
//! Prints one JSON line per repetition.

use std::time::Instant;

use lrtop::train::{DeviceSpec, Learner, LearnerConfig, ModelSpec, OptimizerKind};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn train_bench_mlp() {
    let steps: usize = env_or("LRTOP_BENCH_STEPS", 3000);
    let warmup: usize = env_or("LRTOP_BENCH_WARMUP", 300);
    let reps: u64 = env_or("LRTOP_BENCH_REPS", 5);
    let threads: usize = env_or("LRTOP_BENCH_THREADS", 1);
    let engine: String = env_or("LRTOP_BENCH_ENGINE", "fused".to_string());
    let momentum: f64 = env_or("LRTOP_BENCH_MOMENTUM", 0.0);
    for rep in 0..reps {
        let cfg = LearnerConfig {
            model: ModelSpec::Mlp {
                hidden: vec![128, 128],
            },
            optimizer: if momentum > 0.0 {
                OptimizerKind::Momentum
            } else {
                OptimizerKind::Sgd
            },
            momentum,
            batch_size: 64,
            seed: rep,
            device: DeviceSpec::Cpu,
            threads: Some(threads),
            fused_cpu_mlp: engine == "fused",
            ..LearnerConfig::default()
        };
        let mut learner = Learner::new(&cfg).expect("learner");
        let total = warmup + steps;
        let mut started = None;
        let mut last = 0.0;
        for step in 0..total {
            if step == warmup {
                started = Some(Instant::now());
            }
            let cos = (std::f64::consts::PI * step as f64 / total as f64).cos();
            let lr = 0.001 + 0.5 * (0.1 - 0.001) * (1.0 + cos);
            last = learner.train_step(lr).expect("step").loss;
        }
        let secs = started.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
        println!(
            "{{\"impl\": \"lrtop\", \"engine\": \"{engine}\", \"threads\": {threads}, \"rep\": {rep}, \"momentum\": {momentum}, \"steps_per_s\": {}, \"final_loss\": {last}}}",
            steps as f64 / secs
        );
    }
}
