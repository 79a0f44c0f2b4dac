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
            window: RollingWindow::new(window),
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
            self.window = RollingWindow::new(self.cap);
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

    /// Runs for every record: the median alone rules out almost every
    /// value (an outlier must first be `min_ratio` times it); the spread
    /// and the z-score are computed only for the rest.
    fn test(&self, x: f64, value: f64) -> Option<Jump> {
        if self.window.len() < self.min_history {
            return None;
        }
        let med = self.window.median()?;
        let ratio_ok = if self.log_space {
            x - med > self.log_min_ratio
        } else {
            med > 0.0 && x > self.min_ratio * med
        };
        if !ratio_ok {
            return None;
        }
        let sigma = self.window.robust_sigma()?;
        let (median, z) = if self.log_space {
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
