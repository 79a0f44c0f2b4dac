//! The trials table of tune mode, above the dashboard: rank, trial, status,
//! accuracy, steps to target, wall time and spec; the leader starred, the
//! selected row highlighted. Running trials show their latest evaluation.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::panel;
use crate::format::format_tick;
use crate::tui::app::App;
use crate::tui::tune_view::TuneView;
use crate::tune::board::{RowState, TrialBoard};

/// Draws the table when the app is in tune mode and no trial is open;
/// returns the area left for the dashboard.
pub fn render(frame: &mut Frame, area: Rect, app: &App) -> Rect {
    let (Some(tune), Some(board)) = (&app.tune, &app.session.trials) else {
        return area;
    };
    if tune.focus.is_some() || area.height < 4 || area.width < 20 {
        return area;
    }
    // Small screens: the table alone. Else up to 40% of the height.
    let wanted = board.rows.len() as u16 + 3;
    let height = if area.height < 18 {
        area.height
    } else {
        wanted.clamp(5, area.height * 2 / 5)
    };
    let [table, rest] =
        Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(area);
    draw(frame, table, app, tune, board);
    rest
}

fn title(app: &App, tune: &TuneView, board: &TrialBoard) -> Line<'static> {
    let done = board
        .rows
        .iter()
        .filter(|r| r.state == RowState::Done)
        .count();
    let arrow = if tune.reverse { "↑" } else { "↓" };
    let mut spans = vec![
        Span::styled(" trials ", app.theme.title()),
        Span::styled(
            format!(
                "{done}/{} done · {} · sort: {} {arrow} · s sort · r reverse · Enter open ",
                board.rows.len(),
                board.objective.as_str(),
                tune.sort.label()
            ),
            app.theme.dimmed(),
        ),
    ];
    if board.finished {
        spans.push(Span::styled(
            "· finished ",
            Style::default().fg(app.theme.ok),
        ));
    }
    Line::from(spans)
}

fn cell(text: String, width: usize) -> String {
    let count = text.chars().count();
    if count > width {
        text.chars()
            .take(width.saturating_sub(1))
            .collect::<String>()
            + "…"
    } else {
        format!("{text:>width$}")
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App, tune: &TuneView, board: &TrialBoard) {
    let block = panel(app, title(app, tune, board));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let widths = [5usize, 4, 11, 7, 7, 8, 7];
    let fixed: usize = widths.iter().map(|w| w + 1).sum();
    let spec_width = (inner.width as usize).saturating_sub(fixed).max(4);
    let header = ["rank", "#", "status", "final", "best", "→target", "wall"];
    let mut head: Vec<Span> = header
        .iter()
        .zip(widths)
        .map(|(h, w)| Span::styled(format!("{} ", cell(h.to_string(), w)), app.theme.dimmed()))
        .collect();
    head.push(Span::styled("spec", app.theme.dimmed()));
    let mut lines = vec![Line::from(head)];
    let order = tune.order(board);
    let ranks = board.ranks();
    let leader = board.leader();
    let rows_visible = inner.height.saturating_sub(1) as usize;
    let selected = tune.selected_position(board);
    let skip = selected.saturating_sub(rows_visible.saturating_sub(1));
    for (position, &r) in order.iter().enumerate().skip(skip).take(rows_visible) {
        let row = &board.rows[r];
        let run = app.session.runs.get(row.run);
        let live = |name: &str| run.and_then(|s| s.last(name));
        let (final_acc, best_acc, to_target, wall) = match &row.trial {
            Some(t) => (
                t.final_acc,
                t.best_acc,
                t.steps_to_target.map(|s| s.to_string()),
                (t.steps > 0).then(|| format!("{}s", format_tick(t.wall_s))),
            ),
            None => (live("eval_acc"), None, None, None),
        };
        let status = match row.state {
            RowState::Running => {
                let step = run.and_then(|s| s.data.last_step()).unwrap_or(0);
                format!("{step}/{}", row.job.steps)
            }
            _ => row.status(),
        };
        let acc = |x: Option<f64>| {
            x.filter(|v| v.is_finite())
                .map_or("-".into(), |v| format!("{v:.4}"))
        };
        let is_leader = leader == Some(r);
        let rank = match ranks[r] {
            Some(k) if is_leader => format!("★{k}"),
            Some(k) => k.to_string(),
            None => "-".into(),
        };
        let values = [
            rank,
            format!("#{}", row.job.index),
            status,
            acc(final_acc),
            acc(best_acc),
            to_target.unwrap_or_else(|| "-".into()),
            wall.unwrap_or_else(|| "-".into()),
        ];
        let mut style = match (&row.state, &row.trial) {
            (RowState::Done, Some(t)) if !t.is_ok() => Style::default().fg(app.theme.critical),
            (RowState::Queued, _) => app.theme.dimmed(),
            _ => app.theme.text(),
        };
        if is_leader {
            style = style.fg(app.theme.ok).add_modifier(Modifier::BOLD);
        }
        if position == selected {
            style = style.bg(app.theme.highlight_bg);
        }
        let mut spans: Vec<Span> = values
            .into_iter()
            .zip(widths)
            .map(|(v, w)| Span::styled(format!("{} ", cell(v, w)), style))
            .collect();
        let spec: String = if row.job.spec.chars().count() > spec_width {
            row.job
                .spec
                .chars()
                .take(spec_width.saturating_sub(1))
                .collect::<String>()
                + "…"
        } else {
            row.job.spec.clone()
        };
        let budget = if row.job.steps != board.full_steps {
            format!("@{} ", row.job.steps)
        } else {
            String::new()
        };
        spans.push(Span::styled(format!("{budget}{spec}"), style));
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
