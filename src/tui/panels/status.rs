//! The bottom line: file state, bad lines, view settings, key hint.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, TimeAxis};

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let style = Style::default()
        .bg(app.theme.status_bg)
        .fg(app.theme.status_fg);
    let mut left = vec![Span::styled(format!(" {} ", app.title), style)];
    if let Some(run) = app.session.runs.get(app.view.selected_run) {
        let mut state = run.status.label();
        match (run.format, run.dialect) {
            (Some(format), Some(dialect)) => state = format!("{format} ({dialect}) · {state}"),
            (Some(format), None) => state = format!("{format} · {state}"),
            _ => {}
        }
        left.push(Span::styled(format!("│ {state} "), style));
        if run.bad_lines > 0 {
            let warn = style.fg(app.theme.warn);
            let why = run
                .last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            left.push(Span::styled(
                format!("│ {} bad lines skipped{why} ", run.bad_lines),
                warn,
            ));
        }
        if run.data.dropped_values() > 0 {
            left.push(Span::styled(
                format!(
                    "│ over {} metric names: {} values dropped ",
                    crate::metrics::store::MAX_METRICS,
                    run.data.dropped_values()
                ),
                style.fg(app.theme.warn),
            ));
        }
        if let Some(hint) = run.map_hint() {
            left.push(Span::styled(
                format!("│ no {} recognised: try {hint} ", hint_targets(&hint)),
                style.fg(app.theme.warn),
            ));
        }
    }
    if let Some(notice) = &app.notice {
        left.push(Span::styled(
            format!("│ {notice} "),
            style.fg(app.theme.info),
        ));
    }
    let mut right = Vec::new();
    if !app.view.follow {
        right.push("FROZEN".to_string());
    }
    if app.view.zoom.is_some() {
        right.push("zoomed".into());
    }
    let epoch_indexed = app
        .session
        .runs
        .get(app.view.selected_run)
        .is_some_and(|r| r.data.indexed_by_epoch());
    match (app.view.x_axis.label(), app.time_axis()) {
        ("step", _) if epoch_indexed => right.push("x: epoch".into()),
        (label, Some(TimeAxis::Arrival)) => right.push(format!("x: {label} (arrival)")),
        (label, Some(TimeAxis::Missing)) => right.push(format!("x: {label} · no timestamps")),
        (label, _) => right.push(format!("x: {label}")),
    }
    if !app.view.ignore_outliers {
        right.push("y: all points".into());
    }
    if let Some(train) = &app.train {
        if train.paused {
            right.insert(0, "PAUSED".into());
        }
        right.push("p policies  e edit".into());
    }
    right.push("? help  q quit ".into());
    let right_text = right.join("  ");
    frame.render_widget(Paragraph::new(Line::from(left)).style(style), area);
    frame.render_widget(
        Paragraph::new(Span::styled(right_text, style)).alignment(Alignment::Right),
        area,
    );
}

/// "loss", "lr" or "loss or lr": the targets a `--map` hint sets.
fn hint_targets(hint: &str) -> String {
    let targets: Vec<&str> = hint
        .trim_start_matches("--map ")
        .split(',')
        .filter_map(|item| item.split_once('=').map(|(t, _)| t))
        .collect();
    targets.join(" or ")
}
