//! Schedule fit: which policy of the database does the logged LR follow?
//!
//! Each family proposes candidates whose parameters are estimated from the
//! series' shape (peak, warmup, end, drops, cycles) and refined by a small
//! search on thinned samples; the final score is the mean relative error
//! over all kept points under Hugging Face's convention (the LR logged at
//! step s is the policy at t = s-1), or, when that fits clearly better,
//! t = s (loggers that record the LR of the next update, like Lightning's).

mod features;
mod hf;
mod lrbench;
mod samples;
mod search;
mod torch;

use serde::Serialize;

use crate::policy::Policy;

use features::Features;
pub use samples::LrSeries;
use samples::Samples;
use search::{Candidate, Fitter};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleFit {
    /// An lrtop policy spec (parses with `Policy::parse`).
    pub spec: String,
    /// Mean relative error of the spec over the logged LR points.
    pub rel_err: f64,
    /// In words, e.g. "looks like cosine with 30 warmup steps, ...".
    pub description: String,
}

/// Candidates whose error is within this factor of the best are ties; the
/// first proposed (HF, then PyTorch, then LRBench; simpler first) wins.
const TIE: f64 = 1.05;
/// Absolute slack on ties, for near-exact fits.
const TIE_ABS: f64 = 1e-6;
/// Above this error the description says the match is poor.
const POOR: f64 = 0.05;

/// Fits the (step, lr) points; None with fewer than 3 distinct steps.
pub fn fit(points: &[(u64, f64)]) -> Option<ScheduleFit> {
    let hf_convention = fit_with_offset(points, 1);
    let next_update = fit_with_offset(points, 0);
    let mut best = match (hf_convention, next_update) {
        (Some(a), Some(b)) if b.rel_err < a.rel_err / TIE - TIE_ABS => {
            let mut b = b;
            b.description += " (the LR logged at step s is its value at t = s, one update later than Hugging Face's convention)";
            b
        }
        (Some(a), _) => a,
        (None, b) => b?,
    };
    if best.rel_err > POOR {
        best.description = format!(
            "no close match ({:.0}% mean error); nearest: {}",
            best.rel_err * 100.0,
            best.description
        );
    }
    Some(best)
}

fn fit_with_offset(points: &[(u64, f64)], offset: u64) -> Option<ScheduleFit> {
    let samples = Samples::new(points, offset);
    let features = Features::of(&samples)?;
    let fx = Fitter::new(&samples, &features);
    let candidates: Vec<Candidate> = hf::candidates(&fx)
        .into_iter()
        .chain(torch::candidates(&fx))
        .chain(lrbench::candidates(&fx))
        .collect();
    let scored: Vec<(f64, Candidate)> = candidates
        .into_iter()
        .filter_map(|c| {
            let policy = Policy::parse(&c.spec).ok()?;
            let err = samples.score(&policy);
            err.is_finite().then_some((err, c))
        })
        .collect();
    let min = scored.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let (rel_err, c) = scored
        .into_iter()
        .find(|(err, _)| *err <= min * TIE + TIE_ABS)?;
    Some(ScheduleFit {
        spec: c.spec,
        rel_err,
        description: c.description,
    })
}
