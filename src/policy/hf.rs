//! Hugging Face transformers' schedules (`get_scheduler` names). Each is a
//! `LambdaLR`: lr * lambda(t), with transformers' lambdas transcribed.

use std::f64::consts::PI;

use super::Node;
use super::catalog::{Family, PolicyInfo};
use super::error::SpecError;
use super::params::{Args, Kind, Param, dflt, opt, req};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Linear,
    Cosine,
    OneMinusSqrt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lambda {
    Linear,
    Cosine {
        num_cycles: f64,
    },
    CosineWithRestarts {
        num_cycles: f64,
    },
    Polynomial {
        lr_end: f64,
        power: f64,
    },
    Constant,
    ConstantWithWarmup,
    InverseSqrt {
        timescale: f64,
    },
    CosineWithMinLr {
        num_cycles: f64,
        min_lr_rate: f64,
    },
    CosineWarmupWithMinLr {
        num_cycles: f64,
        min_lr_rate: f64,
        warmup_lr_rate: Option<f64>,
    },
    WarmupStableDecay {
        num_stable_steps: u64,
        num_decay_steps: u64,
        warmup: Shape,
        decay: Shape,
        min_lr_ratio: f64,
        num_cycles: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hf {
    pub lr: f64,
    pub num_warmup_steps: u64,
    pub num_training_steps: u64,
    pub lambda: Lambda,
}

impl Hf {
    pub fn lr(&self, t: u64) -> f64 {
        self.lr * self.factor(t)
    }

    fn factor(&self, t: u64) -> f64 {
        let step = t as f64;
        let warmup = self.num_warmup_steps as f64;
        let training = self.num_training_steps as f64;
        let in_warmup = t < self.num_warmup_steps;
        let linear_warmup = step / warmup.max(1.0);
        let progress = (step - warmup) / (training - warmup).max(1.0);
        match &self.lambda {
            Lambda::Constant => 1.0,
            Lambda::ConstantWithWarmup => {
                if in_warmup {
                    linear_warmup
                } else {
                    1.0
                }
            }
            _ if in_warmup
                && !matches!(
                    self.lambda,
                    Lambda::WarmupStableDecay { .. } | Lambda::CosineWarmupWithMinLr { .. }
                ) =>
            {
                linear_warmup
            }
            Lambda::Linear => 0f64.max((training - step) / (training - warmup).max(1.0)),
            Lambda::Cosine { num_cycles } => {
                0f64.max(0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos()))
            }
            Lambda::CosineWithRestarts { num_cycles } => {
                if progress >= 1.0 {
                    0.0
                } else {
                    0f64.max(0.5 * (1.0 + (PI * ((num_cycles * progress) % 1.0)).cos()))
                }
            }
            Lambda::Polynomial { lr_end, power } => {
                let lr_init = self.lr;
                if step > training {
                    lr_end / lr_init
                } else {
                    let lr_range = lr_init - lr_end;
                    let decay_steps = training - warmup;
                    let pct_remaining = if decay_steps == 0.0 {
                        0.0
                    } else {
                        1.0 - (step - warmup) / decay_steps
                    };
                    (lr_range * pct_remaining.powf(*power) + lr_end) / lr_init
                }
            }
            Lambda::InverseSqrt { timescale } => {
                let shift = timescale - warmup;
                1.0 / ((step + shift) / timescale).sqrt()
            }
            Lambda::CosineWithMinLr {
                num_cycles,
                min_lr_rate,
            } => {
                let factor = 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos());
                0f64.max(factor * (1.0 - min_lr_rate) + min_lr_rate)
            }
            Lambda::CosineWarmupWithMinLr {
                num_cycles,
                min_lr_rate,
                warmup_lr_rate,
            } => {
                if in_warmup {
                    return match warmup_lr_rate {
                        None => (step + 1.0) / warmup.max(1.0),
                        Some(rate) => rate + (1.0 - rate) * step / (warmup - 1.0).max(1.0),
                    };
                }
                let progress = (step - warmup + 1.0) / (training - warmup).max(1.0);
                let factor = 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos());
                0f64.max(factor * (1.0 - min_lr_rate) + min_lr_rate)
            }
            Lambda::WarmupStableDecay {
                num_stable_steps,
                num_decay_steps,
                warmup: warmup_shape,
                decay,
                min_lr_ratio,
                num_cycles,
            } => {
                if in_warmup {
                    let progress = linear_warmup;
                    let factor = match warmup_shape {
                        Shape::Linear => progress,
                        Shape::Cosine => 0.5 * (1.0 - (PI * progress).cos()),
                        Shape::OneMinusSqrt => 1.0 - (1.0 - progress).sqrt(),
                    };
                    return 0f64.max(factor * (1.0 - min_lr_ratio) + min_lr_ratio);
                }
                let stable_end = self.num_warmup_steps + num_stable_steps;
                if t < stable_end {
                    return 1.0;
                }
                if t < stable_end + num_decay_steps {
                    let progress = (t - stable_end) as f64 / (*num_decay_steps as f64).max(1.0);
                    let factor = match decay {
                        Shape::Linear => 1.0 - progress,
                        Shape::Cosine => 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos()),
                        Shape::OneMinusSqrt => 1.0 - progress.sqrt(),
                    };
                    return 0f64.max(factor * (1.0 - min_lr_ratio) + min_lr_ratio);
                }
                *min_lr_ratio
            }
        }
    }

    pub fn horizon(&self) -> Option<u64> {
        match &self.lambda {
            Lambda::Constant => None,
            Lambda::ConstantWithWarmup | Lambda::InverseSqrt { .. } => {
                Some(self.num_warmup_steps.saturating_mul(10).max(100))
            }
            Lambda::WarmupStableDecay {
                num_stable_steps,
                num_decay_steps,
                ..
            } => Some(
                self.num_warmup_steps
                    .saturating_add(*num_stable_steps)
                    .saturating_add(*num_decay_steps),
            ),
            _ => Some(self.num_training_steps.max(1)),
        }
    }
}

const LR: Param = req("lr", Kind::Lr, "the optimizer's learning rate");
const WARMUP: Param = dflt(
    "num_warmup_steps",
    Kind::Count,
    "0",
    "updates of linear warmup from 0",
);
const TRAINING: Param = req("num_training_steps", Kind::Count, "total number of updates");
const SHAPES: &[&str] = &["linear", "cosine", "1-sqrt"];

const P_LINEAR: &[Param] = &[LR, WARMUP, TRAINING];
const P_COSINE: &[Param] = &[
    LR,
    WARMUP,
    TRAINING,
    dflt(
        "num_cycles",
        Kind::NonNeg,
        "0.5",
        "waves of the cosine (0.5: one decreasing half)",
    ),
];
const P_RESTARTS: &[Param] = &[
    LR,
    WARMUP,
    TRAINING,
    dflt("num_cycles", Kind::NonNeg, "1", "number of hard restarts"),
];
const P_POLYNOMIAL: &[Param] = &[
    LR,
    WARMUP,
    TRAINING,
    dflt("lr_end", Kind::Lr, "1e-7", "final learning rate"),
    dflt("power", Kind::NonNeg, "1.0", "power of the decay"),
];
const P_CONSTANT: &[Param] = &[LR];
const P_CONSTANT_WARMUP: &[Param] = &[LR, WARMUP];
const P_INVERSE_SQRT: &[Param] = &[
    LR,
    WARMUP,
    opt(
        "timescale",
        Kind::Positive,
        "time scale (default: num_warmup_steps, or 10000 if that is 0)",
    ),
];
const P_MIN_LR: &[Param] = &[
    LR,
    WARMUP,
    TRAINING,
    dflt("num_cycles", Kind::NonNeg, "0.5", "waves of the cosine"),
    opt("min_lr", Kind::Lr, "minimum learning rate (or min_lr_rate)"),
    opt(
        "min_lr_rate",
        Kind::Fraction,
        "minimum learning rate as a fraction of lr",
    ),
];
const P_WARMUP_MIN_LR: &[Param] = &[
    LR,
    WARMUP,
    TRAINING,
    dflt("num_cycles", Kind::NonNeg, "0.5", "waves of the cosine"),
    opt("min_lr", Kind::Lr, "minimum learning rate (or min_lr_rate)"),
    opt(
        "min_lr_rate",
        Kind::Fraction,
        "minimum learning rate as a fraction of lr",
    ),
    opt(
        "warmup_lr_rate",
        Kind::Fraction,
        "starting warmup factor (default: 1/num_warmup_steps)",
    ),
];
const P_WSD: &[Param] = &[
    LR,
    WARMUP,
    opt(
        "num_training_steps",
        Kind::Count,
        "total updates (stable = total - warmup - decay)",
    ),
    req("num_decay_steps", Kind::Count, "updates of the final decay"),
    opt(
        "num_stable_steps",
        Kind::Count,
        "updates at lr (overrides num_training_steps)",
    ),
    dflt(
        "warmup_type",
        Kind::Choice(SHAPES),
        "linear",
        "warmup shape",
    ),
    dflt("decay_type", Kind::Choice(SHAPES), "cosine", "decay shape"),
    dflt(
        "min_lr_ratio",
        Kind::Fraction,
        "0",
        "floor as a fraction of lr",
    ),
    dflt("num_cycles", Kind::NonNeg, "0.5", "waves of a cosine decay"),
];

fn hf(a: &Args, lambda: Lambda) -> Result<Node, SpecError> {
    let has = |name: &str| a.info.params.iter().any(|p| p.name == name);
    Ok(Node::Hf(Hf {
        lr: a.num("lr"),
        num_warmup_steps: if has("num_warmup_steps") {
            a.count("num_warmup_steps")
        } else {
            0
        },
        num_training_steps: if has("num_training_steps") {
            a.opt_count("num_training_steps").unwrap_or(0)
        } else {
            0
        },
        lambda,
    }))
}

fn min_lr_rate(a: &Args) -> Result<f64, SpecError> {
    match (a.opt_num("min_lr"), a.opt_num("min_lr_rate")) {
        (Some(_), Some(_)) => Err(a.err("min_lr_rate", "give only one of min_lr and min_lr_rate")),
        (Some(min_lr), None) => {
            let lr = a.num("lr");
            if lr == 0.0 {
                return Err(a.err("lr", "min_lr needs lr > 0 (it is divided by lr)"));
            }
            Ok(min_lr / lr)
        }
        (None, Some(rate)) => Ok(rate),
        (None, None) => Err(a.err(
            "min_lr",
            format!("{} needs min_lr or min_lr_rate", a.info.name),
        )),
    }
}

fn shape(a: &Args, name: &str) -> Shape {
    match a.choice(name).as_str() {
        "cosine" => Shape::Cosine,
        "1-sqrt" => Shape::OneMinusSqrt,
        _ => Shape::Linear,
    }
}

fn build_polynomial(a: &Args) -> Result<Node, SpecError> {
    let lr_end = a.num("lr_end");
    if a.num("lr") <= lr_end {
        return Err(a.err(
            "lr_end",
            format!(
                "lr_end ({lr_end}) must be smaller than lr ({})",
                a.num("lr")
            ),
        ));
    }
    hf(
        a,
        Lambda::Polynomial {
            lr_end,
            power: a.num("power"),
        },
    )
}

fn build_inverse_sqrt(a: &Args) -> Result<Node, SpecError> {
    let warmup = a.count("num_warmup_steps");
    let timescale =
        a.opt_num("timescale")
            .unwrap_or(if warmup == 0 { 10_000.0 } else { warmup as f64 });
    hf(a, Lambda::InverseSqrt { timescale })
}

fn build_wsd(a: &Args) -> Result<Node, SpecError> {
    let warmup = a.count("num_warmup_steps");
    let decay = a.count("num_decay_steps");
    let num_stable_steps = match (
        a.opt_count("num_stable_steps"),
        a.opt_count("num_training_steps"),
    ) {
        (Some(stable), _) => stable,
        (None, Some(total)) => total.checked_sub(warmup + decay).ok_or_else(|| {
            a.err(
                "num_training_steps",
                format!(
                    "num_training_steps ({total}) is shorter than warmup + decay ({})",
                    warmup + decay
                ),
            )
        })?,
        (None, None) => {
            return Err(a.err(
                "num_training_steps",
                "warmup_stable_decay needs num_training_steps or num_stable_steps",
            ));
        }
    };
    hf(
        a,
        Lambda::WarmupStableDecay {
            num_stable_steps,
            num_decay_steps: decay,
            warmup: shape(a, "warmup_type"),
            decay: shape(a, "decay_type"),
            min_lr_ratio: a.num("min_lr_ratio"),
            num_cycles: a.num("num_cycles"),
        },
    )
}

pub static POLICIES: &[PolicyInfo] = &[
    PolicyInfo {
        name: "linear",
        family: Family::Hf,
        summary: "linear warmup from 0, then linear decay to 0 at num_training_steps",
        formula: "lr * (t < w ? t/w : max(0, (T - t)/(T - w)))",
        params: P_LINEAR,
        stateful: false,
        build: |a| hf(a, Lambda::Linear),
        example: "linear(lr=5e-4,num_warmup_steps=100,num_training_steps=1000)",
    },
    PolicyInfo {
        name: "cosine",
        family: Family::Hf,
        summary: "linear warmup, then cosine decay to 0",
        formula: "lr * 0.5*(1 + cos(pi * num_cycles * 2 * progress))",
        params: P_COSINE,
        stateful: false,
        build: |a| {
            hf(
                a,
                Lambda::Cosine {
                    num_cycles: a.num("num_cycles"),
                },
            )
        },
        example: "cosine(lr=5e-4,num_warmup_steps=100,num_training_steps=1000)",
    },
    PolicyInfo {
        name: "cosine_with_restarts",
        family: Family::Hf,
        summary: "linear warmup, then num_cycles cosine decays with hard restarts",
        formula: "lr * 0.5*(1 + cos(pi * ((num_cycles * progress) mod 1)))",
        params: P_RESTARTS,
        stateful: false,
        build: |a| {
            hf(
                a,
                Lambda::CosineWithRestarts {
                    num_cycles: a.num("num_cycles"),
                },
            )
        },
        example: "cosine_with_restarts(lr=5e-4,num_warmup_steps=100,num_training_steps=1000,num_cycles=3)",
    },
    PolicyInfo {
        name: "polynomial",
        family: Family::Hf,
        summary: "linear warmup, then polynomial decay to lr_end",
        formula: "(lr - lr_end) * (1 - (t-w)/(T-w))^power + lr_end",
        params: P_POLYNOMIAL,
        stateful: false,
        build: build_polynomial,
        example: "polynomial(lr=5e-4,num_warmup_steps=100,num_training_steps=1000,power=2)",
    },
    PolicyInfo {
        name: "constant",
        family: Family::Hf,
        summary: "constant learning rate",
        formula: "lr",
        params: P_CONSTANT,
        stateful: false,
        build: |a| hf(a, Lambda::Constant),
        example: "constant(lr=5e-4)",
    },
    PolicyInfo {
        name: "constant_with_warmup",
        family: Family::Hf,
        summary: "linear warmup, then constant",
        formula: "lr * min(1, t/w)",
        params: P_CONSTANT_WARMUP,
        stateful: false,
        build: |a| hf(a, Lambda::ConstantWithWarmup),
        example: "constant_with_warmup(lr=5e-4,num_warmup_steps=100)",
    },
    PolicyInfo {
        name: "inverse_sqrt",
        family: Family::Hf,
        summary: "linear warmup, then 1/sqrt decay",
        formula: "lr / sqrt((t + timescale - w)/timescale)",
        params: P_INVERSE_SQRT,
        stateful: false,
        build: build_inverse_sqrt,
        example: "inverse_sqrt(lr=5e-4,num_warmup_steps=100)",
    },
    PolicyInfo {
        name: "cosine_with_min_lr",
        family: Family::Hf,
        summary: "linear warmup, then cosine decay to min_lr",
        formula: "lr * (cos_factor * (1 - min_lr_rate) + min_lr_rate)",
        params: P_MIN_LR,
        stateful: false,
        build: |a| {
            hf(
                a,
                Lambda::CosineWithMinLr {
                    num_cycles: a.num("num_cycles"),
                    min_lr_rate: min_lr_rate(a)?,
                },
            )
        },
        example: "cosine_with_min_lr(lr=5e-4,num_warmup_steps=100,num_training_steps=1000,min_lr_rate=0.1)",
    },
    PolicyInfo {
        name: "cosine_warmup_with_min_lr",
        family: Family::Hf,
        summary: "warmup that starts above 0, then cosine decay to min_lr",
        formula: "warmup (t+1)/w, then lr * (cos_factor * (1 - min_lr_rate) + min_lr_rate)",
        params: P_WARMUP_MIN_LR,
        stateful: false,
        build: |a| {
            hf(
                a,
                Lambda::CosineWarmupWithMinLr {
                    num_cycles: a.num("num_cycles"),
                    min_lr_rate: min_lr_rate(a)?,
                    warmup_lr_rate: a.opt_num("warmup_lr_rate"),
                },
            )
        },
        example: "cosine_warmup_with_min_lr(lr=5e-4,num_warmup_steps=100,num_training_steps=1000,min_lr_rate=0.1)",
    },
    PolicyInfo {
        name: "warmup_stable_decay",
        family: Family::Hf,
        summary: "WSD: warmup, stable at lr, decay to min_lr_ratio * lr",
        formula: "warmup (from min_lr_ratio) -> 1 -> decay to min_lr_ratio",
        params: P_WSD,
        stateful: false,
        build: build_wsd,
        example: "warmup_stable_decay(lr=5e-4,num_warmup_steps=100,num_training_steps=1000,num_decay_steps=200)",
    },
];
