//! LRBench's evaluator over finished trials: the metrics of each trial and
//! the ranking by an objective.

use serde::{Deserialize, Serialize};

/// What `lrtop train --headless` prints as its last line (the subset tuning uses).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct TrialSummary {
    pub policy: String,
    pub final_acc: Option<f64>,
    pub best_acc: Option<f64>,
    pub final_top5: Option<f64>,
    pub eval_loss: Option<f64>,
    pub confidence_mean: Option<f64>,
    pub confidence_std: Option<f64>,
    pub final_train_loss: Option<f64>,
    pub steps: u64,
    pub steps_to_target: Option<u64>,
    pub time_to_target: Option<f64>,
    pub wall_s: f64,
    pub steps_per_s: f64,
    pub log: String,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trial {
    pub index: usize,
    pub spec: String,
    pub final_acc: Option<f64>,
    pub best_acc: Option<f64>,
    pub top5: Option<f64>,
    pub eval_loss: Option<f64>,
    /// Average prediction confidence on the test set and its spread.
    pub confidence_mean: Option<f64>,
    pub confidence_std: Option<f64>,
    /// Test loss minus final training loss: how far the model generalises
    /// worse than it fits. The training loss is the mean over the last
    /// evaluation interval when the log is at hand (one batch is noisy),
    /// else the last batch's.
    pub robustness: Option<f64>,
    pub steps: u64,
    pub steps_to_target: Option<u64>,
    pub time_to_target: Option<f64>,
    pub wall_s: f64,
    pub log: String,
    /// `ok`, or why the trial did not finish.
    pub status: String,
    /// The Slurm state of the trial's array task, when collect asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// The last lines of a failed task's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tail: Option<String>,
}

impl Trial {
    pub fn from_summary(index: usize, spec: &str, s: &TrialSummary) -> Trial {
        Trial {
            index,
            spec: spec.to_string(),
            final_acc: s.final_acc,
            best_acc: s.best_acc,
            top5: s.final_top5,
            eval_loss: s.eval_loss,
            confidence_mean: s.confidence_mean,
            confidence_std: s.confidence_std,
            robustness: match (s.eval_loss, s.final_train_loss) {
                (Some(test), Some(train)) if test.is_finite() && train.is_finite() => {
                    Some(test - train)
                }
                _ => None,
            },
            steps: s.steps,
            steps_to_target: s.steps_to_target,
            time_to_target: s.time_to_target,
            wall_s: s.wall_s,
            log: s.log.clone(),
            status: match s.end.as_deref() {
                None | Some("completed") => "ok".into(),
                Some(other) => other.to_string(),
            },
            scheduler: None,
            output_tail: None,
        }
    }

    pub fn failed(index: usize, spec: &str, why: String) -> Trial {
        Trial {
            index,
            spec: spec.to_string(),
            final_acc: None,
            best_acc: None,
            top5: None,
            eval_loss: None,
            confidence_mean: None,
            confidence_std: None,
            robustness: None,
            steps: 0,
            steps_to_target: None,
            time_to_target: None,
            wall_s: 0.0,
            log: String::new(),
            status: why,
            scheduler: None,
            output_tail: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Highest final accuracy (ties: best accuracy, then lowest eval loss).
    Acc,
    /// Fewest updates to reach --target-acc.
    StepsToTarget,
    /// Least wall time to reach --target-acc.
    TimeToTarget,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Acc => "acc",
            Objective::StepsToTarget => "steps-to-target",
            Objective::TimeToTarget => "time-to-target",
        }
    }

    pub fn needs_target(self) -> bool {
        self != Objective::Acc
    }
}

impl Trial {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// Recomputes robustness with a training loss averaged over the log's
    /// records after `from_step`.
    pub fn use_log_train_loss(&mut self, log_text: &str, from_step: u64) {
        if let (Some(test), Some(train)) =
            (self.eval_loss, mean_train_loss_after(log_text, from_step))
            && test.is_finite()
        {
            self.robustness = Some(test - train);
        }
    }
}

/// Mean training loss of the JSONL log's records with step > `from_step`
/// (evaluation, header and alert lines have no `loss`; lines with
/// non-finite numbers are not JSON and are skipped).
pub fn mean_train_loss_after(log_text: &str, from_step: u64) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for line in log_text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let step = value.get("step").and_then(serde_json::Value::as_f64);
        let loss = value.get("loss").and_then(serde_json::Value::as_f64);
        if let (Some(step), Some(loss)) = (step, loss)
            && step > from_step as f64
            && loss.is_finite()
        {
            sum += loss;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// Larger-is-better keys compare as descending, missing values last.
fn cmp_desc(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a.filter(|x| x.is_finite()), b.filter(|x| x.is_finite())) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn cmp_asc(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    cmp_desc(a.map(|x| -x), b.map(|x| -x))
}

/// Best first: finished trials before failed or diverged ones, then by the
/// objective, then by accuracy.
pub fn compare(a: &Trial, b: &Trial, objective: Objective) -> std::cmp::Ordering {
    let by_acc = cmp_desc(a.final_acc, b.final_acc)
        .then(cmp_desc(a.best_acc, b.best_acc))
        .then(cmp_asc(a.eval_loss, b.eval_loss));
    let primary = match objective {
        Objective::Acc => std::cmp::Ordering::Equal,
        Objective::StepsToTarget => cmp_asc(
            a.steps_to_target.map(|s| s as f64),
            b.steps_to_target.map(|s| s as f64),
        ),
        Objective::TimeToTarget => cmp_asc(a.time_to_target, b.time_to_target),
    };
    b.is_ok()
        .cmp(&a.is_ok())
        .then(primary)
        .then(by_acc)
        .then(a.index.cmp(&b.index))
}

/// Sorts trials best first (see [`compare`]).
pub fn rank(trials: &mut [Trial], objective: Objective) {
    trials.sort_by(|a, b| compare(a, b, objective));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(index: usize, acc: Option<f64>, steps: Option<u64>) -> Trial {
        let mut t = Trial::failed(index, "FIX(k0=0.1)", "ok".into());
        t.final_acc = acc;
        t.steps_to_target = steps;
        t
    }

    #[test]
    fn ranking_by_objective() {
        let mut trials = vec![
            trial(0, Some(0.9), Some(300)),
            trial(1, Some(0.95), None),
            trial(2, None, None),
            trial(3, Some(0.92), Some(100)),
        ];
        rank(&mut trials, Objective::Acc);
        assert_eq!(
            trials.iter().map(|t| t.index).collect::<Vec<_>>(),
            vec![1, 3, 0, 2]
        );
        rank(&mut trials, Objective::StepsToTarget);
        assert_eq!(
            trials.iter().map(|t| t.index).collect::<Vec<_>>(),
            vec![3, 0, 1, 2]
        );
    }

    #[test]
    fn failed_trials_rank_last() {
        let mut diverged = trial(0, Some(0.99), Some(10));
        diverged.status = "diverged".into();
        let mut trials = vec![diverged, trial(1, Some(0.5), None)];
        rank(&mut trials, Objective::StepsToTarget);
        assert_eq!(trials[0].index, 1);
    }

    #[test]
    fn train_loss_from_the_log_tail() {
        let log = "{\"header\": {\"policy\": \"FIX\"}}\n{\"step\": 1, \"loss\": 9.0}\n{\"step\": 2, \"loss\": 0.4}\n{\"step\": 2, \"eval_loss\": 0.9}\n{\"step\": 3, \"loss\": NaN}\n{\"step\": 4, \"loss\": 0.2}\n";
        assert_eq!(mean_train_loss_after(log, 1), Some(0.30000000000000004));
        let mut t = Trial::failed(0, "FIX(k0=0.1)", "ok".into());
        t.eval_loss = Some(0.5);
        t.use_log_train_loss(log, 1);
        assert!((t.robustness.unwrap() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn robustness_is_test_minus_train_loss() {
        let s = TrialSummary {
            eval_loss: Some(0.5),
            final_train_loss: Some(0.2),
            ..Default::default()
        };
        let t = Trial::from_summary(0, "FIX(k0=0.1)", &s);
        assert!((t.robustness.unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(t.status, "ok");
    }
}
