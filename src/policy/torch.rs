//! `torch.optim.lr_scheduler` schedulers, evaluated in closed form. The value
//! at t is what the optimizer holds for update t (read before the t-th
//! `scheduler.step()`), with the constructor's parameter names plus `lr`,
//! the optimizer's initial learning rate.

use std::f64::consts::PI;

use super::Node;
use super::catalog::{Family, PolicyInfo};
use super::error::SpecError;
use super::params::{Args, Kind, Param, dflt, opt, req};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CyclicMode {
    Triangular,
    Triangular2,
    ExpRange,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Torch {
    Step {
        lr: f64,
        step_size: u64,
        gamma: f64,
    },
    MultiStep {
        lr: f64,
        milestones: Vec<u64>,
        gamma: f64,
    },
    Constant {
        lr: f64,
        factor: f64,
        total_iters: u64,
    },
    Linear {
        lr: f64,
        start_factor: f64,
        end_factor: f64,
        total_iters: u64,
    },
    Exponential {
        lr: f64,
        gamma: f64,
    },
    Polynomial {
        lr: f64,
        total_iters: u64,
        power: f64,
    },
    CosineAnnealing {
        lr: f64,
        t_max: f64,
        eta_min: f64,
    },
    CosineWarmRestarts {
        lr: f64,
        t_0: u64,
        t_mult: u64,
        eta_min: f64,
    },
    Cyclic {
        base_lr: f64,
        max_lr: f64,
        total_size: f64,
        step_ratio: f64,
        mode: CyclicMode,
        gamma: f64,
        scale_by_cycle: bool,
    },
    OneCycle {
        initial_lr: f64,
        max_lr: f64,
        min_lr: f64,
        total_steps: u64,
        /// (end_step, start_lr, end_lr) per phase, as PyTorch builds them.
        phases: Vec<(f64, f64, f64)>,
        cosine: bool,
    },
}

impl Torch {
    pub fn lr(&self, t: u64) -> f64 {
        let epoch = t as f64;
        match self {
            Torch::Step {
                lr,
                step_size,
                gamma,
            } => lr * gamma.powf((t / step_size) as f64),
            Torch::MultiStep {
                lr,
                milestones,
                gamma,
            } => {
                // bisect_right over sorted milestones (duplicates count twice).
                let passed = milestones.partition_point(|&m| m <= t);
                lr * gamma.powf(passed as f64)
            }
            Torch::Constant {
                lr,
                factor,
                total_iters,
            } => {
                if t >= *total_iters {
                    *lr
                } else {
                    lr * factor
                }
            }
            Torch::Linear {
                lr,
                start_factor,
                end_factor,
                total_iters,
            } => {
                let progress = if *total_iters == 0 {
                    1.0
                } else {
                    t.min(*total_iters) as f64 / *total_iters as f64
                };
                lr * (start_factor + (end_factor - start_factor) * progress)
            }
            Torch::Exponential { lr, gamma } => lr * gamma.powf(epoch),
            Torch::Polynomial {
                lr,
                total_iters,
                power,
            } => {
                if *total_iters == 0 {
                    return *lr;
                }
                let decay = 1.0 - t.min(*total_iters) as f64 / *total_iters as f64;
                lr * decay.powf(*power)
            }
            Torch::CosineAnnealing { lr, t_max, eta_min } => {
                eta_min + (lr - eta_min) * (1.0 + (PI * epoch / t_max).cos()) / 2.0
            }
            Torch::CosineWarmRestarts {
                lr,
                t_0,
                t_mult,
                eta_min,
            } => {
                let (t_cur, t_i) = warm_restart_position(t, *t_0, *t_mult);
                eta_min + (lr - eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
            }
            Torch::Cyclic {
                base_lr,
                max_lr,
                total_size,
                step_ratio,
                mode,
                gamma,
                scale_by_cycle,
            } => {
                let cycle = (1.0 + epoch / total_size).floor();
                let x = 1.0 + epoch / total_size - cycle;
                let scale_factor = if x <= *step_ratio {
                    x / step_ratio
                } else {
                    (x - 1.0) / (step_ratio - 1.0)
                };
                let base_height = (max_lr - base_lr) * scale_factor;
                let arg = if *scale_by_cycle { cycle } else { epoch };
                let scale = match mode {
                    CyclicMode::Triangular => 1.0,
                    CyclicMode::Triangular2 => 1.0 / 2f64.powf(arg - 1.0),
                    CyclicMode::ExpRange => gamma.powf(arg),
                };
                base_lr + base_height * scale
            }
            Torch::OneCycle {
                min_lr,
                total_steps,
                phases,
                cosine,
                ..
            } => {
                // PyTorch raises past total_steps; hold the final LR instead.
                if t > *total_steps {
                    return *min_lr;
                }
                let mut start_step = 0.0;
                for (i, &(end_step, start_lr, end_lr)) in phases.iter().enumerate() {
                    if epoch <= end_step || i == phases.len() - 1 {
                        let span = end_step - start_step;
                        let pct = if span == 0.0 {
                            1.0
                        } else {
                            (epoch - start_step) / span
                        };
                        return if *cosine {
                            let cos_out = (PI * pct).cos() + 1.0;
                            end_lr + (start_lr - end_lr) / 2.0 * cos_out
                        } else {
                            (end_lr - start_lr) * pct + start_lr
                        };
                    }
                    start_step = end_step;
                }
                *min_lr
            }
        }
    }

    pub fn horizon(&self) -> Option<u64> {
        match self {
            Torch::Step { step_size, .. } => Some(step_size.saturating_mul(5)),
            Torch::MultiStep { milestones, .. } => {
                milestones.last().map(|&m| m.saturating_add(m / 4 + 1))
            }
            Torch::Constant { total_iters, .. }
            | Torch::Linear { total_iters, .. }
            | Torch::Polynomial { total_iters, .. } => Some(total_iters.saturating_mul(2).max(10)),
            Torch::Exponential { .. } => None,
            Torch::CosineAnnealing { t_max, .. } => Some(t_max.ceil() as u64),
            Torch::CosineWarmRestarts { t_0, t_mult, .. } => {
                // Three cycles; saturating, as T_0 and T_mult may be huge.
                let cycle = |i| t_0.saturating_mul(t_mult.saturating_pow(i));
                Some((0..3).map(cycle).fold(0u64, u64::saturating_add).max(1))
            }
            Torch::Cyclic { total_size, .. } => Some((total_size * 4.0).ceil() as u64),
            Torch::OneCycle { total_steps, .. } => Some(*total_steps),
        }
    }
}

/// Position inside the current cycle of SGDR: (T_cur, T_i).
fn warm_restart_position(t: u64, t_0: u64, t_mult: u64) -> (u64, u64) {
    if t_mult == 1 {
        return (t % t_0, t_0);
    }
    let (mut start, mut len) = (0u64, t_0);
    loop {
        match start.checked_add(len) {
            Some(end) if t >= end => {
                start = end;
                len = len.saturating_mul(t_mult);
            }
            _ => return (t - start, len),
        }
    }
}

const LR: Param = req("lr", Kind::Lr, "the optimizer's initial learning rate");
const LR_UNUSED: Param = opt(
    "lr",
    Kind::Lr,
    "the optimizer's lr (overridden by this scheduler, accepted for completeness)",
);

const P_STEP: &[Param] = &[
    LR,
    req("step_size", Kind::PosCount, "period of LR decay"),
    dflt(
        "gamma",
        Kind::Positive,
        "0.1",
        "multiplicative factor of LR decay",
    ),
];
const P_MULTISTEP: &[Param] = &[
    LR,
    req("milestones", Kind::Counts, "list of update indices"),
    dflt(
        "gamma",
        Kind::Positive,
        "0.1",
        "multiplicative factor of LR decay",
    ),
];
const P_CONSTANT: &[Param] = &[
    LR,
    dflt(
        "factor",
        Kind::Fraction,
        "0.3333333333333333",
        "factor applied until total_iters",
    ),
    dflt("total_iters", Kind::Count, "5", "updates the factor lasts"),
];
const P_LINEAR: &[Param] = &[
    LR,
    dflt(
        "start_factor",
        Kind::Fraction,
        "0.3333333333333333",
        "factor at t=0, in (0, 1]",
    ),
    dflt(
        "end_factor",
        Kind::Fraction,
        "1.0",
        "factor from t=total_iters on",
    ),
    dflt(
        "total_iters",
        Kind::Count,
        "5",
        "updates of the linear ramp",
    ),
];
const P_EXPONENTIAL: &[Param] = &[
    LR,
    req("gamma", Kind::Positive, "multiplicative factor per update"),
];
const P_POLYNOMIAL: &[Param] = &[
    LR,
    dflt(
        "total_iters",
        Kind::Count,
        "5",
        "updates until the LR reaches 0",
    ),
    dflt("power", Kind::NonNeg, "1.0", "power of the polynomial"),
];
const P_COSINE: &[Param] = &[
    LR,
    req(
        "T_max",
        Kind::Positive,
        "half period: updates from lr down to eta_min",
    ),
    dflt("eta_min", Kind::Lr, "0.0", "minimum learning rate"),
];
const P_WARM_RESTARTS: &[Param] = &[
    LR,
    req("T_0", Kind::PosCount, "length of the first cycle"),
    dflt(
        "T_mult",
        Kind::PosCount,
        "1",
        "growth factor of the cycle length",
    ),
    dflt("eta_min", Kind::Lr, "0.0", "minimum learning rate"),
];
const P_CYCLIC: &[Param] = &[
    LR_UNUSED,
    req("base_lr", Kind::Lr, "lower boundary of the cycle"),
    req("max_lr", Kind::Lr, "upper boundary of the cycle"),
    dflt(
        "step_size_up",
        Kind::Positive,
        "2000",
        "updates of the increasing half",
    ),
    opt(
        "step_size_down",
        Kind::Positive,
        "updates of the decreasing half (default: step_size_up)",
    ),
    dflt(
        "mode",
        Kind::Choice(&["triangular", "triangular2", "exp_range"]),
        "triangular",
        "amplitude policy",
    ),
    dflt("gamma", Kind::Positive, "1.0", "exp_range decay per update"),
    opt(
        "scale_mode",
        Kind::Choice(&["cycle", "iterations"]),
        "accepted for PyTorch compatibility; ignored as in PyTorch (the mode fixes it)",
    ),
];
const P_ONECYCLE: &[Param] = &[
    LR_UNUSED,
    req("max_lr", Kind::Lr, "peak learning rate"),
    opt(
        "total_steps",
        Kind::PosCount,
        "number of updates (or give epochs and steps_per_epoch)",
    ),
    opt(
        "epochs",
        Kind::PosCount,
        "epochs, with steps_per_epoch, when total_steps is not given",
    ),
    opt("steps_per_epoch", Kind::PosCount, "updates per epoch"),
    dflt(
        "pct_start",
        Kind::Fraction,
        "0.3",
        "fraction of the cycle spent increasing",
    ),
    dflt(
        "anneal_strategy",
        Kind::Choice(&["cos", "linear"]),
        "cos",
        "annealing shape",
    ),
    dflt(
        "div_factor",
        Kind::Positive,
        "25.0",
        "initial_lr = max_lr / div_factor",
    ),
    dflt(
        "final_div_factor",
        Kind::Positive,
        "10000.0",
        "min_lr = initial_lr / final_div_factor",
    ),
    dflt(
        "three_phase",
        Kind::Flag,
        "false",
        "anneal back to initial_lr before the final decay",
    ),
];

fn build_step(a: &Args) -> Result<Node, SpecError> {
    Ok(Node::Torch(Torch::Step {
        lr: a.num("lr"),
        step_size: a.count("step_size"),
        gamma: a.num("gamma"),
    }))
}

fn build_multistep(a: &Args) -> Result<Node, SpecError> {
    let mut milestones: Vec<u64> = a.list("milestones").iter().map(|&m| m as u64).collect();
    milestones.sort_unstable();
    Ok(Node::Torch(Torch::MultiStep {
        lr: a.num("lr"),
        milestones,
        gamma: a.num("gamma"),
    }))
}

fn build_constant(a: &Args) -> Result<Node, SpecError> {
    let factor = a.num("factor");
    if factor == 0.0 {
        return Err(a.err(
            "factor",
            "'factor' must be in (0, 1]: PyTorch divides by it at total_iters",
        ));
    }
    Ok(Node::Torch(Torch::Constant {
        lr: a.num("lr"),
        factor,
        total_iters: a.count("total_iters"),
    }))
}

fn build_linear(a: &Args) -> Result<Node, SpecError> {
    let start_factor = a.num("start_factor");
    if start_factor == 0.0 {
        return Err(a.err("start_factor", "'start_factor' must be in (0, 1]"));
    }
    Ok(Node::Torch(Torch::Linear {
        lr: a.num("lr"),
        start_factor,
        end_factor: a.num("end_factor"),
        total_iters: a.count("total_iters"),
    }))
}

fn build_exponential(a: &Args) -> Result<Node, SpecError> {
    Ok(Node::Torch(Torch::Exponential {
        lr: a.num("lr"),
        gamma: a.num("gamma"),
    }))
}

fn build_polynomial(a: &Args) -> Result<Node, SpecError> {
    Ok(Node::Torch(Torch::Polynomial {
        lr: a.num("lr"),
        total_iters: a.count("total_iters"),
        power: a.num("power"),
    }))
}

fn build_cosine(a: &Args) -> Result<Node, SpecError> {
    Ok(Node::Torch(Torch::CosineAnnealing {
        lr: a.num("lr"),
        t_max: a.num("T_max"),
        eta_min: a.num("eta_min"),
    }))
}

fn build_warm_restarts(a: &Args) -> Result<Node, SpecError> {
    Ok(Node::Torch(Torch::CosineWarmRestarts {
        lr: a.num("lr"),
        t_0: a.count("T_0"),
        t_mult: a.count("T_mult"),
        eta_min: a.num("eta_min"),
    }))
}

fn build_cyclic(a: &Args) -> Result<Node, SpecError> {
    let up = a.num("step_size_up");
    let down = a.opt_num("step_size_down").unwrap_or(up);
    let total_size = up + down;
    let mode = match a.choice("mode").as_str() {
        "triangular2" => CyclicMode::Triangular2,
        "exp_range" => CyclicMode::ExpRange,
        _ => CyclicMode::Triangular,
    };
    // PyTorch only honours scale_mode for a custom scale_fn; each built-in
    // mode fixes it.
    let scale_by_cycle = mode != CyclicMode::ExpRange;
    Ok(Node::Torch(Torch::Cyclic {
        base_lr: a.num("base_lr"),
        max_lr: a.num("max_lr"),
        total_size,
        step_ratio: up / total_size,
        mode,
        gamma: a.num("gamma"),
        scale_by_cycle,
    }))
}

fn build_onecycle(a: &Args) -> Result<Node, SpecError> {
    let total_steps = match (
        a.opt_count("total_steps"),
        a.opt_count("epochs"),
        a.opt_count("steps_per_epoch"),
    ) {
        (Some(n), _, _) => n,
        (None, Some(e), Some(s)) => e * s,
        _ => {
            return Err(a.err(
                "total_steps",
                "OneCycleLR needs total_steps, or both epochs and steps_per_epoch",
            ));
        }
    };
    let max_lr = a.num("max_lr");
    let pct_start = a.num("pct_start");
    let initial_lr = max_lr / a.num("div_factor");
    let min_lr = initial_lr / a.num("final_div_factor");
    let total = total_steps as f64;
    let phases = if a.flag("three_phase") {
        vec![
            (pct_start * total - 1.0, initial_lr, max_lr),
            (2.0 * pct_start * total - 2.0, max_lr, initial_lr),
            (total - 1.0, initial_lr, min_lr),
        ]
    } else {
        vec![
            (pct_start * total - 1.0, initial_lr, max_lr),
            (total - 1.0, max_lr, min_lr),
        ]
    };
    Ok(Node::Torch(Torch::OneCycle {
        initial_lr,
        max_lr,
        min_lr,
        total_steps,
        phases,
        cosine: a.choice("anneal_strategy") == "cos",
    }))
}

pub static POLICIES: &[PolicyInfo] = &[
    PolicyInfo {
        name: "StepLR",
        family: Family::Pytorch,
        summary: "decay by gamma every step_size updates",
        formula: "lr * gamma^floor(t/step_size)",
        params: P_STEP,
        stateful: false,
        build: build_step,
        example: "StepLR(lr=0.1,step_size=100,gamma=0.5)",
    },
    PolicyInfo {
        name: "MultiStepLR",
        family: Family::Pytorch,
        summary: "decay by gamma at each milestone",
        formula: "lr * gamma^(milestones <= t)",
        params: P_MULTISTEP,
        stateful: false,
        build: build_multistep,
        example: "MultiStepLR(lr=0.1,milestones=[300,600],gamma=0.1)",
    },
    PolicyInfo {
        name: "ConstantLR",
        family: Family::Pytorch,
        summary: "lr * factor until total_iters, then lr",
        formula: "lr * (t < total_iters ? factor : 1)",
        params: P_CONSTANT,
        stateful: false,
        build: build_constant,
        example: "ConstantLR(lr=0.1,factor=0.5,total_iters=100)",
    },
    PolicyInfo {
        name: "LinearLR",
        family: Family::Pytorch,
        summary: "linear ramp of the factor from start_factor to end_factor",
        formula: "lr * (start + (end-start) * min(t, total_iters)/total_iters)",
        params: P_LINEAR,
        stateful: false,
        build: build_linear,
        example: "LinearLR(lr=0.1,start_factor=0.1,total_iters=100)",
    },
    PolicyInfo {
        name: "ExponentialLR",
        family: Family::Pytorch,
        summary: "decay by gamma every update",
        formula: "lr * gamma^t",
        params: P_EXPONENTIAL,
        stateful: false,
        build: build_exponential,
        example: "ExponentialLR(lr=0.1,gamma=0.995)",
    },
    PolicyInfo {
        name: "PolynomialLR",
        family: Family::Pytorch,
        summary: "polynomial decay to 0 at total_iters",
        formula: "lr * (1 - min(t, total_iters)/total_iters)^power",
        params: P_POLYNOMIAL,
        stateful: false,
        build: build_polynomial,
        example: "PolynomialLR(lr=0.1,total_iters=1000,power=2)",
    },
    PolicyInfo {
        name: "CosineAnnealingLR",
        family: Family::Pytorch,
        summary: "cosine from lr to eta_min over T_max updates (period 2*T_max)",
        formula: "eta_min + (lr - eta_min) * (1 + cos(pi*t/T_max))/2",
        params: P_COSINE,
        stateful: false,
        build: build_cosine,
        example: "CosineAnnealingLR(lr=0.1,T_max=1000)",
    },
    PolicyInfo {
        name: "CosineAnnealingWarmRestarts",
        family: Family::Pytorch,
        summary: "SGDR: cosine cycles of length T_0, T_0*T_mult, ...",
        formula: "eta_min + (lr - eta_min) * (1 + cos(pi*T_cur/T_i))/2",
        params: P_WARM_RESTARTS,
        stateful: false,
        build: build_warm_restarts,
        example: "CosineAnnealingWarmRestarts(lr=0.1,T_0=100,T_mult=2)",
    },
    PolicyInfo {
        name: "CyclicLR",
        family: Family::Pytorch,
        summary: "cyclical LR between base_lr and max_lr (Smith 2017)",
        formula: "base_lr + (max_lr - base_lr) * triangle(t) * scale(cycle or t)",
        params: P_CYCLIC,
        stateful: false,
        build: build_cyclic,
        example: "CyclicLR(base_lr=0.001,max_lr=0.1,step_size_up=100,mode=triangular2)",
    },
    PolicyInfo {
        name: "OneCycleLR",
        family: Family::Pytorch,
        summary: "1cycle: warm up to max_lr, anneal far below the start",
        formula: "phases initial_lr -> max_lr -> min_lr, cosine or linear",
        params: P_ONECYCLE,
        stateful: false,
        build: build_onecycle,
        example: "OneCycleLR(max_lr=0.1,total_steps=1000)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_restart_positions() {
        assert_eq!(warm_restart_position(0, 10, 2), (0, 10));
        assert_eq!(warm_restart_position(9, 10, 2), (9, 10));
        assert_eq!(warm_restart_position(10, 10, 2), (0, 20));
        assert_eq!(warm_restart_position(29, 10, 2), (19, 20));
        assert_eq!(warm_restart_position(30, 10, 2), (0, 40));
        assert_eq!(warm_restart_position(25, 10, 1), (5, 10));
        assert!(warm_restart_position(u64::MAX, 1, 2).0 < u64::MAX);
    }
}
