//! Loss spikes and grad-norm explosions: a value that is an outlier against
//! the robust level (median, IQR) of a rolling window. Both work on logs of
//! positive values, since noise in losses and norms is multiplicative.

use crate::format::short;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::episode::Episode;
use crate::monitor::stats::RollingWindow;

use super::{Observation, lr_text};

/// A floor on the robust spread (in log units, ~1%) so that a perfectly
/// flat series does not make every wiggle an outlier.
const MIN_SIGMA: f64 = 0.01;

/// The outlier test shared by both rules.
#[derive(Debug, Clone)]
struct JumpDetector {
    window: RollingWindow,
    cap: usize,
    /// Falls back to linear values once a value <= 0 shows up.
    log_space: bool,
    min_history: usize,
    z: f64,
    min_ratio: f64,
    /// ln(min_ratio), for the test in log space.
    log_min_ratio: f64,
}

/// An outlier: the value, the window's median and the robust z-score.
struct Jump {
    value: f64,
    median: f64,
    z: f64,
}

impl JumpDetector {
    fn new(window: usize, min_history: usize, z: f64, min_ratio: f64) -> Self {
        JumpDetector {
            window: RollingWindow::lazy(window),
            cap: window,
            log_space: true,
            min_history: min_history.max(3),
            z,
            min_ratio,
            log_min_ratio: min_ratio.ln(),
        }
    }

    /// `ln`: the value's logarithm when the caller has it already.
    fn push(&mut self, value: f64, ln: Option<f64>) -> Option<Jump> {
        if self.log_space && value <= 0.0 {
            self.log_space = false;
            self.window = RollingWindow::lazy(self.cap);
        }
        let x = if self.log_space {
            ln.unwrap_or_else(|| value.ln())
        } else {
            value
        };
        let jump = self.test(x, value);
        self.window.push(x);
        jump
    }

    /// Runs for every record. An outlier must first be `min_ratio` times
    /// the median, which rules out almost every value; that is checked by
    /// counting (no sorting), and the window is sorted, for its median and
    /// spread, only for the rest.
    fn test(&mut self, x: f64, value: f64) -> Option<Jump> {
        if self.window.len() < self.min_history {
            return None;
        }
        // Medians that would let `x` through, a set closed downwards (in
        // linear space a superset: `m > 0` is checked below).
        let (log_space, log_min_ratio, min_ratio) =
            (self.log_space, self.log_min_ratio, self.min_ratio);
        let low_enough = |m: f64| {
            if log_space {
                x - m > log_min_ratio
            } else {
                x > min_ratio * m
            }
        };
        let closed_downwards = log_space || min_ratio > 0.0;
        if closed_downwards && self.window.median_outside(low_enough) {
            return None;
        }
        self.window.ensure_sorted();
        let med = self.window.median()?;
        let ratio_ok = if log_space {
            low_enough(med)
        } else {
            med > 0.0 && low_enough(med)
        };
        if !ratio_ok {
            return None;
        }
        let sigma = self.window.robust_sigma()?;
        let (median, z) = if log_space {
            (med.exp(), (x - med) / sigma.max(MIN_SIGMA))
        } else {
            let z = (x - med) / sigma.max(MIN_SIGMA * med.abs()).max(f64::MIN_POSITIVE);
            (med, z)
        };
        (z > self.z).then_some(Jump { value, median, z })
    }
}

#[derive(Debug, Clone)]
pub struct LossSpike {
    detector: JumpDetector,
    episode: Episode,
}

impl LossSpike {
    pub fn new(config: &MonitorConfig) -> Self {
        LossSpike {
            detector: JumpDetector::new(
                config.spike_window,
                config.spike_min_history,
                config.spike_z,
                config.spike_min_ratio,
            ),
            episode: Episode::new(config.clear_after),
        }
    }

    pub fn observe(&mut self, obs: &Observation, out: &mut Vec<Alert>) {
        let Some(loss) = obs.loss else {
            return;
        };
        let jump = self.detector.push(loss, obs.log_loss);
        if self.episode.update(jump.is_some())
            && !obs.diverging
            && let Some(j) = jump
        {
            out.push(Alert::new(
                Level::Warn,
                AlertKind::Spike,
                obs.step,
                format!(
                    "loss spiked to {}, {:.1}x the recent median {} (robust z = {:.0})",
                    short(j.value),
                    j.value / j.median,
                    short(j.median),
                    j.z
                ),
                format!(
                    "if spikes recur, lower the peak LR ({}) or clip gradients (max_grad_norm=1.0); check the batch at this step for bad data",
                    lr_text(obs.lr, 0.5)
                ),
            ));
        }
    }
}

#[derive(Debug, Clone)]
pub struct GradExplosion {
    detector: JumpDetector,
    episode: Episode,
}

impl GradExplosion {
    pub fn new(config: &MonitorConfig) -> Self {
        GradExplosion {
            detector: JumpDetector::new(
                config.grad_window,
                config.grad_min_history,
                config.grad_z,
                config.grad_min_ratio,
            ),
            episode: Episode::new(config.clear_after),
        }
    }

    pub fn observe(&mut self, obs: &Observation, out: &mut Vec<Alert>) {
        // Non-finite norms are the divergence rule's.
        let Some(norm) = obs.rec.grad_norm.filter(|g| g.is_finite()) else {
            return;
        };
        let jump = self.detector.push(norm, None);
        if self.episode.update(jump.is_some())
            && !obs.diverging
            && let Some(j) = jump
        {
            out.push(Alert::new(
                Level::Warn,
                AlertKind::GradExplosion,
                obs.step,
                format!(
                    "grad norm jumped to {}, {:.0}x its recent median {}",
                    short(j.value),
                    j.value / j.median,
                    short(j.median)
                ),
                format!(
                    "clip gradients at about {} (max_grad_norm), or lower the LR ({})",
                    short((j.median * 5.0).max(f64::MIN_POSITIVE)),
                    lr_text(obs.lr, 0.5)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as first written: sort the window for every value.
    struct Reference {
        values: Vec<f64>,
        cap: usize,
        log_space: bool,
        min_history: usize,
        z: f64,
        min_ratio: f64,
    }

    impl Reference {
        fn push(&mut self, value: f64) -> Option<(f64, f64, f64)> {
            if self.log_space && value <= 0.0 {
                self.log_space = false;
                self.values.clear();
            }
            let x = if self.log_space { value.ln() } else { value };
            let mut sorted = self.values.clone();
            sorted.sort_by(f64::total_cmp);
            let q = |q: f64| {
                let pos = q * (sorted.len() - 1) as f64;
                let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
                let hi = (lo + 1).min(sorted.len() - 1);
                sorted[lo] + (sorted[hi] - sorted[lo]) * frac
            };
            let jump = (sorted.len() >= self.min_history).then(|| {
                let (med, sigma) = (q(0.5), (q(0.75) - q(0.25)) / 1.349);
                let (median, ratio_ok, z) = if self.log_space {
                    let z = (x - med) / sigma.max(MIN_SIGMA);
                    (med.exp(), x - med > self.min_ratio.ln(), z)
                } else {
                    let z = (x - med) / sigma.max(MIN_SIGMA * med.abs()).max(f64::MIN_POSITIVE);
                    (med, med > 0.0 && x > self.min_ratio * med, z)
                };
                (ratio_ok && z > self.z).then_some((value, median, z))
            });
            if x.is_finite() {
                self.values.push(x);
                if self.values.len() > self.cap {
                    self.values.remove(0);
                }
            }
            jump.flatten()
        }
    }

    #[test]
    fn the_lazy_window_finds_the_same_jumps_as_sorting_every_time() {
        let mut rng = crate::test_rng(0x853c_49e6_748f_ea9b);
        let mut uniform = move || (rng() >> 11) as f64 / (1u64 << 53) as f64;
        for (series, min_ratio) in [(0, 2.0), (1, 10.0), (2, 2.0), (3, 0.5), (4, 2.0)] {
            let (cap, min_history, z) = (64, 20, 4.0);
            let mut lazy = JumpDetector::new(cap, min_history, z, min_ratio);
            let mut reference = Reference {
                values: Vec::new(),
                cap,
                log_space: true,
                min_history,
                z,
                min_ratio,
            };
            let mut jumps = 0;
            for i in 0..20_000 {
                let u = uniform();
                let value = match series {
                    // Noisy, with rare spikes and bursts of them.
                    0 | 3 => {
                        1.0 + 0.1 * u
                            + if i % 997 == 0 || (5000..5100).contains(&i) {
                                5.0
                            } else {
                                0.0
                            }
                    }
                    // Heavy-tailed: values many times the median are common.
                    1 => 1.0 / (u + 1e-3),
                    // Ties and a run at one value, then zeros (linear space).
                    2 => {
                        if i < 8000 {
                            (u * 4.0).floor()
                        } else {
                            1.0
                        }
                    }
                    // Negative values from the start: linear space.
                    _ => u * 2.0 - 1.0 + if i % 500 == 0 { 30.0 } else { 0.0 },
                };
                let got = lazy.push(value, None).map(|j| (j.value, j.median, j.z));
                assert_eq!(got, reference.push(value), "series {series}, value {i}");
                jumps += usize::from(got.is_some());
            }
            assert!(
                series == 2 || jumps > 0,
                "series {series} has jumps to find"
            );
        }
    }
}
