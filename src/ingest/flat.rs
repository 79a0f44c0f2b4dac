//! Fast path for the common log line: one flat JSON object whose keys have
//! no escapes and whose values are numbers, `NaN`/`Infinity`, plain strings,
//! booleans or null. Anything else (nesting, escapes, any doubt) returns None
//! and takes the serde path, which also writes the error message of a bad
//! line. Only valid JSON (plus Python's non-finite tokens, and numbers too
//! large for f64, read as infinite) is accepted here, and numbers parse to
//! the same values as with serde_json's float_roundtrip (both round
//! correctly).

use super::fields::{Num, RecordBuilder, Role};

/// The keys of the last line parsed, in order, with their roles. Log lines
/// repeat their keys, so a key is mostly matched by one comparison, without
/// scanning or classifying it again.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: Vec<(String, Role)>,
}

impl KeyCache {
    fn set(&mut self, i: usize, key: &str, role: Role) {
        if let Some(slot) = self.keys.get_mut(i) {
            slot.0.clear();
            slot.0.push_str(key);
            slot.1 = role;
        } else {
            self.keys.truncate(i);
            self.keys.push((key.to_string(), role));
        }
    }
}

pub(crate) fn parse_flat(
    line: &[u8],
    builder: &mut RecordBuilder,
    cache: &mut KeyCache,
) -> Option<()> {
    // One UTF-8 check for the whole line; tokens are then sliced from it.
    let text = std::str::from_utf8(line).ok()?;
    let mut p = Cursor {
        text,
        bytes: line,
        at: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    p.skip_ws();
    if p.peek() == Some(b'}') {
        p.at += 1;
        return p.at_end();
    }
    for i in 0.. {
        p.expect(b'"')?;
        let cached = cache.keys.get(i).filter(|(k, _)| p.at_key(k));
        let (key, role) = match cached {
            Some((k, role)) => {
                p.at += k.len() + 1;
                (k.as_str(), *role)
            }
            None => {
                let key = p.plain_string()?;
                let role = builder.classify(key);
                cache.set(i, key, role);
                (key, role)
            }
        };
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        // A step or LR written as text ("step": "10"): the general path.
        if p.peek() == Some(b'"') && matches!(role, Role::Field { .. }) {
            return None;
        }
        if let Some(num) = p.value()? {
            builder.add(key, role, num);
        }
        p.skip_ws();
        match p.next()? {
            b',' => p.skip_ws(),
            b'}' => return p.at_end(),
            _ => return None,
        }
    }
    None
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn at_end(&mut self) -> Option<()> {
        self.skip_ws();
        (self.at == self.bytes.len()).then_some(())
    }

    /// Is `key` next, followed by its closing quote?
    fn at_key(&self, key: &str) -> bool {
        let key = key.as_bytes();
        let Some(next) = self.bytes.get(self.at..self.at + key.len() + 1) else {
            return false;
        };
        next[key.len()] == b'"' && same_short(&next[..key.len()], key)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// The rest of a string after its opening quote, if it has no escapes
    /// and no control characters (else: the serde path decides).
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at;
        // Keys and values are short: a plain loop beats a vectorised search.
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so this slice is on char boundaries.
        self.text.get(start..end)
    }

    /// A value: Some(number) or None for a value that is not one. The outer
    /// None (via `?`) means: not for the fast path.
    fn value(&mut self) -> Option<Option<Num>> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.plain_string()?;
                Some(None)
            }
            b't' => self.literal(b"true").map(|_| None),
            b'f' => self.literal(b"false").map(|_| None),
            b'n' => self.literal(b"null").map(|_| None),
            b'N' => self.literal(b"NaN").map(|_| Some(Num::Float(f64::NAN))),
            b'I' => self
                .literal(b"Infinity")
                .map(|_| Some(Num::Float(f64::INFINITY))),
            b'-' if self.bytes.get(self.at + 1) == Some(&b'I') => {
                self.at += 1;
                self.literal(b"Infinity")
                    .map(|_| Some(Num::Float(f64::NEG_INFINITY)))
            }
            b'-' | b'0'..=b'9' => self.number().map(Some),
            _ => None,
        }
    }

    /// A number in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    fn number(&mut self) -> Option<Num> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        // All digits as one integer (exact while there are at most 19 of
        // them) and the power of ten that scales it.
        let mut mantissa = 0u64;
        let mut count = match self.peek()? {
            b'0' => {
                self.at += 1;
                1
            }
            b'1'..=b'9' => self.digits(&mut mantissa),
            _ => return None,
        };
        let mut exp10: i64 = 0;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            let fraction = self.digits(&mut mantissa);
            if fraction == 0 {
                return None;
            }
            count += fraction;
            exp10 -= fraction as i64;
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            let negative_exp = self.peek() == Some(b'-');
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            let mut exp = 0u64;
            let exp_digits = self.digits(&mut exp);
            if exp_digits == 0 {
                return None;
            }
            // A long exponent is left to the slow path.
            exp10 = if exp_digits > 18 {
                i64::MAX
            } else if negative_exp {
                exp10 - exp as i64
            } else {
                exp10 + exp as i64
            };
            integer = false;
        }
        let exact = count <= 19;
        match (integer, negative) {
            (true, false) if exact => return Some(Num::Int(mantissa)),
            // serde_json reads -0 as the float -0.0.
            (true, true) if exact && mantissa == 0 => return Some(Num::Float(-0.0)),
            (true, true) if exact && mantissa <= i64::MAX as u64 + 1 => {
                return Some(Num::NegInt((mantissa as i64).wrapping_neg()));
            }
            (true, _) => {
                let text = self.text.get(start..self.at)?;
                if let Ok(v) = text.parse::<u64>() {
                    return Some(Num::Int(v));
                }
                if let Ok(v) = text.parse::<i64>() {
                    return Some(Num::NegInt(v));
                }
            }
            (false, _) if exact && mantissa <= 1 << 53 && (-22..=22).contains(&exp10) => {
                // Clinger's fast path: an exact mantissa and an exact power
                // of ten, so one rounding, the correct one.
                let power = POW10[exp10.unsigned_abs() as usize];
                let v = if exp10 < 0 {
                    mantissa as f64 / power
                } else {
                    mantissa as f64 * power
                };
                return Some(Num::Float(if negative { -v } else { v }));
            }
            (false, _) if exact => {
                if let Some(v) = scaled_exactly(mantissa, exp10) {
                    return Some(Num::Float(if negative { -v } else { v }));
                }
            }
            (false, _) => {}
        }
        // Longer mantissas, big exponents, integers beyond 64 bits (floats,
        // as in serde_json).
        self.text
            .get(start..self.at)?
            .parse::<f64>()
            .ok()
            .map(Num::Float)
    }

    /// Consumes digits, folding them into `acc` (wrapping: only trusted when
    /// the count says it fits); returns how many there were.
    fn digits(&mut self, acc: &mut u64) -> usize {
        let start = self.at;
        // Eight at a time while there are (log floats carry 16 or 17).
        while let Some(eight) = self
            .bytes
            .get(self.at..self.at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .filter(|&v| all_digits(v))
        {
            *acc = acc
                .wrapping_mul(100_000_000)
                .wrapping_add(eight_digits(eight));
            self.at += 8;
        }
        while let Some(&d) = self.bytes.get(self.at) {
            if !d.is_ascii_digit() {
                break;
            }
            *acc = acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            self.at += 1;
        }
        self.at - start
    }
}

/// Equality of two short slices of one length, inline: keys are a few
/// bytes, too short to pay for a call to `memcmp`.
fn same_short(a: &[u8], b: &[u8]) -> bool {
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).map(u64::from_ne_bytes).ok();
    a8.by_ref()
        .zip(b8.by_ref())
        .all(|(x, y)| word(x) == word(y))
        && a8
            .remainder()
            .iter()
            .zip(b8.remainder())
            .all(|(x, y)| x == y)
        && a.len() == b.len()
}

/// Are all eight bytes of `v` (little-endian) ASCII digits?
fn all_digits(v: u64) -> bool {
    (v & 0xF0F0_F0F0_F0F0_F0F0)
        | ((v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
        == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits (little-endian, first digit lowest),
/// combined pairwise in three multiplications.
fn eight_digits(v: u64) -> u64 {
    let v = v - 0x3030_3030_3030_3030;
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let hi = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let lo = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    hi.wrapping_add(lo) >> 32
}

/// `mantissa` x 10^`exp10` correctly rounded, by exact integer arithmetic,
/// for the mantissas beyond 2^53 that Clinger's path cannot take: Python's
/// `repr` writes 17 significant digits for about half of all floats, so a
/// log line has one or two. Instead of parsing the text again: with
/// 10^e = 5^e * 2^e, a product (e >= 0) or a quotient with its remainder
/// (e < 0) of integers is rounded once, by the conversion to f64, and then
/// scaled by an exact power of two. None outside -27..=22.
fn scaled_exactly(mantissa: u64, exp10: i64) -> Option<f64> {
    if mantissa == 0 {
        return Some(0.0);
    }
    match exp10 {
        0..=22 => {
            let e = exp10 as usize;
            // < 2^64 * 5^22 < 2^116: exact in u128; `as` rounds to nearest.
            let exact = u128::from(mantissa) * u128::from(POW5[e]);
            Some(exact as f64 * pow2(e as i32))
        }
        -27..=-1 => {
            let k = exp10.unsigned_abs() as usize;
            // The dividend's top bit at 126, the divisor 5^k < 2^63: the
            // quotient has at least 64 bits, so its bit 0 lies below the
            // rounding position and can stand for a nonzero remainder.
            let shift = mantissa.leading_zeros() + 63;
            let dividend = u128::from(mantissa) << shift;
            let divisor = u128::from(POW5[k]);
            let (quotient, remainder) = (dividend / divisor, dividend % divisor);
            let quotient = quotient | u128::from(remainder != 0);
            // >= 2^53 / 10^27: far from subnormal, so the scaling is exact.
            Some(quotient as f64 * pow2(-(shift as i32) - k as i32))
        }
        _ => None,
    }
}

/// 2^e for a normal exponent.
fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

const POW5: [u64; 28] = {
    let mut table = [1u64; 28];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 5;
        i += 1;
    }
    table
};

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_mantissas_scale_to_the_same_floats_as_the_standard_parser() {
        let mut next = crate::test_rng(0x9E37_79B9_7F4A_7C15);
        let mut cases: Vec<(u64, i64)> = (0..200_000)
            .map(|_| {
                let digits = 1 + (next() % 19) as u32;
                (next() % 10u64.pow(digits), -27 + (next() % 50) as i64)
            })
            .collect();
        // Halfway cases and the ends of the range.
        cases.extend([
            (9_007_199_254_740_993, 0),
            (9_007_199_254_740_995, 0),
            (u64::MAX / 2, 22),
            (9_999_999_999_999_999_999, -27),
            (14_999_999_999_990_745, -23),
            (1, -27),
            (0, -5),
        ]);
        for (m, e) in cases {
            let want: f64 = format!("{m}e{e}").parse().unwrap();
            let got = scaled_exactly(m, e).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{m}e{e}");
        }
        assert_eq!(scaled_exactly(5, 23), None);
        assert_eq!(scaled_exactly(5, -28), None);
    }

    #[test]
    fn short_slices_compare() {
        for (a, b) in [
            ("", ""),
            ("step", "step"),
            ("learning_rate", "learning_rate"),
        ] {
            assert!(same_short(a.as_bytes(), b.as_bytes()));
        }
        for (a, b) in [
            ("step", "stop"),
            ("learning_rate", "learning_ratE"),
            ("Learning_rate", "learning_rate"),
            ("lr", "lr-"),
        ] {
            assert!(!same_short(a.as_bytes(), b.as_bytes()), "{a} {b}");
        }
    }

    #[test]
    fn eight_digits_at_once() {
        let le = |s: &[u8; 8]| u64::from_le_bytes(*s);
        assert!(all_digits(le(b"01234567")));
        assert!(all_digits(le(b"99999999")));
        for not in [
            b"0123456.",
            b"/1234567",
            b":1234567",
            b"1234567a",
            b"12 45678",
        ] {
            assert!(!all_digits(le(not)), "{not:?}");
        }
        assert_eq!(eight_digits(le(b"01234567")), 1_234_567);
        assert_eq!(eight_digits(le(b"98765432")), 98_765_432);
        assert_eq!(eight_digits(le(b"00000000")), 0);
        assert_eq!(eight_digits(le(b"99999999")), 99_999_999);
    }
}
