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
        if level.iter().any(|(_, _, f)| f.is_exact()) {
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
            fitted.iter().filter(|(_, _, f)| f.is_exact()).collect();
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

/// The declared policy with its numbers refitted to the log at `offset`
/// (the logged LR at step s is the policy at t = s + offset): which of its
/// parameters must change, and to what, for the log to follow it. None when
/// no choice of them makes it fit exactly (the log follows another family).
///
/// `hint`, the schedule the log fits best, gives a second start: its
/// numbers for the parameters it shares by name (a warmup is one).
pub fn refit(
    points: &[(u64, f64)],
    offset: i64,
    declared: &str,
    hint: Option<&ScheduleFit>,
) -> Option<ScheduleFit> {
    let shift = u64::try_from(-offset).ok()?;
    let samples = Samples::new(points, shift);
    // A rising LR pins its slope, not its peak and length: wait.
    if Features::of(&samples).is_none_or(|f| still_rising(&f)) {
        return None;
    }
    let (name, args) = split_spec(declared)?;
    let mut numeric: Vec<(usize, f64)> = args
        .iter()
        .enumerate()
        .filter_map(|(i, (_, v))| Some((i, v.parse::<f64>().ok().filter(|x| x.is_finite())?)))
        .collect();
    // The base LR first, solved in closed form, when the policy is
    // proportional to it (no absolute floor): a warmup then pins lr / w
    // without a ridge for the search to crawl along.
    let is = |i: usize, names: &[&str]| names.contains(&args[i].0.as_str());
    let absolute_floor = numeric
        .iter()
        .any(|&(i, v)| v != 0.0 && is(i, &["eta_min", "min_lr", "lr_end", "base_lr"]));
    let scale_at = numeric.iter().position(|&(i, _)| is(i, &["lr", "max_lr"]));
    let scale_first = !absolute_floor && scale_at.is_some();
    if let (true, Some(at)) = (scale_first, scale_at) {
        numeric.swap(0, at);
    }
    if numeric.is_empty() {
        return None;
    }
    let horizon = samples.t.last().copied().unwrap_or(1.0).max(1.0) * 100.0;
    let peak = samples.y.iter().copied().fold(0.0, f64::max).max(1e-300);
    let kinds: Vec<optimize::Kind> = numeric
        .iter()
        .map(|&(_, v)| {
            if v.fract() == 0.0 && v >= 2.0 {
                optimize::Kind::Int {
                    lo: 0.0,
                    hi: (v * 100.0).max(horizon),
                }
            } else if v > 0.0 {
                optimize::Kind::Real {
                    lo: v * 1e-4,
                    hi: v * 1e4,
                }
            } else {
                optimize::Kind::Linear {
                    lo: 0.0,
                    hi: peak.max(1.0),
                }
            }
        })
        .collect();
    let write = |p: &[f64]| -> String {
        let mut args = args.clone();
        for (k, &(i, _)) in numeric.iter().enumerate() {
            args[i].1 = match kinds[k] {
                optimize::Kind::Int { .. } => format!("{}", p[k].round() as u64),
                _ => crate::format::num(p[k], 6),
            };
        }
        let inner: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}({})", inner.join(","))
    };
    let start: Vec<f64> = numeric.iter().map(|&(_, v)| v).collect();
    let hinted: Option<Vec<f64>> = hint.and_then(|h| split_spec(&h.spec)).map(|(_, hargs)| {
        numeric
            .iter()
            .zip(&start)
            .map(|(&(i, _), &v)| {
                hargs
                    .iter()
                    .find(|(k, _)| *k == args[i].0)
                    .and_then(|(_, hv)| hv.parse::<f64>().ok())
                    .unwrap_or(v)
            })
            .collect()
    });
    let proposal = optimize::Proposal {
        family: "declared",
        kinds: kinds.clone(),
        start,
        other_starts: hinted.into_iter().collect(),
        scale_first,
        build: Box::new(write),
        describe: Box::new(|_| String::new()),
    };
    let fitted = optimize::fit(&proposal, &samples.thinned(), &samples)?;
    fitted.is_exact().then(|| ScheduleFit {
        spec: fitted.spec,
        rel_err: fitted.err,
        description: String::new(),
        offset,
    })
}

/// `name(k=v,...)` -> the name and its top-level arguments, as written.
pub fn split_spec(spec: &str) -> Option<(String, Vec<(String, String)>)> {
    let open = spec.find('(')?;
    let body = spec[open + 1..].strip_suffix(')')?;
    let mut args = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let mut push = |piece: &str| {
        if let Some((k, v)) = piece.split_once('=') {
            args.push((k.trim().to_string(), v.trim().to_string()));
        }
    };
    for (i, c) in body.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&body[start..]);
    Some((spec[..open].trim().to_string(), args))
}
