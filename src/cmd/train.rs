//! `lrtop train`: in-process training with the dashboard (switch policies
//! with the keyboard, earlier runs stay as ghost curves) or headless.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use super::dashboard::{self, print_alert};
use super::usage;
use crate::cli::{ModelArgs, TrainArgs};
use crate::config::Config;
use crate::error::{CheckFailed, EXIT_DIVERGED};
use crate::format::format_value;
use crate::metrics::RunId;
use crate::metrics::record::{LOSS, LR};
use crate::policy::Policy;
use crate::session::{NewAlerts, Session, SessionEvent};
use crate::train::trainer::EndReason;
use crate::train::trainer::{self, Control, RunPlan, RunSummary, TrainEvent};
use crate::train::{DeviceSpec, LearnerConfig, ModelSpec, OptimizerKind, TaskSpec};
use crate::tui::app::{App, Command};
use crate::tui::event_loop::{self, Driver};
use crate::tui::keys;
use crate::tui::train_view::{self, TrainView};

/// Turns the model options into the learner's configuration; bad values are usage errors.
pub fn learner_config(args: &ModelArgs) -> Result<LearnerConfig> {
    let mut task: TaskSpec = args
        .task
        .parse()
        .map_err(|e| usage(format!("--task: {e}")))?;
    if let Some(file) = &args.val {
        match &mut task {
            TaskSpec::Instruct {
                val: val @ None, ..
            } => *val = Some(file.clone()),
            TaskSpec::Instruct { val: Some(_), .. } => {
                return Err(usage(
                    "--val and --task instruct=FILE,val=FILE both name a validation file",
                ));
            }
            _ => {
                return Err(usage(
                    "--val FILE is for instruction tasks (--task instruct=FILE.jsonl)",
                ));
            }
        }
    }
    let mut model: ModelSpec = args
        .model
        .parse()
        .map_err(|e| usage(format!("--model: {e}")))?;
    let options = [
        ("hidden", args.hidden.clone()),
        ("dim", args.dim.map(|v| v.to_string())),
        ("layers", args.layers.map(|v| v.to_string())),
        ("heads", args.heads.map(|v| v.to_string())),
        ("kv_heads", args.kv_heads.map(|v| v.to_string())),
    ];
    for (key, value) in options {
        if let Some(value) = value {
            model
                .set(key, &value)
                .map_err(|e| usage(format!("--{}: {e}", key.replace('_', "-"))))?;
        }
    }
    if let Some(text) = &args.lora {
        let lora = crate::train::models::LoraSpec::parse(text)
            .map_err(|e| usage(format!("--lora: {e}")))?;
        match &mut model {
            ModelSpec::Llama(l) => l.lora = Some(lora),
            other => {
                return Err(usage(format!(
                    "--lora puts adapters on a Llama: use it with --model llama, not {}",
                    other.name()
                )));
            }
        }
    }
    let optimizer: OptimizerKind = args
        .optimizer
        .parse()
        .map_err(|e| usage(format!("--optimizer: {e}")))?;
    let precision: crate::train::Precision = args
        .dtype
        .parse()
        .map_err(|e| usage(format!("--dtype: {e}")))?;
    if precision != crate::train::Precision::F32 && !matches!(model, ModelSpec::Llama(_)) {
        return Err(usage(format!(
            "--dtype {precision} is for --model llama; {} trains in f32",
            model.name()
        )));
    }
    let device = DeviceSpec::parse(&args.device).map_err(|e| usage(format!("--device: {e}")))?;
    if args.batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    if !(1..=65_536).contains(&args.grad_accum) {
        return Err(usage(format!(
            "--grad-accum must be from 1 to 65536, got {}",
            args.grad_accum
        )));
    }
    if args.seq_len < 2 {
        return Err(usage("--seq-len must be at least 2"));
    }
    if !(0.0..1.0).contains(&args.momentum) {
        return Err(usage(format!(
            "--momentum must be in [0, 1), got {}",
            args.momentum
        )));
    }
    if !(args.weight_decay >= 0.0 && args.weight_decay.is_finite()) {
        return Err(usage(format!(
            "--weight-decay must be >= 0, got {}",
            args.weight_decay
        )));
    }
    if let Some(c) = args.clip_grad_norm
        && !(c > 0.0 && c.is_finite())
    {
        return Err(usage(format!("--clip-grad-norm must be > 0, got {c}")));
    }
    if args.threads == Some(0) {
        return Err(usage("--threads must be at least 1"));
    }
    check_memory(
        &model,
        &task,
        &device,
        args.init.as_deref(),
        args.batch_size,
        args.seq_len,
    )?;
    Ok(LearnerConfig {
        task,
        model,
        optimizer,
        weight_decay: args.weight_decay,
        momentum: args.momentum,
        clip_grad_norm: args.clip_grad_norm,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        seq_len: args.seq_len,
        seed: args.seed,
        device,
        init: args.init.clone(),
        tokenizer: args.tokenizer.clone().or_else(|| {
            let found = args.init.as_ref()?.join("tokenizer.json");
            found.is_file().then_some(found)
        }),
        threads: args.threads,
        precision,
        ..LearnerConfig::default()
    })
}

/// A cosine decay with 5% warmup, at an LR that suits the optimizer.
pub fn default_policy(optimizer: OptimizerKind, steps: u64) -> String {
    let lr = match optimizer {
        OptimizerKind::AdamW => "0.001",
        OptimizerKind::Sgd => "0.1",
        OptimizerKind::Momentum | OptimizerKind::Nesterov => "0.05",
    };
    let steps = steps.max(1);
    format!(
        "cosine(lr={lr},num_warmup_steps={},num_training_steps={steps})",
        steps / 20
    )
}

pub fn parse_policy(spec: &str) -> Result<Policy> {
    Policy::parse(spec)
        .map_err(|e| anyhow::Error::new(e).context(format!("invalid --policy '{spec}'")))
}

/// `5GB`, `500MB`, `2GiB`, `123` (bytes), as transformers' `max_shard_size`
/// reads them (GB = 10^9, GiB = 2^30); at least one byte.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    let bytes = number * scale;
    (1.0..1e18).contains(&bytes).then_some(bytes as u64)
}

/// `--log` and `--save` checked before training: not a directory (for a
/// LoRA run `--save` is a folder: not a file), not the same file, in a
/// directory lrtop can write (or create).
fn check_output_paths(log: Option<&Path>, save: Option<&Path>, save_folder: bool) -> Result<()> {
    if let (Some(l), Some(s)) = (log, save)
        && (l == s
            || (l.exists() && std::fs::canonicalize(l).ok() == std::fs::canonicalize(s).ok()))
    {
        return Err(usage(format!(
            "--log and --save both name {}: the weights would overwrite the log",
            l.display()
        )));
    }
    for (flag, path) in [("--log", log), ("--save", save)] {
        let Some(path) = path else { continue };
        if flag == "--save" && save_folder {
            if path.is_file() {
                return Err(usage(format!(
                    "--save {} is a file; with --lora it names a folder for the PEFT adapter",
                    path.display()
                )));
            }
        } else if path.is_dir() {
            return Err(usage(format!(
                "{flag} {} is a directory; name a file",
                path.display()
            )));
        }
        // The nearest directory that exists must be writable.
        let mut dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        while !dir.exists() {
            dir = dir
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
        }
        if !writable(dir) {
            return Err(usage(format!(
                "{flag} {}: cannot write in {}",
                path.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

fn writable(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access(2) reads a NUL-terminated path and nothing else.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    }
    #[cfg(not(unix))]
    {
        !std::fs::metadata(dir)
            .map(|m| m.permissions().readonly())
            .unwrap_or(true)
    }
}

pub fn run_plan(args: &TrainArgs, interactive: bool) -> Result<RunPlan> {
    let steps = train_steps(args);
    if steps > 1_000_000_000 {
        return Err(usage(format!(
            "--steps {} is more than lrtop allows (1e9)",
            steps
        )));
    }
    if let Some(t) = args.target_acc
        && !(t > 0.0 && t <= 1.0)
    {
        return Err(usage(format!("--target-acc must be in (0, 1], got {t}")));
    }
    let lora = args.model.lora.is_some();
    check_output_paths(args.log.as_deref(), args.save.as_deref(), lora)?;
    if let Some(dir) = &args.save_hf {
        if !args.model.model.trim().starts_with("llama") {
            return Err(usage(format!(
                "--save-hf writes Llama checkpoints: use it with --model llama, not {}",
                args.model.model
            )));
        }
        if dir.is_file() {
            return Err(usage(format!(
                "--save-hf {} is a file; name a folder",
                dir.display()
            )));
        }
    }
    let max_shard_bytes = parse_size(&args.max_shard_size).ok_or_else(|| {
        usage(format!(
            "--max-shard-size '{}': expected a size such as 5GB, 500MB or 2GiB",
            args.max_shard_size
        ))
    })?;
    Ok(RunPlan {
        max_shard_bytes,
        steps,
        eval_every: args.eval_every.unwrap_or((steps / 10).max(1)),
        target_acc: args.target_acc,
        log: args.log.clone(),
        save: args.save.clone(),
        save_hf: args.save_hf.clone(),
        interactive,
        stop_on_divergence: !args.keep_going,
    })
}

/// Updates with the dashboard when `--steps` is not given: about a minute
/// of the default job on this project's 2-core machine.
const DASHBOARD_STEPS: u64 = 300_000;

/// `--steps`, or the default for the mode.
fn train_steps(args: &TrainArgs) -> u64 {
    args.steps.unwrap_or(if args.dashboard.headless {
        1000
    } else {
        DASHBOARD_STEPS
    })
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = Config::load()?;
    // A bad --theme is an error in every mode, not only with a screen.
    crate::tui::theme::Theme::load(
        args.dashboard.theme.as_deref().or(config.theme.as_deref()),
        crate::config::config_dir().as_deref(),
    )?;
    let learner = crate::train::process::prepare(learner_config(&args.model)?);
    let spec = args
        .policy
        .clone()
        .unwrap_or_else(|| default_policy(learner.optimizer, train_steps(&args)));
    let policy = parse_policy(&spec)?;
    let setup = dashboard::monitor_setup(&args.dashboard, &config)?;
    let session = Session::new(setup);
    if args.dashboard.headless {
        let plan = run_plan(&args, false)?;
        let note = memory_note(&args.model, &learner);
        return run_headless(
            note,
            learner,
            plan,
            policy,
            session,
            args.summary_out.as_deref(),
            &args.dashboard.fail_on,
        );
    }
    let plan = run_plan(&args, true)?;
    run_tui(learner, plan, policy, session, &args, &config)
}

/// A job's memory estimate (weights, gradients, optimizer state,
/// activations) and what it was computed for.
struct MemoryNeed {
    bytes: f64,
    what: String,
}

fn memory_need(
    model: &ModelSpec,
    task: &TaskSpec,
    init: Option<&Path>,
    batch: usize,
    seq_len: usize,
) -> MemoryNeed {
    use crate::train::memory::estimate_bytes;
    // A checkpoint's config.json, not the options, says how big the model
    // is (one whose config cannot be read fails later, with the reason);
    // the options' LoRA still decides what trains.
    let lora = match model {
        ModelSpec::Llama(l) => l.lora.clone(),
        _ => None,
    };
    let from_checkpoint = init.and_then(|dir| {
        let shape = crate::train::models::llama_config::read_config(dir).ok()?;
        let spec = crate::train::models::LlamaSpec {
            dim: shape.dim,
            layers: shape.layers,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            intermediate: Some(shape.intermediate),
            tie_embeddings: shape.tie_embeddings,
            lora: lora.clone(),
            ..crate::train::models::LlamaSpec::default()
        };
        Some((ModelSpec::Llama(spec), shape.vocab, dir))
    });
    let model = from_checkpoint.as_ref().map_or(model, |(m, _, _)| m);
    let (inputs, vocab) = match task {
        TaskSpec::Digits => (64, 0),
        TaskSpec::Mnist(_) => (784, 0),
        TaskSpec::Cifar10(_) => (3072, 0),
        TaskSpec::Tokens { vocab, .. } => (0, vocab.unwrap_or(65_536)),
        TaskSpec::Text(_) | TaskSpec::Instruct { .. } => (0, 256),
        #[allow(unreachable_patterns)]
        _ => (1024, 65_536),
    };
    let vocab = from_checkpoint.as_ref().map_or(vocab, |(_, v, _)| *v);
    let what = match &from_checkpoint {
        Some((ModelSpec::Llama(l), vocab, dir)) => format!(
            "the checkpoint {}: {} layers of {}, vocabulary {vocab}",
            dir.display(),
            l.layers,
            l.dim
        ),
        _ => format!("model {}", model.name()),
    };
    let what = match &lora {
        Some(l) => format!("{what}, LoRA r={}", l.rank),
        None => what,
    };
    MemoryNeed {
        bytes: estimate_bytes(model, batch, seq_len, inputs, vocab),
        what,
    }
}

/// Refuses a job whose estimated memory (weights, gradients, optimizer
/// state, activations) the machine cannot give, before allocating any.
fn check_memory(
    model: &ModelSpec,
    task: &TaskSpec,
    device: &DeviceSpec,
    init: Option<&Path>,
    batch: usize,
    seq_len: usize,
) -> Result<()> {
    use crate::train::memory::{available_bytes, human};
    let need = memory_need(model, task, init, batch, seq_len);
    // A GPU's memory is not the host's: only refuse the absurd there.
    let on_cpu =
        matches!(device, DeviceSpec::Cpu) || !cfg!(any(feature = "cuda", feature = "metal"));
    let limit = match (on_cpu, available_bytes()) {
        (true, Some(available)) => available * 0.9,
        _ => 2f64.powi(50),
    };
    if need.bytes > limit {
        return Err(usage(format!(
            "this job needs about {} (batch {batch}, seq-len {seq_len}, {}); {} available: use a smaller --batch-size or model",
            human(need.bytes),
            need.what,
            human(limit / 0.9)
        )));
    }
    Ok(())
}

/// The estimate, for the headless run's first lines.
fn memory_note(args: &ModelArgs, learner: &LearnerConfig) -> String {
    use crate::train::memory::{available_bytes, human};
    let need = memory_need(
        &learner.model,
        &learner.task,
        args.init.as_deref(),
        args.batch_size,
        args.seq_len,
    );
    let available = available_bytes().map_or("unknown".into(), human);
    format!(
        "memory: about {} for weights, gradients, optimizer state and activations (batch {}, {}); {available} available",
        human(need.bytes),
        args.batch_size,
        need.what
    )
}

fn summary_json(summary: &RunSummary) -> serde_json::Value {
    let mut value = serde_json::to_value(summary).unwrap_or_else(|_| json!({}));
    if let Some(map) = value.as_object_mut() {
        // Time to target: assume steady throughput between evaluations.
        let time_to_target = summary
            .steps_to_target
            .filter(|_| summary.steps > 0)
            .map(|s| summary.wall_s * s as f64 / summary.steps as f64);
        map.insert("time_to_target".into(), json!(time_to_target));
    }
    value
}

fn run_headless(
    memory_note: String,
    learner: LearnerConfig,
    plan: RunPlan,
    policy: Policy,
    mut session: Session,
    summary_out: Option<&Path>,
    fail_on: &str,
) -> Result<()> {
    let (control_tx, control_rx) = mpsc::channel::<Control>();
    let (event_tx, event_rx) = mpsc::channel::<TrainEvent>();
    let total = plan.steps;
    let handle = trainer::spawn(learner, plan, policy, control_rx, move |e| {
        event_tx.send(e).is_ok()
    });
    let interrupted = Arc::new(AtomicBool::new(false));
    crate::signals::install(crate::signals::SAVING, crate::signals::no_cleanup);
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("installing the signal handler")?;
    }
    let mut out = std::io::stdout();
    let mut run: Option<RunId> = None;
    let mut summary = None;
    let mut failure = None;
    let mut last_progress = Instant::now() - Duration::from_secs(10);
    let mut quit_sent = false;
    // Printed once the learner is built: a bad option's error comes first.
    let mut memory_note = Some(memory_note);
    loop {
        match event_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => {
                if matches!(event, TrainEvent::Notice(_) | TrainEvent::RunStarted { .. })
                    && let Some(note) = memory_note.take()
                {
                    eprintln!("note: {note}");
                }
                match &event {
                    TrainEvent::RunStarted {
                        policy, log, steps, ..
                    } => writeln!(
                        out,
                        "training {policy} for {steps} updates, log {}",
                        log.display()
                    )?,
                    TrainEvent::Notice(text) => eprintln!("note: {text}"),
                    TrainEvent::Sample { step, text, .. } => {
                        writeln!(out, "sample @{step}: {text}")?
                    }
                    TrainEvent::RunFinished { summary: s, .. } => summary = Some(s.clone()),
                    TrainEvent::Failed(e) => failure = Some(e.clone()),
                    TrainEvent::Records { .. } | TrainEvent::Paused(_) => {}
                }
                let has_eval = matches!(&event, TrainEvent::Records { records, .. }
                    if records.iter().any(|r| r.get("eval_loss").is_some()));
                let records = matches!(event, TrainEvent::Records { .. });
                let alerts = session.apply(event.into());
                run = session.training;
                let Some(id) = run else { continue };
                for (_, alert) in alerts {
                    print_alert(&mut out, &session.runs[id].label, &alert)?;
                    let _ = control_tx.send(Control::Alert(alert));
                }
                if records && (has_eval || last_progress.elapsed() >= Duration::from_secs(1)) {
                    writeln!(out, "{}", progress_line(&session, id, total))?;
                    last_progress = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if run.is_some() {
            crate::signals::test_freeze("train");
        }
        if interrupted.load(Ordering::Relaxed) && !quit_sent {
            eprintln!("interrupted: finishing the step and the log (again to quit now)");
            let _ = control_tx.send(Control::Quit);
            quit_sent = true;
        }
    }
    let _ = handle.join();
    if let Some(e) = failure {
        // Before any run started, the data, model, device or checkpoint the
        // options name could not be set up: a usage error (exit code 2).
        if run.is_none() {
            return Err(usage(format!("cannot start training: {e}")));
        }
        return Err(anyhow::anyhow!(e)).context("training failed");
    }
    let Some(summary) = summary else {
        return Err(anyhow::anyhow!("training ended without a summary"));
    };
    let value = summary_json(&summary);
    if let Some(path) = summary_out {
        std::fs::write(path, format!("{value}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    writeln!(out, "{value}")?;
    out.flush()?;
    if quit_sent {
        std::process::exit(130);
    }
    if fail_on != "never" && matches!(summary.end, EndReason::Diverged) {
        return Err(CheckFailed {
            code: EXIT_DIVERGED,
            message: format!(
                "training diverged{} (--fail-on never to exit 0 anyway)",
                summary
                    .end_why
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            ),
        }
        .into());
    }
    super::attach::check(&session, fail_on)
}

fn progress_line(session: &Session, run: RunId, total: u64) -> String {
    let state = &session.runs[run];
    let mut parts = vec![format!(
        "step {}/{total}",
        state.data.last_step().unwrap_or(0)
    )];
    if let Some(lr) = state.last(LR) {
        parts.push(format!("lr {}", format_value(lr)));
    }
    if let Some(loss) = state.last(LOSS) {
        parts.push(format!("loss {}", format_value(loss)));
    }
    for name in ["eval_loss", "eval_acc"] {
        if let Some(v) = state.last(name) {
            parts.push(format!("{name} {}", format_value(v)));
        }
    }
    if let Some(rate) = state.steps_per_second() {
        parts.push(format!("{} steps/s", format_value(rate)));
    }
    parts.join(" · ")
}

/// Train mode around the dashboard: keys become trainer controls, alerts
/// go back to the trainer (into its log, and a critical one may stop it).
struct TrainDriver {
    control: Sender<Control>,
}

impl Driver for TrainDriver {
    fn command(&mut self, command: Command, app: &mut App) -> bool {
        let message = match command {
            Command::Quit => {
                let _ = self.control.send(Control::Quit);
                return false;
            }
            Command::Restart(spec) => match Policy::parse(&spec) {
                Ok(p) => {
                    app.notice = Some(format!("restarting with {p}"));
                    Control::Restart(p)
                }
                Err(e) => {
                    app.notice = Some(format!("invalid policy: {}", e.message));
                    return true;
                }
            },
            Command::TogglePause => Control::TogglePause,
            Command::Stop => Control::Stop,
            Command::Checkpoint => Control::Checkpoint,
        };
        let _ = self.control.send(message);
        true
    }

    fn alerts(&mut self, alerts: &NewAlerts, app: &mut App) {
        // Only the current run's: an earlier run's alerts are history.
        for (run, alert) in alerts {
            if Some(*run) == app.session.training {
                let _ = self.control.send(Control::Alert(alert.clone()));
            }
        }
    }
}

fn run_tui(
    learner: LearnerConfig,
    plan: RunPlan,
    policy: Policy,
    session: Session,
    args: &TrainArgs,
    config: &Config,
) -> Result<()> {
    let theme = crate::tui::theme::Theme::load(
        args.dashboard.theme.as_deref().or(config.theme.as_deref()),
        crate::config::config_dir().as_deref(),
    )?;
    let title = format!("lrtop train · {} · {}", learner.task, learner.model);
    let mut app = App::new(session, theme, title);
    if let Some(s) = config.smoothing {
        app.view.smoothing = s.clamp(0.0, 0.99);
    }
    app.train = Some(TrainView::new(plan.steps, &policy));
    app.extra_keys = keys::help_rows(train_view::KEYS);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SessionEvent>();
    let (control_tx, control_rx) = mpsc::channel::<Control>();
    let handle = trainer::spawn(learner, plan, policy, control_rx, move |event| {
        tx.send(event.into()).is_ok()
    });
    let mut driver = TrainDriver {
        control: control_tx.clone(),
    };
    // A signal stops training the ordinary way; past the grace (a step
    // that does not end) or at a second signal, the terminal is restored
    // and the process exits.
    crate::signals::install(crate::signals::SAVING, crate::tui::terminal::restore);
    let result = event_loop::run_fullscreen(&mut app, rx, false, &mut driver);
    let _ = control_tx.send(Control::Quit);
    // The trainer finishes the current update and flushes its log.
    let _ = handle.join();
    for run in &app.session.runs {
        println!("{}", dashboard::status_line(run));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_transformers_reads_them() {
        assert_eq!(parse_size("5GB"), Some(5_000_000_000));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1.5 kb"), Some(1500));
        assert_eq!(parse_size("123"), Some(123));
        for bad in ["", "GB", "0", "-1GB", "5 parsecs", "1e400"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
