//! Is the LR out of its useful range? Too high: the loss oscillates with a
//! rising trend. Too low: a tiny, flat LR under which the loss makes no
//! progress. Both are judged on windows of loss records, re-checked every
//! fifth of a window, so they cost O(1) amortised per record.

use std::collections::VecDeque;

use crate::format::{num, short};
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::episode::Episode;
use crate::monitor::stats::trend;

use super::{Observation, lr_text};

/// The LR counts as flat when max/min over the window stays within this.
const FLAT_LR_RATIO: f64 = 1.5;
/// Checks per window.
const CHECKS_PER_WINDOW: usize = 5;

fn check_every(window: usize) -> usize {
    (window / CHECKS_PER_WINDOW).max(1)
}

fn episode_in_checks(config: &MonitorConfig, window: usize) -> Episode {
    let every = check_every(window) as u32;
    Episode::new(config.clear_after.div_ceil(every))
}

#[derive(Debug, Clone)]
pub struct LrTooHigh {
    log_losses: VecDeque<f64>,
    window: usize,
    since_check: usize,
    every: usize,
    episode: Episode,
}

impl LrTooHigh {
    pub fn new(config: &MonitorConfig) -> Self {
        let window = config.lr_high_window.max(5);
        LrTooHigh {
            log_losses: VecDeque::with_capacity(window),
            window,
            since_check: 0,
            every: check_every(window),
            episode: episode_in_checks(config, window),
        }
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig, out: &mut Vec<Alert>) {
        let Some(log_loss) = obs.log_loss else {
            return;
        };
        if self.log_losses.len() == self.window {
            self.log_losses.pop_front();
        }
        self.log_losses.push_back(log_loss);
        self.since_check += 1;
        if self.log_losses.len() < self.window || self.since_check < self.every {
            return;
        }
        self.since_check = 0;
        let Some((slope, t, spread)) = trend(self.log_losses.iter().copied()) else {
            return;
        };
        let rise = (slope * (self.log_losses.len() - 1) as f64).exp() - 1.0;
        // Schmitt trigger: an open episode needs only half the evidence to
        // stay open, so a trend hovering at the threshold fires once.
        let relax = if self.episode.is_active() { 0.5 } else { 1.0 };
        let rising = rise >= relax * config.lr_high_min_rise
            && t >= relax * config.lr_high_min_t
            && spread >= relax * config.lr_high_min_oscillation;
        if self.episode.update(rising && !obs.diverging) {
            out.push(Alert::new(
                Level::Warn,
                AlertKind::LrTooHigh,
                obs.step,
                format!(
                    "loss oscillates (spread {:.0}%) with a rising trend: +{:.0}% over the last {} loss records{}",
                    spread * 100.0,
                    rise * 100.0,
                    self.log_losses.len(),
                    obs.lr.map(|lr| format!(" at lr {}", short(lr))).unwrap_or_default()
                ),
                format!(
                    "lower the LR about 3x ({}), or lower the schedule's peak and add warmup; `lrtop range-test` finds the largest stable LR",
                    lr_text(obs.lr, 1.0 / 3.0)
                ),
            ));
        }
    }
}

/// One fifth of a window: where the smoothed loss ended and the LR's range.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    smoothed_loss: f64,
    lr_min: f64,
    lr_max: f64,
}

#[derive(Debug, Clone)]
pub struct LrTooLow {
    chunks: VecDeque<Chunk>,
    current: Option<Chunk>,
    count: usize,
    every: usize,
    episode: Episode,
}

impl LrTooLow {
    pub fn new(config: &MonitorConfig) -> Self {
        let window = config.lr_low_window.max(5);
        LrTooLow {
            chunks: VecDeque::with_capacity(CHECKS_PER_WINDOW + 1),
            current: None,
            count: 0,
            every: check_every(window),
            episode: episode_in_checks(config, window),
        }
    }

    pub fn observe(&mut self, obs: &Observation, config: &MonitorConfig, out: &mut Vec<Alert>) {
        let (Some(_), Some(smooth), Some(lr)) = (obs.loss, obs.smoothed_loss, obs.lr) else {
            return;
        };
        let chunk = self.current.get_or_insert(Chunk {
            smoothed_loss: smooth,
            lr_min: lr,
            lr_max: lr,
        });
        chunk.smoothed_loss = smooth;
        chunk.lr_min = chunk.lr_min.min(lr);
        chunk.lr_max = chunk.lr_max.max(lr);
        self.count += 1;
        if self.count < self.every {
            return;
        }
        self.count = 0;
        if let Some(done) = self.current.take() {
            self.chunks.push_back(done);
        }
        if self.chunks.len() <= CHECKS_PER_WINDOW {
            return;
        }
        self.chunks.pop_front();
        let (Some(first), Some(last)) = (self.chunks.front(), self.chunks.back()) else {
            return;
        };
        let progress = (first.smoothed_loss - last.smoothed_loss)
            / first.smoothed_loss.abs().max(f64::MIN_POSITIVE);
        let lr_min = self
            .chunks
            .iter()
            .map(|c| c.lr_min)
            .fold(f64::INFINITY, f64::min);
        let lr_max = self.chunks.iter().map(|c| c.lr_max).fold(0.0, f64::max);
        // Schmitt trigger, as for LR too high: an open episode stays open on
        // looser thresholds.
        let loosen = if self.episode.is_active() { 2.0 } else { 1.0 };
        let tiny =
            lr < loosen * config.lr_low_abs || lr < loosen * config.lr_low_ratio * obs.peak_lr;
        // Held, not annealing: a schedule still decaying the LR (a cosine
        // tail) is tiny by design.
        let held = lr_max <= FLAT_LR_RATIO * lr_min && last.lr_min >= first.lr_min;
        let stuck = progress < loosen * config.lr_low_min_progress;
        if self.episode.update(tiny && held && stuck) {
            let relative = if obs.peak_lr > 0.0 {
                format!(
                    ", {} of the peak {}",
                    num(lr / obs.peak_lr, 2),
                    short(obs.peak_lr)
                )
            } else {
                String::new()
            };
            out.push(Alert::new(
                Level::Warn,
                AlertKind::LrTooLow,
                obs.step,
                format!(
                    "loss improved only {:.2}% over the last {} loss records at a flat lr {}{relative}",
                    progress * 100.0,
                    self.every * CHECKS_PER_WINDOW,
                    short(lr),
                ),
                format!(
                    "the LR is too small to make progress: raise it (e.g. lr={} with a decaying schedule) or stop the run here",
                    short(if obs.peak_lr > lr * 10.0 { obs.peak_lr / 10.0 } else { lr * 10.0 })
                ),
            ));
        }
    }
}
