//! What a tune prints: one JSON document, or a ranked table.

use std::fmt::Write as _;

use serde::Serialize;

use super::halving::HalvingReport;
use super::results::{Objective, Trial};
use crate::format::format_tick;

#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    pub id: String,
    pub dir: String,
    pub objective: Objective,
    pub search: String,
    pub target_acc: Option<f64>,
    pub steps: u64,
    /// Best first.
    pub trials: Vec<Trial>,
    pub best: Option<Trial>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halving: Option<HalvingReport>,
    /// With `--halving-verify`: every trial at full length, best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_grid: Option<Vec<Trial>>,
    pub interrupted: bool,
    /// Collected while trials still wait, run, or after they were
    /// cancelled: the ranking covers the finished ones only.
    #[serde(default)]
    pub partial: bool,
}

impl TuneReport {
    /// Whether some trial has not ended (waiting, running) or never will
    /// (cancelled before it ran).
    pub fn is_partial(trials: &[Trial]) -> bool {
        trials.iter().any(|t| {
            t.status == "running"
                || t.status == "pending"
                || t.status == "started"
                || t.status == "cancelled"
                || t.status.starts_with("not run")
        })
    }

    /// The best trial, if it finished.
    pub fn pick_best(trials: &[Trial]) -> Option<Trial> {
        trials.first().filter(|t| t.is_ok()).cloned()
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn seconds(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{}s", format_tick(v)))
}

/// The ranked table, one trial per line, spec last.
pub fn table(trials: &[Trial]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4} {:>4} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7}  {:<10} spec",
        "rank",
        "#",
        "steps",
        "final",
        "best",
        "top5",
        "conf",
        "robust",
        "→target",
        "t→targ",
        "wall",
        "status"
    );
    for (rank, t) in trials.iter().enumerate() {
        let conf = match (t.confidence_mean, t.confidence_std) {
            (Some(m), _) if m.is_finite() => format!("{m:.3}"),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:>4} {:>4} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7}  {:<10} {}",
            rank + 1,
            // The trial's own number, as in its log's name and `best: #N`.
            format!("#{}", t.index),
            t.steps,
            opt(t.final_acc, 4),
            opt(t.best_acc, 4),
            opt(t.top5, 4),
            conf,
            opt(t.robustness, 3),
            t.steps_to_target.map_or("-".into(), |s| s.to_string()),
            seconds(t.time_to_target),
            seconds(Some(t.wall_s).filter(|_| t.steps > 0)),
            short_status(&t.status),
            t.spec
        );
    }
    // Why trials failed, in full, below the table.
    for t in trials
        .iter()
        .filter(|t| short_status(&t.status) != t.status)
    {
        let _ = writeln!(out, "  #{} {}: {}", t.index, t.spec, t.status);
    }
    out
}

fn short_status(status: &str) -> String {
    if status.chars().count() <= 10 {
        status.to_string()
    } else {
        "failed".into()
    }
}

/// The whole text report: table, best, halving.
pub fn text(report: &TuneReport) -> String {
    let mut out = format!(
        "tune {} · {} search · objective {}{} · {} updates per trial · {}\n",
        report.id,
        report.search,
        report.objective.as_str(),
        report
            .target_acc
            .map(|t| format!(" (target acc {t})"))
            .unwrap_or_default(),
        report.steps,
        report.dir
    );
    out.push_str(&table(&report.trials));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for t in &report.trials {
        let status = short_status(&t.status);
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(out, "{}", counts.join(" · "));
    match &report.best {
        Some(best) => {
            let _ = writeln!(out, "best: #{} {}", best.index, best.spec);
        }
        None => out.push_str("best: none (no trial finished)\n"),
    }
    if let Some(h) = &report.halving {
        let rungs: Vec<String> = h
            .rungs
            .iter()
            .map(|r| format!("{}x{}", r.trials.len(), r.budget))
            .collect();
        let _ = writeln!(
            out,
            "halving (eta {}): rungs {} · {} of {} updates · {:.0}% saved",
            h.eta,
            rungs.join(", "),
            h.updates_spent,
            h.updates_full_grid,
            h.compute_saved * 100.0
        );
        if let Some(same) = h.same_winner {
            let _ = writeln!(
                out,
                "full grid winner: {} · same winner: {}",
                h.full_grid_winner_spec.as_deref().unwrap_or("-"),
                if same { "yes" } else { "no" }
            );
        }
    }
    if report.interrupted {
        out.push_str("interrupted: unfinished trials are listed as such\n");
    }
    if report.partial {
        let ended = report
            .trials
            .iter()
            .filter(|t| !TuneReport::is_partial(std::slice::from_ref(t)))
            .count();
        let _ = writeln!(
            out,
            "partial: {ended} of {} trials ended; the ranking covers those (collect again later)",
            report.trials.len()
        );
    }
    out
}
