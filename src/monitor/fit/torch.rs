//! PyTorch candidates: StepLR, MultiStepLR, ExponentialLR,
//! CosineAnnealingLR, OneCycleLR and CyclicLR.

use crate::format::num;

use super::features::Cycle;
use super::search::{Candidate, Decay, Fitter, decay_end, refine_int, refine_real};

fn n6(x: f64) -> String {
    num(x, 6)
}

pub fn candidates(fx: &Fitter) -> Vec<Candidate> {
    let f = fx.features;
    let mut out = Vec::new();
    if f.peak <= 0.0 {
        return out;
    }
    if f.is_stepwise() {
        out.extend(step_decays(fx));
    }
    if !f.rises_first() && f.y_last < 0.9 * f.y_first {
        out.extend(exponential(fx));
        out.extend(cosine_annealing(fx));
    }
    if f.rises_first() && f.y_last < 0.5 * f.peak && f.cycle.is_none_or(|c| c.t_max2.is_none()) {
        out.push(one_cycle(fx));
    }
    if let Some(cycle) = f.cycle {
        out.extend(cyclic(fx, cycle));
    }
    out
}

fn step_decays(fx: &Fitter) -> Vec<Candidate> {
    let f = fx.features;
    let mut ratios: Vec<f64> = f.drops.iter().map(|d| d.1).collect();
    ratios.sort_by(f64::total_cmp);
    let gamma0 = ratios[ratios.len() / 2];
    let lr = f.y_first;
    let first = f.drops[0].0;
    let step = |size: u64, gamma: f64| {
        format!("StepLR(lr={},step_size={size},gamma={})", n6(lr), n6(gamma))
    };
    let (size, _) = refine_int(first, 1, (f.t_last as u64 + 1) * 2, |s| {
        fx.eval(&step(s, gamma0))
    });
    let (gamma, _) = refine_real(gamma0, 1e-6, 1.0, |g| fx.eval(&step(size, g)));
    let milestones: Vec<String> = f.drops.iter().map(|d| format!("{}", d.0 as u64)).collect();
    vec![
        Candidate {
            spec: step(size, gamma),
            description: format!(
                "looks like StepLR: lr {} times {} every {size} steps",
                num(lr, 4),
                num(gamma, 4)
            ),
        },
        Candidate {
            spec: format!(
                "MultiStepLR(lr={},milestones=[{}],gamma={})",
                n6(lr),
                milestones.join(","),
                n6(gamma0)
            ),
            description: format!(
                "looks like MultiStepLR: lr {} times {} at steps {}",
                num(lr, 4),
                num(gamma0, 4),
                milestones.join(", ")
            ),
        },
    ]
}

fn exponential(fx: &Fitter) -> Option<Candidate> {
    let s = fx.samples;
    let pts: Vec<(f64, f64)> =
        s.t.iter()
            .zip(&s.y)
            .filter(|&(_, &y)| y > 0.0)
            .map(|(&t, &y)| (t, y.ln()))
            .collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if sxx <= 0.0 || sxy >= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let lr0 = (my - slope * mt).exp();
    // Refine 1 - gamma on a log scale: gammas live just below 1.
    let spec =
        |lr: f64, decay: f64| format!("ExponentialLR(lr={},gamma={})", n6(lr), num(1.0 - decay, 8));
    let (decay, _) = refine_real(-slope.exp_m1(), 1e-9, 0.999, |d| fx.eval(&spec(lr0, d)));
    let lr = fx.rescale(lr0, |l| spec(l, decay));
    Some(Candidate {
        spec: spec(lr, decay),
        description: format!(
            "looks like ExponentialLR: lr {} decaying by {} per step",
            num(lr, 4),
            num(1.0 - decay, 6)
        ),
    })
}

fn cosine_annealing(fx: &Fitter) -> Vec<Candidate> {
    let f = fx.features;
    let top = f.y_first;
    let mut floors = vec![0.0];
    if f.y_min > 0.0 && f.y_min < 0.5 * top {
        floors.push(f.y_min);
    }
    floors
        .into_iter()
        .map(|eta| {
            let t0 =
                decay_end(fx.samples, f.t_first, top, eta, Decay::Cosine).unwrap_or(f.t_last + 1.0);
            let spec = |lr: f64, t: u64| {
                format!(
                    "CosineAnnealingLR(lr={},T_max={t},eta_min={})",
                    n6(lr),
                    n6(eta)
                )
            };
            let (t_max, _) = refine_int(t0, 1, ((f.t_last + 1.0) * 100.0) as u64, |t| {
                fx.eval(&spec(top, t))
            });
            Candidate {
                spec: spec(top, t_max),
                description: format!(
                    "looks like CosineAnnealingLR from {} to {} over {t_max} steps",
                    num(top, 4),
                    num(eta, 4)
                ),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct OneCycle {
    max_lr: f64,
    total: u64,
    pct: f64,
    div: f64,
    final_div: f64,
    cosine: bool,
}

impl OneCycle {
    fn spec(&self) -> String {
        let mut s = format!(
            "OneCycleLR(max_lr={},total_steps={}",
            n6(self.max_lr),
            self.total
        );
        let pct = num(self.pct, 3);
        if pct != "0.3" {
            s += &format!(",pct_start={pct}");
        }
        if !self.cosine {
            s += ",anneal_strategy=linear";
        }
        let div = num(self.div, 3);
        if div != "25" {
            s += &format!(",div_factor={div}");
        }
        let final_div = num(self.final_div, 3);
        if final_div != "10000" {
            s += &format!(",final_div_factor={final_div}");
        }
        s + ")"
    }
}

fn one_cycle(fx: &Fitter) -> Candidate {
    let f = fx.features;
    let ended = f.y_last < f.peak * 1e-3;
    let total0 = if ended {
        f.t_last + 1.0
    } else {
        decay_end(fx.samples, f.t_peak, f.peak, 0.0, Decay::Cosine)
            .map_or(f.t_last + 1.0, |end| end + 1.0)
    };
    let div0 = if f.t_first <= 0.02 * total0 && f.y_first > 0.0 {
        f.peak / f.y_first
    } else {
        25.0
    };
    let final0 = if ended && f.y_last > 0.0 {
        f.peak / div0 / f.y_last
    } else {
        1e4
    };
    let init = OneCycle {
        max_lr: f.peak,
        total: total0.round().max(f.t_last + 1.0) as u64,
        pct: ((f.t_peak + 1.0) / total0).clamp(0.01, 0.99),
        div: div0.max(1.0),
        final_div: final0.max(1.0),
        cosine: true,
    };
    let (mut best, mut best_err) = (init, f64::INFINITY);
    for cosine in [true, false] {
        let mut c = OneCycle { cosine, ..init };
        let lo = f.t_last as u64 + 1;
        for _ in 0..2 {
            c.total = refine_int(c.total as f64, lo, lo * 100, |t| {
                fx.eval(&OneCycle { total: t, ..c }.spec())
            })
            .0;
            c.pct = refine_real(c.pct, 0.01, 0.99, |p| {
                fx.eval(&OneCycle { pct: p, ..c }.spec())
            })
            .0;
            c.div = refine_real(c.div, 1.0, 1e4, |d| {
                fx.eval(&OneCycle { div: d, ..c }.spec())
            })
            .0;
            c.final_div = refine_real(c.final_div, 1.0, 1e8, |d| {
                fx.eval(&OneCycle { final_div: d, ..c }.spec())
            })
            .0;
        }
        c.max_lr = fx.rescale(c.max_lr, |m| OneCycle { max_lr: m, ..c }.spec());
        let err = fx.eval(&c.spec());
        if err < best_err {
            best_err = err;
            best = c;
        }
    }
    // Parameters that fit as well at PyTorch's defaults are left out.
    let snaps: [fn(OneCycle) -> OneCycle; 3] = [
        |c| OneCycle { pct: 0.3, ..c },
        |c| OneCycle { div: 25.0, ..c },
        |c| OneCycle {
            final_div: 1e4,
            ..c
        },
    ];
    for snap in snaps {
        let candidate = snap(best);
        if fx.eval(&candidate.spec()) <= best_err * 1.05 + 1e-6 {
            best = candidate;
        }
    }
    let spec = best.spec();
    Candidate {
        description: format!("looks like {spec}"),
        spec,
    }
}

fn cyclic(fx: &Fitter, c: Cycle) -> Vec<Candidate> {
    let f = fx.features;
    let base = c.base;
    if base < 0.0 || c.y_max1 <= base {
        return Vec::new();
    }
    let up0 = c.t_max1.max(1.0);
    let down0 = (c.t_min1 - c.t_max1).max(1.0);
    let symmetric = (down0 - up0).abs() <= 0.02 * up0 + 1.0;
    let hi = ((f.t_last + 1.0) * 4.0) as u64;
    let mut modes: Vec<(String, f64)> =
        vec![("triangular".into(), 1.0), ("triangular2".into(), 1.0)];
    if let (Some(t2), Some(y2)) = (c.t_max2, c.y_max2)
        && y2 > base
        && t2 > c.t_max1
    {
        let gamma = ((y2 - base) / (c.y_max1 - base)).powf(1.0 / (t2 - c.t_max1));
        if gamma.is_finite() && gamma > 0.0 && gamma < 1.0 {
            modes.push(("exp_range".into(), gamma));
        }
    }
    modes
        .into_iter()
        .map(|(mode, gamma)| {
            let exp = mode == "exp_range";
            let spec = |max: f64, up: u64, down: u64| {
                let mut s = format!(
                    "CyclicLR(base_lr={},max_lr={},step_size_up={up}",
                    n6(base),
                    n6(max)
                );
                if !symmetric {
                    s += &format!(",step_size_down={down}");
                }
                s += &format!(",mode={mode}");
                if exp {
                    s += &format!(",gamma={}", num(gamma, 8));
                }
                s + ")"
            };
            // exp_range has already decayed by gamma^t at the first peak.
            let max0 = if exp {
                base + (c.y_max1 - base) / gamma.powf(c.t_max1)
            } else {
                c.y_max1
            };
            let (up, _) = refine_int(up0, 1, hi, |u| fx.eval(&spec(max0, u, down0 as u64)));
            let down = if symmetric {
                up
            } else {
                refine_int(down0, 1, hi, |d| fx.eval(&spec(max0, up, d))).0
            };
            let (max, _) = refine_real(max0, base * 1.0001 + 1e-300, max0 * 4.0, |m| {
                fx.eval(&spec(m, up, down))
            });
            Candidate {
                spec: spec(max, up, down),
                description: format!(
                    "looks like CyclicLR {mode} between {} and {}, {up} steps up{}",
                    num(base, 4),
                    num(max, 4),
                    if symmetric {
                        String::new()
                    } else {
                        format!(", {down} down")
                    }
                ),
            }
        })
        .collect()
}
