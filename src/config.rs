//! The user's configuration file: `$XDG_CONFIG_HOME/lrtop/config.toml`
//! (or `LRTOP_CONFIG`), with the default theme, smoothing and the schedule
//! monitor's thresholds in a `[monitor]` table. Everything is optional.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::monitor::MonitorConfig;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub theme: Option<String>,
    pub smoothing: Option<f64>,
    pub monitor: MonitorConfig,
}

/// The directory holding config.toml and user themes.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LRTOP_CONFIG") {
        return PathBuf::from(path).parent().map(PathBuf::from);
    }
    dirs::config_dir().map(|d| d.join("lrtop"))
}

fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LRTOP_CONFIG") {
        return Some(PathBuf::from(path));
    }
    config_dir().map(|d| d.join("config.toml"))
}

impl Config {
    /// Reads the config file if there is one; a broken file is an error
    /// (silently ignoring it would hide the user's thresholds).
    pub fn load() -> Result<Config> {
        let Some(path) = config_path() else {
            return Ok(Config::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("reading config file {}", path.display())),
        }
    }
}
