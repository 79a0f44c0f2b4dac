//! The dashboard's event loop: terminal input, `SessionEvent`s from the
//! sources, a slow tick for time-based rules. It redraws only when
//! something changed, at most ~30 times a second, so an idle dashboard
//! costs almost nothing. What a mode does with commands and alerts (the
//! trainer is told, the tune starts followers) is its `Driver`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::UnboundedReceiver;

use super::app::{App, Command};
use super::{keys, panels};
use crate::session::{NewAlerts, SessionEvent};

/// What a mode (attach, train, tune) does around the shared loop.
pub trait Driver {
    /// A command from the keyboard (or a signal: `Quit`); false ends the loop.
    fn command(&mut self, command: Command, app: &mut App) -> bool;
    /// An event about to be applied (tune starts a trial's follower here).
    fn before(&mut self, _event: &SessionEvent, _app: &App) {}
    /// The alerts an applied event raised (train logs them).
    fn alerts(&mut self, _alerts: &NewAlerts, _app: &mut App) {}
    /// After each event (attach starts followers for discovered logs here).
    fn after(&mut self, _app: &mut App) {}
}

/// A driver with nothing to do but quit: attach.
pub struct QuitOnly;

impl Driver for QuitOnly {
    fn command(&mut self, command: Command, _app: &mut App) -> bool {
        !matches!(command, Command::Quit)
    }
}

const FRAME: Duration = Duration::from_millis(33);
const TICK: Duration = Duration::from_millis(500);

pub use crate::clock::unix_now;

/// Applies an event (the driver sees it before and its alerts after).
fn apply(app: &mut App, driver: &mut impl Driver, event: SessionEvent) {
    driver.before(&event, app);
    let alerts = app.apply(event);
    if !alerts.is_empty() {
        driver.alerts(&alerts, app);
    }
    driver.after(app);
}

/// Debug builds only: `LRTOP_TEST_PANIC=1` panics after the first frame,
/// so tests can check that a panic leaves the terminal restored.
#[cfg(debug_assertions)]
fn test_panic() {
    if std::env::var_os("LRTOP_TEST_PANIC").is_some() {
        panic!("LRTOP_TEST_PANIC is set: panicking on purpose after the first frame");
    }
}

/// Takes over the terminal, runs the dashboard on a single-threaded
/// runtime, and gives the terminal back whatever happens.
pub fn run_fullscreen(
    app: &mut App,
    updates: UnboundedReceiver<SessionEvent>,
    following: bool,
    driver: &mut impl Driver,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let mut terminal = super::terminal::enter(true).context("opening the terminal")?;
    let result = runtime.block_on(run(&mut terminal, app, updates, following, driver));
    super::terminal::restore();
    result
}

/// Runs until the user quits or the driver's `command` returns false.
pub async fn run(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    mut updates: UnboundedReceiver<SessionEvent>,
    following: bool,
    driver: &mut impl Driver,
) -> Result<()> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // SIGTERM, SIGINT (in raw mode Ctrl-C is a key, so this one comes from
    // another process) and SIGHUP quit like `q`: the terminal is restored
    // and a trainer finishes its log.
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{SignalKind, signal};
        [
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        ]
    };
    let mut last_draw = Instant::now() - FRAME;
    let mut updates_open = true;
    loop {
        if app.dirty && last_draw.elapsed() >= FRAME {
            app.now = unix_now();
            terminal.draw(|f| panels::render(f, app))?;
            app.dirty = false;
            last_draw = Instant::now();
            #[cfg(debug_assertions)]
            test_panic();
            crate::signals::test_freeze("render");
        }
        let redraw_at = tokio::time::Instant::from_std(last_draw + FRAME);
        #[cfg(unix)]
        let terminated = {
            let [term, int, hup] = &mut signals;
            async {
                tokio::select! {
                    s = term.recv() => s,
                    s = int.recv() => s,
                    s = hup.recv() => s,
                }
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    for key in keys::as_typed(key) {
                        let keep_going = app.on_key(key);
                        for command in std::mem::take(&mut app.commands) {
                            if !driver.command(command, app) {
                                return Ok(());
                            }
                        }
                        if !keep_going {
                            return Ok(());
                        }
                    }
                    // Input is answered at once, not at the next frame.
                    last_draw = Instant::now() - FRAME;
                }
                Some(Ok(Event::Mouse(mouse))) => app.on_mouse(mouse),
                Some(Ok(Event::Resize(_, _))) => app.dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            update = updates.recv(), if updates_open => match update {
                Some(event) => {
                    apply(app, driver, event);
                    // Apply everything already queued before drawing.
                    while let Ok(more) = updates.try_recv() {
                        apply(app, driver, more);
                    }
                    app.dirty = true;
                    for command in std::mem::take(&mut app.commands) {
                        if !driver.command(command, app) {
                            return Ok(());
                        }
                    }
                }
                None => updates_open = false,
            },
            _ = tick.tick() => {
                let now = unix_now();
                app.now = now;
                if !app.session.tick(now, following).is_empty() {
                    app.dirty = true;
                }
                // Hook trouble is a notice, never text over the screen.
                if let Some(problem) = app.session.take_hook_problems().pop() {
                    app.notice = Some(problem);
                    app.dirty = true;
                }
                // Rates and ETA move while data flows.
                if app.session.runs.iter().any(|r| r.last_arrival.is_some_and(|t| now - t < 6.0)) {
                    app.dirty = true;
                }
            },
            _ = tokio::time::sleep_until(redraw_at), if app.dirty => {},
            _ = terminated => {
                driver.command(Command::Quit, app);
                return Ok(());
            },
        }
    }
}
