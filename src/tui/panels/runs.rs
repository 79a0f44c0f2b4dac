//! The runs list: colour, label, state, records; toggles visibility.

use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::format::ellipsize;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::panel;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = panel(app, Span::styled(" runs ", app.theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = Vec::new();
    for (i, run) in app.session.runs.iter().enumerate() {
        let visible = app.is_visible(i);
        let color = if app.is_ghost(i) {
            app.theme.faint(app.theme.series_color(i))
        } else {
            app.theme.series_color(i)
        };
        let marker = if visible {
            app.theme.run_symbol(i)
        } else {
            "□"
        };
        let mut style = if visible {
            app.theme.text()
        } else {
            app.theme.dimmed()
        };
        if i == app.view.selected_run {
            style = style
                .bg(app.theme.highlight_bg)
                .add_modifier(Modifier::BOLD);
        }
        let key = if i < 9 {
            format!("{} ", i + 1)
        } else {
            "  ".into()
        };
        let mut spans = vec![
            Span::styled(key, app.theme.dimmed()),
            Span::styled(format!("{marker} "), Style::default().fg(color)),
        ];
        // The name first, cut with an ellipsis; the detail in what is left.
        let room = (inner.width as usize).saturating_sub(4);
        let label = ellipsize(&run.label, room);
        let room = room.saturating_sub(label.width());
        spans.push(Span::styled(label, style));
        let mut detail = format!("  {} · {} rec", run.status.label(), run.records);
        if run.bad_lines > 0 {
            detail.push_str(&format!(" · {} bad", run.bad_lines));
        }
        if room > 3 {
            spans.push(Span::styled(ellipsize(&detail, room), app.theme.dimmed()));
        }
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled("no runs", app.theme.dimmed())));
    }
    // Keep the selected run in view.
    let height = inner.height as usize;
    let skip = app
        .view
        .selected_run
        .saturating_sub(height.saturating_sub(1));
    frame.render_widget(Paragraph::new(lines).scroll((skip as u16, 0)), inner);
}
