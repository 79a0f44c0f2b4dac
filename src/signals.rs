//! The signal path that always wins. The first SIGINT, SIGTERM or SIGHUP
//! asks the program to stop the ordinary way (the caller's own handling:
//! the event loop quits like `q`, a trainer finishes its step and its log);
//! a watchdog thread then gives it a grace period, and past it — or at a
//! second signal — restores what must be restored (the terminal) and exits
//! with 128 + the signal. A frozen render, a long step or a busy loop can
//! delay the ordinary way, never the exit.

use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What a forced exit does first (e.g. give the terminal back).
pub type Cleanup = fn();

/// How long an attach (nothing to save) may take to stop after a signal.
pub const QUICK: Duration = Duration::from_secs(1);
/// How long a trainer may take to finish its step and write its log and
/// weights after a signal.
pub const SAVING: Duration = Duration::from_secs(10);

/// Starts the watchdog (once per process; later calls change nothing).
pub fn install(grace: Duration, cleanup: Cleanup) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = thread::Builder::new()
            .name("lrtop-signals".into())
            .spawn(move || {
                let mut first = None;
                for signal in signals.forever() {
                    if first.is_some() {
                        force(signal, cleanup, "a second signal");
                    }
                    first = Some(signal);
                    let _ = thread::Builder::new()
                        .name("lrtop-signal-grace".into())
                        .spawn(move || {
                            thread::sleep(grace);
                            force(signal, cleanup, "it did not stop in time");
                        });
                }
            });
    });
}

fn force(signal: i32, cleanup: Cleanup, why: &str) -> ! {
    cleanup();
    eprintln!("lrtop: {} ({why}): exiting now", name(signal));
    std::process::exit(128 + signal);
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Nothing to restore.
pub fn no_cleanup() {}

/// Debug builds only: `LRTOP_TEST_FREEZE=<point>` blocks the thread that
/// reaches `point` for good, so that tests can check that a signal still
/// ends a process whose loop is stuck.
pub fn test_freeze(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("LRTOP_TEST_FREEZE").is_ok_and(|p| p == point) {
        loop {
            thread::sleep(Duration::from_secs(3600));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
