//! `lrtop policy plot`: one or more schedules in the terminal.

use std::io::{self, IsTerminal};

use anyhow::Result;
use crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::chart::{ChartOptions, Line, Prepared};
use super::theme::{series_color, terminal_color};

pub struct PlotInput {
    pub labels: Vec<String>,
    pub series: Vec<Vec<f64>>,
}

impl PlotInput {
    fn lines(&self) -> Vec<Line> {
        self.series
            .iter()
            .zip(&self.labels)
            .enumerate()
            .map(|(i, (lrs, label))| Line {
                name: label.clone(),
                color: series_color(i),
                points: lrs
                    .iter()
                    .enumerate()
                    .map(|(t, &lr)| (t as f64, lr))
                    .collect(),
                marker: ratatui::symbols::Marker::Braille,
            })
            .collect()
    }
}

fn draw(frame: &mut Frame, input: &PlotInput, lines: &[Line], log_y: bool, interactive: bool) {
    let area = frame.area();
    let legend_rows = (input.labels.len() as u16 + u16::from(interactive)).min(area.height / 3);
    let [chart_area, legend_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(legend_rows)]).areas(area);
    let steps = input.series.iter().map(Vec::len).max().unwrap_or(0);
    let opts = ChartOptions {
        log_y,
        x_range: Some((0.0, steps as f64)),
        show_legend: false,
        ignore_outliers: false,
        x_labels: Default::default(),
    };
    let prepared = Prepared::new(lines, opts, chart_area.width.saturating_sub(10));
    let title = format!(
        " learning rate over {steps} updates{} ",
        if log_y { " (log y)" } else { "" }
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    prepared.render(
        frame,
        chart_area,
        block,
        Style::default().fg(terminal_color(Color::Gray)),
        opts,
    );
    let mut rows: Vec<TextLine> = input
        .labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            TextLine::from(vec![
                Span::styled(" ━━ ", Style::default().fg(series_color(i))),
                Span::raw(label.clone()),
            ])
        })
        .collect();
    if interactive {
        rows.push(TextLine::from(Span::styled(
            " l: log-y  q: quit",
            Style::default().add_modifier(Modifier::DIM),
        )));
    }
    frame.render_widget(Paragraph::new(rows), legend_area);
}

/// Renders once into a plain-text grid (for pipes, files and tests).
pub fn render_text(input: &PlotInput, log_y: bool, width: u16, height: u16) -> String {
    let lines = input.lines();
    super::terminal::render_text(width, height, |f| draw(f, input, &lines, log_y, false))
}

/// Shows the chart full screen until q; prints it as text when stdout is not a terminal.
pub fn show(input: &PlotInput, log_y: bool) -> Result<()> {
    if !io::stdout().is_terminal() {
        print!("{}", render_text(input, log_y, 100, 30));
        return Ok(());
    }
    let lines = input.lines();
    let mut log_y = log_y;
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            terminal.draw(|f| draw(f, input, &lines, log_y, true))?;
            if let Event::Key(key) = event::read()? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if key.modifiers.contains(event::KeyModifiers::CONTROL) => {
                        return Ok(());
                    }
                    KeyCode::Char('l') => log_y = !log_y,
                    _ => {}
                }
            }
        }
    })();
    ratatui::restore();
    result
}
