//! Target reached: the first record where `--target METRIC>=VALUE` holds.

use crate::format::short;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::target::Target;

use super::Observation;

#[derive(Debug, Clone)]
pub struct TargetRule {
    target: Target,
    reached: bool,
}

impl TargetRule {
    pub fn new(target: Target) -> Self {
        TargetRule {
            target,
            reached: false,
        }
    }

    pub fn observe(&mut self, obs: &Observation, out: &mut Vec<Alert>) {
        if self.reached {
            return;
        }
        let Some(value) = self.target.read(obs.rec).filter(|v| v.is_finite()) else {
            return;
        };
        if !self.target.op.holds(value, self.target.value) {
            return;
        }
        self.reached = true;
        let at = obs
            .step
            .map(|s| format!(" at step {s}"))
            .unwrap_or_default();
        out.push(Alert::new(
            Level::Info,
            AlertKind::TargetReached,
            obs.step,
            format!(
                "target {} reached: {} = {}{at}",
                self.target,
                self.target.metric,
                short(value)
            ),
            format!(
                "keep this checkpoint{at}; stop here to save compute, or raise the target to keep going"
            ),
        ));
    }
}
