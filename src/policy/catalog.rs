//! The policy database: every policy's name, family, parameters and formula.

use std::fmt;

use serde::Serialize;

use super::Node;
use super::error::SpecError;
use super::params::{Args, Def, Param};
use super::{hf, lrbench, plateau, torch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// LRBench (git-disl/LRBench) `getLRFunction` policies.
    Lrbench,
    /// `torch.optim.lr_scheduler` classes.
    Pytorch,
    /// Hugging Face transformers `get_scheduler` names.
    Hf,
}

impl Family {
    pub fn label(self) -> &'static str {
        match self {
            Family::Lrbench => "LRBench",
            Family::Pytorch => "PyTorch",
            Family::Hf => "Hugging Face",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        match s.to_ascii_lowercase().as_str() {
            "lrbench" => Some(Family::Lrbench),
            "pytorch" | "torch" => Some(Family::Pytorch),
            "hf" | "huggingface" | "hugging-face" | "transformers" => Some(Family::Hf),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

pub type Builder = fn(&Args) -> Result<Node, SpecError>;

pub struct PolicyInfo {
    pub name: &'static str,
    pub family: Family,
    pub summary: &'static str,
    /// The formula in plain text, t = update index from 0.
    pub formula: &'static str,
    pub params: &'static [Param],
    /// True when the LR depends on observed metrics, not only on t.
    pub stateful: bool,
    pub build: Builder,
    /// A filled-in example spec, used by `policy show` and the picker preview.
    pub example: &'static str,
}

impl fmt::Debug for PolicyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyInfo({})", self.name)
    }
}

impl PolicyInfo {
    pub fn required(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.default == Def::Required)
    }
}

/// Every policy in the database, by family.
pub fn all() -> impl Iterator<Item = &'static PolicyInfo> {
    lrbench::POLICIES
        .iter()
        .chain(torch::POLICIES.iter())
        .chain(hf::POLICIES.iter())
        .chain(plateau::POLICIES.iter())
}

/// Case-insensitive lookup. Also accepts HF's `get_scheduler` aliases.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    let name = match name.to_ascii_lowercase().as_str() {
        "cosine_with_hard_restarts" => "cosine_with_restarts".to_string(),
        "wsd" => "warmup_stable_decay".to_string(),
        "reduce_lr_on_plateau" => "ReduceLROnPlateau".to_string(),
        _ => name.to_string(),
    };
    all().find(|p| p.name.eq_ignore_ascii_case(&name))
}

/// Up to `n` names closest to `input` (case-insensitive), best first.
pub fn closest<'a>(input: &str, names: impl Iterator<Item = &'a str>, n: usize) -> Vec<&'a str> {
    let input = input.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = names
        .map(|name| {
            let lower = name.to_ascii_lowercase();
            let mut score = strsim::jaro_winkler(&input, &lower);
            if lower.starts_with(&input) || input.starts_with(&lower) {
                score += 0.1;
            }
            (score, name)
        })
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(n).map(|(_, name)| name).collect()
}

pub fn unknown_name_error(src: &str, start: usize, end: usize, name: &str) -> SpecError {
    let suggestions = closest(name, all().map(|p| p.name), 3);
    let e = SpecError::at(src, start, end, format!("unknown policy '{name}'"));
    if suggestions.is_empty() {
        e.with_help("`lrtop policy list` shows every policy")
    } else {
        e.with_help(format!(
            "closest known policies: {} (`lrtop policy list` shows all)",
            suggestions.join(", ")
        ))
    }
}
