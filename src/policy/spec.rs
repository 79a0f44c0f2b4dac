//! The policy spec language: `NAME(key=value,...)` stages joined by `then`,
//! each stage but the last with `for N` updates. LRBench's dict form
//! (`{"lrPolicy":"COS","k0":...}`) is accepted too.
//!
//! This module only parses text into a syntax tree with byte positions; the
//! catalog (`super::catalog`) checks names and parameters.

use std::fmt;

use super::error::SpecError;

/// A parsed value with the byte range it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    /// A bare word or a quoted string.
    Str(String),
    List(Vec<Spanned<Value>>),
    /// A nested policy, for policies that hold other policies.
    Call(Call),
}

impl Value {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Number(_) => "a number",
            Value::Str(_) => "a word",
            Value::List(_) => "a list",
            Value::Call(_) => "a policy",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub key: Spanned<String>,
    pub value: Spanned<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: Spanned<String>,
    pub args: Vec<Arg>,
    /// End of the closing parenthesis (or of the name for a bare name).
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub call: Call,
    pub length: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecAst {
    pub stages: Vec<Stage>,
}

/// Parses a spec into its syntax tree.
pub fn parse(src: &str) -> Result<SpecAst, SpecError> {
    let trimmed = src.trim_start();
    if trimmed.starts_with('{') {
        let offset = src.len() - trimmed.len();
        return parse_lrbench_dict(src, offset).map(|call| SpecAst {
            stages: vec![Stage { call, length: None }],
        });
    }
    let mut p = Parser::new(src);
    let ast = p.spec()?;
    p.skip_ws();
    if let Some((pos, c)) = p.peek_char() {
        return Err(SpecError::at(
            src,
            pos,
            pos + c.len_utf8(),
            format!("unexpected '{c}' after the end of the policy"),
        )
        .with_help("stages are joined with `then`, e.g. `A(...) for 100 then B(...)`"));
    }
    Ok(ast)
}

/// A whole spec parsed as a single call (for values like `policies=[A(..), B(..)]`).
struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Lists and nested policies open around the current value.
    depth: usize,
}

/// Deepest nesting of lists and policies: deeper is an error, not a stack
/// overflow (policies hold a handful of levels).
const MAX_DEPTH: usize = 64;

const STRUCTURAL: &[char] = &['(', ')', ',', '=', '[', ']', '{', '}', '"', '\''];

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            depth: 0,
        }
    }

    fn err(&self, start: usize, end: usize, msg: impl Into<String>) -> SpecError {
        SpecError::at(self.src, start, end, msg)
    }

    fn peek_char(&self) -> Option<(usize, char)> {
        self.src[self.pos..].chars().next().map(|c| (self.pos, c))
    }

    fn skip_ws(&mut self) {
        while let Some((_, c)) = self.peek_char() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, want: char) -> bool {
        self.skip_ws();
        match self.peek_char() {
            Some((_, c)) if c == want => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, want: char, context: &str) -> Result<(), SpecError> {
        if self.eat(want) {
            return Ok(());
        }
        let (start, end, found) = self.describe_next();
        Err(self.err(
            start,
            end,
            format!("expected '{want}' {context}, found {found}"),
        ))
    }

    fn describe_next(&self) -> (usize, usize, String) {
        let mut pos = self.pos;
        for c in self.src[pos..].chars() {
            if !c.is_whitespace() {
                break;
            }
            pos += c.len_utf8();
        }
        match self.src[pos..].chars().next() {
            None => (pos, pos, "the end of the spec".to_string()),
            Some(c) => (pos, pos + c.len_utf8(), format!("'{c}'")),
        }
    }

    /// A maximal run of characters that are not whitespace or punctuation.
    fn word(&mut self) -> Option<Spanned<String>> {
        self.skip_ws();
        let start = self.pos;
        for c in self.src[start..].chars() {
            if c.is_whitespace() || STRUCTURAL.contains(&c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        (self.pos > start).then(|| Spanned {
            value: self.src[start..self.pos].to_string(),
            start,
            end: self.pos,
        })
    }

    fn peek_word(&mut self) -> Option<Spanned<String>> {
        let save = self.pos;
        let w = self.word();
        self.pos = save;
        w
    }

    fn spec(&mut self) -> Result<SpecAst, SpecError> {
        let mut stages = Vec::new();
        loop {
            let call = self.call()?;
            let mut length = None;
            if let Some(w) = self.peek_word()
                && w.value.eq_ignore_ascii_case("for")
            {
                self.word();
                length = Some(self.stage_length()?);
            }
            stages.push(Stage { call, length });
            match self.peek_word() {
                Some(w) if w.value.eq_ignore_ascii_case("then") => {
                    self.word();
                }
                _ => break,
            }
        }
        Ok(SpecAst { stages })
    }

    fn stage_length(&mut self) -> Result<Spanned<u64>, SpecError> {
        let Some(w) = self.word() else {
            let (s, e, found) = self.describe_next();
            return Err(self.err(
                s,
                e,
                format!("expected a number of updates after `for`, found {found}"),
            ));
        };
        match parse_count(&w.value) {
            Some(0) => Err(self.err(w.start, w.end, "a stage must last at least 1 update")),
            Some(n) => Ok(Spanned {
                value: n,
                start: w.start,
                end: w.end,
            }),
            None => Err(self.err(
                w.start,
                w.end,
                format!(
                    "expected a whole number of updates after `for`, found '{}'",
                    w.value
                ),
            )),
        }
    }

    fn call(&mut self) -> Result<Call, SpecError> {
        let Some(name) = self.word() else {
            let (s, e, found) = self.describe_next();
            return Err(self.err(s, e, format!("expected a policy name, found {found}")));
        };
        if name.value.parse::<f64>().is_ok() {
            return Err(self.err(
                name.start,
                name.end,
                format!("expected a policy name, found the number {}", name.value),
            ));
        }
        self.skip_ws();
        if !self.eat('(') {
            let end = name.end;
            return Ok(Call {
                name,
                args: Vec::new(),
                end,
            });
        }
        let mut args = Vec::new();
        loop {
            if self.eat(')') {
                break;
            }
            args.push(self.arg()?);
            if self.eat(',') {
                continue;
            }
            if self.eat(')') {
                break;
            }
            let (s, e, found) = self.describe_next();
            return Err(self.err(
                s,
                e,
                format!(
                    "expected ',' or ')' in the parameters of {}, found {found}",
                    name.value
                ),
            ));
        }
        Ok(Call {
            name,
            args,
            end: self.pos,
        })
    }

    fn arg(&mut self) -> Result<Arg, SpecError> {
        let Some(key) = self.word() else {
            let (s, e, found) = self.describe_next();
            return Err(self.err(s, e, format!("expected a parameter name, found {found}")));
        };
        self.expect('=', &format!("after the parameter name '{}'", key.value))?;
        let value = self.value()?;
        Ok(Arg { key, value })
    }

    fn value(&mut self) -> Result<Spanned<Value>, SpecError> {
        self.skip_ws();
        if self.depth >= MAX_DEPTH {
            let (s, e, _) = self.describe_next();
            return Err(self.err(
                s,
                e,
                format!("lists and policies nest more than {MAX_DEPTH} deep"),
            ));
        }
        self.depth += 1;
        let value = self.value_inner();
        self.depth -= 1;
        value
    }

    fn value_inner(&mut self) -> Result<Spanned<Value>, SpecError> {
        let start = self.pos;
        match self.peek_char() {
            Some((_, '[')) => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(']') {
                        break;
                    }
                    items.push(self.value()?);
                    if self.eat(',') {
                        continue;
                    }
                    if self.eat(']') {
                        break;
                    }
                    let (s, e, found) = self.describe_next();
                    return Err(self.err(
                        s,
                        e,
                        format!("expected ',' or ']' in a list, found {found}"),
                    ));
                }
                Ok(Spanned {
                    value: Value::List(items),
                    start,
                    end: self.pos,
                })
            }
            Some((_, q @ ('"' | '\''))) => {
                self.pos += 1;
                let body_start = self.pos;
                match self.src[body_start..].find(q) {
                    Some(len) => {
                        self.pos = body_start + len + 1;
                        Ok(Spanned {
                            value: Value::Str(self.src[body_start..body_start + len].to_string()),
                            start,
                            end: self.pos,
                        })
                    }
                    None => Err(self.err(start, self.src.len(), "unterminated string")),
                }
            }
            _ => {
                let Some(w) = self.word() else {
                    let (s, e, found) = self.describe_next();
                    return Err(self.err(s, e, format!("expected a value, found {found}")));
                };
                if let Some(x) = parse_number(&w.value) {
                    return Ok(Spanned {
                        value: Value::Number(x),
                        start: w.start,
                        end: w.end,
                    });
                }
                // A word followed by '(' is a nested policy.
                let save = self.pos;
                if self.eat('(') {
                    self.pos = w.start;
                    let call = self.call()?;
                    return Ok(Spanned {
                        end: call.end,
                        value: Value::Call(call),
                        start: w.start,
                    });
                }
                self.pos = save;
                Ok(Spanned {
                    value: Value::Str(w.value),
                    start: w.start,
                    end: w.end,
                })
            }
        }
    }
}

/// Any float syntax Rust and Python agree on, without the words `inf`/`nan`
/// (those stay words so they are reported as invalid values, not parsed).
pub fn parse_number(word: &str) -> Option<f64> {
    let first = word.chars().next()?;
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return None;
    }
    let cleaned: String = word.chars().filter(|&c| c != '_').collect();
    cleaned.parse::<f64>().ok()
}

fn parse_count(word: &str) -> Option<u64> {
    let x = parse_number(word)?;
    (x >= 0.0 && x.fract() == 0.0 && x <= 9.0e15).then_some(x as u64)
}

/// LRBench's dict form: `{"lrPolicy": "COS", "k0": 0.1, "k1": 1.0, "l": 50}`.
fn parse_lrbench_dict(src: &str, offset: usize) -> Result<Call, SpecError> {
    let body = &src[offset..];
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        let pos = offset + byte_offset_of(body, e.line(), e.column());
        SpecError::at(src, pos, pos + 1, format!("invalid LRBench dict: {e}"))
    })?;
    let end = src.len();
    let whole = |msg: String| SpecError::at(src, offset, end, msg);
    let serde_json::Value::Object(map) = json else {
        return Err(whole("an LRBench dict must be a JSON object".into()));
    };
    let Some(policy) = map.get("lrPolicy") else {
        return Err(whole("the LRBench dict has no \"lrPolicy\" key".into()));
    };
    let Some(policy) = policy.as_str() else {
        return Err(whole("\"lrPolicy\" must be a string".into()));
    };
    fn span<T>(value: T, start: usize, end: usize) -> Spanned<T> {
        Spanned { value, start, end }
    }
    let mut args = Vec::new();
    for (key, value) in &map {
        if key == "lrPolicy" {
            continue;
        }
        // LRBench passes None for unused parameters.
        if value.is_null() {
            continue;
        }
        args.push(Arg {
            key: span(key.clone(), offset, end),
            value: span(
                json_to_value(value).map_err(|m| whole(format!("\"{key}\": {m}")))?,
                offset,
                end,
            ),
        });
    }
    Ok(Call {
        name: span(policy.to_string(), offset, end),
        args,
        end,
    })
}

fn json_to_value(v: &serde_json::Value) -> Result<Value, String> {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Value::Number)
            .ok_or_else(|| "number out of range".to_string()),
        serde_json::Value::String(s) => Ok(Value::Str(s.clone())),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| {
                json_to_value(item).map(|value| Spanned {
                    value,
                    start: 0,
                    end: 0,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        serde_json::Value::Bool(b) => Ok(Value::Str(b.to_string())),
        other => Err(format!("unsupported value {other}")),
    }
}

fn byte_offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return (offset + column.saturating_sub(1)).min(text.len());
        }
        offset += l.len();
    }
    text.len()
}

/// Formats a number so that it parses back to the same f64: integers without
/// a fraction, very small or large magnitudes in exponent form.
pub fn format_number(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let a = x.abs();
    if x.fract() == 0.0 && a < 1e15 {
        format!("{}", x as i64)
    } else if (1e-4..1e15).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(x) => f.write_str(&format_number(*x)),
            Value::Str(s) => {
                let bare = !s.is_empty()
                    && parse_number(s).is_none()
                    && s.chars()
                        .all(|c| !c.is_whitespace() && !STRUCTURAL.contains(&c))
                    && !s.eq_ignore_ascii_case("then")
                    && !s.eq_ignore_ascii_case("for");
                if bare {
                    f.write_str(s)
                } else if s.contains('"') {
                    write!(f, "'{s}'")
                } else {
                    write!(f, "\"{s}\"")
                }
            }
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}", item.value)?;
                }
                f.write_str("]")
            }
            Value::Call(call) => write!(f, "{call}"),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.value)?;
        f.write_str("(")?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", arg.key.value, arg.value.value)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_call(src: &str) -> Call {
        let ast = parse(src).unwrap();
        assert_eq!(ast.stages.len(), 1);
        ast.stages.into_iter().next().unwrap().call
    }

    #[test]
    fn parses_call_with_numbers_lists_and_strings() {
        let call =
            one_call(r#" NSTEP( k0=1e-1, gamma = .5 , l=[100, 250], mode="tri", x=exp_range ) "#);
        assert_eq!(call.name.value, "NSTEP");
        assert_eq!(call.args.len(), 5);
        assert_eq!(call.args[0].value.value, Value::Number(0.1));
        assert_eq!(call.args[1].value.value, Value::Number(0.5));
        match &call.args[2].value.value {
            Value::List(items) => assert_eq!(items.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(call.args[3].value.value, Value::Str("tri".into()));
        assert_eq!(call.args[4].value.value, Value::Str("exp_range".into()));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for open in ["[", "A(x="] {
            let src = format!("FIX(k0={})", open.repeat(100_000));
            let err = parse(&src).unwrap_err();
            assert!(err.message.contains("nest more than"), "{}", err.message);
        }
        // Realistic nesting still parses.
        parse(
            "ChangeLROnPlateau(policies=[TRI(k0=0.01,k1=0.1,l=[[1]]),COS(k0=0.001,k1=0.05,l=500)])",
        )
        .unwrap();
    }

    #[test]
    fn parses_stages() {
        let ast =
            parse("LinearLR(lr=0.1) for 50 then CosineAnnealingLR(lr=0.1,T_max=350)").unwrap();
        assert_eq!(ast.stages.len(), 2);
        assert_eq!(ast.stages[0].length.as_ref().unwrap().value, 50);
        assert!(ast.stages[1].length.is_none());
    }

    #[test]
    fn words_like_1_sqrt_are_strings() {
        let call = one_call("warmup_stable_decay(decay_type=1-sqrt)");
        assert_eq!(call.args[0].value.value, Value::Str("1-sqrt".into()));
    }

    #[test]
    fn nested_calls() {
        let call = one_call("ChangeLROnPlateau(policies=[FIX(k0=0.1), FIX(k0=0.01)])");
        match &call.args[0].value.value {
            Value::List(items) => {
                assert!(matches!(items[0].value, Value::Call(_)));
                assert_eq!(items[1].value.to_string(), "FIX(k0=0.01)");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lrbench_dict() {
        let call =
            one_call(r#"{"lrPolicy":"TRIEXP","k0":0.05,"k1":0.3,"l":50,"gamma":0.94,"p":null}"#);
        assert_eq!(call.name.value, "TRIEXP");
        assert_eq!(call.args.len(), 4);
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("COS(k0=0.1 k1=1)").unwrap_err();
        assert_eq!(e.start, 11);
        let e = parse("COS(k0=0.1) for x").unwrap_err();
        assert!(e.message.contains("whole number"), "{e}");
        let e = parse("COS(k0=0.1) FIX(k0=1)").unwrap_err();
        assert_eq!(e.start, 12);
        let e = parse("COS(k0=\"abc)").unwrap_err();
        assert!(e.message.contains("unterminated"));
        let e = parse("").unwrap_err();
        assert!(e.message.contains("policy name"));
    }

    #[test]
    fn number_formatting_round_trips() {
        for x in [
            0.1,
            1e-7,
            3e-3,
            37.0,
            1e20,
            0.30000000000000004,
            -2.5,
            1.0 / 3.0,
        ] {
            let s = format_number(x);
            assert_eq!(parse_number(&s), Some(x), "{s}");
        }
        assert_eq!(format_number(37.0), "37");
        assert_eq!(format_number(1e-7), "1e-7");
    }
}
