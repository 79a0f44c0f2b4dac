//! The candidate families: for each policy of the database a schedule can
//! follow, its parameters, a first guess from the series' shape, its spec
//! and its description. Ordered by complexity (how many parameters the
//! data must pin down), so the simplest exact fit is found first.

use crate::format::num;

use super::features::Features;
use super::optimize::{Kind, Proposal};
use super::samples::Samples;
use super::search::{Decay, decay_end, warmup_length};

fn lr6(x: f64) -> String {
    num(x, 6)
}

fn int(x: f64) -> u64 {
    x.max(0.0).round() as u64
}

fn warmup_phrase(w: u64) -> String {
    if w == 0 {
        "no warmup".into()
    } else {
        format!("{w} warmup steps")
    }
}

/// How rarely a family is used, for ties between twins (two specs that
/// give the same values under different logging offsets):
/// `cosine_warmup_with_min_lr` is `cosine_with_min_lr` one step later.
pub fn rarity(family: &str) -> u8 {
    match family {
        "cosine_warmup_with_min_lr" => 1,
        _ => 0,
    }
}

/// A proposal with its complexity (parameters the data must pin).
pub struct Family<'a> {
    pub complexity: usize,
    pub proposal: Proposal<'a>,
}

/// Every family that the series' shape allows, simplest first.
pub fn proposals<'a>(s: &'a Samples, f: &'a Features) -> Vec<Family<'a>> {
    let mut out: Vec<Family<'a>> = Vec::new();
    if f.peak <= 0.0 {
        return out;
    }
    let horizon = (f.t_last + 1.0) * 100.0;
    let lr_kind = Kind::Real {
        lo: f.peak * 1e-3,
        hi: f.peak * 1e3,
    };
    let w0 = warmup_length(s, f);
    let rises = f.rises_first();
    // Any decay below the peak: an early stretch of one already tells a
    // cosine from a line.
    let decays = f.y_last < (1.0 - 1e-4) * f.peak;
    let mut median = s.y.clone();
    median.sort_by(f64::total_cmp);
    let median = median[median.len() / 2];

    // 1 parameter.
    out.push(Family {
        complexity: 1,
        proposal: Proposal {
            family: "constant",
            kinds: vec![lr_kind],
            start: vec![median.max(f.peak * 1e-3)],
            other_starts: Vec::new(),
            scale_first: true,
            build: Box::new(|p| format!("constant(lr={})", lr6(p[0]))),
            describe: Box::new(|p| format!("looks like a constant LR of {}", num(p[0], 4))),
        },
    });
    // 2 parameters.
    if rises {
        out.push(Family {
            complexity: 2,
            proposal: Proposal {
                family: "constant_with_warmup",
                kinds: vec![
                    lr_kind,
                    Kind::Int {
                        lo: 1.0,
                        hi: f.t_last + 1.0,
                    },
                ],
                start: vec![f.peak, w0.max(1.0)],
                other_starts: Vec::new(),
                scale_first: true,
                build: Box::new(|p| {
                    format!(
                        "constant_with_warmup(lr={},num_warmup_steps={})",
                        lr6(p[0]),
                        int(p[1])
                    )
                }),
                describe: Box::new(|p| {
                    format!(
                        "looks like constant_with_warmup with {} warmup steps, lr {}",
                        int(p[1]),
                        num(p[0], 4)
                    )
                }),
            },
        });
    }
    if !rises && decays {
        out.extend(exponential(s, f));
    }
    // 3 parameters.
    if f.is_stepwise() {
        out.extend(step_decays(f));
    }
    if decays {
        for (name, shape) in [("linear", Decay::Linear), ("cosine", Decay::Cosine)] {
            let start = w0.max(f.t_peak);
            let t0 = decay_end(s, start, f.peak, 0.0, shape).unwrap_or(f.t_last + 1.0);
            out.push(Family {
                complexity: 3,
                proposal: Proposal {
                    family: name,
                    kinds: vec![
                        lr_kind,
                        Kind::Int {
                            lo: 0.0,
                            hi: f.t_last + 1.0,
                        },
                        Kind::Int {
                            lo: 1.0,
                            hi: horizon,
                        },
                    ],
                    start: vec![f.peak, if rises { w0 } else { 0.0 }, t0],
                    // A short stretch of a decay says little of its end.
                    other_starts: [1.5, 3.0, 10.0]
                        .iter()
                        .map(|k| vec![f.peak, if rises { w0 } else { 0.0 }, (f.t_last + 1.0) * k])
                        .collect(),
                    scale_first: true,
                    build: Box::new(move |p| {
                        format!(
                            "{name}(lr={},num_warmup_steps={},num_training_steps={})",
                            lr6(p[0]),
                            int(p[1]),
                            int(p[2]).max(int(p[1]) + 1)
                        )
                    }),
                    describe: Box::new(move |p| {
                        format!(
                            "looks like {name} with {}, peak lr {}, {} steps in all",
                            warmup_phrase(int(p[1])),
                            num(p[0], 4),
                            int(p[2]).max(int(p[1]) + 1)
                        )
                    }),
                },
            });
        }
        if !rises {
            out.extend(cosine_annealing(s, f));
        }
        out.push(inverse_sqrt(f, w0));
    }
    // 4 parameters and more.
    if !f.restarts.is_empty() {
        out.extend(restarts(f, w0));
    }
    if decays {
        out.extend(cosine_with_floor(s, f, w0));
        out.extend(warmup_stable_decay(s, f, w0));
        out.push(polynomial(s, f, w0));
        if rises {
            out.extend(one_cycle(s, f));
        }
    }
    if let Some(cycle) = f.cycle {
        out.extend(cyclic(f, cycle));
    }
    out.sort_by_key(|fam| fam.complexity);
    out
}

fn exponential(s: &Samples, f: &Features) -> Option<Family<'static>> {
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
    Some(Family {
        complexity: 2,
        proposal: Proposal {
            family: "ExponentialLR",
            kinds: vec![
                Kind::Real {
                    lo: f.peak * 1e-3,
                    hi: f.peak * 1e3,
                },
                Kind::Real {
                    lo: 1e-9,
                    hi: 0.999,
                },
            ],
            start: vec![lr0, (-slope.exp_m1()).clamp(1e-9, 0.999)],
            other_starts: Vec::new(),
            scale_first: true,
            build: Box::new(|p| {
                format!(
                    "ExponentialLR(lr={},gamma={})",
                    lr6(p[0]),
                    num(1.0 - p[1], 8)
                )
            }),
            describe: Box::new(|p| {
                format!(
                    "looks like ExponentialLR: lr {} decaying by {} per step",
                    num(p[0], 4),
                    num(1.0 - p[1], 6)
                )
            }),
        },
    })
}

fn step_decays(f: &Features) -> Vec<Family<'static>> {
    let mut ratios: Vec<f64> = f.drops.iter().map(|d| d.1).collect();
    ratios.sort_by(f64::total_cmp);
    let gamma0 = ratios[ratios.len() / 2];
    let first = f.drops[0].0;
    let lr_kind = Kind::Real {
        lo: f.peak * 1e-3,
        hi: f.peak * 1e3,
    };
    let milestones: Vec<u64> = f.drops.iter().map(|d| d.0 as u64).collect();
    vec![
        Family {
            complexity: 3,
            proposal: Proposal {
                family: "StepLR",
                kinds: vec![
                    lr_kind,
                    Kind::Int {
                        lo: 1.0,
                        hi: (f.t_last + 1.0) * 2.0,
                    },
                    Kind::Real { lo: 1e-6, hi: 1.0 },
                ],
                start: vec![f.y_first, first, gamma0],
                other_starts: Vec::new(),
                scale_first: true,
                build: Box::new(|p| {
                    format!(
                        "StepLR(lr={},step_size={},gamma={})",
                        lr6(p[0]),
                        int(p[1]),
                        lr6(p[2])
                    )
                }),
                describe: Box::new(|p| {
                    format!(
                        "looks like StepLR: lr {} times {} every {} steps",
                        num(p[0], 4),
                        num(p[2], 4),
                        int(p[1])
                    )
                }),
            },
        },
        {
            let n = milestones.len();
            let mut kinds = vec![lr_kind, Kind::Real { lo: 1e-6, hi: 1.0 }];
            let mut start = vec![f.y_first, gamma0];
            for (&(at, _), &before) in f.drops.iter().zip(&f.before_drops) {
                kinds.push(Kind::Int {
                    lo: before + 1.0,
                    hi: at,
                });
                start.push(at);
            }
            let list = move |p: &[f64]| -> Vec<String> {
                p[2..2 + n].iter().map(|&m| int(m).to_string()).collect()
            };
            Family {
                complexity: 2 + n,
                proposal: Proposal {
                    family: "MultiStepLR",
                    kinds,
                    start,
                    other_starts: Vec::new(),
                    scale_first: true,
                    build: Box::new(move |p| {
                        format!(
                            "MultiStepLR(lr={},milestones=[{}],gamma={})",
                            lr6(p[0]),
                            list(p).join(","),
                            lr6(p[1])
                        )
                    }),
                    describe: Box::new(move |p| {
                        format!(
                            "looks like MultiStepLR: lr {} times {} at steps {}",
                            num(p[0], 4),
                            num(p[1], 4),
                            list(p).join(", ")
                        )
                    }),
                },
            }
        },
    ]
}

fn cosine_annealing(s: &Samples, f: &Features) -> Vec<Family<'static>> {
    let top = f.y_first;
    let floor = if f.y_min > 0.0 && f.y_min < 0.5 * top {
        f.y_min / top
    } else {
        0.0
    };
    let t0 = decay_end(s, f.t_first, top, floor * top, Decay::Cosine).unwrap_or(f.t_last + 1.0);
    let horizon = (f.t_last + 1.0) * 100.0;
    vec![Family {
        complexity: 3,
        proposal: Proposal {
            family: "CosineAnnealingLR",
            kinds: vec![
                Kind::Real {
                    lo: f.peak * 1e-3,
                    hi: f.peak * 1e3,
                },
                Kind::Int {
                    lo: 1.0,
                    hi: horizon,
                },
                Kind::Linear { lo: 0.0, hi: 0.9 },
            ],
            start: vec![top, t0, floor],
            other_starts: Vec::new(),
            scale_first: true,
            build: Box::new(|p| {
                format!(
                    "CosineAnnealingLR(lr={},T_max={},eta_min={})",
                    lr6(p[0]),
                    int(p[1]),
                    lr6(p[0] * p[2])
                )
            }),
            describe: Box::new(|p| {
                format!(
                    "looks like CosineAnnealingLR from {} to {} over {} steps",
                    num(p[0], 4),
                    num(p[0] * p[2], 4),
                    int(p[1])
                )
            }),
        },
    }]
}

fn inverse_sqrt(f: &Features, w0: f64) -> Family<'static> {
    let w = if f.rises_first() { w0.max(1.0) } else { 0.0 };
    Family {
        complexity: 3,
        proposal: Proposal {
            family: "inverse_sqrt",
            kinds: vec![
                Kind::Real {
                    lo: f.peak * 1e-3,
                    hi: f.peak * 1e3,
                },
                Kind::Int {
                    lo: 0.0,
                    hi: f.t_last + 1.0,
                },
                Kind::Real { lo: 1.0, hi: 1e9 },
            ],
            start: vec![f.peak, w, if w > 0.0 { w } else { 10_000.0 }],
            other_starts: Vec::new(),
            scale_first: true,
            build: Box::new(|p| {
                format!(
                    "inverse_sqrt(lr={},num_warmup_steps={},timescale={})",
                    lr6(p[0]),
                    int(p[1]),
                    num(p[2], 6)
                )
            }),
            describe: Box::new(|p| {
                format!(
                    "looks like inverse_sqrt with {}, lr {}, timescale {}",
                    warmup_phrase(int(p[1])),
                    num(p[0], 4),
                    num(p[2], 4)
                )
            }),
        },
    }
}

/// Cosine to a floor: HF's cosine_with_min_lr (warmup t/w) and
/// cosine_warmup_with_min_lr (warmup (t+1)/w, the nanoGPT schedule).
fn cosine_with_floor<'a>(s: &'a Samples, f: &'a Features, w0: f64) -> Vec<Family<'a>> {
    let rate0 = (f.y_min_after_peak / f.peak).clamp(0.0, 0.9);
    let start = w0.max(f.t_peak);
    let t0 = decay_end(s, start, f.peak, rate0 * f.peak, Decay::Cosine).unwrap_or(f.t_last + 1.0);
    let horizon = (f.t_last + 1.0) * 100.0;
    ["cosine_with_min_lr", "cosine_warmup_with_min_lr"]
        .into_iter()
        .map(|name| Family {
            complexity: 4,
            proposal: Proposal {
                family: name,
                kinds: vec![
                    Kind::Real {
                        lo: f.peak * 1e-3,
                        hi: f.peak * 1e3,
                    },
                    Kind::Int {
                        lo: 0.0,
                        hi: f.t_last + 1.0,
                    },
                    Kind::Int {
                        lo: 1.0,
                        hi: horizon,
                    },
                    Kind::Linear { lo: 0.0, hi: 0.9 },
                ],
                start: vec![f.peak, if f.rises_first() { w0 } else { 0.0 }, t0, rate0],
                other_starts: Vec::new(),
                scale_first: true,
                build: Box::new(move |p| {
                    format!(
                        "{name}(lr={},num_warmup_steps={},num_training_steps={},min_lr_rate={})",
                        lr6(p[0]),
                        int(p[1]),
                        int(p[2]).max(int(p[1]) + 1),
                        num(p[3], 6)
                    )
                }),
                describe: Box::new(move |p| {
                    format!(
                        "looks like {name} with {}, peak lr {}, down to {} ({}x) at step {}",
                        warmup_phrase(int(p[1])),
                        num(p[0], 4),
                        num(p[0] * p[3], 4),
                        num(p[3], 4),
                        int(p[2]).max(int(p[1]) + 1)
                    )
                }),
            },
        })
        .collect()
}

fn restarts(f: &Features, w0: f64) -> Vec<Family<'static>> {
    let first_restart = f.restarts[0];
    let mut out = Vec::new();
    let seen = f.restarts.len() as f64 + 1.0;
    let cycle = first_restart - if f.rises_first() { w0 } else { 0.0 };
    if cycle >= 1.0 {
        let w = if f.rises_first() { w0 } else { 0.0 };
        out.push(Family {
            complexity: 4,
            proposal: Proposal {
                family: "cosine_with_restarts",
                kinds: vec![
                    Kind::Real {
                        lo: f.peak * 1e-3,
                        hi: f.peak * 1e3,
                    },
                    Kind::Int { lo: 0.0, hi: f.t_last + 1.0 },
                    Kind::Int {
                        lo: 1.0,
                        hi: (f.t_last + 1.0) * 100.0,
                    },
                    Kind::Int { lo: 1.0, hi: 1000.0 },
                ],
                start: vec![f.peak, w, w + seen * cycle, seen],
                other_starts: Vec::new(),
            scale_first: true,
                build: Box::new(|p| {
                    format!(
                        "cosine_with_restarts(lr={},num_warmup_steps={},num_training_steps={},num_cycles={})",
                        lr6(p[0]),
                        int(p[1]),
                        int(p[2]).max(int(p[1]) + 1),
                        int(p[3])
                    )
                }),
                describe: Box::new(|p| {
                    format!(
                        "looks like cosine_with_restarts: {} cycles over {} steps, {}",
                        int(p[3]),
                        int(p[2]),
                        warmup_phrase(int(p[1]))
                    )
                }),
            },
        });
    }
    // SGDR: restarts at T_0, T_0 (1 + T_mult), ...
    let t0 = first_restart.max(1.0);
    let t_mult = match f.restarts.get(1) {
        Some(&second) if second - first_restart > 1.5 * first_restart => {
            ((second - first_restart) / first_restart).round()
        }
        _ => 1.0,
    };
    let floor = (f.y_min / f.peak).clamp(0.0, 0.9);
    out.push(Family {
        complexity: 4,
        proposal: Proposal {
            family: "CosineAnnealingWarmRestarts",
            kinds: vec![
                Kind::Real {
                    lo: f.peak * 1e-3,
                    hi: f.peak * 1e3,
                },
                Kind::Int {
                    lo: 1.0,
                    hi: (f.t_last + 1.0) * 2.0,
                },
                Kind::Int { lo: 1.0, hi: 10.0 },
                Kind::Linear { lo: 0.0, hi: 0.9 },
            ],
            start: vec![f.peak, t0, t_mult, floor],
            other_starts: Vec::new(),
            scale_first: true,
            build: Box::new(|p| {
                format!(
                    "CosineAnnealingWarmRestarts(lr={},T_0={},T_mult={},eta_min={})",
                    lr6(p[0]),
                    int(p[1]),
                    int(p[2]),
                    lr6(p[0] * p[3])
                )
            }),
            describe: Box::new(|p| {
                format!(
                    "looks like CosineAnnealingWarmRestarts: restarts every {} steps (x{}), from {} down to {}",
                    int(p[1]),
                    int(p[2]),
                    num(p[0], 4),
                    num(p[0] * p[3], 4)
                )
            }),
        },
    });
    out
}

/// Warmup, a stable stretch at the peak, a decay (WSD).
fn warmup_stable_decay<'a>(s: &'a Samples, f: &'a Features, w0: f64) -> Vec<Family<'a>> {
    // The stable stretch: samples at the peak after the warmup.
    let at_peak = |y: f64| (y - f.peak).abs() <= 1e-6 * f.peak;
    let stable = s.y.iter().filter(|&&y| at_peak(y)).count();
    if stable < 3 {
        return Vec::new();
    }
    let Some(decay_start) =
        s.t.iter()
            .zip(&s.y)
            .filter(|&(&t, _)| t > f.t_peak)
            .find(|&(_, &y)| !at_peak(y))
            .map(|(&t, _)| t)
    else {
        return Vec::new();
    };
    let floor = (f.y_min_after_peak / f.peak).clamp(0.0, 0.9);
    let end = decay_end(s, decay_start, f.peak, floor * f.peak, Decay::Cosine)
        .unwrap_or(f.t_last + 1.0)
        .max(decay_start + 1.0);
    let w = if f.rises_first() { w0 } else { 0.0 };
    let horizon = (f.t_last + 1.0) * 100.0;
    ["cosine", "linear", "1-sqrt"]
        .into_iter()
        .map(|decay_type| Family {
            complexity: 5,
            proposal: Proposal {
                family: "warmup_stable_decay",
                kinds: vec![
                    Kind::Real {
                        lo: f.peak * 1e-3,
                        hi: f.peak * 1e3,
                    },
                    Kind::Int { lo: 0.0, hi: f.t_last + 1.0 },
                    Kind::Int { lo: 2.0, hi: horizon },
                    Kind::Int { lo: 1.0, hi: horizon },
                    Kind::Linear { lo: 0.0, hi: 0.9 },
                ],
                start: vec![f.peak, w, end, decay_start - 1.0, floor],
                other_starts: Vec::new(),
            scale_first: true,
                build: Box::new(move |p| {
                    // The decay's start and the end are what the log shows.
                    let (w, total) = (int(p[1]), int(p[2]));
                    let decay = total.saturating_sub(int(p[3]).max(w)).max(1);
                    let mut spec = format!(
                        "warmup_stable_decay(lr={},num_warmup_steps={w},num_training_steps={total},num_decay_steps={decay}",
                        lr6(p[0])
                    );
                    if decay_type != "cosine" {
                        spec += &format!(",decay_type={decay_type}");
                    }
                    if p[4] > 0.0 {
                        spec += &format!(",min_lr_ratio={}", num(p[4], 6));
                    }
                    spec + ")"
                }),
                describe: Box::new(move |p| {
                    let (w, total) = (int(p[1]), int(p[2]));
                    let decay = total.saturating_sub(int(p[3]).max(w)).max(1);
                    format!(
                        "looks like warmup_stable_decay: {}, stable at {}, a {decay_type} decay over the last {decay} of {} steps",
                        warmup_phrase(w),
                        num(p[0], 4),
                        total.max(w + decay)
                    )
                }),
            },
        })
        .collect()
}

fn polynomial<'a>(s: &'a Samples, f: &'a Features, w0: f64) -> Family<'a> {
    let floor = f.y_min_after_peak;
    let end_rate = if floor > 0.0 && floor < 0.5 * f.peak {
        floor / f.peak
    } else {
        1e-7_f64.min(f.peak * 0.5) / f.peak
    };
    let start = w0.max(f.t_peak);
    let t0 =
        decay_end(s, start, f.peak, end_rate * f.peak, Decay::Power(1.0)).unwrap_or(f.t_last + 1.0);
    let w = if f.rises_first() { w0 } else { 0.0 };
    Family {
        complexity: 5,
        proposal: Proposal {
            family: "polynomial",
            kinds: vec![
                Kind::Real {
                    lo: f.peak * 1e-3,
                    hi: f.peak * 1e3,
                },
                Kind::Int {
                    lo: 0.0,
                    hi: f.t_last + 1.0,
                },
                Kind::Int {
                    lo: 1.0,
                    hi: (f.t_last + 1.0) * 100.0,
                },
                Kind::Real { lo: 1e-9, hi: 0.9 },
                Kind::Real { lo: 0.1, hi: 10.0 },
            ],
            start: vec![f.peak, w, t0, end_rate.max(1e-9), 1.0],
            other_starts: Vec::new(),
            scale_first: true,
            build: Box::new(|p| {
                format!(
                    "polynomial(lr={},num_warmup_steps={},num_training_steps={},lr_end={},power={})",
                    lr6(p[0]),
                    int(p[1]),
                    int(p[2]).max(int(p[1]) + 1),
                    lr6(p[0] * p[3]),
                    num(p[4], 4)
                )
            }),
            describe: Box::new(|p| {
                format!(
                    "looks like polynomial decay (power {}) with {}, {} steps in all",
                    num(p[4], 3),
                    warmup_phrase(int(p[1])),
                    int(p[2])
                )
            }),
        },
    }
}

fn one_cycle<'a>(s: &'a Samples, f: &'a Features) -> Vec<Family<'a>> {
    let ended = f.y_last < f.peak * 1e-3;
    let total0 = if ended {
        f.t_last + 1.0
    } else {
        decay_end(s, f.t_peak, f.peak, 0.0, Decay::Cosine).map_or(f.t_last + 1.0, |end| end + 1.0)
    };
    let div0 = if f.y_first > 0.0 {
        (f.peak / f.y_first).clamp(1.0, 1e4)
    } else {
        25.0
    };
    let final0 = if ended && f.y_last > 0.0 {
        (f.peak / div0 / f.y_last).clamp(1.0, 1e8)
    } else {
        1e4
    };
    let pct0 = ((f.t_peak + 1.0) / total0).clamp(0.01, 0.99);
    let mut out = Vec::new();
    for three_phase in [false, true] {
        for linear in [false, true] {
            let pct_start = pct0;
            out.push(Family {
                complexity: 5,
                proposal: Proposal {
                    family: "OneCycleLR",
                    kinds: vec![
                        Kind::Real {
                            lo: f.peak * 1e-3,
                            hi: f.peak * 1e3,
                        },
                        Kind::Int {
                            lo: f.t_last.max(1.0),
                            hi: (f.t_last + 1.0) * 100.0,
                        },
                        Kind::Real {
                            lo: 1.0,
                            hi: (f.t_last + 1.0) * 100.0,
                        },
                        Kind::Real { lo: 1.0, hi: 1e4 },
                        Kind::Real { lo: 1.0, hi: 1e8 },
                    ],
                    // The peak's position, not pct_start: it is what the
                    // log shows, whatever the total.
                    start: vec![
                        f.peak,
                        total0.max(f.t_last),
                        pct_start * total0.max(f.t_last),
                        div0,
                        final0,
                    ],
                    // PyTorch's defaults: a sparse log's ends mislead.
                    other_starts: vec![vec![
                        f.peak,
                        total0.max(f.t_last),
                        pct_start * total0.max(f.t_last),
                        25.0,
                        1e4,
                    ]],
                    scale_first: true,
                    build: Box::new(move |p| one_cycle_spec(p, linear, three_phase)),
                    describe: Box::new(move |p| {
                        format!("looks like {}", one_cycle_spec(p, linear, three_phase))
                    }),
                },
            });
        }
    }
    out
}

fn one_cycle_spec(p: &[f64], linear: bool, three_phase: bool) -> String {
    let mut s = format!("OneCycleLR(max_lr={},total_steps={}", lr6(p[0]), int(p[1]));
    let pct = num((p[2] / int(p[1]).max(1) as f64).clamp(0.0, 1.0), 6);
    if pct != "0.3" {
        s += &format!(",pct_start={pct}");
    }
    if linear {
        s += ",anneal_strategy=linear";
    }
    let div = num(p[3], 4);
    if div != "25" {
        s += &format!(",div_factor={div}");
    }
    let final_div = num(p[4], 4);
    if final_div != "10000" {
        s += &format!(",final_div_factor={final_div}");
    }
    if three_phase {
        s += ",three_phase=true";
    }
    s + ")"
}

fn cyclic(f: &Features, c: super::features::Cycle) -> Vec<Family<'static>> {
    let base = c.base;
    if base < 0.0 || c.y_max1 <= base {
        return Vec::new();
    }
    let up0 = c.t_max1.max(1.0);
    let down0 = (c.t_min1 - c.t_max1).max(1.0);
    let hi = (f.t_last + 1.0) * 4.0;
    let mut modes: Vec<(&'static str, f64)> = vec![("triangular", 1.0), ("triangular2", 1.0)];
    if let (Some(t2), Some(y2)) = (c.t_max2, c.y_max2)
        && y2 > base
        && t2 > c.t_max1
    {
        let gamma = ((y2 - base) / (c.y_max1 - base)).powf(1.0 / (t2 - c.t_max1));
        if gamma.is_finite() && gamma > 0.0 && gamma < 1.0 {
            modes.push(("exp_range", gamma));
        }
    }
    modes
        .into_iter()
        .map(|(mode, gamma)| {
            let exp = mode == "exp_range";
            let max0 = if exp {
                base + (c.y_max1 - base) / gamma.powf(c.t_max1)
            } else {
                c.y_max1
            };
            let mut kinds = vec![
                Kind::Real {
                    lo: f.peak * 1e-3,
                    hi: f.peak * 1e3,
                },
                Kind::Linear { lo: 0.0, hi: 0.99 },
                Kind::Int { lo: 1.0, hi },
                Kind::Int { lo: 1.0, hi },
            ];
            let mut start = vec![max0, (base / max0).clamp(0.0, 0.99), up0, down0];
            if exp {
                kinds.push(Kind::Real { lo: 1e-9, hi: 0.5 });
                start.push((1.0 - gamma).max(1e-9));
            }
            Family {
                complexity: if exp { 5 } else { 4 },
                proposal: Proposal {
                    family: "CyclicLR",
                    kinds,
                    start,
                    other_starts: Vec::new(),
                    scale_first: true,
                    build: Box::new(move |p| {
                        let (up, down) = (int(p[2]), int(p[3]));
                        let mut s = format!(
                            "CyclicLR(base_lr={},max_lr={},step_size_up={up}",
                            lr6(p[0] * p[1]),
                            lr6(p[0])
                        );
                        if down != up {
                            s += &format!(",step_size_down={down}");
                        }
                        s += &format!(",mode={mode}");
                        if exp {
                            s += &format!(",gamma={}", num(1.0 - p[4], 8));
                        }
                        s + ")"
                    }),
                    describe: Box::new(move |p| {
                        let (up, down) = (int(p[2]), int(p[3]));
                        format!(
                            "looks like CyclicLR {mode} between {} and {}, {up} steps up{}",
                            num(p[0] * p[1], 4),
                            num(p[0], 4),
                            if down == up {
                                String::new()
                            } else {
                                format!(", {down} down")
                            }
                        )
                    }),
                },
            }
        })
        .collect()
}
