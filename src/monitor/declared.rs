//! Declared-schedule deviation: the logged LR against `--declared SPEC`.
//!
//! Convention (Hugging Face's): the LR logged at step s, the 1-based count of
//! updates, is the policy's value at t = s - 1. A sustained mismatch raises
//! an alert whose message says which common mistake the log matches: off by
//! one either way, stepped per epoch, not stepped, or a different base LR.

use std::collections::VecDeque;

use crate::metrics::record::is_eval_loss;
use crate::policy::{Policy, Scheduler};

use super::alert::{Alert, AlertKind, Level};
use super::config::MonitorConfig;
use super::episode::Episode;
use super::rules::Observation;
use crate::format::{num, percent, short};

/// Larger steps are not real training steps; they are not compared.
const MAX_STEP: u64 = 1 << 40;
/// LR records kept to diagnose a mismatch.
const DIAGNOSIS_WINDOW: usize = 64;
/// Share of the window a hypothesis must explain.
const EXPLAINS: f64 = 0.9;

#[derive(Debug, Clone, Copy)]
struct LrPoint {
    step: u64,
    epoch: Option<f64>,
    lr: f64,
}

#[derive(Debug, Clone)]
pub struct Declared {
    scheduler: Scheduler,
    /// For metric-driven policies: the eval loss fed to the scheduler.
    eval_metric: Option<String>,
    epoch: Option<f64>,
    streak: u32,
    recent: VecDeque<LrPoint>,
    episode: Episode,
    /// The explanation of the open episode: while records stay consistent
    /// with it (e.g. where a shifted schedule happens to agree within the
    /// tolerance), the episode stays open instead of firing again.
    cause: Option<Cause>,
}

/// A common mistake that explains a mismatch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cause {
    /// Logged at step s: policy(s).
    Ahead,
    /// Logged at step s: policy(s - 2).
    Behind,
    /// Logged: policy(completed epochs).
    PerEpoch,
    /// Logged: policy(0) throughout.
    NotStepped,
    /// Logged: c * policy(s - 1).
    Scaled(f64),
}

fn rel_diff(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale <= 1e-300 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

impl Declared {
    pub fn new(policy: Policy, config: &MonitorConfig) -> Self {
        Declared {
            scheduler: Scheduler::new(policy),
            eval_metric: None,
            epoch: None,
            streak: 0,
            recent: VecDeque::with_capacity(DIAGNOSIS_WINDOW),
            episode: Episode::new(config.clear_after),
            cause: None,
        }
    }

    pub fn policy(&self) -> &Policy {
        self.scheduler.policy()
    }

    fn expected(&self, t: i128) -> Option<f64> {
        u64::try_from(t).ok().map(|t| self.scheduler.lr(t))
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig) -> Option<Alert> {
        let rec = obs.rec;
        if let Some(e) = rec.epoch.filter(|e| e.is_finite()) {
            self.epoch = Some(e);
        }
        self.feed_metric(obs);
        let (Some(lr), Some(step)) = (rec.lr.filter(|l| l.is_finite()), obs.step) else {
            return None;
        };
        if step > MAX_STEP {
            return None;
        }
        let expected = self.expected(step as i128 - 1)?;
        if self.recent.len() == DIAGNOSIS_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(LrPoint {
            step,
            epoch: self.epoch,
            lr,
        });
        let tol = config.declared_rel_tol;
        let mismatch = rel_diff(lr, expected) > tol;
        self.streak = if mismatch { self.streak + 1 } else { 0 };
        let point = self.recent.back().copied()?;
        let still_explained = self.episode.is_active()
            && self
                .cause
                .and_then(|c| self.predict(c, &point))
                .is_some_and(|p| rel_diff(lr, p) <= tol);
        let deviating = self.streak >= config.declared_patience.max(1) || still_explained;
        if !self.episode.update(deviating) {
            if !self.episode.is_active() {
                self.cause = None;
            }
            return None;
        }
        self.cause = self.diagnose(tol);
        let (message, suggestion) = match self.cause {
            Some(cause) => self.explain(cause),
            None => (
                format!(
                    "the logged LR {} differs from the declared {} ({}) for {} consecutive LR records; it is not off by one, per-epoch stepping, an unstepped scheduler or a different base LR",
                    short(lr),
                    short(expected),
                    percent((lr - expected) / expected.abs().max(1e-300)),
                    self.streak
                ),
                format!(
                    "check the scheduler's arguments against --declared {}",
                    self.policy()
                ),
            ),
        };
        Some(Alert::new(
            Level::Warn,
            AlertKind::ScheduleDeviation,
            obs.step,
            message,
            suggestion,
        ))
    }

    /// Feeds metric-driven policies (ReduceLROnPlateau...) the first eval
    /// loss logged, which is what such a scheduler usually watches.
    fn feed_metric(&mut self, obs: &Observation) {
        if !self.policy().is_stateful() {
            return;
        }
        let extra = &obs.rec.extra;
        if self.eval_metric.is_none() {
            self.eval_metric = extra
                .iter()
                .find(|(k, _)| is_eval_loss(k))
                .map(|(k, _)| k.clone());
        }
        let Some(name) = self.eval_metric.as_deref() else {
            return;
        };
        if let (Some(step), Some(&(_, v))) = (obs.step, extra.iter().find(|(k, _)| k == name))
            && v.is_finite()
        {
            self.scheduler.observe(step, v);
        }
    }

    fn predict(&self, cause: Cause, p: &LrPoint) -> Option<f64> {
        let s = p.step as i128;
        match cause {
            Cause::Ahead => self.expected(s),
            Cause::Behind => self.expected(s - 2),
            Cause::PerEpoch => {
                // An epoch logged as exactly k may be the end of epoch k-1
                // (Hugging Face logs completed fractions): take the closer.
                let e = p.epoch?;
                let done = self.expected(e.floor() as i128)?;
                let ending = (e.fract() == 0.0 && e >= 1.0)
                    .then(|| self.expected(e as i128 - 1))
                    .flatten();
                Some(match ending {
                    Some(prev) if rel_diff(p.lr, prev) < rel_diff(p.lr, done) => prev,
                    _ => done,
                })
            }
            Cause::NotStepped => self.expected(0),
            Cause::Scaled(c) => self.expected(s - 1).map(|e| e * c),
        }
    }

    /// The cause that best explains the recent window, if one explains at
    /// least 90% of it within the tolerance (ties go to the earlier cause).
    fn diagnose(&self, tol: f64) -> Option<Cause> {
        let ratios: Vec<f64> = self
            .recent
            .iter()
            .filter_map(|p| {
                let e = self.expected(p.step as i128 - 1)?;
                (e > 0.0 && p.lr > 0.0).then(|| p.lr / e)
            })
            .collect();
        let mut causes = vec![
            Cause::Ahead,
            Cause::Behind,
            Cause::NotStepped,
            Cause::PerEpoch,
        ];
        if let Some(scale) = median(ratios) {
            causes.push(Cause::Scaled(scale));
        }
        let needed = self.recent.len().clamp(1, 5);
        causes
            .into_iter()
            .filter_map(|cause| {
                let errs: Vec<f64> = self
                    .recent
                    .iter()
                    .filter_map(|p| self.predict(cause, p).map(|e| rel_diff(p.lr, e)))
                    .collect();
                let ok = errs.iter().filter(|&&e| e <= tol).count();
                (errs.len() >= needed && ok as f64 >= EXPLAINS * errs.len() as f64)
                    .then(|| (cause, errs.iter().sum::<f64>() / errs.len() as f64))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(cause, _)| cause)
    }

    fn explain(&self, cause: Cause) -> (String, String) {
        let spec = self.policy().to_string();
        match cause {
            Cause::Ahead => (
                "the logged LR at step s equals the declared policy at t = s, one update ahead of the convention (t = s-1): the scheduler is stepped before optimizer.step(), or the LR is read after scheduler.step() (Lightning's LearningRateMonitor logs that way, in which case only the logging differs)".into(),
                "call scheduler.step() right after optimizer.step(); if only the logger reads the LR one update early, the schedule itself is fine".into(),
            ),
            Cause::Behind => (
                "the logged LR at step s equals the declared policy at t = s-2, one update behind: the scheduler is stepped one update late (or skipped once, e.g. on the first update)".into(),
                "step the scheduler exactly once per optimizer.step(), right after it, starting with the first update".into(),
            ),
            Cause::PerEpoch => (
                "the logged LR equals the declared policy at t = completed epochs: the scheduler is stepped once per epoch, not once per update".into(),
                format!("call scheduler.step() after every optimizer.step() (interval=\"step\" in Lightning), or declare the schedule in epochs instead of {spec}"),
            ),
            Cause::NotStepped => (
                format!(
                    "the LR stays at the policy's initial value {}: the scheduler is not being stepped{}",
                    short(self.expected(0).unwrap_or(f64::NAN)),
                    if self.recent.iter().all(|p| p.epoch.is_some_and(|e| e < 1.0)) {
                        " (or stepped once per epoch: every record so far is in the first epoch)"
                    } else {
                        ""
                    }
                ),
                "call scheduler.step() after every optimizer.step(), and check that the scheduler wraps the optimizer that is actually used".into(),
            ),
            Cause::Scaled(c) => (
                format!("the logged LR is {}x the declared one throughout: the base LR differs", num(c, 3)),
                format!("declare the LR that is used (scale the lr of {spec} by {}) or fix the optimizer's lr", num(c, 3)),
            ),
        }
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    Some(xs[xs.len() / 2])
}
