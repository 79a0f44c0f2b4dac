//! `lrtop attach`: follow external training logs in the dashboard, headless,
//! or as a one-shot summary.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rayon::prelude::*;

use super::dashboard::{self, print_alert, status_line};
use super::usage;
use crate::cli::AttachArgs;
use crate::config::Config;
use crate::error::{CheckFailed, EXIT_ALERT};
use crate::ingest::{self, FieldMap, LoadOptions, LoadedRun, Observer, Source, SourceEvent};
use crate::ingest::{Follower, scan};
use crate::metrics::RunData;
use crate::monitor::Level;
use crate::monitor::Monitor;
use crate::session::{Session, SessionEvent};
use crate::tui::app::App;
use crate::tui::app::Command;
use crate::tui::event_loop::{self, Driver, QuitOnly};

/// A Slurm tune's directory (`tune --emit DIR`) holds the trials' logs in
/// `logs/` (`rung-R/logs/` for halving) beside the tasks' printed output
/// (`slurm/*.out`, which would read as printed logs) and results:
/// attaching to it means its logs.
fn tune_logs(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            let dir = std::path::Path::new(p);
            let logs = dir.join("logs");
            if !dir.join(crate::tune::manifest::FILE_NAME).is_file() {
                p.clone()
            } else if logs.is_dir() {
                logs.to_string_lossy().into_owned()
            } else if dir.join(crate::tune::slurm::TASKS).is_dir() {
                // Successive halving: one folder per rung, written later.
                dir.join("rung-*/logs/*.jsonl")
                    .to_string_lossy()
                    .into_owned()
            } else {
                p.clone()
            }
        })
        .collect()
}

pub fn run(mut args: AttachArgs) -> Result<()> {
    args.paths = tune_logs(&args.paths);
    let interval = args.dashboard.interval;
    // Also keeps `Duration::from_secs_f64` below from panicking on inf or NaN.
    if !(interval > 0.0 && interval <= 86_400.0) {
        return Err(usage(format!(
            "--interval must be a number of seconds in (0, 86400], got {interval}"
        )));
    }
    let config = Config::load()?;
    // A bad --theme is an error in every mode, not only with a screen.
    let theme = crate::tui::theme::Theme::load(
        args.dashboard.theme.as_deref().or(config.theme.as_deref()),
        crate::config::config_dir().as_deref(),
    )?;
    let map = match &args.map {
        Some(text) => FieldMap::parse(text).map_err(|e| usage(format!("--map: {e}")))?,
        None => FieldMap::default(),
    };
    // Followed directories and globs gain logs while lrtop runs; one that
    // has none yet is waited for.
    let live = !(args.summary || args.no_follow) && scan::can_gain_logs(&args.paths);
    let sources = if live {
        scan::discover_live(&args.paths)
    } else {
        ingest::discover(&args.paths)
    }
    .map_err(|e| usage(e.to_string()))?;
    if sources.is_empty() && !live {
        return Err(usage("no log files found in the given paths"));
    }
    let setup = dashboard::monitor_setup(&args.dashboard, &config)?;
    let mut session = Session::new(setup);
    session.default_total_steps = args.total_steps;
    for source in &sources {
        let run = session.add_run(source.label.clone(), source.path.clone());
        session.runs[run].total_steps = args.total_steps;
    }
    // --headless --summary follows until a signal, then prints summaries.
    let summary_at_end = args.summary && args.dashboard.headless && !args.no_follow;
    if (args.summary || args.no_follow) && !summary_at_end {
        load_all(&mut session, &sources, &map, args.summary)?;
        // Hooks queued for what was read run before lrtop exits.
        session.wait_for_hooks(Duration::from_secs(60));
        for problem in session.take_hook_problems() {
            eprintln!("{problem}");
        }
        if args.summary {
            print_summaries(&session)?;
            return check(&session, &args.dashboard.fail_on);
        }
    }
    if args.dashboard.headless {
        return if args.no_follow {
            print_headless_final(&session)?;
            check(&session, &args.dashboard.fail_on)
        } else {
            let scan = live.then(|| args.paths.clone());
            headless_follow(
                session,
                sources,
                map,
                args.dashboard.interval,
                scan,
                summary_at_end,
            )
        };
    }
    let title = title(sources.len(), &args.paths);
    let mut app = App::new(session, theme, title);
    if let Some(s) = config.smoothing {
        app.view.smoothing = s.clamp(0.0, 0.99);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SessionEvent>();
    let follow = !args.no_follow;
    if !follow {
        drop(tx);
        crate::signals::install(crate::signals::QUICK, crate::tui::terminal::restore);
        return event_loop::run_fullscreen(&mut app, rx, follow, &mut QuitOnly);
    }
    let sink = tx.clone();
    let mut followers = Followers::new(map, move |event| sink.send(event).is_ok());
    let scanner = live.then(|| {
        let tx = tx.clone();
        scan::Scanner::start(args.paths.clone(), &sources, move |found| {
            tx.send(SessionEvent::Discovered(Box::new(found))).is_ok()
        })
    });
    drop(tx);
    for (run, source) in sources.into_iter().enumerate() {
        followers.start(run, source);
    }
    if scanner.is_none() {
        followers.seal();
    }
    let mut driver = AttachDriver {
        followers,
        paths: args.paths.clone(),
    };
    crate::signals::install(crate::signals::QUICK, crate::tui::terminal::restore);
    let result = event_loop::run_fullscreen(&mut app, rx, follow, &mut driver);
    drop(scanner);
    result
}

/// "lrtop attach · 3 runs", or what it waits for while there are none.
fn title(runs: usize, paths: &[String]) -> String {
    match runs {
        0 => format!("lrtop attach · waiting for logs in {}", paths.join(" ")),
        1 => "lrtop attach · 1 run".into(),
        n => format!("lrtop attach · {n} runs"),
    }
}

/// The followers of an attach, one per source; discovered sources get
/// theirs as they come.
struct Followers<S> {
    map: FieldMap,
    /// None once no more sources can come: the channel then closes when
    /// the last follower ends (stdin at its end ends a headless attach).
    sink: Option<S>,
    running: Vec<(Option<PathBuf>, Follower)>,
}

impl<S: Fn(SessionEvent) -> bool + Clone + Send + 'static> Followers<S> {
    fn new(map: FieldMap, sink: S) -> Self {
        Followers {
            map,
            sink: Some(sink),
            running: Vec::new(),
        }
    }

    /// No sources will be added: keep no sender of our own.
    fn seal(&mut self) {
        self.sink = None;
    }

    fn start(&mut self, run: usize, source: ingest::Source) {
        let Some(sink) = self.sink.clone() else {
            return;
        };
        let path = source.path.clone();
        let follower = ingest::follow(run, source, self.map.clone(), move |event| {
            sink(event.into())
        });
        self.running.push((path, follower));
    }

    /// Starts followers for what the session discovered; a newer
    /// checkpoint's replaces the older one's.
    fn start_discovered(&mut self, session: &mut Session) -> bool {
        let new = session.take_discovered();
        let any = !new.is_empty();
        for found in new {
            if let Some(old) = &found.replaces {
                self.running.retain(|(path, _)| path.as_ref() != Some(old));
            }
            self.start(found.run, found.source);
        }
        any
    }
}

struct AttachDriver<S> {
    followers: Followers<S>,
    paths: Vec<String>,
}

impl<S: Fn(SessionEvent) -> bool + Clone + Send + 'static> Driver for AttachDriver<S> {
    fn command(&mut self, command: Command, _app: &mut App) -> bool {
        !matches!(command, Command::Quit)
    }

    fn after(&mut self, app: &mut App) {
        if self.followers.start_discovered(&mut app.session) {
            app.title = title(app.session.runs.len(), &self.paths);
        }
    }
}

/// Loads every source to its current end, in parallel, each run's monitor
/// fed chunk by chunk while later chunks are parsed (formats without a
/// chunked load are replayed through it afterwards).
fn load_all(session: &mut Session, sources: &[Source], map: &FieldMap, strict: bool) -> Result<()> {
    type Seen = Arc<Mutex<(Option<Monitor>, usize)>>;
    let monitors: Vec<Seen> = sources
        .iter()
        .map(|_| Arc::new(Mutex::new((Some(session.new_monitor()), 0))))
        .collect();
    let loaded: Vec<(usize, Result<LoadedRun, ingest::IngestError>)> = sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let seen = Arc::clone(&monitors[i]);
            let observer = Observer(Arc::new(move |chunk: &RunData| {
                let Ok(mut guard) = seen.lock() else { return };
                let (monitor, rows) = &mut *guard;
                if let Some(monitor) = monitor {
                    chunk.for_each_record(|rec| {
                        monitor.observe(rec);
                    });
                }
                *rows += chunk.len();
            }));
            let options = LoadOptions {
                observer: Some(observer),
                ..LoadOptions::default()
            };
            (i, ingest::load_with(s, map, &options))
        })
        .collect();
    for (run, result) in loaded {
        match result {
            Ok(loaded) => {
                let taken = monitors[run].lock().ok().and_then(|mut g| {
                    let rows = g.1;
                    g.0.take().map(|m| (m, rows))
                });
                match taken {
                    Some((monitor, rows)) => {
                        session.loaded_observed(
                            run,
                            loaded,
                            monitor,
                            rows,
                            crate::clock::unix_now(),
                        );
                    }
                    None => {
                        session.apply(
                            SourceEvent::Loaded {
                                run,
                                loaded: Box::new(loaded),
                            }
                            .into(),
                        );
                    }
                }
            }
            // Not the input's fault: exit 1, as a refused allocation does.
            Err(e) if strict && e.is_out_of_memory() => {
                return Err(anyhow::anyhow!(
                    "out of memory: {e}; lrtop needs more memory: raise the limit (ulimit -v, the job's memory) or read fewer logs at once"
                ));
            }
            Err(e) if strict => return Err(usage(e.to_string())),
            Err(e) => {
                session.apply(
                    SourceEvent::Failed {
                        run,
                        error: e.to_string(),
                    }
                    .into(),
                );
            }
        }
    }
    Ok(())
}

/// `--fail-on`: the first alert at or above the level fails the check,
/// with the alert's own words (the reason that fired, not a category).
pub(crate) fn check(session: &Session, fail_on: &str) -> Result<()> {
    let threshold = match fail_on {
        "never" => return Ok(()),
        "info" => Level::Info,
        "warn" => Level::Warn,
        _ => Level::Critical,
    };
    let failing: Vec<_> = session
        .alerts
        .iter()
        .filter(|(_, a)| a.level >= threshold)
        .collect();
    let Some((run, alert)) = failing.first() else {
        return Ok(());
    };
    let at = alert
        .step
        .map(|s| format!(" at step {s}"))
        .unwrap_or_default();
    Err(CheckFailed {
        code: EXIT_ALERT,
        message: format!(
            "{} alert{} at {fail_on} or worse (--fail-on {fail_on}; never to ignore); the first, {}: [{}]{at} {}",
            failing.len(),
            if failing.len() == 1 { "" } else { "s" },
            alert.level.as_str(),
            session.runs[*run].label,
            alert.message
        ),
    }
    .into())
}

fn print_summaries(session: &Session) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for run in &session.runs {
        writeln!(out, "{}", serde_json::to_string(&run.summary())?)?;
    }
    Ok(())
}

fn print_headless_final(session: &Session) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for (run, alert) in &session.alerts {
        print_alert(&mut out, &session.runs[*run].label, alert)?;
    }
    for run in &session.runs {
        writeln!(out, "{}", status_line(run))?;
    }
    Ok(())
}

fn headless_follow(
    mut session: Session,
    sources: Vec<Source>,
    map: FieldMap,
    interval: f64,
    scan: Option<Vec<String>>,
    summary_at_end: bool,
) -> Result<()> {
    // SIGINT, SIGTERM and SIGHUP end the follow at the next wake-up (half
    // a second at most); past a second, or at a second signal, the process
    // exits whatever it is doing.
    let stop = Arc::new(AtomicBool::new(false));
    crate::signals::install(crate::signals::QUICK, crate::signals::no_cleanup);
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let (tx, rx) = mpsc::channel::<SessionEvent>();
    let sink = tx.clone();
    let mut followers = Followers::new(map, move |event| sink.send(event).is_ok());
    let waiting_for = scan.as_ref().map(|paths| paths.join(" "));
    let scanner = scan.map(|paths| {
        let tx = tx.clone();
        scan::Scanner::start(paths, &sources, move |found| {
            tx.send(SessionEvent::Discovered(Box::new(found))).is_ok()
        })
    });
    drop(tx);
    for (run, source) in sources.into_iter().enumerate() {
        followers.start(run, source);
    }
    if scanner.is_none() {
        followers.seal();
    }
    let interval = Duration::from_secs_f64(interval.max(0.1));
    let mut next_status = Instant::now() + interval;
    // Buffered: a status block of ten thousand runs is a few writes, not
    // one per line (alerts and blocks are flushed as they end).
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    loop {
        let wait = next_status
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        let mut new = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(event) => {
                new.extend(session.apply(event));
                while let Ok(more) = rx.try_recv() {
                    new.extend(session.apply(more));
                }
                followers.start_discovered(&mut session);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        new.extend(session.tick(crate::clock::unix_now(), true));
        for problem in session.take_hook_problems() {
            eprintln!("{problem}");
        }
        for (run, alert) in &new {
            print_alert(&mut out, &session.runs[*run].label, alert)?;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if Instant::now() >= next_status {
            for run in &session.runs {
                writeln!(out, "{}", status_line(run))?;
            }
            if let (true, Some(paths)) = (session.runs.is_empty(), &waiting_for) {
                writeln!(out, "waiting for logs in {paths}")?;
            }
            out.flush()?;
            crate::signals::test_freeze("headless");
            next_status = Instant::now() + interval;
        }
    }
    drop(followers);
    out.flush()?;
    drop(out);
    if summary_at_end {
        print_summaries(&session)?;
    }
    Ok(())
}
