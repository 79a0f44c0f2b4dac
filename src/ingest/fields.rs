//! Field aliasing: which log key is the step, the LR, the loss, ... and the
//! `--map` overrides. Turns (key, number) pairs into a `Record`.

use crate::metrics::Record;
use crate::metrics::record::{GRAD_NORM, LOSS, LR};

use super::IngestError;

/// A field lrtop knows by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Step,
    Epoch,
    Time,
    Lr,
    Loss,
    GradNorm,
}

impl Field {
    const ALL: [Field; 6] = [
        Field::Lr,
        Field::Loss,
        Field::Step,
        Field::Epoch,
        Field::GradNorm,
        Field::Time,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Step => "step",
            Field::Epoch => "epoch",
            Field::Time => "time",
            Field::Lr => LR,
            Field::Loss => LOSS,
            Field::GradNorm => GRAD_NORM,
        }
    }

    fn from_name(name: &str) -> Option<Field> {
        match name {
            "grad-norm" => Some(Field::GradNorm),
            "learning_rate" => Some(Field::Lr),
            _ => Field::ALL.into_iter().find(|f| f.name() == name),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Key aliases plus `--map` overrides (which take priority).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    overrides: Vec<(Field, String)>,
}

/// What a key means. `rank` orders competing keys for one field: 0 is an
/// override, then the aliases in the order listed in `classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Field { field: Field, rank: u8 },
    Extra,
}

impl FieldMap {
    /// No overrides: the built-in aliases only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `--map` syntax: `lr=FIELD,loss=FIELD,step=FIELD,...`. Targets:
    /// lr, loss, step, epoch, time, grad_norm.
    pub fn parse(spec: &str) -> Result<FieldMap, IngestError> {
        let err = |message: String| IngestError::FieldMap {
            spec: spec.to_string(),
            message,
        };
        let mut map = FieldMap::new();
        if spec.trim().is_empty() {
            return Err(err("expected TARGET=FIELD[,TARGET=FIELD...]".into()));
        }
        for item in spec.split(',') {
            let item = item.trim();
            let Some((target, key)) = item.split_once('=') else {
                return Err(err(format!("'{item}' is not TARGET=FIELD")));
            };
            let (target, key) = (target.trim(), key.trim());
            let field = Field::from_name(target).ok_or_else(|| {
                err(format!(
                    "unknown target '{target}' (known: lr, loss, step, epoch, time, grad_norm)"
                ))
            })?;
            if key.is_empty() {
                return Err(err(format!("no field name after '{target}='")));
            }
            if map.overrides.iter().any(|(f, _)| *f == field) {
                return Err(err(format!("'{}' is mapped twice", field.name())));
            }
            map.overrides.push((field, key.to_string()));
        }
        Ok(map)
    }

    /// Maps `key` to `field` ahead of every alias.
    pub fn with_override(mut self, field: Field, key: &str) -> Self {
        self.overrides.retain(|(f, _)| *f != field);
        self.overrides.push((field, key.to_string()));
        self
    }

    pub fn overrides(&self) -> impl Iterator<Item = (Field, &str)> {
        self.overrides.iter().map(|(f, k)| (*f, k.as_str()))
    }

    pub(crate) fn classify(&self, key: &str) -> Role {
        for (field, k) in &self.overrides {
            if k == key {
                return Role::Field {
                    field: *field,
                    rank: 0,
                };
            }
        }
        if key.len() > 3 && key.starts_with("lr-") {
            // Lightning's LearningRateMonitor: lr-AdamW, lr-SGD/pg1, ...
            return Role::Field {
                field: Field::Lr,
                rank: LR_MONITOR_RANK,
            };
        }
        match alias_rank(key) {
            Some((field, rank)) => Role::Field { field, rank },
            None => Role::Extra,
        }
    }
}

/// Built-in aliases: the names logs use for each field, best first. Keys
/// match case-insensitively, with `/`, `_`, `-` and spaces alike (removed):
/// `TrainLoss`, `train_loss` and `train/loss` are one name.
const ALIASES: &[(&str, Field)] = &[
    ("step", Field::Step),
    ("global_step", Field::Step),
    ("trainer/global_step", Field::Step),
    ("iteration", Field::Step),
    ("iter", Field::Step),
    ("epoch", Field::Epoch),
    ("time", Field::Time),
    ("timestamp", Field::Time),
    ("_timestamp", Field::Time),
    ("wall_time", Field::Time),
    ("lr", Field::Lr),
    ("learning_rate", Field::Lr),
    ("train/lr", Field::Lr),
    ("train/learning_rate", Field::Lr),
    ("optim/lr", Field::Lr),
    ("learning_rate/group_0", Field::Lr),
    ("lr/train", Field::Lr),
    ("epoch_learning_rate", Field::Lr),
    ("epoch_lr", Field::Lr),
    ("loss", Field::Loss),
    ("train_loss", Field::Loss),
    ("train_loss_step", Field::Loss),
    ("lm_loss", Field::Loss),
    ("train/nll_loss", Field::Loss),
    ("nll_loss", Field::Loss),
    ("current_loss", Field::Loss),
    ("loss/train", Field::Loss),
    ("training_loss", Field::Loss),
    ("epoch_loss", Field::Loss),
    ("grad_norm", Field::GradNorm),
    ("train/grad_norm", Field::GradNorm),
];

/// The rank of `lr-<Optimizer>` keys, after every fixed LR alias.
const LR_MONITOR_RANK: u8 = 100;

/// `key` without case and separators, for matching aliases.
fn normalized(key: &str) -> impl Iterator<Item = char> + '_ {
    key.chars()
        .filter(|c| !matches!(c, '/' | '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
}

/// The field and rank (1 = best) of a built-in alias.
fn alias_rank(key: &str) -> Option<(Field, u8)> {
    if key.len() > 64 {
        return None;
    }
    let mut ranks = [0u8; 6];
    for (alias, field) in ALIASES {
        let rank = &mut ranks[field.index()];
        *rank += 1;
        if normalized(alias).eq(normalized(key)) {
            return Some((*field, *rank));
        }
    }
    None
}

/// The alias name a key matched, when the key is spelt exactly so (it can
/// then be kept without allocating); None for overrides and other spellings.
fn alias_name(key: &str, field: Field, rank: u8) -> Option<&'static str> {
    if matches!(field, Field::Step | Field::Epoch | Field::Time) {
        // Axes are never kept under their key.
        return Some("");
    }
    let name = ALIASES
        .iter()
        .filter(|(_, f)| *f == field)
        .nth(usize::from(rank).checked_sub(1)?)?
        .0;
    (name == key).then_some(name)
}

/// A JSON or CSV number. Steps keep integer precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(u64),
    NegInt(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(v) => v as f64,
            Num::NegInt(v) => v as f64,
            Num::Float(v) => v,
        }
    }

    fn as_step(self) -> Option<u64> {
        match self {
            Num::Int(v) => Some(v),
            Num::NegInt(_) => None,
            // Saturating cast: a float step of 12.0 is step 12.
            Num::Float(v) if v.is_finite() && v >= 0.0 => Some(v as u64),
            Num::Float(_) => None,
        }
    }
}

/// Key an HF Trainer summary line carries (with `train_loss` for the whole run).
const SUMMARY_MARKER: &str = "train_runtime";

/// Allocations of records already stored, for the next ones: a cold load
/// builds millions of records and keeps none.
#[derive(Debug, Default)]
pub(crate) struct Spare {
    names: Vec<String>,
    extra: Vec<(String, f64)>,
}

impl Spare {
    pub(crate) fn recycle(&mut self, rec: Record) {
        let mut extra = rec.extra;
        self.names.extend(extra.drain(..).map(|(name, _)| name));
        self.extra = extra;
    }

    fn name(&mut self, key: &str) -> String {
        match self.names.pop() {
            Some(mut name) => {
                name.clear();
                name.push_str(key);
                name
            }
            None => key.to_string(),
        }
    }
}

/// Collects one log entry's fields into a `Record`.
pub(crate) struct RecordBuilder<'m> {
    map: &'m FieldMap,
    rec: Record,
    /// Rank and key of the value each field holds now, by `Field::index`.
    held: [Option<(u8, Key)>; 6],
    summary: bool,
    spare: Spare,
}

/// The key a value came from; static for fixed aliases to avoid allocating.
#[derive(Debug, Clone)]
enum Key {
    Static(&'static str),
    Owned(String),
}

impl Key {
    fn as_str(&self) -> &str {
        match self {
            Key::Static(s) => s,
            Key::Owned(s) => s,
        }
    }

    fn into_string(self) -> String {
        match self {
            Key::Static(s) => s.to_string(),
            Key::Owned(s) => s,
        }
    }
}

impl<'m> RecordBuilder<'m> {
    pub(crate) fn new(map: &'m FieldMap) -> Self {
        Self::with_spare(map, Spare::default())
    }

    pub(crate) fn with_spare(map: &'m FieldMap, mut spare: Spare) -> Self {
        let rec = Record {
            extra: std::mem::take(&mut spare.extra),
            ..Record::default()
        };
        RecordBuilder {
            map,
            rec,
            held: Default::default(),
            summary: false,
            spare,
        }
    }

    pub(crate) fn classify(&self, key: &str) -> Role {
        self.map.classify(key)
    }

    /// Adds a numeric field whose role the caller got from `classify`.
    pub(crate) fn add(&mut self, key: &str, role: Role, value: Num) {
        if key == SUMMARY_MARKER {
            self.summary = true;
        }
        match role {
            Role::Extra => {
                // A metric name is shown and passed to hooks: no control
                // characters (a NUL, an escape sequence) in it.
                let name = if crate::format::has_control(key) {
                    crate::format::printable(key).into_owned()
                } else {
                    self.spare.name(key)
                };
                self.rec.extra.push((name, value.as_f64()));
            }
            Role::Field { field, rank } => self.add_field(key, field, rank, value),
        }
    }

    /// Classifies and adds in one go.
    #[cfg(test)]
    pub(crate) fn add_key(&mut self, key: &str, value: Num) {
        let role = self.classify(key);
        self.add(key, role, value);
    }

    fn add_field(&mut self, key: &str, field: Field, rank: u8, value: Num) {
        let slot = &mut self.held[field.index()];
        // A better key holds the field. The same key again (JSON allows
        // duplicates) replaces the value, as Python's json does.
        let axis = matches!(field, Field::Step | Field::Epoch | Field::Time);
        if let Some((held_rank, held_key)) = slot
            && (*held_rank < rank || (*held_rank == rank && !axis && held_key.as_str() != key))
        {
            self.displaced(field, || Key::Owned(key.to_string()), value.as_f64());
            return;
        }
        let raw_key = key;
        let key = match alias_name(key, field, rank) {
            Some(name) => Key::Static(name),
            None => Key::Owned(key.to_string()),
        };
        let previous = slot.replace((rank, key));
        let old_value = match field {
            Field::Step => {
                self.rec.step = value.as_step();
                None
            }
            Field::Epoch => {
                self.rec.epoch = Some(value.as_f64()).filter(|v| v.is_finite());
                None
            }
            Field::Time => {
                self.rec.time = Some(value.as_f64()).filter(|v| v.is_finite());
                None
            }
            Field::Lr => self.rec.lr.replace(value.as_f64()),
            Field::Loss => self.rec.loss.replace(value.as_f64()),
            Field::GradNorm => self.rec.grad_norm.replace(value.as_f64()),
        };
        if let (Some((_, old_key)), Some(old_value)) = (previous, old_value)
            && old_key.as_str() != raw_key
        {
            self.displaced(field, || old_key, old_value);
        }
    }

    /// A value that lost to a better key for its field stays visible as an
    /// extra metric, unless it is an axis (step, epoch, time) or its name is
    /// a canonical metric name, which would collide with that metric.
    fn displaced(&mut self, field: Field, key: impl FnOnce() -> Key, value: f64) {
        if matches!(field, Field::Step | Field::Epoch | Field::Time) {
            return;
        }
        let key = key();
        if [LR, LOSS, GRAD_NORM].contains(&key.as_str()) {
            return;
        }
        self.rec.extra.push((key.into_string(), value));
    }

    /// The record, or None when the entry had no numeric field.
    pub(crate) fn finish(self) -> Option<Record> {
        self.finish_with_spare().0
    }

    /// The record and the allocations it did not use.
    pub(crate) fn finish_with_spare(mut self) -> (Option<Record>, Spare) {
        if self.summary {
            // The run's average loss is not a training-loss point.
            let loss_from_alias = matches!(self.held[Field::Loss.index()], Some((r, _)) if r > 0);
            if loss_from_alias
                && let (Some(loss), Some((_, key))) =
                    (self.rec.loss.take(), self.held[Field::Loss.index()].take())
            {
                self.rec.extra.push((key.into_string(), loss));
            }
        }
        dedupe_keep_last(&mut self.rec.extra);
        if self.rec.is_empty() {
            self.spare.recycle(self.rec);
            (None, self.spare)
        } else {
            (Some(self.rec), self.spare)
        }
    }
}

/// A key repeated in one object keeps its last value (Python's json).
fn dedupe_keep_last(extra: &mut Vec<(String, f64)>) {
    let n = extra.len();
    if n < 2 {
        return;
    }
    let has_duplicate = if n <= 32 {
        (1..n).any(|i| extra[..i].iter().any(|(k, _)| *k == extra[i].0))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(n);
        !extra.iter().all(|(k, _)| seen.insert(k.as_str()))
    };
    if !has_duplicate {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<(String, f64)> = extra
        .drain(..)
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    kept.reverse();
    *extra = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(map: &FieldMap, pairs: &[(&str, f64)]) -> Option<Record> {
        let mut b = RecordBuilder::new(map);
        for (k, v) in pairs {
            b.add_key(k, Num::Float(*v));
        }
        b.finish()
    }

    #[test]
    fn aliases_map_to_fields() {
        let map = FieldMap::new();
        let r = build(
            &map,
            &[
                ("global_step", 7.0),
                ("lr-AdamW", 0.1),
                ("train_loss_step", 2.0),
                ("grad-norm", 0.5),
                ("_timestamp", 100.0),
                ("epoch", 1.0),
                ("val/acc", 0.9),
            ],
        )
        .unwrap();
        assert_eq!(r.step, Some(7));
        assert_eq!(r.lr, Some(0.1));
        assert_eq!(r.loss, Some(2.0));
        assert_eq!(r.grad_norm, Some(0.5));
        assert_eq!(r.time, Some(100.0));
        assert_eq!(r.epoch, Some(1.0));
        assert_eq!(r.extra, vec![("val/acc".to_string(), 0.9)]);
    }

    #[test]
    fn better_alias_wins_and_the_other_stays_as_extra() {
        let map = FieldMap::new();
        let r = build(&map, &[("train_loss", 3.0), ("loss", 2.0), ("lr-SGD", 0.2)]).unwrap();
        assert_eq!(r.loss, Some(2.0));
        assert_eq!(r.lr, Some(0.2));
        assert_eq!(r.extra, vec![("train_loss".to_string(), 3.0)]);
        let r = build(&map, &[("lr-AdamW/pg1", 0.1), ("lr-AdamW/pg2", 0.2)]).unwrap();
        assert_eq!(r.lr, Some(0.1));
        assert_eq!(r.extra, vec![("lr-AdamW/pg2".to_string(), 0.2)]);
        let r = build(&map, &[("global_step", 3.0), ("step", 4.0), ("iter", 5.0)]).unwrap();
        assert_eq!(r.step, Some(4));
        assert!(r.extra.is_empty());
    }

    #[test]
    fn overrides_take_priority() {
        let map = FieldMap::parse(" lr = my_lr , loss=objective,step=it").unwrap();
        let r = build(
            &map,
            &[("lr", 9.0), ("my_lr", 0.1), ("objective", 1.5), ("it", 3.0)],
        )
        .unwrap();
        assert_eq!(r.lr, Some(0.1));
        assert_eq!(r.loss, Some(1.5));
        assert_eq!(r.step, Some(3));
        // The displaced `lr` would collide with the canonical column: dropped.
        assert!(r.extra.is_empty());
    }

    #[test]
    fn hf_summary_train_loss_is_an_extra() {
        let map = FieldMap::new();
        let r = build(
            &map,
            &[
                ("step", 300.0),
                ("train_loss", 1.8),
                ("train_runtime", 43.0),
            ],
        )
        .unwrap();
        assert_eq!(r.loss, None);
        assert_eq!(r.get("train_loss"), Some(1.8));
        assert_eq!(r.get("train_runtime"), Some(43.0));
    }

    #[test]
    fn alias_names_follow_the_ranks() {
        let map = FieldMap::new();
        for (key, _) in ALIASES {
            let Role::Field { field, rank } = map.classify(key) else {
                panic!("{key} is an alias");
            };
            if alias_name(key, field, rank) != Some("") {
                // Spellings that normalise alike share the first one's rank.
                let name = alias_name(key, field, rank);
                assert!(name == Some(*key) || name.is_none(), "{key}: {name:?}");
            }
        }
        assert_eq!(alias_name("lr-AdamW", Field::Lr, LR_MONITOR_RANK), None);
        assert_eq!(alias_name("lr", Field::Lr, 0), None);
    }

    #[test]
    fn keys_match_without_case_or_separators() {
        let map = FieldMap::new();
        let field = |k: &str| match map.classify(k) {
            Role::Field { field, .. } => Some(field),
            Role::Extra => None,
        };
        for k in [
            "lm_loss",
            "lm loss",
            "train/nll_loss",
            "nll_loss",
            "current_loss",
            "train_loss_step",
            "TrainLoss",
            "trainLoss",
            "Loss",
        ] {
            assert_eq!(field(k), Some(Field::Loss), "{k}");
        }
        for k in [
            "LR",
            "Lr",
            "lr-AdamW",
            "lr-AdamW/pg1",
            "optim/lr",
            "learning_rate/group_0",
            "learning rate",
        ] {
            assert_eq!(field(k), Some(Field::Lr), "{k}");
        }
        for k in ["Step", "trainer/global_step", "_step", "iteration"] {
            assert_eq!(field(k), Some(Field::Step), "{k}");
        }
        assert_eq!(field("Epoch"), Some(Field::Epoch));
        for k in [
            "eval/loss",
            "val_loss",
            "lr_scheduler",
            "loss_scale",
            "epochs",
        ] {
            assert_eq!(field(k), None, "{k}");
        }
    }

    #[test]
    fn nothing_numeric_is_no_record() {
        assert_eq!(build(&FieldMap::new(), &[]), None);
    }

    #[test]
    fn bad_map_specs_are_errors() {
        for spec in ["", "lr", "speed=foo", "lr=", "lr=a,lr=b"] {
            let err = FieldMap::parse(spec).unwrap_err().to_string();
            assert!(err.contains("invalid field map"), "{spec}: {err}");
        }
        assert!(
            FieldMap::parse("speed=x")
                .unwrap_err()
                .to_string()
                .contains("unknown target 'speed'")
        );
    }
}
