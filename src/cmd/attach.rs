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
use crate::ingest::{self, FieldMap, FollowStatus, LoadedRun, Source, SourceEvent};
use crate::metrics::RunId;
use crate::session::{RunStatus, Session};
use crate::tui::app::{App, Command};
use crate::tui::event_loop::{self, Update, unix_now};

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
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Update>();
    let follow = !args.no_follow;
    let mut followers = Vec::new();
    if follow {
        for (run, source) in sources.into_iter().enumerate() {
            let tx = tx.clone();
            followers.push(ingest::follow(run, source, map.clone(), move |event| {
                tx.send(Box::new(move |app: &mut App| {
                    apply(&mut app.session, event, unix_now());
                }))
                .is_ok()
            }));
        }
    }
    drop(tx);
    event_loop::run_fullscreen(&mut app, rx, follow, |command, _| {
        !matches!(command, Command::Quit)
    })
}

/// Applies one source event to the session; returns the new alerts.
pub fn apply(
    session: &mut Session,
    event: SourceEvent,
    now: f64,
) -> Vec<(RunId, crate::monitor::Alert)> {
    match event {
        SourceEvent::Records { run, records } => {
            if let Some(state) = session.runs.get_mut(run)
                && matches!(state.status, RunStatus::Loading | RunStatus::Waiting)
            {
                state.status = RunStatus::Following;
            }
            session.push_records(run, &records, now)
        }
        SourceEvent::Status {
            run,
            status,
            detail,
        } => {
            if let Some(state) = session.runs.get_mut(run) {
                state.status = match status {
                    FollowStatus::Waiting => RunStatus::Waiting,
                    FollowStatus::Reading => RunStatus::Loading,
                    FollowStatus::Following => RunStatus::Following,
                    FollowStatus::Truncated => RunStatus::Truncated,
                    FollowStatus::Rotated => RunStatus::Rotated,
                    FollowStatus::Deleted => RunStatus::Deleted,
                    FollowStatus::Closed => RunStatus::Closed,
                };
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
            if let Some(state) = session.runs.get_mut(run) {
                state.bad_lines = total;
                state.last_error = Some(last_error);
            }
            Vec::new()
        }
        SourceEvent::Format { run, format } => {
            if let Some(state) = session.runs.get_mut(run) {
                state.format = Some(format.as_str());
            }
            Vec::new()
        }
    }
}

/// Loads every source to its current end, in parallel, and replays each
/// through its run's monitor.
fn load_all(session: &mut Session, sources: &[Source], map: &FieldMap, strict: bool) -> Result<()> {
    let loaded: Vec<(usize, Result<LoadedRun, ingest::IngestError>)> = sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| (i, ingest::load(s, map)))
        .collect();
    let now = unix_now();
    for (run, result) in loaded {
        match result {
            Ok(loaded) => {
                {
                    let state = &mut session.runs[run];
                    state.format = Some(loaded.format.as_str());
                    state.bad_lines = loaded.bad_lines;
                    state.last_error = loaded.last_error.clone();
                    state.status = RunStatus::Done;
                }
                let records = loaded.records;
                session.load_run(run, loaded.data, now);
                session.runs[run].records = records;
            }
            Err(e) if strict => return Err(usage(e.to_string())),
            Err(e) => session.runs[run].status = RunStatus::Failed(e.to_string()),
        }
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
                new.extend(apply(&mut session, event, unix_now()));
                while let Ok(more) = rx.try_recv() {
                    new.extend(apply(&mut session, more, unix_now()));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        new.extend(session.tick(unix_now(), true));
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
