//! Successive halving on Slurm with no process waiting between rungs.
//!
//! Rung R is its own job array in `DIR/rung-R/`: the tune's trials run for
//! that rung's budget, only the survivors' array indices. A job depending
//! on it (`--dependency=afterany:<array>`, so that a failed trial ranks
//! last instead of stalling the search as `afterok` would) runs `lrtop
//! tune next-rung DIR`: it replays the halving decisions from the rungs'
//! files, writes the next rung, submits it and the next dependent job.
//! `lrtop tune collect DIR` replays the same way and submits nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::halving::{self, HalvingReport, Progress};
use super::manifest::Manifest;
use super::results::Trial;
use super::slurm::{self, ArrayShape, TASKS, quote};
use super::slurm_state;

pub fn rung_dir(dir: &Path, rung: usize) -> PathBuf {
    dir.join(format!("rung-{rung}"))
}

/// Where the search stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// The last rung ended.
    Done,
    /// Rung `rung` has trials waiting or running.
    Running { rung: usize },
    /// Rung `rung` was cancelled (some trial never ran, or was stopped):
    /// the search ends there, as a local one that is interrupted does.
    Stopped { rung: usize },
    /// Rung `rung` is decided but not written (not submitted) yet.
    Next {
        rung: usize,
        budget: u64,
        trials: Vec<usize>,
        last: bool,
    },
}

pub struct Replay {
    /// Each trial at the highest rung it reached, best first.
    pub trials: Vec<Trial>,
    pub report: HalvingReport,
    pub stage: Stage,
    /// Each rung on disk: its budget and its trials' results (ranked).
    pub rungs: Vec<(u64, Vec<Trial>)>,
}

fn unfinished(t: &Trial) -> bool {
    matches!(t.status.as_str(), "running" | "pending" | "started")
}

/// The halving decisions the rungs on disk imply.
pub fn replay(manifest: &Manifest, dir: &Path) -> Replay {
    let eta = manifest.halving.unwrap_or(2);
    let specs: Vec<String> = manifest.trials.iter().map(|t| t.spec.clone()).collect();
    let plan = halving::budgets(
        specs.len(),
        eta,
        manifest.steps,
        manifest.min_steps.unwrap_or(1),
    );
    let mut progress = Progress::new(specs.len());
    let mut alive: Vec<usize> = (0..specs.len()).collect();
    let mut stage = Stage::Done;
    let mut rungs = Vec::new();
    for (r, &budget) in plan.iter().enumerate() {
        if alive.is_empty() {
            break;
        }
        let last = r + 1 == plan.len();
        let rdir = rung_dir(dir, r);
        let Ok(rung) = Manifest::read(&rdir) else {
            stage = Stage::Next {
                rung: r,
                budget,
                trials: alive,
                last,
            };
            break;
        };
        let mut all = rung.collect(&rdir);
        slurm_state::annotate(&rung, &rdir, &mut all);
        let mut results: Vec<Trial> = alive.iter().filter_map(|&i| all.get(i).cloned()).collect();
        for t in &mut results {
            t.steps = t.steps.min(budget);
        }
        let running = results.iter().any(unfinished);
        let cancelled = results
            .iter()
            .any(|t| t.status == "cancelled" || t.status.starts_with("not run"));
        alive = progress.rung_done(
            r,
            budget,
            &mut results,
            eta,
            last,
            running || cancelled,
            manifest.objective,
        );
        rungs.push((budget, results));
        if running {
            stage = Stage::Running { rung: r };
            break;
        }
        if cancelled {
            stage = Stage::Stopped { rung: r };
            break;
        }
    }
    let (trials, report) = progress.finish(&specs, eta, manifest.steps, manifest.objective);
    Replay {
        trials,
        report,
        stage,
        rungs,
    }
}

/// What `next-rung` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Advance {
    Done,
    StillRunning {
        rung: usize,
    },
    Stopped {
        rung: usize,
    },
    Submitted {
        rung: usize,
        trials: usize,
        budget: u64,
        job: String,
    },
}

/// Writes and submits the next rung (and the job that advances after it)
/// when the rung before it has ended; otherwise does nothing.
pub fn advance(manifest: &Manifest, dir: &Path) -> Result<Advance> {
    let settings = manifest
        .slurm
        .as_ref()
        .context("tune.json has no Slurm settings: emit it with --executor slurm --halving")?;
    let replay = replay(manifest, dir);
    let (rung, budget, trials, last) = match replay.stage {
        Stage::Done => return Ok(Advance::Done),
        Stage::Running { rung } => return Ok(Advance::StillRunning { rung }),
        Stage::Stopped { rung } => return Ok(Advance::Stopped { rung }),
        Stage::Next {
            rung,
            budget,
            trials,
            last,
        } => (rung, budget, trials, last),
    };
    let rdir = rung_dir(dir, rung);
    // Creating the folder claims the rung: a second next-rung finds it
    // and submits nothing.
    if let Err(e) = std::fs::create_dir(&rdir) {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bail!(
                "{} exists without a complete {}: another next-rung is writing it, or one \
                 failed half way (remove the folder and run `lrtop tune next-rung {}` again)",
                rdir.display(),
                super::manifest::FILE_NAME,
                dir.display()
            );
        }
        return Err(e).with_context(|| format!("creating {}", rdir.display()));
    }
    let specs: Vec<String> = manifest.trials.iter().map(|t| t.spec.clone()).collect();
    let rung_manifest = Manifest {
        id: format!("{}-rung-{rung}", manifest.id),
        steps: budget,
        halving: None,
        min_steps: None,
        slurm: None,
        trials: slurm::entries(&specs),
        ..manifest.clone()
    };
    let shape = ArrayShape {
        cpus: settings.cpus,
        concurrent: settings.concurrent,
    };
    // emit writes tune.json last: a rung is complete once it is there.
    let submitted = slurm::emit(
        &rung_manifest,
        &rdir,
        &settings.workdir,
        &settings.exe,
        shape,
        &trials,
    )
    .with_context(|| format!("writing rung {rung} in {}", rdir.display()))
    .and_then(|()| sbatch(&[rdir.join(slurm::SCRIPT).display().to_string()]));
    let job = match submitted {
        Ok(job) => job,
        Err(e) => {
            // Not submitted: leave no rung behind, so that a retry writes it.
            let _ = std::fs::remove_dir_all(&rdir);
            return Err(e);
        }
    };
    if !last {
        let wrap = format!(
            "exec {} tune next-rung {}",
            quote(&settings.exe.display().to_string()),
            quote(&dir.display().to_string())
        );
        let next = sbatch(&[
            format!("--dependency=afterany:{job}"),
            format!("--job-name=lrtop-{}-next", manifest.id),
            format!(
                "--output={}",
                dir.join(TASKS).join(format!("next-{rung}.out")).display()
            ),
            "--cpus-per-task=1".into(),
            format!("--wrap={wrap}"),
        ]);
        if let Err(e) = next {
            // Nothing would advance the rung: take it back, so that running
            // next-rung again starts from the same place.
            let _ = Command::new("scancel").arg(&job).status();
            let _ = std::fs::remove_dir_all(&rdir);
            return Err(e.context(format!(
                "rung {rung} (job {job}) was cancelled because the job to advance after it could not be submitted"
            )));
        }
    }
    Ok(Advance::Submitted {
        rung,
        trials: trials.len(),
        budget,
        job,
    })
}

/// `sbatch --parsable ARGS`: the job id.
fn sbatch(args: &[String]) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .context("running sbatch (run next-rung where Slurm's commands are)")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {}", text.trim());
    }
    Ok(id)
}
