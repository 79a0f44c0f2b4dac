//! Search spaces over policies: a spec where a value may be a set `{a,b,c}`
//! (grid search) or a distribution `logu(lo,hi)`, `u(lo,hi)`, `int(lo,hi)`
//! (random search), e.g. `COS(k0={0.001,0.01},k1=logu(0.05,0.5),l=500)`.
//! A TOML file can hold larger spaces.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::policy::Policy;
use crate::policy::spec::format_number;

#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Set(Vec<String>),
    LogUniform(f64, f64),
    Uniform(f64, f64),
    Int(i64, i64),
}

impl Dim {
    fn sample(&self, rng: &mut impl Rng) -> String {
        match self {
            Dim::Set(items) => items[rng.random_range(0..items.len())].clone(),
            Dim::LogUniform(lo, hi) => format_number(round_sig(
                (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp(),
            )),
            Dim::Uniform(lo, hi) => format_number(round_sig(lo + rng.random::<f64>() * (hi - lo))),
            Dim::Int(lo, hi) => rng.random_range(*lo..=*hi).to_string(),
        }
    }
}

/// Four significant digits keep sampled specs readable. Rounding through
/// decimal text gives the double nearest the short decimal (scaling by a
/// power of ten would leave digits like 0.0012340000000000001).
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.3e}").parse().unwrap_or(x)
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Dim(usize),
}

/// One spec template with its free dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    segments: Vec<Segment>,
    pub dims: Vec<Dim>,
    pub source: String,
}

fn split_top_level(body: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_string());
    }
    items
}

/// The closing bracket matching the opener at `open`.
fn matching(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn two_numbers(name: &str, body: &str) -> Result<(f64, f64), String> {
    let items = split_top_level(body);
    let parse = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("{name}(...): '{s}' is not a number"))
    };
    match items.as_slice() {
        [a, b] => {
            let (lo, hi) = (parse(a)?, parse(b)?);
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(format!("{name}({a},{b}): needs lo < hi"));
            }
            Ok((lo, hi))
        }
        _ => Err(format!("{name}(...) takes two numbers, got '{body}'")),
    }
}

impl Space {
    pub fn parse(source: &str) -> Result<Space, String> {
        let mut segments = Vec::new();
        let mut dims = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        let bytes = source.as_bytes();
        while i < source.len() {
            // A value position: right after '=' or after the keyword `for`.
            let after_eq = text.trim_end().ends_with('=')
                || text.trim_end().to_ascii_lowercase().ends_with(" for");
            let rest = &source[i..];
            let dim = if after_eq && rest.starts_with('{') {
                let close = matching(source, i)
                    .ok_or_else(|| format!("unclosed '{{' at column {}", i + 1))?;
                let items = split_top_level(&source[i + 1..close]);
                if items.is_empty() {
                    return Err(format!("empty set at column {}", i + 1));
                }
                Some((Dim::Set(items), close + 1))
            } else if after_eq {
                let mut found = None;
                for name in ["logu", "int", "u"] {
                    if rest.starts_with(&format!("{name}(")) {
                        let open = i + name.len();
                        let close = matching(source, open)
                            .ok_or_else(|| format!("unclosed '{name}(' at column {}", i + 1))?;
                        let (lo, hi) = two_numbers(name, &source[open + 1..close])?;
                        let dim = match name {
                            "logu" if lo <= 0.0 => {
                                return Err(format!("logu({lo},{hi}): bounds must be > 0"));
                            }
                            "logu" => Dim::LogUniform(lo, hi),
                            "int" if lo.fract() != 0.0 || hi.fract() != 0.0 => {
                                return Err(format!(
                                    "int({lo},{hi}): bounds must be whole numbers"
                                ));
                            }
                            "int" => Dim::Int(lo as i64, hi as i64),
                            _ => Dim::Uniform(lo, hi),
                        };
                        found = Some((dim, close + 1));
                        break;
                    }
                }
                found
            } else {
                None
            };
            match dim {
                Some((dim, next)) => {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                    segments.push(Segment::Dim(dims.len()));
                    dims.push(dim);
                    i = next;
                }
                None => {
                    let c = source[i..].chars().next().unwrap_or(bytes[i] as char);
                    text.push(c);
                    i += c.len_utf8();
                }
            }
        }
        segments.push(Segment::Text(text));
        Ok(Space {
            segments,
            dims,
            source: source.to_string(),
        })
    }

    fn fill(&self, values: &[String]) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.as_str(),
                Segment::Dim(k) => values[*k].as_str(),
            })
            .collect()
    }

    pub fn is_grid(&self) -> bool {
        self.dims.iter().all(|d| matches!(d, Dim::Set(_)))
    }

    /// The number of grid points (saturating).
    pub fn grid_size(&self) -> usize {
        self.dims
            .iter()
            .map(|d| match d {
                Dim::Set(items) => items.len(),
                _ => 1,
            })
            .fold(1usize, usize::saturating_mul)
    }

    /// Every combination of the sets.
    pub fn grid(&self) -> Result<Vec<String>, String> {
        if !self.is_grid() {
            return Err(format!(
                "'{}' has distributions (logu/u/int): use --search random",
                self.source
            ));
        }
        if self.grid_size() > MAX_TRIALS {
            return Err(format!(
                "'{}' makes {} grid points, more than lrtop runs ({MAX_TRIALS}): use --search random",
                self.source,
                self.grid_size()
            ));
        }
        let sets: Vec<&Vec<String>> = self
            .dims
            .iter()
            .map(|d| match d {
                Dim::Set(items) => items,
                _ => unreachable!("checked by is_grid"),
            })
            .collect();
        let mut out = vec![Vec::<String>::new()];
        for set in sets {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    set.iter().map(move |v| {
                        let mut next = prefix.clone();
                        next.push(v.clone());
                        next
                    })
                })
                .collect();
        }
        Ok(out.iter().map(|values| self.fill(values)).collect())
    }

    pub fn sample(&self, rng: &mut impl Rng) -> String {
        let values: Vec<String> = self.dims.iter().map(|d| d.sample(rng)).collect();
        self.fill(&values)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    Grid,
    Random,
}

/// The most trials one search may have.
pub const MAX_TRIALS: usize = 10_000;

/// Expands templates into concrete, checked policy specs.
pub fn expand(
    templates: &[String],
    search: Search,
    trials: usize,
    seed: u64,
) -> Result<Vec<String>, String> {
    if templates.is_empty() {
        return Err("no policy to search: give --policy SPEC (or a --space file)".into());
    }
    if trials > MAX_TRIALS {
        return Err(format!(
            "{trials} trials is more than lrtop runs ({MAX_TRIALS})"
        ));
    }
    let spaces: Vec<Space> = templates
        .iter()
        .map(|t| Space::parse(t))
        .collect::<Result<_, _>>()?;
    let specs = match search {
        Search::Grid => {
            let mut all = Vec::new();
            for space in &spaces {
                all.extend(space.grid()?);
                if all.len() > MAX_TRIALS {
                    return Err(format!(
                        "the grid has more than {MAX_TRIALS} points: use --search random"
                    ));
                }
            }
            all
        }
        Search::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..trials.max(1))
                .map(|i| spaces[i % spaces.len()].sample(&mut rng))
                .collect()
        }
    };
    for spec in &specs {
        Policy::parse(spec).map_err(|e| format!("trial spec '{spec}': {e}"))?;
    }
    Ok(specs)
}

/// `tune --space FILE`: a TOML form for larger spaces.
///
/// ```toml
/// search = "random"      # or "grid"
/// trials = 20
/// [[policy]]
/// spec = "COS(k0=logu(1e-4,1e-2),k1={0.05,0.1},l=500)"
/// [[policy]]
/// name = "OneCycleLR"
/// max_lr = [0.05, 0.1, 0.2]          # a list is a set
/// total_steps = 1000
/// pct_start = { u = [0.1, 0.4] }     # or { logu = [lo, hi] }, { int = [lo, hi] }
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceFile {
    pub search: Option<String>,
    pub trials: Option<usize>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub policy: Vec<toml::Table>,
}

impl SpaceFile {
    pub fn load(path: &Path) -> Result<SpaceFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The policy templates in spec syntax.
    pub fn templates(&self) -> Result<Vec<String>, String> {
        self.policy
            .iter()
            .enumerate()
            .map(|(i, table)| table_to_template(i, table))
            .collect()
    }
}

fn toml_scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(format_number(*f)),
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("unsupported value {other}")),
    }
}

fn table_to_template(i: usize, table: &toml::Table) -> Result<String, String> {
    if let Some(spec) = table.get("spec") {
        return spec
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("policy {}: spec must be a string", i + 1));
    }
    let name = table.get("name").and_then(|v| v.as_str()).ok_or_else(|| {
        format!(
            "policy {}: needs `spec = \"...\"` or `name = \"...\"`",
            i + 1
        )
    })?;
    let mut args = Vec::new();
    for (key, value) in table {
        if key == "name" {
            continue;
        }
        let text = match value {
            toml::Value::Array(items) => {
                let items: Vec<String> = items.iter().map(toml_scalar).collect::<Result<_, _>>()?;
                format!("{{{}}}", items.join(","))
            }
            toml::Value::Table(dist) => {
                let (kind, bounds) = dist
                    .iter()
                    .next()
                    .filter(|_| dist.len() == 1)
                    .ok_or_else(|| format!("policy {}: {key}: write one of {{ u = [lo, hi] }}, {{ logu = [lo, hi] }}, {{ int = [lo, hi] }}", i + 1))?;
                if !["u", "logu", "int"].contains(&kind.as_str()) {
                    return Err(format!(
                        "policy {}: {key}: unknown distribution '{kind}' (u, logu or int)",
                        i + 1
                    ));
                }
                let bounds = bounds
                    .as_array()
                    .filter(|b| b.len() == 2)
                    .ok_or_else(|| format!("policy {}: {key}: {kind} needs [lo, hi]", i + 1))?;
                format!(
                    "{kind}({},{})",
                    toml_scalar(&bounds[0])?,
                    toml_scalar(&bounds[1])?
                )
            }
            scalar => toml_scalar(scalar)?,
        };
        args.push(format!("{key}={text}"));
    }
    Ok(format!("{name}({})", args.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_expands_sets_in_order() {
        let specs = expand(
            &[
                "FIX(k0={0.1,0.01})".into(),
                "COS(k0=0.001,k1={0.1,0.2},l={10,20})".into(),
            ],
            Search::Grid,
            0,
            0,
        )
        .unwrap();
        assert_eq!(
            specs,
            vec![
                "FIX(k0=0.1)",
                "FIX(k0=0.01)",
                "COS(k0=0.001,k1=0.1,l=10)",
                "COS(k0=0.001,k1=0.1,l=20)",
                "COS(k0=0.001,k1=0.2,l=10)",
                "COS(k0=0.001,k1=0.2,l=20)",
            ]
        );
    }

    #[test]
    fn random_search_is_seeded_and_in_bounds() {
        let t = vec!["TRI(k0=logu(1e-4,1e-2),k1=u(0.05,0.5),l=int(10,100))".to_string()];
        let a = expand(&t, Search::Random, 20, 7).unwrap();
        let b = expand(&t, Search::Random, 20, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 20);
        for spec in &a {
            let p = Policy::parse(spec).unwrap();
            assert!(p.lr(0) >= 1e-4 && p.lr(0) <= 1e-2, "{spec}");
        }
        assert!(expand(&t, Search::Grid, 0, 0).is_err());
    }

    #[test]
    fn stage_lengths_can_vary_and_errors_are_clear() {
        let specs = expand(
            &["FIX(k0=0.1) for {10,20} then FIX(k0=0.01)".into()],
            Search::Grid,
            0,
            0,
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        assert!(
            Space::parse("FIX(k0={0.1")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            Space::parse("FIX(k0=logu(0,1))")
                .unwrap_err()
                .contains("> 0")
        );
        assert!(
            expand(&["FIX(k0={-1,1})".into()], Search::Grid, 0, 0)
                .unwrap_err()
                .contains("negative")
        );
    }

    #[test]
    fn sampled_values_are_short_decimals() {
        let noisy = 0.001234 * (1.0 + 4.0 * f64::EPSILON);
        assert_ne!(noisy, 0.001234);
        assert_eq!(round_sig(noisy), 0.001234);
        assert_eq!(format_number(round_sig(0.123456789)), "0.1235");
        assert_eq!(format_number(round_sig(12345.6)), "12350");
    }

    #[test]
    fn empty_and_huge_searches_are_errors() {
        assert!(
            expand(&[], Search::Grid, 0, 0)
                .unwrap_err()
                .contains("--policy")
        );
        let huge = "COS(k0={1,2,3,4,5,6,7,8,9,10},k1={1,2,3,4,5,6,7,8,9,10},l={1,2,3,4,5,6,7,8,9,10},gamma={1,2,3,4,5,6,7,8,9,10,11})";
        assert!(
            expand(&[huge.into()], Search::Grid, 0, 0)
                .unwrap_err()
                .contains("random")
        );
    }

    #[test]
    fn toml_distribution_kinds_are_checked() {
        let file: SpaceFile =
            toml::from_str("[[policy]]\nname = \"FIX\"\nk0 = { normal = [0.1, 0.2] }\n").unwrap();
        assert!(
            file.templates()
                .unwrap_err()
                .contains("unknown distribution")
        );
    }

    #[test]
    fn toml_space_file() {
        let file: SpaceFile = toml::from_str(
            "search = \"grid\"\n[[policy]]\nname = \"StepLR\"\nlr = [0.1, 0.05]\nstep_size = 100\n[[policy]]\nspec = \"FIX(k0={1,2})\"\n",
        )
        .unwrap();
        let templates = file.templates().unwrap();
        let specs = expand(&templates, Search::Grid, 0, 0).unwrap();
        assert_eq!(specs.len(), 4);
        assert!(specs[0].starts_with("StepLR("), "{}", specs[0]);
    }
}
