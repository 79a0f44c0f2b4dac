//! `--on-alert CMD`: run a shell command for each alert.

use std::io;
use std::process::{Child, Command, Stdio};

use super::alert::Alert;

/// Starts `sh -c CMD` for one alert and returns without waiting; the caller
/// keeps the `Child` and reaps it (e.g. `try_wait` on each tick).
///
/// The command's environment is the parent's plus the alert's
/// ([`Alert::to_env`]: `LRTOP_ALERT_LEVEL`, `LRTOP_ALERT_KIND`,
/// `LRTOP_ALERT_STEP`, `LRTOP_ALERT_MESSAGE`, `LRTOP_ALERT_SUGGESTION`,
/// `LRTOP_ALERT_JSON`) and `LRTOP_RUN`, the run's label. Standard input,
/// output and error are closed (`/dev/null`) so a hook cannot draw over the
/// dashboard; redirect inside CMD to keep its output, e.g.
/// `--on-alert 'echo "$LRTOP_ALERT_JSON" >> alerts.jsonl'`.
pub fn run_on_alert(cmd: &str, alert: &Alert, run_label: &str) -> io::Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(alert.to_env())
        .env("LRTOP_RUN", run_label)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}
