//! Process-wide settings for training, made in one place before the
//! trainer starts: the allocator's reuse of freed memory and the threads
//! Candle's CPU kernels and rayon's pool use. Both are process-wide (the
//! environment, glibc's parameters, rayon's global pool), so a command that
//! trains calls [`prepare`] once, first.

use super::{DeviceSpec, LearnerConfig};

/// The settings for training `cfg`: freed memory kept for reuse, and the
/// CPU threads (see [`configure_cpu_threads`]); returns `cfg` with the
/// thread count and data-parallel choice filled in.
pub fn prepare(cfg: LearnerConfig) -> LearnerConfig {
    super::memory::keep_freed_memory_for_reuse();
    configure_cpu_threads(cfg)
}

/// Candle's CPU kernels on exactly the threads `--threads` asks for, and a
/// Llama's batches as one share per thread at once
/// (`LearnerConfig::data_parallel`), each share's kernels on one thread:
/// 4,700-5,300 tokens/s against 2,900-3,000 with Candle splitting every op
/// over the 2 cores here (BENCHMARKS.md). Candle takes its thread count
/// from the environment (its own worker pool, whatever rayon pool runs the
/// step), so this sets it, while the process still has a single thread
/// (nothing else can read the environment meanwhile).
fn configure_cpu_threads(mut cfg: LearnerConfig) -> LearnerConfig {
    let on_cpu = match cfg.device {
        DeviceSpec::Cpu => true,
        DeviceSpec::Auto => !cfg!(any(feature = "cuda", feature = "metal")),
        _ => false,
    };
    if !on_cpu || !single_threaded() {
        return cfg;
    }
    let threads = cfg
        .threads
        .unwrap_or_else(candle_core::utils::get_num_threads);
    cfg.threads = Some(threads);
    // One share of each batch per thread where that gives the same update;
    // otherwise (an image model, fewer examples than threads) Candle's
    // kernels spread over the threads.
    cfg.data_parallel = super::learner::can_split_batches(&cfg.model, cfg.batch_size, threads);
    let kernel_threads = if cfg.data_parallel { 1 } else { threads };
    // SAFETY: this process has one thread (checked above), so no other
    // thread reads or writes the environment while it changes.
    unsafe {
        crate::child_env::set_for_this_process(
            "CANDLE_NUM_THREADS",
            &super::learner::elementwise_threads(&cfg.model, kernel_threads).to_string(),
        );
        crate::child_env::set_for_this_process("RAYON_NUM_THREADS", &kernel_threads.to_string());
    }
    // Rayon's global pool (the monitor's fits, the follower) would size
    // itself from RAYON_NUM_THREADS: it keeps every thread asked for.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    cfg
}

/// Whether this process runs a single thread (Linux; elsewhere: unknown, no).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .map(|n| n.trim() == "1")
        })
        .unwrap_or(false)
}
