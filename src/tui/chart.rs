//! A line chart of several series, ready for ratatui: decimated to the plot
//! width, optionally log-scaled in y, with readable tick labels.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition};

use crate::format::format_tick;
use crate::metrics::decimate;

pub struct Line {
    pub name: String,
    pub color: Color,
    pub points: Vec<(f64, f64)>,
    /// How its points are drawn: braille, or on a theme without colours
    /// a different marker per run.
    pub marker: Marker,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartOptions {
    pub log_y: bool,
    /// x range to show; None fits the data.
    pub x_range: Option<(f64, f64)>,
    pub show_legend: bool,
    /// Fit y to the 5th-95th percentile of the points instead of their extremes.
    pub ignore_outliers: bool,
    pub x_labels: XLabels,
}

/// How x values read on the axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XLabels {
    #[default]
    Number,
    /// Seconds shown as 1m30s.
    Duration,
    /// Unix seconds shown as a UTC clock time, 14:03:22.
    Clock,
}

impl XLabels {
    pub fn format(self, x: f64, span: f64) -> String {
        match self {
            XLabels::Number => format_tick(if span > 20.0 { x.round() } else { x }),
            XLabels::Duration => {
                let s = x.max(0.0).round() as u64;
                match s {
                    0..=59 => format!("{s}s"),
                    60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
                    _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
                }
            }
            XLabels::Clock => {
                let s = x.max(0.0).round() as u64 % 86_400;
                format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
            }
        }
    }
}

impl Default for ChartOptions {
    fn default() -> Self {
        ChartOptions {
            log_y: false,
            x_range: None,
            show_legend: true,
            ignore_outliers: false,
            x_labels: XLabels::Number,
        }
    }
}

/// Series transformed for drawing (decimated, log-scaled) with axis bounds.
/// A series ready to draw: name, colour, points.
/// Name, colour, points, marker.
type DrawLine = (String, Color, Vec<(f64, f64)>, Marker);

pub struct Prepared {
    lines: Vec<DrawLine>,
    x_bounds: [f64; 2],
    y_bounds: [f64; 2],
    log_y: bool,
}

impl Prepared {
    pub fn new(lines: &[Line], opts: ChartOptions, plot_width: u16) -> Prepared {
        let (mut x_lo, mut x_hi) = opts.x_range.unwrap_or_else(|| {
            let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
            let lo = xs.clone().fold(f64::INFINITY, f64::min);
            let hi = xs.fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        });
        if !x_lo.is_finite() || !x_hi.is_finite() {
            (x_lo, x_hi) = (0.0, 1.0);
        }
        if x_hi <= x_lo {
            x_hi = x_lo + 1.0;
        }
        // Braille markers give two dots per cell horizontally.
        let buckets = (plot_width as usize).max(1) * 2;
        let decimated = lines
            .iter()
            .map(|l| Line {
                name: l.name.clone(),
                color: l.color,
                points: decimate::min_max(&l.points, x_lo, x_hi, buckets),
                marker: l.marker,
            })
            .collect();
        Prepared::from_decimated(decimated, (x_lo, x_hi), opts)
    }

    /// Lines already reduced to the plot width, shown over `x_range`.
    pub fn from_decimated(lines: Vec<Line>, x_range: (f64, f64), opts: ChartOptions) -> Prepared {
        let (x_lo, mut x_hi) = x_range;
        if x_hi <= x_lo {
            x_hi = x_lo + 1.0;
        }
        let single = lines.len() == 1;
        let mut prepared: Vec<DrawLine> = lines
            .into_iter()
            .map(|l| {
                let mut pts = l.points;
                pts.retain(|p| p.1.is_finite());
                if opts.log_y {
                    pts.retain(|p| p.1 > 0.0);
                    for p in &mut pts {
                        p.1 = p.1.log10();
                    }
                }
                (l.name, l.color, pts, l.marker)
            })
            .collect();
        let (mut y_lo, mut y_hi) = y_extent(&prepared, opts.ignore_outliers);
        if !y_lo.is_finite() || !y_hi.is_finite() {
            (y_lo, y_hi) = (0.0, 1.0);
        }
        if opts.log_y {
            y_lo = y_lo.floor();
            y_hi = y_hi.ceil();
            if y_hi <= y_lo {
                y_hi = y_lo + 1.0;
            }
            // Whole decades per label, at most five labels.
            let step = ((y_hi - y_lo) / 4.0).ceil();
            y_hi = y_lo + step * ((y_hi - y_lo) / step).ceil();
        } else {
            // A constant (a fixed LR) sits mid-height between 0 and twice
            // its value, rather than on an axis of identical labels.
            if y_hi - y_lo <= y_hi.abs().max(y_lo.abs()) * 1e-9 {
                let y = y_hi;
                (y_lo, y_hi) = match y {
                    y if y > 0.0 => (0.0, 2.0 * y),
                    y if y < 0.0 => (2.0 * y, 0.0),
                    _ => (0.0, 1.0),
                };
            }
            // Round labels: the bounds widen to multiples of a round step
            // (never below 0 for a positive series, which floors to 0).
            (y_lo, y_hi) = round_bounds(y_lo, y_hi, 5, &decimal_steps);
        }
        prepared.retain(|l| !l.2.is_empty() || single);
        Prepared {
            lines: prepared,
            x_bounds: [x_lo, x_hi],
            y_bounds: [y_lo, y_hi],
            log_y: opts.log_y,
        }
    }

    /// Vertical lines at these x values (a resumed run's resume steps),
    /// across the whole y range; they do not change the bounds.
    pub fn add_vertical_markers(&mut self, xs: &[f64], color: Color) {
        let [lo, hi] = self.y_bounds;
        for &x in xs {
            if x >= self.x_bounds[0] && x <= self.x_bounds[1] {
                self.lines.push((
                    String::new(),
                    color,
                    vec![(x, lo), (x, hi)],
                    Marker::Braille,
                ));
            }
        }
    }

    pub fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        block: Block,
        axis_style: Style,
        opts: ChartOptions,
    ) {
        let datasets: Vec<Dataset> = self
            .lines
            .iter()
            .map(|(name, color, pts, marker)| {
                Dataset::default()
                    .name(name.clone())
                    .marker(*marker)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(*color))
                    .data(pts)
            })
            .collect();
        // Round x labels, as many as fit the width without touching.
        let [x_lo, x_hi] = self.x_bounds;
        let label_width = [x_lo, x_hi]
            .iter()
            .map(|&x| opts.x_labels.format(x, x_hi - x_lo).chars().count())
            .max()
            .unwrap_or(4);
        let plot_width = area.width.saturating_sub(10) as usize;
        let max_intervals = (plot_width / (label_width + 3)).clamp(1, 8);
        let steps: &dyn Fn(f64) -> Vec<f64> = match opts.x_labels {
            XLabels::Number => &decimal_steps,
            XLabels::Duration | XLabels::Clock => &time_steps,
        };
        let (x_lo, x_hi) = round_bounds(x_lo, x_hi, max_intervals, steps);
        let x_bounds = [x_lo, x_hi];
        let span = x_hi - x_lo;
        let x_labels: Vec<Span> = round_ticks(x_lo, x_hi, max_intervals, steps)
            .into_iter()
            .map(|x| Span::styled(opts.x_labels.format(x, span), axis_style))
            .collect();
        let y_labels: Vec<Span> = if self.log_y {
            log_ticks(self.y_bounds[0], self.y_bounds[1])
                .into_iter()
                .map(|e| Span::styled(format_tick(10f64.powf(e)), axis_style))
                .collect()
        } else {
            // Rows for labels: one per two rows at most.
            let rows = area.height.saturating_sub(4) as usize;
            round_ticks(
                self.y_bounds[0],
                self.y_bounds[1],
                (rows / 2).clamp(1, 5),
                &decimal_steps,
            )
            .into_iter()
            .map(|y| Span::styled(format_tick(y), axis_style))
            .collect()
        };
        let mut chart = Chart::new(datasets)
            .block(block)
            .x_axis(
                Axis::default()
                    .style(axis_style)
                    .bounds(x_bounds)
                    .labels(x_labels),
            )
            .y_axis(
                Axis::default()
                    .style(axis_style)
                    .bounds(self.y_bounds)
                    .labels(y_labels),
            );
        chart = if opts.show_legend && self.lines.len() > 1 {
            chart
                .legend_position(Some(LegendPosition::TopRight))
                .hidden_legend_constraints((
                    ratatui::layout::Constraint::Percentage(60),
                    ratatui::layout::Constraint::Percentage(60),
                ))
        } else {
            chart.legend_position(None)
        };
        frame.render_widget(chart, area);
    }
}

/// The y extent of the points, or their 5th-95th percentile range widened
/// to every line's first point.
fn y_extent(lines: &[DrawLine], ignore_outliers: bool) -> (f64, f64) {
    let ys = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1));
    if ignore_outliers {
        let mut all: Vec<f64> = ys.collect();
        if all.len() >= 20 {
            all.sort_by(f64::total_cmp);
            let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
            // Where each line starts stays in view: the descent from the
            // first loss is the story, not an outlier.
            let firsts = lines.iter().filter_map(|l| l.2.first().map(|p| p.1));
            let (lo, hi) = firsts.fold((at(0.05), at(0.95)), |(lo, hi), y| (lo.min(y), hi.max(y)));
            return (lo, hi);
        }
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        return (lo, hi);
    }
    let lo = ys.clone().fold(f64::INFINITY, f64::min);
    let hi = ys.fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// 1, 2, 2.5 and 5 times the powers of ten near `span`.
fn decimal_steps(span: f64) -> Vec<f64> {
    let e = span.abs().max(1e-300).log10().floor() as i32;
    (e - 3..=e + 1)
        .flat_map(|e| [1.0, 2.0, 2.5, 5.0].map(|m| m * 10f64.powi(e)))
        .collect()
}

/// Steps a clock reads well: seconds, minutes, hours, days.
fn time_steps(span: f64) -> Vec<f64> {
    let mut steps = vec![
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0,
    ];
    // Longer than days: whole days in decimal steps.
    if span > 8.0 * 86400.0 {
        steps.extend(
            decimal_steps(span / 86400.0)
                .into_iter()
                .filter(|d| *d >= 1.0)
                .map(|d| d * 86400.0),
        );
    }
    steps
}

/// The bounds `[lo, hi]` widened to multiples of the round step that
/// widens them least while making at most `max_intervals` intervals; a
/// series that does not go below 0 keeps a low bound of at least 0.
fn round_bounds(
    lo: f64,
    hi: f64,
    max_intervals: usize,
    steps: &dyn Fn(f64) -> Vec<f64>,
) -> (f64, f64) {
    best_step(lo, hi, max_intervals, steps).map_or((lo, hi), |(lo, hi, _)| (lo, hi))
}

fn best_step(
    lo: f64,
    hi: f64,
    max_intervals: usize,
    steps: &dyn Fn(f64) -> Vec<f64>,
) -> Option<(f64, f64, f64)> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return None;
    }
    let max = max_intervals.max(1) as f64;
    let mut best: Option<(f64, (f64, f64, f64))> = None;
    for step in steps(span) {
        if step <= 0.0 || span / step > max + 1e-9 {
            continue;
        }
        let (a, b) = (
            (lo / step + 1e-9).floor() * step,
            (hi / step - 1e-9).ceil() * step,
        );
        let n = ((b - a) / step).round();
        if n > max {
            continue;
        }
        // Least widening, then fewer labels; too few (one interval) only
        // when nothing else fits.
        let score = (b - a) / span - 1.0 + 0.03 * n + if n < 2.0 { 0.5 } else { 0.0 };
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, (a, b, step)));
        }
    }
    best.map(|(_, b)| b)
}

/// Round labels from lo to hi (bounds from `round_bounds`): the most
/// intervals, up to `max_intervals`, of a round step both bounds are
/// multiples of; evenly spaced ones where none is.
fn round_ticks(
    lo: f64,
    hi: f64,
    max_intervals: usize,
    steps: &dyn Fn(f64) -> Vec<f64>,
) -> Vec<f64> {
    let span = hi - lo;
    let whole = |v: f64| (v - v.round()).abs() < 1e-6;
    let best = steps(span)
        .into_iter()
        .filter(|&step| step > 0.0)
        .map(|step| (step, span / step))
        .filter(|&(step, n)| {
            n <= max_intervals.max(1) as f64 + 1e-9
                && n >= 1.0 - 1e-9
                && whole(n)
                && whole(lo / step)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        Some((step, n)) => (0..=n.round() as usize)
            .map(|i| lo + step * i as f64)
            .collect(),
        None => ticks(lo, hi, max_intervals.clamp(1, 4) + 1),
    }
}

/// Evenly spaced labels from lo to hi (ratatui spreads labels evenly).
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Decade exponents for a log axis: whole decades, at most five labels.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (hi - lo).round().max(1.0);
    let step = (decades / 4.0).ceil();
    let n = (decades / step).round() as usize + 1;
    ticks(lo, hi, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_formatting() {
        assert_eq!(XLabels::Duration.format(95.0, 100.0), "1m35s");
        assert_eq!(XLabels::Clock.format(1_795_915_312.0, 100.0), "01:21:52");
        assert_eq!(log_ticks(-5.0, 2.0).len(), 5);
    }

    #[test]
    fn a_constant_series_gets_a_readable_y_axis() {
        for (y, lo, hi) in [(0.005, 0.0, 0.01), (-2.0, -4.0, 0.0), (0.0, 0.0, 1.0)] {
            let line = Line {
                name: "fixed".into(),
                color: Color::White,
                points: (0..10).map(|x| (x as f64, y)).collect(),
                marker: Marker::Braille,
            };
            let prepared =
                Prepared::from_decimated(vec![line], (0.0, 9.0), ChartOptions::default());
            let [got_lo, got_hi] = prepared.y_bounds;
            assert!(
                (got_lo - lo).abs() < 1e-12 && (got_hi - hi).abs() < 1e-12,
                "{y}: {got_lo}..{got_hi}"
            );
        }
    }

    #[test]
    fn axes_get_round_bounds_and_labels() {
        let r = |lo, hi, max| round_bounds(lo, hi, max, &decimal_steps);
        let t = |lo, hi, max| round_ticks(lo, hi, max, &decimal_steps);
        // A CyclicLR peak of 0.2: the top label is 0.2.
        assert_eq!(r(0.0, 0.2, 5), (0.0, 0.2));
        let ticks = t(0.0, 0.2, 4);
        assert_eq!(ticks.len(), 5);
        assert!((ticks[3] - 0.15).abs() < 1e-12, "{ticks:?}");
        // Steps 1..600 read 0, 200, 400, 600.
        assert_eq!(r(1.0, 600.0, 5), (0.0, 600.0));
        assert_eq!(t(0.0, 600.0, 5), [0.0, 200.0, 400.0, 600.0]);
        assert_eq!(r(1.0, 5100.0, 5), (0.0, 6000.0));
        // A loss from 0.27 to 2.3 keeps its start in view, on round labels.
        let (lo, hi) = r(0.27, 2.3, 5);
        assert!(lo <= 0.27 && (2.3..=2.5).contains(&hi), "{lo}..{hi}");
        // Too few rows for every label of the bounds: fewer, still round.
        assert_eq!(t(0.0, 0.15, 1), [0.0, 0.15]);
        // Times in seconds step in minutes.
        assert_eq!(
            round_ticks(0.0, 600.0, 5, &time_steps),
            [0.0, 120.0, 240.0, 360.0, 480.0, 600.0]
        );
    }
}
