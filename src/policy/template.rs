//! A sensible filled-in spec of any policy for a run of a given length and
//! peak learning rate: what the policy picker offers and previews.

use super::catalog::PolicyInfo;
use super::params::{Def, Kind};
use super::spec::format_number;

/// Rounds to 3 significant digits so specs stay readable.
fn round3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = 10f64.powf(x.abs().log10().floor() - 2.0);
    (x / magnitude).round() * magnitude
}

fn count(x: f64) -> String {
    format_number(x.round().max(1.0))
}

/// The value a parameter gets in the template, or None to leave it out.
fn value_for(info: &PolicyInfo, name: &str, kind: Kind, steps: u64, lr: f64) -> Option<String> {
    let n = steps.max(8) as f64;
    let lr_s = |x: f64| format_number(round3(x));
    let v = match (info.name, name) {
        // The cosine of LRBench spans l; its period is 2l.
        ("COS" | "UPCOS", "l") => count(n),
        ("POLY", "l") => count(n),
        ("SIG", "l") => count(n / 2.0),
        ("SIG", "gamma") => format_number(round3(-10.0 / n)),
        ("STEP", "l") => count(n / 4.0),
        ("STEP", "gamma") => "0.5".into(),
        ("NSTEP", "l") => format!("[{},{}]", count(n / 2.0), count(n * 0.75)),
        ("NSTEP", "gamma") => "0.1".into(),
        ("EXP", "gamma") => format_number(round3(0.01f64.powf(1.0 / n)).min(0.9999)),
        ("INV", "gamma") => format_number(round3(10.0 / n)),
        ("INV", "p") => "0.75".into(),
        ("POLY", "p") => "2".into(),
        (_, "gamma") if info.name.ends_with("EXP") => {
            format_number(round3(0.1f64.powf(1.0 / n)).min(0.9999))
        }
        // Cyclic and restart families: four cycles over the run.
        (_, "l") if info.name.contains("RSW") => count(n / 4.0),
        (_, "l") => count(n / 8.0),
        (_, "k0") => lr_s(lr / 10.0),
        (_, "k1") => lr_s(lr),
        ("CyclicLR", "base_lr") => lr_s(lr / 10.0),
        ("CyclicLR", "max_lr") => lr_s(lr),
        ("CyclicLR", "step_size_up") => count(n / 8.0),
        ("CyclicLR", "mode") => "triangular2".into(),
        ("OneCycleLR", "max_lr") => lr_s(lr),
        ("OneCycleLR", "total_steps") => count(n),
        ("StepLR", "step_size") => count(n / 4.0),
        ("StepLR", "gamma") => "0.5".into(),
        ("MultiStepLR", "milestones") => format!("[{},{}]", count(n / 2.0), count(n * 0.75)),
        ("ExponentialLR", "gamma") => format_number(round3(0.01f64.powf(1.0 / n)).min(0.9999)),
        ("LinearLR" | "ConstantLR", "total_iters") => count(n / 10.0),
        ("PolynomialLR", "total_iters") => count(n),
        ("CosineAnnealingLR", "T_max") => count(n),
        ("CosineAnnealingWarmRestarts", "T_0") => count(n / 7.0),
        ("CosineAnnealingWarmRestarts", "T_mult") => "2".into(),
        ("ReduceLROnPlateau", "factor") => "0.5".into(),
        ("ReduceLROnPlateau", "patience") => "2".into(),
        ("ChangeLROnPlateau", "policies") => format!(
            "[COS(k0={},k1={},l={}),FIX(k0={})]",
            lr_s(lr / 10.0),
            lr_s(lr),
            count(n / 4.0),
            lr_s(lr / 20.0)
        ),
        ("ChangeLROnPlateau", "patience") => "2".into(),
        (_, "num_warmup_steps") => count(n / 10.0),
        (_, "num_training_steps") => count(n),
        (_, "num_decay_steps") => count(n / 5.0),
        (_, "min_lr_rate") => "0.1".into(),
        (_, "num_cycles") if info.name == "cosine_with_restarts" => "3".into(),
        // These schedulers override the optimizer's lr; leave it out.
        ("CyclicLR" | "OneCycleLR", "lr") => return None,
        (_, "lr") => lr_s(lr),
        _ => {
            return match info
                .params
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.default)
            {
                Some(Def::Required) => Some(match kind {
                    Kind::Lr => lr_s(lr),
                    Kind::PosCount | Kind::Count => count(n / 4.0),
                    _ => "1".into(),
                }),
                _ => None,
            };
        }
    };
    Some(v)
}

/// A spec of `info` scaled to a run of `steps` updates peaking near `lr`.
pub fn for_run(info: &PolicyInfo, steps: u64, lr: f64) -> String {
    let args: Vec<String> = info
        .params
        .iter()
        .filter_map(|p| {
            value_for(info, p.name, p.kind, steps, lr).map(|v| format!("{}={v}", p.name))
        })
        .collect();
    format!("{}({})", info.name, args.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, catalog};

    #[test]
    fn every_policy_has_a_template_that_parses() {
        for steps in [8, 300, 1000, 100_000] {
            for lr in [1e-4, 0.05, 1.0] {
                for info in catalog::all() {
                    let spec = for_run(info, steps, lr);
                    let p = Policy::parse(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
                    for t in [0, steps / 2, steps - 1] {
                        let v = p.lr(t);
                        assert!(
                            v.is_finite() && v >= 0.0 && v <= lr * 1.01,
                            "{spec} at {t}: {v}"
                        );
                    }
                }
            }
        }
    }
}
