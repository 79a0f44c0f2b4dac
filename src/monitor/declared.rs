//! Declared-schedule deviation: the logged LR against `--declared SPEC`.
//!
//! Convention (Hugging Face's): the LR logged at step s, the 1-based count of
//! updates, is the policy's value at t = s - 1. A log one update ahead (t =
//! s: older transformers, `get_last_lr()` after `scheduler.step()`) differs
//! only in its logging: that is said once, as information, and the log is
//! compared at its own offset from then on. Any other sustained mismatch
//! raises a warning that names its cause: one update behind, stepped per
//! epoch, not stepped, a different base LR, or (from the schedule the log
//! fits) a different horizon, warmup or floor.

use std::collections::VecDeque;

use crate::metrics::record::is_eval_loss;
use crate::policy::{Policy, Scheduler};

use super::alert::{Alert, AlertKind, Level};
use super::config::MonitorConfig;
use super::episode::Episode;
use super::fit::{self, EXACT, ScheduleFit, split_spec as spec_args};
use super::rules::Observation;
use crate::format::{num, percent, short};

/// Larger steps are not real training steps; they are not compared.
const MAX_STEP: u64 = 1 << 40;
/// LR records kept to diagnose a mismatch.
const DIAGNOSIS_WINDOW: usize = 64;
/// Share of the window a hypothesis must explain.
const EXPLAINS: f64 = 0.9;
/// LR records a deviation without a named cause waits for the schedule fit.
const DEFER: u32 = 40;
/// And LR records since the LR last rose (a warmup's end pins its length).
const SETTLE: u32 = 20;

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
    /// The logged LR at step s is the policy at t = s + offset: -1 by the
    /// convention, 0 once the log was seen to be one update ahead.
    offset: i128,
    /// LR records since the LR last rose.
    settled: u32,
    /// The length of a deviation whose report waits for its cause (0: none).
    pending: u32,
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
            offset: -1,
            settled: 0,
            pending: 0,
        }
    }

    pub fn policy(&self) -> &Policy {
        self.scheduler.policy()
    }

    fn expected(&self, t: i128) -> Option<f64> {
        u64::try_from(t).ok().map(|t| self.scheduler.lr(t))
    }

    /// Compares a record; `fit` gives the schedule the log follows, asked
    /// for only to explain a deviation.
    pub fn observe(
        &mut self,
        obs: &Observation,
        config: &MonitorConfig,
        fit: &dyn Fn() -> Option<ScheduleFit>,
        points: &[(u64, f64)],
    ) -> Option<Alert> {
        // Reports are rare: they fit the series as it is now, not as cached.
        let fresh = || super::fit::fit(points);
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
        let expected = self.expected(step as i128 + self.offset)?;
        if self.recent.len() == DIAGNOSIS_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(LrPoint {
            step,
            epoch: self.epoch,
            lr,
        });
        self.settled = if self.rising() { 0 } else { self.settled + 1 };
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
        // A deviation no common mistake explains is reported once the
        // schedule the log follows is known, to name what differs (a
        // warmup still rising looks like a scaled LR, say): it waits for an
        // exact fit, a while at most.
        if deviating && !self.episode.is_active() {
            let specific = matches!(
                self.diagnose(tol),
                Some(Cause::Ahead | Cause::Behind | Cause::NotStepped | Cause::PerEpoch)
            );
            // Known: the declared family with other numbers, or another
            // family once the LR has settled for a while after any rise.
            let known = self.refit(points, fit().as_ref()).is_some()
                || (self.settled >= SETTLE && fit().is_some_and(|f| f.rel_err < EXACT));
            // While the LR still rises, a shorter warmup and a larger LR
            // look the same: no time limit then.
            let waited =
                self.streak >= config.declared_patience.max(1) + DEFER && self.settled >= SETTLE;
            if !specific && !known && !waited {
                self.pending = self.pending.max(self.streak);
                return None;
            }
        }
        // A deferred deviation that ended before its cause was known is
        // reported when it ends (a declaration without the log's warmup).
        // (A few records later: the fit then sees where the warmup ended.)
        let ended_unreported =
            !deviating && self.pending > 0 && !self.episode.is_active() && self.settled >= 5;
        let streak = if ended_unreported {
            std::mem::take(&mut self.pending)
        } else {
            self.streak
        };
        if !self.episode.update(deviating || ended_unreported) {
            if !self.episode.is_active() {
                self.cause = None;
            }
            return None;
        }
        self.cause = self.diagnose(tol);
        let mut level = Level::Warn;
        let (message, suggestion) = match self.cause {
            Some(Cause::Ahead) => {
                // Only the logging differs: compare at the log's offset now.
                level = Level::Info;
                self.offset = 0;
                self.streak = 0;
                self.cause = None;
                self.episode = Episode::new(config.clear_after);
                self.explain(Cause::Ahead)
            }
            Some(Cause::Scaled(c)) => match self.refit(points, fresh().as_ref()) {
                // More than the base LR differs: say what.
                Some(r) if self.differs_beyond_lr(&r) => (
                    format!(
                        "the logged LR differs from the declared schedule: {}",
                        self.differences(&r)
                    ),
                    self.suggest(&r),
                ),
                _ => self.explain(Cause::Scaled(c)),
            },
            Some(cause) => self.explain(cause),
            None => {
                let base = if ended_unreported {
                    format!(
                        "the logged LR differed from the declared one for {streak} consecutive LR records, up to step {step}"
                    )
                } else {
                    format!(
                        "the logged LR {} differs from the declared {} ({}) for {streak} consecutive LR records",
                        short(lr),
                        short(expected),
                        percent((lr - expected) / expected.abs().max(1e-300)),
                    )
                };
                // The declared family with other numbers, or another family.
                let found = fresh().filter(|f| f.rel_err < EXACT);
                let other = || found.clone();
                match (self.refit(points, other().as_ref()), other()) {
                    (Some(r), _) => (
                        format!("{base}: {}", self.differences(&r)),
                        self.suggest(&r),
                    ),
                    (None, Some(f)) => (
                        format!(
                            "{base}: the log follows {} instead of the declared family",
                            f.spec
                        ),
                        self.suggest(&f),
                    ),
                    (None, None) => (
                        format!(
                            "{base}; it is not off by one, per-epoch stepping, an unstepped scheduler or a different base LR"
                        ),
                        format!(
                            "check the scheduler's arguments against --declared {}",
                            self.policy()
                        ),
                    ),
                }
            }
        };
        Some(Alert::new(
            level,
            AlertKind::ScheduleDeviation,
            obs.step,
            message,
            suggestion,
        ))
    }

    /// Is the logged LR still climbing (the last records each above the one
    /// before)?
    fn rising(&self) -> bool {
        let n = self.recent.len();
        n >= 3 && (n - 3..n - 1).all(|i| self.recent[i + 1].lr > self.recent[i].lr)
    }

    /// The declared policy with the numbers the log follows, if it follows
    /// the declared family at all.
    fn refit(&self, points: &[(u64, f64)], hint: Option<&ScheduleFit>) -> Option<ScheduleFit> {
        fit::refit(points, self.offset as i64, &self.policy().to_string(), hint)
    }

    fn suggest(&self, found: &ScheduleFit) -> String {
        format!(
            "the log follows {}; check the scheduler's arguments against --declared {}",
            found.spec,
            self.policy()
        )
    }

    /// Does the fitted spec differ from the declared one in more than its
    /// base LR (or in its family)?
    fn differs_beyond_lr(&self, fit: &ScheduleFit) -> bool {
        let declared = self.policy().to_string();
        let (Some((dn, da)), Some((fnm, fa))) = (spec_args(&declared), spec_args(&fit.spec)) else {
            return true;
        };
        if !dn.eq_ignore_ascii_case(&fnm) {
            return true;
        }
        let value = |args: &[(String, String)], k: &str| {
            args.iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.parse::<f64>().ok())
        };
        da.iter().chain(fa.iter()).any(|(k, _)| {
            !matches!(k.as_str(), "lr" | "max_lr" | "k1")
                && match (value(&da, k), value(&fa, k)) {
                    (Some(a), Some(b)) => rel_diff(a, b) > 1e-6,
                    (None, None) => false,
                    _ => true,
                }
        })
    }

    /// What differs between the declared policy and the one the log fits,
    /// parameter by parameter, in words.
    fn differences(&self, fit: &ScheduleFit) -> String {
        let declared = self.policy().to_string();
        let (Some((d_name, d_args)), Some((f_name, f_args))) =
            (spec_args(&declared), spec_args(&fit.spec))
        else {
            return format!("the log follows {} instead", fit.spec);
        };
        if !d_name.eq_ignore_ascii_case(&f_name) {
            return format!("the log follows {} instead of {d_name}", fit.spec);
        }
        let mut parts = Vec::new();
        for (key, d) in &d_args {
            let Some(f) = f_args.iter().find(|(k, _)| k == key).map(|(_, v)| v) else {
                continue;
            };
            let (Ok(dv), Ok(fv)) = (d.parse::<f64>(), f.parse::<f64>()) else {
                if d != f {
                    parts.push(format!("{key} is {d} declared, {f} in the log"));
                }
                continue;
            };
            if rel_diff(dv, fv) <= 1e-6 {
                continue;
            }
            parts.push(match key.as_str() {
                "num_training_steps" | "total_steps" | "T_max" | "total_iters" | "l" => format!(
                    "the declared schedule ends at {d} steps; the log decays as if over {f}"
                ),
                "lr" | "max_lr" | "k1" => {
                    format!("the declared base LR is {d}; the log's is {f}")
                }
                "num_warmup_steps" | "warmup_steps" => {
                    format!("the declared warmup is {d} steps; the log warms up over {f}")
                }
                "min_lr" | "min_lr_rate" | "min_lr_ratio" | "eta_min" | "lr_end" | "k0" => {
                    format!("the declared floor {key} is {d}; the log's is {f}")
                }
                _ => format!("{key} is {d} declared, {f} in the log"),
            });
        }
        for (key, f) in &f_args {
            if !d_args.iter().any(|(k, _)| k == key) {
                parts.push(format!(
                    "the log has {key}={f}, which the declaration leaves at its default"
                ));
            }
        }
        if parts.is_empty() {
            format!("the log follows {}", fit.spec)
        } else {
            parts.join("; ")
        }
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
            Cause::Scaled(c) => self.expected(s + self.offset).map(|e| e * c),
        }
    }

    /// The cause that best explains the recent window, if one explains at
    /// least 90% of it within the tolerance (ties go to the earlier cause).
    fn diagnose(&self, tol: f64) -> Option<Cause> {
        // Only the records that deviate need explaining: where the log
        // still agrees, every near-miss cause would "explain" it too.
        let deviating: Vec<LrPoint> = self
            .recent
            .iter()
            .filter(|p| {
                self.expected(p.step as i128 + self.offset)
                    .is_some_and(|e| rel_diff(p.lr, e) > tol)
            })
            .copied()
            .collect();
        let ratios: Vec<f64> = deviating
            .iter()
            .filter_map(|p| {
                let e = self.expected(p.step as i128 + self.offset)?;
                (e > 0.0 && p.lr > 0.0).then(|| p.lr / e)
            })
            .collect();
        let mut causes = vec![
            Cause::Ahead,
            Cause::Behind,
            Cause::NotStepped,
            Cause::PerEpoch,
        ];
        // A "scale" of 1 is no explanation: the difference is elsewhere.
        if let Some(scale) = median(ratios).filter(|s| (s - 1.0).abs() > tol) {
            causes.push(Cause::Scaled(scale));
        }
        let needed = self.recent.len().clamp(1, 5);
        causes
            .into_iter()
            .filter_map(|cause| {
                let errs: Vec<f64> = deviating
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
                "the logged LR at step s equals the declared policy at t = s, one update ahead of Hugging Face's convention (t = s-1; logging offset 0): the logger reads the LR after scheduler.step(), as older transformers, Lightning's LearningRateMonitor and loops that log get_last_lr() do; the schedule itself is as declared".into(),
                "nothing to fix if the scheduler is stepped right after optimizer.step(); lrtop compares this log at offset 0 from here on".into(),
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
