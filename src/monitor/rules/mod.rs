//! The alert rules. Each rule keeps its own small state, sees every record
//! once through an [`Observation`] and pushes alerts when an episode starts.

pub mod divergence;
pub mod lr_range;
pub mod lr_value;
pub mod outliers;
pub mod overfit;
pub mod plateau;
pub mod stall;
pub mod target;

use crate::metrics::Record;

use crate::format::short;

/// One record plus what the monitor derived from the run so far.
pub struct Observation<'a> {
    pub rec: &'a Record,
    /// The record's step, else the last logged one.
    pub step: Option<u64>,
    /// This record's loss, when finite.
    pub loss: Option<f64>,
    /// ln of that loss, when positive (several rules work in log space).
    pub log_loss: Option<f64>,
    /// The smoothed (EMA) training loss so far.
    pub smoothed_loss: Option<f64>,
    /// The current LR: this record's, else the last finite one logged.
    pub lr: Option<f64>,
    /// The largest finite LR logged so far (0 before any).
    pub peak_lr: f64,
    /// True while a divergence episode is open; milder loss rules stay quiet.
    pub diverging: bool,
}

/// "lr=0.002" for suggestions, or a generic phrase when the LR is unknown.
pub fn lr_text(lr: Option<f64>, factor: f64) -> String {
    match lr {
        Some(lr) if lr > 0.0 => format!("lr={}", short(lr * factor)),
        _ => "a lower LR".to_string(),
    }
}
