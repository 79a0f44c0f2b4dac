//! Per-run columnar storage: one row per record (step, epoch, time) and one
//! sparse column per metric, so memory follows the values, not the records.

use std::collections::HashMap;

use super::record::Record;

/// What the x axis of a chart measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    #[default]
    Step,
    Epoch,
    /// Seconds since the run's first record.
    RelativeTime,
    /// Seconds since the Unix epoch (logged time, else arrival time).
    WallTime,
}

impl XAxis {
    pub fn next(self) -> XAxis {
        match self {
            XAxis::Step => XAxis::Epoch,
            XAxis::Epoch => XAxis::RelativeTime,
            XAxis::RelativeTime => XAxis::WallTime,
            XAxis::WallTime => XAxis::Step,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Epoch => "epoch",
            XAxis::RelativeTime => "time (s)",
            XAxis::WallTime => "wall time",
        }
    }
}

/// One metric's values and the rows they belong to.
#[derive(Debug, Clone, Default)]
pub struct Column {
    pub rows: Vec<u32>,
    pub values: Vec<f64>,
    /// Over finite values only.
    pub min: f64,
    pub max: f64,
    pub min_row: u32,
    pub first_nonfinite_row: Option<u32>,
}

impl Column {
    fn new() -> Self {
        Column {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    fn push(&mut self, row: u32, value: f64) {
        self.rows.push(row);
        self.values.push(value);
        if value.is_finite() {
            if value < self.min {
                self.min = value;
                self.min_row = row;
            }
            self.max = self.max.max(value);
        } else if self.first_nonfinite_row.is_none() {
            self.first_nonfinite_row = Some(row);
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn last(&self) -> Option<(u32, f64)> {
        Some((*self.rows.last()?, *self.values.last()?))
    }
}

/// Everything recorded for one run.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    steps: Vec<f64>,
    epochs: Vec<f64>,
    times: Vec<f64>,
    /// Seconds (Unix) when each row arrived, for runs that log no time.
    arrivals: Vec<f64>,
    names: Vec<String>,
    columns: Vec<Column>,
    index: HashMap<String, usize>,
    last_step: Option<u64>,
    has_time: bool,
    has_epoch: bool,
}

impl RunData {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Appends one record; a record without a step takes the previous step.
    pub fn push(&mut self, rec: &Record, arrival: f64) {
        let row = self.steps.len() as u32;
        let step = rec.step.or(self.last_step);
        if rec.step.is_some() {
            self.last_step = rec.step;
        }
        self.steps.push(step.map_or(f64::NAN, |s| s as f64));
        self.epochs.push(rec.epoch.unwrap_or(f64::NAN));
        self.times.push(rec.time.unwrap_or(f64::NAN));
        self.arrivals.push(arrival);
        self.has_time |= rec.time.is_some();
        self.has_epoch |= rec.epoch.is_some();
        for (name, value) in rec.values() {
            self.column_mut(name).push(row, value);
        }
    }

    fn column_mut(&mut self, name: &str) -> &mut Column {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.names.push(name.to_string());
                self.columns.push(Column::new());
                self.index.insert(name.to_string(), self.columns.len() - 1);
                self.columns.len() - 1
            }
        };
        &mut self.columns[i]
    }

    /// Appends another run's rows (e.g. a chunk parsed in parallel). Leading
    /// rows of `other` that had no step take this run's last step.
    pub fn append(&mut self, mut other: RunData) {
        let offset = self.steps.len() as u32;
        if let Some(last) = self.last_step {
            for s in other.steps.iter_mut() {
                if !s.is_nan() {
                    break;
                }
                *s = last as f64;
            }
        }
        self.steps.append(&mut other.steps);
        self.epochs.append(&mut other.epochs);
        self.times.append(&mut other.times);
        self.arrivals.append(&mut other.arrivals);
        self.has_time |= other.has_time;
        self.has_epoch |= other.has_epoch;
        if other.last_step.is_some() {
            self.last_step = other.last_step;
        }
        for (name, col) in other.names.iter().zip(other.columns) {
            let target = self.column_mut(name);
            target.rows.reserve(col.rows.len());
            target.values.reserve(col.values.len());
            for (row, value) in col.rows.into_iter().zip(col.values) {
                target.push(row + offset, value);
            }
        }
    }

    pub fn metric_names(&self) -> &[String] {
        &self.names
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index.get(name).map(|&i| &self.columns[i])
    }

    pub fn last_step(&self) -> Option<u64> {
        self.last_step
    }

    pub fn first_step(&self) -> Option<u64> {
        self.steps.iter().find(|s| !s.is_nan()).map(|&s| s as u64)
    }

    pub fn step_at(&self, row: u32) -> Option<u64> {
        self.steps
            .get(row as usize)
            .filter(|s| !s.is_nan())
            .map(|&s| s as u64)
    }

    pub fn epoch_at(&self, row: u32) -> Option<f64> {
        self.epochs
            .get(row as usize)
            .copied()
            .filter(|e| !e.is_nan())
    }

    pub fn has_epoch(&self) -> bool {
        self.has_epoch
    }

    /// Latest epoch logged at or before `row`.
    pub fn last_epoch(&self) -> Option<f64> {
        self.epochs.iter().rev().find(|e| !e.is_nan()).copied()
    }

    /// Wall-clock seconds of a row: logged time when the run logs time, else arrival.
    pub fn time_at(&self, row: u32) -> f64 {
        let r = row as usize;
        if self.has_time && !self.times[r].is_nan() {
            self.times[r]
        } else {
            self.arrivals[r]
        }
    }

    fn first_time(&self) -> f64 {
        if self.has_time {
            self.times
                .iter()
                .copied()
                .find(|t| !t.is_nan())
                .unwrap_or(0.0)
        } else {
            self.arrivals.first().copied().unwrap_or(0.0)
        }
    }

    /// The x value of a row on the given axis (NaN when unknown).
    pub fn x_at(&self, row: u32, axis: XAxis) -> f64 {
        let r = row as usize;
        match axis {
            XAxis::Step => self.steps[r],
            XAxis::Epoch => self.epochs[r],
            XAxis::RelativeTime => self.time_at(row) - self.first_time(),
            XAxis::WallTime => self.time_at(row),
        }
    }

    /// (x, value) points of a metric, skipping rows whose x is unknown.
    pub fn points(&self, name: &str, axis: XAxis) -> Vec<(f64, f64)> {
        let Some(col) = self.column(name) else {
            return Vec::new();
        };
        let t0 = self.first_time();
        let mut out = Vec::with_capacity(col.len());
        for (&row, &value) in col.rows.iter().zip(&col.values) {
            let x = match axis {
                XAxis::RelativeTime => self.time_at(row) - t0,
                _ => self.x_at(row, axis),
            };
            if !x.is_nan() {
                out.push((x, value));
            }
        }
        out
    }

    /// Records per second over the last `window` seconds of arrivals.
    pub fn arrival_rate(&self, now: f64, window: f64) -> f64 {
        let from = now - window;
        let n = self
            .arrivals
            .iter()
            .rev()
            .take_while(|&&a| a >= from)
            .count();
        n as f64 / window
    }

    /// Approximate heap bytes held, for memory checks.
    pub fn heap_bytes(&self) -> usize {
        let rows = (self.steps.capacity()
            + self.epochs.capacity()
            + self.times.capacity()
            + self.arrivals.capacity())
            * 8;
        let cols: usize = self
            .columns
            .iter()
            .map(|c| c.rows.capacity() * 4 + c.values.capacity() * 8)
            .sum();
        rows + cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: Option<u64>, loss: Option<f64>) -> Record {
        Record {
            step,
            loss,
            ..Default::default()
        }
    }

    #[test]
    fn missing_steps_take_the_previous_step() {
        let mut run = RunData::new();
        run.push(&rec(Some(3), Some(1.0)), 0.0);
        run.push(
            &Record {
                extra: vec![("val_acc".into(), 0.5)],
                ..Default::default()
            },
            0.0,
        );
        assert_eq!(run.points("val_acc", XAxis::Step), vec![(3.0, 0.5)]);
        assert_eq!(
            run.metric_names(),
            &["loss".to_string(), "val_acc".to_string()]
        );
    }

    #[test]
    fn append_offsets_rows_and_fills_leading_steps() {
        let mut a = RunData::new();
        a.push(&rec(Some(1), Some(2.0)), 0.0);
        let mut b = RunData::new();
        b.push(&rec(None, Some(1.5)), 0.0);
        b.push(&rec(Some(2), Some(f64::NAN)), 0.0);
        a.append(b);
        assert_eq!(a.len(), 3);
        let loss = a.column("loss").unwrap();
        assert_eq!(loss.rows, vec![0, 1, 2]);
        assert_eq!(loss.min, 1.5);
        assert_eq!(a.step_at(loss.min_row), Some(1));
        assert_eq!(loss.first_nonfinite_row, Some(2));
        assert_eq!(a.last_step(), Some(2));
    }
}
