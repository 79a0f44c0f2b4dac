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
            (params, acts)
        }
    };
    (params * 4.0 + activations) * F32
}

/// Memory the system can give now (Linux `MemAvailable`), in bytes.
pub fn available_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
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
    fn the_default_job_is_small_and_absurd_ones_are_huge() {
        let mlp = ModelSpec::default();
        let small = estimate_bytes(&mlp, 64, 64, 64, 0);
        assert!(small < 16.0 * 1024.0 * 1024.0, "{}", human(small));
        let huge = estimate_bytes(&mlp, usize::MAX, 64, 64, 0);
        assert!(huge > 1e18, "{}", human(huge));
        assert_eq!(human(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
    }
}
