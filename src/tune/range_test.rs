//! The LR range test (Smith 2017; fastai's `lr_find`): train with an LR
//! growing from `start` to `end`, smooth the loss, stop when it diverges,
//! and suggest LRs the way fastai does (`valley`, `steep`, `minimum`), plus
//! a [base_lr, max_lr] range for cyclic policies.

use serde::Serialize;

use crate::train::Learner;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Ramp {
    Exp,
    Linear,
}

/// Every point is kept in memory and plotted; a range test needs far fewer.
pub const MAX_ITERS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeTestConfig {
    pub start: f64,
    pub end: f64,
    pub iters: u64,
    pub ramp: Ramp,
    /// Smoothing of the debiased EMA of the loss.
    pub beta: f64,
    /// Stop when the smoothed loss exceeds this multiple of its best.
    pub stop_factor: f64,
}

impl Default for RangeTestConfig {
    fn default() -> Self {
        RangeTestConfig {
            start: 1e-7,
            end: 10.0,
            iters: 100,
            ramp: Ramp::Exp,
            beta: 0.98,
            stop_factor: 4.0,
        }
    }
}

impl RangeTestConfig {
    /// fastai's schedule: lr_i = start * (end/start)^(i/iters), i = 0..iters.
    pub fn lr_at(&self, i: u64) -> f64 {
        let pos = i as f64 / self.iters.max(1) as f64;
        match self.ramp {
            Ramp::Exp => self.start * (self.end / self.start).powf(pos),
            Ramp::Linear => self.start + (self.end - self.start) * pos,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.start > 0.0 && self.start.is_finite()) {
            return Err(format!("--start must be > 0, got {}", self.start));
        }
        if !(self.end > self.start && self.end.is_finite()) {
            return Err(format!(
                "--end ({}) must be greater than --start ({})",
                self.end, self.start
            ));
        }
        if !(6..=MAX_ITERS).contains(&self.iters) {
            return Err(format!(
                "--iters must be in 6..={MAX_ITERS}, got {}",
                self.iters
            ));
        }
        if !(0.0..1.0).contains(&self.beta) {
            return Err(format!("--beta must be in [0, 1), got {}", self.beta));
        }
        if self.stop_factor.is_nan() || self.stop_factor <= 1.0 {
            return Err(format!(
                "--stop-factor must be > 1, got {}",
                self.stop_factor
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suggestions {
    pub valley: Option<f64>,
    pub steep: Option<f64>,
    pub minimum: Option<f64>,
    /// [base_lr, max_lr] for cyclic policies.
    pub cyclic: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RangeTestResult {
    pub lrs: Vec<f64>,
    /// Smoothed (debiased EMA) losses, one per LR.
    pub losses: Vec<f64>,
    pub raw_losses: Vec<f64>,
    pub suggestions: Suggestions,
    /// True when the run stopped early because the loss diverged.
    pub diverged: bool,
}

/// Runs the test with `step(lr) -> loss`, which trains one update.
pub fn run<E>(
    config: &RangeTestConfig,
    mut step: impl FnMut(f64) -> Result<f64, E>,
) -> Result<RangeTestResult, E> {
    let mut lrs = Vec::new();
    let mut losses = Vec::new();
    let mut raw = Vec::new();
    let mut average = 0.0;
    let mut best = f64::INFINITY;
    let mut diverged = false;
    for i in 0..config.iters {
        let lr = config.lr_at(i);
        let loss = step(lr)?;
        average = config.beta * average + (1.0 - config.beta) * loss;
        let smoothed = average / (1.0 - config.beta.powi(i as i32 + 1));
        lrs.push(lr);
        losses.push(smoothed);
        raw.push(loss);
        if smoothed < best {
            best = smoothed;
        }
        if !smoothed.is_finite() || smoothed > config.stop_factor * best {
            diverged = true;
            break;
        }
    }
    let suggestions = suggest(&lrs, &losses, config.iters);
    Ok(RangeTestResult {
        lrs,
        losses,
        raw_losses: raw,
        suggestions,
        diverged,
    })
}

/// Runs the test on a learner, then puts back its weights, optimizer state
/// and data position (as fastai's `lr_find` does), whatever the outcome.
pub fn run_on_learner(
    learner: &mut Learner,
    config: &RangeTestConfig,
) -> crate::train::Result<RangeTestResult> {
    let snapshot = learner.snapshot()?;
    let result = run(config, |lr| learner.train_step(lr).map(|s| s.loss));
    learner.restore(&snapshot)?;
    result
}

/// fastai's window: skip the first tenth and the last five points, and
/// everything from the first NaN on.
fn window<'a>(lrs: &'a [f64], losses: &'a [f64], iters: u64) -> (&'a [f64], &'a [f64]) {
    let start = (iters / 10) as usize;
    let end = losses.len().saturating_sub(5);
    if start >= end {
        return (&[], &[]);
    }
    let (mut lrs, mut losses) = (&lrs[start..end], &losses[start..end]);
    if let Some(nan) = losses.iter().position(|l| l.is_nan()) {
        lrs = &lrs[..nan];
        losses = &losses[..nan];
    }
    (lrs, losses)
}

pub fn suggest(lrs: &[f64], losses: &[f64], iters: u64) -> Suggestions {
    let (lrs, losses) = window(lrs, losses, iters);
    if losses.len() < 2 {
        return Suggestions {
            valley: None,
            steep: None,
            minimum: None,
            cyclic: None,
        };
    }
    let minimum_index = losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i);
    let steep = (0..losses.len() - 1)
        .map(|i| {
            (
                i,
                (losses[i + 1] - losses[i]) / (lrs[i + 1].ln() - lrs[i].ln()),
            )
        })
        .filter(|(_, g)| g.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| lrs[i]);
    let cyclic = minimum_index.and_then(|m| {
        // Smith's range: from where the loss starts to fall to where it stops.
        let first = losses[0];
        let low = losses[m];
        let drop = first - low;
        if drop <= 0.0 {
            return None;
        }
        let start = losses.iter().position(|&l| l < first - 0.1 * drop)?;
        (start < m).then(|| [lrs[start], lrs[m]])
    });
    Suggestions {
        valley: Some(lrs[valley_index(losses)]),
        steep,
        minimum: minimum_index.map(|i| lrs[i] / 10.0),
        cyclic,
    }
}

/// fastai's `valley`: 2/3 of the way down the longest decreasing run.
/// Where fastai's index comes out as -1 (Python then takes the last
/// point), the first point is used.
fn valley_index(losses: &[f64]) -> usize {
    let n = losses.len();
    // Signed like the Python original: max_start can be -1.
    let (mut max_start, mut max_end) = (0i64, 0usize);
    let mut lds = vec![1i64; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as i64 - lds[max_end];
            }
        }
    }
    let sections = (max_end as i64 - max_start) as f64 / 3.0;
    let idx = max_start + sections as i64 + (sections / 2.0) as i64;
    idx.clamp(0, n as i64 - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loss curve with a valley around lr = 1e-2 that blows up past 1.
    fn synthetic(lr: f64) -> f64 {
        let x = lr.log10();
        if x > 0.0 {
            return 2.5 * 10f64.powf(x * 2.0);
        }
        2.3 - 2.0 / (1.0 + (-(x + 3.0) * 3.0).exp()) + 0.3 * (x + 2.0).max(0.0).powi(2)
    }

    #[test]
    fn schedule_matches_fastai() {
        let c = RangeTestConfig::default();
        assert_eq!(c.lr_at(0), 1e-7);
        assert!((c.lr_at(50) - 1e-7 * (1e8f64).powf(0.5)).abs() < 1e-15);
        assert!(c.lr_at(99) < 10.0);
    }

    #[test]
    fn finds_the_valley_and_stops_on_divergence() {
        let result = run::<()>(&RangeTestConfig::default(), |lr| Ok(synthetic(lr))).unwrap();
        assert!(result.diverged, "the loss explodes past lr=1");
        assert!(result.lrs.len() < 100);
        let s = &result.suggestions;
        let valley = s.valley.unwrap();
        assert!((1e-4..1e-1).contains(&valley), "valley {valley}");
        let steep = s.steep.unwrap();
        assert!((1e-5..1e-1).contains(&steep), "steep {steep}");
        let minimum = s.minimum.unwrap();
        assert!((1e-4..1e-1).contains(&minimum), "minimum {minimum}");
        let [lo, hi] = s.cyclic.unwrap();
        assert!(lo < hi && hi <= 1.0, "{lo} {hi}");
    }

    #[test]
    fn valley_of_a_plain_descent() {
        let losses: Vec<f64> = (0..30).map(|i| 30.0 - i as f64).collect();
        // As in fastai: max_start = 29 - 30 = -1, sections = 10, idx = -1 + 10 + 5.
        assert_eq!(valley_index(&losses), 14);
    }

    #[test]
    fn too_short_gives_no_suggestion() {
        let s = suggest(&[1e-3, 1e-2], &[1.0, 0.5], 100);
        assert_eq!(s.valley, None);
        assert!(
            RangeTestConfig {
                iters: 3,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            RangeTestConfig {
                start: 1.0,
                end: 0.5,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            RangeTestConfig {
                stop_factor: 1.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(RangeTestConfig::default().validate().is_ok());
    }
}
