//! An LR that is not a learning rate: NaN or infinite (critical: every
//! update after it is garbage) or negative (gradient ascent).

use crate::format::short;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::episode::Episode;

use super::Observation;

#[derive(Debug, Clone)]
pub struct LrValue {
    nonfinite: Episode,
    negative: Episode,
}

impl LrValue {
    pub fn new(config: &MonitorConfig) -> Self {
        LrValue {
            nonfinite: Episode::new(config.clear_after),
            negative: Episode::new(config.clear_after),
        }
    }

    pub fn observe(&mut self, obs: &Observation, out: &mut Vec<Alert>) {
        let Some(lr) = obs.rec.lr else {
            return;
        };
        if self.nonfinite.update(!lr.is_finite()) {
            out.push(Alert::new(
                Level::Critical,
                AlertKind::ScheduleDeviation,
                obs.step,
                format!("the logged LR is {lr}: the scheduler produced no usable value"),
                "stop the run; check the scheduler's arguments (a zero or infinite period, an overflowing gamma) and restart from the last checkpoint",
            ));
        }
        if self.negative.update(lr < 0.0) {
            out.push(Alert::new(
                Level::Warn,
                AlertKind::ScheduleDeviation,
                obs.step,
                format!("the logged LR is {}, below zero: the updates climb the loss", short(lr)),
                "check the schedule's floor and sign (a linear decay past its horizon, a negative min_lr)",
            ));
        }
    }
}
