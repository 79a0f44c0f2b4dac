//! Themes: colours from TOML files. The files in `themes/` are embedded;
//! a file of the same name in the user's config directory
//! (`~/.config/lrtop/themes/NAME.toml`) overrides one, and `--theme PATH`
//! loads any file. `NO_COLOR` gives a monochrome theme.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow};
use ratatui::style::{Color, Modifier, Style};
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

    /// Resolves `--theme`: a file path, a user theme, or an embedded one.
    pub fn load(spec: Option<&str>, config_dir: Option<&Path>) -> Result<Theme> {
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
            crate::cmd::usage(format!(
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

/// Series colours for the policy plot viewer (Okabe-Ito).
pub fn series_color(i: usize) -> Color {
    let (r, g, b) = crate::viz::PALETTE[i % (crate::viz::PALETTE.len() - 1)];
    Color::Rgb(r, g, b)
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
