//! The learning-rate policy database: LRBench's functions, PyTorch's and
//! Hugging Face's schedulers, composites and metric-driven policies, behind
//! one spec language. A policy maps the update index t = 0, 1, ... to a
//! learning rate.

pub mod catalog;
pub mod error;
mod hf;
mod lrbench;
pub mod params;
mod plateau;
mod scheduler;
pub mod spec;
pub mod template;
mod torch;

use std::fmt;

pub use catalog::{Family, PolicyInfo};
pub use error::SpecError;
pub use scheduler::Scheduler;
use spec::Call;

/// One compiled policy function.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    LrBench(lrbench::LrBench),
    Torch(torch::Torch),
    Hf(hf::Hf),
    Reduce(plateau::ReduceOnPlateau),
    Change(plateau::ChangeOnPlateau),
}

impl Node {
    /// The LR at t with no metric observed (stateful policies at their start).
    fn lr(&self, t: u64) -> f64 {
        match self {
            Node::LrBench(p) => p.lr(t),
            Node::Torch(p) => p.lr(t),
            Node::Hf(p) => p.lr(t),
            Node::Reduce(p) => p.lr,
            Node::Change(p) => p.policies[p.start_index].lr(t),
        }
    }

    fn horizon(&self) -> Option<u64> {
        match self {
            Node::LrBench(p) => p.horizon(),
            Node::Torch(p) => p.horizon(),
            Node::Hf(p) => p.horizon(),
            Node::Reduce(_) => None,
            Node::Change(p) => p.policies.iter().filter_map(Policy::horizon).max(),
        }
    }
}

/// One stage of a policy: a function and, unless it is the last, its length.
#[derive(Debug, Clone)]
pub struct Stage {
    pub info: &'static PolicyInfo,
    pub node: Node,
    /// Canonical text of the call, e.g. `COS(k0=0.001,k1=0.1,l=100)`.
    pub text: String,
    pub length: Option<u64>,
}

impl PartialEq for Stage {
    fn eq(&self, other: &Self) -> bool {
        self.info.name == other.info.name && self.node == other.node && self.length == other.length
    }
}

/// A learning-rate policy: one or more stages, each seeing local time.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    stages: Vec<Stage>,
}

impl Policy {
    /// Parses and checks a spec, e.g. `COS(k0=0.001,k1=0.1,l=500)` or
    /// `LinearLR(lr=0.1,start_factor=0.1,total_iters=50) for 50 then CosineAnnealingLR(lr=0.1,T_max=350)`.
    pub fn parse(src: &str) -> Result<Policy, SpecError> {
        let ast = spec::parse(src)?;
        let calls: Vec<(&Call, Option<&spec::Spanned<u64>>)> = ast
            .stages
            .iter()
            .map(|s| (&s.call, s.length.as_ref()))
            .collect();
        let last = calls.len() - 1;
        for (i, (call, length)) in calls.iter().enumerate() {
            if i < last && length.is_none() {
                return Err(SpecError::at(
                    src,
                    call.name.start,
                    call.end,
                    format!("stage {} ({}) has no length", i + 1, call.name.value),
                )
                .with_help("every stage but the last needs `for N` (N updates), e.g. `LinearLR(...) for 100 then ...`"));
            }
        }
        let calls: Vec<(&Call, Option<u64>)> = calls
            .iter()
            .map(|(c, l)| (*c, l.map(|l| l.value)))
            .collect();
        let policy = Policy::from_calls(src, &calls)?;
        // Parameters that overflow (a period of 1e-320, a gamma of 1e300)
        // give NaN or infinite LRs: refused here, with where it happens.
        for t in [0, 1, 2, 3, 10, 100, 1_000, 10_000, 100_000] {
            let lr = policy.lr(t);
            if !lr.is_finite() {
                return Err(SpecError::at(
                    src,
                    0,
                    src.len(),
                    format!("this policy gives an LR of {lr} at t = {t}"),
                )
                .with_help("a parameter overflows the arithmetic: check periods near 0 and factors far from 1"));
            }
        }
        Ok(policy)
    }

    pub(crate) fn from_calls(
        src: &str,
        calls: &[(&Call, Option<u64>)],
    ) -> Result<Policy, SpecError> {
        let mut stages = Vec::with_capacity(calls.len());
        for &(call, length) in calls {
            let info = catalog::find(&call.name.value).ok_or_else(|| {
                catalog::unknown_name_error(src, call.name.start, call.name.end, &call.name.value)
            })?;
            let args = params::Args::resolve(src, call, info)?;
            let node = (info.build)(&args)?;
            stages.push(Stage {
                info,
                node,
                text: args.canonical(),
                length,
            });
        }
        Ok(Policy { stages })
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage that runs update t, and t relative to the stage's start.
    pub fn locate(&self, t: u64) -> (usize, u64) {
        let mut start = 0u64;
        for (i, stage) in self.stages.iter().enumerate() {
            match stage.length {
                Some(len) if i + 1 < self.stages.len() && t >= start.saturating_add(len) => {
                    start = start.saturating_add(len);
                }
                _ => return (i, t - start),
            }
        }
        (self.stages.len() - 1, t - start)
    }

    /// The learning rate for update t (0-based). Metric-driven policies give
    /// their value before any observation; use a [`Scheduler`] to feed them.
    pub fn lr(&self, t: u64) -> f64 {
        let (i, local) = self.locate(t);
        self.stages[i].node.lr(local)
    }

    /// LRs for t = 0..steps.
    pub fn sample(&self, steps: u64) -> Vec<f64> {
        (0..steps).map(|t| self.lr(t)).collect()
    }

    pub fn is_stateful(&self) -> bool {
        self.stages.iter().any(|s| s.info.stateful)
    }

    /// A natural number of updates to show this policy over, if it has one.
    pub fn horizon(&self) -> Option<u64> {
        let fixed: u64 = self.stages[..self.stages.len() - 1]
            .iter()
            .map(|s| s.length.unwrap_or(0))
            .fold(0, u64::saturating_add);
        let last = self.stages.last()?;
        match (last.length, last.node.horizon()) {
            (Some(len), _) if self.stages.len() > 1 => Some(fixed.saturating_add(len)),
            (_, Some(h)) => Some(fixed.saturating_add(h)),
            (_, None) if fixed > 0 => Some(fixed.saturating_add(fixed / 2)),
            _ => None,
        }
    }

    /// A short label for legends: the names of the stages.
    pub fn short_name(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.info.name)
            .collect::<Vec<_>>()
            .join("+")
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" then ")?;
            }
            f.write_str(&stage.text)?;
            if let Some(len) = stage.length {
                write!(f, " for {len}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Policy {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::parse(s)
    }
}

#[cfg(test)]
mod tests;
