//! The schedule monitor: alert rules and schedule fitting, one engine for
//! `attach` (external logs) and `train` (in-process training).
//!
//! Feed it every record once, in order, with [`Monitor::observe`]; call
//! [`Monitor::tick`] periodically for the time-based rule (stalled runs).
//! Every alert is edge-triggered: one per episode of its condition, re-armed
//! only after the condition has been clear for a while.

mod alert;
mod config;
mod declared;
mod episode;
mod fit;
mod hooks;
mod rules;
mod stats;
mod target;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::Record;
use crate::policy::Policy;

pub use alert::{Alert, AlertKind, Level};
pub use config::MonitorConfig;
pub use fit::ScheduleFit;
pub use hooks::{HookQueue, run_on_alert};
pub use target::{Target, TargetError, TargetOp};

use declared::Declared;
use fit::LrSeries;
use rules::Observation;
use rules::divergence::Divergence;
use rules::lr_range::{LrTooHigh, LrTooLow};
use rules::lr_value::LrValue;
use rules::outliers::{GradExplosion, LossSpike};
use rules::overfit::Overfitting;
use rules::plateau::Plateau;
use rules::stall::Stall;
use rules::target::TargetRule;
use stats::Ema;

/// A cached fit is refreshed once the LR points grew by this fraction, or
/// when it is older than `FIT_MAX_AGE` and any point was added.
const FIT_GROWTH: f64 = 0.05;
const FIT_MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    records: u64,
    last_step: Option<u64>,
    last_lr: Option<f64>,
    peak_lr: f64,
    loss_ema: Ema,
    divergence: Divergence,
    spike: LossSpike,
    grad: GradExplosion,
    plateau: Plateau,
    lr_high: LrTooHigh,
    lr_low: LrTooLow,
    lr_value: LrValue,
    overfit: Overfitting,
    stall: Stall,
    targets: Vec<TargetRule>,
    declared: Option<Declared>,
    lr_series: LrSeries,
    fit_cache: Mutex<FitCache>,
    alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Default)]
struct FitCache {
    /// LR points seen when `fit` was computed; None before the first fit.
    seen: Option<u64>,
    at: Option<Instant>,
    fit: Option<ScheduleFit>,
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Self {
        Monitor {
            records: 0,
            last_step: None,
            last_lr: None,
            peak_lr: 0.0,
            loss_ema: Ema::new(config.smoothing),
            divergence: Divergence::new(&config),
            spike: LossSpike::new(&config),
            grad: GradExplosion::new(&config),
            plateau: Plateau::new(),
            lr_high: LrTooHigh::new(&config),
            lr_low: LrTooLow::new(&config),
            lr_value: LrValue::new(&config),
            overfit: Overfitting::new(),
            stall: Stall::new(),
            targets: Vec::new(),
            declared: None,
            lr_series: LrSeries::new(),
            fit_cache: Mutex::new(FitCache::default()),
            alerts: Vec::new(),
            config,
        }
    }

    /// Declares a policy once records may have arrived (a tracker's config
    /// read from the log); the comparison starts with the next record.
    pub fn set_declared(&mut self, policy: Policy) {
        self.declared = Some(Declared::new(policy, &self.config));
    }

    /// Compares the logged LR with this policy (`--declared SPEC`).
    pub fn with_declared(mut self, policy: Policy) -> Self {
        self.declared = Some(Declared::new(policy, &self.config));
        self
    }

    /// Reports when the target is first reached (`--target`); may be given
    /// several times.
    pub fn with_target(mut self, target: Target) -> Self {
        self.targets.push(TargetRule::new(target));
        self
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    pub fn declared(&self) -> Option<&Policy> {
        self.declared.as_ref().map(Declared::policy)
    }

    /// Feeds one record (each exactly once, in order); returns the alerts it
    /// raised.
    pub fn observe(&mut self, rec: &Record) -> Vec<Alert> {
        self.records += 1;
        if rec.step.is_some() {
            self.last_step = rec.step;
        }
        let loss = rec.loss.filter(|l| l.is_finite());
        if let Some(l) = loss {
            self.loss_ema.push(l);
        }
        if let Some(lr) = rec.lr.filter(|l| l.is_finite()) {
            self.last_lr = Some(lr);
            self.peak_lr = self.peak_lr.max(lr);
            let step = self.last_step.unwrap_or(self.lr_series.seen() + 1);
            self.lr_series.push(step, lr);
        }
        self.stall.observe(rec);

        let config = &self.config;
        let mut out = Vec::new();
        let mut obs = Observation {
            rec,
            step: self.last_step,
            loss,
            log_loss: loss.filter(|&l| l > 0.0).map(f64::ln),
            smoothed_loss: self.loss_ema.get(),
            lr: self.last_lr,
            peak_lr: self.peak_lr,
            diverging: false,
        };
        self.divergence.observe(&obs, config, &mut out);
        obs.diverging = self.divergence.is_active();
        self.spike.observe(&obs, &mut out);
        self.grad.observe(&obs, &mut out);
        self.plateau.observe(&obs, config, &mut out);
        self.lr_high.observe(&obs, config, &mut out);
        self.lr_low.observe(&obs, config, &mut out);
        self.lr_value.observe(&obs, &mut out);
        self.overfit.observe(&obs, config, &mut out);
        for target in &mut self.targets {
            target.observe(&obs, &mut out);
        }
        if let Some(declared) = &mut self.declared {
            let (cache, series) = (&self.fit_cache, &self.lr_series);
            let fit = || cached_fit(cache, series, config.fit_min_points);
            if let Some(alert) = declared.observe(&obs, config, &fit, series.points()) {
                out.push(alert);
            }
        }
        self.alerts.extend(out.iter().cloned());
        out
    }

    /// Time-based rules: a stalled run when `following` and no record has
    /// arrived for the stall threshold. `now_unix_secs` is injected so tests
    /// can drive time; call it every second or so.
    pub fn tick(&mut self, now_unix_secs: f64, following: bool) -> Vec<Alert> {
        let alert = self.stall.tick(
            now_unix_secs,
            following,
            self.records,
            self.last_step,
            &self.config,
        );
        let out: Vec<Alert> = alert.into_iter().collect();
        self.alerts.extend(out.iter().cloned());
        out
    }

    /// Until when `tick` has nothing to do, if nothing is observed first:
    /// a caller with thousands of quiet runs skips them until then.
    pub fn idle_until(&self) -> f64 {
        self.stall.idle_until(&self.config)
    }

    /// Every alert raised so far, in order.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// The policy the logged LR follows, fitted lazily and cached: None until
    /// `fit_min_points` LR values were logged. Cheap to call often.
    pub fn schedule_fit(&self) -> Option<ScheduleFit> {
        cached_fit(&self.fit_cache, &self.lr_series, self.config.fit_min_points)
    }
}

/// The fit of `series`, refitted once it grew by `FIT_GROWTH` or the fit is
/// older than `FIT_MAX_AGE` (and something was added).
fn cached_fit(
    cache: &Mutex<FitCache>,
    series: &LrSeries,
    min_points: usize,
) -> Option<ScheduleFit> {
    let seen = series.seen();
    if seen < min_points.max(3) as u64 {
        return None;
    }
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let refit = match (cache.seen, cache.at) {
        (Some(done), Some(at)) => {
            done != seen
                && (seen as f64 >= done as f64 * (1.0 + FIT_GROWTH) || at.elapsed() >= FIT_MAX_AGE)
        }
        _ => true,
    };
    if refit {
        cache.fit = fit::fit(series.points());
        cache.seen = Some(seen);
        cache.at = Some(Instant::now());
    }
    cache.fit.clone()
}

impl Clone for Monitor {
    fn clone(&self) -> Self {
        let cache = self.fit_cache.lock().map(|c| c.clone()).unwrap_or_default();
        Monitor {
            config: self.config.clone(),
            records: self.records,
            last_step: self.last_step,
            last_lr: self.last_lr,
            peak_lr: self.peak_lr,
            loss_ema: self.loss_ema.clone(),
            divergence: self.divergence.clone(),
            spike: self.spike.clone(),
            grad: self.grad.clone(),
            plateau: self.plateau.clone(),
            lr_high: self.lr_high.clone(),
            lr_low: self.lr_low.clone(),
            lr_value: self.lr_value.clone(),
            overfit: self.overfit.clone(),
            stall: self.stall.clone(),
            targets: self.targets.clone(),
            declared: self.declared.clone(),
            lr_series: self.lr_series.clone(),
            fit_cache: Mutex::new(cache),
            alerts: self.alerts.clone(),
        }
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new(MonitorConfig::default())
    }
}
