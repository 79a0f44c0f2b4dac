//! Numbers for messages and for policy specs: short, and parseable by the
//! spec language (plain decimals or `1e-7` style).

/// `x` rounded to `digits` significant digits.
pub fn round_sig(x: f64, digits: usize) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let digits = digits.clamp(1, 17);
    format!("{:.*e}", digits - 1, x).parse().unwrap_or(x)
}

/// `x` with at most `digits` significant digits, as short as possible.
pub fn num(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let r = round_sig(x, digits);
    let a = r.abs();
    if r == 0.0 || (1e-4..1e7).contains(&a) {
        format!("{r}")
    } else {
        // Rust's `{:e}` gives the shortest mantissa: 1e-7, 2.5e-8.
        format!("{r:e}")
    }
}

/// A number for a message: 4 significant digits.
pub fn short(x: f64) -> String {
    num(x, 4)
}

/// A relative change as a signed percentage, e.g. "+8.1%".
pub fn percent(rel: f64) -> String {
    format!("{:+.1}%", rel * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_parseable() {
        assert_eq!(num(0.0029999999999, 4), "0.003");
        assert_eq!(num(1.0153799435669297e-7, 3), "1.02e-7");
        assert_eq!(num(675.0, 6), "675");
        assert_eq!(num(20.0, 4), "20");
        assert_eq!(num(-0.5, 4), "-0.5");
        for s in ["0.003", "1.02e-7", "675"] {
            assert!(s.parse::<f64>().is_ok());
        }
    }
}
