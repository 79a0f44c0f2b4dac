//! Divergence: a non-finite loss or grad norm (at the first such step), and a
//! loss that climbs far above its running minimum (before it overflows).

use crate::format::short;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::episode::Episode;
use crate::monitor::stats::RollingWindow;

use super::{Observation, lr_text};

/// Losses in the median that stands for "the loss now": a single spike is
/// the spike rule's business, not a divergence.
const LEVEL_WINDOW: usize = 5;

#[derive(Debug, Clone)]
pub struct Divergence {
    nonfinite: Episode,
    explosion: Episode,
    recent: RollingWindow,
    first_level: Option<f64>,
    min_level: f64,
    min_step: Option<u64>,
    /// Consecutive loss records above the fast and the slow ratio.
    fast_streak: u32,
    slow_streak: u32,
}

impl Divergence {
    pub fn new(config: &MonitorConfig) -> Self {
        Divergence {
            nonfinite: Episode::new(config.clear_after),
            explosion: Episode::new(config.clear_after),
            recent: RollingWindow::new(LEVEL_WINDOW),
            first_level: None,
            min_level: f64::INFINITY,
            min_step: None,
            fast_streak: 0,
            slow_streak: 0,
        }
    }

    pub fn is_active(&self) -> bool {
        self.nonfinite.is_active() || self.explosion.is_active()
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig, out: &mut Vec<Alert>) {
        let rec = obs.rec;
        if rec.loss.is_some() || rec.grad_norm.is_some() {
            let bad = [("loss", rec.loss), ("grad norm", rec.grad_norm)]
                .into_iter()
                .find_map(|(name, v)| v.filter(|v| !v.is_finite()).map(|v| (name, v)));
            if self.nonfinite.update(bad.is_some())
                && let Some((name, value)) = bad
            {
                out.push(Alert::new(
                    Level::Critical,
                    AlertKind::Divergence,
                    obs.step,
                    format!("{name} is {value}: the run has diverged"),
                    format!(
                        "stop the run; restart from the last checkpoint with {}, warmup and gradient clipping (max_grad_norm=1.0)",
                        lr_text(obs.lr, 0.1)
                    ),
                ));
            }
        }
        if let Some(loss) = obs.loss {
            self.observe_loss(loss, obs, config, out);
        }
    }

    fn observe_loss(
        &mut self,
        loss: f64,
        obs: &Observation,
        config: &MonitorConfig,
        out: &mut Vec<Alert>,
    ) {
        self.recent.push(loss);
        let Some(level) = self.recent.median() else {
            return;
        };
        let first = *self.first_level.get_or_insert(level);
        if level < self.min_level {
            self.min_level = level;
            self.min_step = obs.step;
        }
        let min = self.min_level;
        // Ratios only mean something for positive losses.
        let gave_back = min > 0.0 && level - min >= config.divergence_progress_lost * (first - min);
        let above = |ratio: f64| gave_back && level > ratio * min;
        self.fast_streak = if above(config.divergence_ratio) {
            self.fast_streak + 1
        } else {
            0
        };
        self.slow_streak = if above(config.divergence_slow_ratio) {
            self.slow_streak + 1
        } else {
            0
        };
        let diverging = self.fast_streak >= config.divergence_sustain.max(1)
            || self.slow_streak >= config.divergence_slow_sustain.max(1);
        if self.explosion.update(diverging) {
            let since = self
                .min_step
                .map(|s| format!(" (step {s})"))
                .unwrap_or_default();
            out.push(Alert::new(
                Level::Critical,
                AlertKind::Divergence,
                obs.step,
                format!(
                    "loss climbed to {} (median of the last {}), {:.1}x its minimum {}{since}: the run is diverging",
                    short(level),
                    self.recent.len(),
                    level / min,
                    short(min),
                ),
                format!(
                    "stop the run; restart from a checkpoint before the climb with {}, a longer warmup or gradient clipping (max_grad_norm=1.0)",
                    lr_text(obs.lr, 0.3)
                ),
            ));
        }
    }
}
