//! Tune mode of the dashboard: every trial is a run of the session (its
//! JSONL log followed, so curves overlay and alerts work) and a row of the
//! trials table, which fills as summaries arrive. The leader's curves stay
//! bright, the others go faint; Enter shows one trial alone, Esc goes back.

use std::cmp::Ordering;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};

use super::app::View;
use crate::ingest::Follower;
use crate::metrics::RunId;
use crate::session::{RunStatus, Session};
use crate::tune::results::{Objective, Trial, compare};
use crate::tune::trial::Job;

/// Keys tune mode adds to the help overlay.
pub const KEYS: &[(&str, &str)] = &[
    ("↑↓ PgUp PgDn", "select a trial"),
    ("Enter", "open the selected trial's dashboard (Esc: back)"),
    ("s", "sort by the next column"),
    ("r", "reverse the sort"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// The objective's ranking.
    Rank,
    Trial,
    Status,
    FinalAcc,
    BestAcc,
    StepsToTarget,
    Wall,
    Spec,
}

impl SortColumn {
    const ALL: [SortColumn; 8] = [
        SortColumn::Rank,
        SortColumn::Trial,
        SortColumn::Status,
        SortColumn::FinalAcc,
        SortColumn::BestAcc,
        SortColumn::StepsToTarget,
        SortColumn::Wall,
        SortColumn::Spec,
    ];

    pub fn next(self) -> SortColumn {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Rank => "rank",
            SortColumn::Trial => "trial",
            SortColumn::Status => "status",
            SortColumn::FinalAcc => "final acc",
            SortColumn::BestAcc => "best acc",
            SortColumn::StepsToTarget => "steps to target",
            SortColumn::Wall => "wall time",
            SortColumn::Spec => "spec",
        }
    }
}

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

    fn finished_ok(&self) -> bool {
        self.trial.as_ref().is_some_and(Trial::is_ok)
    }
}

#[derive(Debug)]
pub struct TuneView {
    pub rows: Vec<TrialRow>,
    pub objective: Objective,
    /// Updates of a full-length trial (rungs of halving are shorter).
    pub full_steps: u64,
    pub sort: SortColumn,
    pub reverse: bool,
    /// The selected job: the selection stays on its trial while rows
    /// reorder; None is the top row.
    pub selected: Option<usize>,
    /// The row shown alone (its "dashboard"), if any.
    pub focus: Option<usize>,
    pub followers: Vec<Follower>,
    /// Set when every trial has ended.
    pub finished: bool,
}

impl TuneView {
    pub fn new(objective: Objective, full_steps: u64) -> TuneView {
        TuneView {
            rows: Vec::new(),
            objective,
            full_steps,
            sort: SortColumn::Rank,
            reverse: false,
            selected: None,
            focus: None,
            followers: Vec::new(),
            finished: false,
        }
    }

    /// Adds jobs as rows and as runs of the session.
    pub fn queue(&mut self, session: &mut Session, jobs: &[Job]) {
        for job in jobs {
            let run = session.add_run(job.label(self.full_steps), Some(job.log.clone()));
            session.runs[run].total_steps = Some(job.steps);
            session.runs[run].policy = Some(job.spec.clone());
            self.rows.push(TrialRow {
                job: job.clone(),
                run,
                state: RowState::Queued,
                trial: None,
            });
        }
        self.sync_statuses(session);
        self.emphasise_leader(session);
    }

    fn row_of_job(&self, job: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.job.id == job)
    }

    /// Marks a job running; returns its run and log, for a follower.
    pub fn started(&mut self, session: &mut Session, job: usize) -> Option<(RunId, PathBuf)> {
        let row = self.row_of_job(job)?;
        self.rows[row].state = RowState::Running;
        self.sync_statuses(session);
        Some((self.rows[row].run, self.rows[row].job.log.clone()))
    }

    pub fn finished(&mut self, session: &mut Session, job: usize, trial: Trial) {
        if let Some(row) = self.row_of_job(job) {
            self.rows[row].state = RowState::Done;
            self.rows[row].trial = Some(trial);
        }
        self.sync_statuses(session);
        self.emphasise_leader(session);
    }

    /// The run's state as the tune knows it (a follower's own states,
    /// such as "following", say less).
    pub fn status_of(&self, run: RunId) -> Option<RunStatus> {
        let row = self.rows.iter().find(|r| r.run == run)?;
        Some(match (&row.state, &row.trial) {
            (RowState::Queued, _) => RunStatus::Waiting,
            (RowState::Running, _) => RunStatus::Training,
            (RowState::Done, Some(t)) if !t.is_ok() => RunStatus::Failed(t.status.clone()),
            (RowState::Done, _) => RunStatus::Done,
        })
    }

    pub fn sync_statuses(&self, session: &mut Session) {
        for row in &self.rows {
            if let (Some(status), Some(run)) =
                (self.status_of(row.run), session.runs.get_mut(row.run))
            {
                run.status = status;
            }
        }
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

    /// Row indices in display order.
    pub fn order(&self) -> Vec<usize> {
        let mut order = self.ranked();
        let key_f = |r: &TrialRow, f: fn(&Trial) -> Option<f64>| r.trial.as_ref().and_then(f);
        // Missing values last whatever the direction of the column.
        let by = |a: Option<f64>, b: Option<f64>, larger_first: bool| match (a, b) {
            (Some(x), Some(y)) if larger_first => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let rows = &self.rows;
        match self.sort {
            SortColumn::Rank => {}
            SortColumn::Trial => order.sort_by_key(|&r| (rows[r].job.index, rows[r].job.id)),
            SortColumn::Status => order.sort_by_key(|&r| rows[r].status()),
            SortColumn::Spec => order.sort_by(|&a, &b| rows[a].job.spec.cmp(&rows[b].job.spec)),
            SortColumn::FinalAcc => order.sort_by(|&a, &b| {
                by(
                    key_f(&rows[a], |t| t.final_acc),
                    key_f(&rows[b], |t| t.final_acc),
                    true,
                )
            }),
            SortColumn::BestAcc => order.sort_by(|&a, &b| {
                by(
                    key_f(&rows[a], |t| t.best_acc),
                    key_f(&rows[b], |t| t.best_acc),
                    true,
                )
            }),
            SortColumn::StepsToTarget => order.sort_by(|&a, &b| {
                let s = |r: &TrialRow| {
                    r.trial
                        .as_ref()
                        .and_then(|t| t.steps_to_target)
                        .map(|s| s as f64)
                };
                by(s(&rows[a]), s(&rows[b]), false)
            }),
            SortColumn::Wall => order.sort_by(|&a, &b| {
                let w = |r: &TrialRow| r.trial.as_ref().filter(|t| t.steps > 0).map(|t| t.wall_s);
                by(w(&rows[a]), w(&rows[b]), false)
            }),
        }
        if self.reverse {
            order.reverse();
        }
        order
    }

    /// Bright leader, faint others (unless one trial is shown alone).
    pub fn emphasise_leader(&self, session: &mut Session) {
        if self.focus.is_some() {
            return;
        }
        let leader = self.leader().map(|r| self.rows[r].run);
        for (i, run) in session.runs.iter_mut().enumerate() {
            run.ghost = leader.is_some_and(|l| l != i);
        }
    }

    /// Position of the selected row in the displayed order.
    pub fn selected_position(&self) -> usize {
        let order = self.order();
        self.selected
            .and_then(|job| order.iter().position(|&r| self.rows[r].job.id == job))
            .unwrap_or(0)
    }

    fn selected_row(&self) -> Option<usize> {
        self.order().get(self.selected_position()).copied()
    }

    /// Points the dashboard's selected run (status bar, stats) at the selected trial.
    pub fn sync_view(&self, view: &mut View) {
        if self.focus.is_none()
            && let Some(row) = self.selected_row()
        {
            view.selected_run = self.rows[row].run;
        }
    }

    fn select(&mut self, position: usize, view: &mut View) {
        let order = self.order();
        let position = position.min(order.len().saturating_sub(1));
        self.selected = order.get(position).map(|&r| self.rows[r].job.id);
        self.sync_view(view);
    }

    fn open(&mut self, row: usize, session: &mut Session, view: &mut View) {
        self.focus = Some(row);
        let run = self.rows[row].run;
        for (i, state) in session.runs.iter_mut().enumerate() {
            state.visible = i == run;
            state.ghost = false;
        }
        view.selected_run = run;
        view.zoom = None;
    }

    fn close(&mut self, session: &mut Session) {
        self.focus = None;
        for state in &mut session.runs {
            state.visible = true;
        }
        self.emphasise_leader(session);
    }

    /// Handles a key in tune mode; None when the dashboard should handle it.
    pub fn on_key(
        &mut self,
        key: KeyEvent,
        session: &mut Session,
        view: &mut View,
    ) -> Option<bool> {
        if self.focus.is_some() {
            if key.code == KeyCode::Esc {
                self.close(session);
                return Some(true);
            }
            return None;
        }
        let at = self.selected_position();
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.select(at.saturating_sub(1), view),
            KeyCode::Down | KeyCode::Char('j') => self.select(at + 1, view),
            KeyCode::PageUp => self.select(at.saturating_sub(10), view),
            KeyCode::PageDown => self.select(at + 10, view),
            KeyCode::Home => self.select(0, view),
            KeyCode::End => self.select(usize::MAX, view),
            KeyCode::Char('s') => {
                self.pin_selection();
                self.sort = self.sort.next();
            }
            KeyCode::Char('r') => {
                self.pin_selection();
                self.reverse = !self.reverse;
            }
            KeyCode::Enter => {
                if let Some(row) = self.selected_row() {
                    self.open(row, session, view);
                }
            }
            _ => return None,
        }
        Some(true)
    }

    /// Makes an implicit selection (the top row) explicit, so that it
    /// stays on its trial when the order changes.
    fn pin_selection(&mut self) {
        if self.selected.is_none() {
            self.selected = self.selected_row().map(|r| self.rows[r].job.id);
        }
    }
}
