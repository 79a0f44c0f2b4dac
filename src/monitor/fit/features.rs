//! Shape features of an LR series that seed the parameter estimates: peak
//! and its position (warmup length), ends (total length), drops (step
//! decays), local extrema (cycle periods).

use super::samples::Samples;

/// Two LRs closer than this (relative) count as equal.
const SAME: f64 = 1e-6;

#[derive(Debug, Clone)]
pub struct Features {
    pub t_first: f64,
    pub t_last: f64,
    pub y_first: f64,
    pub y_last: f64,
    pub peak: f64,
    /// First t where the LR reaches its peak.
    pub t_peak: f64,
    pub y_min: f64,
    /// The lowest LR after the peak (where a decay ends).
    pub y_min_after_peak: f64,
    /// Share of consecutive samples with the same LR (step schedules).
    pub flat_share: f64,
    /// Step decays: (first t at the new LR, new / old).
    pub drops: Vec<(f64, f64)>,
    /// The t of the sample before each drop (a sparse log's drop lies in
    /// between).
    pub before_drops: Vec<f64>,
    /// Times where the LR jumps up by more than a fifth of the peak.
    pub restarts: Vec<f64>,
    pub cycle: Option<Cycle>,
}

/// The first cycle of a cyclic schedule.
#[derive(Debug, Clone, Copy)]
pub struct Cycle {
    pub base: f64,
    pub t_max1: f64,
    pub y_max1: f64,
    pub t_min1: f64,
    pub t_max2: Option<f64>,
    pub y_max2: Option<f64>,
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= SAME * a.abs().max(b.abs())
}

impl Features {
    pub fn of(s: &Samples) -> Option<Features> {
        let n = s.len();
        if n < 3 {
            return None;
        }
        let (t, y) = (&s.t, &s.y);
        let peak = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let i_peak = y.iter().position(|&v| v >= peak)?;
        let y_min = y.iter().copied().fold(f64::INFINITY, f64::min);
        let y_min_after_peak = y[i_peak..].iter().copied().fold(f64::INFINITY, f64::min);
        let flat = y.windows(2).filter(|w| same(w[0], w[1])).count();
        let mut drops = Vec::new();
        let mut before_drops = Vec::new();
        let mut restarts = Vec::new();
        for i in 1..n {
            if y[i] < y[i - 1] && !same(y[i], y[i - 1]) && y[i - 1] > 0.0 {
                drops.push((t[i], y[i] / y[i - 1]));
                before_drops.push(t[i - 1]);
            }
            if y[i] - y[i - 1] > 0.2 * peak && i > 1 {
                restarts.push(t[i]);
            }
        }
        Some(Features {
            t_first: t[0],
            t_last: t[n - 1],
            y_first: y[0],
            y_last: y[n - 1],
            peak,
            t_peak: t[i_peak],
            y_min,
            y_min_after_peak,
            flat_share: flat as f64 / (n - 1) as f64,
            drops,
            before_drops,
            restarts,
            cycle: first_cycle(s),
        })
    }

    /// Does the LR rise before it falls (warmup, one-cycle)?
    pub fn rises_first(&self) -> bool {
        self.t_peak > self.t_first && self.y_first < 0.95 * self.peak
    }

    /// Is the series piecewise constant with at least one drop?
    pub fn is_stepwise(&self) -> bool {
        self.flat_share >= 0.5 && !self.drops.is_empty()
    }
}

/// Index of the first local maximum at or after `from` that is followed by
/// a strict fall (plateaus at the top count as one maximum).
fn next_max(y: &[f64], from: usize) -> Option<usize> {
    (from..y.len() - 1)
        .find(|&i| y[i + 1] < y[i] && !same(y[i + 1], y[i]) && (i == 0 || y[i] >= y[i - 1]))
}

fn next_min(y: &[f64], from: usize) -> Option<usize> {
    (from..y.len() - 1)
        .find(|&i| y[i + 1] > y[i] && !same(y[i + 1], y[i]) && (i == 0 || y[i] <= y[i - 1]))
}

/// Rise, fall, rise again: the first cycle, when there is one.
fn first_cycle(s: &Samples) -> Option<Cycle> {
    let y = &s.y;
    let i_max1 = next_max(y, 0)?;
    if i_max1 == 0 {
        return None;
    }
    let i_min1 = next_min(y, i_max1)?;
    let i_max2 = next_max(y, i_min1);
    Some(Cycle {
        base: y[i_min1].min(y[0]),
        t_max1: s.t[i_max1],
        y_max1: y[i_max1],
        t_min1: s.t[i_min1],
        t_max2: i_max2.map(|i| s.t[i]),
        y_max2: i_max2.map(|i| y[i]),
    })
}
