//! Themes: colours from TOML files. The files in `themes/` are embedded;
//! a file of the same name in the user's config directory
//! (`~/.config/lrtop/themes/NAME.toml`) overrides one, and `--theme PATH`
//! loads any file. `NO_COLOR` gives a monochrome theme.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use serde::Deserialize;

const EMBEDDED: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("colorblind", include_str!("../../themes/colorblind.toml")),
];

pub fn embedded_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

#[derive(Debug, Deserialize)]
struct ThemeFile {
    name: Option<String>,
    colors: ColorsFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColorsFile {
    background: Option<String>,
    foreground: Option<String>,
    dim: Option<String>,
    border: Option<String>,
    border_focus: Option<String>,
    title: Option<String>,
    axis: Option<String>,
    highlight_bg: Option<String>,
    status_bg: Option<String>,
    status_fg: Option<String>,
    info: Option<String>,
    warn: Option<String>,
    critical: Option<String>,
    ok: Option<String>,
    ghost: Option<String>,
    canvas: Option<String>,
    series: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub background: Color,
    pub foreground: Color,
    pub dim: Color,
    pub border: Color,
    pub border_focus: Color,
    pub title: Color,
    pub axis: Color,
    pub highlight_bg: Color,
    pub status_bg: Color,
    pub status_fg: Color,
    pub info: Color,
    pub warn: Color,
    pub critical: Color,
    pub ok: Color,
    pub ghost: Color,
    /// The terminal background the theme assumes, for blending faint colours.
    pub canvas: Color,
    pub series: Vec<Color>,
}

impl Default for Theme {
    fn default() -> Self {
        Theme::embedded("dark").expect("the embedded dark theme is valid")
    }
}

fn parse_color(field: &str, text: &str) -> Result<Color> {
    Color::from_str(text.trim())
        .map_err(|_| anyhow!("{field}: '{text}' is not a colour (use \"#rrggbb\" or a name)"))
}

/// Markers of runs on a theme without colours, with how the runs list
/// shows each.
const MONO_MARKERS: [(Marker, &str); 4] = [
    (Marker::Braille, "⠤"),
    (Marker::Dot, "•"),
    (Marker::Bar, "▄"),
    (Marker::Block, "█"),
];

impl Theme {
    fn from_toml(text: &str, fallback_name: &str, base: Option<&Theme>) -> Result<Theme> {
        let file: ThemeFile = toml::from_str(text)?;
        let base = match base {
            Some(b) => b.clone(),
            None => Theme::monochrome(),
        };
        let c = file.colors;
        let pick = |field: &str, value: Option<String>, default: Color| -> Result<Color> {
            value.map_or(Ok(default), |v| parse_color(field, &v))
        };
        let series = match c.series {
            Some(list) if !list.is_empty() => list
                .iter()
                .enumerate()
                .map(|(i, v)| parse_color(&format!("series[{i}]"), v))
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(anyhow!("series: needs at least one colour")),
            None => base.series.clone(),
        };
        Ok(Theme {
            name: file.name.unwrap_or_else(|| fallback_name.to_string()),
            background: pick("background", c.background, base.background)?,
            foreground: pick("foreground", c.foreground, base.foreground)?,
            dim: pick("dim", c.dim, base.dim)?,
            border: pick("border", c.border, base.border)?,
            border_focus: pick("border_focus", c.border_focus, base.border_focus)?,
            title: pick("title", c.title, base.title)?,
            axis: pick("axis", c.axis, base.axis)?,
            highlight_bg: pick("highlight_bg", c.highlight_bg, base.highlight_bg)?,
            status_bg: pick("status_bg", c.status_bg, base.status_bg)?,
            status_fg: pick("status_fg", c.status_fg, base.status_fg)?,
            info: pick("info", c.info, base.info)?,
            warn: pick("warn", c.warn, base.warn)?,
            critical: pick("critical", c.critical, base.critical)?,
            ok: pick("ok", c.ok, base.ok)?,
            ghost: pick("ghost", c.ghost, base.ghost)?,
            canvas: pick("canvas", c.canvas, base.canvas)?,
            series,
        })
    }

    fn embedded(name: &str) -> Option<Theme> {
        let (_, text) = EMBEDDED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Theme::from_toml(text, name, None).ok()
    }

    /// No colours at all, for `NO_COLOR` and plain terminals: styles only.
    pub fn monochrome() -> Theme {
        Theme {
            name: "mono".into(),
            background: Color::Reset,
            foreground: Color::Reset,
            dim: Color::Reset,
            border: Color::Reset,
            border_focus: Color::Reset,
            title: Color::Reset,
            axis: Color::Reset,
            highlight_bg: Color::Reset,
            status_bg: Color::Reset,
            status_fg: Color::Reset,
            info: Color::Reset,
            warn: Color::Reset,
            critical: Color::Reset,
            ok: Color::Reset,
            ghost: Color::Reset,
            canvas: Color::Reset,
            series: vec![Color::Reset],
        }
    }

    pub fn is_monochrome(&self) -> bool {
        self.name == "mono"
    }

    /// How run `i`'s points are drawn: braille in colour; without colours
    /// each run gets its own marker, so that runs stay apart.
    pub fn run_marker(&self, i: usize) -> Marker {
        if self.is_monochrome() {
            MONO_MARKERS[i % MONO_MARKERS.len()].0
        } else {
            Marker::Braille
        }
    }

    /// The runs list's sample of run `i`'s line: a colour square, or
    /// without colours its marker.
    pub fn run_symbol(&self, i: usize) -> &'static str {
        if self.is_monochrome() {
            MONO_MARKERS[i % MONO_MARKERS.len()].1
        } else {
            "■"
        }
    }

    /// Resolves `--theme`: a file path, a user theme, or an embedded one.
    /// On a terminal that shows only the 16 ANSI colours (by `TERM`), its
    /// colours become the nearest of those.
    pub fn load(spec: Option<&str>, config_dir: Option<&Path>) -> Result<Theme> {
        let theme = Theme::resolve(spec, config_dir)?;
        let term = std::env::var("TERM").unwrap_or_default();
        let colorterm = std::env::var("COLORTERM").unwrap_or_default();
        Ok(if ansi_only(&term, &colorterm) {
            theme.to_ansi16()
        } else {
            theme
        })
    }

    /// The theme with every colour replaced by the nearest of the 16 ANSI ones.
    pub fn to_ansi16(mut self) -> Theme {
        for c in [
            &mut self.background,
            &mut self.foreground,
            &mut self.dim,
            &mut self.border,
            &mut self.border_focus,
            &mut self.title,
            &mut self.axis,
            &mut self.highlight_bg,
            &mut self.status_bg,
            &mut self.status_fg,
            &mut self.info,
            &mut self.warn,
            &mut self.critical,
            &mut self.ok,
            &mut self.ghost,
            &mut self.canvas,
        ] {
            *c = nearest_ansi(*c);
        }
        for c in &mut self.series {
            *c = nearest_ansi(*c);
        }
        self
    }

    fn resolve(spec: Option<&str>, config_dir: Option<&Path>) -> Result<Theme> {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Ok(Theme::monochrome());
        }
        let name = spec.unwrap_or("dark");
        if name.eq_ignore_ascii_case("mono") || name.eq_ignore_ascii_case("none") {
            return Ok(Theme::monochrome());
        }
        let as_path = PathBuf::from(name);
        if name.ends_with(".toml") || as_path.components().count() > 1 {
            let text = std::fs::read_to_string(&as_path)
                .with_context(|| format!("reading theme {}", as_path.display()))?;
            let base = Theme::default();
            return Theme::from_toml(&text, name, Some(&base))
                .with_context(|| format!("in theme {}", as_path.display()));
        }
        let embedded = Theme::embedded(name);
        if let Some(dir) = config_dir {
            let user = dir.join("themes").join(format!("{name}.toml"));
            if user.exists() {
                let text = std::fs::read_to_string(&user)
                    .with_context(|| format!("reading theme {}", user.display()))?;
                let base = embedded.clone().unwrap_or_default();
                return Theme::from_toml(&text, name, Some(&base))
                    .with_context(|| format!("in theme {}", user.display()));
            }
        }
        embedded.ok_or_else(|| {
            crate::error::usage(format!(
                "unknown theme '{name}': use one of {}, mono, or a .toml file",
                embedded_names().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    pub fn series_color(&self, i: usize) -> Color {
        self.series[i % self.series.len()]
    }

    /// A colour faded towards the background: raw curves under smoothed
    /// ones, ghost runs.
    pub fn faint(&self, color: Color) -> Color {
        match (color, self.canvas) {
            (Color::Rgb(r, g, b), Color::Rgb(cr, cg, cb)) => {
                let mix = |a: u8, c: u8| ((a as f32) * 0.45 + (c as f32) * 0.55).round() as u8;
                Color::Rgb(mix(r, cr), mix(g, cg), mix(b, cb))
            }
            _ => self.dim,
        }
    }

    pub fn level_color(&self, level: crate::monitor::Level) -> Color {
        match level {
            crate::monitor::Level::Info => self.info,
            crate::monitor::Level::Warn => self.warn,
            crate::monitor::Level::Critical => self.critical,
        }
    }

    pub fn text(&self) -> Style {
        Style::default().fg(self.foreground)
    }

    pub fn dimmed(&self) -> Style {
        if self.is_monochrome() {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default().fg(self.dim)
        }
    }

    pub fn border(&self, focused: bool) -> Style {
        Style::default().fg(if focused {
            self.border_focus
        } else {
            self.border
        })
    }

    pub fn title(&self) -> Style {
        Style::default().fg(self.title).add_modifier(Modifier::BOLD)
    }

    pub fn axis(&self) -> Style {
        Style::default().fg(self.axis)
    }
}

/// Whether a terminal shows only the 16 ANSI colours (or fewer): the
/// `*-16color` and `*-8color` entries, the Linux console, `ansi`, `vt*`;
/// `COLORTERM=truecolor` or `24bit` says otherwise.
fn ansi_only(term: &str, colorterm: &str) -> bool {
    if matches!(colorterm, "truecolor" | "24bit") {
        return false;
    }
    term.ends_with("-16color")
        || term.ends_with("-8color")
        || matches!(term, "linux" | "ansi" | "cons25")
        || term.starts_with("vt")
}

/// xterm's values for the 16 ANSI colours.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

/// The nearest ANSI colour to an RGB or 256-palette one; others unchanged.
fn nearest_ansi(color: Color) -> Color {
    let (r, g, b) = match color {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) if i < 16 => return ANSI16[i as usize].0,
        Color::Indexed(i) if i >= 232 => {
            let v = 8 + 10 * (i - 232);
            (v, v, v)
        }
        Color::Indexed(i) => {
            let level = |n: u8| if n == 0 { 0 } else { 55 + 40 * n };
            let i = i - 16;
            (level(i / 36), level(i / 6 % 6), level(i % 6))
        }
        other => return other,
    };
    let distance = |(r2, g2, b2): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(r, r2) + d(g, g2) + d(b, b2)
    };
    ANSI16
        .iter()
        .min_by_key(|(_, rgb)| distance(*rgb))
        .map_or(color, |(c, _)| *c)
}

/// Series colours for the policy plot viewer (Okabe-Ito), as the
/// terminal shows them (see [`terminal_color`]).
pub fn series_color(i: usize) -> Color {
    let (r, g, b) = crate::viz::PALETTE[i % (crate::viz::PALETTE.len() - 1)];
    terminal_color(Color::Rgb(r, g, b))
}

/// A fixed colour (outside a theme) for this terminal: none with
/// `NO_COLOR`, the nearest ANSI one on a 16-colour terminal.
pub fn terminal_color(color: Color) -> Color {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return Color::Reset;
    }
    let term = std::env::var("TERM").unwrap_or_default();
    let colorterm = std::env::var("COLORTERM").unwrap_or_default();
    if ansi_only(&term, &colorterm) {
        nearest_ansi(color)
    } else {
        color
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_themes_parse() {
        for name in embedded_names() {
            let theme = Theme::embedded(name).unwrap_or_else(|| panic!("{name}"));
            assert!(theme.series.len() >= 6, "{name}");
            assert_ne!(theme.foreground, Color::Reset, "{name}");
        }
    }

    #[test]
    fn sixteen_colour_terminals_get_ansi_colours() {
        assert!(ansi_only("xterm-16color", ""));
        assert!(ansi_only("linux", ""));
        assert!(!ansi_only("xterm-16color", "truecolor"));
        assert!(!ansi_only("xterm-256color", ""));
        assert!(!ansi_only("screen", ""));
        assert_eq!(nearest_ansi(Color::Rgb(255, 95, 95)), Color::LightRed);
        assert_eq!(nearest_ansi(Color::Rgb(18, 18, 18)), Color::Black);
        assert_eq!(nearest_ansi(Color::Indexed(196)), Color::LightRed);
        assert_eq!(nearest_ansi(Color::Reset), Color::Reset);
        for name in embedded_names() {
            let theme = Theme::embedded(name).unwrap().to_ansi16();
            let named = |c: Color| !matches!(c, Color::Rgb(..) | Color::Indexed(_));
            assert!(named(theme.foreground) && named(theme.critical), "{name}");
            assert!(theme.series.iter().all(|c| named(*c)), "{name}");
        }
    }

    #[test]
    fn user_theme_overrides_embedded_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/dark.toml"),
            "[colors]\nwarn = \"#010203\"\n",
        )
        .unwrap();
        let theme = Theme::load(Some("dark"), Some(dir.path())).unwrap();
        assert_eq!(theme.warn, Color::Rgb(1, 2, 3));
        assert_eq!(theme.critical, Theme::default().critical);

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[colors]\nwarn = \"not-a-colour\"\n").unwrap();
        let err = Theme::load(bad.to_str(), None).unwrap_err();
        assert!(format!("{err:#}").contains("warn"), "{err:#}");
        assert!(Theme::load(Some("nope"), None).is_err());
    }
}
