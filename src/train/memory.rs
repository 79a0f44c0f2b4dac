//! A training job's memory, estimated before anything is allocated: an
//! absurd `--batch-size` or `--dim` is refused with the estimate and what
//! the machine has, instead of an allocation abort or the OOM killer.

use super::models::ModelSpec;

/// Bytes per f32.
const F32: f64 = 4.0;

/// A rough upper estimate of the bytes one training step needs: weights,
/// gradients and two optimizer moments (4x the parameters), plus
/// activations kept for the backward pass. `inputs` is the input width (a
/// digits image has 64, a token a vocabulary `vocab`).
pub fn estimate_bytes(
    model: &ModelSpec,
    batch: usize,
    seq_len: usize,
    inputs: usize,
    vocab: usize,
) -> f64 {
    let (b, s) = (batch as f64, seq_len as f64);
    let (params, activations) = match model {
        ModelSpec::Mlp { hidden } => {
            let mut widths = vec![inputs as f64];
            widths.extend(hidden.iter().map(|&w| w as f64));
            widths.push(10.0);
            let params: f64 = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
            (params, b * widths.iter().sum::<f64>() * 3.0)
        }
        ModelSpec::LeNet5 => (62_000.0, b * 12_000.0),
        ModelSpec::ResNet { blocks_per_stage } => {
            let n = *blocks_per_stage as f64;
            (n * 90_000.0, b * n * 6.0 * 16_384.0 * 3.0)
        }
        ModelSpec::Llama(l) => {
            let (d, layers, v) = (l.dim as f64, l.layers as f64, vocab as f64);
            let ff = l.intermediate_size() as f64;
            let per_layer = 4.0 * d * d + 3.0 * d * ff;
            let params = layers * per_layer + v * d * if l.tie_embeddings { 1.0 } else { 2.0 };
            // Per token and layer: the residual stream, attention and MLP
            // intermediates; plus the attention scores and the logits.
            let heads = l.heads as f64;
            let acts = b * s * (layers * (12.0 * d + 3.0 * ff) + v * 2.0)
                + b * layers * heads * s * s * 2.0;
            match &l.lora {
                // A frozen base: its weights only; gradients and moments
                // for the adapters alone.
                Some(lora) => {
                    let kv = d * l.kv_heads as f64 / l.heads.max(1) as f64;
                    let r = lora.rank as f64;
                    let per_layer: f64 = [
                        ("q_proj", d, d),
                        ("k_proj", d, kv),
                        ("v_proj", d, kv),
                        ("o_proj", d, d),
                        ("gate_proj", d, ff),
                        ("up_proj", d, ff),
                        ("down_proj", ff, d),
                    ]
                    .iter()
                    .filter(|(name, ..)| lora.targets(name))
                    .map(|(_, inputs, outputs)| r * (inputs + outputs))
                    .sum();
                    let adapters = layers * per_layer;
                    return (params + adapters * 4.0 + acts) * F32;
                }
                None => (params, acts),
            }
        }
    };
    // Weights, gradients and two optimizer moments of every parameter.
    (params * 4.0 + activations) * F32
}

/// Keeps freed tensor memory in the heap for the next training step.
///
/// A step allocates and frees the same large tensors (activations, their
/// gradients) every time. glibc serves blocks past its mmap threshold with
/// fresh mappings, so each step paid page faults and zeroing for memory it
/// had just returned (13% of a Llama step in `perf`). Serving blocks up to
/// 32 MiB (glibc's largest threshold) from the heap, and trimming its top
/// only past 256 MiB free, reuses them: 2,500 -> 2,900 tokens/s on the
/// BENCHMARKS.md Llama. Process-wide and idempotent; only training calls it,
/// so `attach` keeps the default and gives memory back.
pub fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets allocator parameters; it is called
            // once, and glibc serialises it with allocations.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
                libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            }
        });
    }
}

/// Memory this process may still get, in bytes: the least of the system's
/// `MemAvailable`, the headroom under `ulimit -v` (RLIMIT_AS less the
/// address space in use) and the headroom of its cgroup v2 (`memory.max`
/// less `memory.current`): a job in a container or under a limit is judged
/// by its limit, not by the host's RAM.
pub fn available_bytes() -> Option<f64> {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_kib(&text, "MemAvailable:"))
        .map(|kib| kib * 1024.0);
    let address_space = address_space_headroom();
    let cgroup = cgroup_headroom();
    [system, address_space, cgroup]
        .into_iter()
        .flatten()
        .reduce(f64::min)
}

/// A `Name:  123 kB` line of /proc/meminfo or /proc/self/status, in KiB.
fn meminfo_kib(text: &str, name: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn address_space_headroom() -> Option<f64> {
    // SAFETY: getrlimit writes into the struct it is given.
    let limit = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_AS, &mut limit) == 0).then_some(limit)
    }?;
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used = meminfo_kib(&status, "VmSize:")? * 1024.0;
    Some((limit.rlim_cur as f64 - used).max(0.0))
}

fn cgroup_headroom() -> Option<f64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(cgroup_v2_path(&membership)?);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    headroom(&read("memory.max")?, &read("memory.current")?)
}

/// The cgroup v2 path in /proc/self/cgroup's `0::/path` line, relative.
fn cgroup_v2_path(membership: &str) -> Option<&str> {
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let relative = path.trim().trim_start_matches('/');
    // `..` would leave /sys/fs/cgroup; the kernel never writes it.
    (!relative.split('/').any(|part| part == "..")).then_some(relative)
}

/// `memory.max` ("max" when unlimited) less `memory.current`.
fn headroom(max: &str, current: &str) -> Option<f64> {
    let max: f64 = max.trim().parse().ok()?;
    let current: f64 = current.trim().parse().ok()?;
    Some((max - current).max(0.0))
}

/// "1.5 GiB"
pub fn human(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if v.is_finite() && i + 1 < units.len() || v < 1024.0 {
        format!("{v:.1} {}", units[i])
    } else {
        "more than 1024 EiB".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_the_kernels_files() {
        let meminfo = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_kib(meminfo, "MemAvailable:"), Some(20_000_000.0));
        assert_eq!(meminfo_kib(meminfo, "VmSize:"), None);
        assert_eq!(
            cgroup_v2_path("0::/user.slice/job-7\n"),
            Some("user.slice/job-7")
        );
        assert_eq!(cgroup_v2_path("0::/\n"), Some(""));
        assert_eq!(cgroup_v2_path("1:memory:/x\n"), None);
        assert_eq!(cgroup_v2_path("0::/a/../../etc\n"), None);
        assert_eq!(headroom("max\n", "123\n"), None);
        assert_eq!(headroom("1000\n", "300\n"), Some(700.0));
        assert_eq!(headroom("1000", "3000"), Some(0.0));
    }

    #[test]
    fn the_available_memory_is_never_more_than_the_system_has() {
        let system = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| meminfo_kib(&t, "MemAvailable:"));
        if let (Some(system), Some(available)) = (system, available_bytes()) {
            assert!(available <= system * 1024.0 + 1.0);
        }
    }

    #[test]
    fn the_default_job_is_small_and_absurd_ones_are_huge() {
        let mlp = ModelSpec::default();
        let small = estimate_bytes(&mlp, 64, 64, 64, 0);
        assert!(small < 16.0 * 1024.0 * 1024.0, "{}", human(small));
        let huge = estimate_bytes(&mlp, usize::MAX, 64, 64, 0);
        assert!(huge > 1e18, "{}", human(huge));
        assert_eq!(human(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
    }

    #[test]
    fn a_lora_run_counts_gradients_and_moments_of_its_adapters_only() {
        use crate::train::models::{LlamaSpec, LoraSpec};
        let full = LlamaSpec {
            dim: 2048,
            layers: 16,
            ..LlamaSpec::default()
        };
        let lora = LlamaSpec {
            lora: Some(LoraSpec::default()),
            ..full.clone()
        };
        let (full, lora) = (ModelSpec::Llama(full), ModelSpec::Llama(lora));
        let a = estimate_bytes(&full, 1, 16, 0, 32_000);
        let b = estimate_bytes(&lora, 1, 16, 0, 32_000);
        // With tiny activations: about a quarter (weights only, plus adapters).
        assert!(b < 0.3 * a && b > 0.24 * a, "{} vs {}", human(b), human(a));
    }
}
