//! Hugging Face candidates: constant, constant_with_warmup, linear, cosine,
//! polynomial and cosine_with_restarts, each with a linear warmup from 0.

use crate::format::num;

use super::search::{Candidate, Decay, Fitter, decay_end, refine_int, refine_real, warmup_length};

fn lr(x: f64) -> String {
    num(x, 6)
}

pub fn candidates(fx: &Fitter) -> Vec<Candidate> {
    let f = fx.features;
    let mut out = Vec::new();
    let median = {
        let mut y = fx.samples.y.clone();
        y.sort_by(f64::total_cmp);
        y[y.len() / 2]
    };
    if median > 0.0 {
        out.push(Candidate {
            spec: format!("constant(lr={})", lr(median)),
            description: format!("looks like a constant LR of {}", num(median, 4)),
        });
    }
    if f.peak <= 0.0 {
        return out;
    }
    let w0 = warmup_length(fx.samples, f);
    if w0 > 0.0 {
        let build = |w: u64| {
            format!(
                "constant_with_warmup(lr={},num_warmup_steps={w})",
                lr(f.peak)
            )
        };
        let (w, _) = refine_int(w0, 1, (f.t_last as u64 + 1) * 2, |w| fx.eval(&build(w)));
        out.push(Candidate {
            spec: build(w),
            description: format!(
                "looks like constant_with_warmup with {w} warmup steps, lr {}",
                num(f.peak, 4)
            ),
        });
    }
    if f.y_last < 0.9 * f.peak {
        out.extend(decaying(fx, w0));
    }
    out
}

/// Warmup (w) then a decay that ends at T: refine T, then w, then T again.
fn fit_warmup_and_total(
    fx: &Fitter,
    w0: f64,
    t0: f64,
    build: &dyn Fn(u64, u64) -> String,
) -> (u64, u64) {
    let f = fx.features;
    let hi = ((f.t_last + 1.0) * 100.0) as u64;
    let mut w = w0.round() as u64;
    let (mut total, _) = refine_int(t0, w + 1, hi, |t| fx.eval(&build(w, t)));
    if w > 0 {
        w = refine_int(w0, 1, total.saturating_sub(1).max(1), |w| {
            fx.eval(&build(w, total))
        })
        .0;
        total = refine_int(total as f64, w + 1, hi, |t| fx.eval(&build(w, t))).0;
    }
    (w, total)
}

fn warmup_phrase(w: u64) -> String {
    if w == 0 {
        "no warmup".into()
    } else {
        format!("{w} warmup steps")
    }
}

fn decaying(fx: &Fitter, w0: f64) -> Vec<Candidate> {
    let f = fx.features;
    let peak = f.peak;
    let start = w0.max(f.t_peak);
    let fallback = f.t_last + 1.0;
    let mut out = Vec::new();
    for (name, shape) in [("linear", Decay::Linear), ("cosine", Decay::Cosine)] {
        let t0 = decay_end(fx.samples, start, peak, 0.0, shape).unwrap_or(fallback);
        let spec = |lr_: f64, w: u64, t: u64| {
            format!(
                "{name}(lr={},num_warmup_steps={w},num_training_steps={t})",
                lr(lr_)
            )
        };
        let (w, total) = fit_warmup_and_total(fx, w0, t0, &|w, t| spec(peak, w, t));
        let scaled = fx.rescale(peak, |l| spec(l, w, total));
        out.push(Candidate {
            spec: spec(scaled, w, total),
            description: format!(
                "looks like {name} with {}, peak lr {}, {total} steps in all",
                warmup_phrase(w),
                num(scaled, 4)
            ),
        });
    }
    // polynomial: power and end LR beyond linear.
    let floor = f.y_min_after_peak;
    let lr_end = if floor > 0.0 && floor < 0.5 * peak {
        floor
    } else {
        1e-7_f64.min(peak * 0.5)
    };
    let poly = |w: u64, t: u64, p: f64| {
        format!(
            "polynomial(lr={},num_warmup_steps={w},num_training_steps={t},lr_end={},power={})",
            lr(peak),
            lr(lr_end),
            num(p, 4)
        )
    };
    // Power and length are entangled: seed each power of a coarse grid with
    // its closed-form length, keep the best, then refine both.
    let w = w0.round() as u64;
    let hi = ((f.t_last + 1.0) * 100.0) as u64;
    let (_, mut power, mut total) = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
        .into_iter()
        .map(|p| {
            let t = decay_end(fx.samples, start, peak, lr_end, Decay::Power(p)).unwrap_or(fallback);
            let t = (t.round() as u64).clamp(w + 1, hi);
            (fx.eval(&poly(w, t, p)), p, t)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((f64::INFINITY, 1.0, fallback as u64));
    for _ in 0..2 {
        total = refine_int(total as f64, w + 1, hi, |t| fx.eval(&poly(w, t, power))).0;
        power = refine_real(power, 0.1, 10.0, |p| fx.eval(&poly(w, total, p))).0;
    }
    out.push(Candidate {
        spec: poly(w, total, power),
        description: format!(
            "looks like polynomial decay (power {}) with {}, {total} steps in all",
            num(power, 3),
            warmup_phrase(w)
        ),
    });
    if let Some(&first_restart) = f.restarts.first() {
        out.extend(restarts(fx, w0, first_restart));
    }
    out
}

fn restarts(fx: &Fitter, w0: f64, first_restart: f64) -> Option<Candidate> {
    let f = fx.features;
    let cycle = first_restart - w0;
    if cycle < 1.0 {
        return None;
    }
    let spec = |w: u64, t: u64, n: u64| {
        format!(
            "cosine_with_restarts(lr={},num_warmup_steps={w},num_training_steps={t},num_cycles={n})",
            lr(f.peak)
        )
    };
    let seen = f.restarts.len() as u64 + 1;
    (seen..seen + 3)
        .map(|n| {
            let t0 = w0 + n as f64 * cycle;
            let (w, total) = fit_warmup_and_total(fx, w0, t0, &|w, t| spec(w, t, n));
            (fx.eval(&spec(w, total, n)), w, total, n)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, w, total, n)| Candidate {
            spec: spec(w, total, n),
            description: format!(
                "looks like cosine_with_restarts: {n} cycles over {total} steps, {}",
                warmup_phrase(w)
            ),
        })
}
