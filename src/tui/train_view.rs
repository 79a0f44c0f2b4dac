//! Train mode: the policy picker (every policy of the database with a
//! preview over this run's length), the spec editor with inline parse
//! errors, and the run controls.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Command};
use super::chart::{ChartOptions, Line as ChartLine, Prepared};
use super::keys::{self, Binding, Key, bind};
use super::layout::centered;
use crate::policy::{Policy, catalog, template};

/// What train mode's keys do on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainAction {
    Picker,
    Edit,
    Restart,
    Pause,
    Stop,
    Checkpoint,
}

/// Keys train mode adds to the dashboard (and to its help).
pub const KEYS: &[Binding<TrainAction>] = &[
    bind(
        &[Key::Char('p')],
        "policy picker: every policy, previewed over this run",
        TrainAction::Picker,
    ),
    bind(
        &[Key::Char('e')],
        "edit the policy spec (Enter restarts, Esc cancels)",
        TrainAction::Edit,
    ),
    bind(
        &[Key::Code(KeyCode::Enter)],
        "restart with the chosen policy, same initial weights",
        TrainAction::Restart,
    ),
    bind(&[Key::Char(' ')], "pause / resume", TrainAction::Pause),
    bind(
        &[Key::Char('s')],
        "stop the run (keeps it on the charts)",
        TrainAction::Stop,
    ),
    bind(
        &[Key::Char('c')],
        "save a checkpoint: <run>-step<N>.safetensors",
        TrainAction::Checkpoint,
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Idle,
    /// Index into the picker's entries and the filter typed so far.
    Picker {
        selected: usize,
        filter: String,
    },
    /// The spec being edited and the cursor position (in chars).
    Editor {
        text: String,
        cursor: usize,
    },
}

#[derive(Debug, Clone)]
pub struct TrainView {
    pub mode: Mode,
    /// Updates per run: previews and templates are scaled to it.
    pub steps: u64,
    /// The peak LR templates use (from the current policy).
    pub lr: f64,
    /// The policy of the current run.
    pub current: String,
    pub paused: bool,
}

impl TrainView {
    pub fn new(steps: u64, current: &Policy) -> TrainView {
        let lr = current
            .sample(steps.clamp(1, 20_000))
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        TrainView {
            mode: Mode::Idle,
            steps,
            lr: if lr > 0.0 { lr } else { 0.1 },
            current: current.to_string(),
            paused: false,
        }
    }

    /// (name, family, spec) of every picker entry matching the filter.
    pub fn entries(&self, filter: &str) -> Vec<(String, String, String)> {
        entries_for(self.steps, self.lr, filter)
    }

    fn open_editor(&mut self, text: String) {
        let cursor = text.chars().count();
        self.mode = Mode::Editor { text, cursor };
    }

    /// Handles a key in train mode; None when the dashboard should handle it.
    pub fn on_key(&mut self, key: KeyEvent, commands: &mut Vec<Command>) -> Option<bool> {
        let (steps, lr) = (self.steps, self.lr);
        match &mut self.mode {
            Mode::Idle => match keys::lookup(KEYS, &key)? {
                TrainAction::Picker => {
                    self.mode = Mode::Picker {
                        selected: 0,
                        filter: String::new(),
                    }
                }
                TrainAction::Edit => self.open_editor(self.current.clone()),
                TrainAction::Restart => commands.push(Command::Restart(self.current.clone())),
                TrainAction::Pause => {
                    self.paused = !self.paused;
                    commands.push(Command::TogglePause);
                }
                TrainAction::Stop => commands.push(Command::Stop),
                TrainAction::Checkpoint => commands.push(Command::Checkpoint),
            },
            Mode::Picker { selected, filter } => {
                let count = entries_for(steps, lr, filter).len();
                match key.code {
                    KeyCode::Esc => self.mode = Mode::Idle,
                    KeyCode::Up => *selected = selected.saturating_sub(1),
                    KeyCode::Down => *selected = (*selected + 1).min(count.saturating_sub(1)),
                    KeyCode::PageUp => *selected = selected.saturating_sub(10),
                    KeyCode::PageDown => *selected = (*selected + 10).min(count.saturating_sub(1)),
                    KeyCode::Backspace => {
                        filter.pop();
                        *selected = 0;
                    }
                    KeyCode::Enter | KeyCode::Tab => {
                        let filter = filter.clone();
                        let pick = *selected;
                        if let Some((_, _, spec)) =
                            entries_for(steps, lr, &filter).into_iter().nth(pick)
                        {
                            if key.code == KeyCode::Enter {
                                self.mode = Mode::Idle;
                                self.current = spec.clone();
                                commands.push(Command::Restart(spec));
                            } else {
                                // Tab: edit the template before running it.
                                self.open_editor(spec);
                            }
                        }
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        filter.push(c);
                        *selected = 0;
                    }
                    _ => {}
                }
            }
            Mode::Editor { text, cursor } => {
                let len = text.chars().count();
                let byte_at =
                    |s: &str, i: usize| s.char_indices().nth(i).map_or(s.len(), |(b, _)| b);
                match key.code {
                    KeyCode::Esc => self.mode = Mode::Idle,
                    KeyCode::Enter if Policy::parse(text).is_ok() => {
                        let spec = text.clone();
                        self.current = spec.clone();
                        self.mode = Mode::Idle;
                        commands.push(Command::Restart(spec));
                    }
                    KeyCode::Left => *cursor = cursor.saturating_sub(1),
                    KeyCode::Right => *cursor = (*cursor + 1).min(len),
                    KeyCode::Home => *cursor = 0,
                    KeyCode::End => *cursor = len,
                    KeyCode::Backspace if *cursor > 0 => {
                        let at = byte_at(text, *cursor - 1);
                        text.remove(at);
                        *cursor -= 1;
                    }
                    KeyCode::Delete if *cursor < len => {
                        let at = byte_at(text, *cursor);
                        text.remove(at);
                    }
                    KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        text.clear();
                        *cursor = 0;
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        let at = byte_at(text, *cursor);
                        text.insert(at, c);
                        *cursor += 1;
                    }
                    _ => {}
                }
            }
        }
        Some(true)
    }
}

fn entries_for(steps: u64, lr: f64, filter: &str) -> Vec<(String, String, String)> {
    let filter = filter.to_ascii_lowercase();
    catalog::all()
        .filter(|info| filter.is_empty() || info.name.to_ascii_lowercase().contains(&filter))
        .map(|info| {
            (
                info.name.to_string(),
                info.family.label().to_string(),
                template::for_run(info, steps, lr),
            )
        })
        .collect()
}

fn preview(frame: &mut Frame, area: Rect, app: &App, spec: &str, steps: u64) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(false))
        .title(Span::styled(" preview ", app.theme.title()));
    match Policy::parse(spec) {
        Ok(policy) => {
            let n = steps.clamp(1, 200_000);
            let points: Vec<(f64, f64)> = policy
                .sample(n)
                .into_iter()
                .enumerate()
                .map(|(t, lr)| (t as f64, lr))
                .collect();
            let opts = ChartOptions {
                log_y: false,
                x_range: Some((0.0, n as f64)),
                show_legend: false,
                ignore_outliers: false,
                x_labels: Default::default(),
            };
            let line = ChartLine {
                name: policy.short_name(),
                color: app.theme.series_color(0),
                points,
                marker: ratatui::symbols::Marker::Braille,
            };
            Prepared::new(&[line], opts, area.width.saturating_sub(10)).render(
                frame,
                area,
                block,
                app.theme.axis(),
                opts,
            );
        }
        Err(e) => {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    e.message.clone(),
                    Style::default().fg(app.theme.critical),
                ))
                .wrap(Wrap { trim: true })
                .block(block),
                area,
            );
        }
    }
}

pub fn render(frame: &mut Frame, app: &App, view: &TrainView) {
    let area = frame.area();
    match &view.mode {
        Mode::Idle => {}
        Mode::Picker { selected, filter } => {
            let rect = centered(
                area,
                area.width.saturating_sub(4).min(110),
                area.height.saturating_sub(2).min(30),
            );
            frame.render_widget(Clear, rect);
            let outer = Block::default()
                .borders(Borders::ALL)
                .border_style(app.theme.border(true))
                .title(Span::styled(
                    format!(" policies for {} updates: type to filter · ↑↓ · Enter run · Tab edit · Esc ", view.steps),
                    app.theme.title(),
                ));
            let inner = outer.inner(rect);
            frame.render_widget(outer, rect);
            let [list_area, right] =
                Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)])
                    .areas(inner);
            let entries = view.entries(filter);
            let rows = list_area.height.saturating_sub(1) as usize;
            let skip = selected.saturating_sub(rows.saturating_sub(1));
            let mut lines = vec![Line::from(vec![
                Span::styled("filter: ", app.theme.dimmed()),
                Span::styled(
                    filter.clone(),
                    app.theme.text().add_modifier(Modifier::BOLD),
                ),
                Span::styled(format!("  ({} match)", entries.len()), app.theme.dimmed()),
            ])];
            for (i, (name, family, _)) in entries.iter().enumerate().skip(skip).take(rows) {
                let style = if i == *selected {
                    app.theme
                        .text()
                        .bg(app.theme.highlight_bg)
                        .add_modifier(Modifier::BOLD)
                } else {
                    app.theme.text()
                };
                lines.push(Line::from(vec![
                    Span::styled(format!(" {name:<28}"), style),
                    Span::styled(family.clone(), app.theme.dimmed()),
                ]));
            }
            frame.render_widget(Paragraph::new(lines), list_area);
            if let Some((_, _, spec)) = entries.get(*selected) {
                let [spec_area, chart_area] =
                    Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(right);
                frame.render_widget(
                    Paragraph::new(Span::styled(spec.clone(), app.theme.text()))
                        .wrap(Wrap { trim: false }),
                    spec_area,
                );
                preview(frame, chart_area, app, spec, view.steps);
            }
        }
        Mode::Editor { text, cursor } => {
            let rect = centered(
                area,
                area.width.saturating_sub(4).min(110),
                16.min(area.height),
            );
            frame.render_widget(Clear, rect);
            let outer = Block::default()
                .borders(Borders::ALL)
                .border_style(app.theme.border(true))
                .title(Span::styled(
                    " edit policy: Enter restarts · Esc cancels ",
                    app.theme.title(),
                ));
            let inner = outer.inner(rect);
            frame.render_widget(outer, rect);
            let [input, message, chart] = Layout::vertical([
                Constraint::Length(2),
                Constraint::Length(3),
                Constraint::Min(3),
            ])
            .areas(inner);
            let chars: Vec<char> = text.chars().collect();
            let before: String = chars[..(*cursor).min(chars.len())].iter().collect();
            let at: String = chars
                .get(*cursor)
                .map_or(" ".to_string(), |c| c.to_string());
            let after: String = chars
                .get(*cursor + 1..)
                .map_or(String::new(), |s| s.iter().collect());
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled(before, app.theme.text()),
                    Span::styled(at, app.theme.text().add_modifier(Modifier::REVERSED)),
                    Span::styled(after, app.theme.text()),
                ]))
                .wrap(Wrap { trim: false }),
                input,
            );
            match Policy::parse(text) {
                Ok(policy) => frame.render_widget(
                    Paragraph::new(Span::styled(
                        format!("ok: {policy}"),
                        Style::default().fg(app.theme.ok),
                    ))
                    .wrap(Wrap { trim: true }),
                    message,
                ),
                Err(e) => {
                    let mut lines = vec![Line::from(Span::styled(
                        format!("column {}: {}", e.column(), e.message),
                        Style::default().fg(app.theme.critical),
                    ))];
                    if let Some(help) = &e.help {
                        lines.push(Line::from(Span::styled(help.clone(), app.theme.dimmed())));
                    }
                    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), message);
                }
            }
            preview(frame, chart, app, text, view.steps);
        }
    }
}
