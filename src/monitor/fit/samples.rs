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
    /// How the log rounded each LR, as a multiplier: predictions are
    /// rounded as `round(p * m) / m` before comparing (`round(lr, 8)`: 1e8
    /// everywhere; `f"{lr:.3g}"`: by each value's magnitude); empty when the
    /// log did not round.
    rounding: Vec<f64>,
}

/// The fewest significant digits (at most 4) that write every value, if
/// that few suffice: a log that printed its LRs short.
fn digits_of(y: &[f64]) -> Option<usize> {
    let needed = |v: f64| {
        (1..=4).find(|&k| {
            let r = crate::format::round_sig(v, k);
            (r - v).abs() <= 1e-12 * v.abs()
        })
    };
    let mut most = 1;
    for &v in y.iter().filter(|v| **v != 0.0) {
        most = most.max(needed(v)?);
    }
    Some(most)
}

/// The coarsest power of ten every value is a multiple of (1e-4 to 1e-12),
/// if any: the rounding a logger applied.
fn quantum_of(y: &[f64]) -> Option<f64> {
    (4..=12).map(|k| 10f64.powi(-k)).find(|&q| {
        y.iter().all(|&v| {
            let r = v / q;
            (r - r.round()).abs() <= 1e-6 * r.abs().max(1.0)
        })
    })
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
        let y: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let quantum = quantum_of(&y);
        let digits = digits_of(&y);
        let rounding: Vec<f64> = match (quantum, digits) {
            (Some(q), _) => vec![1.0 / q; y.len()],
            (None, Some(k)) => y
                .iter()
                .map(|&v| {
                    if v == 0.0 {
                        0.0
                    } else {
                        10f64.powi(k as i32 - 1 - v.abs().log10().floor() as i32)
                    }
                })
                .collect(),
            (None, None) => Vec::new(),
        };
        // Small LRs count relative to themselves down to a millionth of the
        // peak, or to the rounding of the log.
        let floor = (peak * 1e-6).max(quantum.map_or(0.0, |q| q / 2.0));
        Samples {
            t: pts.iter().map(|p| p.0 as f64).collect(),
            rounding,
            y,
            floor: floor.max(1e-300),
        }
    }

    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// At most SEARCH_POINTS samples, evenly spread, keeping the first, the
    /// last and the extremes.
    pub fn thinned(&self) -> Samples {
        self.thinned_to(SEARCH_POINTS)
    }

    /// At most `points` samples (and the extremes), evenly spread.
    pub fn thinned_to(&self, points: usize) -> Samples {
        let n = self.len();
        if n <= points {
            return self.clone();
        }
        let mut keep: Vec<usize> = (0..points).map(|k| k * (n - 1) / (points - 1)).collect();
        keep.extend(argmax(&self.y));
        keep.extend(argmax(&self.y.iter().map(|v| -v).collect::<Vec<_>>()));
        keep.sort_unstable();
        keep.dedup();
        Samples {
            t: keep.iter().map(|&i| self.t[i]).collect(),
            y: keep.iter().map(|&i| self.y[i]).collect(),
            floor: self.floor,
            rounding: if self.rounding.is_empty() {
                Vec::new()
            } else {
                keep.iter().map(|&i| self.rounding[i]).collect()
            },
        }
    }

    /// Mean relative error of a policy over the samples.
    pub fn score(&self, policy: &Policy) -> f64 {
        self.score_values(|_, t| policy.lr(t), 1.0)
    }

    /// The largest relative error of a policy over the samples.
    pub fn max_err(&self, policy: &Policy) -> f64 {
        let mut worst: f64 = 0.0;
        for (i, (&t, &y)) in self.t.iter().zip(&self.y).enumerate() {
            let mut p = policy.lr(t as u64);
            if let Some(&m) = self.rounding.get(i)
                && m > 0.0
            {
                p = (p * m).round() / m;
            }
            let err = (p - y).abs() / y.abs().max(self.floor);
            worst = worst.max(if err.is_finite() { err } else { f64::INFINITY });
        }
        worst
    }

    /// The policy's value at every sample, into `out`.
    pub fn predict(&self, policy: &Policy, out: &mut Vec<f64>) {
        out.clear();
        out.extend(self.t.iter().map(|&t| policy.lr(t as u64)));
    }

    /// Mean relative error of `scale * predicted` (from [`Samples::predict`]).
    pub fn score_predicted(&self, predicted: &[f64], scale: f64) -> f64 {
        self.score_values(|i, _| predicted[i], scale)
    }

    /// Mean relative error of `scale * f(i, t)`.
    fn score_values(&self, f: impl Fn(usize, u64) -> f64, scale: f64) -> f64 {
        if self.t.is_empty() {
            return f64::INFINITY;
        }
        let mut total = 0.0;
        for (i, (&t, &y)) in self.t.iter().zip(&self.y).enumerate() {
            let mut p = scale * f(i, t as u64);
            if let Some(&m) = self.rounding.get(i)
                && m > 0.0
            {
                p = (p * m).round() / m;
            }
            let err = (p - y).abs() / y.abs().max(self.floor);
            total += if err.is_finite() {
                err.min(MAX_POINT_ERR)
            } else {
                MAX_POINT_ERR
            };
        }
        total / self.t.len() as f64
    }

    /// The scale s minimising the error of s * predicted (the median of
    /// lr / predicted); `ratios` is scratch space.
    pub fn best_scale(&self, predicted: &[f64], ratios: &mut Vec<f64>) -> Option<f64> {
        ratios.clear();
        ratios.extend(
            predicted
                .iter()
                .zip(&self.y)
                .filter(|&(&p, &y)| p > 0.0 && y > 0.0 && p.is_finite())
                .map(|(&p, &y)| y / p),
        );
        if ratios.is_empty() {
            return None;
        }
        let mid = ratios.len() / 2;
        let (_, median, _) = ratios.select_nth_unstable_by(mid, f64::total_cmp);
        Some(*median)
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
    fn scaled_predictions_score_as_the_scaled_policy() {
        let spec = |lr: f64| format!("cosine(lr={lr},num_warmup_steps=10,num_training_steps=200)");
        let logged = Policy::parse(&spec(0.3)).unwrap();
        let points: Vec<(u64, f64)> = (0..200).map(|s| (s, logged.lr(s) * 1.01)).collect();
        let samples = Samples::new(&points, 0);
        let first = Policy::parse(&spec(0.1)).unwrap();
        let (mut predicted, mut ratios) = (Vec::new(), Vec::new());
        samples.predict(&first, &mut predicted);
        let scale = samples.best_scale(&predicted, &mut ratios).unwrap();
        assert!((scale - 3.03).abs() < 1e-9, "{scale}");
        let tripled = Policy::parse(&spec(0.3)).unwrap();
        let (by_values, by_policy) = (
            samples.score_predicted(&predicted, 3.0),
            samples.score(&tripled),
        );
        assert!(
            (by_values - by_policy).abs() < 1e-12,
            "{by_values} {by_policy}"
        );
        // 1% off everywhere but at t = 0, where both are 0.
        assert!((0.0098..0.0100).contains(&by_policy), "{by_policy}");
    }

    #[test]
    fn samples_apply_the_offset_and_keep_the_last_per_step() {
        let s = Samples::new(&[(1, 0.0), (2, 1.0), (2, 2.0), (0, 5.0)], 1);
        assert_eq!(s.t, vec![0.0, 1.0]);
        assert_eq!(s.y, vec![0.0, 2.0]);
    }
}
