//! Numbers and durations as lrtop prints them, in one place: short numbers
//! for messages and policy specs (parseable by the spec language), four
//! significant digits for values, compact axis ticks, and durations.

/// Whether text holds a control character (C0, DEL or C1): something a
/// terminal may act on, or the environment cannot hold (NUL).
pub fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control())
}

/// `printable`, keeping line breaks and tabs (multi-line error messages).
pub fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| printable(&line.replace('\t', "    ")).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text safe to print or pass on: control characters (escape sequences,
/// NULs, carriage returns) become U+FFFD. Borrowed when there are none.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if has_control(text) {
        text.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

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

/// A count for a label: "812", "6.14k", "1.24M", "7B" (3 significant
/// digits at most).
pub fn format_count(n: usize) -> String {
    let x = n as f64;
    let (value, unit) = match x {
        _ if x >= 1e12 => (x / 1e12, "T"),
        _ if x >= 1e9 => (x / 1e9, "B"),
        _ if x >= 1e6 => (x / 1e6, "M"),
        _ if x >= 1e3 => (x / 1e3, "k"),
        _ => return n.to_string(),
    };
    let text = num(value, 3);
    // 999.95k rounds to "1000k": say 1M.
    if text == "1000" && unit != "T" {
        let next = ["k", "M", "B", "T"];
        let i = next.iter().position(|u| *u == unit).unwrap_or(0);
        return format!("1{}", next[(i + 1).min(3)]);
    }
    format!("{text}{unit}")
}

/// A relative change as a signed percentage, e.g. "+8.1%".
pub fn percent(rel: f64) -> String {
    format!("{:+.1}%", rel * 100.0)
}

/// Four significant digits, or exponent form for small and large values.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else {
        let digits = (3.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
        let text = format!("{v:.digits$}");
        // 9.9996 rounds to 10.000: one digit too many.
        match text.parse::<f64>() {
            Ok(r) if r.abs().log10().floor() > a.log10().floor() && digits > 0 => {
                format!("{v:.prec$}", prec = digits - 1)
            }
            _ => text,
        }
    }
}

pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Compact, readable numbers for axis labels: 0.001, 1e-5, 2.5k, 1.2M.
pub fn format_tick(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if a >= 1e9 {
        return format!("{x:.1e}").replace(".0e", "e");
    }
    if a >= 1e6 {
        return trim_float(format!("{:.1}M", x / 1e6));
    }
    if a >= 1e4 {
        return trim_float(format!("{:.1}k", x / 1e3));
    }
    if a >= 100.0 {
        return format!("{x:.0}");
    }
    if a >= 1e-3 {
        let digits = (2.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
        return trim_float(format!("{x:.digits$}"));
    }
    let s = format!("{x:.1e}");
    s.replace(".0e", "e")
}

fn trim_float(s: String) -> String {
    let (num, suffix) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s.as_str(), ""),
    };
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{suffix}")
}

/// `text` in at most `width` columns: unchanged when it fits, else cut
/// with an ellipsis as its last column.
pub fn ellipsize(text: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Labels for `names` at most `width` characters each, still telling the
/// names apart: a name that does not fit loses its middle or end to `…`,
/// and the cut moves until no two labels are the same (`eval_…_low`
/// and `eval_…high`, not `eval_confi` twice).
pub fn fit_labels(names: &[String], width: usize) -> Vec<String> {
    let width = width.max(2);
    let cut = |name: &str, tail: usize| -> String {
        let chars: Vec<char> = name.chars().collect();
        if chars.len() <= width {
            return name.to_string();
        }
        let head = width - 1 - tail;
        let mut out: String = chars[..head].iter().collect();
        out.push('…');
        out.extend(&chars[chars.len() - tail..]);
        out
    };
    let unique = |labels: &[String]| {
        let mut seen = std::collections::HashSet::new();
        labels.iter().all(|l| seen.insert(l.as_str()))
    };
    // Cut the end first; then the middle, keeping more and more of the end
    // (a short tail such as `…w` reads worse than a middle cut).
    let balanced = (width - 1) / 2;
    let tails = std::iter::once(0).chain(balanced..width).chain(1..balanced);
    for tail in tails {
        let labels: Vec<String> = names.iter().map(|n| cut(n, tail)).collect();
        if unique(&labels) {
            return labels;
        }
    }
    names.iter().map(|n| cut(n, balanced)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_short_with_a_unit() {
        assert_eq!(format_count(812), "812");
        assert_eq!(format_count(6_144), "6.14k");
        assert_eq!(format_count(1_240_000), "1.24M");
        assert_eq!(format_count(7_000_000_000), "7B");
        assert_eq!(format_count(999_960), "1M");
        assert_eq!(format_count(0), "0");
    }

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

    #[test]
    fn tick_formatting() {
        assert_eq!(format_tick(0.1), "0.1");
        assert_eq!(format_tick(0.00125), "0.00125");
        assert_eq!(format_tick(1e-5), "1e-5");
        assert_eq!(format_tick(2.5e-7), "2.5e-7");
        assert_eq!(format_tick(400.0), "400");
        assert_eq!(format_tick(12_500.0), "12.5k");
        assert_eq!(format_tick(3_000_000.0), "3M");
        assert_eq!(format_tick(8.09e13), "8.1e13");
        assert_eq!(format_tick(4.56789), "4.57");
    }

    #[test]
    fn fitted_labels_stay_apart() {
        let names: Vec<String> = ["lr", "eval_confidence_low", "eval_confidence_high"]
            .map(String::from)
            .to_vec();
        let labels = fit_labels(&names, 10);
        assert_eq!(labels[0], "lr");
        assert_ne!(labels[1], labels[2]);
        assert!(labels.iter().all(|l| l.chars().count() <= 10), "{labels:?}");
        assert_eq!(labels[1], "eval_…_low");
        // Different beginnings: the end is cut.
        let names: Vec<String> = ["train_loss_total", "eval_loss_total"]
            .map(String::from)
            .to_vec();
        assert_eq!(fit_labels(&names, 8), ["train_l…", "eval_lo…"]);
        // Everything fits: unchanged.
        assert_eq!(fit_labels(&names, 40), names);
    }

    #[test]
    fn ellipsize_cuts_only_what_does_not_fit() {
        assert_eq!(ellipsize("abcdef", 6), "abcdef");
        assert_eq!(ellipsize("abcdefg", 6), "abcde…");
        assert_eq!(ellipsize("日本語", 4), "日…");
        assert_eq!(ellipsize("abc", 0), "");
    }
}
