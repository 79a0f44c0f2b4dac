//! What the monitor reports: an alert's level, kind, step, message and a
//! concrete suggestion, serialisable for JSON summaries and hook scripts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How urgent an alert is; ordered, so `max()` gives the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Divergence,
    Spike,
    Plateau,
    LrTooHigh,
    LrTooLow,
    GradExplosion,
    Overfitting,
    Stalled,
    TargetReached,
    ScheduleDeviation,
}

impl AlertKind {
    pub const ALL: [AlertKind; 10] = [
        AlertKind::Divergence,
        AlertKind::Spike,
        AlertKind::Plateau,
        AlertKind::LrTooHigh,
        AlertKind::LrTooLow,
        AlertKind::GradExplosion,
        AlertKind::Overfitting,
        AlertKind::Stalled,
        AlertKind::TargetReached,
        AlertKind::ScheduleDeviation,
    ];

    /// The name used in JSON and in `LRTOP_ALERT_KIND`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Divergence => "divergence",
            AlertKind::Spike => "spike",
            AlertKind::Plateau => "plateau",
            AlertKind::LrTooHigh => "lr_too_high",
            AlertKind::LrTooLow => "lr_too_low",
            AlertKind::GradExplosion => "grad_explosion",
            AlertKind::Overfitting => "overfitting",
            AlertKind::Stalled => "stalled",
            AlertKind::TargetReached => "target_reached",
            AlertKind::ScheduleDeviation => "schedule_deviation",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub level: Level,
    pub kind: AlertKind,
    /// The logged step of the record that raised it (None for time-based
    /// alerts before any step was seen).
    pub step: Option<u64>,
    pub message: String,
    /// A concrete next action, with numbers from the run where possible.
    pub suggestion: String,
}

impl Alert {
    pub fn new(
        level: Level,
        kind: AlertKind,
        step: Option<u64>,
        message: impl Into<String>,
        suggestion: impl Into<String>,
    ) -> Self {
        Alert {
            level,
            kind,
            step,
            message: message.into(),
            suggestion: suggestion.into(),
        }
    }

    /// The environment an `--on-alert` command gets: `LRTOP_ALERT_LEVEL`,
    /// `LRTOP_ALERT_KIND`, `LRTOP_ALERT_STEP` (empty when unknown),
    /// `LRTOP_ALERT_MESSAGE`, `LRTOP_ALERT_SUGGESTION` and `LRTOP_ALERT_JSON`
    /// (the whole alert as one JSON object).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let json = serde_json::to_string(self).unwrap_or_default();
        vec![
            ("LRTOP_ALERT_LEVEL".into(), self.level.as_str().into()),
            ("LRTOP_ALERT_KIND".into(), self.kind.as_str().into()),
            (
                "LRTOP_ALERT_STEP".into(),
                self.step.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("LRTOP_ALERT_MESSAGE".into(), self.message.clone()),
            ("LRTOP_ALERT_SUGGESTION".into(), self.suggestion.clone()),
            ("LRTOP_ALERT_JSON".into(), json),
        ]
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(step) => write!(f, "[{}] {} at step {step}: ", self.level, self.kind)?,
            None => write!(f, "[{}] {}: ", self.level, self.kind)?,
        }
        write!(f, "{}", self.message)?;
        if !self.suggestion.is_empty() {
            write!(f, " -> {}", self.suggestion)?;
        }
        Ok(())
    }
}
