//! The logged LR series: kept decimated while records stream in, and turned
//! into (t, lr) samples under a step convention for scoring candidates.

use crate::policy::Policy;

/// LR points kept at most; beyond, every other point is dropped and the
/// stride doubles, so memory stays bounded and the sampling uniform.
const MAX_POINTS: usize = 4096;
/// Samples used while searching parameters (the final score uses all).
const SEARCH_POINTS: usize = 400;
/// Steps beyond this are not real training steps (and would overflow the
/// integer searches); such points are ignored.
pub const MAX_STEP: u64 = 1 << 40;
/// Per-point relative errors are capped so that one wild point cannot
/// dominate the mean.
const MAX_POINT_ERR: f64 = 10.0;

#[derive(Debug, Clone, Default)]
pub struct LrSeries {
    points: Vec<(u64, f64)>,
    stride: u64,
    seen: u64,
}

impl LrSeries {
    pub fn new() -> Self {
        LrSeries {
            points: Vec::new(),
            stride: 1,
            seen: 0,
        }
    }

    pub fn push(&mut self, step: u64, lr: f64) {
        if !lr.is_finite() {
            return;
        }
        if self.seen.is_multiple_of(self.stride) {
            if self.points.len() == MAX_POINTS {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.points.push((step, lr));
            }
        }
        self.seen += 1;
    }

    /// LR points seen, kept or not.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn points(&self) -> &[(u64, f64)] {
        &self.points
    }
}

/// (t, lr) samples sorted by t, one per t, with t = step - offset.
#[derive(Debug, Clone)]
pub struct Samples {
    pub t: Vec<f64>,
    pub y: Vec<f64>,
    /// Relative errors are taken against max(|lr|, floor): LRs of exactly 0
    /// (warmup starts) count in units of a thousandth of the peak.
    floor: f64,
}

impl Samples {
    pub fn new(points: &[(u64, f64)], offset: u64) -> Samples {
        let mut pts: Vec<(u64, f64)> = points
            .iter()
            .filter(|(s, lr)| *s >= offset && *s <= MAX_STEP && lr.is_finite())
            .map(|&(s, lr)| (s - offset, lr))
            .collect();
        pts.sort_by_key(|&(t, _)| t);
        // Several records at one step (e.g. a final summary): keep the last.
        pts.reverse();
        pts.dedup_by_key(|(t, _)| *t);
        pts.reverse();
        let peak = pts.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
        Samples {
            t: pts.iter().map(|p| p.0 as f64).collect(),
            y: pts.iter().map(|p| p.1).collect(),
            floor: (peak * 1e-3).max(1e-300),
        }
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// At most SEARCH_POINTS samples, evenly spread, keeping the first, the
    /// last and the extremes.
    pub fn thinned(&self) -> Samples {
        let n = self.len();
        if n <= SEARCH_POINTS {
            return self.clone();
        }
        let mut keep: Vec<usize> = (0..SEARCH_POINTS)
            .map(|k| k * (n - 1) / (SEARCH_POINTS - 1))
            .collect();
        keep.extend(argmax(&self.y));
        keep.extend(argmax(&self.y.iter().map(|v| -v).collect::<Vec<_>>()));
        keep.sort_unstable();
        keep.dedup();
        Samples {
            t: keep.iter().map(|&i| self.t[i]).collect(),
            y: keep.iter().map(|&i| self.y[i]).collect(),
            floor: self.floor,
        }
    }

    /// Mean relative error of a policy over the samples.
    pub fn score(&self, policy: &Policy) -> f64 {
        if self.t.is_empty() {
            return f64::INFINITY;
        }
        let total: f64 = self
            .t
            .iter()
            .zip(&self.y)
            .map(|(&t, &y)| {
                let p = policy.lr(t as u64);
                let err = (p - y).abs() / y.abs().max(self.floor);
                if err.is_finite() {
                    err.min(MAX_POINT_ERR)
                } else {
                    MAX_POINT_ERR
                }
            })
            .sum();
        total / self.t.len() as f64
    }

    /// The scale s minimising the error of s * policy (the median of lr / policy).
    pub fn best_scale(&self, policy: &Policy) -> Option<f64> {
        let mut ratios: Vec<f64> = self
            .t
            .iter()
            .zip(&self.y)
            .filter_map(|(&t, &y)| {
                let p = policy.lr(t as u64);
                (p > 0.0 && y > 0.0 && p.is_finite()).then(|| y / p)
            })
            .collect();
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        Some(ratios[ratios.len() / 2])
    }
}

fn argmax(v: &[f64]) -> Option<usize> {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_bounds_memory_and_stays_uniform() {
        let mut s = LrSeries::new();
        for step in 1..=100_000u64 {
            s.push(step, 1.0);
        }
        assert!(s.points().len() <= MAX_POINTS);
        assert_eq!(s.seen(), 100_000);
        let gaps: Vec<u64> = s.points().windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(gaps.iter().all(|&g| g == gaps[0]));
    }

    #[test]
    fn samples_apply_the_offset_and_keep_the_last_per_step() {
        let s = Samples::new(&[(1, 0.0), (2, 1.0), (2, 2.0), (0, 5.0)], 1);
        assert_eq!(s.t, vec![0.0, 1.0]);
        assert_eq!(s.y, vec![0.0, 2.0]);
    }
}
