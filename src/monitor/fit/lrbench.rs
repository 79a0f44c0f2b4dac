//! LRBench candidates: FIX, COS, TRI and TRI2.

use crate::format::num;

use super::search::{Candidate, Decay, Fitter, decay_end, refine_int, refine_real};

fn n6(x: f64) -> String {
    num(x, 6)
}

pub fn candidates(fx: &Fitter) -> Vec<Candidate> {
    let f = fx.features;
    let mut out = Vec::new();
    if f.peak <= 0.0 {
        return out;
    }
    let mut y = fx.samples.y.clone();
    y.sort_by(f64::total_cmp);
    let median = y[y.len() / 2];
    if median > 0.0 {
        out.push(Candidate {
            spec: format!("FIX(k0={})", n6(median)),
            description: format!("looks like LRBench FIX at {}", num(median, 4)),
        });
    }
    if !f.rises_first() && f.y_last < 0.9 * f.y_first {
        let k0 = if f.y_min > 0.0 && f.y_min < 0.5 * f.y_first {
            f.y_min
        } else {
            0.0
        };
        let k1 = f.y_first;
        let spec = |l: u64| format!("COS(k0={},k1={},l={l})", n6(k0), n6(k1));
        let l0 = decay_end(fx.samples, f.t_first, k1, k0, Decay::Cosine).unwrap_or(f.t_last + 1.0);
        let (l, _) = refine_int(l0, 1, ((f.t_last + 1.0) * 100.0) as u64, |l| {
            fx.eval(&spec(l))
        });
        out.push(Candidate {
            spec: spec(l),
            description: format!(
                "looks like LRBench COS from {} down to {} over {l} steps",
                num(k1, 4),
                num(k0, 4)
            ),
        });
    }
    if let Some(c) = f.cycle {
        let up = c.t_max1.max(1.0);
        let down = c.t_min1 - c.t_max1;
        if c.y_max1 > c.base && (down - up).abs() <= 0.02 * up + 1.0 {
            for name in ["TRI", "TRI2"] {
                let spec =
                    |k1: f64, l: u64| format!("{name}(k0={},k1={},l={l})", n6(c.base), n6(k1));
                let hi = ((f.t_last + 1.0) * 4.0) as u64;
                let (l, _) = refine_int(up, 1, hi, |l| fx.eval(&spec(c.y_max1, l)));
                let (k1, _) =
                    refine_real(c.y_max1, c.base * 1.0001 + 1e-300, c.y_max1 * 4.0, |k| {
                        fx.eval(&spec(k, l))
                    });
                out.push(Candidate {
                    spec: spec(k1, l),
                    description: format!(
                        "looks like LRBench {name}: cycles between {} and {}, half period {l}",
                        num(c.base, 4),
                        num(k1, 4)
                    ),
                });
            }
        }
    }
    out
}
