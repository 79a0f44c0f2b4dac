//! The LR, loss and third (grad norm / eval / any metric) charts.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line as TextLine, Span};
use unicode_width::UnicodeWidthStr;

use super::panel;
use crate::metrics::XAxis;
use crate::metrics::record::{GRAD_NORM, LOSS, LR, is_eval_loss};
use crate::tui::app::{App, ThirdPanel, TimeAxis};
use crate::tui::chart::{ChartOptions, Line, Prepared, XLabels};

/// Points per run per chart: two per cell of the plot width (braille).
fn buckets(area: Rect) -> usize {
    (area.width.saturating_sub(12) as usize).max(4) * 2
}

fn options(app: &App, x_range: (f64, f64), log_y: bool, clip: bool) -> ChartOptions {
    ChartOptions {
        log_y,
        x_range: Some(x_range),
        show_legend: false,
        ignore_outliers: app.view.ignore_outliers && clip,
        x_labels: match app.view.x_axis {
            XAxis::RelativeTime => XLabels::Duration,
            XAxis::WallTime => XLabels::Clock,
            XAxis::Step | XAxis::Epoch => XLabels::Number,
        },
    }
}

fn run_color(app: &App, run: usize) -> Color {
    if app.is_ghost(run) {
        app.theme.faint(app.theme.series_color(run))
    } else {
        app.theme.series_color(run)
    }
}

/// One metric of every visible run.
fn metric_lines(app: &App, name: &str, x_range: (f64, f64), n: usize) -> Vec<Line> {
    app.visible_runs()
        .filter_map(|(i, run)| {
            let points = run
                .data
                .decimated(name, app.view.x_axis, x_range.0, x_range.1, n);
            (!points.is_empty()).then(|| Line {
                name: run.label.clone(),
                color: run_color(app, i),
                points,
                marker: app.theme.run_marker(i),
            })
        })
        .collect()
}

fn title<'a>(app: &App, name: &str, detail: String) -> TextLine<'a> {
    let mut spans = vec![Span::styled(format!(" {name} "), app.theme.title())];
    if !detail.is_empty() {
        spans.push(Span::styled(format!("{detail} "), app.theme.dimmed()));
    }
    TextLine::from(spans)
}

/// Said instead of a chart on a time axis over a log without times
/// (arrival times of a file read at once would all be the same instant).
const NO_TIMESTAMPS: &str = "no timestamps in this log: x shows steps or epochs";

fn empty_message(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    block: ratatui::widgets::Block,
    text: &str,
) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height > 0 {
        // Wrapped at word boundaries: a narrow chart never cuts a word.
        frame.render_widget(
            ratatui::widgets::Paragraph::new(Span::styled(text.to_string(), app.theme.dimmed()))
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
    }
}

/// Draws lines; `(log_y, clip)`: log y axis, and whether outliers may be
/// left out of the y range.
fn draw(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    block: ratatui::widgets::Block,
    lines: Vec<Line>,
    x: (f64, f64),
    (log_y, clip): (bool, bool),
) {
    let opts = || options(app, x, log_y, clip);
    let prepared = Prepared::from_decimated(lines, x, opts());
    prepared.render(frame, area, block, app.theme.axis(), opts());
}

pub fn render_lr(frame: &mut Frame, area: Rect, app: &App) {
    let log_y = app.lr_shown_log();
    let log = if log_y { "log" } else { "" };
    let block = panel(app, title(app, "learning rate", log.to_string()));
    if app.time_axis() == Some(TimeAxis::Missing) {
        return empty_message(app, frame, area, block, NO_TIMESTAMPS);
    }
    let Some(x) = app.visible_x_range() else {
        return empty_message(app, frame, area, block, "waiting for records");
    };
    let lines = metric_lines(app, LR, x, buckets(area));
    if lines.is_empty() {
        return empty_message(app, frame, area, block, "no learning rate logged");
    }
    // Every LR was set on purpose: its peaks are never clipped.
    draw(frame, area, app, block, lines, x, (log_y, false));
}

pub fn render_loss(frame: &mut Frame, area: Rect, app: &App) {
    let log = app.loss_shown_log();
    // Where a resumed run went back to (a job restarted from a checkpoint).
    let resumes: Vec<u64> = if app.view.x_axis == XAxis::Step {
        app.visible_runs()
            .flat_map(|(_, r)| r.resumed_at.iter().copied())
            .collect()
    } else {
        Vec::new()
    };
    let resumed = match resumes.as_slice() {
        [] => String::new(),
        [one] => format!(" · resumed @{one} (│)"),
        many => format!(" · {} resumes (│)", many.len()),
    };
    let with_eval = app.visible_runs().any(|(_, r)| {
        r.data
            .metric_names()
            .iter()
            .any(|m| crate::metrics::record::is_eval_loss(m))
    });
    let detail = format!(
        "smoothing {:.2}{}{}{resumed}",
        app.view.smoothing,
        if log { " · log" } else { "" },
        if with_eval { " · with eval loss" } else { "" }
    );
    let block = panel(app, title(app, "loss", detail));
    if app.time_axis() == Some(TimeAxis::Missing) {
        return empty_message(app, frame, area, block, NO_TIMESTAMPS);
    }
    let Some(x) = app.visible_x_range() else {
        return empty_message(app, frame, area, block, "waiting for records");
    };
    let n = buckets(area);
    let mut lines = Vec::new();
    // Raw loss faint underneath, smoothed bright on top (TensorBoard's look).
    for (i, run) in app.visible_runs() {
        let Some(col) = run.data.column(LOSS) else {
            continue;
        };
        let color = run_color(app, i);
        let raw = run.data.decimated(LOSS, app.view.x_axis, x.0, x.1, n);
        if app.view.smoothing > 0.0
            && let Some(smoothed) = app
                .smoothed
                .get(&i)
                .filter(|s| s.values.len() == col.values.len())
        {
            let smooth_points = run.data.decimated_aligned(
                LOSS,
                &smoothed.values,
                &smoothed.index,
                app.view.x_axis,
                x.0,
                x.1,
                n,
            );
            lines.push(Line {
                name: format!("{} (raw)", run.label),
                color: app.theme.faint(color),
                points: raw,
                marker: app.theme.run_marker(i),
            });
            lines.push(Line {
                name: run.label.clone(),
                color,
                points: smooth_points,
                marker: app.theme.run_marker(i),
            });
        } else {
            lines.push(Line {
                name: run.label.clone(),
                color,
                points: raw,
                marker: app.theme.run_marker(i),
            });
        }
    }
    // Eval loss on the same axes, in the run's colour: where training and
    // evaluation part is the point of looking.
    for (i, run) in app.visible_runs() {
        let Some(eval) = run
            .data
            .metric_names()
            .iter()
            .find(|m| crate::metrics::record::is_eval_loss(m))
        else {
            continue;
        };
        let points = run.data.decimated(eval, app.view.x_axis, x.0, x.1, n);
        if !points.is_empty() {
            lines.push(Line {
                name: format!("{} {eval}", run.label),
                color: if app.session.runs.len() > 1 {
                    run_color(app, i)
                } else {
                    app.theme.info
                },
                points,
                marker: app.theme.run_marker(i),
            });
        }
    }
    if lines.is_empty() {
        return empty_message(app, frame, area, block, "no loss logged");
    }
    let markers: Vec<f64> = resumes.iter().map(|&s| s as f64).collect();
    let opts = || options(app, x, log, true);
    let mut prepared = Prepared::from_decimated(lines, x, opts());
    prepared.add_vertical_markers(&markers, app.theme.warn);
    prepared.render(frame, area, block, app.theme.axis(), opts());
}

pub fn render_third(frame: &mut Frame, area: Rect, app: &App) {
    let (name, detail) = match &app.view.third {
        ThirdPanel::GradNorm => ("grad norm".to_string(), "m: pick metric".to_string()),
        ThirdPanel::Eval => ("eval metrics".to_string(), "m: pick metric".to_string()),
        ThirdPanel::Metric(m) => (m.clone(), "m: pick metric".to_string()),
    };
    let mut block = panel(app, title(app, &name, detail));
    if app.time_axis() == Some(TimeAxis::Missing) {
        return empty_message(app, frame, area, block, NO_TIMESTAMPS);
    }
    let Some(x) = app.visible_x_range() else {
        return empty_message(app, frame, area, block, "waiting for records");
    };
    let n = buckets(area);
    let lines = match &app.view.third {
        ThirdPanel::GradNorm => metric_lines(app, GRAD_NORM, x, n),
        ThirdPanel::Metric(m) => metric_lines(app, m, x, n),
        ThirdPanel::Eval => {
            let (lines, legend) = eval_lines(app, x, n, area.width.saturating_sub(2) as usize);
            if !legend.spans.is_empty() {
                block = panel(app, legend);
            }
            lines
        }
    };
    if lines.is_empty() {
        let what = match &app.view.third {
            ThirdPanel::GradNorm => "no grad norm logged (m: pick another metric)",
            ThirdPanel::Eval => "no eval metrics logged yet",
            ThirdPanel::Metric(_) => "no values yet",
        };
        return empty_message(app, frame, area, block, what);
    }
    // Grad norms span decades: log scale follows the global toggle.
    draw(frame, area, app, block, lines, x, (app.view.log_y, true));
}

/// The eval metrics that share the leading metric's scale (eval loss when
/// logged), overlaid, and a title that is their legend and names those left
/// out: `eval_runtime` in seconds would flatten `eval_loss` to a line at 0.
fn eval_lines<'a>(app: &App, x: (f64, f64), n: usize, width: usize) -> (Vec<Line>, TextLine<'a>) {
    let mut metrics: Vec<(String, Vec<Line>)> = app
        .eval_metrics()
        .into_iter()
        .map(|m| {
            let lines = metric_lines(app, &m, x, n);
            (m, lines)
        })
        .filter(|(_, lines)| !lines.is_empty())
        .collect();
    if metrics.is_empty() {
        return (Vec::new(), TextLine::default());
    }
    if let Some(i) = metrics.iter().position(|(m, _)| is_eval_loss(m)) {
        let loss = metrics.remove(i);
        metrics.insert(0, loss);
    }
    let scale = |lines: &[Line]| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1.abs()))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    };
    let base = scale(&metrics[0].1);
    let same_scale =
        |s: f64| s == base || (s > 0.0 && base > 0.0 && (s / base).max(base / s) <= 10.0);
    let (shown, other): (Vec<_>, Vec<_>) = metrics
        .into_iter()
        .enumerate()
        .partition(|(k, (_, lines))| *k == 0 || same_scale(scale(lines)));
    let runs = app.session.runs.len();
    let mut entries = Vec::new();
    let mut out = Vec::new();
    for (k, (_, (metric, lines))) in shown.into_iter().enumerate() {
        // The first metric in the runs' colours, each other in its own.
        let color = (k > 0).then(|| app.theme.series_color(k + runs));
        entries.push((color.unwrap_or(lines[0].color), metric.clone()));
        for mut line in lines {
            line.name = format!("{} {metric}", line.name);
            if let Some(c) = color {
                line.color = c;
            }
            out.push(line);
        }
    }
    let others: Vec<String> = other.into_iter().map(|(_, (m, _))| m).collect();
    (out, legend_title(app, &entries, &others, width))
}

/// The eval chart's title: " eval ━ a ━ b · other scales: c (g) ", made to
/// fit `width`: first the left-out metrics become a count, then the longest
/// names are cut (to 8 columns at least), and on a chart narrower still
/// only the first metric is named, the rest counted.
fn legend_title<'a>(
    app: &App,
    entries: &[(Color, String)],
    others: &[String],
    width: usize,
) -> TextLine<'a> {
    let spans = |names: &[String], note: String| {
        let mut spans = vec![Span::styled(" eval ", app.theme.title())];
        for ((color, _), name) in entries.iter().zip(names) {
            spans.push(Span::styled(
                "━ ",
                ratatui::style::Style::default().fg(*color),
            ));
            spans.push(Span::styled(format!("{name} "), app.theme.text()));
        }
        if !note.is_empty() {
            spans.push(Span::styled(note, app.theme.dimmed()));
        }
        spans
    };
    let fits = |spans: &[Span]| spans.iter().map(|s| s.content.width()).sum::<usize>() <= width;
    let names: Vec<String> = entries.iter().map(|(_, n)| n.clone()).collect();
    let full_note = if others.is_empty() {
        String::new()
    } else {
        format!("· other scales: {} (g) ", others.join(", "))
    };
    let full = spans(&names, full_note);
    if fits(&full) {
        return TextLine::from(full);
    }
    let note = if others.is_empty() {
        String::new()
    } else {
        format!("· +{} on other scales (g) ", others.len())
    };
    // The longest names lose a column at a time.
    let fixed = 6 + 2 * entries.len() + note.width();
    let mut widths: Vec<usize> = names.iter().map(|n| n.width()).collect();
    while fixed + widths.iter().map(|w| w + 1).sum::<usize>() > width {
        match widths.iter_mut().filter(|w| **w > 8).max_by_key(|w| **w) {
            Some(w) => *w -= 1,
            None => break,
        }
    }
    let cut: Vec<String> = names
        .iter()
        .zip(&widths)
        .map(|(n, &w)| crate::format::ellipsize(n, w))
        .collect();
    let shortened = spans(&cut, note);
    if fits(&shortened) || entries.len() < 2 && others.is_empty() {
        return TextLine::from(shortened);
    }
    // A narrow chart: the first metric, then counts.
    let first = crate::format::ellipsize(&names[0], width.saturating_sub(22));
    let mut short = vec![
        Span::styled(" eval ", app.theme.title()),
        Span::styled("━ ", ratatui::style::Style::default().fg(entries[0].0)),
        Span::styled(format!("{first} "), app.theme.text()),
    ];
    if entries.len() > 1 {
        short.push(Span::styled(
            format!("+{} ", entries.len() - 1),
            app.theme.text(),
        ));
    }
    if !others.is_empty() {
        short.push(Span::styled(
            format!("· +{} (g) ", others.len()),
            app.theme.dimmed(),
        ));
    }
    TextLine::from(short)
}
