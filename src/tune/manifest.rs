//! `tune.json`: what a tune runs (settings, every trial's spec and files),
//! written next to the trials so `lrtop tune collect DIR` can rank them
//! later, wherever they ran.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::local::read_summary;
use super::results::{Objective, Trial};
use super::trial::TrainTemplate;

pub const FILE_NAME: &str = "tune.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub id: String,
    /// `local` or `slurm`.
    pub executor: String,
    /// `grid` or `random`.
    pub search: String,
    pub objective: Objective,
    pub steps: u64,
    pub train: TrainTemplate,
    #[serde(default)]
    pub halving: Option<usize>,
    /// With `halving`: the smallest rung's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_steps: Option<u64>,
    /// How a Slurm tune submits its arrays (the rungs of a halving tune
    /// are written later, by `lrtop tune next-rung`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSettings>,
    pub trials: Vec<ManifestTrial>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SlurmSettings {
    pub cpus: usize,
    pub concurrent: Option<usize>,
    /// Where trials run (`--emit`'s working directory) and with what binary.
    pub workdir: std::path::PathBuf,
    pub exe: std::path::PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestTrial {
    pub spec: String,
    /// Paths relative to the manifest's directory.
    pub log: String,
    pub result: String,
}

impl Manifest {
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE_NAME);
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (is {} a tune directory?)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The trials as far as their files tell: finished ones from their
    /// result, `started` when only the log exists, else `pending`.
    pub fn collect(&self, dir: &Path) -> Vec<Trial> {
        self.trials
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let log = dir.join(&entry.log);
                let result = dir.join(&entry.result);
                match read_summary(&result) {
                    Ok(summary) => {
                        let mut trial = Trial::from_summary(index, &entry.spec, &summary);
                        trial.log = log.display().to_string();
                        if let Ok(text) = std::fs::read_to_string(&log) {
                            let from = summary.steps.saturating_sub(self.train.eval_every.max(1));
                            trial.use_log_train_loss(&text, from);
                        }
                        trial
                    }
                    Err(_) => {
                        let status = if log.exists() { "started" } else { "pending" };
                        let mut trial = Trial::failed(index, &entry.spec, status.into());
                        trial.log = log.display().to_string();
                        trial
                    }
                }
            })
            .collect()
    }
}
