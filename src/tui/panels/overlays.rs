//! Pop-ups drawn over the dashboard: key help and the metric picker.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::panel;
use crate::tui::app::{App, ThirdPanel};
use crate::tui::layout::centered;

pub const KEYS: &[(&str, &str)] = &[
    ("?  h", "this help (any key closes)"),
    (
        "q  Ctrl-C",
        "quit (while training: press twice, to stop it and quit)",
    ),
    ("Esc", "close a pop-up; quit when nothing is training"),
    ("l", "log / linear y axis"),
    ("x", "x axis: step, epoch, relative time, wall time"),
    ("[  ]", "loss smoothing down / up"),
    ("+  -  0", "zoom in / out / reset (mouse wheel too)"),
    ("←  →", "pan along x when zoomed"),
    ("f", "follow new data / freeze the view"),
    (
        "o",
        "y range of loss and metrics: 5th-95th percentile (default) / all points",
    ),
    ("m  g", "pick / cycle the third chart's metric"),
    (
        "↑ ↓  v  1-9",
        "select run, toggle its visibility (or click it)",
    ),
];

pub fn help(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<16}"), app.theme.title()),
                Span::styled(what.to_string(), app.theme.text()),
            ])
        })
        .collect();
    if !app.extra_keys.is_empty() {
        lines.push(Line::from(""));
        lines.extend(app.extra_keys.iter().map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<16}"), app.theme.title()),
                Span::styled(what.to_string(), app.theme.text()),
            ])
        }));
    }
    let rect = centered(area, 72, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(panel(app, " keys ")), rect);
}

pub fn metric_picker(frame: &mut Frame, area: Rect, app: &App, selected: usize) {
    let choices = app.picker_choices();
    let lines: Vec<Line> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let label = match c {
                ThirdPanel::GradNorm => "grad norm".to_string(),
                ThirdPanel::Eval => "all eval metrics".to_string(),
                ThirdPanel::Metric(m) => m.clone(),
            };
            let style = if i == selected {
                app.theme
                    .text()
                    .bg(app.theme.highlight_bg)
                    .add_modifier(Modifier::BOLD)
            } else {
                app.theme.text()
            };
            Line::from(Span::styled(format!(" {label} "), style))
        })
        .collect();
    let height = (lines.len() as u16 + 2).min(area.height);
    let rect = centered(area, 40, height);
    let skip = selected.saturating_sub(height.saturating_sub(3) as usize);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((skip as u16, 0))
            .block(panel(app, " third chart: ↑↓ Enter ")),
        rect,
    );
}
