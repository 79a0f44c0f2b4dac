//! The `lrtop train --headless` command line of one trial: the options every
//! trial shares (task, model, optimizer, evaluation) plus its policy, length
//! and files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One trial to run: a policy for a number of updates, with its files.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique within a tune (halving runs a trial once per rung).
    pub id: usize,
    /// The trial's index in the spec list.
    pub index: usize,
    pub spec: String,
    pub steps: u64,
    pub log: PathBuf,
    pub summary: PathBuf,
}

impl Job {
    /// A short name for lists: `#3 COS(...)`, with the budget when it is a rung.
    pub fn label(&self, full_steps: u64) -> String {
        if self.steps == full_steps {
            format!("#{} {}", self.index, self.spec)
        } else {
            format!("#{} @{} {}", self.index, self.steps, self.spec)
        }
    }
}

/// What every trial's command line shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainTemplate {
    /// Task, model, optimizer and seed flags, `--name=value`.
    pub model_flags: Vec<String>,
    pub eval_every: u64,
    pub target_acc: Option<f64>,
}

impl TrainTemplate {
    /// The arguments after the program name (which is `lrtop` itself).
    pub fn args(
        &self,
        spec: &str,
        steps: u64,
        threads: Option<usize>,
        log: &Path,
        summary: &Path,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["train".into(), "--headless".into()];
        args.extend(self.run_flags(spec, steps).into_iter().map(OsString::from));
        if let Some(n) = threads {
            args.push(format!("--threads={n}").into());
        }
        args.extend([
            "--log".into(),
            log.as_os_str().to_owned(),
            "--summary-out".into(),
            summary.as_os_str().to_owned(),
        ]);
        args
    }

    /// Policy, length, evaluation and model flags (no threads, no files).
    pub fn run_flags(&self, spec: &str, steps: u64) -> Vec<String> {
        let mut flags = vec![
            format!("--policy={spec}"),
            format!("--steps={steps}"),
            format!("--eval-every={}", self.eval_every),
        ];
        if let Some(t) = self.target_acc {
            flags.push(format!("--target-acc={t}"));
        }
        flags.extend(self.model_flags.iter().cloned());
        flags
    }
}

/// Math threads per trial so that `jobs` trials at once use the cores
/// without oversubscribing them.
pub fn threads_per_trial(cores: usize, jobs: usize) -> usize {
    (cores / jobs.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_command_line() {
        let t = TrainTemplate {
            model_flags: vec!["--task=digits".into()],
            eval_every: 25,
            target_acc: Some(0.95),
        };
        let args = t.args(
            "FIX(k0=0.1)",
            100,
            Some(2),
            Path::new("a.jsonl"),
            Path::new("a.json"),
        );
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            [
                "train",
                "--headless",
                "--policy=FIX(k0=0.1)",
                "--steps=100",
                "--eval-every=25",
                "--target-acc=0.95",
                "--task=digits",
                "--threads=2",
                "--log",
                "a.jsonl",
                "--summary-out",
                "a.json"
            ]
        );
        assert_eq!(threads_per_trial(16, 4), 4);
        assert_eq!(threads_per_trial(2, 8), 1);
    }
}
