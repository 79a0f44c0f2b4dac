//! `Policy::parse` on arbitrary text. A spec that parses must print back as
//! a canonical spec that parses to the same policy (same text, same LRs),
//! and evaluating it anywhere must not panic. Errors must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lrtop::policy::{Policy, Scheduler};

/// Updates at which every parsed policy is evaluated.
const TS: [u64; 12] = [
    0,
    1,
    2,
    3,
    7,
    99,
    100,
    1_000,
    123_457,
    1 << 32,
    u64::MAX / 2,
    u64::MAX,
];

/// Equal as numbers (-0 prints as 0, which is the same learning rate).
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::parse(src) {
        Ok(p) => p,
        Err(e) => {
            // The message with its caret line must render for any input.
            let _ = e.to_string();
            let _ = e.column();
            return;
        }
    };
    let text = policy.to_string();
    let again = Policy::parse(&text).unwrap_or_else(|e| {
        panic!("canonical form {text:?} of {src:?} does not parse: {e}")
    });
    assert_eq!(again.to_string(), text, "printing is not a fixpoint for {src:?}");
    for t in TS {
        let (a, b) = (policy.lr(t), again.lr(t));
        assert!(same(a, b), "{src:?} -> {text:?}: lr({t}) {a} != {b}");
        let _ = policy.locate(t);
    }
    let _ = policy.horizon();
    let _ = policy.short_name();
    let _ = policy.is_stateful();
    // Metric-driven policies: feed a few observations, including bad ones.
    let mut s = Scheduler::new(policy);
    for (i, metric) in [1.0, 1.0, f64::NAN, 0.5, f64::INFINITY, 2.0, 2.0, 2.0]
        .into_iter()
        .enumerate()
    {
        let step = i as u64 * 3;
        let _ = s.lr(step);
        let _ = s.observe(step, metric);
    }
    let _ = s.lr(u64::MAX);
});
