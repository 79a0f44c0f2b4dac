//! `--target METRIC>=VALUE` / `METRIC<=VALUE`: a goal whose first reach is
//! reported as an info alert.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetOp {
    /// `>=`: reached when the metric is at least the value (accuracy).
    Ge,
    /// `<=`: reached when the metric is at most the value (loss).
    Le,
}

impl TargetOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetOp::Ge => ">=",
            TargetOp::Le => "<=",
        }
    }

    pub fn holds(self, value: f64, target: f64) -> bool {
        match self {
            TargetOp::Ge => value >= target,
            TargetOp::Le => value <= target,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub metric: String,
    pub op: TargetOp,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid target '{input}': {reason} (expected METRIC>=VALUE or METRIC<=VALUE, e.g. val_acc>=0.95 or eval_loss<=1.2)"
)]
pub struct TargetError {
    pub input: String,
    pub reason: String,
}

impl Target {
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let err = |reason: &str| TargetError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (pos, op) = match (input.find(">="), input.find("<=")) {
            (Some(i), None) => (i, TargetOp::Ge),
            (None, Some(i)) => (i, TargetOp::Le),
            (Some(_), Some(_)) => return Err(err("give exactly one of >= and <=")),
            (None, None) => {
                let reason = if input.contains(['>', '<', '=']) {
                    "the comparison must be >= or <="
                } else {
                    "no comparison found"
                };
                return Err(err(reason));
            }
        };
        let metric = input[..pos].trim();
        let value = input[pos + 2..].trim();
        if metric.is_empty() {
            return Err(err("the metric name is missing"));
        }
        if metric.contains(['>', '<', '=']) || metric.chars().any(char::is_whitespace) {
            return Err(err("the metric name must be a single word"));
        }
        if value.is_empty() {
            return Err(err("the value is missing"));
        }
        let value: f64 = value
            .parse()
            .map_err(|_| err(&format!("'{value}' is not a number")))?;
        if !value.is_finite() {
            return Err(err("the value must be finite"));
        }
        Ok(Target {
            metric: metric.to_string(),
            op,
            value,
        })
    }

    /// The metric's value in a record: exact name first, then ignoring case.
    pub fn read(&self, rec: &crate::metrics::Record) -> Option<f64> {
        rec.get(&self.metric).or_else(|| {
            rec.values()
                .find(|(k, _)| k.eq_ignore_ascii_case(&self.metric))
                .map(|(_, v)| v)
        })
    }
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::parse(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.metric, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_directions() {
        let t = Target::parse("val_acc>=0.95").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.op, t.value),
            ("val_acc", TargetOp::Ge, 0.95)
        );
        let t = Target::parse(" eval_loss <= 1.2 ").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.op, t.value),
            ("eval_loss", TargetOp::Le, 1.2)
        );
        assert_eq!(t.to_string(), "eval_loss<=1.2");
    }

    #[test]
    fn rejects_malformed_targets_with_a_reason() {
        for bad in [
            "val_acc",
            "val_acc>0.9",
            "val_acc=0.9",
            ">=0.9",
            "val_acc>=",
            "val_acc>=abc",
            "a>=1<=2",
            "val acc>=1",
            "x>=inf",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("expected METRIC>=VALUE"),
                "{bad}: {e}"
            );
        }
    }
}
