//! Alerts from the schedule monitor: critical first, then warnings, then
//! information, newest first within each; the title counts each level.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::panel;
use crate::monitor::Level;
use crate::tui::app::App;

pub fn symbol(level: Level) -> &'static str {
    match level {
        Level::Critical => "✖",
        Level::Warn => "▲",
        Level::Info => "●",
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let count = |level: Level| {
        app.session
            .alerts
            .iter()
            .filter(|(_, a)| a.level == level)
            .count()
    };
    let counts: Vec<String> = [Level::Critical, Level::Warn, Level::Info]
        .into_iter()
        .filter_map(|l| {
            let n = count(l);
            (n > 0).then(|| format!("{} {n}", symbol(l)))
        })
        .collect();
    let title = if counts.is_empty() {
        Span::styled(" alerts ", app.theme.title())
    } else {
        Span::styled(format!(" alerts {} ", counts.join(" ")), app.theme.title())
    };
    let block = panel(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = Vec::new();
    let many_runs = app.session.runs.len() > 1;
    let mut order: Vec<usize> = (0..app.session.alerts.len()).collect();
    // Worst first; newest first within a level.
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(app.session.alerts[i].1.level),
            std::cmp::Reverse(i),
        )
    });
    // Scrolled: the first alerts in this order are above the pane.
    let skipped = app.view.alerts_scroll.min(order.len().saturating_sub(1));
    if skipped > 0 {
        lines.push(Line::from(Span::styled(
            format!("↑ {skipped} more (PgUp)"),
            app.theme.dimmed(),
        )));
    }
    for (run, alert) in order[skipped..].iter().map(|&i| &app.session.alerts[i]) {
        let color = app.theme.level_color(alert.level);
        let mut head = vec![Span::styled(
            format!("{} ", symbol(alert.level)),
            Style::default().fg(color),
        )];
        if many_runs {
            head.push(Span::styled(
                format!("[{}] ", app.session.runs[*run].label),
                app.theme.dimmed(),
            ));
        }
        if let Some(step) = alert.step {
            head.push(Span::styled(format!("step {step}: "), app.theme.dimmed()));
        }
        head.push(Span::styled(
            alert.message.clone(),
            app.theme
                .text()
                .add_modifier(if alert.level == Level::Critical {
                    Modifier::BOLD
                } else {
                    Modifier::empty()
                }),
        ));
        lines.push(Line::from(head));
        if !alert.suggestion.is_empty() && inner.height as usize > lines.len() + 1 {
            lines.push(Line::from(Span::styled(
                format!("  → {}", alert.suggestion),
                app.theme.dimmed(),
            )));
        }
        if lines.len() >= inner.height as usize {
            break;
        }
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "no alerts: the schedule monitor is watching",
            app.theme.dimmed(),
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
