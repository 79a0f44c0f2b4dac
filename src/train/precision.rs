//! Mixed precision: the float type a model computes in (`--dtype`), with
//! f32 master weights and optimizer state whatever it is, and the dynamic
//! loss scaling that f16 needs (PyTorch's `GradScaler`).
//!
//! Weights stay f32 variables; the forward pass casts them to the compute
//! type where they are used (the cast is differentiable, so their
//! gradients arrive in f32), the loss and the gradient norm are reduced in
//! f32. bf16 has f32's exponent range and needs no scaling; f16's small
//! gradients underflow to zero unless the loss is scaled up before the
//! backward pass and the gradients scaled back down after it.

use std::fmt;
use std::str::FromStr;

use candle_core::DType;

use super::error::{Result, TrainError};

/// The float type of a model's forward and backward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

impl Precision {
    /// The activations' float type.
    pub fn compute_dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }

    /// Whether gradients need loss scaling to survive the backward pass.
    pub fn needs_loss_scaling(self) -> bool {
        self == Precision::F16
    }
}

impl FromStr for Precision {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            other => Err(TrainError::Config(format!(
                "unknown dtype '{other}'; expected f32, bf16 or f16"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

/// Dynamic loss scaling with `torch.amp.GradScaler`'s defaults: start at
/// 2^16, halve and skip the update when a gradient is not finite, double
/// after 2,000 updates in a row without one.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    scale: f64,
    growth_interval: u32,
    good_steps: u32,
}

impl LossScaler {
    pub fn new(initial_scale: f64, growth_interval: u32) -> LossScaler {
        LossScaler {
            scale: initial_scale,
            growth_interval: growth_interval.max(1),
            good_steps: 0,
        }
    }

    /// The factor the loss is multiplied by before the backward pass.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Records whether the unscaled gradients of an update were finite;
    /// returns whether the update may be applied (false: skip it).
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            // The scale never falls to zero: f32 can unscale any f16 value.
            self.scale = (self.scale * 0.5).max(f64::MIN_POSITIVE);
            self.good_steps = 0;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps >= self.growth_interval {
            self.good_steps = 0;
            // f16's largest value: a larger scale overflows every loss.
            self.scale = (self.scale * 2.0).min(65_504.0 * 65_536.0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_parse_under_their_usual_names() {
        for (text, want) in [
            ("f32", Precision::F32),
            ("float32", Precision::F32),
            ("BF16", Precision::Bf16),
            ("bfloat16", Precision::Bf16),
            ("fp16", Precision::F16),
            ("float16", Precision::F16),
        ] {
            assert_eq!(text.parse::<Precision>().unwrap(), want, "{text}");
        }
        let err = "int8".parse::<Precision>().unwrap_err().to_string();
        assert!(err.contains("expected f32, bf16 or f16"), "{err}");
        assert_eq!(Precision::Bf16.to_string(), "bf16");
        assert_eq!(Precision::F16.compute_dtype(), DType::F16);
        assert!(Precision::F16.needs_loss_scaling());
        assert!(!Precision::Bf16.needs_loss_scaling());
    }

    #[test]
    fn the_scale_halves_on_overflow_and_doubles_after_a_clean_interval() {
        let mut s = LossScaler::new(1024.0, 3);
        assert!(!s.update(false), "a non-finite gradient skips the update");
        assert_eq!(s.scale(), 512.0);
        assert!(s.update(true) && s.update(true));
        assert_eq!(s.scale(), 512.0, "not yet a whole interval");
        assert!(!s.update(false));
        assert_eq!(s.scale(), 256.0, "an overflow restarts the interval");
        for _ in 0..3 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale(), 512.0);
    }
}
