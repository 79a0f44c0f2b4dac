//! Dashboard state: the session (data, reduced from events) plus what the
//! user is looking at (UI state only: selection, hidden and ghost runs,
//! notices, the view), and the key bindings that change it. Rendering lives
//! in `super::panels`.

use std::collections::{BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::keys::{self, Action};
use super::theme::Theme;
use crate::format::format_value;
use crate::metrics::decimate::BlockIndex;
use crate::metrics::record::{GRAD_NORM, LOSS, is_eval_metric};
use crate::metrics::smooth::Ema;
use crate::metrics::{RunId, XAxis};
use crate::session::{NewAlerts, RunState, RunStatus, Session, SessionEvent};
use crate::train::trainer::{EndReason, TrainEvent};
use crate::tune::local::TuneEvent;

/// What the third chart shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThirdPanel {
    GradNorm,
    /// Every eval metric of the first visible run, overlaid.
    Eval,
    Metric(String),
}

/// A request the dashboard makes of whoever runs it (the trainer, mostly).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Quit,
    /// Train mode: restart with this policy spec.
    Restart(String),
    TogglePause,
    Stop,
    Checkpoint,
}

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub x_axis: XAxis,
    pub log_y: bool,
    /// The loss chart picks log y itself until `l` is pressed.
    pub log_y_auto: bool,
    /// TensorBoard-style smoothing weight for the loss, 0..0.99.
    pub smoothing: f64,
    /// Visible x range as fractions of the full range, when zoomed.
    pub zoom: Option<(f64, f64)>,
    /// Frozen view: new data is stored but the x range stays put.
    pub follow: bool,
    pub frozen_range: Option<(f64, f64)>,
    pub third: ThirdPanel,
    /// Clip the y range to the 5th-95th percentile, as TensorBoard's "ignore outliers".
    pub ignore_outliers: bool,
    pub help: bool,
    /// First help row shown (the overlay clamps it to what fits).
    pub help_scroll: usize,
    /// Alerts hidden above the pane's first row (0: worst and newest on top).
    pub alerts_scroll: usize,
    pub picker: Option<usize>,
    pub selected_run: usize,
    /// Runs the user hid (or tune mode hides while one trial is open).
    pub hidden: BTreeSet<RunId>,
    /// Runs drawn faint: earlier training runs, trials behind the leader.
    pub ghosts: BTreeSet<RunId>,
}

impl Default for View {
    fn default() -> Self {
        View {
            x_axis: XAxis::Step,
            log_y: false,
            log_y_auto: true,
            smoothing: 0.6,
            zoom: None,
            follow: true,
            frozen_range: None,
            third: ThirdPanel::GradNorm,
            ignore_outliers: true,
            help: false,
            help_scroll: 0,
            alerts_scroll: 0,
            picker: None,
            selected_run: 0,
            hidden: BTreeSet::new(),
            ghosts: BTreeSet::new(),
        }
    }
}

/// Smoothed loss of one run, extended as points arrive.
#[derive(Debug, Clone)]
pub struct Smoothed {
    pub weight: f64,
    pub values: Vec<f64>,
    pub index: BlockIndex,
    ema: Ema,
}

impl Smoothed {
    fn new(weight: f64) -> Self {
        Smoothed {
            weight,
            values: Vec::new(),
            index: BlockIndex::default(),
            ema: Ema::new(weight),
        }
    }

    fn extend(&mut self, raw: &[f64]) {
        for &v in &raw[self.values.len()..] {
            let s = self.ema.push(v);
            self.values.push(s);
            self.index.push(s);
        }
    }
}

/// Where each panel was drawn, for mouse hits.
#[derive(Debug, Clone, Default)]
pub struct Hitboxes {
    pub charts: Vec<Rect>,
    pub runs: Option<Rect>,
    pub alerts: Option<Rect>,
}

/// What a time x axis plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeAxis {
    /// Times the log wrote.
    Logged,
    /// No times in the log: when lrtop read each record (followed live).
    Arrival,
    /// No times in the log, all read at once: nothing to plot.
    Missing,
}

pub struct App {
    pub session: Session,
    pub view: View,
    pub theme: Theme,
    pub title: String,
    /// Unix seconds now, set by the event loop each frame (tests fix it).
    pub now: f64,
    pub dirty: bool,
    pub hitboxes: Hitboxes,
    pub smoothed: HashMap<RunId, Smoothed>,
    pub commands: Vec<Command>,
    pub notice: Option<String>,
    /// A first q while training: the next one quits.
    pub quit_armed: bool,
    /// Key help lines added by the mode (train adds its controls).
    pub extra_keys: Vec<(String, &'static str)>,
    /// Train mode: the policy picker, editor and run controls.
    pub train: Option<super::train_view::TrainView>,
    /// Tune mode: how the trials table is sorted and what is selected.
    pub tune: Option<super::tune_view::TuneView>,
}

pub const SMOOTHING_STEP: f64 = 0.05;
/// Alerts moved by one PgUp/PgDn.
pub const ALERTS_PAGE: usize = 5;

impl App {
    pub fn new(session: Session, theme: Theme, title: String) -> Self {
        App {
            session,
            view: View::default(),
            theme,
            title,
            now: 0.0,
            dirty: true,
            hitboxes: Hitboxes::default(),
            smoothed: HashMap::new(),
            commands: Vec::new(),
            notice: None,
            quit_armed: false,
            extra_keys: Vec::new(),
            train: None,
            tune: None,
        }
    }

    /// Applies a source's event to the session, then updates what the UI
    /// shows in answer (the new training run selected, earlier ones faint,
    /// a notice). Returns the alerts the event raised.
    pub fn apply(&mut self, event: SessionEvent) -> NewAlerts {
        self.dirty = true;
        let notice = match &event {
            SessionEvent::Train(e) => train_notice(e),
            SessionEvent::Discovered(found) if found.continues.is_none() => {
                Some(format!("new log: {}", found.source.label))
            }
            _ => None,
        };
        let paused = match &event {
            SessionEvent::Train(TrainEvent::Paused(p)) => Some(*p),
            _ => None,
        };
        let started = match &event {
            SessionEvent::Train(TrainEvent::RunStarted { policy, .. }) => Some(policy.to_string()),
            _ => None,
        };
        let tune_event = match &event {
            SessionEvent::Tune(e) => Some(tune_kind(e)),
            _ => None,
        };
        let alerts = self.session.apply(event);
        if let Some(policy) = started
            && let Some(id) = self.session.training
        {
            self.view.ghosts = (0..id).collect();
            self.view.selected_run = id;
            if let Some(train) = self.train.as_mut() {
                train.current = policy;
                train.paused = false;
            }
        }
        if let (Some(paused), Some(train)) = (paused, self.train.as_mut()) {
            train.paused = paused;
        }
        if let Some(text) = notice {
            self.notice = Some(text);
        }
        if let Some(kind) = tune_event {
            self.after_tune_event(kind);
        }
        alerts
    }

    fn after_tune_event(&mut self, kind: TuneKind) {
        let (Some(tune), Some(board)) = (self.tune.as_ref(), self.session.trials.as_ref()) else {
            return;
        };
        match kind {
            TuneKind::Finished(job) => {
                if let Some(trial) = board
                    .row_of_job(job)
                    .and_then(|r| board.rows[r].trial.as_ref())
                {
                    let what = match trial.final_acc {
                        Some(a) if trial.is_ok() => format!("acc {a:.4}"),
                        _ => trial.status.clone(),
                    };
                    self.notice = Some(format!("trial #{} {what}", trial.index));
                }
            }
            TuneKind::Ended => {
                let best = board
                    .leader()
                    .map(|r| format!("#{} {}", board.rows[r].job.index, board.rows[r].job.spec));
                self.notice = Some(match best {
                    Some(best) => format!("tune finished · best {best} · q quits"),
                    None => "tune finished · no trial succeeded · q quits".into(),
                });
            }
            TuneKind::Other => {}
        }
        tune.emphasise_leader(board, &mut self.view);
        tune.sync_view(board, &mut self.view);
    }

    pub fn is_visible(&self, run: RunId) -> bool {
        !self.view.hidden.contains(&run)
    }

    pub fn is_ghost(&self, run: RunId) -> bool {
        self.view.ghosts.contains(&run)
    }

    /// Brings the smoothed loss of every run up to date with its data.
    pub fn refresh_smoothing(&mut self) {
        let weight = self.view.smoothing;
        for (i, run) in self.session.runs.iter().enumerate() {
            let Some(col) = run.data.column(LOSS) else {
                continue;
            };
            let entry = self
                .smoothed
                .entry(i)
                .or_insert_with(|| Smoothed::new(weight));
            if entry.weight != weight || entry.values.len() > col.values.len() {
                *entry = Smoothed::new(weight);
            }
            entry.extend(&col.values);
        }
    }

    /// Metrics the third panel can show, across visible runs.
    /// Log y for the loss when the user chose it, or on its own when the
    /// loss spans more than a decade (a linear axis would hide its descent).
    pub fn loss_shown_log(&self) -> bool {
        if !self.view.log_y_auto {
            return self.view.log_y;
        }
        let (lo, hi) = self
            .visible_runs()
            .filter_map(|(_, run)| run.data.column(LOSS))
            .filter(|c| c.min.is_finite() && c.max.is_finite())
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), c| {
                (lo.min(c.min), hi.max(c.max))
            });
        lo > 0.0 && hi / lo > 10.0
    }

    /// Whether the LR chart is drawn on a log axis: until `l` is pressed,
    /// when the visible runs' peak LRs differ by more than 100x (on one
    /// linear axis the smaller schedules would be a flat line at 0).
    pub fn lr_shown_log(&self) -> bool {
        if !self.view.log_y_auto {
            return self.view.log_y;
        }
        let (lo, hi) = self
            .visible_runs()
            .filter_map(|(_, run)| run.data.column(crate::metrics::record::LR))
            .map(|c| c.max)
            .filter(|peak| peak.is_finite() && *peak > 0.0)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
                (lo.min(p), hi.max(p))
            });
        lo.is_finite() && hi / lo > 100.0
    }

    pub fn metric_choices(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (_, run) in self.visible_runs() {
            for name in run.data.metric_names() {
                if name != LOSS && name != crate::metrics::record::LR && seen.insert(name.as_str())
                {
                    names.push(name.clone());
                }
            }
        }
        names.sort_by_key(|n| (n != GRAD_NORM, !is_eval_metric(n), n.clone()));
        names
    }

    pub fn eval_metrics(&self) -> Vec<String> {
        self.metric_choices()
            .into_iter()
            .filter(|n| is_eval_metric(n))
            .collect()
    }

    /// The full x extent of the visible data on the current axis.
    pub fn data_x_range(&self) -> Option<(f64, f64)> {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for (id, run) in self.visible_runs() {
            for name in run.data.metric_names() {
                if let Some((a, b)) = run.data.x_range(name, self.view.x_axis) {
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
            }
            if let Some(total) = run
                .total_steps
                .filter(|_| self.view.x_axis == XAxis::Step && !self.is_ghost(id))
            {
                hi = hi.max(total as f64);
            }
        }
        (lo.is_finite() && hi.is_finite()).then_some((lo, hi.max(lo + 1e-9)))
    }

    /// The x range the charts show now (zoom, pan, frozen view applied).
    /// On a time x axis, what the time is: None on a step or epoch axis.
    pub fn time_axis(&self) -> Option<TimeAxis> {
        if !matches!(self.view.x_axis, XAxis::RelativeTime | XAxis::WallTime) {
            return None;
        }
        let runs: Vec<_> = self.visible_runs().map(|(_, r)| &r.data).collect();
        Some(if runs.is_empty() || runs.iter().any(|d| d.logs_time()) {
            TimeAxis::Logged
        } else if runs.iter().any(|d| d.arrival_span() >= 1.0) {
            TimeAxis::Arrival
        } else {
            TimeAxis::Missing
        })
    }

    pub fn visible_x_range(&self) -> Option<(f64, f64)> {
        let (lo, hi) = match (self.view.follow, self.view.frozen_range) {
            (false, Some(r)) => r,
            _ => self.data_x_range()?,
        };
        Some(match self.view.zoom {
            Some((a, b)) => (lo + (hi - lo) * a, lo + (hi - lo) * b),
            None => (lo, hi),
        })
    }

    fn zoom_by(&mut self, factor: f64) {
        let (a, b) = self.view.zoom.unwrap_or((0.0, 1.0));
        let width = ((b - a) * factor).clamp(1e-4, 1.0);
        // Zooming keeps the right edge when following, so the latest data stays in view.
        let (a, b) = if self.view.follow && b >= 1.0 {
            (1.0 - width, 1.0)
        } else {
            let mid = (a + b) / 2.0;
            let a = (mid - width / 2.0).clamp(0.0, 1.0 - width);
            (a, a + width)
        };
        self.view.zoom = if width >= 1.0 { None } else { Some((a, b)) };
    }

    fn pan_by(&mut self, fraction: f64) {
        if let Some((a, b)) = self.view.zoom {
            let width = b - a;
            let a = (a + width * fraction).clamp(0.0, 1.0 - width);
            self.view.zoom = Some((a, a + width));
        }
    }

    fn toggle_follow(&mut self) {
        self.view.follow = !self.view.follow;
        self.view.frozen_range = if self.view.follow {
            None
        } else {
            self.data_x_range()
        };
    }

    pub fn visible_runs(&self) -> impl Iterator<Item = (RunId, &RunState)> {
        self.session
            .runs
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_visible(*i))
    }

    /// Whether a run is being trained now (quitting would stop it).
    fn training_live(&self) -> bool {
        self.train.is_some()
            && self
                .session
                .training
                .and_then(|id| self.session.runs.get(id))
                .is_some_and(|r| matches!(r.status, RunStatus::Training | RunStatus::Paused))
    }

    /// q or Ctrl-C: quits, but while a run trains only when pressed twice.
    fn quit_key(&mut self) -> bool {
        if self.training_live() && !self.quit_armed {
            self.quit_armed = true;
            self.notice = Some("training: q again to stop and quit".into());
            return true;
        }
        self.commands.push(Command::Quit);
        false
    }

    /// Handles a key; returns false when the app should quit.
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        self.dirty = true;
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c'));
        if ctrl_c || key.code == KeyCode::Char('q') && self.quit_armed {
            return self.quit_key();
        }
        // Any other key disarms a first q.
        self.quit_armed = false;
        if self.view.help {
            // The help scrolls when the terminal is smaller than it.
            match key.code {
                KeyCode::Up | KeyCode::Char('k') => {
                    self.view.help_scroll = self.view.help_scroll.saturating_sub(1)
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.view.help_scroll = (self.view.help_scroll + 1).min(self.help_len())
                }
                KeyCode::PageUp => self.view.help_scroll = self.view.help_scroll.saturating_sub(10),
                KeyCode::PageDown => {
                    self.view.help_scroll = (self.view.help_scroll + 10).min(self.help_len())
                }
                _ => self.view.help = false,
            }
            return true;
        }
        if let Some(selected) = self.view.picker {
            let choices = self.picker_choices();
            match key.code {
                KeyCode::Esc | KeyCode::Char('m') => self.view.picker = None,
                KeyCode::Up | KeyCode::Char('k') => {
                    self.view.picker = Some(selected.saturating_sub(1))
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.view.picker = Some((selected + 1).min(choices.len().saturating_sub(1)))
                }
                KeyCode::Enter => {
                    if let Some(choice) = choices.get(selected) {
                        self.view.third = choice.clone();
                    }
                    self.view.picker = None;
                }
                _ => {}
            }
            return true;
        }
        if let Some(train) = self.train.as_mut()
            && let Some(keep_going) = train.on_key(key, &mut self.commands)
        {
            return keep_going;
        }
        if let (Some(tune), Some(board)) = (self.tune.as_mut(), self.session.trials.as_ref())
            && let Some(keep_going) = tune.on_key(key, board, &mut self.view)
        {
            return keep_going;
        }
        let runs = self.session.runs.len();
        let Some(action) = keys::lookup(keys::DASHBOARD, &key) else {
            self.dirty = false;
            return true;
        };
        match action {
            Action::Quit => return self.quit_key(),
            // Esc closes pop-ups (above); it never stops a training run.
            Action::Escape if self.training_live() => {
                self.notice = Some("Esc does not stop training: q twice to stop and quit".into());
            }
            Action::Escape => {
                self.commands.push(Command::Quit);
                return false;
            }
            Action::Help => {
                self.view.help = true;
                self.view.help_scroll = 0;
            }
            Action::ToggleLogY => {
                // From the automatic choice, `l` flips what is shown.
                if self.view.log_y_auto {
                    self.view.log_y = self.loss_shown_log();
                    self.view.log_y_auto = false;
                }
                self.view.log_y = !self.view.log_y;
            }
            Action::NextXAxis => {
                self.view.x_axis = self.view.x_axis.next();
                self.view.zoom = None;
                self.view.frozen_range = None;
                self.view.follow = true;
            }
            Action::SmoothMore => {
                self.view.smoothing = (self.view.smoothing + SMOOTHING_STEP).min(0.99);
            }
            Action::SmoothLess => {
                self.view.smoothing = (self.view.smoothing - SMOOTHING_STEP).max(0.0);
            }
            Action::ZoomIn => self.zoom_by(0.5),
            Action::ZoomOut => self.zoom_by(2.0),
            Action::ZoomReset => self.view.zoom = None,
            Action::PanLeft => self.pan_by(-0.25),
            Action::PanRight => self.pan_by(0.25),
            Action::Follow => self.toggle_follow(),
            Action::Outliers => self.view.ignore_outliers = !self.view.ignore_outliers,
            Action::PickMetric => {
                let current = self
                    .picker_choices()
                    .iter()
                    .position(|c| *c == self.view.third)
                    .unwrap_or(0);
                self.view.picker = Some(current);
            }
            Action::CycleMetric => {
                let choices = self.picker_choices();
                let i = choices
                    .iter()
                    .position(|c| *c == self.view.third)
                    .map_or(0, |i| i + 1);
                if let Some(next) = choices.get(i % choices.len().max(1)) {
                    self.view.third = next.clone();
                }
            }
            Action::RunUp => self.view.selected_run = self.view.selected_run.saturating_sub(1),
            Action::RunDown => {
                self.view.selected_run = (self.view.selected_run + 1).min(runs.saturating_sub(1))
            }
            Action::ToggleRun => self.toggle_run(self.view.selected_run),
            Action::ToggleNumberedRun => {
                if let KeyCode::Char(c @ '1'..='9') = key.code {
                    self.toggle_run(c as usize - '1' as usize)
                }
            }
            Action::AlertsOlder => self.scroll_alerts(ALERTS_PAGE as isize),
            Action::AlertsNewer => self.scroll_alerts(-(ALERTS_PAGE as isize)),
        }
        true
    }

    /// Rows of the help overlay.
    fn help_len(&self) -> usize {
        keys::help_rows(keys::DASHBOARD).len() + self.extra_keys.len() + 1
    }

    /// Moves the alerts pane by `by` alerts (positive: towards older),
    /// kept within the list.
    pub fn scroll_alerts(&mut self, by: isize) {
        let last = self.session.alerts.len().saturating_sub(1);
        self.view.alerts_scroll = self.view.alerts_scroll.saturating_add_signed(by).min(last);
    }

    fn toggle_run(&mut self, i: usize) {
        if i < self.session.runs.len() && !self.view.hidden.remove(&i) {
            self.view.hidden.insert(i);
        }
    }

    /// The third panel's options: grad norm, all eval metrics, then each metric.
    pub fn picker_choices(&self) -> Vec<ThirdPanel> {
        let mut out = vec![ThirdPanel::GradNorm, ThirdPanel::Eval];
        out.extend(
            self.metric_choices()
                .into_iter()
                .filter(|n| n != GRAD_NORM)
                .map(ThirdPanel::Metric),
        );
        out
    }

    pub fn on_mouse(&mut self, event: MouseEvent) {
        let inside = |r: &Rect| {
            event.column >= r.x
                && event.column < r.x + r.width
                && event.row >= r.y
                && event.row < r.y + r.height
        };
        match event.kind {
            MouseEventKind::ScrollUp if self.hitboxes.charts.iter().any(inside) => {
                self.zoom_by(0.8);
                self.dirty = true;
            }
            MouseEventKind::ScrollDown if self.hitboxes.charts.iter().any(inside) => {
                self.zoom_by(1.25);
                self.dirty = true;
            }
            MouseEventKind::ScrollDown if self.hitboxes.alerts.as_ref().is_some_and(inside) => {
                self.scroll_alerts(1);
                self.dirty = true;
            }
            MouseEventKind::ScrollUp if self.hitboxes.alerts.as_ref().is_some_and(inside) => {
                self.scroll_alerts(-1);
                self.dirty = true;
            }
            MouseEventKind::Down(_) => {
                if let Some(r) = self.hitboxes.runs.filter(|r| inside(r)) {
                    // Row 0 is the border; each run takes one row.
                    let i = (event.row - r.y).saturating_sub(1) as usize;
                    if i < self.session.runs.len() {
                        self.view.selected_run = i;
                        self.toggle_run(i);
                        self.dirty = true;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The part of a tune event the UI answers to.
enum TuneKind {
    Finished(usize),
    Ended,
    Other,
}

fn tune_kind(event: &TuneEvent) -> TuneKind {
    match event {
        TuneEvent::Finished { job, .. } => TuneKind::Finished(*job),
        TuneEvent::Ended => TuneKind::Ended,
        TuneEvent::Queued(_) | TuneEvent::Started { .. } => TuneKind::Other,
    }
}

/// What the status bar says about a trainer event, if anything.
fn train_notice(event: &TrainEvent) -> Option<String> {
    match event {
        TrainEvent::RunStarted {
            attempt, policy, ..
        } => Some(format!("run #{} started: {policy}", attempt + 1)),
        TrainEvent::Notice(text) => Some(text.clone()),
        TrainEvent::RunFinished { attempt, summary } => {
            let acc = summary
                .final_acc
                .map(|a| format!(" · acc {}", format_value(a)))
                .unwrap_or_default();
            let next = if summary.end == EndReason::Restarted {
                String::new()
            } else {
                " · p: pick a policy, Enter: run again".into()
            };
            Some(format!(
                "run #{} {:?}{acc} · {} steps/s{next}",
                attempt + 1,
                summary.end,
                format_value(summary.steps_per_s)
            ))
        }
        TrainEvent::Failed(e) => Some(format!("training failed: {e}")),
        _ => None,
    }
}
