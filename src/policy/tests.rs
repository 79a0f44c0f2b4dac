//! Reference values, round trips, errors and properties of the whole database.

use super::*;
use proptest::prelude::*;

fn rel_err(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

#[derive(serde::Deserialize)]
struct Golden {
    spec: String,
    steps: u64,
    lr: Vec<f64>,
    /// Metric observations (step, value) for metric-driven policies.
    #[serde(default)]
    metrics: Vec<(u64, f64)>,
}

fn golden_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("tests/fixtures/golden-public.json")];
    let shared = root.join("../shared/reference-schedules/golden-public.json");
    if shared.exists() {
        files.push(shared);
    }
    let extra = root.join("tests/fixtures/reference-extra.json");
    if extra.exists() {
        files.push(extra);
    }
    files
}

#[test]
fn reproduces_reference_schedules() {
    let mut checked = 0;
    for file in golden_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let cases: Vec<Golden> = serde_json::from_str(&text).unwrap();
        for case in cases {
            let policy = Policy::parse(&case.spec).unwrap_or_else(|e| panic!("{}: {e}", case.spec));
            assert_eq!(case.lr.len() as u64, case.steps);
            let mut scheduler = Scheduler::new(policy.clone());
            let mut observations = case.metrics.iter().peekable();
            for (t, &want) in case.lr.iter().enumerate() {
                while let Some(&&(step, value)) = observations.peek() {
                    if step > t as u64 {
                        break;
                    }
                    scheduler.observe(step, value);
                    observations.next();
                }
                let got = scheduler.lr(t as u64);
                if case.metrics.is_empty() {
                    assert_eq!(got.to_bits(), policy.lr(t as u64).to_bits());
                }
                let err = rel_err(got, want);
                assert!(
                    err <= 1e-6 || (got - want).abs() < 1e-15,
                    "{} at t={t}: got {got}, want {want} (rel err {err:e}) [{}]",
                    case.spec,
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 17);
}

#[test]
fn every_catalog_example_parses_and_round_trips() {
    for info in catalog::all() {
        let p = Policy::parse(info.example).unwrap_or_else(|e| panic!("{}: {e}", info.example));
        let printed = p.to_string();
        let again = Policy::parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(p, again, "{printed}");
        assert_eq!(printed, again.to_string());
        for t in 0..2000 {
            let lr = p.lr(t);
            assert!(lr.is_finite() && lr >= 0.0, "{} at {t}: {lr}", info.example);
        }
    }
}

#[test]
fn names_are_unique_and_case_insensitive() {
    let names: Vec<String> = catalog::all()
        .map(|p| p.name.to_ascii_lowercase())
        .collect();
    let mut dedup = names.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(names.len(), dedup.len());
    assert_eq!(
        Policy::parse("cos(k0=0.1,k1=1,l=10)").unwrap(),
        Policy::parse("COS(K0=0.1,k1=1,l=10)").unwrap()
    );
    assert_eq!(
        Policy::parse("Cosine(lr=1,num_training_steps=10)")
            .unwrap()
            .stages()[0]
            .info
            .name,
        "cosine"
    );
    assert_eq!(
        Policy::parse("cosineannealinglr(lr=1,T_max=10)")
            .unwrap()
            .stages()[0]
            .info
            .name,
        "CosineAnnealingLR"
    );
}

#[test]
fn lrbench_dict_form() {
    let dict =
        Policy::parse(r#"{"lrPolicy":"TRIEXP","k0":0.05,"k1":0.3,"l":50,"gamma":0.94}"#).unwrap();
    let spec = Policy::parse("TRIEXP(k0=0.05,k1=0.3,gamma=0.94,l=50)").unwrap();
    assert_eq!(dict, spec);
    assert_eq!(dict.to_string(), "TRIEXP(k0=0.05,k1=0.3,gamma=0.94,l=50)");
}

#[test]
fn lrbench_formulas_at_known_points() {
    let p = |s: &str| Policy::parse(s).unwrap();
    // POLY runs from k1 to k0 at t=l and stays there.
    let poly = p("POLY(k0=0.01,k1=0.1,p=0.5,l=100)");
    assert_eq!(poly.lr(0), 0.1);
    assert_eq!(poly.lr(100), 0.01);
    assert_eq!(poly.lr(150), 0.01);
    // COS has period 2l: k1 at 0, k0 at l, k1 again at 2l.
    let cos = p("COS(k0=0.01,k1=0.1,l=50)");
    assert_eq!(cos.lr(0), 0.1);
    assert!(rel_err(cos.lr(50), 0.01) < 1e-12);
    assert!(rel_err(cos.lr(100), 0.1) < 1e-12);
    // TRI: k0 at 0, k1 at l.
    let tri = p("TRI(k0=0.01,k1=0.1,l=50)");
    assert_eq!(tri.lr(0), 0.01);
    assert!(rel_err(tri.lr(50), 0.1) < 1e-12);
    // DTRI starts at the top.
    assert!(rel_err(p("DTRI(k0=0.01,k1=0.1,l=50)").lr(0), 0.1) < 1e-12);
    // NSTEP is a pure function of t: any order gives the same values.
    let nstep = p("NSTEP(k0=1,gamma=0.5,l=[10,20])");
    assert_eq!(
        [nstep.lr(25), nstep.lr(5), nstep.lr(15), nstep.lr(20)],
        [0.25, 1.0, 0.5, 0.25]
    );
    // RSW restarts at k0 then jumps near k1.
    let rsw = p("RSW(k0=0,k1=1,l=10)");
    assert_eq!(rsw.lr(0), 0.0);
    assert!(rel_err(rsw.lr(1), 0.9) < 1e-12);
}

#[test]
fn composite_uses_local_time() {
    let c =
        Policy::parse("EXP(k0=1,gamma=0.5) for 3 then EXP(k0=8,gamma=0.5) for 2 then FIX(k0=0.1)")
            .unwrap();
    assert_eq!(c.sample(7), vec![1.0, 0.5, 0.25, 8.0, 4.0, 0.1, 0.1]);
    assert_eq!(c.locate(4), (1, 1));
    assert_eq!(c.horizon(), Some(7));
}

#[test]
fn huge_integer_parameters_do_not_overflow() {
    // Found by fuzzing (policy_spec): T_0 * T_mult^2 overflowed in horizon().
    for spec in [
        "CosineAnnealingWarmRestarts(lr=0.1,T_0=50,T_mult=222222222224)",
        "StepLR(lr=0.1,step_size=9000000000000000)",
        "MultiStepLR(lr=0.1,milestones=[9000000000000000])",
        "LinearLR(lr=0.1,total_iters=9000000000000000)",
        "constant_with_warmup(lr=0.1,num_warmup_steps=9000000000000000)",
        "warmup_stable_decay(lr=0.1,num_warmup_steps=9000000000000000,num_stable_steps=9000000000000000,num_decay_steps=9000000000000000)",
        "FIX(k0=0.1) for 9000000000000000 then FIX(k0=0.2) for 9000000000000000 then FIX(k0=0.3)",
    ] {
        let policy: Policy = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert!(policy.horizon().is_some_and(|h| h > 0), "{spec}");
        for t in [0, 1, 1 << 40, u64::MAX] {
            assert!(policy.lr(t).is_finite(), "{spec} at {t}");
        }
    }
}

#[test]
fn errors_name_the_problem_and_position() {
    let err = |s: &str| Policy::parse(s).unwrap_err();
    let e = err("COSS(k0=0.1,k1=1,l=10)");
    assert!(e.message.contains("unknown policy 'COSS'"), "{e}");
    assert!(e.help.as_deref().unwrap().contains("COS"), "{e}");
    assert_eq!(e.column(), 1);

    let e = err("COS(k0=0.1,k1=1)");
    assert!(e.message.contains("needs parameter 'l'"), "{e}");

    let e = err("COS(k0=0.1,k1=1,l=10,gama=2)");
    assert!(e.message.contains("no parameter 'gama'"), "{e}");
    assert_eq!(e.column(), 22);

    let e = err("COS(k0=0.1,k1=1,l=0)");
    assert!(
        e.message.contains("period") && e.message.contains("positive"),
        "{e}"
    );
    assert_eq!(e.column(), 19);

    let e = err("StepLR(lr=-0.1,step_size=10)");
    assert!(e.message.contains("cannot be negative"), "{e}");
    assert_eq!(e.column(), 11);

    let e = err("FIX(k0=0.1) then FIX(k0=0.01)");
    assert!(e.message.contains("has no length"), "{e}");

    let e = err("CyclicLR(base_lr=0.1,max_lr=1,mode=square)");
    assert!(e.message.contains("triangular"), "{e}");

    let e = err("StepLR(lr=0.1,step_size=2.5)");
    assert!(e.message.contains("whole number"), "{e}");

    let e = err("OneCycleLR(max_lr=0.1)");
    assert!(e.message.contains("total_steps"), "{e}");

    let e = err("cosine_with_min_lr(lr=0.1,num_training_steps=10)");
    assert!(e.message.contains("min_lr"), "{e}");

    let e = err("COS(k0=0.1,k0=0.2,k1=1,l=3)");
    assert!(e.message.contains("twice"), "{e}");

    let e = err("COS(k0=nan,k1=1,l=3)");
    assert!(e.message.contains("k0"), "{e}");
}

#[test]
fn display_shows_a_caret_under_the_problem() {
    let e = Policy::parse("COS(k0=0.1,k1=1,l=-5)").unwrap_err();
    let text = e.to_string();
    let caret = format!("  COS(k0=0.1,k1=1,l=-5)\n  {}^^", " ".repeat(18));
    assert!(text.contains(&caret), "{text}");
}

fn lrbench_spec() -> impl Strategy<Value = String> {
    let names = catalog::all()
        .filter(|p| p.family == Family::Lrbench && !p.stateful && p.name != "NSTEP")
        .map(|p| p.name)
        .collect::<Vec<_>>();
    (
        proptest::sample::select(names),
        0.0f64..1.0,
        0.0f64..2.0,
        0.5f64..1.0,
        0.0f64..3.0,
        1u32..500,
    )
        .prop_map(|(name, k0, k1, gamma, p, l)| {
            let info = catalog::find(name).unwrap();
            let args: Vec<String> = info
                .params
                .iter()
                .map(|param| {
                    let v = match param.name {
                        "k0" => k0,
                        "k1" => k1,
                        "gamma" if name == "SIG" => -gamma,
                        "gamma" => gamma,
                        "p" => p,
                        _ => l as f64,
                    };
                    format!("{}={v}", param.name)
                })
                .collect();
            format!("{name}({})", args.join(","))
        })
}

fn torch_or_hf_spec() -> impl Strategy<Value = String> {
    (0.0001f64..1.0, 1u32..300, 0u32..50, 0.1f64..1.0).prop_flat_map(|(lr, n, w, f)| {
        proptest::sample::select(vec![
            format!("StepLR(lr={lr},step_size={n},gamma={f})"),
            format!("MultiStepLR(lr={lr},milestones=[{w},{n}],gamma={f})"),
            format!("ConstantLR(lr={lr},factor={f},total_iters={n})"),
            format!("LinearLR(lr={lr},start_factor={f},total_iters={n})"),
            format!("ExponentialLR(lr={lr},gamma={f})"),
            format!("PolynomialLR(lr={lr},total_iters={n},power={})", f * 3.0),
            format!("CosineAnnealingLR(lr={lr},T_max={n},eta_min={})", lr * f / 10.0),
            format!("CosineAnnealingWarmRestarts(lr={lr},T_0={n},T_mult={})", w % 3 + 1),
            format!("CyclicLR(base_lr={},max_lr={lr},step_size_up={n},mode=triangular2)", lr * f),
            format!("CyclicLR(base_lr={},max_lr={lr},step_size_up={n},step_size_down={},mode=exp_range,gamma=0.99)", lr * f, w + 1),
            format!("OneCycleLR(max_lr={lr},total_steps={},pct_start={})", n + 10, f * 0.9),
            format!("OneCycleLR(max_lr={lr},total_steps={},three_phase=true,anneal_strategy=linear)", n + 10),
            format!("linear(lr={lr},num_warmup_steps={w},num_training_steps={n})"),
            format!("cosine(lr={lr},num_warmup_steps={w},num_training_steps={n})"),
            format!("cosine_with_restarts(lr={lr},num_warmup_steps={w},num_training_steps={n},num_cycles=3)"),
            format!("polynomial(lr={lr},num_warmup_steps={w},num_training_steps={n},lr_end={},power=2)", lr * f / 2.0),
            format!("constant_with_warmup(lr={lr},num_warmup_steps={w})"),
            format!("inverse_sqrt(lr={lr},num_warmup_steps={w})"),
            format!("cosine_with_min_lr(lr={lr},num_warmup_steps={w},num_training_steps={n},min_lr_rate={f})"),
            format!("warmup_stable_decay(lr={lr},num_warmup_steps={w},num_stable_steps={n},num_decay_steps={n},decay_type=1-sqrt)"),
        ])
    })
}

proptest! {
    #[test]
    fn lrbench_policies_are_finite_and_non_negative(spec in lrbench_spec(), t in 0u64..100_000) {
        let p = Policy::parse(&spec).unwrap();
        let lr = p.lr(t);
        prop_assert!(lr.is_finite() && lr >= 0.0, "{} at {}: {}", spec, t, lr);
    }

    #[test]
    fn other_policies_are_finite_and_non_negative(spec in torch_or_hf_spec(), t in 0u64..100_000) {
        let p = Policy::parse(&spec).unwrap();
        let lr = p.lr(t);
        prop_assert!(lr.is_finite() && lr >= 0.0, "{} at {}: {}", spec, t, lr);
    }

    #[test]
    fn print_parse_round_trip(a in lrbench_spec(), b in torch_or_hf_spec(), len in 1u64..1000, composite in any::<bool>()) {
        let spec = if composite { format!("{a} for {len} then {b}") } else { b };
        let p = Policy::parse(&spec).unwrap();
        let printed = p.to_string();
        let again = Policy::parse(&printed).unwrap();
        prop_assert_eq!(&p, &again);
        prop_assert_eq!(printed, again.to_string());
    }

    #[test]
    fn composite_stages_see_local_time(a in lrbench_spec(), b in lrbench_spec(), len in 1u64..500, t in 0u64..2000) {
        let first = Policy::parse(&a).unwrap();
        let second = Policy::parse(&b).unwrap();
        let both = Policy::parse(&format!("{a} for {len} then {b}")).unwrap();
        let want = if t < len { first.lr(t) } else { second.lr(t - len) };
        prop_assert_eq!(both.lr(t).to_bits(), want.to_bits());
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,60}") {
        let _ = Policy::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_spec_like_text(s in "[A-Za-z_]{1,8}\\(([a-z_0-9]{1,6}=[-0-9.e\\[\\],]{0,8},?){0,4}\\)( (for|then) [0-9a-z]{0,3}){0,3}") {
        let _ = Policy::parse(&s);
    }
}
