//! The LR range test as a text chart: the smoothed loss against the
//! learning rate on a log axis, each suggestion a labelled vertical line,
//! the cyclic range bracketed on the bottom row, and a legend.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as Segment};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::series_color;
use crate::format::format_tick;
use crate::tune::range_test::RangeTestResult;

const Y_LABELS: u16 = 8;

/// (letter, name, value, colour) of each suggestion that exists.
fn markers(result: &RangeTestResult) -> Vec<(&'static str, &'static str, f64, Color)> {
    let s = &result.suggestions;
    [
        ("V", "valley", s.valley, series_color(2)),
        ("S", "steep", s.steep, series_color(1)),
        ("M", "minimum", s.minimum, series_color(3)),
    ]
    .into_iter()
    .filter_map(|(letter, name, v, c)| v.map(|v| (letter, name, v, c)))
    .collect()
}

fn legend(result: &RangeTestResult) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = markers(result)
        .into_iter()
        .map(|(letter, name, v, color)| {
            Line::from(vec![
                Span::styled(format!(" {letter} "), Style::default().fg(color)),
                Span::raw(format!("{name:<8} {}", format_tick(v))),
            ])
        })
        .collect();
    lines.push(Line::from(match result.suggestions.cyclic {
        Some([lo, hi]) => format!(
            " [] cyclic   base_lr {} · max_lr {}",
            format_tick(lo),
            format_tick(hi)
        ),
        None => " [] cyclic   no range (the loss never fell)".to_string(),
    }));
    let end = if result.diverged {
        "stopped: the smoothed loss diverged"
    } else {
        "ran every update"
    };
    lines.push(Line::from(Span::styled(
        format!(" {} updates · {end}", result.lrs.len()),
        Style::default().fg(Color::Gray),
    )));
    lines
}

/// Decade labels placed under their columns, skipping any that would touch.
fn x_axis(lo: f64, hi: f64, width: usize) -> String {
    let mut row = vec![' '; width];
    let decades = (hi.floor() - lo.ceil()).max(0.0) as usize + 1;
    let step = decades.div_ceil(6).max(1);
    let mut e = lo.ceil();
    let mut free_from = 0usize;
    while e <= hi {
        let label = format_tick(10f64.powf(e));
        let col = ((e - lo) / (hi - lo) * (width.saturating_sub(1)) as f64).round() as usize;
        let start = col.saturating_sub(label.len() / 2);
        if start >= free_from && start + label.len() <= width {
            for (i, c) in label.chars().enumerate() {
                row[start + i] = c;
            }
            free_from = start + label.len() + 1;
        }
        e += step as f64;
    }
    row.into_iter().collect()
}

fn bounds(result: &RangeTestResult) -> ((f64, f64), (f64, f64)) {
    let xs = result.lrs.iter().filter(|x| **x > 0.0).map(|x| x.log10());
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (-7.0, 1.0)
    };
    let ys = result.losses.iter().copied().filter(|y| y.is_finite());
    let y0 = ys.clone().fold(f64::INFINITY, f64::min);
    let y1 = ys.fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1) = if y0.is_finite() && y1 > y0 {
        let pad = (y1 - y0) * 0.05;
        (y0 - pad, y1 + pad)
    } else if y0.is_finite() {
        (y0 - 0.5, y0 + 0.5)
    } else {
        (0.0, 1.0)
    };
    ((lo, hi), (y0, y1))
}

pub fn draw(frame: &mut Frame, area: Rect, result: &RangeTestResult) {
    let legend = legend(result);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(legend.len() as u16)]).areas(area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" LR range test: smoothed loss vs learning rate (log) ");
    let inner = block.inner(chart_area);
    frame.render_widget(block, chart_area);
    frame.render_widget(Paragraph::new(legend), legend_area);
    if inner.width <= Y_LABELS + 2 || inner.height < 3 {
        return;
    }
    let [labels, plot] =
        Layout::horizontal([Constraint::Length(Y_LABELS), Constraint::Min(1)]).areas(inner);
    let [canvas_area, x_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(plot);
    let ((x0, x1), (y0, y1)) = bounds(result);
    let axis = Style::default().fg(Color::Gray);
    let h = canvas_area.height as usize;
    let mut y_rows = vec![String::new(); h];
    for (row, value) in [(0, y1), (h / 2, (y0 + y1) / 2.0), (h - 1, y0)] {
        y_rows[row] = format!("{:>w$} ", format_tick(value), w = Y_LABELS as usize - 1);
    }
    frame.render_widget(
        Paragraph::new(
            y_rows
                .into_iter()
                .map(|r| Line::styled(r, axis))
                .collect::<Vec<_>>(),
        ),
        Rect {
            height: canvas_area.height,
            ..labels
        },
    );
    frame.render_widget(
        Paragraph::new(Line::styled(x_axis(x0, x1, x_area.width as usize), axis)),
        x_area,
    );
    let points: Vec<(f64, f64)> = result
        .lrs
        .iter()
        .zip(&result.losses)
        .filter(|(x, y)| **x > 0.0 && y.is_finite())
        .map(|(x, y)| (x.log10(), *y))
        .collect();
    let marks = markers(result);
    let cyclic = result.suggestions.cyclic;
    let canvas = Canvas::default()
        .x_bounds([x0, x1])
        .y_bounds([y0, y1])
        .marker(Marker::Braille)
        .paint(move |ctx| {
            for &(letter, _, v, color) in &marks {
                let x = v.log10();
                ctx.draw(&Segment::new(x, y0, x, y1, color));
                ctx.print(x, y1, Span::styled(letter, Style::default().fg(color)));
            }
            if let Some([lo, hi]) = cyclic {
                ctx.print(lo.log10(), y0, "[");
                ctx.print(hi.log10(), y0, "]");
            }
            ctx.layer();
            for pair in points.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                ctx.draw(&Segment::new(a.0, a.1, b.0, b.1, series_color(0)));
            }
        });
    frame.render_widget(canvas, canvas_area);
}

/// The chart as plain text (for pipes, files and tests).
pub fn render_text(result: &RangeTestResult, width: u16, height: u16) -> String {
    super::terminal::render_text(width, height, |f| draw(f, f.area(), result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decade_labels_do_not_overlap() {
        let row = x_axis(-7.0, 1.0, 60);
        assert!(row.starts_with("1e-7"), "{row}");
        assert!(row.trim_end().ends_with("10"), "{row}");
        let narrow = x_axis(-7.0, 1.0, 12);
        assert!(narrow.len() <= 12);
    }
}
