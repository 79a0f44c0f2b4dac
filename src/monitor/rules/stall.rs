//! Stalled: no new records for a while in follow mode. Time-based, so it is
//! driven by `Monitor::tick` with the current time injected.

use crate::metrics::Record;
use crate::monitor::alert::{Alert, AlertKind, Level};
use crate::monitor::config::MonitorConfig;
use crate::monitor::stats::RollingWindow;

const GAP_WINDOW: usize = 32;
/// Beyond the first window, one logged gap in this many is sampled.
const GAP_SAMPLING: u64 = 16;

#[derive(Debug, Clone)]
pub struct Stall {
    records_at_last_tick: u64,
    /// `now` of the last tick that found new records.
    last_activity: Option<f64>,
    /// Seconds between ticks that found new records: how the user sees the
    /// run's pace, batching and buffering included.
    arrival_gaps: RollingWindow,
    /// Seconds between logged `time` values, for runs that log time.
    logged_gaps: RollingWindow,
    last_logged_time: Option<f64>,
    logged: u64,
    alerted: bool,
    /// `typical_gap`, kept between pushes: ticks come twice a second for
    /// every followed run (10,000 of them, when a directory holds that
    /// many), and a median each time was most of an idle follow's CPU.
    typical: Option<Option<f64>>,
}

impl Stall {
    pub fn new() -> Self {
        Stall {
            records_at_last_tick: 0,
            last_activity: None,
            arrival_gaps: RollingWindow::new(GAP_WINDOW),
            logged_gaps: RollingWindow::new(GAP_WINDOW),
            last_logged_time: None,
            logged: 0,
            alerted: false,
            typical: None,
        }
    }

    pub fn observe(&mut self, rec: &Record) {
        let Some(t) = rec.time.filter(|t| t.is_finite()) else {
            return;
        };
        self.logged += 1;
        // A sample of the gaps is enough for their median; keeps the
        // per-record cost down on fast runs.
        if let Some(prev) = self.last_logged_time
            && t > prev
            && (self.logged < GAP_WINDOW as u64 || self.logged.is_multiple_of(GAP_SAMPLING))
        {
            self.logged_gaps.push(t - prev);
            self.typical = None;
        }
        self.last_logged_time = Some(t);
    }

    /// The median interval between arrivals (or logged times), if known.
    fn typical_gap(&mut self) -> Option<f64> {
        *self.typical.get_or_insert_with(|| {
            if self.arrival_gaps.len() >= 3 {
                self.arrival_gaps.median()
            } else {
                self.logged_gaps.median()
            }
        })
    }

    /// The stall threshold in seconds for this run.
    pub fn threshold(&mut self, config: &MonitorConfig) -> f64 {
        if let Some(secs) = config.stall_secs {
            return secs;
        }
        config
            .stall_min_secs
            .max(config.stall_factor * self.typical_gap().unwrap_or(0.0))
    }

    /// The earliest time a tick can do anything: until records arrive (a
    /// new count, which comes with an observe), a tick before it neither
    /// alerts nor changes what this rule knows.
    pub fn idle_until(&self, config: &MonitorConfig) -> f64 {
        match self.last_activity {
            Some(last) if !self.alerted => {
                last + config.stall_secs.unwrap_or(config.stall_min_secs)
            }
            _ => f64::INFINITY,
        }
    }

    pub fn tick(
        &mut self,
        now: f64,
        following: bool,
        records: u64,
        step: Option<u64>,
        config: &MonitorConfig,
    ) -> Option<Alert> {
        if !now.is_finite() {
            return None;
        }
        if records > self.records_at_last_tick {
            if let Some(prev) = self.last_activity
                && now > prev
            {
                self.arrival_gaps.push(now - prev);
                self.typical = None;
            }
            self.records_at_last_tick = records;
            self.last_activity = Some(now);
            // Records arrived: the stall episode (if any) is over.
            self.alerted = false;
            return None;
        }
        let last = self.last_activity?;
        let idle = now - last;
        // Cheapest checks first: no threshold is needed to see that none
        // can be crossed yet.
        if !following || self.alerted || idle < config.stall_secs.unwrap_or(config.stall_min_secs) {
            return None;
        }
        if idle < self.threshold(config) {
            return None;
        }
        self.alerted = true;
        let at = step
            .map(|s| format!(" (last step {s})"))
            .unwrap_or_default();
        let pace = self
            .typical_gap()
            .map(|gap| format!("; this run normally logs every {}", duration(gap)))
            .unwrap_or_default();
        Some(Alert::new(
            Level::Warn,
            AlertKind::Stalled,
            step,
            format!("no new records for {}{at}{pace}", duration(idle)),
            "check that the training process is alive (GPU hang, OOM kill, dataloader deadlock, full disk) and still writing this file".to_string(),
        ))
    }
}

impl Default for Stall {
    fn default() -> Self {
        Self::new()
    }
}

fn duration(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}
