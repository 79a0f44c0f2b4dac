//! `lrtop attach`: follow external training logs in the dashboard, headless,
//! or as a one-shot summary.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rayon::prelude::*;

use super::dashboard::{self, print_alert, status_line};
use super::usage;
use crate::cli::AttachArgs;
use crate::config::Config;
use crate::ingest::{self, FieldMap, LoadedRun, Source, SourceEvent};
use crate::session::{Session, SessionEvent};
use crate::tui::app::App;
use crate::tui::event_loop::{self, QuitOnly};

pub fn run(args: AttachArgs) -> Result<()> {
    let interval = args.dashboard.interval;
    // Also keeps `Duration::from_secs_f64` below from panicking on inf or NaN.
    if !(interval > 0.0 && interval <= 86_400.0) {
        return Err(usage(format!(
            "--interval must be a number of seconds in (0, 86400], got {interval}"
        )));
    }
    let config = Config::load()?;
    let map = match &args.map {
        Some(text) => FieldMap::parse(text).map_err(|e| usage(format!("--map: {e}")))?,
        None => FieldMap::default(),
    };
    let sources = ingest::discover(&args.paths).map_err(|e| usage(e.to_string()))?;
    if sources.is_empty() {
        return Err(usage("no log files found in the given paths"));
    }
    let setup = dashboard::monitor_setup(&args.dashboard, &config)?;
    let mut session = Session::new(setup);
    for source in &sources {
        let run = session.add_run(source.label.clone(), source.path.clone());
        session.runs[run].total_steps = args.total_steps;
    }
    if args.summary || args.no_follow {
        load_all(&mut session, &sources, &map, args.summary)?;
        if args.summary {
            return print_summaries(&session);
        }
    }
    if args.dashboard.headless {
        return if args.no_follow {
            print_headless_final(&session)
        } else {
            headless_follow(session, sources, map, args.dashboard.interval)
        };
    }
    let theme = crate::tui::theme::Theme::load(
        args.dashboard.theme.as_deref().or(config.theme.as_deref()),
        crate::config::config_dir().as_deref(),
    )?;
    let title = format!(
        "lrtop attach · {} run{}",
        sources.len(),
        if sources.len() == 1 { "" } else { "s" }
    );
    let mut app = App::new(session, theme, title);
    if let Some(s) = config.smoothing {
        app.view.smoothing = s.clamp(0.0, 0.99);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<SessionEvent>();
    let follow = !args.no_follow;
    let mut followers = Vec::new();
    if follow {
        for (run, source) in sources.into_iter().enumerate() {
            let tx = tx.clone();
            followers.push(ingest::follow(run, source, map.clone(), move |event| {
                tx.send(event.into()).is_ok()
            }));
        }
    }
    drop(tx);
    event_loop::run_fullscreen(&mut app, rx, follow, &mut QuitOnly)
}

/// Loads every source to its current end, in parallel, and replays each
/// through its run's monitor.
fn load_all(session: &mut Session, sources: &[Source], map: &FieldMap, strict: bool) -> Result<()> {
    let loaded: Vec<(usize, Result<LoadedRun, ingest::IngestError>)> = sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| (i, ingest::load(s, map)))
        .collect();
    for (run, result) in loaded {
        let event = match result {
            Ok(loaded) => SourceEvent::Loaded {
                run,
                loaded: Box::new(loaded),
            },
            Err(e) if strict => return Err(usage(e.to_string())),
            Err(e) => SourceEvent::Failed {
                run,
                error: e.to_string(),
            },
        };
        session.apply(event.into());
    }
    Ok(())
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
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<SourceEvent>();
    let mut followers = Vec::new();
    for (run, source) in sources.into_iter().enumerate() {
        let tx = tx.clone();
        followers.push(ingest::follow(run, source, map.clone(), move |event| {
            tx.send(event).is_ok()
        }));
    }
    drop(tx);
    let interval = Duration::from_secs_f64(interval.max(0.1));
    let mut next_status = Instant::now() + interval;
    let mut out = std::io::stdout();
    loop {
        let wait = next_status
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        let mut new = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(event) => {
                new.extend(session.apply(event.into()));
                while let Ok(more) = rx.try_recv() {
                    new.extend(session.apply(more.into()));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        new.extend(session.tick(crate::clock::unix_now(), true));
        for (run, alert) in &new {
            print_alert(&mut out, &session.runs[*run].label, alert)?;
        }
        if Instant::now() >= next_status {
            for run in &session.runs {
                writeln!(out, "{}", status_line(run))?;
            }
            out.flush()?;
            next_status = Instant::now() + interval;
        }
    }
    Ok(())
}
