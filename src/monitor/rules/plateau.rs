//! Plateau: the loss has not improved meaningfully for a while at a flat
//! LR (decaying it is the fix). Judged on the smoothed loss, reported with
//! logged values. Not while a warmup still raises the LR, and not while a
//! schedule moves it: annealing is already the fix, and the loss of an
//! annealing run flattens by design.

use crate::format::{num, short};
use crate::metrics::record::is_eval_metric;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::episode::Episode;

use super::Observation;

/// The LR counts as flat when max/min over the plateau stays within this.
const FLAT_LR_RATIO: f64 = 1.25;

#[derive(Debug, Clone)]
pub struct Plateau {
    best: Option<f64>,
    best_step: Option<u64>,
    since_improve: u64,
    losses: u64,
    lr_min: f64,
    lr_max: f64,
    last_lr: Option<f64>,
    /// The lowest logged loss and its step, and the latest.
    lowest: Option<(f64, Option<u64>)>,
    latest: Option<f64>,
    evals: EvalCadence,
    episode: Episode,
}

/// How often eval metrics are logged, in steps (for a patience suggestion).
#[derive(Debug, Clone, Default)]
struct EvalCadence {
    count: u64,
    first: Option<u64>,
    last: Option<u64>,
}

impl EvalCadence {
    fn observe(&mut self, obs: &Observation) {
        let Some(step) = obs.step else { return };
        if self.last == Some(step) || !obs.rec.extra.iter().any(|(k, _)| is_eval_metric(k)) {
            return;
        }
        self.count += 1;
        self.first.get_or_insert(step);
        self.last = Some(step);
    }

    fn interval(&self) -> Option<f64> {
        let span = self.last?.checked_sub(self.first?)?;
        (self.count >= 2 && span > 0).then(|| span as f64 / (self.count - 1) as f64)
    }
}

impl Plateau {
    pub fn new() -> Self {
        Plateau {
            best: None,
            best_step: None,
            since_improve: 0,
            losses: 0,
            lr_min: f64::INFINITY,
            lr_max: 0.0,
            last_lr: None,
            lowest: None,
            latest: None,
            evals: EvalCadence::default(),
            // Any real improvement ends a plateau; the next one needs a full
            // patience anyway, so no further hysteresis is needed.
            episode: Episode::new(1),
        }
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig, out: &mut Vec<Alert>) {
        self.evals.observe(obs);
        // A warmup still raising the LR: too early to judge the loss.
        let rising = matches!((self.last_lr, obs.lr), (Some(a), Some(b)) if b > a * (1.0 + 1e-9));
        if let Some(lr) = obs.lr {
            self.lr_min = self.lr_min.min(lr);
            self.lr_max = self.lr_max.max(lr);
            self.last_lr = Some(lr);
        }
        let (Some(raw), Some(smooth)) = (obs.loss, obs.smoothed_loss) else {
            return;
        };
        if raw.is_finite() {
            self.latest = Some(raw);
            if self.lowest.is_none_or(|(low, _)| raw < low) {
                self.lowest = Some((raw, obs.step));
            }
        }
        if rising {
            self.best = Some(smooth);
            self.best_step = obs.step;
            self.since_improve = 0;
            self.lr_min = obs.lr.unwrap_or(f64::INFINITY);
            self.lr_max = obs.lr.unwrap_or(0.0);
            self.episode.update(false);
            return;
        }
        let improved = match self.best {
            None => true,
            Some(best) => best - smooth > config.plateau_min_delta * best.abs(),
        };
        if improved {
            self.best = Some(smooth);
            self.best_step = obs.step;
            self.since_improve = 0;
            self.lr_min = obs.lr.unwrap_or(f64::INFINITY);
            self.lr_max = obs.lr.unwrap_or(0.0);
        } else {
            self.since_improve += 1;
        }
        self.losses += 1;
        let patience = (config.plateau_patience.max(1) as f64)
            .max(config.plateau_patience_fraction * self.losses as f64);
        // An LR without a log, or one held flat: the schedule is not
        // already doing something about it.
        let flat_lr =
            obs.lr.is_none() || (self.lr_max > 0.0 && self.lr_max <= FLAT_LR_RATIO * self.lr_min);
        let plateau = self.since_improve as f64 >= patience && flat_lr;
        if self.episode.update(plateau) && !obs.diverging {
            out.push(self.alert(obs, config));
        }
    }

    fn alert(&self, obs: &Observation, config: &MonitorConfig) -> Alert {
        let since = match (self.best_step, obs.step) {
            (Some(b), Some(s)) if s > b => format!("for {} steps (since step {b})", s - b),
            _ => format!("for {} loss records", self.since_improve),
        };
        let at = |step: Option<u64>| step.map(|s| format!(" at step {s}")).unwrap_or_default();
        let logged = match (self.latest, self.lowest) {
            (Some(now), Some((low, low_step))) => format!(
                ": logged {}{}, lowest {}{}",
                short(now),
                at(obs.step),
                short(low),
                at(low_step)
            ),
            _ => String::new(),
        };
        let lr = obs
            .lr
            .map(|lr| format!(" at a constant LR of {}", short(lr)))
            .unwrap_or_default();
        let message = format!(
            "loss has not improved by {}% {since}{lr}{logged}",
            config.plateau_min_delta * 100.0,
        );
        Alert::new(
            Level::Warn,
            AlertKind::Plateau,
            obs.step,
            message,
            self.suggestion(obs),
        )
    }

    fn suggestion(&self, obs: &Observation) -> String {
        let Some(lr) = obs.lr.filter(|&lr| lr > 0.0) else {
            return "decay the LR (e.g. ReduceLROnPlateau with factor=0.5) or stop: the loss is no longer improving".into();
        };
        let plateau_steps = match (self.best_step, obs.step) {
            (Some(b), Some(s)) if s > b => (s - b) as f64,
            _ => self.since_improve as f64,
        };
        let patience = match self.evals.interval() {
            Some(every) => ((plateau_steps / every / 2.0).round() as u64).clamp(2, 20),
            None => 5,
        };
        let anneal = obs.step.unwrap_or(self.since_improve).max(100);
        format!(
            "try ReduceLROnPlateau(lr={},factor=0.5,patience={patience}) or switch to COS(k0={},k1={},l={anneal}) to anneal over the next {anneal} steps",
            num(lr, 4),
            num(lr / 100.0, 4),
            num(lr, 4),
        )
    }
}

impl Default for Plateau {
    fn default() -> Self {
        Self::new()
    }
}
