//! Policies driven by an observed metric: PyTorch's ReduceLROnPlateau and
//! LRBench's ChangeLROnPlateau idea (move along a list of policies when the
//! metric stops improving). Their descriptions live here; their run-time state
//! lives in `super::scheduler`.

use super::catalog::{Family, PolicyInfo};
use super::error::SpecError;
use super::params::{Args, Kind, Param, dflt, req};
use super::{Node, Policy};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateauRule {
    pub maximize: bool,
    pub patience: u64,
    pub threshold: f64,
    pub relative: bool,
    pub cooldown: u64,
}

impl PlateauRule {
    /// PyTorch's `is_better`.
    pub fn is_better(&self, current: f64, best: f64) -> bool {
        match (self.maximize, self.relative) {
            (false, true) => current < best * (1.0 - self.threshold),
            (false, false) => current < best - self.threshold,
            (true, true) => current > best * (self.threshold + 1.0),
            (true, false) => current > best + self.threshold,
        }
    }

    pub fn initial_best(&self) -> f64 {
        if self.maximize {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }
}

/// The bookkeeping PyTorch's ReduceLROnPlateau does on each `step(metric)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateauTracker {
    pub rule: PlateauRule,
    pub best: f64,
    pub num_bad: u64,
    pub cooldown_counter: u64,
}

impl PlateauTracker {
    pub fn new(rule: PlateauRule) -> Self {
        PlateauTracker {
            rule,
            best: rule.initial_best(),
            num_bad: 0,
            cooldown_counter: 0,
        }
    }

    /// Feeds one observation; true when the metric has plateaued (the caller acts).
    pub fn observe(&mut self, current: f64) -> bool {
        if self.rule.is_better(current, self.best) {
            self.best = current;
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > self.rule.patience {
            self.cooldown_counter = self.rule.cooldown;
            self.num_bad = 0;
            return true;
        }
        false
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReduceOnPlateau {
    pub lr: f64,
    pub factor: f64,
    pub min_lr: f64,
    pub eps: f64,
    pub rule: PlateauRule,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeOnPlateau {
    pub policies: Vec<Policy>,
    pub start_index: usize,
    pub cycle: bool,
    pub rule: PlateauRule,
}

fn rule(a: &Args) -> PlateauRule {
    PlateauRule {
        maximize: a.choice("mode") == "max",
        patience: a.count("patience"),
        threshold: a.num("threshold"),
        relative: a.choice("threshold_mode") == "rel",
        cooldown: a.count("cooldown"),
    }
}

fn build_reduce(a: &Args) -> Result<Node, SpecError> {
    let factor = a.num("factor");
    if factor >= 1.0 {
        return Err(a.err(
            "factor",
            "'factor' must be < 1.0 (it multiplies the LR on each plateau)",
        ));
    }
    Ok(Node::Reduce(ReduceOnPlateau {
        lr: a.num("lr"),
        factor,
        min_lr: a.num("min_lr"),
        eps: a.num("eps"),
        rule: rule(a),
    }))
}

fn build_change(a: &Args) -> Result<Node, SpecError> {
    let policies = a.policies("policies");
    let start_index = a.count("start_index") as usize;
    if start_index >= policies.len() {
        return Err(a.err(
            "start_index",
            format!(
                "start_index {start_index} is past the {} policies given",
                policies.len()
            ),
        ));
    }
    if policies.iter().any(Policy::is_stateful) {
        return Err(a.err(
            "policies",
            "the policies of ChangeLROnPlateau must not depend on metrics themselves",
        ));
    }
    Ok(Node::Change(ChangeOnPlateau {
        policies,
        start_index,
        cycle: a.flag("cycle"),
        rule: rule(a),
    }))
}

const MODE: Param = dflt(
    "mode",
    Kind::Choice(&["min", "max"]),
    "min",
    "min for a loss, max for an accuracy",
);
const THRESHOLD_MODE: Param = dflt(
    "threshold_mode",
    Kind::Choice(&["rel", "abs"]),
    "rel",
    "threshold relative to the best value or absolute",
);
const COOLDOWN: Param = dflt(
    "cooldown",
    Kind::Count,
    "0",
    "observations to wait after an action",
);

const P_REDUCE: &[Param] = &[
    req("lr", Kind::Lr, "the optimizer's initial learning rate"),
    MODE,
    dflt("factor", Kind::Positive, "0.1", "new_lr = lr * factor"),
    dflt(
        "patience",
        Kind::Count,
        "10",
        "observations with no improvement before reducing",
    ),
    dflt(
        "threshold",
        Kind::NonNeg,
        "1e-4",
        "minimum change that counts as improvement",
    ),
    THRESHOLD_MODE,
    COOLDOWN,
    dflt("min_lr", Kind::Lr, "0", "lower bound on the learning rate"),
    dflt(
        "eps",
        Kind::NonNeg,
        "1e-8",
        "reductions smaller than eps are ignored",
    ),
];

const P_CHANGE: &[Param] = &[
    req(
        "policies",
        Kind::Policies,
        "policies to move through, e.g. [COS(...), TRI(...), FIX(...)]",
    ),
    dflt(
        "start_index",
        Kind::Count,
        "0",
        "index of the first active policy",
    ),
    MODE,
    dflt(
        "patience",
        Kind::Count,
        "5",
        "observations with no improvement before switching",
    ),
    dflt(
        "threshold",
        Kind::NonNeg,
        "0.01",
        "minimum change that counts as improvement",
    ),
    THRESHOLD_MODE,
    dflt(
        "cooldown",
        Kind::Count,
        "0",
        "observations to wait after a switch",
    ),
    dflt(
        "cycle",
        Kind::Flag,
        "false",
        "after the last policy, go back to the first",
    ),
];

pub static POLICIES: &[PolicyInfo] = &[
    PolicyInfo {
        name: "ReduceLROnPlateau",
        family: Family::Pytorch,
        summary: "multiply the LR by factor when the metric stops improving",
        formula: "lr * factor^(plateaus so far), at least min_lr",
        params: P_REDUCE,
        stateful: true,
        build: build_reduce,
        example: "ReduceLROnPlateau(lr=0.1,factor=0.5,patience=3)",
    },
    PolicyInfo {
        name: "ChangeLROnPlateau",
        family: Family::Lrbench,
        summary: "switch to the next policy of a list when the metric plateaus; each starts at its own t=0",
        formula: "policies[i](t - t_switch), i advances on each plateau",
        params: P_CHANGE,
        stateful: true,
        build: build_change,
        example: "ChangeLROnPlateau(policies=[TRI(k0=0.01,k1=0.1,l=50),COS(k0=0.001,k1=0.05,l=500)],patience=3)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_matches_pytorch_patience_and_cooldown() {
        let rule = PlateauRule {
            maximize: false,
            patience: 2,
            threshold: 0.0,
            relative: true,
            cooldown: 1,
        };
        let mut t = PlateauTracker::new(rule);
        let fired: Vec<bool> = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
            .iter()
            .map(|&m| t.observe(m))
            .collect();
        // best=1; bad 1, 2, 3 -> fire; cooldown eats one; bad 1, 2, then better.
        assert_eq!(
            fired,
            vec![false, false, false, true, false, false, false, false]
        );
    }
}
