//! Streaming serde visitors that turn one JSON object into a `Record`
//! without building a `serde_json::Value`, and the rewrite of Python's
//! `NaN` / `Infinity` / `-Infinity` tokens, which serde_json rejects.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::fields::{FieldMap, Num, RecordBuilder, Role, Spare};
use super::flat::{KeyCache, parse_flat};
use crate::metrics::Record;

/// Parses one JSON object into a record (None: no numeric field).
#[cfg(test)]
pub(crate) fn parse_object(bytes: &[u8], map: &FieldMap) -> Result<Option<Record>, String> {
    parse_object_with(bytes, map, &mut LineState::default())
}

/// What parsing one line leaves for the next: allocations to reuse and the
/// keys seen (valid for one `FieldMap`).
#[derive(Debug, Default)]
pub(crate) struct LineState {
    pub(crate) spare: Spare,
    keys: KeyCache,
}

/// Parses one JSON object into a record (None: no numeric field), reusing
/// what earlier lines left in `state`.
pub(crate) fn parse_object_with(
    bytes: &[u8],
    map: &FieldMap,
    state: &mut LineState,
) -> Result<Option<Record>, String> {
    let mut builder = RecordBuilder::with_spare(map, std::mem::take(&mut state.spare));
    let fast = parse_flat(bytes, &mut builder, &mut state.keys);
    let (rec, spare) = builder.finish_with_spare();
    state.spare = spare;
    match (fast, rec) {
        (Some(()), rec) => Ok(rec),
        (None, rec) => {
            if let Some(rec) = rec {
                state.spare.recycle(rec);
            }
            parse_object_serde(bytes, map)
        }
    }
}

/// The general path: any JSON, and the error message of a bad line.
pub(crate) fn parse_object_serde(bytes: &[u8], map: &FieldMap) -> Result<Option<Record>, String> {
    match parse_object_strict(bytes, map) {
        Ok(rec) => Ok(rec),
        Err(err) => match rewrite_non_finite(bytes) {
            // The first error is about the NaN token and has the right
            // position; a number beyond f64 is the real reason, though the
            // rewrite has shifted its position.
            Some(rewritten) => parse_object_strict(&rewritten, map).map_err(|again| {
                match again.split_once(" at line ") {
                    Some((reason, _)) if reason.contains("out of range") => reason.to_string(),
                    _ => err,
                }
            }),
            None => Err(err),
        },
    }
}

fn parse_object_strict(bytes: &[u8], map: &FieldMap) -> Result<Option<Record>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let rec = RecordSeed {
        map,
        lenient: false,
    }
    .deserialize(&mut de)
    .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(rec)
}

/// Deserializes one object into `Option<Record>`. `lenient`: a value that is
/// not an object yields None instead of an error (trainer_state entries).
pub(crate) struct RecordSeed<'m> {
    pub(crate) map: &'m FieldMap,
    pub(crate) lenient: bool,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Option<Record>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.lenient {
            d.deserialize_any(self)
        } else {
            d.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Option<Record>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut builder = RecordBuilder::new(self.map);
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let key = key.as_str();
            let role = builder.classify(key);
            let seed = NumSeed {
                text_numbers: matches!(role, Role::Field { .. }),
            };
            if let Some(value) = access.next_value_seed(seed)? {
                builder.add(key, role, value);
            }
        }
        Ok(builder.finish())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object(de::Unexpected::Seq)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.not_an_object(de::Unexpected::Unit)
    }
}

impl RecordSeed<'_> {
    fn not_an_object<E: de::Error>(&self, found: de::Unexpected) -> Result<Option<Record>, E> {
        if self.lenient {
            Ok(None)
        } else {
            Err(E::invalid_type(found, &"a JSON object"))
        }
    }
}

/// An object key, borrowed from the input unless it had escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key::Owned(v.to_string()))
    }
}

/// A value: a number (or a rewritten non-finite token), anything else None.
/// For the fields lrtop reads (step, LR, loss...), also a number written as
/// text (`"step": "10"`).
struct NumSeed {
    text_numbers: bool,
}

impl<'de> DeserializeSeed<'de> for NumSeed {
    type Value = Option<Num>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NumSeed {
    type Value = Option<Num>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Num::Int(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(if v >= 0 {
            Num::Int(v as u64)
        } else {
            Num::NegInt(v)
        }))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Num::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let text = || {
            self.text_numbers
                .then(|| v.trim().parse::<f64>().ok())
                .flatten()
                // Rust reads "NaN" and "inf" too; text that says so is not a value.
                .filter(|x| x.is_finite())
                .map(Num::Float)
        };
        Ok(non_finite_sentinel(v).map(Num::Float).or_else(text))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

// Rewritten tokens become these strings. The NUL (written as the escape
// \u0000) cannot come from an ordinary log string, so no real value is
// mistaken for one.
const NAN_SENTINEL: &str = "\0NaN";
const INF_SENTINEL: &str = "\0Infinity";
const NEG_INF_SENTINEL: &str = "\0-Infinity";

fn non_finite_sentinel(s: &str) -> Option<f64> {
    match s {
        NAN_SENTINEL => Some(f64::NAN),
        INF_SENTINEL => Some(f64::INFINITY),
        NEG_INF_SENTINEL => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Rewrites `NaN`, `Infinity` and `-Infinity` outside string literals into
/// sentinel strings. None when there is no such token (nothing to retry).
pub(crate) fn rewrite_non_finite(bytes: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(bytes, b"NaN").or_else(|| memchr::memmem::find(bytes, b"Infinity"))?;
    let tokens: [(&[u8], &[u8]); 3] = [
        (b"-Infinity", b"\"\\u0000-Infinity\""),
        (b"Infinity", b"\"\\u0000Infinity\""),
        (b"NaN", b"\"\\u0000NaN\""),
    ];
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut in_string = false;
    let mut changed = false;
    let mut i = 0;
    'scan: while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => {
                    out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
                    i += 2;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            for (token, replacement) in tokens {
                if bytes[i..].starts_with(token) {
                    out.extend_from_slice(replacement);
                    i += token.len();
                    changed = true;
                    continue 'scan;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn parse(s: &str) -> Result<Option<Record>, String> {
        parse_object(s.as_bytes(), &FieldMap::new())
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_and_numeric_text_fields_are_numbers() {
        let r = parse(r#"{"step": "10", "loss": 1.0, "loss": 2.0, "acc": 0.1, "acc": 0.2}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.step, Some(10));
        assert_eq!(r.loss, Some(2.0));
        assert_eq!(r.extra, vec![("acc".to_string(), 0.2)]);
        // Text in other fields is still not a metric.
        let r = parse(r#"{"step": 1, "run_id": "123", "lr": " 1e-4 "}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.lr, Some(1e-4));
        assert!(r.extra.is_empty());
        // The fast path agrees.
        let mut state = LineState::default();
        let fast = parse_object_with(
            br#"{"step": "7", "loss": 3, "loss": 4}"#,
            &FieldMap::new(),
            &mut state,
        )
        .unwrap()
        .unwrap();
        assert_eq!((fast.step, fast.loss), (Some(7), Some(4.0)));
    }

    #[test]
    fn non_finite_tokens_are_values() {
        let r = parse(r#"{"step": 29, "loss": NaN, "grad_norm": Infinity, "x": -Infinity}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.step, Some(29));
        assert!(r.loss.unwrap().is_nan());
        assert_eq!(r.grad_norm, Some(f64::INFINITY));
        assert_eq!(r.get("x"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn a_number_beyond_f64_next_to_nan_is_named_as_the_reason() {
        // Found by fuzzing (jsonl_record): the serde path reported the NaN
        // token instead of the number it really could not read.
        let line = br#"{"blr": 20.0, "loss": NaN, "time": 2.01e400}"#;
        let err = parse_object_serde(line, &FieldMap::new()).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        // Without a number out of range, the error keeps the NaN's position.
        let err = parse_object_serde(br#"{"loss": NaN, "x": [}"#, &FieldMap::new()).unwrap_err();
        assert!(err.contains("column"), "{err}");
    }

    #[test]
    fn tokens_inside_strings_are_left_alone() {
        let r = parse(r#"{"note": "NaN \" Infinity", "loss": 1.5}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.loss, Some(1.5));
        assert!(r.extra.is_empty());
        // A string that says NaN is not a number.
        let r = parse(r#"{"loss": "NaN", "step": 1}"#).unwrap().unwrap();
        assert_eq!(r.loss, None);
    }

    #[test]
    fn non_objects_and_garbage_are_errors() {
        for line in [
            "[1,2]",
            "3",
            "\"x\"",
            "null",
            "{\"a\": 1",
            "{\"a\": 1} x",
            "NaN",
        ] {
            assert!(parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn nested_and_non_numeric_values_are_ignored() {
        let r = parse(r#"{"step": 5, "cfg": {"lr": 1}, "tags": [1, 2], "ok": true, "n": null, "name": "x\ty"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.step, Some(5));
        assert_eq!(r.lr, None);
        assert!(r.extra.is_empty());
        assert_eq!(parse(r#"{"msg": "hello"}"#), Ok(None));
    }

    fn serde_only(s: &str) -> Result<Option<Record>, String> {
        parse_object_serde(s.as_bytes(), &FieldMap::new())
    }

    #[test]
    fn fast_path_agrees_with_serde() {
        let lines = [
            r#"{"step": 1, "loss": 4.045986652374268, "learning_rate": 2.9999e-05, "epoch": 0.004}"#,
            r#"{"step":-0,"x":-9223372036854775808,"y":-9223372036854775809,"z":18446744073709551616}"#,
            r#"{"a": 1E+2, "b": 0.1e-3, "c": 123456789012345678901234567890, "d": 5e-324, "e": 2.2250738585072011e-308}"#,
            r#" { "loss" : NaN , "grad_norm" : Infinity, "x": -Infinity, "ok": true, "n": null, "s": "txt" } "#,
            r#"{"s": "café", "loss": 1}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": .5}"#,
            r#"{"a": -}"#,
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            r#"{"a": 1} {"#,
            "{\"a\": \"x\ty\"}",
            r#"{}"#,
            r#"{"a": [1], "loss": 2}"#,
        ];
        for (i, line) in lines.iter().enumerate() {
            let map = FieldMap::new();
            let mut builder = RecordBuilder::new(&map);
            let took_fast_path =
                parse_flat(line.as_bytes(), &mut builder, &mut KeyCache::default()).is_some();
            assert_eq!(took_fast_path, i < 5 || i == 13, "{line}");
            let fast = parse(line);
            let slow = serde_only(line);
            let (fast, slow) = (format!("{fast:?}"), format!("{slow:?}"));
            if slow.starts_with("Err") {
                assert!(fast.starts_with("Err"), "{line}: {fast}");
            } else {
                assert_eq!(fast, slow, "{line}");
            }
        }
    }

    #[test]
    fn fast_path_number_edges_match_serde() {
        for number in [
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "-9223372036854775808",
            "-9223372036854775809",
            "-9999999999999999999",
            "-0.0",
            "0.30000000000000004",
            "9007199254740993",
            "9007199254740993.0",
            "123456789012345678901234.5e-3",
            "1e22",
            "1e23",
            "4.9e-324",
            "1e-400",
            "2.5E+0010",
            "1e0000000000000000000000001",
        ] {
            let line = format!("{{\"x\": {number}}}");
            let map = FieldMap::new();
            let mut builder = RecordBuilder::new(&map);
            assert!(
                parse_flat(line.as_bytes(), &mut builder, &mut KeyCache::default()).is_some(),
                "{line}"
            );
            let fast = format!("{:?}", builder.finish());
            let slow = format!("{:?}", serde_only(&line).unwrap());
            assert_eq!(fast, slow, "{line}");
        }
    }

    proptest::proptest! {
        #[test]
        fn key_cache_never_changes_a_result(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec![
                            "loss", "loss_x", "lr", "lr-AdamW", "l", "step", "train_runtime",
                            "train_loss", "eval_loss", "a\\u0062", "",
                        ]),
                        proptest::sample::select(vec!["1", "2.5", "NaN", "\"s\"", "null"]),
                    ),
                    0..6,
                ),
                1..12,
            )
        ) {
            let map = FieldMap::parse("loss=eval_loss").unwrap();
            let mut state = LineState::default();
            for pairs in lines {
                let body: Vec<String> =
                    pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                let line = format!("{{{}}}", body.join(", "));
                let cached = parse_object_with(line.as_bytes(), &map, &mut state);
                let fresh = parse_object_serde(line.as_bytes(), &map);
                proptest::prop_assert_eq!(format!("{cached:?}"), format!("{fresh:?}"), "{}", line);
            }
        }
    }

    #[test]
    fn escaped_keys_work() {
        let r = parse(r#"{"l\u0072": 0.5}"#).unwrap().unwrap();
        assert_eq!(r.lr, Some(0.5));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(3000))]

        #[test]
        fn fast_path_numbers_match_serde(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::f64::ANY.prop_map(|v| format!("{v:?}")),
                    proptest::num::f64::NORMAL.prop_map(|v| format!("{v:e}")),
                    proptest::num::u64::ANY.prop_map(|v| v.to_string()),
                    proptest::num::i64::ANY.prop_map(|v| v.to_string()),
                    "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
                    "-?[1-9][0-9]{0,15}\\.0{0,10}[0-9]{1,17}([eE]-?[0-9]{1,2})?",
                ],
                1..8,
            )
        ) {
            let body: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = match v.as_str() {
                        "NaN" | "inf" | "-inf" => "0",
                        v => v,
                    };
                    format!("\"k{i}\": {v}")
                })
                .collect();
            let line = format!("{{{}}}", body.join(", "));
            let map = FieldMap::new();
            let mut builder = RecordBuilder::new(&map);
            let fast = parse_flat(line.as_bytes(), &mut builder, &mut KeyCache::default()).map(|_| builder.finish());
            let slow = serde_only(&line);
            match (fast, slow) {
                (Some(fast), Ok(slow)) => proptest::prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}")),
                // Out-of-range numbers: serde rejects, the fast path says inf.
                (Some(_), Err(e)) => proptest::prop_assert!(e.contains("out of range"), "{line}: {e}"),
                (None, _) => proptest::prop_assert!(false, "fast path refused {line}"),
            }
        }
    }
}
