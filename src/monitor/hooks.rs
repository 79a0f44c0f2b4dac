//! `--on-alert CMD`: run a shell command for each new alert, one at a time.
//!
//! The alert reaches the command in environment variables, never in the
//! command string, so no log can inject shell syntax; every value is
//! stripped of control characters first (a NUL cannot go into the
//! environment, an escape sequence could drive the terminal). Hooks run one
//! at a time from a bounded queue, and one that hangs is killed.

use std::collections::VecDeque;
use std::io;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::alert::Alert;
use crate::format::printable;

/// Alerts waiting for their hook, at most; more are counted as dropped.
pub const HOOK_QUEUE: usize = 64;
/// A hook still running after this long is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `sh -c CMD` for one alert and returns without waiting.
///
/// The command's environment is the parent's plus the alert's
/// ([`Alert::to_env`]: `LRTOP_ALERT_LEVEL`, `LRTOP_ALERT_KIND`,
/// `LRTOP_ALERT_STEP`, `LRTOP_ALERT_MESSAGE`, `LRTOP_ALERT_SUGGESTION`,
/// `LRTOP_ALERT_JSON`) and `LRTOP_RUN`, the run's label. Standard input,
/// output and error are closed (`/dev/null`) so a hook cannot draw over the
/// dashboard; redirect inside CMD to keep its output, e.g.
/// `--on-alert 'echo "$LRTOP_ALERT_JSON" >> alerts.jsonl'`.
pub fn run_on_alert(cmd: &str, alert: &Alert, run_label: &str) -> io::Result<Child> {
    crate::child_env::restore_user_env(&mut Command::new("sh"))
        .arg("-c")
        .arg(cmd)
        .envs(
            alert
                .to_env()
                .into_iter()
                .map(|(k, v)| (k, printable(&v).into_owned())),
        )
        .env("LRTOP_RUN", printable(run_label).as_ref())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// The hooks of a session: a queue, the one running, and what went wrong
/// (for the frontend to show as a notice, never printed over the screen).
#[derive(Debug, Default)]
pub struct HookQueue {
    queue: VecDeque<(Alert, String)>,
    running: Option<(Child, Instant)>,
    pub dropped: u64,
    pub problems: Vec<String>,
}

impl HookQueue {
    pub fn push(&mut self, cmd: &str, alert: Alert, label: String) {
        if self.queue.len() >= HOOK_QUEUE {
            self.dropped += 1;
            if self.dropped == 1 {
                self.problems.push(format!(
                    "--on-alert: more than {HOOK_QUEUE} alerts waiting; later ones get no hook"
                ));
            }
            return;
        }
        self.queue.push_back((alert, label));
        self.poll(cmd);
    }

    /// Reaps the running hook (killing it past the timeout) and starts the
    /// next. Call it on every tick.
    pub fn poll(&mut self, cmd: &str) {
        if let Some((child, started)) = &mut self.running {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        self.problems.push(format!(
                            "--on-alert '{}' exited with {status}",
                            printable(cmd)
                        ));
                    }
                    self.running = None;
                }
                Ok(None) if started.elapsed() >= HOOK_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.problems.push(format!(
                        "--on-alert '{}' ran over {} s and was killed",
                        printable(cmd),
                        HOOK_TIMEOUT.as_secs()
                    ));
                    self.running = None;
                }
                Ok(None) => return,
                Err(_) => self.running = None,
            }
        }
        while let Some((alert, label)) = self.queue.pop_front() {
            match run_on_alert(cmd, &alert, &label) {
                Ok(child) => {
                    self.running = Some((child, Instant::now()));
                    return;
                }
                Err(e) => self.problems.push(format!(
                    "--on-alert: could not run '{}': {e}",
                    printable(cmd)
                )),
            }
        }
    }

    /// Hooks queued or running.
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.running.is_some())
    }
}
