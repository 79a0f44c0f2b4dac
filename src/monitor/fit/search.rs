//! The small search every family uses: score a spec on thinned samples,
//! refine one parameter at a time around an estimate, and closed-form first
//! guesses for warmup and decay lengths.

use std::f64::consts::PI;

use crate::policy::Policy;

use super::features::Features;
use super::samples::Samples;

/// A spec and its description, as proposed by a family.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub spec: String,
    pub description: String,
}

pub struct Fitter<'a> {
    pub samples: &'a Samples,
    pub thin: Samples,
    pub features: &'a Features,
}

/// Upper bound on refinement moves (each is one or two evaluations).
const MAX_MOVES: usize = 64;

impl<'a> Fitter<'a> {
    pub fn new(samples: &'a Samples, features: &'a Features) -> Self {
        Fitter {
            samples,
            thin: samples.thinned(),
            features,
        }
    }

    /// Error of a spec on the thinned samples; invalid specs score infinity.
    pub fn eval(&self, spec: &str) -> f64 {
        Policy::parse(spec)
            .map(|p| self.thin.score(&p))
            .unwrap_or(f64::INFINITY)
    }

    /// The LR that best scales a spec built with `lr` (a first guess).
    pub fn rescale(&self, lr: f64, build: impl Fn(f64) -> String) -> f64 {
        Policy::parse(&build(lr))
            .ok()
            .and_then(|p| self.samples.best_scale(&p))
            .map_or(lr, |s| lr * s)
    }
}

/// Integer parameter search: a geometric grid from start/2 to 2*start, then
/// a local search with halving steps. Returns (value, error).
pub fn refine_int(start: f64, lo: u64, hi: u64, f: impl Fn(u64) -> f64) -> (u64, f64) {
    let lo = lo.max(1);
    let hi = hi.max(lo);
    let clamp = |v: f64| {
        if v.is_finite() {
            (v.round().max(0.0) as u64).clamp(lo, hi)
        } else {
            lo
        }
    };
    let mut best = (clamp(start), f(clamp(start)));
    for k in -8..=8 {
        let v = clamp(start * 2f64.powf(k as f64 / 8.0));
        if v != best.0 {
            let e = f(v);
            if e < best.1 {
                best = (v, e);
            }
        }
    }
    let mut step = (best.0 / 16).max(1);
    for _ in 0..MAX_MOVES {
        let mut moved = false;
        for v in [
            best.0.saturating_sub(step).max(lo),
            best.0.saturating_add(step).min(hi),
        ] {
            if v != best.0 {
                let e = f(v);
                if e < best.1 {
                    best = (v, e);
                    moved = true;
                }
            }
        }
        if !moved {
            if step == 1 {
                break;
            }
            step /= 2;
        }
    }
    best
}

/// Positive real parameter search on a log scale within [lo, hi].
pub fn refine_real(start: f64, lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> (f64, f64) {
    if !(lo > 0.0 && lo <= hi) {
        return (start, f(start));
    }
    let clamp = |v: f64| if v.is_finite() { v.clamp(lo, hi) } else { lo };
    let mut best = (clamp(start), f(clamp(start)));
    for k in -8..=8 {
        let v = clamp(start * 2f64.powf(k as f64 / 4.0));
        if v != best.0 {
            let e = f(v);
            if e < best.1 {
                best = (v, e);
            }
        }
    }
    let mut step = 2f64.powf(1.0 / 8.0);
    for _ in 0..MAX_MOVES {
        let mut moved = false;
        for v in [clamp(best.0 / step), clamp(best.0 * step)] {
            if v != best.0 {
                let e = f(v);
                if e < best.1 {
                    best = (v, e);
                    moved = true;
                }
            }
        }
        if !moved {
            if step < 1.0 + 1e-5 {
                break;
            }
            step = step.sqrt();
        }
    }
    best
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    Some(xs[xs.len() / 2])
}

/// Linear warmup from 0 reaching the peak at t = w: w = t * peak / lr.
pub fn warmup_length(s: &Samples, f: &Features) -> f64 {
    if !f.rises_first() {
        return 0.0;
    }
    let est =
        s.t.iter()
            .zip(&s.y)
            .filter(|&(&t, &y)| t < f.t_peak && y > 0.0)
            .map(|(&t, &y)| t * f.peak / y)
            .collect();
    median(est).unwrap_or(f.t_peak).clamp(1.0, f.t_last + 1.0)
}

/// The shape of a decay from `top` (at t = start) to `bottom` (at t = end).
#[derive(Debug, Clone, Copy)]
pub enum Decay {
    Linear,
    Cosine,
    /// (1 - progress)^p.
    Power(f64),
}

/// Where a decay that starts at `start` ends, from each sample after the
/// start: the median of the per-sample solutions.
pub fn decay_end(s: &Samples, start: f64, top: f64, bottom: f64, shape: Decay) -> Option<f64> {
    let span = top - bottom;
    if span <= 0.0 {
        return None;
    }
    let est =
        s.t.iter()
            .zip(&s.y)
            .filter(|&(&t, _)| t > start)
            .filter_map(|(&t, &y)| {
                let r = (y - bottom) / span;
                if !(0.02..=0.98).contains(&r) {
                    return None;
                }
                let progress = match shape {
                    Decay::Linear => 1.0 - r,
                    Decay::Cosine => (2.0 * r - 1.0).acos() / PI,
                    Decay::Power(p) => 1.0 - r.powf(1.0 / p),
                };
                Some(start + (t - start) / progress)
            })
            .collect();
    median(est)
}
