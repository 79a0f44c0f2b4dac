//! The trainer loop, on its own OS thread: asks the policy for the LR of
//! every update, trains, evaluates, writes the JSONL log, and answers
//! control messages (restart with a policy, pause, stop, checkpoint, quit).
//! Events go out through a sink; nothing here knows about the UI.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

use super::learner::{EvalStats, Learner, LearnerConfig};
use crate::metrics::Record;
use crate::monitor::Alert;
use crate::policy::{Policy, Scheduler};

/// What to run, besides the learner's own configuration.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub steps: u64,
    /// Evaluate every N updates; 0 evaluates only at the end.
    pub eval_every: u64,
    pub target_acc: Option<f64>,
    /// Log file; None writes under `runs/`.
    pub log: Option<PathBuf>,
    pub save: Option<PathBuf>,
    /// Whether the thread waits for a restart after a run ends (the TUI) or
    /// returns (headless).
    pub interactive: bool,
}

#[derive(Debug, Clone)]
pub enum Control {
    Restart(Policy),
    TogglePause,
    Stop,
    Checkpoint,
    /// An alert the monitor raised on this run's records: goes into the log.
    Alert(Alert),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Completed,
    Stopped,
    Diverged,
    Restarted,
    Quit,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub policy: String,
    pub final_acc: Option<f64>,
    pub best_acc: Option<f64>,
    pub final_top5: Option<f64>,
    pub eval_loss: Option<f64>,
    pub best_eval_loss: Option<f64>,
    pub confidence_mean: Option<f64>,
    pub confidence_std: Option<f64>,
    pub final_train_loss: Option<f64>,
    pub steps: u64,
    pub steps_to_target: Option<u64>,
    pub wall_s: f64,
    /// Updates per second of the optimisation loop alone (no evaluation).
    pub steps_per_s: f64,
    pub log: String,
    pub end: EndReason,
}

#[derive(Debug, Clone)]
pub enum TrainEvent {
    RunStarted {
        attempt: usize,
        policy: Policy,
        log: PathBuf,
    },
    Records {
        attempt: usize,
        records: Vec<Record>,
    },
    Notice(String),
    RunFinished {
        attempt: usize,
        summary: RunSummary,
    },
    Failed(String),
}

/// Starts the trainer thread. `sink` returns false when nobody listens any more.
pub fn spawn(
    config: LearnerConfig,
    plan: RunPlan,
    policy: Policy,
    control: Receiver<Control>,
    mut sink: impl FnMut(TrainEvent) -> bool + Send + 'static,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("lrtop-trainer".into())
        .spawn(move || {
            if let Err(e) = train_thread(config, plan, policy, control, &mut sink) {
                sink(TrainEvent::Failed(format!("{e:#}")));
            }
        })
        .expect("spawning the trainer thread")
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn train_thread(
    config: LearnerConfig,
    plan: RunPlan,
    mut policy: Policy,
    control: Receiver<Control>,
    sink: &mut impl FnMut(TrainEvent) -> bool,
) -> Result<()> {
    let mut learner = Learner::new(&config)?;
    if let Some(notice) = learner.device_notice() {
        sink(TrainEvent::Notice(notice));
    }
    let initial = learner.snapshot()?;
    let started = chrono_stamp();
    for attempt in 0.. {
        if attempt > 0 {
            learner.restore(&initial)?;
        }
        let log_path = log_path(&plan, &started, attempt, &policy);
        if !sink(TrainEvent::RunStarted {
            attempt,
            policy: policy.clone(),
            log: log_path.clone(),
        }) {
            return Ok(());
        }
        let mut run = Run::new(&config, &plan, &policy, attempt, &log_path, &learner)?;
        let outcome = run.execute(&mut learner, &control, sink);
        let (summary, next) = match outcome {
            Ok(x) => x,
            Err(e) => {
                run.log.flush().ok();
                return Err(e);
            }
        };
        if let (Some(path), EndReason::Completed | EndReason::Stopped) = (&plan.save, summary.end) {
            learner
                .save(path)
                .with_context(|| format!("saving weights to {}", path.display()))?;
            sink(TrainEvent::Notice(format!(
                "saved weights to {}",
                path.display()
            )));
        }
        let end = summary.end;
        if !sink(TrainEvent::RunFinished { attempt, summary }) || end == EndReason::Quit {
            return Ok(());
        }
        policy = match next {
            Some(p) => p,
            None if !plan.interactive => return Ok(()),
            None => match wait_for_restart(&control, &mut learner, &plan, sink)? {
                Some(p) => p,
                None => return Ok(()),
            },
        };
    }
    Ok(())
}

/// After a run ends in the TUI: wait until the user restarts or quits.
fn wait_for_restart(
    control: &Receiver<Control>,
    learner: &mut Learner,
    plan: &RunPlan,
    sink: &mut impl FnMut(TrainEvent) -> bool,
) -> Result<Option<Policy>> {
    loop {
        match control.recv() {
            Ok(Control::Restart(p)) => return Ok(Some(p)),
            Ok(Control::Quit) | Err(_) => return Ok(None),
            Ok(Control::Checkpoint) => checkpoint(learner, plan, sink),
            Ok(_) => {}
        }
    }
}

fn checkpoint(learner: &Learner, plan: &RunPlan, sink: &mut impl FnMut(TrainEvent) -> bool) {
    let path = plan
        .save
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/checkpoint.safetensors"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let message = match learner.save(&path) {
        Ok(()) => format!("checkpoint saved to {}", path.display()),
        Err(e) => format!("checkpoint failed: {e:#}"),
    };
    sink(TrainEvent::Notice(message));
}

/// A stamp for default log names: Unix milliseconds and the process id, so
/// two sessions started in the same second do not share a log.
fn chrono_stamp() -> String {
    let millis = (unix_now() * 1000.0) as u64;
    format!("{millis}-{}", std::process::id())
}

fn log_path(plan: &RunPlan, started: &str, attempt: usize, policy: &Policy) -> PathBuf {
    match &plan.log {
        Some(path) if attempt == 0 => path.clone(),
        Some(path) => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
            let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("jsonl");
            path.with_file_name(format!("{stem}-{}.{ext}", attempt + 1))
        }
        None => {
            let name: String = policy
                .short_name()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            PathBuf::from("runs").join(format!("{started}-{}-{name}.jsonl", attempt + 1))
        }
    }
}

/// One run of one policy.
struct Run {
    attempt: usize,
    plan: RunPlan,
    policy: Policy,
    scheduler: Scheduler,
    log: BufWriter<File>,
    log_path: PathBuf,
    pending: Vec<Record>,
    last_send: Instant,
    last_flush: Instant,
    evals: Vec<(u64, EvalStats)>,
    last_train_loss: Option<f64>,
    steps_done: u64,
    train_time: Duration,
    started: Instant,
    steps_to_target: Option<u64>,
    maximize: bool,
}

impl Run {
    fn new(
        config: &LearnerConfig,
        plan: &RunPlan,
        policy: &Policy,
        attempt: usize,
        log_path: &Path,
        learner: &Learner,
    ) -> Result<Run> {
        if let Some(dir) = log_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = File::create(log_path)
            .with_context(|| format!("creating log {}", log_path.display()))?;
        let mut log = BufWriter::new(file);
        let info = learner.info();
        let header = json!({
            "lrtop": env!("CARGO_PKG_VERSION"),
            "run": format!("{}-{}", log_path.file_stem().and_then(|s| s.to_str()).unwrap_or("run"), attempt + 1),
            "attempt": attempt + 1,
            "task": config.task.to_string(),
            "model": config.model.to_string(),
            "optimizer": config.optimizer.to_string(),
            "weight_decay": config.weight_decay,
            "batch_size": config.batch_size,
            "policy": policy.to_string(),
            "total_steps": plan.steps,
            "seed": config.seed,
            "device": info.device,
            "params": info.params,
            "time": unix_now(),
        });
        writeln!(log, "{}", json!({ "header": header }))?;
        log.flush()?;
        Ok(Run {
            attempt,
            plan: plan.clone(),
            policy: policy.clone(),
            scheduler: Scheduler::new(policy.clone()),
            log,
            log_path: log_path.to_path_buf(),
            pending: Vec::new(),
            last_send: Instant::now(),
            last_flush: Instant::now(),
            evals: Vec::new(),
            last_train_loss: None,
            steps_done: 0,
            train_time: Duration::ZERO,
            started: Instant::now(),
            steps_to_target: None,
            maximize: policy_maximizes(policy),
        })
    }

    fn emit(
        &mut self,
        rec: Record,
        sink: &mut impl FnMut(TrainEvent) -> bool,
        force: bool,
    ) -> Result<bool> {
        writeln!(self.log, "{}", record_line(&rec))?;
        self.pending.push(rec);
        let mut alive = true;
        if force
            || self.pending.len() >= 256
            || self.last_send.elapsed() >= Duration::from_millis(40)
        {
            alive = sink(TrainEvent::Records {
                attempt: self.attempt,
                records: std::mem::take(&mut self.pending),
            });
            self.last_send = Instant::now();
        }
        if force || self.last_flush.elapsed() >= Duration::from_millis(250) {
            self.log.flush()?;
            self.last_flush = Instant::now();
        }
        Ok(alive)
    }

    /// Handles queued control messages. Returns an end reason when the run must stop.
    fn poll(
        &mut self,
        control: &Receiver<Control>,
        learner: &Learner,
        sink: &mut impl FnMut(TrainEvent) -> bool,
        next: &mut Option<Policy>,
    ) -> Result<Option<EndReason>> {
        let mut paused = false;
        loop {
            let message = if paused {
                match control.recv_timeout(Duration::from_millis(200)) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return Ok(Some(EndReason::Quit)),
                }
            } else {
                match control.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => return Ok(None),
                    Err(TryRecvError::Disconnected) => {
                        // Headless runs have no controller; keep training.
                        return Ok(None);
                    }
                }
            };
            match message {
                Control::TogglePause => {
                    paused = !paused;
                    self.log.flush()?;
                }
                Control::Stop => return Ok(Some(EndReason::Stopped)),
                Control::Quit => return Ok(Some(EndReason::Quit)),
                Control::Restart(p) => {
                    *next = Some(p);
                    return Ok(Some(EndReason::Restarted));
                }
                Control::Checkpoint => checkpoint(learner, &self.plan, sink),
                Control::Alert(alert) => {
                    writeln!(self.log, "{}", json!({ "alert": alert }))?;
                }
            }
        }
    }

    fn evaluate(
        &mut self,
        learner: &mut Learner,
        step: u64,
        sink: &mut impl FnMut(TrainEvent) -> bool,
    ) -> Result<bool> {
        let stats = learner.evaluate()?;
        let mut extra = vec![("eval_loss".to_string(), stats.loss)];
        if let Some(acc) = stats.acc {
            extra.push(("eval_acc".into(), acc));
        }
        if let Some(top5) = stats.top5 {
            extra.push(("eval_top5".into(), top5));
        }
        if let Some(c) = stats.confidence_mean {
            extra.push(("eval_confidence".into(), c));
        }
        if let Some(c) = stats.confidence_std {
            extra.push(("eval_confidence_std".into(), c));
        }
        let metric = if self.maximize {
            stats.acc.unwrap_or(-stats.loss)
        } else {
            stats.loss
        };
        if let Some(event) = self.scheduler.observe(step, metric) {
            sink(TrainEvent::Notice(event));
        }
        if let (Some(target), Some(acc), None) =
            (self.plan.target_acc, stats.acc, self.steps_to_target)
            && acc >= target
        {
            self.steps_to_target = Some(step);
        }
        self.evals.push((step, stats));
        let rec = Record {
            step: Some(step),
            time: Some(unix_now()),
            extra,
            ..Default::default()
        };
        self.emit(rec, sink, true)
    }

    fn execute(
        &mut self,
        learner: &mut Learner,
        control: &Receiver<Control>,
        sink: &mut impl FnMut(TrainEvent) -> bool,
    ) -> Result<(RunSummary, Option<Policy>)> {
        let mut next = None;
        let mut end = EndReason::Completed;
        let mut window = (Instant::now(), 0usize);
        let mut samples_per_s = 0.0;
        for t in 0..self.plan.steps {
            if let Some(reason) = self.poll(control, learner, sink, &mut next)? {
                end = reason;
                break;
            }
            let lr = self.scheduler.lr(t);
            let began = Instant::now();
            let stats = learner.train_step(lr)?;
            self.train_time += began.elapsed();
            self.steps_done = t + 1;
            window.1 += stats.samples;
            let elapsed = window.0.elapsed().as_secs_f64();
            if elapsed >= 1.0 {
                samples_per_s = window.1 as f64 / elapsed;
                window = (Instant::now(), 0);
            }
            self.last_train_loss = Some(stats.loss);
            let mut extra = Vec::new();
            if samples_per_s > 0.0 {
                extra.push(("samples_per_s".to_string(), samples_per_s));
            }
            let rec = Record {
                step: Some(t + 1),
                epoch: Some(stats.epoch),
                time: Some(unix_now()),
                lr: Some(lr),
                loss: Some(stats.loss),
                grad_norm: Some(stats.grad_norm),
                extra,
            };
            let diverged = !stats.loss.is_finite();
            if !self.emit(rec, sink, diverged)? {
                end = EndReason::Quit;
                break;
            }
            if diverged {
                // Nothing useful happens after a non-finite loss: stop instead of spinning.
                end = EndReason::Diverged;
                break;
            }
            let step = t + 1;
            let last = step == self.plan.steps;
            let due =
                (self.plan.eval_every > 0 && step.is_multiple_of(self.plan.eval_every)) || last;
            if due && !self.evaluate(learner, step, sink)? {
                end = EndReason::Quit;
                break;
            }
        }
        let evaluated_last = self
            .evals
            .last()
            .is_some_and(|(s, _)| *s == self.steps_done);
        if !evaluated_last && matches!(end, EndReason::Completed | EndReason::Stopped) {
            self.evaluate(learner, self.steps_done, sink)?;
        }
        if !self.pending.is_empty() {
            let records = std::mem::take(&mut self.pending);
            sink(TrainEvent::Records {
                attempt: self.attempt,
                records,
            });
        }
        // Alerts raised on the last records still belong in this log.
        while let Ok(Control::Alert(alert)) = control.try_recv() {
            writeln!(self.log, "{}", json!({ "alert": alert }))?;
        }
        self.log.flush()?;
        Ok((self.summary(end), next))
    }

    fn summary(&self, end: EndReason) -> RunSummary {
        let last = self.evals.last().map(|(_, e)| e);
        let best_acc = self
            .evals
            .iter()
            .filter_map(|(_, e)| e.acc)
            .fold(None, |best: Option<f64>, a| {
                Some(best.map_or(a, |b| b.max(a)))
            });
        let best_loss = self
            .evals
            .iter()
            .map(|(_, e)| e.loss)
            .filter(|l| l.is_finite())
            .fold(None, |best: Option<f64>, l| {
                Some(best.map_or(l, |b| b.min(l)))
            });
        let train_s = self.train_time.as_secs_f64();
        RunSummary {
            policy: self.policy.to_string(),
            final_acc: last.and_then(|e| e.acc),
            best_acc,
            final_top5: last.and_then(|e| e.top5),
            eval_loss: last.map(|e| e.loss),
            best_eval_loss: best_loss,
            confidence_mean: last.and_then(|e| e.confidence_mean),
            confidence_std: last.and_then(|e| e.confidence_std),
            final_train_loss: self.last_train_loss,
            steps: self.steps_done,
            steps_to_target: self.steps_to_target,
            wall_s: self.started.elapsed().as_secs_f64(),
            steps_per_s: if train_s > 0.0 {
                self.steps_done as f64 / train_s
            } else {
                0.0
            },
            log: self.log_path.display().to_string(),
            end,
        }
    }
}

/// Metric-driven policies in "max" mode watch accuracy; the rest watch eval loss.
fn policy_maximizes(policy: &Policy) -> bool {
    policy.to_string().contains("mode=max")
}

/// A record as the JSONL line `lrtop attach` (and Python) reads back.
/// Non-finite values are written as Python's `json.dumps` writes them
/// (`NaN`, `Infinity`): JSON has no such numbers and null would lose them.
pub fn record_line(rec: &Record) -> String {
    let mut fields: Vec<(&str, f64)> = Vec::new();
    if let Some(s) = rec.step {
        fields.push(("step", s as f64));
    }
    for (k, v) in [
        ("epoch", rec.epoch),
        ("lr", rec.lr),
        ("loss", rec.loss),
        ("grad_norm", rec.grad_norm),
    ] {
        if let Some(v) = v {
            fields.push((k, v));
        }
    }
    for (k, v) in &rec.extra {
        fields.push((k, *v));
    }
    if let Some(v) = rec.time {
        fields.push(("time", v));
    }
    let mut line = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        line.push_str(&Value::String(k.to_string()).to_string());
        line.push_str(": ");
        line.push_str(&number(*v));
    }
    line.push('}');
    line
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_keep_non_finite_values_like_python() {
        let rec = Record {
            step: Some(3),
            lr: Some(0.1),
            loss: Some(f64::NAN),
            grad_norm: Some(f64::INFINITY),
            extra: vec![("eval_acc".into(), 0.5)],
            ..Default::default()
        };
        assert_eq!(
            record_line(&rec),
            r#"{"step": 3, "lr": 0.1, "loss": NaN, "grad_norm": Infinity, "eval_acc": 0.5}"#
        );
    }
}
