//! Numbers for the selected run: last/min/max of the main metrics, progress,
//! throughput and ETA.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::panel;
use crate::format::{format_duration, format_tick, format_value};
use crate::metrics::record::{GRAD_NORM, LOSS, LR};
use crate::tui::app::App;

fn fmt(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v.is_infinite() => {
            if v > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        Some(v) => format_value(v),
        None => "-".into(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(run) = app.session.runs.get(app.view.selected_run) else {
        frame.render_widget(panel(app, Span::styled(" stats ", app.theme.title())), area);
        return;
    };
    let block = panel(
        app,
        Span::styled(
            format!(
                " {} ",
                crate::format::ellipsize(&run.label, (area.width as usize).saturating_sub(4))
            ),
            app.theme.title(),
        ),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let wide = inner.width >= 40;
    let header = if wide {
        Row::new(["", "last", "min", "max"])
    } else {
        Row::new(["", "last"])
    }
    .style(app.theme.dimmed());
    let mut rows = Vec::new();
    let mut metrics = vec![LR.to_string(), LOSS.to_string(), GRAD_NORM.to_string()];
    metrics.extend(app.eval_metrics().into_iter().take(3));
    metrics.retain(|name| run.data.column(name).is_some());
    // The name column fits the longest name, up to a share of the panel;
    // longer names are cut so that no two look alike.
    let longest = metrics.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let name_width = longest
        .min(if wide { 24 } else { inner.width as usize / 2 })
        .max(4);
    let labels = crate::format::fit_labels(&metrics, name_width);
    for (name, label) in metrics.iter().zip(labels) {
        let Some(col) = run.data.column(name) else {
            continue;
        };
        let finite = col.min.is_finite();
        let mut cells = vec![Cell::from(label), Cell::from(fmt(col.last().map(|l| l.1)))];
        if wide {
            cells.push(Cell::from(if finite {
                fmt(Some(col.min))
            } else {
                "-".into()
            }));
            cells.push(Cell::from(if finite {
                fmt(Some(col.max))
            } else {
                "-".into()
            }));
        }
        rows.push(Row::new(cells));
    }
    let mut notes = Vec::new();
    let mut progress = match (run.data.last_step(), run.total_steps) {
        (Some(s), Some(t)) => format!("step {s}/{t}"),
        (Some(s), None) => format!("step {s}"),
        _ => "no steps yet".into(),
    };
    if let Some(e) = run.data.last_epoch() {
        progress.push_str(&format!(" · epoch {}", format_tick(e)));
    }
    notes.push(progress);
    let mut pace = Vec::new();
    if let Some(rate) = run.steps_per_second() {
        pace.push(format!("{} steps/s", format_value(rate)));
    }
    // A live rate of live records: not of a file that ended, nor of the
    // history read while catching up.
    let recent = if run.status.is_live() && run.caught_up {
        run.data.arrival_rate(app.now, 5.0, run.caught_up_rows)
    } else {
        0.0
    };
    if recent > 0.0 {
        pace.push(format!("{} rec/s", format_value(recent)));
    }
    if let Some(eta) = run.eta_seconds() {
        pace.push(format!("ETA {}", format_duration(eta)));
    }
    if !pace.is_empty() {
        notes.push(pace.join(" · "));
    }
    // A run lrtop trained (or whose log names it) shows its policy; a
    // fitted guess is for logs that do not say.
    match (&run.policy, run.monitor.schedule_fit()) {
        (Some(policy), _) => notes.push(format!("policy {policy}")),
        (None, Some(fit)) => notes.push(fit.description.clone()),
        (None, None) => {}
    }
    if let Some(params) = run.params {
        use crate::format::format_count;
        notes.push(if params.trainable < params.total {
            format!(
                "trainable {} of {} ({:.2}%)",
                format_count(params.trainable),
                format_count(params.total),
                100.0 * params.trainable as f64 / params.total.max(1) as f64
            )
        } else {
            format!("params {}", format_count(params.total))
        });
    }
    if let Some((step, text)) = &run.sample {
        notes.push(format!("sample @{step}: {text}"));
    }
    let table_height = (rows.len() as u16 + 1).min(inner.height);
    let [table_area, notes_area] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(inner);
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(name_width as u16),
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ]
    } else {
        vec![Constraint::Length(name_width as u16), Constraint::Fill(1)]
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .style(app.theme.text()),
        table_area,
    );
    let lines: Vec<Line> = notes
        .into_iter()
        .map(|n| Line::from(Span::styled(n, app.theme.dimmed())))
        .collect();
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), notes_area);
}
