//! Divergence: a non-finite loss (at the first such step), and a loss that
//! climbs far above its running minimum (before it overflows). A
//! non-finite grad norm with a finite loss is a warning: fp16 loss scaling
//! skips such updates on purpose, and a real divergence shows in the loss.

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
    /// A non-finite grad norm with a finite loss: its own episode, so that
    /// the loss turning NaN next is still the critical alert it is.
    nonfinite_grad: Episode,
    explosion: Episode,
    recent: RollingWindow,
    first_level: Option<f64>,
    min_level: f64,
    min_step: Option<u64>,
    /// The lowest logged loss and its step (for the message).
    lowest: Option<(f64, Option<u64>)>,
    /// Consecutive loss records above the fast and the slow ratio.
    fast_streak: u32,
    slow_streak: u32,
}

impl Divergence {
    pub fn new(config: &MonitorConfig) -> Self {
        Divergence {
            nonfinite: Episode::new(config.clear_after),
            nonfinite_grad: Episode::new(config.clear_after),
            explosion: Episode::new(config.clear_after),
            recent: RollingWindow::new(LEVEL_WINDOW),
            first_level: None,
            min_level: f64::INFINITY,
            min_step: None,
            lowest: None,
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
            let bad_loss = rec.loss.filter(|v| !v.is_finite());
            let bad_grad = rec.grad_norm.filter(|v| !v.is_finite());
            let loss_event = rec.loss.is_some() && self.nonfinite.update(bad_loss.is_some());
            let grad_event = rec.grad_norm.is_some()
                && self
                    .nonfinite_grad
                    .update(bad_grad.is_some() && bad_loss.is_none());
            if loss_event || grad_event {
                match (bad_loss, bad_grad) {
                    (Some(value), _) => out.push(Alert::new(
                        Level::Critical,
                        AlertKind::Divergence,
                        obs.step,
                        format!("loss is {value}: the run has diverged"),
                        format!(
                            "stop the run; restart from the last checkpoint with {}, warmup and gradient clipping (max_grad_norm=1.0)",
                            lr_text(obs.lr, 0.1)
                        ),
                    )),
                    // After the loss climbed, an infinite gradient is
                    // the divergence going on, not a skipped fp16 update.
                    (None, Some(value)) if self.explosion.is_active() => out.push(Alert::new(
                        Level::Critical,
                        AlertKind::Divergence,
                        obs.step,
                        format!("grad norm is {value} after the loss climbed: the run has diverged"),
                        format!(
                            "stop the run; restart from the last checkpoint with {}, warmup and gradient clipping (max_grad_norm=1.0)",
                            lr_text(obs.lr, 0.1)
                        ),
                    )),
                    (None, Some(value)) => out.push(Alert::new(
                        Level::Warn,
                        AlertKind::Divergence,
                        obs.step,
                        format!(
                            "grad norm is {value}{}: an update skipped by fp16 loss scaling, or the start of a divergence",
                            rec.loss
                                .map(|l| format!(" while the loss ({}) is finite", short(l)))
                                .unwrap_or_default()
                        ),
                        format!(
                            "if it repeats or the loss follows, restart from the last checkpoint with {} and gradient clipping (max_grad_norm=1.0)",
                            lr_text(obs.lr, 0.3)
                        ),
                    )),
                    (None, None) => {}
                }
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
        if loss.is_finite() && self.lowest.is_none_or(|(low, _)| loss < low) {
            self.lowest = Some((loss, obs.step));
        }
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
            let at = |step: Option<u64>| step.map(|s| format!(" at step {s}")).unwrap_or_default();
            // The lowest single value only when it says more than the
            // lowest median (a noisy log's dip).
            let lowest = self
                .lowest
                .filter(|(low, _)| *low < 0.8 * min)
                .map(|(low, step)| format!("; lowest single loss {}{}", short(low), at(step)))
                .unwrap_or_default();
            out.push(Alert::new(
                Level::Critical,
                AlertKind::Divergence,
                obs.step,
                format!(
                    "loss climbed to {} (median of the last {} logged: {}), {:.1}x its lowest {}{}{lowest}: the run is diverging",
                    short(loss),
                    self.recent.len(),
                    short(level),
                    level / min,
                    short(min),
                    at(self.min_step),
                ),
                format!(
                    "stop the run; restart from a checkpoint before the climb with {}, a longer warmup or gradient clipping (max_grad_norm=1.0)",
                    lr_text(obs.lr, 0.3)
                ),
            ));
        }
    }
}
