//! Pop-ups drawn over the dashboard: key help and the metric picker.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::panel;
use crate::tui::app::{App, ThirdPanel};
use crate::tui::keys;
use crate::tui::layout::centered;

pub fn help(frame: &mut Frame, area: Rect, app: &App) {
    let mut rows = keys::help_rows(keys::DASHBOARD);
    let extra = app.extra_keys.len();
    rows.extend(app.extra_keys.iter().cloned());
    // The key column fits the longest keys; the box fits the longest row.
    let key_width = rows.iter().map(|(k, _)| k.width()).max().unwrap_or(0) + 2;
    let widest = rows
        .iter()
        .map(|(_, what)| key_width + 1 + what.width())
        .max()
        .unwrap_or(0);
    // What does not fit the screen's width is cut with an ellipsis.
    let room = (area.width as usize).saturating_sub(key_width + 3);
    let row = |(keys, what): &(String, &str)| {
        let pad = key_width.saturating_sub(keys.width());
        Line::from(vec![
            Span::styled(format!(" {keys}{}", " ".repeat(pad)), app.theme.title()),
            Span::styled(crate::format::ellipsize(what, room), app.theme.text()),
        ])
    };
    let mut lines: Vec<Line> = rows[..rows.len() - extra].iter().map(row).collect();
    if extra > 0 {
        lines.push(Line::from(""));
        lines.extend(rows[rows.len() - extra..].iter().map(row));
    }
    let total = lines.len();
    let rect = centered(
        area,
        (widest + 3).min(u16::MAX as usize) as u16,
        total as u16 + 2,
    );
    // Rows that fit inside the border; the rest scroll.
    let fits = rect.height.saturating_sub(2) as usize;
    let first = app.view.help_scroll.min(total.saturating_sub(fits));
    let title = if fits < total {
        format!(
            " keys {}-{} of {total} (↑↓ scroll) ",
            first + 1,
            (first + fits).min(total)
        )
    } else {
        " keys ".to_string()
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((first.min(u16::MAX as usize) as u16, 0))
            .block(panel(app, title)),
        rect,
    );
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
