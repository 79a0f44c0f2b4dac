//! Key bindings as data: each mode's table maps keys to an action, and the
//! same table writes the help overlay, so a key cannot work without being
//! listed or be listed without working.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One key as a binding names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character typed without Ctrl (Shift is part of the character).
    Char(char),
    /// Ctrl with a letter.
    Ctrl(char),
    Code(KeyCode),
    /// Any of 1-9; the action reads which from the event.
    Digits,
}

impl Key {
    pub fn matches(self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        match (self, event.code) {
            (Key::Char(c), KeyCode::Char(e)) => !ctrl && c == e,
            (Key::Ctrl(c), KeyCode::Char(e)) => ctrl && c.eq_ignore_ascii_case(&e),
            (Key::Code(k), code) => k == code && !ctrl,
            (Key::Digits, KeyCode::Char('1'..='9')) => !ctrl,
            _ => false,
        }
    }

    /// How help writes the key.
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "Space".into(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
            Key::Digits => "1-9".into(),
            Key::Code(code) => match code {
                KeyCode::Up => "↑".into(),
                KeyCode::Down => "↓".into(),
                KeyCode::Left => "←".into(),
                KeyCode::Right => "→".into(),
                KeyCode::PageUp => "PgUp".into(),
                KeyCode::PageDown => "PgDn".into(),
                KeyCode::Home => "Home".into(),
                KeyCode::End => "End".into(),
                KeyCode::Enter => "Enter".into(),
                KeyCode::Esc => "Esc".into(),
                KeyCode::Tab => "Tab".into(),
                KeyCode::F(n) => format!("F{n}"),
                other => format!("{other:?}"),
            },
        }
    }
}

/// Keys that do one thing.
#[derive(Debug, Clone, Copy)]
pub struct Binding<A> {
    /// Keys shown in help.
    pub keys: &'static [Key],
    /// Keys that also work but are not shown (the unshifted `=` for `+`).
    pub aliases: &'static [Key],
    /// What the keys do; empty joins the keys to the row above, for
    /// families such as "zoom in / out / reset".
    pub what: &'static str,
    pub action: A,
}

/// The keys the user typed, for one key event read from the terminal.
///
/// Esc is a lone ESC byte; when the reader falls behind (a busy CPU, a slow
/// SSH link) ESC and the next key arrive in one read, and crossterm reports
/// them as Alt+key. lrtop binds nothing to Alt, so Alt+key is taken as Esc
/// followed by the key: otherwise "Esc, ?" with help open would close help
/// and leave it closed, and the next Esc would quit.
pub fn as_typed(event: KeyEvent) -> impl Iterator<Item = KeyEvent> {
    let esc = event
        .modifiers
        .contains(KeyModifiers::ALT)
        .then(|| KeyEvent::new_with_kind(KeyCode::Esc, KeyModifiers::NONE, event.kind));
    let mut key = event;
    key.modifiers.remove(KeyModifiers::ALT);
    esc.into_iter().chain(std::iter::once(key))
}

/// The action the table binds to this key, if any.
pub fn lookup<A: Copy>(table: &[Binding<A>], event: &KeyEvent) -> Option<A> {
    table
        .iter()
        .find(|b| b.keys.iter().chain(b.aliases).any(|k| k.matches(event)))
        .map(|b| b.action)
}

/// Help rows, (keys, what), written from a table.
pub fn help_rows<A>(table: &[Binding<A>]) -> Vec<(String, &'static str)> {
    let mut rows: Vec<(String, &'static str)> = Vec::new();
    for b in table {
        let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
        let keys = keys.join(" ");
        match rows.last_mut() {
            Some((label, _)) if b.what.is_empty() => {
                label.push_str("  ");
                label.push_str(&keys);
            }
            _ => rows.push((keys, b.what)),
        }
    }
    rows
}

/// What the dashboard does, whatever the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Help,
    Quit,
    Escape,
    ToggleLogY,
    NextXAxis,
    SmoothLess,
    SmoothMore,
    ZoomIn,
    ZoomOut,
    ZoomReset,
    PanLeft,
    PanRight,
    Follow,
    Outliers,
    PickMetric,
    CycleMetric,
    RunUp,
    RunDown,
    ToggleRun,
    ToggleNumberedRun,
    AlertsOlder,
    AlertsNewer,
}

/// A binding with no hidden aliases.
pub const fn bind<A>(keys: &'static [Key], what: &'static str, action: A) -> Binding<A> {
    Binding {
        keys,
        aliases: &[],
        what,
        action,
    }
}

const fn bind_aliased<A>(
    keys: &'static [Key],
    aliases: &'static [Key],
    what: &'static str,
    action: A,
) -> Binding<A> {
    Binding {
        keys,
        aliases,
        what,
        action,
    }
}

use Key::{Char, Code, Ctrl};

pub const DASHBOARD: &[Binding<Action>] = &[
    bind_aliased(
        &[Char('?'), Char('h')],
        &[Code(KeyCode::F(1))],
        "this help (↑↓ scroll it, other keys close it)",
        Action::Help,
    ),
    bind(
        &[Char('q'), Ctrl('c')],
        "quit (while training: press twice, to stop it and quit)",
        Action::Quit,
    ),
    bind(
        &[Code(KeyCode::Esc)],
        "close a pop-up; quit when nothing is training",
        Action::Escape,
    ),
    bind(&[Char('l')], "log / linear y axis", Action::ToggleLogY),
    bind(
        &[Char('x')],
        "x axis: step, epoch, relative time, wall time",
        Action::NextXAxis,
    ),
    bind_aliased(
        &[Char('[')],
        &[Char('{')],
        "loss smoothing down / up",
        Action::SmoothLess,
    ),
    bind_aliased(&[Char(']')], &[Char('}')], "", Action::SmoothMore),
    bind_aliased(
        &[Char('+')],
        &[Char('=')],
        "zoom in / out / reset (mouse wheel too)",
        Action::ZoomIn,
    ),
    bind_aliased(&[Char('-')], &[Char('_')], "", Action::ZoomOut),
    bind(&[Char('0')], "", Action::ZoomReset),
    bind(
        &[Code(KeyCode::Left)],
        "pan along x when zoomed",
        Action::PanLeft,
    ),
    bind(&[Code(KeyCode::Right)], "", Action::PanRight),
    bind(
        &[Char('f')],
        "follow new data / freeze the view",
        Action::Follow,
    ),
    bind(
        &[Char('o')],
        "y range of loss and metrics: 5-95th percentile (default) / all",
        Action::Outliers,
    ),
    bind(
        &[Char('m')],
        "pick / cycle the third chart's metric",
        Action::PickMetric,
    ),
    bind(&[Char('g')], "", Action::CycleMetric),
    bind(
        &[Code(KeyCode::Up), Char('k')],
        "select run, toggle its visibility (or click it)",
        Action::RunUp,
    ),
    bind(&[Code(KeyCode::Down), Char('j')], "", Action::RunDown),
    bind(&[Char('v')], "", Action::ToggleRun),
    bind(&[Key::Digits], "", Action::ToggleNumberedRun),
    bind(
        &[Code(KeyCode::PageUp)],
        "scroll the alerts pane up / down (mouse wheel too)",
        Action::AlertsNewer,
    ),
    bind(&[Code(KeyCode::PageDown)], "", Action::AlertsOlder),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_key_of_a_table_is_bound_once() {
        // A key bound twice would make the second binding dead.
        let all: Vec<Key> = DASHBOARD
            .iter()
            .flat_map(|b| b.keys.iter().chain(b.aliases))
            .copied()
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{a:?} is bound twice");
        }
    }

    #[test]
    fn alt_key_is_esc_then_the_key() {
        let alt_q = KeyEvent::new(KeyCode::Char('?'), KeyModifiers::ALT);
        let typed: Vec<KeyEvent> = as_typed(alt_q).collect();
        assert_eq!(typed, vec![key(KeyCode::Esc), key(KeyCode::Char('?'))]);
        let ctrl_alt_c = KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::ALT | KeyModifiers::CONTROL,
        );
        let typed: Vec<KeyEvent> = as_typed(ctrl_alt_c).collect();
        assert_eq!(
            typed,
            vec![
                key(KeyCode::Esc),
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ]
        );
        let plain: Vec<KeyEvent> = as_typed(key(KeyCode::Char('l'))).collect();
        assert_eq!(plain, vec![key(KeyCode::Char('l'))]);
    }

    #[test]
    fn lookup_finds_shown_keys_and_aliases_and_respects_ctrl() {
        assert_eq!(
            lookup(DASHBOARD, &key(KeyCode::Char('+'))),
            Some(Action::ZoomIn)
        );
        assert_eq!(
            lookup(DASHBOARD, &key(KeyCode::Char('='))),
            Some(Action::ZoomIn)
        );
        assert_eq!(
            lookup(DASHBOARD, &key(KeyCode::Char('7'))),
            Some(Action::ToggleNumberedRun)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(DASHBOARD, &ctrl_c), Some(Action::Quit));
        let ctrl_l = KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL);
        assert_eq!(lookup(DASHBOARD, &ctrl_l), None);
        assert_eq!(lookup(DASHBOARD, &key(KeyCode::Char('z'))), None);
    }

    #[test]
    fn help_rows_join_families_and_hide_aliases() {
        let rows = help_rows(DASHBOARD);
        let zoom = rows
            .iter()
            .find(|(_, what)| what.starts_with("zoom"))
            .unwrap();
        assert_eq!(zoom.0, "+  -  0");
        let runs = rows
            .iter()
            .find(|(_, what)| what.starts_with("select run"))
            .unwrap();
        assert_eq!(runs.0, "↑ k  ↓ j  v  1-9");
        assert_eq!(rows[0].0, "? h");
        assert!(rows.iter().all(|(_, what)| !what.is_empty()));
    }
}
