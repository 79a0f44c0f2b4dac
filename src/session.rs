//! The data side of a session: every run's store and monitor, reduced from
//! one typed stream of events. Sources (log followers, the trainer thread,
//! the tune driver) send `SessionEvent`s; `Session::apply` is the one place
//! they change the session, and returns the alerts they raised. The TUI and
//! the headless printers both consume the same reduced session, and a test
//! can record and replay events without a terminal.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::clock::unix_now;
use crate::ingest::scan::Discovered;
use crate::ingest::{FollowStatus, LoadedRun, RunConfig, Source, SourceEvent};
use crate::metrics::record::{GRAD_NORM, LOSS, LR};
use crate::metrics::{Record, RunData, RunId};
use crate::monitor::HookQueue;
use crate::monitor::{Alert, Level, Monitor, MonitorConfig, Target};
use crate::policy::Policy;
use crate::train::trainer::{EndReason, TrainEvent};
use crate::tune::board::{RowState, TrialBoard, TrialRow};
use crate::tune::local::TuneEvent;

/// Everything that changes a session, from whichever source.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// A followed or loaded log.
    Source(SourceEvent),
    /// The in-process trainer.
    Train(TrainEvent),
    /// The tune driver (its trials' logs arrive as `Source` events).
    Tune(TuneEvent),
    /// A log that appeared below a followed directory.
    Discovered(Box<Discovered>),
}

impl From<SourceEvent> for SessionEvent {
    fn from(e: SourceEvent) -> Self {
        SessionEvent::Source(e)
    }
}

impl From<TrainEvent> for SessionEvent {
    fn from(e: TrainEvent) -> Self {
        SessionEvent::Train(e)
    }
}

impl From<TuneEvent> for SessionEvent {
    fn from(e: TuneEvent) -> Self {
        SessionEvent::Tune(e)
    }
}

/// Alerts an event raised, with the run each is about.
pub type NewAlerts = Vec<(RunId, Alert)>;

/// How a run's source is doing, for the status bar and the runs list.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    Waiting,
    Loading,
    Following,
    Done,
    Truncated,
    Rotated,
    Deleted,
    Closed,
    /// Training states.
    Training,
    Paused,
    Stopped,
    Failed(String),
}

impl RunStatus {
    /// Can new records still arrive (or be expected)?
    pub fn is_live(&self) -> bool {
        !matches!(
            self,
            RunStatus::Done | RunStatus::Closed | RunStatus::Stopped | RunStatus::Failed(_)
        )
    }

    pub fn label(&self) -> String {
        match self {
            RunStatus::Waiting => "waiting for file".into(),
            RunStatus::Loading => "loading".into(),
            RunStatus::Following => "following".into(),
            RunStatus::Done => "done".into(),
            RunStatus::Truncated => "truncated, re-reading".into(),
            RunStatus::Rotated => "rotated, following new file".into(),
            RunStatus::Deleted => "deleted, waiting".into(),
            RunStatus::Closed => "closed".into(),
            RunStatus::Training => "training".into(),
            RunStatus::Paused => "paused".into(),
            RunStatus::Stopped => "stopped".into(),
            RunStatus::Failed(why) => format!("failed: {why}"),
        }
    }
}

pub struct RunState {
    pub label: String,
    pub path: Option<PathBuf>,
    pub format: Option<&'static str>,
    pub data: RunData,
    pub monitor: Monitor,
    pub status: RunStatus,
    pub bad_lines: u64,
    pub last_error: Option<String>,
    pub records: u64,
    /// Unix seconds of the first and latest record arrival.
    pub first_arrival: Option<f64>,
    pub last_arrival: Option<f64>,
    /// Total updates planned, when known (training, a declared policy).
    pub total_steps: Option<u64>,
    /// The policy a training run used, for labels.
    pub policy: Option<String>,
    /// A training run's parameters, trainable and all.
    pub params: Option<crate::train::trainer::ParamCount>,
    /// The latest text a language model generated, with its step.
    pub sample: Option<(u64, String)>,
    /// Steps at which the log went back to an earlier step (a job resumed
    /// from a checkpoint): the records from there on replaced the earlier ones.
    pub resumed_at: Vec<u64>,
    /// The run this source continued in after a full restart (`label#2`).
    pub continued_in: Option<RunId>,
    /// 1 for a source's first run, 2 after its first restart, ...
    pub segment: u32,
    /// The run's settings as its tracker recorded them (W&B, MLflow, Trackio).
    pub config: Option<RunConfig>,
    /// The format's variant: which trainer printed a printed log.
    pub dialect: Option<&'static str>,
    /// A newer checkpoint's history repeats the run's: its records up to
    /// this step are already here.
    pub skip_through: Option<u64>,
    /// The log was rewritten or replaced and is read again from its start:
    /// records it already holds are skipped, the first that differs
    /// replaces the run from there (see `push_records`). The step reached.
    pub rewind: Option<Option<u64>>,
    /// Alerts for records up to this step were raised before a rewrite:
    /// not again.
    pub quiet_through: Option<u64>,
    /// The source has caught up with what its log held at start: alerts
    /// from here on are new (hooks run for them), earlier ones history.
    pub caught_up: bool,
    /// Rows held when it caught up: those after it are the live ones (a
    /// rate over the catch-up's burst would be no rate at all).
    pub caught_up_rows: usize,
}

impl RunState {
    /// Last value of a metric.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.data
            .column(name)
            .and_then(|c| c.last())
            .map(|(_, v)| v)
    }

    /// Steps per second over the whole run, from arrival or logged times.
    pub fn steps_per_second(&self) -> Option<f64> {
        let (first, last) = (self.data.first_step()?, self.data.last_step()?);
        let n = self.data.len();
        if n < 2 || last <= first {
            return None;
        }
        let elapsed = self.data.time_at(n as u32 - 1) - self.data.time_at(0);
        (elapsed > 0.0).then(|| (last - first) as f64 / elapsed)
    }

    /// Seconds left, when the total is known and the run is moving.
    pub fn eta_seconds(&self) -> Option<f64> {
        // A run that ended is not going to finish.
        if !self.status.is_live() {
            return None;
        }
        let total = self.total_steps?;
        let last = self.data.last_step()?;
        let rate = self.steps_per_second()?;
        (rate > 0.0 && total > last).then(|| (total - last) as f64 / rate)
    }

    pub fn first_nonfinite_step(&self) -> Option<u64> {
        self.data
            .metric_names()
            .iter()
            .filter_map(|name| self.data.column(name)?.first_nonfinite_row)
            .min()
            .and_then(|row| self.data.step_at(row))
    }

    /// The numeric fields of a run that has records but no LR or no loss
    /// lrtop recognised (None when both were found or nothing came yet).
    pub fn unmapped(&self) -> Option<Vec<String>> {
        if self.records == 0 || self.missing_targets().is_empty() {
            return None;
        }
        Some(
            self.data
                .metric_names()
                .iter()
                .filter(|n| ![LR, LOSS, GRAD_NORM].contains(&n.as_str()))
                .cloned()
                .collect(),
        )
    }

    fn missing_targets(&self) -> Vec<&'static str> {
        [LOSS, LR]
            .into_iter()
            .filter(|t| self.data.column(t).is_none())
            .collect()
    }

    /// The `--map` option to type when the LR or the loss was not found,
    /// guessing each from the field names (FIELD when nothing looks like it).
    pub fn map_hint(&self) -> Option<String> {
        let fields = self.unmapped()?;
        let guess = |target: &str| {
            let looks = |name: &str| {
                let name = name.to_ascii_lowercase();
                match target {
                    LOSS => name.contains("loss"),
                    _ => name.contains("lr") || name.contains("learning"),
                }
            };
            fields
                .iter()
                .find(|f| looks(f))
                .cloned()
                .unwrap_or_else(|| "FIELD".into())
        };
        let items: Vec<String> = self
            .missing_targets()
            .into_iter()
            .map(|t| format!("{t}={}", guess(t)))
            .collect();
        Some(format!("--map {}", items.join(",")))
    }

    /// The machine-readable summary other tools and tests use.
    pub fn summary(&self) -> Value {
        let loss = self.data.column(LOSS);
        let min_loss = loss.filter(|c| c.min.is_finite());
        json!({
            "path": self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| self.label.clone()),
            "label": self.label,
            "format": self.format,
            "dialect": self.dialect,
            "records": self.records,
            "bad_lines": self.bad_lines,
            "first_step": self.data.first_step(),
            "last_step": self.data.last_step(),
            "last_epoch": self.data.last_epoch().map(finite_or_null),
            "last_lr": self.last(LR).map(finite_or_null),
            "min_loss": min_loss.map(|c| c.min),
            "min_loss_step": min_loss.and_then(|c| self.data.step_at(c.min_row)),
            "last_loss": self.last(LOSS).map(finite_or_null),
            "last_grad_norm": self.last(GRAD_NORM).map(finite_or_null),
            "first_nonfinite_step": self.first_nonfinite_step(),
            "metrics": self.data.metric_names(),
            "points": self
                .data
                .metric_names()
                .iter()
                .map(|n| (n.clone(), json!(self.data.column(n).map_or(0, |c| c.len()))))
                .collect::<serde_json::Map<String, Value>>(),
            "x": if self.data.indexed_by_epoch() { "epoch" } else { "step" },
            "unmapped": self.unmapped(),
            "map_hint": self.map_hint(),
            "resumed_at": self.resumed_at,
            "dropped_values": self.data.dropped_values(),
            "config": self.config.as_ref().map(|c| json!({
                "name": c.name,
                "total_steps": c.total_steps,
                "scheduler": c.scheduler,
                "declared": c.declared,
            })),
            "alerts": self.monitor.alerts(),
            "schedule_fit": self.monitor.schedule_fit(),
        })
    }
}

fn finite_or_null(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// Options every run's monitor gets.
#[derive(Clone, Default)]
pub struct MonitorSetup {
    pub config: MonitorConfig,
    pub declared: Option<Policy>,
    pub target: Option<Target>,
    pub on_alert: Option<String>,
    /// Hooks for alerts in history (what a log held at start) too.
    pub on_alert_history: bool,
}

impl MonitorSetup {
    fn monitor(&self) -> Monitor {
        let mut m = Monitor::new(self.config.clone());
        if let Some(p) = &self.declared {
            m = m.with_declared(p.clone());
        }
        if let Some(t) = &self.target {
            m = m.with_target(t.clone());
        }
        m
    }
}

pub struct Session {
    pub runs: Vec<RunState>,
    /// Every alert raised, in order.
    pub alerts: Vec<(RunId, Alert)>,
    /// Train mode: the run being trained now (earlier ones have ended).
    pub training: Option<RunId>,
    /// Tune mode: every trial, its run, state and result.
    pub trials: Option<TrialBoard>,
    setup: MonitorSetup,
    hooks: HookQueue,
    /// Sources found while following, not yet taken by the frontend.
    new_sources: Vec<NewSource>,
    /// `--total-steps` for runs discovered later.
    pub default_total_steps: Option<u64>,
    /// Per run, until when `tick` can skip it (its monitor said it has
    /// nothing to do until then); reset for a run whenever an event or a
    /// load reaches it. Missing entries are due.
    idle_until: Vec<f64>,
}

/// A discovered source to follow, and the run its events go to.
#[derive(Debug)]
pub struct NewSource {
    pub run: RunId,
    pub source: Source,
    /// The older checkpoint file whose follower it replaces.
    pub replaces: Option<PathBuf>,
}

impl Session {
    pub fn new(setup: MonitorSetup) -> Self {
        Session {
            runs: Vec::new(),
            alerts: Vec::new(),
            training: None,
            trials: None,
            setup,
            hooks: HookQueue::default(),
            new_sources: Vec::new(),
            default_total_steps: None,
            idle_until: Vec::new(),
        }
    }

    /// A session for a tune: its trials fill the board as they are queued.
    pub fn with_trials(mut self, board: TrialBoard) -> Self {
        self.trials = Some(board);
        self
    }

    /// Applies one event; returns the alerts it raised.
    pub fn apply(&mut self, event: SessionEvent) -> NewAlerts {
        match &event {
            SessionEvent::Source(e) => {
                let run = e.run();
                self.tick_due(run);
                let segment = self.current_segment(run);
                self.tick_due(segment);
            }
            // Train and tune sessions hold a few runs: all of them are due.
            _ => self.idle_until.clear(),
        }
        self.apply_event(event)
    }

    /// `run` is ticked at the next `tick`, whatever its monitor said.
    fn tick_due(&mut self, run: RunId) {
        if let Some(until) = self.idle_until.get_mut(run) {
            *until = f64::NEG_INFINITY;
        }
    }

    fn apply_event(&mut self, event: SessionEvent) -> NewAlerts {
        match event {
            SessionEvent::Source(e) => self.apply_source(e, unix_now()),
            SessionEvent::Train(e) => self.apply_train(e, unix_now()),
            SessionEvent::Tune(e) => {
                self.apply_tune(e);
                Vec::new()
            }
            SessionEvent::Discovered(found) => {
                self.discovered(*found);
                Vec::new()
            }
        }
    }

    fn apply_source(&mut self, event: SourceEvent, now: f64) -> NewAlerts {
        // After a restart the source's events are about its newest run.
        let event = match event {
            SourceEvent::Status {
                run,
                status,
                detail,
            } => SourceEvent::Status {
                run: self.current_segment(run),
                status,
                detail,
            },
            other => other,
        };
        match event {
            SourceEvent::Records { run, records } => {
                let trial = self.is_trial(run);
                if let Some(state) = self.runs.get_mut(run)
                    && matches!(state.status, RunStatus::Loading | RunStatus::Waiting)
                    && !trial
                {
                    state.status = RunStatus::Following;
                }
                self.push_records(run, &records, now)
            }
            SourceEvent::Loaded { run, loaded } => self.loaded(run, *loaded, now),
            SourceEvent::Status {
                run,
                status,
                detail,
            } => {
                // A trial's state is the tune's, not its follower's.
                let trial = self.is_trial(run);
                if let Some(state) = self.runs.get_mut(run) {
                    // Read again from the start: exactly once, by content.
                    if matches!(status, FollowStatus::Truncated | FollowStatus::Rotated)
                        && !state.data.is_empty()
                    {
                        state.rewind = Some(None);
                    }
                    if status == FollowStatus::Following && !state.caught_up {
                        state.caught_up = true;
                        state.caught_up_rows = state.data.len();
                    }
                    if !trial {
                        state.status = match status {
                            FollowStatus::Waiting => RunStatus::Waiting,
                            FollowStatus::Reading => RunStatus::Loading,
                            FollowStatus::Following => RunStatus::Following,
                            FollowStatus::Truncated => RunStatus::Truncated,
                            FollowStatus::Rotated => RunStatus::Rotated,
                            FollowStatus::Deleted => RunStatus::Deleted,
                            FollowStatus::Closed => RunStatus::Closed,
                        };
                    }
                    if let Some(detail) = detail {
                        state.last_error = Some(detail);
                    }
                }
                Vec::new()
            }
            SourceEvent::BadLines {
                run,
                total,
                last_error,
            } => {
                if let Some(state) = self.runs.get_mut(run) {
                    state.bad_lines = total;
                    state.last_error = Some(last_error);
                }
                Vec::new()
            }
            SourceEvent::Format { run, format } => {
                if let Some(state) = self.runs.get_mut(run) {
                    state.format = Some(format.as_str());
                }
                Vec::new()
            }
            SourceEvent::Dialect { run, name } => {
                if let Some(state) = self.runs.get_mut(run) {
                    state.dialect = Some(name);
                }
                Vec::new()
            }
            SourceEvent::Config { run, config } => {
                let user_declared = self.setup.declared.is_some();
                if let Some(state) = self.runs.get_mut(run) {
                    if state.total_steps.is_none() {
                        state.total_steps = config.total_steps;
                    }
                    if !user_declared
                        && state.monitor.declared().is_none()
                        && let Some(policy) = config
                            .declared
                            .as_deref()
                            .and_then(|s| Policy::parse(s).ok())
                    {
                        state.monitor.set_declared(policy);
                    }
                    if config.policy_is_known() && state.policy.is_none() {
                        state.policy = config.declared.clone();
                    }
                    state.config = Some(config);
                }
                Vec::new()
            }
            SourceEvent::Failed { run, error } => {
                if let Some(state) = self.runs.get_mut(run) {
                    state.status = RunStatus::Failed(error);
                }
                Vec::new()
            }
        }
    }

    /// A source read to its end at once (`--no-follow`).
    fn loaded(&mut self, run: RunId, loaded: LoadedRun, now: f64) -> NewAlerts {
        if run >= self.runs.len() {
            return Vec::new();
        }
        let data = self.take_loaded_facts(run, loaded, now);
        self.load_run(run, data, now)
    }

    /// What a cold load says about its run besides the rows (format, bad
    /// lines, dialect, config); returns the rows.
    fn take_loaded_facts(&mut self, run: RunId, loaded: LoadedRun, now: f64) -> RunData {
        let state = &mut self.runs[run];
        state.format = Some(loaded.format.as_str());
        state.bad_lines = loaded.bad_lines;
        state.last_error = loaded.last_error;
        state.status = RunStatus::Done;
        state.dialect = loaded.dialect;
        if let Some(config) = loaded.config {
            self.apply_source(SourceEvent::Config { run, config }, now);
        }
        loaded.data
    }

    fn apply_train(&mut self, event: TrainEvent, now: f64) -> NewAlerts {
        match event {
            TrainEvent::RunStarted {
                attempt,
                policy,
                log,
                steps,
                params,
            } => {
                let id = self.add_run(train_label(attempt, &policy), Some(log));
                let run = &mut self.runs[id];
                run.total_steps = Some(steps);
                run.params = Some(params);
                run.status = RunStatus::Training;
                run.caught_up = true;
                run.policy = Some(policy.to_string());
                self.training = Some(id);
                Vec::new()
            }
            TrainEvent::Records { records, .. } => match self.training {
                Some(id) => self.push_records(id, &records, now),
                None => Vec::new(),
            },
            TrainEvent::Paused(paused) => {
                if let Some(run) = self.training.and_then(|id| self.runs.get_mut(id)) {
                    run.status = if paused {
                        RunStatus::Paused
                    } else {
                        RunStatus::Training
                    };
                }
                Vec::new()
            }
            TrainEvent::Sample { step, text, .. } => {
                if let Some(run) = self.training.and_then(|id| self.runs.get_mut(id)) {
                    run.sample = Some((step, text));
                }
                Vec::new()
            }
            TrainEvent::RunFinished { summary, .. } => {
                if let Some(run) = self.training.and_then(|id| self.runs.get_mut(id)) {
                    run.status = match summary.end {
                        EndReason::Completed => RunStatus::Done,
                        EndReason::Diverged => RunStatus::Failed(match &summary.end_why {
                            Some(why) => format!("diverged: {why}"),
                            None => "diverged".into(),
                        }),
                        _ => RunStatus::Stopped,
                    };
                }
                Vec::new()
            }
            TrainEvent::Failed(e) => {
                if let Some(run) = self.runs.last_mut() {
                    run.status = RunStatus::Failed(e);
                }
                Vec::new()
            }
            TrainEvent::Notice(_) => Vec::new(),
        }
    }

    fn apply_tune(&mut self, event: TuneEvent) {
        match event {
            TuneEvent::Queued(jobs) => {
                let full_steps = self.trials.as_ref().map_or(0, |b| b.full_steps);
                for job in jobs {
                    let run = self.add_run(job.label(full_steps), Some(job.log.clone()));
                    self.runs[run].total_steps = Some(job.steps);
                    self.runs[run].policy = Some(job.spec.clone());
                    self.runs[run].status = RunStatus::Waiting;
                    if let Some(board) = &mut self.trials {
                        board.rows.push(TrialRow {
                            job,
                            run,
                            state: RowState::Queued,
                            trial: None,
                        });
                    }
                }
            }
            TuneEvent::Started { job } => self.trial_state(job, RowState::Running, None),
            TuneEvent::Finished { job, trial } => {
                self.trial_state(job, RowState::Done, Some(*trial))
            }
            TuneEvent::Ended => {
                if let Some(board) = &mut self.trials {
                    board.finished = true;
                }
            }
        }
    }

    fn trial_state(
        &mut self,
        job: usize,
        state: RowState,
        trial: Option<crate::tune::results::Trial>,
    ) {
        let Some(board) = &mut self.trials else {
            return;
        };
        let Some(row) = board.row_of_job(job) else {
            return;
        };
        let row = &mut board.rows[row];
        row.state = state;
        if trial.is_some() {
            row.trial = trial;
        }
        let status = trial_status(row);
        if let Some(run) = self.runs.get_mut(row.run) {
            run.status = status;
        }
    }

    fn is_trial(&self, run: RunId) -> bool {
        self.trials
            .as_ref()
            .is_some_and(|b| b.row_of_run(run).is_some())
    }

    pub fn add_run(&mut self, label: String, path: Option<PathBuf>) -> RunId {
        self.runs.push(RunState {
            label,
            path,
            format: None,
            data: RunData::new(),
            monitor: self.setup.monitor(),
            status: RunStatus::Loading,
            bad_lines: 0,
            last_error: None,
            records: 0,
            first_arrival: None,
            last_arrival: None,
            total_steps: None,
            policy: None,
            params: None,
            sample: None,
            resumed_at: Vec::new(),
            continued_in: None,
            segment: 1,
            config: None,
            dialect: None,
            skip_through: None,
            rewind: None,
            quiet_through: None,
            caught_up: false,
            caught_up_rows: 0,
        });
        self.runs.len() - 1
    }

    /// A new source: its own run, or for a newer checkpoint of a followed
    /// one, that run, which skips the history the new file repeats. The
    /// frontend starts its follower (`take_discovered`).
    fn discovered(&mut self, found: Discovered) {
        let existing = found
            .continues
            .as_ref()
            .and_then(|old| self.runs.iter().position(|r| r.path.as_ref() == Some(old)));
        let run = match existing {
            Some(run) => {
                let run = self.current_segment(run);
                let state = &mut self.runs[run];
                state.skip_through = state.data.last_step();
                state.path = found.source.path.clone();
                state.label = found.source.label.clone();
                run
            }
            None => {
                let mut label = found.source.label.clone();
                if self.runs.iter().any(|r| r.label == label) {
                    label = found
                        .source
                        .path
                        .as_ref()
                        .map_or(label, |p| p.display().to_string());
                }
                let run = self.add_run(label, found.source.path.clone());
                self.runs[run].total_steps = self.default_total_steps;
                run
            }
        };
        self.new_sources.push(NewSource {
            run,
            source: found.source,
            replaces: found.continues,
        });
    }

    /// Sources discovered since the last call, for the frontend to follow.
    pub fn take_discovered(&mut self) -> Vec<NewSource> {
        std::mem::take(&mut self.new_sources)
    }

    /// The run a source's records go to now: the run itself, or the one it
    /// continued in after a full restart.
    pub fn current_segment(&self, mut run: RunId) -> RunId {
        while let Some(next) = self.runs.get(run).and_then(|r| r.continued_in) {
            run = next;
        }
        run
    }

    /// Stores records and runs the monitor over each once. Returns new alerts.
    ///
    /// A record whose step goes back resumes or restarts the run: back to
    /// the first step or below, the job started over and a new run
    /// (`label#2`) takes the records; back to a step inside the run, it
    /// resumed from a checkpoint and its records replace those from that
    /// step on.
    pub fn push_records(
        &mut self,
        run: RunId,
        records: &[Record],
        now: f64,
    ) -> Vec<(RunId, Alert)> {
        if run >= self.runs.len() {
            return Vec::new();
        }
        self.tick_due(run);
        let mut run = self.current_segment(run);
        let mut new = Vec::new();
        for rec in records {
            if let Some(rewound) = self.runs[run].rewind {
                let step = rec.step.or(rewound);
                match self.runs[run].data.holds(rec, step) {
                    // Already read before the rewrite.
                    Some(true) => {
                        self.runs[run].rewind = Some(step);
                        continue;
                    }
                    // Past what was read: the log goes on.
                    None => self.runs[run].rewind = None,
                    // The log now says something else from here on.
                    Some(false) => {
                        self.runs[run].rewind = None;
                        self.rewritten_from(run, step);
                    }
                }
            }
            let state = &mut self.runs[run];
            if let (Some(through), Some(step)) = (state.skip_through, rec.step) {
                if step <= through {
                    continue;
                }
                state.skip_through = None;
            }
            // A log indexed by epoch: the record goes at its epoch, for the
            // monitor and the restart rule too.
            let own = self.runs[run].data.step_for(rec);
            let with_step;
            let rec = if own != rec.step {
                with_step = Record {
                    step: own,
                    ..rec.clone()
                };
                &with_step
            } else {
                rec
            };
            if let Some(step) = rec.step {
                match step_jump(&self.runs[run].data, rec, step) {
                    Jump::Restart => run = self.restart(run),
                    Jump::Resume => self.resume(run, step),
                    Jump::Forward => {}
                }
            } else if epoch_restarted(&self.runs[run].data, rec) {
                run = self.restart(run);
            }
            let state = &mut self.runs[run];
            state.data.push(rec, now);
            state.records += 1;
            let alerts = state.monitor.observe(rec);
            let quiet = match (state.quiet_through, rec.step.or(state.data.last_step())) {
                (Some(through), Some(step)) if step <= through => true,
                (Some(_), _) => {
                    state.quiet_through = None;
                    false
                }
                _ => false,
            };
            if !quiet {
                new.extend(alerts.into_iter().map(|a| (run, a)));
            }
        }
        if !records.is_empty() {
            let state = &mut self.runs[run];
            state.first_arrival.get_or_insert(now);
            state.last_arrival = Some(now);
        }
        self.raise(&new);
        new
    }

    /// A new run for a source whose log started over; returns its id.
    fn restart(&mut self, run: RunId) -> RunId {
        let base = &self.runs[run];
        let (label, path, format, total, policy) = (
            base.label.clone(),
            base.path.clone(),
            base.format,
            base.total_steps,
            base.policy.clone(),
        );
        let segment = base.segment + 1;
        let root = match base.segment {
            1 => label.as_str(),
            _ => label
                .rsplit_once('#')
                .map_or(label.as_str(), |(root, _)| root),
        };
        let label = format!("{root}#{segment}");
        let status = base.status.clone();
        let id = self.add_run(label, path);
        let new = &mut self.runs[id];
        new.format = format;
        new.total_steps = total;
        new.policy = policy;
        new.status = status;
        new.segment = segment;
        self.runs[run].status = RunStatus::Done;
        self.runs[run].continued_in = Some(id);
        id
    }

    /// A rewritten log differs from what was read at `step`: inside the run,
    /// its records replace those from that step on (as a resume does);
    /// at its start, the run's data is replaced whole, and alerts already
    /// raised for the steps read before are not raised again.
    fn rewritten_from(&mut self, run: RunId, step: Option<u64>) {
        let first = self.runs[run].data.first_step();
        match (step, first) {
            (Some(s), Some(f)) if s > f => {
                self.resume(run, s);
                // A rewrite, not a job resumed from a checkpoint.
                self.runs[run].resumed_at.pop();
            }
            _ => {
                let monitor = self.setup.monitor();
                let state = &mut self.runs[run];
                state.quiet_through = state.data.last_step();
                state.data = RunData::new();
                state.records = 0;
                state.monitor = monitor;
            }
        }
    }

    /// The log went back to `step` inside the run: drop what it logged from
    /// there on, and rebuild the monitor's state from what is kept (without
    /// raising its alerts again).
    fn resume(&mut self, run: RunId, step: u64) {
        let monitor = self.setup.monitor();
        let state = &mut self.runs[run];
        let Some(row) = state.data.first_row_from_step(step) else {
            return;
        };
        state.data.truncate(row);
        state.records = state.data.len() as u64;
        state.resumed_at.push(step);
        state.monitor = monitor;
        let monitor = &mut state.monitor;
        state.data.for_each_record(|rec| {
            monitor.observe(rec);
        });
    }

    /// A fresh monitor with this session's rules, declaration and target.
    pub fn new_monitor(&self) -> Monitor {
        self.setup.monitor()
    }

    /// A cold load whose rows a monitor already saw while they were parsed
    /// (`rows` of them, in order): that monitor is kept instead of replaying
    /// the run through a new one. Only when it saw the whole run as loaded,
    /// the run has no step jumps (those take the record-by-record path) and
    /// the log declares no schedule the monitor did not know.
    pub fn loaded_observed(
        &mut self,
        run: RunId,
        loaded: LoadedRun,
        monitor: Monitor,
        rows: usize,
        now: f64,
    ) -> NewAlerts {
        let declares = loaded.config.as_ref().is_some_and(|c| c.declared.is_some());
        let usable = rows == loaded.data.len()
            && !goes_back(&loaded.data)
            && !declares
            && run < self.runs.len();
        if !usable {
            return self.loaded(run, loaded, now);
        }
        let data = self.take_loaded_facts(run, loaded, now);
        let state = &mut self.runs[run];
        state.monitor = monitor;
        let new: NewAlerts = state
            .monitor
            .alerts()
            .iter()
            .cloned()
            .map(|a| (run, a))
            .collect();
        self.store_loaded(run, data, new, now)
    }

    /// Replaces a run's data with an already loaded store, replaying it
    /// through the monitor (cold load).
    pub fn load_run(&mut self, run: RunId, data: RunData, now: f64) -> Vec<(RunId, Alert)> {
        if run >= self.runs.len() {
            return Vec::new();
        }
        self.tick_due(run);
        if goes_back(&data) {
            // Rare: restarts and resumes need the record-by-record path.
            let records: Vec<Record> = data.records().collect();
            return self.push_records(run, &records, now);
        }
        let state = &mut self.runs[run];
        let mut new = Vec::new();
        data.for_each_record(|rec| {
            new.extend(state.monitor.observe(rec).into_iter().map(|a| (run, a)));
        });
        self.store_loaded(run, data, new, now)
    }

    /// A cold load's rows become the run's, and the alerts they raised are
    /// raised.
    fn store_loaded(&mut self, run: RunId, data: RunData, new: NewAlerts, now: f64) -> NewAlerts {
        let state = &mut self.runs[run];
        state.records += data.len() as u64;
        state.data = data;
        state.first_arrival.get_or_insert(now);
        state.last_arrival = Some(now);
        self.raise(&new);
        new
    }

    /// Time-driven rules (stalled runs). Returns new alerts.
    pub fn tick(&mut self, now: f64, following: bool) -> Vec<(RunId, Alert)> {
        let mut new = Vec::new();
        self.idle_until.resize(self.runs.len(), f64::NEG_INFINITY);
        // Only the runs that can do anything now: following ten thousand
        // quiet files, visiting each twice a second was most of the idle
        // main thread.
        for ((i, state), until) in self.runs.iter_mut().enumerate().zip(&mut self.idle_until) {
            if now < *until {
                continue;
            }
            if !state.status.is_live() {
                // A status changes with an event, which makes it due again.
                *until = f64::INFINITY;
                continue;
            }
            new.extend(
                state
                    .monitor
                    .tick(now, following)
                    .into_iter()
                    .map(|a| (i, a)),
            );
            *until = state.monitor.idle_until();
        }
        self.raise(&new);
        if let Some(cmd) = &self.setup.on_alert {
            self.hooks.poll(cmd);
        }
        new
    }

    fn raise(&mut self, new: &[(RunId, Alert)]) {
        for (run, alert) in new {
            // Alerts found while catching up with what a log already held
            // are history: no hook for them unless asked.
            let history = !self.runs[*run].caught_up;
            if let Some(cmd) = &self.setup.on_alert
                && (!history || self.setup.on_alert_history)
            {
                let label = self.runs[*run].label.clone();
                self.hooks.push(cmd, alert.clone(), label);
            }
            self.alerts.push((*run, alert.clone()));
        }
    }

    /// What went wrong with hooks since the last call, for a notice.
    pub fn take_hook_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.hooks.problems)
    }

    /// Hooks queued or running (a summary waits for them).
    pub fn hooks_pending(&self) -> usize {
        self.hooks.pending()
    }

    /// Gives running hooks up to `limit` to finish (before exiting).
    pub fn wait_for_hooks(&mut self, limit: std::time::Duration) {
        let Some(cmd) = self.setup.on_alert.clone() else {
            return;
        };
        let end = std::time::Instant::now() + limit;
        while self.hooks.pending() > 0 && std::time::Instant::now() < end {
            self.hooks.poll(&cmd);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn worst_level(&self) -> Option<Level> {
        self.alerts.iter().map(|(_, a)| a.level).max()
    }
}

/// The label of a training run on the charts: its number and policy.
fn train_label(attempt: usize, policy: &Policy) -> String {
    let text = policy.to_string();
    let short = if text.chars().count() > 48 {
        policy.short_name()
    } else {
        text
    };
    format!("#{} {short}", attempt + 1)
}

/// A trial's run state as the tune knows it (a follower's own states, such
/// as "following", say less).
pub fn trial_status(row: &TrialRow) -> RunStatus {
    match (&row.state, &row.trial) {
        (RowState::Queued, _) => RunStatus::Waiting,
        (RowState::Running, _) => RunStatus::Training,
        (RowState::Done, Some(t)) if !t.is_ok() => RunStatus::Failed(t.status.clone()),
        (RowState::Done, _) => RunStatus::Done,
    }
}

/// What a record's step means for the run so far.
enum Jump {
    Forward,
    /// Back inside the run: resumed from a checkpoint.
    Resume,
    /// Back to the first step or below: started over.
    Restart,
}

/// A record goes back when one of its metrics was already logged at a
/// later step. Per metric, because trackers that keep one file or table per
/// metric (MLflow) deliver them interleaved, each in order.
fn step_jump(data: &RunData, rec: &Record, step: u64) -> Jump {
    let went_back = rec.values().any(|(name, _)| {
        data.column(name)
            .and_then(|c| c.last())
            .and_then(|(row, _)| data.step_at(row))
            .is_some_and(|last| last > step)
    });
    if !went_back {
        return Jump::Forward;
    }
    match data.first_step() {
        Some(first) if step <= first => Jump::Restart,
        _ => Jump::Resume,
    }
}

/// A record without a step whose epoch is back at the run's first: a log
/// without steps (several runs appended to one file) started over.
fn epoch_restarted(data: &RunData, rec: &Record) -> bool {
    match (rec.epoch, data.first_epoch(), data.last_epoch()) {
        (Some(e), Some(first), Some(last)) => e < last && e <= first,
        _ => false,
    }
}

/// Does a loaded run go back anywhere (a step, or the epoch of a log
/// without steps)? Then restarts and resumes need the record-by-record path.
fn goes_back(data: &RunData) -> bool {
    let epoch_back = data.last_step().is_none() && !data.axis_sorted(crate::metrics::XAxis::Epoch);
    epoch_back || has_step_jumps(data)
}

/// Does a loaded run's step ever go back (for some metric)?
fn has_step_jumps(data: &RunData) -> bool {
    if data.axis_sorted(crate::metrics::XAxis::Step) {
        return false;
    }
    data.metric_names().iter().any(|name| {
        let Some(col) = data.column(name) else {
            return false;
        };
        let mut last: Option<u64> = None;
        col.rows.iter().any(|&row| match data.step_at(row) {
            Some(s) => {
                let back = last.is_some_and(|l| s < l);
                last = Some(s);
                back
            }
            None => false,
        })
    })
}
