//! The 34 learning-rate functions of LRBench (`LRBench/lr/LRfunctions.py`),
//! with LRBench's names and parameter names. Each expression keeps the
//! reference's order of floating-point operations so values agree to the
//! last bits, but every function is pure in t: NSTEP's hidden counter is
//! replaced by the times at which LRBench, called in order, would advance it,
//! and POLY holds k0 after t = l instead of going complex.

use std::f64::consts::PI;

use super::Node;
use super::catalog::{Family, PolicyInfo};
use super::error::SpecError;
use super::params::{Args, Kind, Param, req};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Fix,
    Step,
    Nstep,
    Exp,
    Inv,
    Poly,
    Sig,
    Tri,
    Tri2,
    TriExp,
    Dtri,
    Dtri2,
    DtriExp,
    Sin,
    Sin2,
    SinExp,
    Dsin,
    Dsin2,
    DsinExp,
    Cos,
    Cos2,
    CosExp,
    Upcos,
    Upcos2,
    UpcosExp,
    Rsw,
    Rsw2,
    RswExp,
    SinRsw,
    SinRsw2,
    SinRswExp,
    CosRsw,
    CosRsw2,
    CosRswExp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LrBench {
    pub func: Func,
    pub k0: f64,
    pub k1: f64,
    pub gamma: f64,
    pub p: f64,
    pub l: f64,
    /// NSTEP: the update at which each decay happens.
    pub nstep_times: Vec<f64>,
}

impl LrBench {
    pub fn lr(&self, t: u64) -> f64 {
        let iter = t as f64;
        let (k0, k1, gamma, p, l) = (self.k0, self.k1, self.gamma, self.p, self.l);
        let period = 2.0 * l;
        let amp = k1 - k0;
        let tri = |x: f64| amp * (2.0 / PI) * (x.sin().asin()).abs();
        // LRBench's `2**math.floor(x)`: an exact power of two.
        let halvings = |x: f64| pow2(x.floor());
        // `-1.0*iter/l - math.floor(-1.0*iter/l)`: the saw tooth of the restart family.
        let saw = {
            let x = -iter / l;
            x - x.floor()
        };
        match self.func {
            Func::Fix => k0,
            Func::Step => k0 * gamma.powf((iter / l).floor()),
            Func::Nstep => {
                let steps = self.nstep_times.iter().filter(|&&at| at <= iter).count();
                k0 * gamma.powf(steps as f64)
            }
            Func::Exp => k0 * gamma.powf(iter),
            Func::Inv => k0 * (1.0 + gamma * iter).powf(-p),
            Func::Poly => {
                if iter > l {
                    k0
                } else {
                    amp * (1.0 - 1.0 * iter / l).powf(p) + k0
                }
            }
            Func::Sig => k0 * 1.0 / (1.0 + (-gamma * (iter - l)).exp()),
            Func::Tri => tri(PI * iter / period) + k0,
            Func::Dtri => tri(PI * ((iter + l) / period)) + k0,
            Func::Tri2 => tri(PI * iter / period) / halvings(iter / period) + k0,
            Func::Dtri2 => tri(PI * (iter + l) / period) / halvings((iter + l) / period) + k0,
            Func::TriExp => tri(PI * iter / period) * gamma.powf(iter) + k0,
            Func::DtriExp => tri(PI * (iter + l) / period) * gamma.powf(iter) + k0,
            Func::Sin => amp * (PI * iter / period).sin().abs() + k0,
            Func::Dsin => amp * (PI * (iter + l) / period).sin().abs() + k0,
            Func::Sin2 => amp * (PI * iter / period).sin().abs() / halvings(iter / period) + k0,
            Func::Dsin2 => {
                amp * (PI * (iter + l) / period).sin().abs() / halvings((iter + l) / period) + k0
            }
            Func::SinExp => amp * (PI * iter / period).sin().abs() * gamma.powf(iter) + k0,
            Func::DsinExp => amp * (PI * (iter + l) / period).sin().abs() * gamma.powf(iter) + k0,
            Func::Cos => amp * 0.5 * (1.0 + (PI * iter / l).cos()) + k0,
            Func::Upcos => amp * 0.5 * (1.0 + (PI * (1.0 * iter / l + 1.0)).cos()) + k0,
            Func::Cos2 => {
                amp * 0.5 * (1.0 + (PI * iter / l).cos()) / halvings((iter + l) / (2.0 * l)) + k0
            }
            Func::Upcos2 => {
                amp * 0.5 * (1.0 + (PI * (1.0 * iter / l + 1.0)).cos()) / halvings(iter / (2.0 * l))
                    + k0
            }
            Func::CosExp => amp * 0.5 * (1.0 + (PI * iter / l).cos()) * gamma.powf(iter) + k0,
            Func::UpcosExp => {
                amp * 0.5 * (1.0 + (PI * (1.0 * iter / l + 1.0)).cos()) * gamma.powf(iter) + k0
            }
            Func::Rsw => amp * saw + k0,
            Func::Rsw2 => amp * saw / halvings(1.0 * iter / l) + k0,
            Func::RswExp => amp * saw * gamma.powf(iter) + k0,
            Func::SinRsw => amp * (PI / 2.0 * saw).sin() + k0,
            Func::SinRsw2 => amp * (PI / 2.0 * saw).sin() / halvings(1.0 * iter / l) + k0,
            Func::SinRswExp => amp * (PI / 2.0 * saw).sin() * gamma.powf(iter) + k0,
            Func::CosRsw => amp * 0.5 * (1.0 - (PI * saw).cos()) + k0,
            Func::CosRsw2 => amp * 0.5 * (1.0 - (PI * saw).cos()) / halvings(1.0 * iter / l) + k0,
            Func::CosRswExp => amp * 0.5 * (1.0 - (PI * saw).cos()) * gamma.powf(iter) + k0,
        }
    }

    /// Where the schedule naturally ends, for choosing a plot length.
    pub fn horizon(&self) -> Option<u64> {
        match self.func {
            Func::Fix | Func::Exp | Func::Inv => None,
            Func::Nstep => self.nstep_times.last().map(|&t| (t * 1.25).ceil() as u64),
            Func::Poly | Func::Sig => Some(((self.l * 1.25).ceil() as u64).max(1)),
            Func::Cos | Func::Upcos => Some(((self.l * 2.0).ceil() as u64).max(1)),
            // Three cycles of the periodic ones (period 2l), four restarts (period l).
            Func::Rsw
            | Func::Rsw2
            | Func::RswExp
            | Func::SinRsw
            | Func::SinRsw2
            | Func::SinRswExp => Some(((self.l * 4.0).ceil() as u64).max(1)),
            Func::CosRsw | Func::CosRsw2 | Func::CosRswExp => {
                Some(((self.l * 4.0).ceil() as u64).max(1))
            }
            _ => Some(((self.l * 6.0).ceil() as u64).max(1)),
        }
    }
}

fn pow2(n: f64) -> f64 {
    if n > 1100.0 {
        f64::INFINITY
    } else if n < -1100.0 {
        0.0
    } else {
        2f64.powi(n as i32)
    }
}

/// The updates at which LRBench's stateful NSTEP, called once per update in
/// order, advances its counter: at most once per call, when t >= l[step].
fn nstep_times(boundaries: &[f64]) -> Vec<f64> {
    let mut times = Vec::with_capacity(boundaries.len());
    let mut previous: Option<f64> = None;
    for &b in boundaries {
        let earliest = previous.map_or(0.0, |p| p + 1.0);
        let at = b.max(earliest).ceil();
        times.push(at);
        previous = Some(at);
    }
    times
}

const K0: Param = req("k0", Kind::Lr, "initial (or lower) learning rate");
const K1: Param = req(
    "k1",
    Kind::Lr,
    "upper learning rate (k1 > k0 for cyclic policies)",
);
const GAMMA: Param = req("gamma", Kind::Positive, "decay factor");
const L: Param = req(
    "l",
    Kind::Positive,
    "step size: half period of cyclic policies, period of restarts",
);

const P_FIX: &[Param] = &[K0];
const P_STEP: &[Param] = &[K0, GAMMA, L];
const P_NSTEP: &[Param] = &[
    K0,
    GAMMA,
    req(
        "l",
        Kind::Floats,
        "list of update indices at which the LR is multiplied by gamma",
    ),
];
const P_EXP: &[Param] = &[K0, GAMMA];
const P_INV: &[Param] = &[
    K0,
    req("gamma", Kind::NonNeg, "decay rate"),
    req("p", Kind::Float, "power"),
];
const P_POLY: &[Param] = &[
    K0,
    K1,
    req("p", Kind::NonNeg, "power"),
    req("l", Kind::Positive, "updates to go from k1 down to k0"),
];
const P_SIG: &[Param] = &[
    K0,
    req("gamma", Kind::Float, "steepness"),
    req("l", Kind::Float, "midpoint update"),
];
const P_CYC: &[Param] = &[K0, K1, L];
const P_CYC_EXP: &[Param] = &[K0, K1, GAMMA, L];

fn build(func: Func) -> impl Fn(&Args) -> Result<Node, SpecError> {
    move |a: &Args| {
        let has = |name: &str| a.info.params.iter().any(|p| p.name == name);
        let get = |name: &str| if has(name) { a.num(name) } else { 0.0 };
        let mut policy = LrBench {
            func,
            k0: a.num("k0"),
            k1: get("k1"),
            gamma: get("gamma"),
            p: get("p"),
            l: 0.0,
            nstep_times: Vec::new(),
        };
        if func == Func::Nstep {
            let boundaries = a.list("l");
            if boundaries.is_empty() {
                return Err(a.err("l", "NSTEP needs at least one boundary in l=[...]"));
            }
            policy.nstep_times = nstep_times(&boundaries);
            policy.l = boundaries[0];
        } else if has("l") {
            policy.l = a.num("l");
        }
        Ok(Node::LrBench(policy))
    }
}

macro_rules! lrbench_policies {
    ($( $name:literal, $func:ident, $params:ident, $summary:literal, $formula:literal, $example:literal; )*) => {
        pub static POLICIES: &[PolicyInfo] = &[
            $( PolicyInfo {
                name: $name,
                family: Family::Lrbench,
                summary: $summary,
                formula: $formula,
                params: $params,
                stateful: false,
                build: |a| build(Func::$func)(a),
                example: $example,
            }, )*
        ];
    };
}

lrbench_policies! {
    "FIX", Fix, P_FIX, "fixed learning rate", "k0", "FIX(k0=0.1)";
    "STEP", Step, P_STEP, "step decay every l updates", "k0 * gamma^floor(t/l)", "STEP(k0=0.1,gamma=0.5,l=100)";
    "NSTEP", Nstep, P_NSTEP, "step decay at listed updates", "k0 * gamma^(number of boundaries passed)", "NSTEP(k0=0.1,gamma=0.1,l=[300,600,800])";
    "EXP", Exp, P_EXP, "exponential decay", "k0 * gamma^t", "EXP(k0=0.1,gamma=0.995)";
    "INV", Inv, P_INV, "inverse-time decay", "k0 * (1 + gamma*t)^(-p)", "INV(k0=0.1,gamma=0.01,p=0.75)";
    "POLY", Poly, P_POLY, "polynomial decay from k1 to k0 at t=l (then k0)", "(k1-k0) * (1 - t/l)^p + k0", "POLY(k0=0.001,k1=0.1,p=2,l=1000)";
    "SIG", Sig, P_SIG, "sigmoid", "k0 / (1 + exp(-gamma*(t-l)))", "SIG(k0=0.1,gamma=-0.01,l=500)";
    "TRI", Tri, P_CYC, "triangular cycles between k0 and k1, half period l", "(k1-k0) * (2/pi)*|asin(sin(pi*t/(2l)))| + k0", "TRI(k0=0.01,k1=0.1,l=100)";
    "TRI2", Tri2, P_CYC, "triangular cycles, amplitude halved every cycle", "TRI / 2^floor(t/(2l))", "TRI2(k0=0.01,k1=0.1,l=100)";
    "TRIEXP", TriExp, P_CYC_EXP, "triangular cycles, amplitude decays as gamma^t", "TRI amplitude * gamma^t", "TRIEXP(k0=0.01,k1=0.1,gamma=0.998,l=100)";
    "DTRI", Dtri, P_CYC, "triangular cycles starting at k1 (decreasing first)", "TRI at t+l", "DTRI(k0=0.01,k1=0.1,l=100)";
    "DTRI2", Dtri2, P_CYC, "decreasing-first triangular, halved every cycle", "TRI2 at t+l", "DTRI2(k0=0.01,k1=0.1,l=100)";
    "DTRIEXP", DtriExp, P_CYC_EXP, "decreasing-first triangular, decays as gamma^t", "TRI at t+l, amplitude * gamma^t", "DTRIEXP(k0=0.01,k1=0.1,gamma=0.998,l=100)";
    "SIN", Sin, P_CYC, "sine cycles between k0 and k1, half period l", "(k1-k0) * |sin(pi*t/(2l))| + k0", "SIN(k0=0.01,k1=0.1,l=100)";
    "SIN2", Sin2, P_CYC, "sine cycles, amplitude halved every cycle", "SIN / 2^floor(t/(2l))", "SIN2(k0=0.01,k1=0.1,l=100)";
    "SINEXP", SinExp, P_CYC_EXP, "sine cycles, amplitude decays as gamma^t", "SIN amplitude * gamma^t", "SINEXP(k0=0.01,k1=0.1,gamma=0.998,l=100)";
    "DSIN", Dsin, P_CYC, "sine cycles starting at k1", "SIN at t+l", "DSIN(k0=0.01,k1=0.1,l=100)";
    "DSIN2", Dsin2, P_CYC, "decreasing-first sine, halved every cycle", "SIN2 at t+l", "DSIN2(k0=0.01,k1=0.1,l=100)";
    "DSINEXP", DsinExp, P_CYC_EXP, "decreasing-first sine, decays as gamma^t", "SIN at t+l, amplitude * gamma^t", "DSINEXP(k0=0.01,k1=0.1,gamma=0.998,l=100)";
    "COS", Cos, P_CYC, "cosine from k1 down to k0 over l updates, period 2l", "(k1-k0) * 0.5*(1 + cos(pi*t/l)) + k0", "COS(k0=0.001,k1=0.1,l=1000)";
    "COS2", Cos2, P_CYC, "cosine cycles, amplitude halved every cycle", "COS / 2^floor((t+l)/(2l))", "COS2(k0=0.001,k1=0.1,l=100)";
    "COSEXP", CosExp, P_CYC_EXP, "cosine cycles, amplitude decays as gamma^t", "COS amplitude * gamma^t", "COSEXP(k0=0.001,k1=0.1,gamma=0.998,l=100)";
    "UPCOS", Upcos, P_CYC, "cosine from k0 up to k1 over l updates", "(k1-k0) * 0.5*(1 + cos(pi*(t/l + 1))) + k0", "UPCOS(k0=0.001,k1=0.1,l=100)";
    "UPCOS2", Upcos2, P_CYC, "rising cosine cycles, amplitude halved every cycle", "UPCOS / 2^floor(t/(2l))", "UPCOS2(k0=0.001,k1=0.1,l=100)";
    "UPCOSEXP", UpcosExp, P_CYC_EXP, "rising cosine cycles, decays as gamma^t", "UPCOS amplitude * gamma^t", "UPCOSEXP(k0=0.001,k1=0.1,gamma=0.998,l=100)";
    "RSW", Rsw, P_CYC, "saw tooth: restart at k1, fall linearly to k0 over l updates", "(k1-k0) * frac(-t/l) + k0", "RSW(k0=0.001,k1=0.1,l=100)";
    "RSW2", Rsw2, P_CYC, "saw tooth, amplitude halved every restart", "RSW / 2^floor(t/l)", "RSW2(k0=0.001,k1=0.1,l=100)";
    "RSWEXP", RswExp, P_CYC_EXP, "saw tooth, amplitude decays as gamma^t", "RSW amplitude * gamma^t", "RSWEXP(k0=0.001,k1=0.1,gamma=0.998,l=100)";
    "SINRSW", SinRsw, P_CYC, "restarts with a sine-shaped fall", "(k1-k0) * sin(pi/2 * frac(-t/l)) + k0", "SINRSW(k0=0.001,k1=0.1,l=100)";
    "SINRSW2", SinRsw2, P_CYC, "sine restarts, amplitude halved every restart", "SINRSW / 2^floor(t/l)", "SINRSW2(k0=0.001,k1=0.1,l=100)";
    "SINRSWEXP", SinRswExp, P_CYC_EXP, "sine restarts, amplitude decays as gamma^t", "SINRSW amplitude * gamma^t", "SINRSWEXP(k0=0.001,k1=0.1,gamma=0.998,l=100)";
    "COSRSW", CosRsw, P_CYC, "restarts with a cosine-shaped fall (SGDR-like)", "(k1-k0) * 0.5*(1 - cos(pi * frac(-t/l))) + k0", "COSRSW(k0=0.001,k1=0.1,l=100)";
    "COSRSW2", CosRsw2, P_CYC, "cosine restarts, amplitude halved every restart", "COSRSW / 2^floor(t/l)", "COSRSW2(k0=0.001,k1=0.1,l=100)";
    "COSRSWEXP", CosRswExp, P_CYC_EXP, "cosine restarts, amplitude decays as gamma^t", "COSRSW amplitude * gamma^t", "COSRSWEXP(k0=0.001,k1=0.1,gamma=0.998,l=100)";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_four_functions() {
        assert_eq!(POLICIES.len(), 34);
    }

    #[test]
    fn nstep_times_follow_in_order_calls() {
        assert_eq!(
            nstep_times(&[100.0, 250.0, 330.0]),
            vec![100.0, 250.0, 330.0]
        );
        // Duplicates and unsorted lists advance at most once per update.
        assert_eq!(nstep_times(&[10.0, 10.0, 5.0]), vec![10.0, 11.0, 12.0]);
        assert_eq!(nstep_times(&[2.5]), vec![3.0]);
    }
}
