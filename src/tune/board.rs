//! The trials of a tune as data: one row per job (a trial, or a trial at
//! one rung of halving) with its run, state and result, and the ranking by
//! the objective. The session keeps it; the dashboard sorts and shows it.

use std::cmp::Ordering;

use super::results::{Objective, Trial, compare};
use super::trial::Job;
use crate::metrics::RunId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    Queued,
    Running,
    Done,
}

/// One job of the tune (a trial, or a trial at one rung of halving).
#[derive(Debug, Clone)]
pub struct TrialRow {
    pub job: Job,
    pub run: RunId,
    pub state: RowState,
    pub trial: Option<Trial>,
}

impl TrialRow {
    pub fn status(&self) -> String {
        match (&self.state, &self.trial) {
            (RowState::Queued, _) => "queued".into(),
            (RowState::Running, _) => "running".into(),
            (RowState::Done, Some(t)) if t.is_ok() => "done".into(),
            // Long reasons (a trial's error) are in the runs list and the report.
            (RowState::Done, Some(t)) if t.status.chars().count() > 12 => "failed".into(),
            (RowState::Done, Some(t)) => t.status.clone(),
            (RowState::Done, None) => "done".into(),
        }
    }

    pub fn finished_ok(&self) -> bool {
        self.trial.as_ref().is_some_and(Trial::is_ok)
    }
}

/// Every job of a tune, in the order they were queued.
#[derive(Debug, Clone)]
pub struct TrialBoard {
    pub rows: Vec<TrialRow>,
    pub objective: Objective,
    /// Updates of a full-length trial (rungs of halving are shorter).
    pub full_steps: u64,
    /// Set when every trial has ended.
    pub finished: bool,
}

impl TrialBoard {
    pub fn new(objective: Objective, full_steps: u64) -> TrialBoard {
        TrialBoard {
            rows: Vec::new(),
            objective,
            full_steps,
            finished: false,
        }
    }

    pub fn row_of_job(&self, job: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.job.id == job)
    }

    pub fn row_of_run(&self, run: RunId) -> Option<&TrialRow> {
        self.rows.iter().find(|r| r.run == run)
    }

    /// Row indices by the objective: finished trials first (longer budgets
    /// first, for halving), then running, queued and failed ones.
    pub fn ranked(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by(|&a, &b| self.rank_cmp(a, b));
        order
    }

    fn rank_cmp(&self, a: usize, b: usize) -> Ordering {
        let (ra, rb) = (&self.rows[a], &self.rows[b]);
        let group = |r: &TrialRow| match (r.state, r.finished_ok()) {
            (RowState::Done, true) => 0,
            (RowState::Running, _) => 1,
            (RowState::Queued, _) => 2,
            (RowState::Done, false) => 3,
        };
        group(ra)
            .cmp(&group(rb))
            .then(rb.job.steps.cmp(&ra.job.steps))
            .then_with(|| match (&ra.trial, &rb.trial) {
                (Some(x), Some(y)) => compare(x, y, self.objective),
                _ => Ordering::Equal,
            })
            .then(ra.job.id.cmp(&rb.job.id))
    }

    /// The best finished trial's row.
    pub fn leader(&self) -> Option<usize> {
        self.ranked()
            .first()
            .copied()
            .filter(|&r| self.rows[r].finished_ok())
    }

    /// 1-based rank of every finished row (by row index).
    pub fn ranks(&self) -> Vec<Option<usize>> {
        let mut ranks = vec![None; self.rows.len()];
        for (rank, row) in self
            .ranked()
            .into_iter()
            .filter(|&r| self.rows[r].finished_ok())
            .enumerate()
        {
            ranks[row] = Some(rank + 1);
        }
        ranks
    }
}
