//! Overfitting: the eval loss stays above its best over a sustained stretch
//! (several evals, and a tenth of the run so far) while the training loss
//! still falls. Reported with the logged values.

use crate::format::{percent, short};
use crate::metrics::record::is_eval_loss;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::episode::Episode;

use super::Observation;

/// Evals in a row above the best, at the least, whatever the config says.
const MIN_EVALS_WORSE: u32 = 3;

#[derive(Debug, Clone)]
pub struct Overfitting {
    /// The eval loss followed: the first one logged (eval_loss, val_loss...).
    metric: Option<String>,
    best: f64,
    best_step: Option<u64>,
    /// The smoothed training loss at the best eval (the rule's test).
    train_at_best: Option<f64>,
    /// The logged training loss last seen, and at the best eval (the message).
    train_raw: Option<f64>,
    train_raw_at_best: Option<f64>,
    worse_streak: u32,
    episode: Episode,
}

impl Overfitting {
    pub fn new() -> Self {
        Overfitting {
            metric: None,
            best: f64::INFINITY,
            best_step: None,
            train_at_best: None,
            train_raw: None,
            train_raw_at_best: None,
            worse_streak: 0,
            // A new best or an eval back near it ends the episode.
            episode: Episode::new(1),
        }
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig, out: &mut Vec<Alert>) {
        if let Some(loss) = obs.loss.filter(|l| l.is_finite()) {
            self.train_raw = Some(loss);
        }
        let Some(value) = self.eval_loss(obs) else {
            return;
        };
        if value <= self.best {
            self.best = value;
            self.best_step = obs.step;
            self.train_at_best = obs.smoothed_loss;
            self.train_raw_at_best = self.train_raw;
            self.worse_streak = 0;
        } else if value > self.best + config.overfit_min_rise * self.best.abs() {
            self.worse_streak += 1;
        } else {
            self.worse_streak = 0;
        }
        let train_falling = match (obs.smoothed_loss, self.train_at_best) {
            (Some(now), Some(then)) => now < then,
            _ => false,
        };
        // Sustained: not two unlucky evals, and (with steps) a stretch of at
        // least a tenth of the run so far since the best.
        let stretch = match (self.best_step, obs.step) {
            (Some(best), Some(now)) => now.saturating_sub(best) * 10 >= now,
            _ => true,
        };
        let overfitting = self.worse_streak >= config.overfit_patience.max(MIN_EVALS_WORSE)
            && stretch
            && train_falling;
        if self.episode.update(overfitting) && !obs.diverging {
            let name = self.metric.as_deref().unwrap_or("eval loss");
            let best_at = self
                .best_step
                .map(|s| format!(" at step {s}"))
                .unwrap_or_default();
            let train = match (self.train_raw_at_best, self.train_raw) {
                (Some(then), Some(now)) if now < then => format!(
                    " while the training loss went {} -> {}",
                    short(then),
                    short(now)
                ),
                _ => String::new(),
            };
            out.push(Alert::new(
                Level::Warn,
                AlertKind::Overfitting,
                obs.step,
                format!(
                    "{name} {} is {} above its best {}{best_at} for {} evals{train}",
                    short(value),
                    percent((value - self.best) / self.best.abs().max(f64::MIN_POSITIVE)),
                    short(self.best),
                    self.worse_streak,
                ),
                format!(
                    "keep the checkpoint {} (early stopping); for longer runs add regularisation (weight decay, dropout, more data) or decay the LR sooner",
                    match self.best_step {
                        Some(s) => format!("of step {s}"),
                        None => format!("with the best {name} ({})", short(self.best)),
                    }
                ),
            ));
        }
    }

    fn eval_loss(&mut self, obs: &Observation) -> Option<f64> {
        let extra = &obs.rec.extra;
        if self.metric.is_none() {
            self.metric = extra
                .iter()
                .find(|(k, v)| is_eval_loss(k) && v.is_finite())
                .map(|(k, _)| k.clone());
        }
        let metric = self.metric.as_deref()?;
        extra
            .iter()
            .find(|(k, _)| k == metric)
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
    }
}

impl Default for Overfitting {
    fn default() -> Self {
        Self::new()
    }
}
