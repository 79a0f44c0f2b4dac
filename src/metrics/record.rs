//! `Record`: one log line or CSV row after field aliasing, the unit every
//! source emits and every consumer (store, monitor) reads.

/// Identifies a run (one followed file, or one training run) for the session.
pub type RunId = usize;

/// Canonical metric names of the fields lrtop knows by meaning.
pub const LR: &str = "lr";
pub const LOSS: &str = "loss";
pub const GRAD_NORM: &str = "grad_norm";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Optimizer-update count as logged (1-based for HF and lrtop's trainer).
    /// Sources fill a missing step with the previous record's step.
    pub step: Option<u64>,
    pub epoch: Option<f64>,
    /// Seconds, as logged (a Unix timestamp or seconds since start).
    pub time: Option<f64>,
    pub lr: Option<f64>,
    pub loss: Option<f64>,
    pub grad_norm: Option<f64>,
    /// Every other numeric field: eval metrics, throughput, runtimes.
    pub extra: Vec<(String, f64)>,
}

impl Record {
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            LR => self.lr,
            LOSS => self.loss,
            GRAD_NORM => self.grad_norm,
            "epoch" => self.epoch,
            "time" => self.time,
            "step" => self.step.map(|s| s as f64),
            _ => self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| *v),
        }
    }

    /// Named values, the well-known ones first (epoch and time excluded).
    pub fn values(&self) -> impl Iterator<Item = (&str, f64)> {
        [
            (LR, self.lr),
            (LOSS, self.loss),
            (GRAD_NORM, self.grad_norm),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .chain(self.extra.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    pub fn is_empty(&self) -> bool {
        self.step.is_none()
            && self.epoch.is_none()
            && self.time.is_none()
            && self.lr.is_none()
            && self.loss.is_none()
            && self.grad_norm.is_none()
            && self.extra.is_empty()
    }
}

/// Is this metric an evaluation metric (eval_*, val_*, val/*, test_*)?
/// (Called for every metric of every record the monitor sees: no allocation.)
pub fn is_eval_metric(name: &str) -> bool {
    [
        "eval_",
        "eval/",
        "val_",
        "val/",
        "valid_",
        "validation_",
        "test_",
        "test/",
    ]
    .iter()
    .any(|p| starts_with_ignoring_case(name, p))
}

/// Is this metric an evaluation loss (lower is better)?
pub fn is_eval_loss(name: &str) -> bool {
    is_eval_metric(name) && {
        let end = name.len().saturating_sub(4);
        name.as_bytes()[end..].eq_ignore_ascii_case(b"loss")
    }
}

fn starts_with_ignoring_case(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_metrics_are_recognised_in_any_case() {
        for name in [
            "eval_loss",
            "EVAL_Loss",
            "val/acc",
            "Validation_f1",
            "test/loss",
        ] {
            assert!(is_eval_metric(name), "{name}");
        }
        for name in ["loss", "val", "evaluation", "tést_x", "", "ééé_loss"] {
            assert!(!is_eval_metric(name), "{name}");
        }
        assert!(is_eval_loss("eval_LOSS"));
        assert!(is_eval_loss("val/loss"));
        assert!(!is_eval_loss("eval_accuracy"));
        assert!(!is_eval_loss("loss"));
        assert!(!is_eval_loss("val_é"));
    }
}
