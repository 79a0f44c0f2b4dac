//! Successive halving over a grid (the synchronous form of ASHA): run every
//! trial for a small budget, keep the best 1/eta by the objective, multiply
//! the budget by eta, until the survivors run the full length.
//!
//! A trial at budget b is `lrtop train --steps b` with the same policy spec:
//! the policy is defined over the full length, so a short run is exactly the
//! prefix of the full run (same seed, data order and LR at every update).
//! Each rung trains from scratch, so a rung costs (trials x budget) updates.

use serde::Serialize;

use super::results::{Objective, Trial, compare};

/// The budgets of the rungs, smallest first; the last is the full length.
pub fn budgets(trials: usize, eta: usize, steps: u64, min_steps: u64) -> Vec<u64> {
    let eta = eta.max(2) as u64;
    // floor(log_eta(trials)) rungs below the full one, fewer if the
    // smallest budget would go below min_steps.
    let mut below = 0u32;
    while eta.saturating_pow(below + 1) <= trials as u64 {
        below += 1;
    }
    while below > 0 && steps / eta.saturating_pow(below) < min_steps.max(1) {
        below -= 1;
    }
    (0..=below)
        .map(|i| {
            let divisor = eta.saturating_pow(below - i) as f64;
            ((steps as f64 / divisor).round() as u64).clamp(1, steps)
        })
        .collect()
}

/// How many of `n` trials go on to the next rung.
pub fn survivors(n: usize, eta: usize) -> usize {
    (n / eta.max(2)).max(1)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rung {
    pub budget: u64,
    /// Trial indices run at this budget, best first.
    pub trials: Vec<usize>,
    /// Those that went on to the next rung.
    pub kept: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HalvingReport {
    pub eta: usize,
    pub rungs: Vec<Rung>,
    /// Updates the rungs trained: the sum of trials x budget.
    pub updates_spent: u64,
    /// Updates every trial at full length would train.
    pub updates_full_grid: u64,
    /// 1 - spent / full grid.
    pub compute_saved: f64,
    pub winner: Option<usize>,
    pub winner_spec: Option<String>,
    /// Filled by `--halving-verify`, which also runs the full grid.
    pub full_grid_winner: Option<usize>,
    pub full_grid_winner_spec: Option<String>,
    pub same_winner: Option<bool>,
}

impl HalvingReport {
    /// Records the winner of the full grid (ranked trials, best first).
    pub fn verify(&mut self, full_grid: &[Trial]) {
        let best = full_grid.first().filter(|t| t.is_ok());
        self.full_grid_winner = best.map(|t| t.index);
        self.full_grid_winner_spec = best.map(|t| t.spec.clone());
        self.same_winner = match (self.winner, self.full_grid_winner) {
            (Some(a), Some(b)) => Some(a == b),
            _ => None,
        };
    }
}

/// Runs successive halving. `run_rung(budget, trial indices)` runs those
/// trials for `budget` updates and returns their results in that order; it
/// is not called again once a rung comes back with an unfinished (stopped)
/// trial. Returns each trial's result at the highest rung it reached, best
/// first, and the report.
pub fn run(
    specs: &[String],
    eta: usize,
    steps: u64,
    min_steps: u64,
    objective: Objective,
    mut run_rung: impl FnMut(u64, &[usize]) -> Vec<Trial>,
) -> (Vec<Trial>, HalvingReport) {
    let plan = budgets(specs.len(), eta, steps, min_steps);
    let mut progress = Progress::new(specs.len());
    let mut alive: Vec<usize> = (0..specs.len()).collect();
    for (r, &budget) in plan.iter().enumerate() {
        if alive.is_empty() {
            break;
        }
        let mut results = run_rung(budget, &alive);
        let stopped = results
            .iter()
            .any(|t| t.status.starts_with("interrupted") || t.status.starts_with("not run"));
        let last = r + 1 == plan.len();
        alive = progress.rung_done(r, budget, &mut results, eta, last, stopped, objective);
        if stopped {
            break;
        }
    }
    progress.finish(specs, eta, steps, objective)
}

/// What the rungs so far decided: each trial's latest result, the rungs,
/// the winner. [`run`] drives it in one process; the Slurm executor
/// replays it from the rungs' files.
#[derive(Debug, Clone)]
pub struct Progress {
    latest: Vec<Option<(usize, Trial)>>,
    rungs: Vec<Rung>,
    winner: Option<usize>,
}

impl Progress {
    pub fn new(trials: usize) -> Progress {
        Progress {
            latest: vec![None; trials],
            rungs: Vec::new(),
            winner: None,
        }
    }

    /// Records rung `r`'s results (ranked here) and returns the trials
    /// that go on: the best that finished, none after the last rung or a
    /// stop (a rung that did not complete).
    #[allow(clippy::too_many_arguments)]
    pub fn rung_done(
        &mut self,
        r: usize,
        budget: u64,
        results: &mut [Trial],
        eta: usize,
        last: bool,
        stopped: bool,
        objective: Objective,
    ) -> Vec<usize> {
        results.sort_by(|a, b| compare(a, b, objective));
        for t in results.iter() {
            if let Some(slot) = self.latest.get_mut(t.index) {
                *slot = Some((r, t.clone()));
            }
        }
        let keep = if last || stopped {
            0
        } else {
            survivors(results.len(), eta)
        };
        let kept: Vec<usize> = results
            .iter()
            .filter(|t| t.is_ok())
            .take(keep)
            .map(|t| t.index)
            .collect();
        if last && !stopped {
            self.winner = results.first().filter(|t| t.is_ok()).map(|t| t.index);
        }
        self.rungs.push(Rung {
            budget,
            trials: results.iter().map(|t| t.index).collect(),
            kept: kept.clone(),
        });
        kept
    }

    /// Each trial's result at the highest rung it reached, best first, and
    /// the report.
    pub fn finish(
        self,
        specs: &[String],
        eta: usize,
        steps: u64,
        objective: Objective,
    ) -> (Vec<Trial>, HalvingReport) {
        let Progress {
            latest,
            rungs,
            winner,
        } = self;
        let updates_spent: u64 = rungs.iter().map(|r| r.budget * r.trials.len() as u64).sum();
        let updates_full_grid = steps * specs.len() as u64;
        let mut trials: Vec<(usize, Trial)> = latest.into_iter().flatten().collect();
        // Deeper rungs first, then the objective within a rung.
        trials.sort_by(|(ra, a), (rb, b)| rb.cmp(ra).then_with(|| compare(a, b, objective)));
        let report = HalvingReport {
            eta,
            rungs,
            updates_spent,
            updates_full_grid,
            compute_saved: if updates_full_grid > 0 {
                1.0 - updates_spent as f64 / updates_full_grid as f64
            } else {
                0.0
            },
            winner,
            winner_spec: winner.and_then(|i| specs.get(i).cloned()),
            full_grid_winner: None,
            full_grid_winner_spec: None,
            same_winner: None,
        };
        (trials.into_iter().map(|(_, t)| t).collect(), report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rung_budgets() {
        assert_eq!(budgets(8, 2, 800, 1), vec![100, 200, 400, 800]);
        assert_eq!(budgets(9, 3, 900, 1), vec![100, 300, 900]);
        assert_eq!(budgets(5, 3, 900, 1), vec![300, 900]);
        // The smallest budget stays at or above min_steps.
        assert_eq!(budgets(8, 2, 800, 150), vec![200, 400, 800]);
        assert_eq!(budgets(1, 2, 800, 1), vec![800]);
        assert_eq!(survivors(8, 2), 4);
        assert_eq!(survivors(2, 3), 1);
    }

    /// A fake trial whose accuracy grows with the budget and with the spec's rank.
    fn fake(index: usize, budget: u64, quality: f64) -> Trial {
        let mut t = Trial::failed(index, &format!("FIX(k0={index})"), "ok".into());
        t.final_acc = Some(quality * (1.0 - 1.0 / budget as f64));
        t.steps = budget;
        t
    }

    #[test]
    fn halving_keeps_the_best_and_counts_updates() {
        let specs: Vec<String> = (0..8).map(|i| format!("FIX(k0={i})")).collect();
        let quality = [0.5, 0.9, 0.7, 0.95, 0.6, 0.8, 0.85, 0.4];
        let mut calls = Vec::new();
        let (trials, mut report) = run(&specs, 2, 800, 1, Objective::Acc, |budget, alive| {
            calls.push((budget, alive.to_vec()));
            alive.iter().map(|&i| fake(i, budget, quality[i])).collect()
        });
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[1].1, vec![3, 1, 6, 5]);
        assert_eq!(report.winner, Some(3));
        assert_eq!(report.updates_spent, 8 * 100 + 4 * 200 + 2 * 400 + 800);
        assert_eq!(report.updates_full_grid, 6400);
        assert!((report.compute_saved - 0.5).abs() < 1e-12);
        assert_eq!(trials[0].index, 3);
        assert_eq!(trials[0].steps, 800);
        assert_eq!(trials.len(), 8);
        let mut full: Vec<Trial> = (0..8).map(|i| fake(i, 800, quality[i])).collect();
        crate::tune::results::rank(&mut full, Objective::Acc);
        report.verify(&full);
        assert_eq!(report.same_winner, Some(true));
    }

    #[test]
    fn failed_trials_do_not_survive_and_a_stop_ends_the_search() {
        let specs: Vec<String> = (0..4).map(|i| format!("FIX(k0={i})")).collect();
        let (_, report) = run(&specs, 2, 100, 1, Objective::Acc, |budget, alive| {
            alive
                .iter()
                .map(|&i| {
                    let mut t = fake(i, budget, 0.5 + i as f64 / 10.0);
                    if i == 3 {
                        t.status = "diverged".into();
                    }
                    t
                })
                .collect()
        });
        assert_eq!(report.rungs[0].kept, vec![2, 1]);
        assert_eq!(report.winner, Some(2));
        let mut calls = 0;
        let (_, report) = run(&specs, 2, 100, 1, Objective::Acc, |budget, alive| {
            calls += 1;
            alive
                .iter()
                .map(|&i| {
                    let mut t = fake(i, budget, 0.5);
                    if i == 0 {
                        t.status = "interrupted".into();
                    }
                    t
                })
                .collect()
        });
        assert_eq!(calls, 1);
        assert_eq!(report.winner, None);
    }
}
