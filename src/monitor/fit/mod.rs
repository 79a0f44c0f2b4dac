//! Schedule fit: which policy of the database does the logged LR follow?
//!
//! Each family proposes candidates whose parameters are estimated from the
//! series' shape (peak, warmup, end, drops, cycles) and refined by a small
//! search on thinned samples; the final score is the mean relative error
//! over all kept points under Hugging Face's convention (the LR logged at
//! step s is the policy at t = s-1), or, when that fits clearly better,
//! t = s (loggers that record the LR of the next update, like Lightning's).

mod families;
mod features;
mod optimize;
mod samples;
mod search;

use rayon::prelude::*;
use serde::Serialize;

use features::Features;
use optimize::Fitted;
pub use samples::LrSeries;
use samples::Samples;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleFit {
    /// An lrtop policy spec (parses with `Policy::parse`).
    pub spec: String,
    /// Mean relative error of the spec over the logged LR points.
    pub rel_err: f64,
    /// In words, e.g. "looks like cosine with 30 warmup steps, ...".
    pub description: String,
    /// The logged LR at step s is `spec` at t = s + offset: -1 when it is
    /// the LR of the update just made (Hugging Face Trainer), 0 when it is
    /// the next update's (older transformers, `get_last_lr()` after
    /// `scheduler.step()`).
    pub offset: i64,
}

/// Below this mean relative error a fit is exact: the schedule itself.
pub const EXACT: f64 = 1e-4;
/// Without an exact fit, candidates within this factor of the best are
/// ties; the simplest wins.
const TIE: f64 = 1.05;
/// Above this error the description says the match is poor.
const POOR: f64 = 0.05;

/// The two conventions tried: t = s - 1 (Hugging Face) and t = s.
const OFFSETS: [u64; 2] = [1, 0];

/// Fits the (step, lr) points; None with fewer than 3 distinct steps, or
/// while the data cannot tell the candidates apart (an LR still rising: a
/// warmup not over yet).
pub fn fit(points: &[(u64, f64)]) -> Option<ScheduleFit> {
    let sets: Vec<(u64, Samples)> = OFFSETS
        .iter()
        .map(|&o| (o, Samples::new(points, o)))
        .collect();
    let features: Vec<Option<Features>> = sets.iter().map(|(_, s)| Features::of(s)).collect();
    if features.iter().all(Option::is_none) {
        return None;
    }
    if features.iter().flatten().any(still_rising) {
        return None;
    }
    // Proposals of both conventions, simplest first; the search stops at
    // the first complexity with an exact fit.
    let mut fitted: Vec<(u64, usize, Fitted)> = Vec::new();
    let mut families: Vec<(u64, usize, usize, optimize::Proposal)> = Vec::new();
    let thins: Vec<Samples> = sets.iter().map(|(_, s)| s.thinned()).collect();
    for (k, ((offset, samples), f)) in sets.iter().zip(&features).enumerate() {
        let Some(f) = f else { continue };
        for (order, fam) in families::proposals(samples, f).into_iter().enumerate() {
            families.push((*offset, k, fam.complexity * 1000 + order, fam.proposal));
        }
    }
    families.sort_by_key(|(_, _, key, _)| *key);
    let mut exact_at: Option<usize> = None;
    // One complexity at a time, its proposals in parallel.
    let mut level_start = 0;
    while level_start < families.len() && exact_at.is_none() {
        let complexity = families[level_start].2 / 1000;
        let level_end = families[level_start..]
            .iter()
            .position(|f| f.2 / 1000 != complexity)
            .map_or(families.len(), |i| level_start + i);
        let level: Vec<(u64, usize, Fitted)> = families[level_start..level_end]
            .par_iter()
            .filter_map(|(offset, k, _, proposal)| {
                let fit = optimize::fit(proposal, &thins[*k], &sets[*k].1)?;
                Some((*offset, complexity, fit))
            })
            .collect();
        if level.iter().any(|(_, _, f)| f.err < EXACT) {
            exact_at = Some(complexity);
        }
        fitted.extend(level);
        level_start = level_end;
    }
    let best = if exact_at.is_some() {
        // The simplest exact fit, unless another is much closer; then the
        // roundest parameters; then Hugging Face's convention; then the
        // order proposed.
        let exact: Vec<&(u64, usize, Fitted)> =
            fitted.iter().filter(|(_, _, f)| f.err < EXACT).collect();
        let closest = exact.iter().map(|x| x.2.err).fold(f64::INFINITY, f64::min);
        exact
            .into_iter()
            .filter(|(_, _, f)| f.err <= (closest * 10.0).max(1e-9))
            .min_by_key(|(offset, complexity, f)| {
                (
                    *complexity,
                    f.digits,
                    families::rarity(f.family),
                    *offset != 1,
                )
            })?
    } else {
        let min = fitted.iter().map(|x| x.2.err).fold(f64::INFINITY, f64::min);
        fitted
            .iter()
            .filter(|(_, _, f)| f.err <= min * TIE + 1e-12)
            .min_by_key(|(offset, complexity, f)| {
                (
                    *complexity,
                    f.digits,
                    families::rarity(f.family),
                    *offset != 1,
                )
            })?
    };
    let (offset, _, f) = best;
    let mut description = f.description.clone();
    if *offset == 0 {
        description += " (the LR logged at step s is its value at t = s, one update later than Hugging Face's convention)";
    }
    if f.err > POOR {
        description = format!(
            "no close match ({:.0}% mean error); nearest: {description}",
            f.err * 100.0
        );
    }
    Some(ScheduleFit {
        spec: f.spec.clone(),
        rel_err: f.err,
        description,
        offset: -(*offset as i64),
    })
}

/// Is the LR still climbing at the last point (a warmup or the rise of a
/// cycle not over), so that what comes next cannot be told yet?
fn still_rising(f: &Features) -> bool {
    f.rises_first() && f.t_peak >= f.t_last
}
