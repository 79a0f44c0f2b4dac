//! Parameter descriptions and checked access to a call's arguments.

use super::Policy;
use super::catalog::{self, PolicyInfo};
use super::error::SpecError;
use super::spec::{Call, Spanned, Value, format_number};

/// What values a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A learning rate: finite and >= 0.
    Lr,
    /// Any finite number.
    Float,
    /// Finite and > 0 (periods, factors, timescales).
    Positive,
    /// Finite and >= 0.
    NonNeg,
    /// In [0, 1].
    Fraction,
    /// A whole number >= 0.
    Count,
    /// A whole number >= 1 (periods measured in updates).
    PosCount,
    /// A list of whole numbers >= 0.
    Counts,
    /// A list of finite numbers.
    Floats,
    /// One word out of a fixed set (case-insensitive).
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Flag,
    /// A non-empty list of policies.
    Policies,
}

impl Kind {
    pub fn describe(self) -> String {
        match self {
            Kind::Lr => "learning rate >= 0".into(),
            Kind::Float => "number".into(),
            Kind::Positive => "number > 0".into(),
            Kind::NonNeg => "number >= 0".into(),
            Kind::Fraction => "number in [0, 1]".into(),
            Kind::Count => "whole number >= 0".into(),
            Kind::PosCount => "whole number >= 1".into(),
            Kind::Counts => "list of whole numbers".into(),
            Kind::Floats => "list of numbers".into(),
            Kind::Choice(options) => format!("one of {}", options.join("|")),
            Kind::Flag => "true|false".into(),
            Kind::Policies => "list of policies".into(),
        }
    }
}

/// Whether a parameter must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Def {
    Required,
    /// May be left out; the policy then derives it (documented in `doc`).
    Optional,
    /// Default value, written in spec syntax.
    Value(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Def,
    pub doc: &'static str,
}

pub const fn req(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        default: Def::Required,
        doc,
    }
}

pub const fn opt(name: &'static str, kind: Kind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        default: Def::Optional,
        doc,
    }
}

pub const fn dflt(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    doc: &'static str,
) -> Param {
    Param {
        name,
        kind,
        default: Def::Value(default),
        doc,
    }
}

/// The checked arguments of one call, in the catalog's parameter order.
pub struct Args<'a> {
    pub src: &'a str,
    pub call: &'a Call,
    pub info: &'static PolicyInfo,
    given: Vec<Option<&'a Spanned<Value>>>,
    /// Nested policies for `Kind::Policies` parameters, by parameter index.
    nested: Vec<Option<Vec<Policy>>>,
}

impl<'a> Args<'a> {
    /// Matches the call's arguments against the policy's parameters.
    pub fn resolve(
        src: &'a str,
        call: &'a Call,
        info: &'static PolicyInfo,
    ) -> Result<Self, SpecError> {
        let mut given: Vec<Option<&Spanned<Value>>> = vec![None; info.params.len()];
        for arg in &call.args {
            let key = &arg.key;
            let Some(i) = info
                .params
                .iter()
                .position(|p| p.name.eq_ignore_ascii_case(&key.value))
            else {
                let names: Vec<&str> = info.params.iter().map(|p| p.name).collect();
                let mut e = SpecError::at(
                    src,
                    key.start,
                    key.end,
                    format!("{} has no parameter '{}'", info.name, key.value),
                );
                e = e.with_help(
                    match catalog::closest(&key.value, names.iter().copied(), 2).first() {
                        Some(best) => format!(
                            "did you mean '{best}'? {} takes: {}",
                            info.name,
                            names.join(", ")
                        ),
                        None if names.is_empty() => format!("{} takes no parameters", info.name),
                        None => format!("{} takes: {}", info.name, names.join(", ")),
                    },
                );
                return Err(e);
            };
            if given[i].is_some() {
                return Err(SpecError::at(
                    src,
                    key.start,
                    key.end,
                    format!("parameter '{}' is given twice", info.params[i].name),
                ));
            }
            given[i] = Some(&arg.value);
        }
        let mut nested = vec![None; info.params.len()];
        for (i, param) in info.params.iter().enumerate() {
            match given[i] {
                None if param.default == Def::Required => {
                    let required: Vec<&str> = info
                        .params
                        .iter()
                        .filter(|p| p.default == Def::Required)
                        .map(|p| p.name)
                        .collect();
                    return Err(SpecError::at(
                        src,
                        call.name.start,
                        call.end.max(call.name.end),
                        format!(
                            "{} needs parameter '{}' ({})",
                            info.name, param.name, param.doc
                        ),
                    )
                    .with_help(format!("required: {}", required.join(", "))));
                }
                None => {}
                Some(value) => {
                    check_kind(src, param, value)?;
                    if param.kind == Kind::Policies {
                        nested[i] = Some(nested_policies(src, value)?);
                    }
                }
            }
        }
        Ok(Args {
            src,
            call,
            info,
            given,
            nested,
        })
    }

    fn index(&self, name: &str) -> usize {
        self.info
            .params
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("{} has no parameter {name} in the catalog", self.info.name))
    }

    pub fn is_given(&self, name: &str) -> bool {
        self.given[self.index(name)].is_some()
    }

    fn value(&self, name: &str) -> Option<Value> {
        let i = self.index(name);
        if let Some(v) = self.given[i] {
            return Some(v.value.clone());
        }
        match self.info.params[i].default {
            Def::Value(text) => Some(default_value(text)),
            _ => None,
        }
    }

    /// A numeric parameter, given or defaulted.
    pub fn num(&self, name: &str) -> f64 {
        self.opt_num(name).unwrap_or_else(|| {
            panic!(
                "{}.{name} has neither a value nor a default",
                self.info.name
            )
        })
    }

    pub fn opt_num(&self, name: &str) -> Option<f64> {
        match self.value(name)? {
            Value::Number(x) => Some(x),
            _ => None,
        }
    }

    pub fn count(&self, name: &str) -> u64 {
        self.num(name) as u64
    }

    pub fn opt_count(&self, name: &str) -> Option<u64> {
        self.opt_num(name).map(|x| x as u64)
    }

    pub fn list(&self, name: &str) -> Vec<f64> {
        match self.value(name) {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|v| match v.value {
                    Value::Number(x) => Some(x),
                    _ => None,
                })
                .collect(),
            Some(Value::Number(x)) => vec![x],
            _ => Vec::new(),
        }
    }

    /// A `Kind::Choice` parameter, lower-cased.
    pub fn choice(&self, name: &str) -> String {
        match self.value(name) {
            Some(Value::Str(s)) => s.to_ascii_lowercase(),
            _ => String::new(),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.choice(name) == "true"
    }

    pub fn policies(&self, name: &str) -> Vec<Policy> {
        self.nested[self.index(name)].clone().unwrap_or_default()
    }

    /// An error pointing at the parameter if it was given, else at the call.
    pub fn err(&self, name: &str, message: impl Into<String>) -> SpecError {
        match self.given[self.index(name)] {
            Some(v) => SpecError::at(self.src, v.start, v.end, message),
            None => SpecError::at(self.src, self.call.name.start, self.call.end, message),
        }
    }

    /// The call as canonical text: catalog name, given parameters in catalog order.
    pub fn canonical(&self) -> String {
        let mut out = String::from(self.info.name);
        out.push('(');
        let mut first = true;
        for (i, param) in self.info.params.iter().enumerate() {
            let Some(value) = self.given[i] else { continue };
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(param.name);
            out.push('=');
            match (&param.kind, &self.nested[i]) {
                (Kind::Policies, Some(policies)) => {
                    out.push('[');
                    let specs: Vec<String> = policies.iter().map(|p| p.to_string()).collect();
                    out.push_str(&specs.join(","));
                    out.push(']');
                }
                (Kind::Choice(_), _) | (Kind::Flag, _) => match &value.value {
                    Value::Str(s) => out.push_str(&Value::Str(s.to_ascii_lowercase()).to_string()),
                    other => out.push_str(&other.to_string()),
                },
                _ => out.push_str(&value.value.to_string()),
            }
        }
        out.push(')');
        out
    }
}

fn default_value(text: &str) -> Value {
    match super::spec::parse_number(text) {
        Some(x) => Value::Number(x),
        None => Value::Str(text.to_string()),
    }
}

fn nested_policies(src: &str, value: &Spanned<Value>) -> Result<Vec<Policy>, SpecError> {
    let Value::List(items) = &value.value else {
        unreachable!("checked by check_kind")
    };
    items
        .iter()
        .map(|item| match &item.value {
            Value::Call(call) => Policy::from_calls(src, &[(call, None)]),
            other => Err(SpecError::at(
                src,
                item.start,
                item.end,
                format!(
                    "expected a policy like COS(k0=0.01,k1=0.1,l=100), found {}",
                    other.kind_name()
                ),
            )),
        })
        .collect()
}

fn check_kind(src: &str, param: &Param, value: &Spanned<Value>) -> Result<(), SpecError> {
    let fail = |msg: String| Err(SpecError::at(src, value.start, value.end, msg));
    let name = param.name;
    let number = |v: &Value| match v {
        Value::Number(x) => Some(*x),
        _ => None,
    };
    match param.kind {
        Kind::Lr
        | Kind::Float
        | Kind::Positive
        | Kind::NonNeg
        | Kind::Fraction
        | Kind::Count
        | Kind::PosCount => {
            let Some(x) = number(&value.value) else {
                return fail(format!(
                    "'{name}' must be a {}, found {} '{}'",
                    param.kind.describe(),
                    value.value.kind_name(),
                    value.value
                ));
            };
            check_number(param, x).or_else(fail)
        }
        Kind::Counts | Kind::Floats => {
            let items: Vec<&Spanned<Value>> = match &value.value {
                Value::List(items) => items.iter().collect(),
                Value::Number(_) => vec![value],
                other => {
                    return fail(format!(
                        "'{name}' must be a {}, found {}",
                        param.kind.describe(),
                        other.kind_name()
                    ));
                }
            };
            for item in items {
                let Some(x) = number(&item.value) else {
                    return fail(format!(
                        "'{name}' must be a list of numbers, found {}",
                        item.value.kind_name()
                    ));
                };
                let element_kind = if param.kind == Kind::Counts {
                    Kind::Count
                } else {
                    Kind::Float
                };
                check_number(
                    &Param {
                        kind: element_kind,
                        ..*param
                    },
                    x,
                )
                .or_else(fail)?;
            }
            Ok(())
        }
        Kind::Choice(options) => match &value.value {
            Value::Str(s) if options.iter().any(|o| o.eq_ignore_ascii_case(s)) => Ok(()),
            other => fail(format!(
                "'{name}' must be one of {}, found '{other}'",
                options.join(", ")
            )),
        },
        Kind::Flag => match &value.value {
            Value::Str(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                Ok(())
            }
            other => fail(format!("'{name}' must be true or false, found '{other}'")),
        },
        Kind::Policies => match &value.value {
            Value::List(items) if !items.is_empty() => Ok(()),
            other => fail(format!(
                "'{name}' must be a non-empty list of policies like [COS(k0=0.01,k1=0.1,l=100), FIX(k0=0.001)], found '{other}'"
            )),
        },
    }
}

fn check_number(param: &Param, x: f64) -> Result<(), String> {
    let name = param.name;
    let shown = format_number(x);
    if !x.is_finite() {
        return Err(format!("'{name}' must be finite, found {shown}"));
    }
    let ok = match param.kind {
        Kind::Lr => x >= 0.0,
        Kind::Positive => x > 0.0,
        Kind::NonNeg => x >= 0.0,
        Kind::Fraction => (0.0..=1.0).contains(&x),
        Kind::Count => x >= 0.0 && x.fract() == 0.0 && x <= 9.0e15,
        Kind::PosCount => x >= 1.0 && x.fract() == 0.0 && x <= 9.0e15,
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match param.kind {
        Kind::Lr => format!("'{name}' is a learning rate and cannot be negative, found {shown}"),
        Kind::Positive if name == "l" || name.starts_with('T') || name.contains("step") => {
            format!("'{name}' is a period and must be positive, found {shown}")
        }
        _ => format!(
            "'{name}' must be a {}, found {shown}",
            param.kind.describe()
        ),
    })
}
