//! The bottom line: file state, bad lines, view settings, key hint.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::format::ellipsize;
use crate::tui::app::{App, TimeAxis};

/// One piece of the status line: lower `rank` is kept first when the line
/// is too narrow for all; `left` pieces read from the left edge, the
/// others end at the right edge.
struct Piece {
    rank: u8,
    left: bool,
    text: String,
    style: Style,
    /// May be cut (with an ellipsis) to the room left, at most half the line.
    shrinks: bool,
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let style = Style::default()
        .bg(app.theme.status_bg)
        .fg(app.theme.status_fg);
    let mut pieces = Vec::new();
    let mut put = |rank: u8, left: bool, text: String, style: Style| {
        // Messages (the notice, alerts, errors) are long: they shrink.
        let shrinks = left && (rank == 0 || rank == 2);
        pieces.push(Piece {
            rank,
            left,
            text,
            style,
            shrinks,
        });
    };
    put(3, true, app.title.clone(), style);
    if let Some(run) = app.session.runs.get(app.view.selected_run) {
        let mut state = run.status.label();
        match (run.format, run.dialect) {
            (Some(format), Some(dialect)) => state = format!("{format} ({dialect}) · {state}"),
            (Some(format), None) => state = format!("{format} · {state}"),
            _ => {}
        }
        put(1, true, state, style);
        if let Some(progress) = progress(run) {
            put(1, true, progress, style);
        }
        // The worst alert stays in sight whatever the layout shows.
        // Worst level, newest within it (max_by_key keeps the last maximum).
        if let Some((alert_run, alert)) = app.session.alerts.iter().max_by_key(|(_, a)| a.level) {
            let of = match app.session.runs.get(*alert_run) {
                Some(r) if app.session.runs.len() > 1 => format!("[{}] ", r.label),
                _ => String::new(),
            };
            let colour = match alert.level {
                crate::monitor::Level::Critical => app.theme.critical,
                crate::monitor::Level::Warn => app.theme.warn,
                crate::monitor::Level::Info => app.theme.info,
            };
            put(
                2,
                true,
                format!(
                    "{} {of}{}",
                    super::alerts::symbol(alert.level),
                    alert.message
                ),
                style.fg(colour),
            );
        }
        if run.bad_lines > 0 {
            let why = run
                .last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            put(
                3,
                true,
                format!("{} bad lines skipped{why}", run.bad_lines),
                style.fg(app.theme.warn),
            );
        }
        if run.data.dropped_values() > 0 {
            put(
                3,
                true,
                format!(
                    "over {} metric names: {} values dropped",
                    crate::metrics::store::MAX_METRICS,
                    run.data.dropped_values()
                ),
                style.fg(app.theme.warn),
            );
        }
        if let Some(hint) = run.map_hint() {
            put(
                2,
                true,
                format!("no {} recognised: try {hint}", hint_targets(&hint)),
                style.fg(app.theme.warn),
            );
        }
    }
    if let Some(notice) = &app.notice {
        // First of all: it answers the last key ("q again to quit").
        put(0, true, notice.clone(), style.fg(app.theme.info));
    }
    if let Some(train) = &app.train
        && train.paused
    {
        put(1, false, "PAUSED".into(), style);
    }
    if !app.view.follow {
        put(2, false, "FROZEN".into(), style);
    }
    if app.view.zoom.is_some() {
        put(3, false, "zoomed".into(), style);
    }
    let epoch_indexed = app
        .session
        .runs
        .get(app.view.selected_run)
        .is_some_and(|r| r.data.indexed_by_epoch());
    let x = match (app.view.x_axis.label(), app.time_axis()) {
        ("step", _) if epoch_indexed => "x: epoch".into(),
        (label, Some(TimeAxis::Arrival)) => format!("x: {label} (arrival)"),
        (label, Some(TimeAxis::Missing)) => format!("x: {label} · no timestamps"),
        (label, _) => format!("x: {label}"),
    };
    put(4, false, x, style);
    if !app.view.ignore_outliers {
        put(4, false, "y: all points".into(), style);
    }
    if app.train.is_some() {
        put(5, false, "p policies  e edit".into(), style);
    }
    put(2, false, "? help  q quit".into(), style);
    let (left, right) = fit(pieces, area.width as usize);
    frame.render_widget(Paragraph::new(Line::from(left)).style(style), area);
    frame.render_widget(
        Paragraph::new(Line::from(right)).alignment(Alignment::Right),
        area,
    );
}

/// "step 200/300 · loss 0.312 · acc 0.91": where the run is.
fn progress(run: &crate::session::RunState) -> Option<String> {
    let step = run.data.last_step()?;
    let mut text = match run.total_steps {
        Some(total) => format!("step {step}/{total}"),
        None => format!("step {step}"),
    };
    let last = |name: &str| run.data.column(name).and_then(|c| c.last()).map(|(_, v)| v);
    if let Some(loss) = last(crate::metrics::record::LOSS) {
        text.push_str(&format!(" · loss {}", super::format_value(loss)));
    }
    let acc = run
        .data
        .metric_names()
        .iter()
        .find(|m| m.ends_with("acc") || m.ends_with("accuracy"))
        .and_then(|m| last(m));
    if let Some(acc) = acc {
        text.push_str(&format!(" · acc {}", super::format_value(acc)));
    }
    Some(text)
}

/// Keeps the pieces that fit in `width` (best rank first; a piece that
/// does not fit whole is cut with an ellipsis only if it is the first),
/// as the spans of the left part and of the right part.
fn fit(pieces: Vec<Piece>, width: usize) -> (Vec<Span<'static>>, Vec<Span<'static>>) {
    use unicode_width::UnicodeWidthStr;
    // " a │ b " on the left, "c  d " on the right: each left piece is
    // counted as "│ a ", and the first one's " " is a column less.
    let cost = |p: &Piece| p.text.width() + if p.left { 3 } else { 2 };
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    // Messages take the room left by the pieces of their rank.
    order.sort_by_key(|&i| (pieces[i].rank, pieces[i].shrinks));
    let mut keep = vec![None; pieces.len()];
    let mut used = 0;
    let mut any_left = false;
    for i in order {
        let piece = &pieces[i];
        let overhead = cost(piece) - piece.text.width();
        let text = if piece.shrinks && piece.text.width() > width / 2 {
            ellipsize(&piece.text, (width / 2).max(1))
        } else {
            piece.text.clone()
        };
        // Once there is a left part, its first separator's column is free.
        let line = width + usize::from(piece.left || any_left);
        let room = line.saturating_sub(used + overhead);
        if text.width() <= room {
            used += text.width() + overhead;
            any_left |= piece.left;
            keep[i] = Some(text);
        } else if piece.shrinks && room >= 16 {
            keep[i] = Some(ellipsize(&text, room));
            used = line;
            any_left |= piece.left;
        } else if used == 0 && width > 4 {
            keep[i] = Some(ellipsize(&pieces[i].text, width - 4));
            used = width;
        }
    }
    let mut left = Vec::new();
    let mut right = Vec::new();
    for (piece, text) in pieces.iter().zip(keep) {
        let Some(text) = text else { continue };
        if piece.left {
            let sep = if left.is_empty() { " " } else { "│ " };
            left.push(Span::styled(format!("{sep}{text} "), piece.style));
        } else {
            right.push(Span::styled(format!("{text}  "), piece.style));
        }
    }
    (left, right)
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

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    fn piece(rank: u8, left: bool, text: &str, shrinks: bool) -> Piece {
        Piece {
            rank,
            left,
            text: text.into(),
            style: Style::default(),
            shrinks,
        }
    }

    fn width_of(spans: &[Span]) -> usize {
        spans.iter().map(|s| s.content.width()).sum()
    }

    #[test]
    fn a_cut_message_takes_every_column_left() {
        // Widths where the message is cut to the room left (not to half the line).
        for width in [45, 50, 57] {
            let pieces = vec![
                piece(3, true, "lrtop attach", false),
                piece(1, true, "step 400", false),
                piece(2, true, &"✖ loss climbed to 3.2 ".repeat(8), true),
                piece(2, false, "? help  q quit", false),
            ];
            let (left, right) = fit(pieces, width);
            let text: String = left.iter().map(|s| s.content.as_ref()).collect();
            assert!(text.contains('…'), "{text}");
            assert_eq!(width_of(&left) + width_of(&right), width, "{text}");
        }
    }

    #[test]
    fn pieces_that_fit_are_kept_whole() {
        let pieces = vec![
            piece(3, true, "title", false),
            piece(1, true, "step 1", false),
            piece(2, false, "? help", false),
        ];
        // " title │ step 1 " + "? help  " = 16 + 8 columns.
        let (left, right) = fit(pieces, 24);
        assert_eq!((width_of(&left), width_of(&right)), (16, 8));
        let pieces = vec![
            piece(3, true, "title", false),
            piece(1, true, "step 1", false),
        ];
        // One column short: the title (lower rank) goes.
        let (left, _) = fit(pieces, 15);
        let text: String = left.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, " step 1 ");
    }
}
