//! Every alert rule on synthetic series: firing, not firing, and the
//! edge-triggering (one alert per episode, re-armed once the condition has
//! cleared).

use crate::monitor_support as support;

use lrtop::metrics::Record;
use lrtop::monitor::{AlertKind, Level, Monitor, MonitorConfig, Target};
use support::*;

fn healthy(steps: std::ops::RangeInclusive<u64>, seed: u64) -> Vec<Record> {
    let mut noise = Noise::new(seed);
    steps
        .map(|s| train(s, healthy_loss(s, &mut noise), 1e-3))
        .collect()
}

fn monitor() -> Monitor {
    Monitor::new(MonitorConfig::default())
}

#[test]
fn a_healthy_synthetic_run_raises_nothing() {
    let mut records = healthy(1..=600, 1);
    let mut noise = Noise::new(2);
    for r in &mut records {
        r.grad_norm = Some(1.0 + 0.2 * noise.sample());
    }
    let (_, alerts) = run_default(&records);
    assert!(alerts.is_empty(), "{}", describe(&alerts));
}

// --- divergence -----------------------------------------------------------

#[test]
fn nonfinite_loss_is_critical_at_the_first_step_once_per_episode() {
    let mut records = healthy(1..=50, 3);
    records.extend((51..=60).map(|s| train(s, f64::NAN, 1e-3)));
    records.extend(healthy(61..=90, 4)); // finite for 30 > clear_after records
    records.push(train(91, f64::INFINITY, 1e-3));
    let (_, alerts) = run_default(&records);
    let div = of_kind(&alerts, AlertKind::Divergence);
    let steps: Vec<Option<u64>> = div.iter().map(|a| a.step).collect();
    assert_eq!(steps, vec![Some(51), Some(91)], "{}", describe(&alerts));
    assert!(div.iter().all(|a| a.level == Level::Critical));
    assert!(div[0].message.contains("NaN"), "{}", div[0]);
}

#[test]
fn nonfinite_grad_norm_is_divergence_not_grad_explosion() {
    let mut records = healthy(1..=50, 5);
    let mut bad = train(51, 1.0, 1e-3);
    bad.grad_norm = Some(f64::INFINITY);
    records.push(bad);
    let (_, alerts) = run_default(&records);
    assert_eq!(
        of_kind(&alerts, AlertKind::Divergence).len(),
        1,
        "{}",
        describe(&alerts)
    );
    let div = of_kind(&alerts, AlertKind::Divergence);
    assert_eq!(div[0].step, Some(51));
    // The loss is finite: fp16 loss scaling skips such updates, so it is a
    // warning, not a reason to stop the run.
    assert_eq!(div[0].level, Level::Warn, "{}", div[0]);
    assert!(div[0].message.contains("grad norm is inf"), "{}", div[0]);
    assert!(of_kind(&alerts, AlertKind::GradExplosion).is_empty());
}

/// A Hugging Face style run whose loss climbs from 4 to 700 over 300 steps.
fn climbing(shape: fn(f64) -> f64) -> Vec<Record> {
    let mut noise = Noise::new(6);
    (1..=300u64)
        .map(|s| {
            let x = (s - 1) as f64 / 299.0;
            train(s, shape(x) * (1.0 + 0.05 * noise.sample()), 5e-3)
        })
        .collect()
}

#[test]
fn a_loss_climbing_from_4_to_700_is_flagged_within_tens_of_steps() {
    type Shape = fn(f64) -> f64;
    let shapes: [(&str, Shape); 3] = [
        ("linear", |x| 4.0 + 696.0 * x),
        ("exponential", |x| 4.0 * 175f64.powf(x)),
        ("quadratic", |x| 4.0 + 696.0 * x * x),
    ];
    for (name, shape) in shapes {
        let (_, alerts) = run_default(&climbing(shape));
        let div = of_kind(&alerts, AlertKind::Divergence);
        assert_eq!(div.len(), 1, "{name}: {}", describe(&alerts));
        assert_eq!(div[0].level, Level::Critical);
        let step = div[0].step.unwrap();
        assert!(step <= 60, "{name}: flagged only at step {step}");
    }
}

#[test]
fn a_loss_that_bounces_but_keeps_most_of_its_progress_is_not_divergence() {
    // 4 -> 0.05, then noise between 0.02 and 0.15 (3-7x its minimum, but a
    // small share of the progress made): a converged run, not a divergence.
    let mut noise = Noise::new(7);
    let records: Vec<Record> = (1..=600u64)
        .map(|s| {
            let base = 0.05 + 3.95 * (-(s as f64) / 40.0).exp();
            train(s, base * (1.6 + 1.4 * noise.sample()), 1e-3)
        })
        .collect();
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::Divergence).is_empty(),
        "{}",
        describe(&alerts)
    );
}

// --- spike ------------------------------------------------------------------

#[test]
fn loss_spikes_fire_once_per_episode_and_rearm() {
    let mut records = healthy(1..=400, 8);
    for (i, factor) in [(150, 5.0), (152, 4.0), (300, 5.0)] {
        let r = &mut records[i - 1];
        r.loss = r.loss.map(|l| l * factor);
    }
    let (_, alerts) = run_default(&records);
    let spikes = of_kind(&alerts, AlertKind::Spike);
    let steps: Vec<Option<u64>> = spikes.iter().map(|a| a.step).collect();
    // 152 is inside the episode opened at 150; 300 comes after it cleared.
    assert_eq!(steps, vec![Some(150), Some(300)], "{}", describe(&alerts));
    assert!(spikes.iter().all(|a| a.level == Level::Warn));
    assert!(spikes[0].message.contains("spiked"), "{}", spikes[0]);
    assert!(!spikes[0].suggestion.is_empty());
}

#[test]
fn a_noisy_but_healthy_loss_has_no_spikes() {
    // 30% multiplicative noise: a jump of 1.8x is within its spread.
    let mut noise = Noise::new(9);
    let records: Vec<Record> = (1..=1000u64)
        .map(|s| train(s, 2.0 * (1.0 + 0.3 * noise.sample()), 1e-3))
        .collect();
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::Spike).is_empty(),
        "{}",
        describe(&alerts)
    );
}

// --- grad-norm explosion ----------------------------------------------------

#[test]
fn grad_norm_explosion_warns_once_and_rearms() {
    let mut records = healthy(1..=400, 10);
    let mut noise = Noise::new(11);
    for r in &mut records {
        r.grad_norm = Some(0.8 * (1.0 + 0.2 * noise.sample()));
    }
    records[199].grad_norm = Some(60.0);
    records[200].grad_norm = Some(40.0);
    records[349].grad_norm = Some(80.0);
    let (_, alerts) = run_default(&records);
    let grads = of_kind(&alerts, AlertKind::GradExplosion);
    let steps: Vec<Option<u64>> = grads.iter().map(|a| a.step).collect();
    assert_eq!(steps, vec![Some(200), Some(350)], "{}", describe(&alerts));
    assert!(
        grads[0].suggestion.contains("max_grad_norm"),
        "{}",
        grads[0]
    );
}

#[test]
fn grad_norm_within_its_usual_spread_is_quiet() {
    let mut records = healthy(1..=400, 12);
    let mut noise = Noise::new(13);
    for r in &mut records {
        // Log-uniform between 0.1 and 2: wide, like small-batch training.
        r.grad_norm = Some((0.1f64.ln() + (20f64.ln()) * (noise.sample() + 1.0) / 2.0).exp());
    }
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::GradExplosion).is_empty(),
        "{}",
        describe(&alerts)
    );
}

// --- plateau ----------------------------------------------------------------

fn plateau_run(lr: impl Fn(u64) -> f64) -> Vec<Record> {
    let mut noise = Noise::new(14);
    (1..=700u64)
        .map(|s| {
            let clean = if s <= 200 {
                3.0 - 2.0 * s as f64 / 200.0
            } else {
                1.0
            };
            train(s, clean * (1.0 + 0.05 * noise.sample()), lr(s))
        })
        .collect()
}

#[test]
fn a_plateau_at_constant_lr_warns_with_filled_in_policies() {
    let (_, alerts) = run_default(&plateau_run(|_| 0.01));
    let p = of_kind(&alerts, AlertKind::Plateau);
    assert_eq!(p.len(), 1, "{}", describe(&alerts));
    assert_eq!(p[0].level, Level::Warn);
    let step = p[0].step.unwrap();
    assert!((350..=500).contains(&step), "{}", p[0]);
    assert!(
        p[0].suggestion
            .contains("ReduceLROnPlateau(lr=0.01,factor=0.5,patience="),
        "{}",
        p[0].suggestion
    );
    assert!(
        p[0].suggestion
            .contains(&format!("COS(k0=0.0001,k1=0.01,l={step})")),
        "{}",
        p[0].suggestion
    );
    // The suggested policies are valid specs.
    for spec in extract_specs(&p[0].suggestion) {
        lrtop::policy::Policy::parse(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

fn extract_specs(text: &str) -> Vec<String> {
    ["ReduceLROnPlateau(", "COS("]
        .iter()
        .filter_map(|start| {
            let i = text.find(start)?;
            let j = text[i..].find(')')?;
            Some(text[i..=i + j].to_string())
        })
        .collect()
}

#[test]
fn no_plateau_while_the_schedule_anneals_or_a_warmup_raises_the_lr() {
    // The loss of an annealing run flattens by design: no alert.
    let (_, alerts) = run_default(&plateau_run(|s| 0.01 * (-(s as f64) / 100.0).exp()));
    assert!(
        of_kind(&alerts, AlertKind::Plateau).is_empty(),
        "{}",
        describe(&alerts)
    );
    // A long warmup over a flat loss: nothing until the LR stops rising.
    let warmup = plateau_run(|s| 1e-3 * (s as f64 / 2000.0).min(1.0));
    let (_, alerts) = run_default(&warmup);
    assert!(
        of_kind(&alerts, AlertKind::Plateau).is_empty(),
        "{}",
        describe(&alerts)
    );
    // The same flat loss at a constant LR is a plateau, quoted in logged values.
    let (_, alerts) = run_default(&plateau_run(|_| 1e-3));
    let p = of_kind(&alerts, AlertKind::Plateau);
    assert_eq!(p.len(), 1, "{}", describe(&alerts));
    assert!(
        p[0].message.contains("logged ") && p[0].message.contains("lowest "),
        "{}",
        p[0]
    );
    assert!(!p[0].message.contains("smoothed"), "{}", p[0]);
}

#[test]
fn a_steadily_improving_loss_is_no_plateau() {
    let mut noise = Noise::new(15);
    let records: Vec<Record> = (1..=2000u64)
        .map(|s| {
            train(
                s,
                4.0 * (-(s as f64) / 400.0).exp() * (1.0 + 0.05 * noise.sample()),
                0.01,
            )
        })
        .collect();
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::Plateau).is_empty(),
        "{}",
        describe(&alerts)
    );
}

#[test]
fn a_second_plateau_after_an_improvement_fires_again() {
    let mut records = plateau_run(|_| 0.01);
    let mut noise = Noise::new(16);
    // Improvement to 0.5 over 100 steps, then flat again.
    records.extend((701..=1300u64).map(|s| {
        let clean = if s <= 800 {
            1.0 - 0.5 * (s - 700) as f64 / 100.0
        } else {
            0.5
        };
        train(s, clean * (1.0 + 0.05 * noise.sample()), 0.01)
    }));
    let (_, alerts) = run_default(&records);
    let p = of_kind(&alerts, AlertKind::Plateau);
    assert_eq!(p.len(), 2, "{}", describe(&alerts));
    assert!(p[1].step.unwrap() > 800);
}

// --- LR too high / too low ------------------------------------------------

#[test]
fn an_oscillating_rising_loss_means_lr_too_high() {
    let mut noise = Noise::new(17);
    let records: Vec<Record> = (1..=300u64)
        .map(|s| {
            let clean = if s <= 150 {
                4.0 - 3.0 * s as f64 / 150.0
            } else {
                1.0 + (s - 150) as f64 / 150.0
            };
            train(s, clean * (1.0 + 0.15 * noise.sample()), 0.05)
        })
        .collect();
    let (_, alerts) = run_default(&records);
    let high = of_kind(&alerts, AlertKind::LrTooHigh);
    assert_eq!(high.len(), 1, "{}", describe(&alerts));
    assert!(high[0].step.unwrap() > 150);
    assert!(
        high[0].suggestion.contains("lr=0.01667"),
        "{}",
        high[0].suggestion
    );
    assert!(
        of_kind(&alerts, AlertKind::Divergence).is_empty(),
        "{}",
        describe(&alerts)
    );
}

#[test]
fn a_falling_noisy_loss_is_not_lr_too_high() {
    let mut noise = Noise::new(18);
    let records: Vec<Record> = (1..=600u64)
        .map(|s| {
            train(
                s,
                (4.0 - 3.0 * s as f64 / 600.0) * (1.0 + 0.3 * noise.sample()),
                0.05,
            )
        })
        .collect();
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::LrTooHigh).is_empty(),
        "{}",
        describe(&alerts)
    );
}

fn flat_loss_run(lr: impl Fn(u64) -> f64) -> Vec<Record> {
    let mut noise = Noise::new(19);
    (1..=600u64)
        .map(|s| {
            let clean = if s <= 100 {
                3.0 - 2.0 * s as f64 / 100.0
            } else {
                1.0
            };
            train(s, clean * (1.0 + 0.02 * noise.sample()), lr(s))
        })
        .collect()
}

#[test]
fn a_tiny_flat_lr_without_progress_is_lr_too_low() {
    let (_, alerts) = run_default(&flat_loss_run(|s| if s <= 100 { 0.1 } else { 1e-5 }));
    let low = of_kind(&alerts, AlertKind::LrTooLow);
    assert_eq!(low.len(), 1, "{}", describe(&alerts));
    assert!(
        low[0].step.unwrap() > 200 && low[0].step.unwrap() < 300,
        "{}",
        low[0]
    );
    assert!(
        low[0].suggestion.contains("lr=0.01"),
        "{}",
        low[0].suggestion
    );
}

#[test]
fn an_absolutely_tiny_lr_is_too_low_even_without_a_peak() {
    let (_, alerts) = run_default(&flat_loss_run(|_| 1e-9));
    assert_eq!(
        of_kind(&alerts, AlertKind::LrTooLow).len(),
        1,
        "{}",
        describe(&alerts)
    );
}

#[test]
fn an_annealing_tail_is_not_lr_too_low() {
    // Cosine from 0.1 to 0 over the run: tiny at the end, but by design.
    let (_, alerts) = run_default(&flat_loss_run(|s| {
        0.05 * (1.0 + (std::f64::consts::PI * (s - 1) as f64 / 600.0).cos())
    }));
    assert!(
        of_kind(&alerts, AlertKind::LrTooLow).is_empty(),
        "{}",
        describe(&alerts)
    );
}

// --- overfitting --------------------------------------------------------------

fn with_evals(eval_loss: impl Fn(u64) -> f64, train_falls: bool) -> Vec<Record> {
    let mut noise = Noise::new(20);
    let mut out = Vec::new();
    for s in 1..=500u64 {
        let clean = if train_falls {
            2.0 * (-(s as f64) / 150.0).exp() + 0.1
        } else {
            0.6 + 0.002 * s as f64
        };
        out.push(train(s, clean * (1.0 + 0.03 * noise.sample()), 1e-3));
        if s % 25 == 0 {
            out.push(eval(s, "eval_loss", eval_loss(s)));
        }
    }
    out
}

#[test]
fn rising_eval_loss_with_falling_training_loss_is_overfitting() {
    // Best at step 200, then +8% per eval.
    let records = with_evals(
        |s| {
            if s <= 200 {
                2.0 - s as f64 / 200.0
            } else {
                1.0 + 0.08 * ((s - 200) / 25) as f64
            }
        },
        true,
    );
    let (_, alerts) = run_default(&records);
    let over = of_kind(&alerts, AlertKind::Overfitting);
    assert_eq!(over.len(), 1, "{}", describe(&alerts));
    // +8% at 225 (below 5%? no: 8% > 5%), 250, 275: the third is the alert.
    assert_eq!(over[0].step, Some(275), "{}", over[0]);
    assert!(over[0].suggestion.contains("step 200"), "{}", over[0]);
}

#[test]
fn two_bad_evals_are_not_overfitting_even_with_patience_one() {
    // Best at 200, then two evals 10% above it, then back to the best.
    let records = with_evals(
        |s| match s {
            225 | 250 => 1.1,
            _ if s <= 200 => 2.0 - s as f64 / 200.0,
            _ => 0.99,
        },
        true,
    );
    let mut m = Monitor::new(MonitorConfig {
        overfit_patience: 1,
        ..MonitorConfig::default()
    });
    let alerts = run(&mut m, &records);
    assert!(
        of_kind(&alerts, AlertKind::Overfitting).is_empty(),
        "{}",
        describe(&alerts)
    );
}

#[test]
fn overfitting_in_a_log_without_steps_names_no_step() {
    let records: Vec<Record> = with_evals(
        |s| {
            if s <= 200 {
                2.0 - s as f64 / 200.0
            } else {
                1.0 + 0.08 * ((s - 200) / 25) as f64
            }
        },
        true,
    )
    .into_iter()
    .map(|r| Record { step: None, ..r })
    .collect();
    let (_, alerts) = run_default(&records);
    let over = of_kind(&alerts, AlertKind::Overfitting);
    assert_eq!(over.len(), 1, "{}", describe(&alerts));
    let text = format!("{} {}", over[0].message, over[0].suggestion);
    assert!(!text.contains("step"), "{text}");
    assert!(
        over[0].suggestion.contains("with the best eval_loss (1)"),
        "{text}"
    );
}

#[test]
fn eval_loss_rising_with_training_loss_is_not_overfitting() {
    let records = with_evals(|s| 1.0 + 0.002 * s as f64, false);
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::Overfitting).is_empty(),
        "{}",
        describe(&alerts)
    );
}

#[test]
fn a_noisy_flat_eval_loss_is_not_overfitting() {
    let mut noise = Noise::new(21);
    let values: Vec<f64> = (0..40).map(|_| 1.0 + 0.03 * noise.sample()).collect();
    let records = with_evals(|s| values[(s / 25) as usize], true);
    let (_, alerts) = run_default(&records);
    assert!(
        of_kind(&alerts, AlertKind::Overfitting).is_empty(),
        "{}",
        describe(&alerts)
    );
}

// --- stalled ------------------------------------------------------------------

#[test]
fn a_stall_warns_once_and_rearms_when_records_arrive() {
    let mut m = monitor();
    let t0 = 1_700_000_000.0;
    let mut all = Vec::new();
    for s in 1..=10u64 {
        m.observe(&train(s, 1.0, 1e-3));
        all.extend(m.tick(t0 + s as f64, true));
    }
    // Idle: nothing before 60 s, one alert after, none repeated.
    all.extend(m.tick(t0 + 10.0 + 59.0, true));
    assert!(all.is_empty());
    all.extend(m.tick(t0 + 10.0 + 61.0, true));
    all.extend(m.tick(t0 + 10.0 + 200.0, true));
    assert_eq!(all.len(), 1, "{}", describe(&all));
    assert_eq!(all[0].kind, AlertKind::Stalled);
    assert_eq!(all[0].step, Some(10));
    // Records resume: re-armed; a second stall is a second alert.
    m.observe(&train(11, 1.0, 1e-3));
    all.extend(m.tick(t0 + 300.0, true));
    all.extend(m.tick(t0 + 365.0, true));
    assert_eq!(all.len(), 2, "{}", describe(&all));
    assert_eq!(m.alerts().len(), 2);
}

#[test]
fn no_stall_when_not_following_or_before_any_record() {
    let mut m = monitor();
    assert!(m.tick(1000.0, true).is_empty());
    assert!(m.tick(5000.0, true).is_empty());
    m.observe(&train(1, 1.0, 1e-3));
    m.tick(5000.0, false);
    assert!(m.tick(9000.0, false).is_empty());
}

#[test]
fn the_stall_threshold_follows_the_runs_pace() {
    let mut m = monitor();
    // A record every 30 s: threshold 10 x 30 = 300 s.
    for s in 1..=6u64 {
        m.observe(&train(s, 1.0, 1e-3));
        assert!(m.tick(30.0 * s as f64, true).is_empty());
    }
    assert!(m.tick(180.0 + 250.0, true).is_empty());
    assert_eq!(m.tick(180.0 + 301.0, true).len(), 1);
}

#[test]
fn a_configured_stall_threshold_wins() {
    let mut m = Monitor::new(MonitorConfig {
        stall_secs: Some(5.0),
        ..Default::default()
    });
    m.observe(&train(1, 1.0, 1e-3));
    m.tick(100.0, true);
    assert!(m.tick(104.0, true).is_empty());
    assert_eq!(m.tick(106.0, true).len(), 1);
}

// --- target -------------------------------------------------------------------

#[test]
fn targets_are_reported_once_with_their_step() {
    let mut m = monitor()
        .with_target(Target::parse("val_acc>=0.95").unwrap())
        .with_target(Target::parse("eval_loss<=1.2").unwrap())
        .with_target(Target::parse("val_acc>=0.999").unwrap());
    let mut records = Vec::new();
    for (i, (acc, loss)) in [(0.9, 1.5), (0.96, 1.3), (0.97, 1.1), (0.98, 1.0)]
        .iter()
        .enumerate()
    {
        let step = 100 * (i as u64 + 1);
        records.push(eval(step, "val_acc", *acc));
        records.push(eval(step, "eval_loss", *loss));
    }
    let alerts = run(&mut m, &records);
    let reached = of_kind(&alerts, AlertKind::TargetReached);
    assert_eq!(reached.len(), 2, "{}", describe(&alerts));
    assert_eq!(
        (reached[0].step, reached[0].level),
        (Some(200), Level::Info)
    );
    assert!(
        reached[0].message.contains("val_acc>=0.95"),
        "{}",
        reached[0]
    );
    assert_eq!(reached[1].step, Some(300));
    assert!(
        reached[1].message.contains("eval_loss<=1.2"),
        "{}",
        reached[1]
    );
}
