//! `lrtop tune`: expand a search space into trials, run them (child
//! processes of this binary, or a Slurm job array), and rank them by an
//! objective. With the dashboard every trial's curves arrive live next to a
//! trials table; headless, progress goes to stderr and the result to stdout.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde_json::json;

use super::usage;
use crate::cli::model_flags;
use crate::cli::{Executor, OutputFormat, SearchKind, TuneArgs, TuneCommand};
use crate::config::Config;
use crate::ingest::{self, FieldMap, Follower, Source};
use crate::session::{Session, SessionEvent};
use crate::tui::app::{App, Command};
use crate::tui::event_loop::{self, Driver};
use crate::tui::keys;
use crate::tui::tune_view::{self, TuneView};
use crate::tune::board::TrialBoard;
use crate::tune::halving::{self, HalvingReport};
use crate::tune::local::{self, LocalExecutor, TuneEvent};
use crate::tune::manifest::{Manifest, ManifestTrial};
use crate::tune::report::{self, TuneReport};
use crate::tune::results::{Objective, Trial, rank};
use crate::tune::slurm;
use crate::tune::space::{self, Search, SpaceFile};
use crate::tune::trial::{Job, TrainTemplate, threads_per_trial};

/// Random-search trials when neither --trials nor the space file says.
const DEFAULT_RANDOM_TRIALS: usize = 20;

pub fn run(args: TuneArgs) -> Result<()> {
    if let Some(TuneCommand::Collect {
        dir,
        objective,
        format,
        watch,
    }) = &args.command
    {
        if *watch {
            watch_dir(dir, *objective, &args.dashboard)?;
        }
        return collect(dir, *objective, *format);
    }
    if let Some(TuneCommand::NextRung { dir }) = &args.command {
        return next_rung(dir);
    }
    let plan = plan(&args)?;
    match args.executor {
        Executor::Slurm => emit_slurm(&args, &plan),
        Executor::Local if args.emit.is_some() => Err(usage(
            "--emit DIR writes a job array: use it with --executor slurm",
        )),
        Executor::Local => run_local(&args, plan),
    }
}

/// Everything the options decide, checked.
struct Plan {
    specs: Vec<String>,
    search: Search,
    template: TrainTemplate,
    steps: u64,
    objective: Objective,
    halving: Option<usize>,
    min_steps: u64,
    verify: bool,
}

fn search_name(search: Search) -> &'static str {
    match search {
        Search::Grid => "grid",
        Search::Random => "random",
    }
}

fn plan(args: &TuneArgs) -> Result<Plan> {
    super::train::learner_config(&args.model)?;
    if args.steps == 0 || args.steps > 1_000_000_000 {
        return Err(usage(format!(
            "--steps must be in 1..=1e9, got {}",
            args.steps
        )));
    }
    if let Some(t) = args.target_acc
        && !(t > 0.0 && t <= 1.0)
    {
        return Err(usage(format!("--target-acc must be in (0, 1], got {t}")));
    }
    if args.objective.needs_target() && args.target_acc.is_none() {
        return Err(usage(format!(
            "--objective {} needs --target-acc",
            args.objective.as_str()
        )));
    }
    if args.jobs == Some(0) {
        return Err(usage("--jobs must be at least 1"));
    }
    let eval_every = args.eval_every.unwrap_or((args.steps / 10).max(1));
    let mut templates = args.policies.clone();
    let mut file = None;
    if let Some(path) = &args.space {
        let space = SpaceFile::load(path).map_err(usage)?;
        templates.extend(
            space
                .templates()
                .map_err(|e| usage(format!("{}: {e}", path.display())))?,
        );
        file = Some(space);
    }
    if templates.is_empty() {
        return Err(usage(
            "nothing to tune: give --policy SPEC (repeatable) or --space FILE",
        ));
    }
    let file_search = match file.as_ref().and_then(|f| f.search.as_deref()) {
        None => None,
        Some("grid") => Some(Search::Grid),
        Some("random") => Some(Search::Random),
        Some(other) => {
            return Err(usage(format!(
                "search = \"{other}\" in the space file: use \"grid\" or \"random\""
            )));
        }
    };
    let all_sets = templates
        .iter()
        .map(|t| space::Space::parse(t).map(|s| s.is_grid()))
        .collect::<Result<Vec<bool>, String>>()
        .map_err(|e| usage(format!("search space: {e}")))?
        .into_iter()
        .all(|g| g);
    let search = match args.search {
        Some(SearchKind::Grid) => Search::Grid,
        Some(SearchKind::Random) => Search::Random,
        None => file_search.unwrap_or(if all_sets {
            Search::Grid
        } else {
            Search::Random
        }),
    };
    if search == Search::Grid && args.trials.is_some() {
        return Err(usage(
            "--trials sets the size of a random search: add --search random",
        ));
    }
    let trials = args
        .trials
        .or(file.as_ref().and_then(|f| f.trials))
        .unwrap_or(DEFAULT_RANDOM_TRIALS);
    if trials == 0 {
        return Err(usage("--trials must be at least 1"));
    }
    let seed = args
        .search_seed
        .or(file.as_ref().and_then(|f| f.seed))
        .unwrap_or(args.model.seed);
    let specs = space::expand(&templates, search, trials, seed)
        .map_err(|e| usage(format!("search space: {e}")))?;
    if let Some(spec) = specs.iter().find(|s| s.contains(['\n', '\r'])) {
        return Err(usage(format!(
            "policy spec {spec:?} spans lines: write it on one line"
        )));
    }
    if let Some(eta) = args.halving {
        if eta < 2 {
            return Err(usage(format!(
                "--halving ETA must be at least 2, got {eta}"
            )));
        }
        if search != Search::Grid {
            return Err(usage("--halving prunes a grid: use --search grid"));
        }
        if specs.len() < 2 {
            return Err(usage("--halving needs at least two trials"));
        }
    }
    Ok(Plan {
        search,
        template: TrainTemplate {
            model_flags: model_flags(&args.model),
            eval_every,
            target_acc: args.target_acc,
        },
        steps: args.steps,
        objective: args.objective,
        halving: args.halving,
        min_steps: args
            .min_steps
            .unwrap_or(if eval_every > 0 {
                eval_every
            } else {
                args.steps / 10
            })
            .max(1),
        verify: args.halving_verify,
        specs,
    })
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn local_entries(specs: &[String]) -> Vec<ManifestTrial> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| ManifestTrial {
            spec: spec.clone(),
            log: format!("trial-{i}.jsonl"),
            result: format!("trial-{i}.summary.json"),
        })
        .collect()
}

/// What the driver produced.
struct Outcome {
    trials: Vec<Trial>,
    halving: Option<HalvingReport>,
    full_grid: Option<Vec<Trial>>,
}

fn jobs_for(specs: &[(usize, &String)], steps: u64, dir: &Path, first_id: usize) -> Vec<Job> {
    specs
        .iter()
        .enumerate()
        .map(|(k, &(index, spec))| Job {
            id: first_id + k,
            index,
            spec: spec.clone(),
            steps,
            log: dir.join(format!("trial-{index}.jsonl")),
            summary: dir.join(format!("trial-{index}.summary.json")),
        })
        .collect()
}

/// Runs the grid or random search, or successive halving (then, with
/// `verify`, the full grid too).
fn drive(
    plan: &Plan,
    executor: &LocalExecutor,
    dir: &Path,
    sink: &(dyn Fn(TuneEvent) + Sync),
) -> Outcome {
    let all: Vec<(usize, &String)> = plan.specs.iter().enumerate().collect();
    let Some(eta) = plan.halving else {
        let mut trials = executor.run(&jobs_for(&all, plan.steps, dir, 0), sink);
        rank(&mut trials, plan.objective);
        return Outcome {
            trials,
            halving: None,
            full_grid: None,
        };
    };
    let mut next_id = 0;
    let mut rung = 0;
    let (trials, mut report) = halving::run(
        &plan.specs,
        eta,
        plan.steps,
        plan.min_steps,
        plan.objective,
        |budget, alive| {
            let chosen: Vec<(usize, &String)> =
                alive.iter().map(|&i| (i, &plan.specs[i])).collect();
            let jobs = jobs_for(&chosen, budget, &dir.join(format!("rung-{rung}")), next_id);
            next_id += jobs.len();
            rung += 1;
            executor.run(&jobs, sink)
        },
    );
    let mut full_grid = None;
    if plan.verify && !executor.stopped() {
        let mut full = executor.run(
            &jobs_for(&all, plan.steps, &dir.join("full"), next_id),
            sink,
        );
        rank(&mut full, plan.objective);
        report.verify(&full);
        full_grid = Some(full);
    }
    Outcome {
        trials,
        halving: Some(report),
        full_grid,
    }
}

fn run_local(args: &TuneArgs, plan: Plan) -> Result<()> {
    let id = format!("tune-{}", unix_millis());
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&id));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(cores);
    let threads = args
        .model
        .threads
        .unwrap_or_else(|| threads_per_trial(cores, jobs.min(plan.specs.len())));
    let executor = LocalExecutor {
        exe: std::env::current_exe().context("finding the lrtop binary")?,
        template: plan.template.clone(),
        jobs,
        threads,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let mut manifest = Manifest {
        id: id.clone(),
        executor: "local".into(),
        search: search_name(plan.search).into(),
        objective: plan.objective,
        steps: plan.steps,
        train: plan.template.clone(),
        halving: plan.halving,
        min_steps: None,
        slurm: None,
        trials: local_entries(&plan.specs),
    };
    manifest.write(&dir)?;
    let headless = args.dashboard.headless
        || args.format == OutputFormat::Json
        || !std::io::stdout().is_terminal();
    eprintln!(
        "tune {id}: {} trials, {} at a time, {threads} thread{} each, logs in {}",
        plan.specs.len(),
        jobs.min(plan.specs.len()),
        if threads == 1 { "" } else { "s" },
        dir.display()
    );
    let outcome = if headless {
        // The first signal stops the trials the ordinary way (their results
        // so far are reported); a second, or a stop that takes too long,
        // exits at once, killing the trials still running.
        crate::signals::install(crate::signals::SAVING, local::kill_running_trials);
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(signal, Arc::clone(&executor.stop))
                .context("installing the signal handler")?;
        }
        let counts = (AtomicUsize::new(0), AtomicUsize::new(0));
        drive(&plan, &executor, &dir, &|event| progress(event, &counts))
    } else {
        run_tui(args, &plan, &executor, &dir)?
    };
    // Quitting the dashboard after the last trial interrupts nothing.
    let unfinished = |trials: &[Trial]| {
        trials
            .iter()
            .any(|t| t.status == local::INTERRUPTED || t.status == local::NOT_RUN)
    };
    let interrupted = executor.stopped()
        && (unfinished(&outcome.trials)
            || outcome.full_grid.as_deref().is_some_and(unfinished)
            || (plan.verify && outcome.full_grid.is_none()));
    if let Some(h) = &outcome.halving {
        // Point each trial at the files of the highest rung it reached.
        for (r, rung) in h.rungs.iter().enumerate() {
            for &i in &rung.trials {
                manifest.trials[i].log = format!("rung-{r}/trial-{i}.jsonl");
                manifest.trials[i].result = format!("rung-{r}/trial-{i}.summary.json");
            }
        }
    }
    manifest.write(&dir)?;
    let report = TuneReport {
        id,
        dir: dir.display().to_string(),
        objective: plan.objective,
        search: search_name(plan.search).into(),
        target_acc: plan.template.target_acc,
        steps: plan.steps,
        best: TuneReport::pick_best(&outcome.trials),
        trials: outcome.trials,
        halving: outcome.halving,
        full_grid: outcome.full_grid,
        interrupted,
        partial: false,
    };
    print_report(&report, args.format)?;
    if interrupted {
        std::process::exit(130);
    }
    if report.best.is_none() {
        return Err(anyhow::anyhow!(
            "no trial finished{}",
            report
                .trials
                .first()
                .map(|t| format!(" (trial #{}: {})", t.index, t.status))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

fn print_report(report: &TuneReport, format: OutputFormat) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(report)?)?,
        OutputFormat::Text => write!(out, "{}", report::text(report))?,
    }
    out.flush()?;
    Ok(())
}

/// Headless progress on stderr: one line per batch queued (the grid, or a
/// rung) and per finished trial, counted within the batch.
fn progress(event: TuneEvent, (done, total): &(AtomicUsize, AtomicUsize)) {
    match event {
        TuneEvent::Queued(jobs) => {
            done.store(0, Ordering::SeqCst);
            total.store(jobs.len(), Ordering::SeqCst);
            if let Some(first) = jobs.first() {
                eprintln!(
                    "queued {} trial{} of {} updates",
                    jobs.len(),
                    if jobs.len() == 1 { "" } else { "s" },
                    first.steps
                );
            }
        }
        TuneEvent::Started { .. } | TuneEvent::Ended => {}
        TuneEvent::Finished { trial, .. } => {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            let total = total.load(Ordering::SeqCst);
            let acc = trial
                .final_acc
                .map(|a| format!(" · acc {a:.4}"))
                .unwrap_or_default();
            let target = trial
                .steps_to_target
                .map(|s| format!(" · target at {s}"))
                .unwrap_or_default();
            eprintln!(
                "[{n}/{total}] #{} {}{acc}{target} · {}",
                trial.index, trial.status, trial.spec
            );
        }
    }
}

/// Tune mode around the dashboard: a trial that starts gets a follower of
/// its log (its curves arrive live); quitting stops the trials.
struct TuneDriver<'a> {
    events: tokio::sync::mpsc::UnboundedSender<SessionEvent>,
    followers: Vec<Follower>,
    stop: &'a AtomicBool,
}

impl Driver for TuneDriver<'_> {
    fn command(&mut self, command: Command, _app: &mut App) -> bool {
        if matches!(command, Command::Quit) {
            self.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn before(&mut self, event: &SessionEvent, app: &App) {
        let SessionEvent::Tune(TuneEvent::Started { job }) = event else {
            return;
        };
        let Some(board) = &app.session.trials else {
            return;
        };
        let Some(row) = board.row_of_job(*job).map(|r| &board.rows[r]) else {
            return;
        };
        let tx = self.events.clone();
        self.followers.push(ingest::follow(
            row.run,
            Source::file(row.job.log.clone()),
            FieldMap::default(),
            move |event| tx.send(event.into()).is_ok(),
        ));
    }
}

fn run_tui(args: &TuneArgs, plan: &Plan, executor: &LocalExecutor, dir: &Path) -> Result<Outcome> {
    let title = format!(
        "lrtop tune · {} trials · {} · {}",
        plan.specs.len(),
        args.model.task,
        args.model.model
    );
    tune_dashboard(
        title,
        &args.dashboard,
        TrialBoard::new(plan.objective, plan.steps),
        &executor.stop,
        |sink| drive(plan, executor, dir, sink),
    )
}

/// The tune dashboard around `drive`, which sends the tune's events and
/// returns what it found; quitting sets `stop`, which `drive` must heed.
fn tune_dashboard<T: Send>(
    title: String,
    dashboard: &crate::cli::DashboardArgs,
    board: TrialBoard,
    stop: &AtomicBool,
    drive: impl FnOnce(&(dyn Fn(TuneEvent) + Sync)) -> T + Send,
) -> Result<T> {
    let config = Config::load()?;
    let setup = super::dashboard::monitor_setup(dashboard, &config)?;
    let theme = crate::tui::theme::Theme::load(
        dashboard.theme.as_deref().or(config.theme.as_deref()),
        crate::config::config_dir().as_deref(),
    )?;
    let session = Session::new(setup).with_trials(board);
    let mut app = App::new(session, theme, title);
    if let Some(s) = config.smoothing {
        app.view.smoothing = s.clamp(0.0, 0.99);
    }
    app.tune = Some(TuneView::new());
    app.extra_keys = keys::help_rows(tune_view::KEYS);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SessionEvent>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let mut terminal = crate::tui::terminal::enter(true).context("opening the terminal")?;
    // The event loop quits at a signal; past the grace (or at a second
    // one) the terminal is restored and the trials killed.
    crate::signals::install(crate::signals::SAVING, restore_and_kill_trials);
    let mut tune_driver = TuneDriver {
        events: tx.clone(),
        followers: Vec::new(),
        stop,
    };
    let (result, outcome) = std::thread::scope(|scope| {
        let driver_tx = tx.clone();
        let driver = scope.spawn(move || {
            let sink_tx = driver_tx.clone();
            let sink = move |event: TuneEvent| {
                let _ = sink_tx.send(event.into());
            };
            let outcome = drive(&sink);
            let _ = driver_tx.send(TuneEvent::Ended.into());
            outcome
        });
        drop(tx);
        let result = runtime.block_on(event_loop::run(
            &mut terminal,
            &mut app,
            rx,
            false,
            &mut tune_driver,
        ));
        // Quitting stops the trials; the driver returns once they are killed.
        stop.store(true, Ordering::Relaxed);
        crate::tui::terminal::restore();
        let outcome = driver.join();
        (result, outcome)
    });
    for follower in tune_driver.followers {
        follower.stop();
    }
    result?;
    outcome.map_err(|_| anyhow::anyhow!("the tune driver panicked"))
}

/// A forced exit from the tune dashboard.
fn restore_and_kill_trials() {
    local::kill_running_trials();
    crate::tui::terminal::restore();
}

fn emit_slurm(args: &TuneArgs, plan: &Plan) -> Result<()> {
    let Some(dir) = &args.emit else {
        return Err(usage(
            "--executor slurm needs --emit DIR (where to write the job array)",
        ));
    };
    if plan.verify {
        return Err(usage(
            "--halving-verify runs the full grid after the rungs: use the local executor",
        ));
    }
    if dir.join(crate::tune::manifest::FILE_NAME).exists() {
        return Err(usage(format!(
            "--emit {} already holds a tune ({}): choose another folder or remove it",
            dir.display(),
            crate::tune::manifest::FILE_NAME
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    if dir.to_string_lossy().contains(char::is_whitespace) {
        return Err(usage(format!(
            "--emit {}: #SBATCH lines cannot hold a path with spaces",
            dir.display()
        )));
    }
    let workdir = std::env::current_dir().context("reading the current directory")?;
    let exe = std::env::current_exe().context("finding the lrtop binary")?;
    let shape = slurm::ArrayShape {
        cpus: args.model.threads.unwrap_or(1),
        concurrent: args.jobs,
    };
    let manifest = Manifest {
        id: format!("tune-{}", unix_millis()),
        executor: "slurm".into(),
        search: search_name(plan.search).into(),
        objective: plan.objective,
        steps: plan.steps,
        train: plan.template.clone(),
        halving: plan.halving,
        min_steps: plan.halving.map(|_| plan.min_steps),
        slurm: Some(crate::tune::manifest::SlurmSettings {
            cpus: shape.cpus,
            concurrent: shape.concurrent,
            workdir: workdir.clone(),
            exe: exe.clone(),
        }),
        trials: slurm::entries(&plan.specs),
    };
    if let Some(eta) = plan.halving {
        return emit_slurm_halving(&manifest, &dir, eta, args.format);
    }
    slurm::emit(&manifest, &dir, &workdir, &exe, shape, &[])?;
    let script = dir.join(slurm::SCRIPT);
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => writeln!(
            out,
            "{}",
            json!({
                "dir": dir.display().to_string(),
                "script": script.display().to_string(),
                "trials": plan.specs,
            })
        )?,
        OutputFormat::Text => {
            writeln!(
                out,
                "wrote {} trials to {}",
                plan.specs.len(),
                dir.display()
            )?;
            writeln!(out, "submit:  sbatch {}", script.display())?;
            writeln!(out, "watch:   lrtop attach {}", dir.display())?;
            writeln!(out, "rank:    lrtop tune collect {}", dir.display())?;
        }
    }
    Ok(())
}

/// `--executor slurm --halving`: the tune's manifest, its trials and a
/// `submit.sh` that runs `next-rung` (rung 0 and the job after it).
fn emit_slurm_halving(
    manifest: &Manifest,
    dir: &Path,
    eta: usize,
    format: OutputFormat,
) -> Result<()> {
    let settings = manifest
        .slurm
        .as_ref()
        .context("a Slurm manifest has its settings")?;
    let tasks = dir.join(slurm::TASKS);
    std::fs::create_dir_all(&tasks).with_context(|| format!("creating {}", tasks.display()))?;
    slurm::write_trials(manifest, dir)?;
    let submit = format!(
        "#!/bin/bash\n\
         # Successive halving (eta {eta}) on Slurm: submits rung 0 and a job that,\n\
         # when the rung ends, ranks it and submits the next rung and the job after it.\n\
         DEFAULT_LRTOP={exe}\n\
         exec \"${{LRTOP:-$DEFAULT_LRTOP}}\" tune next-rung {dir}\n",
        exe = slurm::quote(&settings.exe.display().to_string()),
        dir = slurm::quote(&dir.display().to_string()),
    );
    slurm::write_file(dir, SUBMIT, &submit)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.join(SUBMIT), std::fs::Permissions::from_mode(0o755));
    }
    manifest.write(dir)?;
    let budgets = crate::tune::halving::budgets(
        manifest.trials.len(),
        eta,
        manifest.steps,
        manifest.min_steps.unwrap_or(1),
    );
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => writeln!(
            out,
            "{}",
            json!({
                "dir": dir.display().to_string(),
                "submit": dir.join(SUBMIT).display().to_string(),
                "trials": manifest.trials.iter().map(|t| &t.spec).collect::<Vec<_>>(),
                "budgets": budgets,
            })
        )?,
        OutputFormat::Text => {
            let mut n = manifest.trials.len();
            let mut rungs = Vec::new();
            for (i, b) in budgets.iter().enumerate() {
                rungs.push(format!("{n}x{b}"));
                if i + 1 < budgets.len() {
                    n = crate::tune::halving::survivors(n, eta);
                }
            }
            writeln!(
                out,
                "wrote successive halving (eta {eta}) over {} trials to {}: rungs {} (at most)",
                manifest.trials.len(),
                dir.display(),
                rungs.join(", ")
            )?;
            writeln!(out, "submit:  bash {}", dir.join(SUBMIT).display())?;
            writeln!(out, "watch:   lrtop attach {}", dir.display())?;
            writeln!(out, "rank:    lrtop tune collect {}", dir.display())?;
        }
    }
    Ok(())
}

/// The script `--executor slurm --halving` writes to start the search.
const SUBMIT: &str = "submit.sh";

/// `lrtop tune next-rung DIR`: submit the next rung of a Slurm halving
/// tune once the one before has ended (what its dependent job runs).
fn next_rung(dir: &Path) -> Result<()> {
    use crate::tune::slurm_halving::{self, Advance};
    let manifest = read_manifest(dir)?;
    if manifest.executor != "slurm" || manifest.halving.is_none() {
        return Err(usage(format!(
            "{} is not a Slurm halving tune (--executor slurm --halving ETA --emit DIR)",
            dir.display()
        )));
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    match slurm_halving::advance(&manifest, &dir)? {
        Advance::Done => println!("halving finished: lrtop tune collect {}", dir.display()),
        Advance::Stopped { rung } => println!(
            "rung {rung} was cancelled: the search stops there (lrtop tune collect {} shows what finished)",
            dir.display()
        ),
        Advance::StillRunning { rung } => println!(
            "rung {rung} has trials waiting or running; the job that depends on it runs next-rung when it ends"
        ),
        Advance::Submitted {
            rung,
            trials,
            budget,
            job,
        } => println!(
            "submitted rung {rung}: {trials} trial{} of {budget} updates (job {job})",
            if trials == 1 { "" } else { "s" }
        ),
    }
    Ok(())
}

/// `collect --watch`: the tune dashboard over a directory whose trials
/// run elsewhere (a Slurm array, another lrtop), until the user quits.
fn watch_dir(
    dir: &Path,
    objective: Option<Objective>,
    dashboard: &crate::cli::DashboardArgs,
) -> Result<()> {
    if !std::io::stdout().is_terminal() || dashboard.headless {
        return Err(usage(
            "--watch opens the dashboard: run it in a terminal (without --headless)",
        ));
    }
    let mut manifest = read_manifest(dir)?;
    if manifest.executor == "local" && manifest.halving.is_some() {
        return Err(usage(
            "--watch follows grids and Slurm tunes; a local halving tune has its own dashboard while it runs",
        ));
    }
    // A halving search is replayed by the objective that chose its rungs.
    if let Some(o) = objective.filter(|_| manifest.halving.is_none()) {
        manifest.objective = o;
    }
    let title = format!(
        "lrtop tune collect · {} trials · {}",
        manifest.trials.len(),
        dir.display()
    );
    let board = TrialBoard::new(manifest.objective, manifest.steps);
    let stop = AtomicBool::new(false);
    let mut watcher = crate::tune::watch::Watcher::new(manifest, dir);
    tune_dashboard(title, dashboard, board, &stop, |sink| {
        while !stop.load(Ordering::Relaxed) {
            for event in watcher.poll() {
                sink(event);
            }
            // Two seconds, in slices, so that quitting is prompt.
            for _ in 0..20 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    })
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    if !dir.join(crate::tune::manifest::FILE_NAME).is_file() {
        return Err(usage(format!(
            "{} has no {}: give the directory of `--emit` or of a local tune",
            dir.display(),
            crate::tune::manifest::FILE_NAME
        )));
    }
    Manifest::read(dir)
}

fn collect(dir: &Path, objective: Option<Objective>, format: OutputFormat) -> Result<()> {
    let manifest = read_manifest(dir)?;
    let objective = objective.unwrap_or(manifest.objective);
    if manifest.executor == "slurm" && manifest.halving.is_some() {
        // The rungs were chosen by the tune's objective: replay them so.
        let objective = manifest.objective;
        let replay = crate::tune::slurm_halving::replay(&manifest, dir);
        let partial = replay.stage != crate::tune::slurm_halving::Stage::Done;
        let report = TuneReport {
            id: manifest.id.clone(),
            dir: dir.display().to_string(),
            objective,
            search: manifest.search.clone(),
            target_acc: manifest.train.target_acc,
            steps: manifest.steps,
            best: if partial {
                None
            } else {
                TuneReport::pick_best(&replay.trials)
            },
            trials: replay.trials,
            halving: Some(replay.report),
            full_grid: None,
            interrupted: false,
            partial,
        };
        return print_report(&report, format);
    }
    let mut trials = manifest.collect(dir);
    if manifest.executor == "slurm" {
        crate::tune::slurm_state::annotate(&manifest, dir, &mut trials);
    }
    rank(&mut trials, objective);
    let partial = TuneReport::is_partial(&trials);
    let report = TuneReport {
        id: manifest.id.clone(),
        dir: dir.display().to_string(),
        objective,
        search: manifest.search.clone(),
        target_acc: manifest.train.target_acc,
        steps: manifest.steps,
        best: TuneReport::pick_best(&trials),
        trials,
        halving: None,
        full_grid: None,
        interrupted: false,
        partial,
    };
    print_report(&report, format)
}
