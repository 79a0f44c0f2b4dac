//! Plateau: the smoothed loss has not improved meaningfully for a while.
//! A warning when the LR has been flat meanwhile (decaying it is the fix);
//! information when the schedule is already moving the LR.

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
            evals: EvalCadence::default(),
            // Any real improvement ends a plateau; the next one needs a full
            // patience anyway, so no further hysteresis is needed.
            episode: Episode::new(1),
        }
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig, out: &mut Vec<Alert>) {
        self.evals.observe(obs);
        if let Some(lr) = obs.lr {
            self.lr_min = self.lr_min.min(lr);
            self.lr_max = self.lr_max.max(lr);
        }
        let (Some(_), Some(smooth)) = (obs.loss, obs.smoothed_loss) else {
            return;
        };
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
        let plateau = self.since_improve as f64 >= patience;
        if self.episode.update(plateau) && !obs.diverging {
            out.push(self.alert(obs, smooth, config));
        }
    }

    fn alert(&self, obs: &Observation, smooth: f64, config: &MonitorConfig) -> Alert {
        let flat_lr = self.lr_max > 0.0 && self.lr_max <= FLAT_LR_RATIO * self.lr_min;
        let since = match (self.best_step, obs.step) {
            (Some(b), Some(s)) if s > b => format!("for {} steps (since step {b})", s - b),
            _ => format!("for {} loss records", self.since_improve),
        };
        let message = format!(
            "smoothed loss {} has not improved by {}% {since}{}",
            short(smooth),
            config.plateau_min_delta * 100.0,
            if flat_lr {
                " at a constant LR"
            } else {
                " while the schedule moved the LR"
            }
        );
        let level = if flat_lr { Level::Warn } else { Level::Info };
        Alert::new(
            level,
            AlertKind::Plateau,
            obs.step,
            message,
            self.suggestion(obs, flat_lr),
        )
    }

    fn suggestion(&self, obs: &Observation, flat_lr: bool) -> String {
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
        let switch = format!(
            "try ReduceLROnPlateau(lr={},factor=0.5,patience={patience}) or switch to COS(k0={},k1={},l={anneal}) to anneal over the next {anneal} steps",
            num(lr, 4),
            num(lr / 100.0, 4),
            num(lr, 4),
        );
        if flat_lr {
            switch
        } else {
            format!(
                "the schedule is already changing the LR; if the run is not near its end, {switch}, or stop early"
            )
        }
    }
}

impl Default for Plateau {
    fn default() -> Self {
        Self::new()
    }
}
