//! Every threshold of the monitor, with defaults that keep healthy runs quiet.
//! Deserialises from a partial `[monitor]` TOML table: missing keys keep
//! their defaults, unknown keys are an error (a typo should not pass silently).
//!
//! "Records" below count records that carry the metric in question (a loss,
//! a grad norm, an LR, an eval loss), not log lines in general.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Records an episode's condition must stay clear before the same kind of
    /// alert can fire again (hysteresis).
    pub clear_after: u32,
    /// Weight of the newest loss in the smoothed loss (an EMA) used by the
    /// plateau, LR and overfitting rules.
    pub smoothing: f64,

    /// Divergence: the loss (median of the last 5) exceeds this multiple of
    /// its running minimum for `divergence_sustain` consecutive loss
    /// records (a fast climb)...
    pub divergence_ratio: f64,
    pub divergence_sustain: u32,
    /// ...or `divergence_slow_ratio` x for `divergence_slow_sustain` records
    /// (a slower, steady climb)...
    pub divergence_slow_ratio: f64,
    pub divergence_slow_sustain: u32,
    /// ...having given back at least this fraction of the progress made
    /// since the first loss (so a converged run's noise near 0 never counts).
    pub divergence_progress_lost: f64,

    /// Spike: loss records in the rolling window of robust statistics.
    pub spike_window: usize,
    /// Loss records needed before spikes are judged.
    pub spike_min_history: usize,
    /// Robust z-score (median / IQR, on log loss) a spike must exceed...
    pub spike_z: f64,
    /// ...and the factor by which it must exceed the window's median.
    pub spike_min_ratio: f64,

    /// Grad-norm explosion: same as spike, on the gradient norm.
    pub grad_window: usize,
    pub grad_min_history: usize,
    pub grad_z: f64,
    pub grad_min_ratio: f64,

    /// Plateau: loss records without the smoothed loss improving on its
    /// best by `plateau_min_delta` (relative): at least `plateau_patience`,
    /// and at least `plateau_patience_fraction` of the loss records so far
    /// (a slow but steady long run is not on a plateau).
    pub plateau_patience: u64,
    pub plateau_patience_fraction: f64,
    pub plateau_min_delta: f64,

    /// LR too high: loss records in the window whose trend is tested.
    pub lr_high_window: usize,
    /// Relative rise of the loss over the window (fitted trend of log loss).
    pub lr_high_min_rise: f64,
    /// t-statistic the rising trend must exceed.
    pub lr_high_min_t: f64,
    /// Residual spread of log loss (the oscillation) the window must show.
    pub lr_high_min_oscillation: f64,

    /// LR too low: an LR below `lr_low_ratio` x the run's peak LR, or below
    /// `lr_low_abs`, held flat (max/min within 1.5x) over `lr_low_window`
    /// loss records in which the smoothed loss improved by less than
    /// `lr_low_min_progress` (relative).
    pub lr_low_ratio: f64,
    pub lr_low_abs: f64,
    pub lr_low_window: usize,
    pub lr_low_min_progress: f64,

    /// Overfitting: this many consecutive evals with the eval loss more than
    /// `overfit_min_rise` (relative) above its best, while the smoothed
    /// training loss is lower than at the best eval.
    pub overfit_patience: u32,
    pub overfit_min_rise: f64,

    /// Stalled: seconds without new records in follow mode. `None` derives it
    /// as max(`stall_min_secs`, `stall_factor` x the median interval between
    /// arrivals).
    pub stall_secs: Option<f64>,
    pub stall_min_secs: f64,
    pub stall_factor: f64,

    /// Declared schedule: relative tolerance between logged and declared LR...
    pub declared_rel_tol: f64,
    /// ...and the consecutive mismatching LR records that make an alert.
    pub declared_patience: u32,

    /// Schedule fit: LR points needed before a fit is attempted.
    pub fit_min_points: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            clear_after: 20,
            smoothing: 0.1,
            divergence_ratio: 3.0,
            divergence_sustain: 3,
            divergence_slow_ratio: 1.5,
            divergence_slow_sustain: 10,
            divergence_progress_lost: 0.5,
            spike_window: 64,
            spike_min_history: 20,
            spike_z: 8.0,
            spike_min_ratio: 2.0,
            grad_window: 64,
            grad_min_history: 20,
            grad_z: 8.0,
            grad_min_ratio: 10.0,
            plateau_patience: 200,
            plateau_patience_fraction: 0.2,
            plateau_min_delta: 0.01,
            lr_high_window: 50,
            lr_high_min_rise: 0.25,
            lr_high_min_t: 5.0,
            lr_high_min_oscillation: 0.05,
            lr_low_ratio: 1e-3,
            lr_low_abs: 1e-7,
            lr_low_window: 100,
            lr_low_min_progress: 0.01,
            overfit_patience: 3,
            overfit_min_rise: 0.05,
            stall_secs: None,
            stall_min_secs: 60.0,
            stall_factor: 10.0,
            declared_rel_tol: 0.01,
            declared_patience: 5,
            fit_min_points: 10,
        }
    }
}
