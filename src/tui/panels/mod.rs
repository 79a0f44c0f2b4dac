//! One module per panel; `render` lays them out and draws a frame.

mod alerts;
mod charts;
mod overlays;
mod runs;
mod stats;
mod status;
mod trials;

pub use crate::format::{format_duration, format_value};

use ratatui::Frame;
use ratatui::style::Style;
use ratatui::widgets::{Block, Borders};

use super::app::{App, Hitboxes};
use super::layout;

pub fn render(frame: &mut Frame, app: &mut App) {
    app.refresh_smoothing();
    let area = frame.area();
    if app.theme.background != ratatui::style::Color::Reset {
        frame.render_widget(
            Block::default().style(Style::default().bg(app.theme.background)),
            area,
        );
    }
    let dashboard = trials::render(frame, area, app);
    let areas = layout::split(dashboard, app.session.runs.len());
    let mut hit = Hitboxes::default();
    if let Some(r) = areas.lr {
        charts::render_lr(frame, r, app);
        hit.charts.push(r);
    }
    if let Some(r) = areas.loss {
        charts::render_loss(frame, r, app);
        hit.charts.push(r);
    }
    if let Some(r) = areas.third {
        charts::render_third(frame, r, app);
        hit.charts.push(r);
    }
    if let Some(r) = areas.runs {
        runs::render(frame, r, app);
        hit.runs = Some(r);
    }
    if let Some(r) = areas.stats {
        stats::render(frame, r, app);
    }
    if let Some(r) = areas.alerts {
        alerts::render(frame, r, app);
        hit.alerts = Some(r);
    }
    if let Some(r) = areas.status {
        status::render(frame, r, app);
    }
    if app.view.help {
        overlays::help(frame, area, app);
    } else if let Some(selected) = app.view.picker {
        overlays::metric_picker(frame, area, app, selected);
    } else if let Some(train) = &app.train {
        crate::tui::train_view::render(frame, app, train);
    }
    app.hitboxes = hit;
}

/// A bordered block with the theme's title style.
fn panel<'a>(app: &App, title: impl Into<ratatui::text::Line<'a>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(false))
        .title(title)
        .title_style(app.theme.title())
}
