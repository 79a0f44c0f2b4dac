//! Closed-form first guesses for the families' parameters: warmup and
//! decay lengths from the series' shape.

use std::f64::consts::PI;

use super::features::Features;
use super::samples::Samples;

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
