//! Tune mode of the dashboard: every trial is a run of the session (its
//! JSONL log followed, so curves overlay and alerts work) and a row of the
//! session's trial board, which fills as summaries arrive. This is the UI
//! half: sorting, selection, the trial shown alone. The leader's curves
//! stay bright, the others go faint; Enter shows one trial alone, Esc goes
//! back.

use std::cmp::Ordering;

use crossterm::event::{KeyCode, KeyEvent};

use super::app::View;
use super::keys::{self, Binding, Key, bind};
use crate::tune::board::{TrialBoard, TrialRow};
use crate::tune::results::Trial;

/// What tune mode's keys do on the trials table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TuneAction {
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    Open,
    Sort,
    Reverse,
}

/// Keys tune mode adds to the dashboard (and to its help).
pub const KEYS: &[Binding<TuneAction>] = &[
    bind(
        &[Key::Code(KeyCode::Up), Key::Char('k')],
        "select a trial",
        TuneAction::Up,
    ),
    bind(
        &[Key::Code(KeyCode::Down), Key::Char('j')],
        "",
        TuneAction::Down,
    ),
    bind(&[Key::Code(KeyCode::PageUp)], "", TuneAction::PageUp),
    bind(&[Key::Code(KeyCode::PageDown)], "", TuneAction::PageDown),
    bind(&[Key::Code(KeyCode::Home)], "", TuneAction::First),
    bind(&[Key::Code(KeyCode::End)], "", TuneAction::Last),
    bind(
        &[Key::Code(KeyCode::Enter)],
        "open the selected trial's dashboard (Esc: back)",
        TuneAction::Open,
    ),
    bind(
        &[Key::Char('s')],
        "sort by the next column",
        TuneAction::Sort,
    ),
    bind(&[Key::Char('r')], "reverse the sort", TuneAction::Reverse),
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

#[derive(Debug, Clone)]
pub struct TuneView {
    pub sort: SortColumn,
    pub reverse: bool,
    /// The selected job: the selection stays on its trial while rows
    /// reorder; None is the top row.
    pub selected: Option<usize>,
    /// The row shown alone (its "dashboard"), if any.
    pub focus: Option<usize>,
}

impl Default for TuneView {
    fn default() -> Self {
        TuneView::new()
    }
}

impl TuneView {
    pub fn new() -> TuneView {
        TuneView {
            sort: SortColumn::Rank,
            reverse: false,
            selected: None,
            focus: None,
        }
    }

    /// Row indices in display order.
    pub fn order(&self, board: &TrialBoard) -> Vec<usize> {
        let mut order = board.ranked();
        let key_f = |r: &TrialRow, f: fn(&Trial) -> Option<f64>| r.trial.as_ref().and_then(f);
        // Missing values last whatever the direction of the column.
        let by = |a: Option<f64>, b: Option<f64>, larger_first: bool| match (a, b) {
            (Some(x), Some(y)) if larger_first => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let rows = &board.rows;
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
    pub fn emphasise_leader(&self, board: &TrialBoard, view: &mut View) {
        if self.focus.is_some() {
            return;
        }
        view.ghosts.clear();
        if let Some(leader) = board.leader().map(|r| board.rows[r].run) {
            view.ghosts
                .extend(board.rows.iter().map(|r| r.run).filter(|&r| r != leader));
        }
    }

    /// Position of the selected row in the displayed order.
    pub fn selected_position(&self, board: &TrialBoard) -> usize {
        let order = self.order(board);
        self.selected
            .and_then(|job| order.iter().position(|&r| board.rows[r].job.id == job))
            .unwrap_or(0)
    }

    fn selected_row(&self, board: &TrialBoard) -> Option<usize> {
        self.order(board)
            .get(self.selected_position(board))
            .copied()
    }

    /// Points the dashboard's selected run (status bar, stats) at the selected trial.
    pub fn sync_view(&self, board: &TrialBoard, view: &mut View) {
        if self.focus.is_none()
            && let Some(row) = self.selected_row(board)
        {
            view.selected_run = board.rows[row].run;
        }
    }

    fn select(&mut self, position: usize, board: &TrialBoard, view: &mut View) {
        let order = self.order(board);
        let position = position.min(order.len().saturating_sub(1));
        self.selected = order.get(position).map(|&r| board.rows[r].job.id);
        self.sync_view(board, view);
    }

    fn open(&mut self, row: usize, board: &TrialBoard, view: &mut View) {
        self.focus = Some(row);
        let run = board.rows[row].run;
        view.hidden = board
            .rows
            .iter()
            .map(|r| r.run)
            .filter(|&r| r != run)
            .collect();
        view.ghosts.clear();
        view.selected_run = run;
        view.zoom = None;
    }

    fn close(&mut self, board: &TrialBoard, view: &mut View) {
        self.focus = None;
        view.hidden.clear();
        self.emphasise_leader(board, view);
    }

    /// Handles a key in tune mode; None when the dashboard should handle it.
    pub fn on_key(&mut self, key: KeyEvent, board: &TrialBoard, view: &mut View) -> Option<bool> {
        if self.focus.is_some() {
            if key.code == KeyCode::Esc {
                self.close(board, view);
                return Some(true);
            }
            return None;
        }
        let at = self.selected_position(board);
        match keys::lookup(KEYS, &key)? {
            TuneAction::Up => self.select(at.saturating_sub(1), board, view),
            TuneAction::Down => self.select(at + 1, board, view),
            TuneAction::PageUp => self.select(at.saturating_sub(10), board, view),
            TuneAction::PageDown => self.select(at + 10, board, view),
            TuneAction::First => self.select(0, board, view),
            TuneAction::Last => self.select(usize::MAX, board, view),
            TuneAction::Sort => {
                self.pin_selection(board);
                self.sort = self.sort.next();
            }
            TuneAction::Reverse => {
                self.pin_selection(board);
                self.reverse = !self.reverse;
            }
            TuneAction::Open => {
                if let Some(row) = self.selected_row(board) {
                    self.open(row, board, view);
                }
            }
        }
        Some(true)
    }

    /// Makes an implicit selection (the top row) explicit, so that it
    /// stays on its trial when the order changes.
    fn pin_selection(&mut self, board: &TrialBoard) {
        if self.selected.is_none() {
            self.selected = self.selected_row(board).map(|r| board.rows[r].job.id);
        }
    }
}
