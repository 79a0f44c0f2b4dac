//! The data side of a dashboard session: every run's store and monitor, fed
//! records from a source. The TUI and the headless printer both read it.

use std::path::PathBuf;
use std::process::Child;

use serde_json::{Value, json};

use crate::metrics::record::{GRAD_NORM, LOSS, LR};
use crate::metrics::{Record, RunData, RunId};
use crate::monitor::{Alert, Level, Monitor, MonitorConfig, Target};
use crate::policy::Policy;

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
    /// An earlier training run kept on the charts for comparison.
    pub ghost: bool,
    pub visible: bool,
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

    /// The machine-readable summary other tools and tests use.
    pub fn summary(&self) -> Value {
        let loss = self.data.column(LOSS);
        let min_loss = loss.filter(|c| c.min.is_finite());
        json!({
            "path": self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| self.label.clone()),
            "label": self.label,
            "format": self.format,
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
    setup: MonitorSetup,
    hooks: Vec<Child>,
}

impl Session {
    pub fn new(setup: MonitorSetup) -> Self {
        Session {
            runs: Vec::new(),
            alerts: Vec::new(),
            setup,
            hooks: Vec::new(),
        }
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
            ghost: false,
            visible: true,
        });
        self.runs.len() - 1
    }

    /// Stores records and runs the monitor over each once. Returns new alerts.
    pub fn push_records(
        &mut self,
        run: RunId,
        records: &[Record],
        now: f64,
    ) -> Vec<(RunId, Alert)> {
        let Some(state) = self.runs.get_mut(run) else {
            return Vec::new();
        };
        let mut new = Vec::new();
        for rec in records {
            state.data.push(rec, now);
            state.records += 1;
            new.extend(state.monitor.observe(rec).into_iter().map(|a| (run, a)));
        }
        if !records.is_empty() {
            state.first_arrival.get_or_insert(now);
            state.last_arrival = Some(now);
        }
        self.raise(&new);
        new
    }

    /// Replaces a run's data with an already loaded store, replaying it
    /// through the monitor (cold load).
    pub fn load_run(&mut self, run: RunId, data: RunData, now: f64) -> Vec<(RunId, Alert)> {
        let Some(state) = self.runs.get_mut(run) else {
            return Vec::new();
        };
        let mut new = Vec::new();
        for rec in data.records() {
            new.extend(state.monitor.observe(&rec).into_iter().map(|a| (run, a)));
        }
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
        for (i, state) in self.runs.iter_mut().enumerate() {
            if state.ghost {
                continue;
            }
            new.extend(
                state
                    .monitor
                    .tick(now, following)
                    .into_iter()
                    .map(|a| (i, a)),
            );
        }
        self.raise(&new);
        self.hooks
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        new
    }

    fn raise(&mut self, new: &[(RunId, Alert)]) {
        for (run, alert) in new {
            if let Some(cmd) = &self.setup.on_alert {
                let label = &self.runs[*run].label;
                match crate::monitor::run_on_alert(cmd, alert, label) {
                    Ok(child) => self.hooks.push(child),
                    Err(e) => eprintln!("--on-alert: could not run '{cmd}': {e}"),
                }
            }
            self.alerts.push((*run, alert.clone()));
        }
    }

    pub fn worst_level(&self) -> Option<Level> {
        self.alerts.iter().map(|(_, a)| a.level).max()
    }
}
