//! The search every family shares: a family states its parameters (whole
//! numbers or positive reals, with bounds), a first guess and how to write
//! the spec; the optimizer refines them by coordinate descent, the LR scale
//! solved in closed form at every evaluation, then polishes on every sample
//! and snaps each parameter to the roundest value that fits as well.

use crate::format::num;
use crate::policy::Policy;

use super::samples::Samples;

/// What a parameter can be.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A whole number in [lo, hi].
    Int { lo: f64, hi: f64 },
    /// A real in [lo, hi] (lo > 0), searched on a log scale.
    Real { lo: f64, hi: f64 },
    /// A real in [lo, hi], searched by absolute steps (fractions, powers).
    Linear { lo: f64, hi: f64 },
}

impl Fitted {
    /// The schedule itself: a mean error below `EXACT` and no sample off
    /// by more than twice that (a short stretch of a decay can look like
    /// another on average).
    pub fn is_exact(&self) -> bool {
        self.err < super::EXACT && self.max_err < 2.0 * super::EXACT
    }
}

impl Kind {
    fn clamp(self, v: f64) -> f64 {
        match self {
            Kind::Int { lo, hi } => v.round().clamp(lo, hi.max(lo)),
            Kind::Real { lo, hi } | Kind::Linear { lo, hi } => {
                if v.is_finite() {
                    v.clamp(lo, hi.max(lo))
                } else {
                    lo
                }
            }
        }
    }
}

/// Writes a spec or a description from parameter values.
pub type SpecFn<'a> = Box<dyn Fn(&[f64]) -> String + Send + Sync + 'a>;

/// A family's proposal: parameters, a first guess, and the spec.
pub struct Proposal<'a> {
    pub family: &'static str,
    pub kinds: Vec<Kind>,
    pub start: Vec<f64>,
    /// Other first guesses worth a descent of their own (defaults a
    /// library uses, when the estimate may mislead).
    pub other_starts: Vec<Vec<f64>>,
    /// Whether the first parameter scales the whole LR (solved in closed
    /// form: the median of logged / proposed).
    pub scale_first: bool,
    pub build: SpecFn<'a>,
    pub describe: SpecFn<'a>,
}

/// A refined proposal.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub family: &'static str,
    pub spec: String,
    pub description: String,
    /// Mean relative error over every sample.
    pub err: f64,
    /// The largest relative error of a sample.
    pub max_err: f64,
    /// Significant digits in the parameters: lower is rounder.
    pub digits: usize,
}

/// Most objective evaluations of a coarse descent (on the search samples)
/// and of the fine one (on up to FINE_POINTS samples).
const MAX_EVALS: usize = 400;
const MAX_FINE_EVALS: usize = 120;
const FINE_POINTS: usize = 1200;

/// Objective of `params` on `samples`, the scale solved when asked.
fn objective(p: &Proposal, samples: &Samples, params: &mut [f64]) -> f64 {
    let Ok(policy) = Policy::parse(&(p.build)(params)) else {
        return f64::INFINITY;
    };
    if !p.scale_first {
        return samples.score(&policy);
    }
    // The policy is evaluated once: the rescaled one is the same values
    // times a factor. Most of a fit's time is these evaluations.
    SCRATCH.with_borrow_mut(|(predicted, ratios)| {
        samples.predict(&policy, predicted);
        let scale = match samples.best_scale(predicted, ratios) {
            Some(scale) if scale != 1.0 => scale,
            _ => return samples.score_predicted(predicted, 1.0),
        };
        params[0] = p.kinds[0].clamp(params[0] * scale);
        // Scored as written (the spec keeps 6 significant digits): the
        // written policy's factor over the first, read where the first is
        // largest.
        let Ok(written) = Policy::parse(&(p.build)(params)) else {
            return f64::INFINITY;
        };
        let factor = predicted
            .iter()
            .zip(&samples.t)
            .filter(|(v, _)| v.is_finite())
            .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))
            .filter(|(v, _)| **v != 0.0)
            .map(|(&v, &t)| written.lr(t as u64) / v);
        match factor {
            Some(factor) if factor.is_finite() => samples.score_predicted(predicted, factor),
            _ => samples.score(&written),
        }
    })
}

thread_local! {
    /// Predictions and ratios of one evaluation, reused by the next.
    static SCRATCH: std::cell::RefCell<(Vec<f64>, Vec<f64>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// Coordinate descent from `params`, steps shrinking from `coarse`.
fn descend(p: &Proposal, samples: &Samples, params: &mut Vec<f64>, coarse: bool) -> f64 {
    let max_evals = if coarse { MAX_EVALS } else { MAX_FINE_EVALS };
    for (v, k) in params.iter_mut().zip(&p.kinds) {
        *v = k.clamp(*v);
    }
    let mut best = objective(p, samples, params);
    let mut evals = 1;
    let first = usize::from(p.scale_first);
    let n = params.len();
    // Per-parameter step: relative for reals, absolute for the rest.
    let mut steps: Vec<f64> = p
        .kinds
        .iter()
        .zip(params.iter())
        .map(|(k, v)| match k {
            Kind::Int { .. } => {
                if coarse {
                    (v.abs() / 8.0).max(1.0).round()
                } else {
                    2.0
                }
            }
            Kind::Real { .. } => {
                if coarse {
                    0.25
                } else {
                    1e-3
                }
            }
            Kind::Linear { lo, hi } => {
                if coarse {
                    (hi - lo) / 8.0
                } else {
                    (hi - lo) * 1e-3
                }
            }
        })
        .collect();
    // Pattern search with a step per parameter: a move that helps keeps
    // its step (and grows it), one that does not halves it, until every
    // step is at its finest and no move helps.
    // A coarse descent only has to find the basin: the fine one starts
    // from its result with steps of a thousandth and goes down to 1e-9.
    // (Halving a coarse step from 1/4 to 1e-9 took ~28 failed pairs of
    // evaluations per parameter, most of a coarse descent's budget.)
    let resolution = if coarse { 1e-4 } else { 1e-9 };
    let finest = |k: &Kind| match k {
        Kind::Int { .. } => 1.0,
        Kind::Real { .. } => resolution,
        Kind::Linear { lo, hi } => (hi - lo) * resolution,
    };
    loop {
        let mut moved = false;
        let mut all_fine = true;
        for i in first..n {
            let mut improved = false;
            for dir in [-1.0, 1.0] {
                let mut trial = params.clone();
                trial[i] = match p.kinds[i] {
                    Kind::Int { .. } => params[i] + dir * steps[i],
                    Kind::Real { .. } => params[i] * (1.0 + dir * steps[i]),
                    Kind::Linear { .. } => params[i] + dir * steps[i],
                };
                trial[i] = p.kinds[i].clamp(trial[i]);
                if trial[i] == params[i] {
                    continue;
                }
                let e = objective(p, samples, &mut trial);
                evals += 1;
                if e < best {
                    best = e;
                    *params = trial;
                    improved = true;
                    break;
                }
            }
            let fine = finest(&p.kinds[i]);
            if improved {
                moved = true;
                if let Kind::Real { .. } = p.kinds[i] {
                    steps[i] = (steps[i] * 1.5).min(0.5);
                }
            } else if steps[i] > fine {
                steps[i] = match p.kinds[i] {
                    Kind::Int { .. } => (steps[i] / 2.0).floor().max(1.0),
                    _ => steps[i] / 2.0,
                };
            }
            if steps[i] > fine {
                all_fine = false;
            }
        }
        if evals >= max_evals || (!moved && all_fine) {
            break;
        }
    }
    best
}

/// Significant digits a number needs when written as the spec writes it.
pub fn digits(x: f64) -> usize {
    let text = num(x, 6);
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let d: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    d.trim_start_matches('0').trim_end_matches('0').len().max(1)
}

/// Significant digits of every number in a spec (milestone lists too).
pub fn spec_digits(spec: &str) -> usize {
    let mut total = 0;
    let mut token = String::new();
    let flush = |token: &mut String, total: &mut usize| {
        if let Ok(v) = token.parse::<f64>() {
            *total += digits(v);
        }
        token.clear();
    };
    for c in spec.chars() {
        if c.is_ascii_digit() || matches!(c, '.' | 'e' | '-') && !token.is_empty() || c == '.' {
            token.push(c);
        } else {
            flush(&mut token, &mut total);
        }
    }
    flush(&mut token, &mut total);
    total
}

/// Rounder values of `v`, roundest first.
fn rounder(v: f64, kind: Kind) -> Vec<f64> {
    let mut out = Vec::new();
    match kind {
        Kind::Int { .. } => {
            for unit in [10_000.0, 1000.0, 100.0, 10.0, 5.0] {
                let r = (v / unit).round() * unit;
                if r > 0.0 && r != v {
                    out.push(r);
                }
            }
        }
        Kind::Real { .. } | Kind::Linear { .. } => {
            for sig in 1..=5 {
                let r: f64 = crate::format::round_sig(v, sig);
                if r != v {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Refines a proposal and snaps it to round values.
pub fn fit(p: &Proposal, thin: &Samples, full: &Samples) -> Option<Fitted> {
    let mut params = p.start.clone();
    let mut e0 = descend(p, thin, &mut params, true);
    for start in &p.other_starts {
        let mut other = start.clone();
        let e = descend(p, thin, &mut other, true);
        if e < e0 {
            e0 = e;
            params = other;
        }
    }
    let fine = full.thinned_to(FINE_POINTS);
    descend(p, &fine, &mut params, false);
    let mut err = objective(p, full, &mut params);
    if !err.is_finite() {
        return None;
    }
    // Snap: each parameter to the roundest value that fits as well (the
    // scale follows the others), then the scale itself.
    // An exact fit keeps its exactness; a rough one may lose a tenth.
    let tolerance =
        |e: f64, base: f64| e <= base * 1.05 + 1e-9 || (base > super::EXACT && e <= base * 1.1);
    let first = usize::from(p.scale_first);
    let order: Vec<usize> = (first..params.len()).chain(0..first).collect();
    for i in order {
        for r in rounder(params[i], p.kinds[i]) {
            let r = p.kinds[i].clamp(r);
            if r == params[i] {
                continue;
            }
            let mut trial = params.clone();
            trial[i] = r;
            let e = if i == 0 && p.scale_first {
                // The scale itself: scored as written, not re-solved.
                Policy::parse(&(p.build)(&trial))
                    .map(|pol| full.score(&pol))
                    .unwrap_or(f64::INFINITY)
            } else {
                objective(p, full, &mut trial)
            };
            if tolerance(e, err) {
                params = trial;
                err = e.min(err);
                break;
            }
        }
    }
    let spec = (p.build)(&params);
    let policy = Policy::parse(&spec).ok()?;
    Some(Fitted {
        max_err: full.max_err(&policy),
        family: p.family,
        digits: spec_digits(&spec),
        description: (p.describe)(&params),
        spec,
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_counts() {
        assert_eq!(digits(5e-4), 1);
        assert_eq!(digits(0.000499833), 6);
        assert_eq!(digits(3000.0), 1);
        assert_eq!(digits(2999.0), 4);
        assert_eq!(digits(866.0), 3);
        assert_eq!(
            spec_digits("MultiStepLR(lr=0.1,milestones=[500,750],gamma=0.1)"),
            5
        );
        assert_eq!(spec_digits("x(a=1e-5,b=2999)"), 5);
    }
}
