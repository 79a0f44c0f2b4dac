//! What `attach` and `train` share: monitor setup from the options, and the
//! headless output (alerts as JSON lines, a one-line status per run).

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use super::usage;
use crate::cli::DashboardArgs;
use crate::config::Config;
use crate::metrics::record::{LOSS, LR};
use crate::monitor::{Alert, Target};
use crate::policy::Policy;
use crate::session::{MonitorSetup, RunState};
use crate::tui::panels::{format_duration, format_value};

pub fn monitor_setup(args: &DashboardArgs, config: &Config) -> Result<MonitorSetup> {
    let declared = match &args.declared {
        Some(spec) => Some(Policy::parse(spec).map_err(|e| {
            anyhow::Error::new(e).context(format!("invalid --declared policy '{spec}'"))
        })?),
        None => None,
    };
    let target = match &args.target {
        Some(text) => Some(
            text.parse::<Target>()
                .map_err(|e| usage(format!("--target: {e}")))?,
        ),
        None => None,
    };
    Ok(MonitorSetup {
        config: config.monitor.clone(),
        declared,
        target,
        on_alert: args.on_alert.clone(),
        on_alert_history: args.on_alert_history,
    })
}

/// One alert as a JSON line: `{"run": ..., "alert": {...}}`.
pub fn print_alert(out: &mut impl Write, run: &str, alert: &Alert) -> Result<()> {
    writeln!(out, "{}", json!({ "run": run, "alert": alert }))?;
    out.flush()?;
    Ok(())
}

/// `[label] step 1200/3000 · lr 1.2e-3 · loss 0.532 (min 0.510 @1100) · 12 steps/s · ETA 2m30s · 1 alert`
pub fn status_line(run: &RunState) -> String {
    let mut parts = vec![format!("[{}] {}", run.label, run.status.label())];
    match (run.data.last_step(), run.total_steps) {
        (Some(s), Some(t)) => parts.push(format!("step {s}/{t}")),
        (Some(s), None) => parts.push(format!("step {s}")),
        _ => parts.push("no records yet".into()),
    }
    if let Some(lr) = run.last(LR) {
        parts.push(format!("lr {}", format_value(lr)));
    }
    if let Some(col) = run.data.column(LOSS) {
        let mut loss = format!(
            "loss {}",
            col.last().map_or("-".into(), |(_, v)| format_value(v))
        );
        if col.min.is_finite() {
            let at = run
                .data
                .step_at(col.min_row)
                .map(|s| format!(" @{s}"))
                .unwrap_or_default();
            loss.push_str(&format!(" (min {}{at})", format_value(col.min)));
        }
        parts.push(loss);
    }
    if let Some(rate) = run.steps_per_second() {
        parts.push(format!("{} steps/s", format_value(rate)));
    }
    if let Some(eta) = run.eta_seconds() {
        parts.push(format!("ETA {}", format_duration(eta)));
    }
    if run.records > 0 {
        // What a script checks for exactly-once reading.
        parts.push(format!(
            "{} record{}",
            run.records,
            if run.records == 1 { "" } else { "s" }
        ));
    }
    if run.bad_lines > 0 {
        parts.push(format!("{} bad lines", run.bad_lines));
    }
    let alerts = run.monitor.alerts().len();
    if alerts > 0 {
        parts.push(format!(
            "{alerts} alert{}",
            if alerts == 1 { "" } else { "s" }
        ));
    }
    parts.join(" · ")
}
