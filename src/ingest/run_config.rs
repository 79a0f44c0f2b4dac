//! What a tracker records about a run besides its metrics (W&B's config,
//! MLflow's params, Trackio's configs): its name, its planned length and,
//! when the config is a Hugging Face `TrainingArguments`, the schedule it
//! declares.

use crate::policy::Policy;

/// The scheduler name of a run lrtop trained.
const LRTOP_SCHEDULER: &str = "lrtop";

/// A run's recorded settings, as far as lrtop uses them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    /// The tracker's name for the run.
    pub name: Option<String>,
    /// Updates planned (`total_steps`, `max_steps`, `num_training_steps`).
    pub total_steps: Option<u64>,
    /// The LR schedule the config names, as a policy spec, when it names
    /// it unambiguously (HF's `lr_scheduler_type` with its arguments).
    pub declared: Option<String>,
    /// The scheduler's name as configured, whether lrtop knows it or not.
    pub scheduler: Option<String>,
}

/// One configured value: a number or a text.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Number(f64),
    Text(String),
}

impl ConfigValue {
    /// From a JSON value (W&B's `value_json`, Trackio's config); objects,
    /// lists and nulls are not settings lrtop reads.
    pub fn from_json(value: &serde_json::Value) -> Option<ConfigValue> {
        match value {
            serde_json::Value::Number(n) => n.as_f64().map(ConfigValue::Number),
            serde_json::Value::String(s) => Some(ConfigValue::Text(s.clone())),
            serde_json::Value::Bool(b) => Some(ConfigValue::Number(f64::from(u8::from(*b)))),
            _ => None,
        }
    }

    /// From text (MLflow's params are strings): a number if it parses as one.
    pub fn from_text(text: &str) -> ConfigValue {
        let t = text.trim();
        match t.parse::<f64>() {
            Ok(v) => ConfigValue::Number(v),
            Err(_) => ConfigValue::Text(t.trim_matches('"').to_string()),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            ConfigValue::Number(v) => Some(*v),
            ConfigValue::Text(t) => t.parse().ok(),
        }
    }

    fn text(&self) -> String {
        match self {
            ConfigValue::Number(v) => v.to_string(),
            ConfigValue::Text(t) => t.clone(),
        }
    }
}

impl RunConfig {
    /// Reads the settings lrtop uses from a run's configured values.
    pub fn from_values<'a>(values: impl IntoIterator<Item = (&'a str, ConfigValue)>) -> RunConfig {
        let values: Vec<(String, ConfigValue)> = values
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let get = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| values.iter().find(|(name, _)| name == k).map(|(_, v)| v))
        };
        let count = |keys: &[&str]| {
            get(keys)
                .and_then(ConfigValue::number)
                .filter(|v| v.is_finite() && *v > 0.0 && v.fract() == 0.0)
                .map(|v| v as u64)
        };
        let total_steps = count(&[
            "total_steps",
            "max_steps",
            "num_training_steps",
            "train_steps",
        ]);
        let scheduler = get(&["lr_scheduler_type", "scheduler", "lr_scheduler", "schedule"])
            .map(ConfigValue::text);
        let declared = hf_declared(&values, total_steps);
        RunConfig {
            name: get(&["run_name", "name"]).map(ConfigValue::text),
            total_steps,
            declared,
            scheduler,
        }
    }

    /// The header line `lrtop train` starts its JSONL log with
    /// (`{"header": {"run", "policy", "total_steps", ...}}`): the policy it
    /// trained with is known, not a guess.
    pub fn from_lrtop_header(line: &[u8]) -> Option<RunConfig> {
        let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
        let head = &line[start..line.len().min(start + 24)];
        if head.first() != Some(&b'{') || memchr::memmem::find(head, b"\"header\"").is_none() {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(line).ok()?;
        let header = value.get("header")?.as_object()?;
        header.get("lrtop")?;
        let text = |k: &str| header.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let declared = text("policy").filter(|p| Policy::parse(p).is_ok());
        Some(RunConfig {
            name: text("run"),
            total_steps: header.get("total_steps").and_then(|v| v.as_u64()),
            scheduler: declared.as_ref().map(|_| LRTOP_SCHEDULER.to_string()),
            declared,
        })
    }

    /// Whether the declared policy is the one the run trained with (lrtop's
    /// own log), rather than one read from a tracker's settings.
    pub fn policy_is_known(&self) -> bool {
        self.scheduler.as_deref() == Some(LRTOP_SCHEDULER) && self.declared.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == RunConfig::default()
    }
}

/// HF `TrainingArguments` name the schedule exactly: `lr_scheduler_type`,
/// `learning_rate`, `warmup_steps` and the run's `max_steps`.
fn hf_declared(values: &[(String, ConfigValue)], total: Option<u64>) -> Option<String> {
    let get = |k: &str| values.iter().find(|(name, _)| name == k).map(|(_, v)| v);
    let kind = get("lr_scheduler_type")?.text().to_ascii_lowercase();
    // Older transformers log the enum: "SchedulerType.COSINE".
    let kind = kind.rsplit('.').next().unwrap_or(&kind).to_string();
    let lr = get("learning_rate")?.number()?;
    let total = total?;
    let warmup = get("warmup_steps")
        .and_then(ConfigValue::number)
        .filter(|w| w.is_finite() && *w >= 0.0)
        .unwrap_or(0.0) as u64;
    let spec = match kind.as_str() {
        "linear" | "cosine" => {
            format!("{kind}(lr={lr},num_warmup_steps={warmup},num_training_steps={total})")
        }
        "constant" => format!("constant(lr={lr})"),
        "constant_with_warmup" => {
            format!("constant_with_warmup(lr={lr},num_warmup_steps={warmup})")
        }
        _ => return None,
    };
    // Only a spec the database parses is declared.
    Policy::parse(&spec).ok().map(|_| spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrtop_train_headers_name_the_policy() {
        let line = br#"{"header":{"lrtop":"0.1.0","run":"log-2","attempt":2,"policy":"cosine(lr=0.1,num_warmup_steps=0,num_training_steps=300)","total_steps":300}}"#;
        let c = RunConfig::from_lrtop_header(line).unwrap();
        assert_eq!(c.name.as_deref(), Some("log-2"));
        assert_eq!(c.total_steps, Some(300));
        assert_eq!(
            c.declared.as_deref(),
            Some("cosine(lr=0.1,num_warmup_steps=0,num_training_steps=300)")
        );
        assert!(c.policy_is_known());
        // Other objects with a "header" key are not lrtop's.
        assert_eq!(
            RunConfig::from_lrtop_header(br#"{"header": {"x": 1}}"#),
            None
        );
        assert_eq!(
            RunConfig::from_lrtop_header(br#"{"step": 1, "loss": 2}"#),
            None
        );
    }

    #[test]
    fn hf_training_arguments_declare_their_schedule() {
        let c = RunConfig::from_values([
            ("learning_rate", ConfigValue::Number(5e-5)),
            ("lr_scheduler_type", ConfigValue::Text("cosine".into())),
            ("warmup_steps", ConfigValue::Number(30.0)),
            ("max_steps", ConfigValue::Number(300.0)),
        ]);
        assert_eq!(c.total_steps, Some(300));
        assert_eq!(
            c.declared.as_deref(),
            Some("cosine(lr=0.00005,num_warmup_steps=30,num_training_steps=300)")
        );
    }

    #[test]
    fn a_custom_scheduler_name_is_kept_but_not_declared() {
        let c = RunConfig::from_values([
            ("lr", ConfigValue::Number(0.003)),
            ("scheduler", ConfigValue::Text("linear_warmup".into())),
            ("total_steps", ConfigValue::Number(300.0)),
        ]);
        assert_eq!(c.total_steps, Some(300));
        assert_eq!(c.scheduler.as_deref(), Some("linear_warmup"));
        assert_eq!(c.declared, None);
        assert_eq!(ConfigValue::from_text(" 32 "), ConfigValue::Number(32.0));
    }
}
