//! Printed training output (`train.log`, Slurm `*.out`, `nohup.out`,
//! stdin), recognised line by line among everything else a job prints:
//!
//! - Hugging Face Trainer's dicts: `{'loss': 2.31, 'learning_rate': 4.9e-05,
//!   'epoch': 0.1}` (Python literals; transformers 5 prints the numbers as
//!   strings, `'4.025'`). They carry no step: it is inferred from the epoch
//!   and the training progress bar (see `HfSteps`).
//! - Megatron-LM: `iteration 100/ 5000 | ... | learning rate: 1.342E-04 |
//!   lm loss: 7.39E+00 | grad norm: ... |`.
//! - nanoGPT: `iter 100: loss 2.3100, time 12.3ms, mfu 3.2%` and
//!   `step 500: train loss 2.1, val loss 2.2`.
//! - DeepSpeed: `step=100, skipped=0, lr=[0.0001], mom=[...]`.
//! - torchtune: `Step 100 | loss:2.31 lr:2e-05 ...` and `1|100|Loss: 2.31`.
//! - Keras' progress: `Epoch 3/10` then `... - loss: 0.51 - val_loss: 0.6`.
//!
//! tqdm's carriage-return redraws and ANSI colour codes are taken apart
//! first; a line that matches none of these is not a bad line, just not a
//! record.

use super::{ContentClaim, LogFormat, NameClaim, Reader, SNIFF_BYTES, StreamParser};
use crate::ingest::batch::Batch;
use crate::ingest::fields::{FieldMap, Num, RecordBuilder};
use crate::ingest::lines::{Line, LineBuffer};
use crate::metrics::Record;

/// Printed logs.
pub(crate) struct Printed;

impl LogFormat for Printed {
    fn name(&self) -> &'static str {
        "printed"
    }

    fn claim_name(&self, name: &str) -> NameClaim {
        let generic = [".log", ".out", ".err", ".txt"];
        if generic.iter().any(|ext| name.ends_with(ext)) || name.starts_with("slurm-") {
            NameClaim::Weak
        } else {
            NameClaim::No
        }
    }

    /// Plain when a line of the head is one of the printed formats;
    /// undecided while the head is text without one.
    fn claim_content(&self, head: &[u8], complete: bool) -> ContentClaim {
        if head.is_empty() {
            return ContentClaim::No;
        }
        let text = String::from_utf8_lossy(head);
        let lines: Vec<&str> = text.split('\n').collect();
        let whole = if complete {
            lines.len()
        } else {
            lines.len() - 1
        };
        if lines[..whole].iter().any(|l| recognised(l).is_some()) {
            return ContentClaim::Plain;
        }
        let binary = head.iter().filter(|b| **b == 0).count() > 0;
        if binary || complete || head.len() >= SNIFF_BYTES {
            ContentClaim::No
        } else {
            ContentClaim::Undecided
        }
    }

    fn reader(&self, map: &FieldMap) -> Reader {
        Reader::Stream(Box::new(PrintedStream::new(map.clone())))
    }
}

/// Which printed format a line is, if any (for sniffing and the status bar).
pub(crate) fn recognised(line: &str) -> Option<&'static str> {
    let clean = strip_ansi(line);
    for segment in clean.split('\r') {
        let s = segment.trim();
        if let Some(i) = python_dict_start(s)
            && python_dict(&s[i..]).is_some_and(|p| is_log_dict(&p))
        {
            return Some("Hugging Face printed dicts");
        }
        if megatron(s).is_some() {
            return Some("Megatron-LM");
        }
        if nanogpt(s).is_some() {
            return Some("nanoGPT");
        }
        if deepspeed(s).is_some() {
            return Some("DeepSpeed");
        }
        if torchtune(s).is_some() {
            return Some("torchtune");
        }
        if keras(s).is_some() {
            return Some("Keras");
        }
    }
    None
}

/// Removes ANSI escape sequences (colours, cursor moves).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                // CSI: parameters then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: up to BEL or ESC \.
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

/// A parsed number, as Python or a log prints it (`nan`, `inf`, `1.3E-04`,
/// `12.3ms`, `3.2%`: the unit is dropped).
fn number(text: &str) -> Option<f64> {
    let t = text.trim().trim_matches(|c| c == '\'' || c == '"');
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Some(f64::NAN),
        "inf" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if let Ok(v) = t.parse::<f64>() {
        return Some(v);
    }
    // A unit after the number: keep the longest numeric prefix.
    let end = t
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        .last()
        .map(|(i, c)| i + c.len_utf8())?;
    let rest = &t[end..];
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphabetic() || c == '%' || c == '/')
    {
        return None;
    }
    t[..end].parse().ok()
}

/// Where a Python dict literal starts in `s` (`{'`).
fn python_dict_start(s: &str) -> Option<usize> {
    let i = s.find("{'")?;
    s[i..].trim_end().ends_with('}').then_some(i)
}

/// `{'key': value, ...}` with Python literals: the numeric values.
fn python_dict(s: &str) -> Option<Vec<(String, f64)>> {
    let body = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let quote = rest.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let end = rest[1..].find(quote)? + 1;
        let key = &rest[1..end];
        rest = rest[end + 1..].trim_start().strip_prefix(':')?.trim_start();
        // The value runs to the next top-level comma.
        let (mut depth, mut in_str, mut cut) = (0i32, None::<char>, rest.len());
        for (i, c) in rest.char_indices() {
            match (in_str, c) {
                (Some(q), c) if c == q => in_str = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => in_str = Some(c),
                (None, '(' | '[' | '{') => depth += 1,
                (None, ')' | ']' | '}') => depth -= 1,
                (None, ',') if depth == 0 => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        let value = rest[..cut].trim();
        if let Some(v) = number(value).or_else(|| tensor_number(value)) {
            out.push((key.to_string(), v));
        }
        rest = rest[cut..]
            .trim_start()
            .strip_prefix(',')
            .unwrap_or("")
            .trim_start();
    }
    Some(out)
}

/// `tensor(2.31)` or `tensor(2.31, device='cuda:0')`.
fn tensor_number(value: &str) -> Option<f64> {
    let inner = value.strip_prefix("tensor(")?.strip_suffix(')')?;
    number(inner.split(',').next()?)
}

/// `iteration 100/ 5000 | name: value | ...` -> step and pairs.
fn megatron(s: &str) -> Option<(u64, Vec<(String, f64)>)> {
    let i = s.find("iteration")?;
    let mut parts = s[i..].split('|');
    let head = parts.next()?.trim().strip_prefix("iteration")?.trim();
    let step = match head.split_once('/') {
        Some((a, _total)) => a.trim().parse().ok()?,
        None => head.parse().ok()?,
    };
    let mut pairs = Vec::new();
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, value) = match part.rsplit_once(':') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => part.rsplit_once(' ').map(|(n, v)| (n.trim(), v.trim()))?,
        };
        if let Some(v) = number(value) {
            pairs.push((name.to_string(), v));
        }
    }
    (!pairs.is_empty()).then_some((step, pairs))
}

/// `iter 100: loss 2.31, time 12.3ms, mfu 3.2%`, `step 500: train loss
/// 2.1, val loss 2.2` (nanoGPT) and the hand-written loop's `step 24:
/// train_loss=2.02 eval_loss=2.01`.
fn nanogpt(s: &str) -> Option<(u64, Vec<(String, f64)>)> {
    let (head, rest) = s.split_once(':')?;
    let head = head.trim();
    let step = ["iter ", "step ", "Step ", "iteration "]
        .iter()
        .find_map(|p| head.strip_prefix(p))?
        .trim()
        .parse()
        .ok()?;
    let mut pairs = Vec::new();
    let items: Vec<&str> = if rest.contains('=') {
        rest.split([',', ' ', '\t'])
            .filter(|i| !i.is_empty())
            .collect()
    } else {
        rest.split(',').collect()
    };
    for item in items {
        let item = item.trim();
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => item.rsplit_once(' ')?,
        };
        let name = match name.trim() {
            // An iteration's duration, not a clock.
            "time" => "iter_time_ms",
            n => n,
        };
        pairs.push((name.to_string(), number(value)?));
    }
    // nanoGPT's evaluation line estimates the training loss over many
    // batches: an evaluation metric, not the step's training loss.
    if pairs.iter().any(|(n, _)| n == "val loss") {
        for (n, _) in &mut pairs {
            if n == "train loss" {
                *n = "eval/train_loss".into();
            }
        }
    }
    (!pairs.is_empty()).then_some((step, pairs))
}

/// HF Trainer's logged dicts always have an epoch or a loss; a printed
/// config (`{'lr': 0.001, 'betas': ...}`) has neither.
fn is_log_dict(pairs: &[(String, f64)]) -> bool {
    pairs
        .iter()
        .any(|(k, _)| matches!(k.as_str(), "epoch" | "loss" | "eval_loss" | "train_loss"))
}

/// `steps: 10 loss: 9.4372 iter time (s): 0.727 samples/sec: 88.001`
/// (DeepSpeed's throughput line; names may hold spaces).
fn colon_pairs(s: &str) -> Option<(u64, Vec<(String, f64)>)> {
    let rest = ["steps: ", "step: ", "iteration: ", "iter: "]
        .iter()
        .find_map(|p| s.strip_prefix(p))?;
    let parts: Vec<&str> = rest.split(": ").collect();
    let (step_text, mut name) = match parts[0].split_once(' ') {
        Some((n, rest)) => (n, rest),
        None => (parts[0], ""),
    };
    let step = step_text.trim().parse().ok()?;
    let mut pairs = Vec::new();
    for part in &parts[1..] {
        let (value, next) = match part.split_once(' ') {
            Some((v, n)) => (v, n),
            None => (*part, ""),
        };
        if name.is_empty() {
            return None;
        }
        pairs.push((name.trim().to_string(), number(value)?));
        name = next;
    }
    (!pairs.is_empty()).then_some((step, pairs))
}

/// `step=100, skipped=0, lr=[0.0001], mom=[(0.9, 0.999)]`.
fn deepspeed(s: &str) -> Option<(u64, Vec<(String, f64)>)> {
    let i = s
        .match_indices("step=")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || !s[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))?;
    let text = &s[i..];
    let mut pairs = Vec::new();
    let mut step = None;
    let mut rest = text;
    while let Some((name, after)) = rest.split_once('=') {
        let name = name.trim().trim_start_matches(',').trim();
        let value_end = if after.starts_with('[') {
            after.find(']').map_or(after.len(), |j| j + 1)
        } else {
            after.find(',').unwrap_or(after.len())
        };
        let value = after[..value_end].trim();
        let first = value
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .next()
            .unwrap_or("");
        if let Some(v) = number(first) {
            if name == "step" {
                step = Some(v as u64);
            } else {
                pairs.push((name.to_string(), v));
            }
        }
        rest = after[value_end..].trim_start_matches(',');
        if !rest.contains('=') {
            break;
        }
    }
    step.map(|s| (s, pairs))
}

/// `Step 100 | loss:2.31 lr:2e-05 ...` or `1|100|Loss: 2.31`.
fn torchtune(s: &str) -> Option<(u64, Vec<(String, f64)>)> {
    if let Some(rest) = s.strip_prefix("Step ") {
        let (step, rest) = rest.split_once('|')?;
        let step = step.trim().parse().ok()?;
        let pairs: Vec<(String, f64)> = rest
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once(':')?;
                // `grad_norm:tensor(0.7305, device='cuda:0', ...)`
                let v = match v.strip_prefix("tensor(") {
                    Some(inner) => inner.split([',', ')']).next()?,
                    None => v,
                };
                Some((k.to_string(), number(v)?))
            })
            .collect();
        return (!pairs.is_empty()).then_some((step, pairs));
    }
    let mut fields = s.splitn(3, '|');
    let (epoch, step, rest) = (fields.next()?, fields.next()?, fields.next()?);
    epoch.trim().parse::<u64>().ok()?;
    let step = step.trim().parse().ok()?;
    let (k, v) = rest.split_once(':')?;
    let k = k.trim();
    if k.is_empty() || k.contains(' ') {
        return None;
    }
    Some((step, vec![(k.to_string(), number(v)?)]))
}

/// Keras: `Epoch 3/10` (the epoch for the lines after it), or a progress
/// line `... - loss: 0.51 - accuracy: 0.8 - val_loss: 0.6`.
enum KerasLine {
    Epoch(u64),
    Metrics(Vec<(String, f64)>),
}

fn keras(s: &str) -> Option<KerasLine> {
    if let Some(rest) = s.strip_prefix("Epoch ") {
        let (n, _) = rest.split_once('/')?;
        return Some(KerasLine::Epoch(n.trim().parse().ok()?));
    }
    if !s.contains(" - loss: ") {
        return None;
    }
    let pairs: Vec<(String, f64)> = s
        .split(" - ")
        .filter_map(|part| {
            let (k, v) = part.split_once(": ")?;
            let k = k.trim();
            (!k.contains(' ')).then(|| Some((k.to_string(), number(v)?)))?
        })
        .collect();
    (!pairs.is_empty()).then_some(KerasLine::Metrics(pairs))
}

/// tqdm's `  3%|▎  | 5/150 [00:00<...]`: (count, total).
fn tqdm_bar(s: &str) -> Option<(u64, u64)> {
    let bar = s.find('|')?;
    let after = &s[bar + 1..];
    let close = after.find('|')?;
    let counts = after[close + 1..].trim_start();
    let counts = counts.split_whitespace().next()?;
    let (n, total) = counts.split_once('/')?;
    Some((n.parse().ok()?, total.parse().ok()?))
}

/// Steps for Hugging Face's printed dicts, which carry none: HF's epoch is
/// `global_step / steps_per_epoch`, and the training bar (the tqdm bar with
/// the largest total) bounds the step from below before a dict and from
/// above after it. Dicts wait until those bounds pin their step (a few
/// dicts in), or the input ends; then the best estimate is used.
#[derive(Debug, Default)]
struct HfSteps {
    /// The training bar's count and total, as last drawn.
    bar: Option<(u64, u64)>,
    /// Steps per epoch: bounds found so far.
    per_epoch: (f64, f64),
    /// Dicts not sent yet: (epoch, lowest step, highest step, record).
    waiting: Vec<Pending>,
    last_step: u64,
}

#[derive(Debug)]
struct Pending {
    epoch: Option<f64>,
    low: u64,
    high: Option<u64>,
    record: Record,
}

/// How far the true epoch may be from the printed one: HF prints 4
/// significant digits (`.4g`).
fn printed_precision(e: f64) -> f64 {
    0.5 * 10f64.powf(e.log10().floor() - 3.0)
}

/// Most dicts held back while their steps are pinned down.
const MAX_WAITING: usize = 64;

impl HfSteps {
    fn new() -> Self {
        HfSteps {
            per_epoch: (0.0, f64::INFINITY),
            ..Default::default()
        }
    }

    fn bar(&mut self, n: u64, total: u64) {
        // The training bar has the largest total; eval bars are nested.
        if self.bar.is_none_or(|(_, t)| total >= t) {
            self.bar = Some((n, total));
            for p in &mut self.waiting {
                if p.high.is_none() && n >= p.low {
                    p.high = Some(n);
                    if let Some(e) = p.epoch.filter(|e| *e > 0.0 && e.is_finite()) {
                        let e = e - printed_precision(e);
                        self.per_epoch.1 = self.per_epoch.1.min(n as f64 / e);
                    }
                }
            }
        }
    }

    fn dict(&mut self, record: Record, out: &mut Vec<Record>) {
        let low = self.bar.map_or(0, |(n, _)| n).max(self.last_step);
        let epoch = record.epoch;
        if let Some(e) = epoch.filter(|e| *e > 0.0 && e.is_finite()) {
            let e = e + printed_precision(e);
            self.per_epoch.0 = self.per_epoch.0.max(low as f64 / e);
        }
        self.waiting.push(Pending {
            epoch,
            low,
            high: None,
            record,
        });
        self.release(false, out);
    }

    /// The step of a waiting dict, when its bounds settle it (or `force`).
    fn step_of(&self, p: &Pending, force: bool) -> Option<u64> {
        let high = p.high.unwrap_or(u64::MAX);
        let Some(e) = p.epoch.filter(|e| *e > 0.0 && e.is_finite()) else {
            return Some(p.low);
        };
        let (lo_rate, hi_rate) = self.per_epoch;
        if hi_rate.is_finite() {
            let half_digit = printed_precision(e);
            let lo = (((e - half_digit) * lo_rate).ceil() as u64).max(p.low);
            let hi = (((e + half_digit) * hi_rate).floor() as u64).min(high);
            if lo == hi {
                return Some(lo);
            }
        }
        if !force {
            return None;
        }
        let estimate = if hi_rate.is_finite() && lo_rate > 0.0 {
            (e * (lo_rate + hi_rate) / 2.0).round() as u64
        } else {
            p.low
        };
        Some(estimate.clamp(p.low, high.max(p.low)))
    }

    fn release(&mut self, force: bool, out: &mut Vec<Record>) {
        let force = force || self.waiting.len() > MAX_WAITING;
        while let Some(first) = self.waiting.first() {
            let Some(step) = self.step_of(first, force) else {
                break;
            };
            let mut p = self.waiting.remove(0);
            let step = step.max(self.last_step);
            self.last_step = step;
            p.record.step = Some(step);
            out.push(p.record);
        }
    }
}

/// Incremental reader of printed output.
#[derive(Debug)]
pub(crate) struct PrintedStream {
    map: FieldMap,
    lines: LineBuffer,
    hf: HfSteps,
    keras_epoch: Option<u64>,
    /// Which printed format was seen first (for the status bar).
    pub(crate) seen: Option<&'static str>,
}

impl PrintedStream {
    pub(crate) fn new(map: FieldMap) -> Self {
        PrintedStream {
            map,
            lines: LineBuffer::new(),
            hf: HfSteps::new(),
            keras_epoch: None,
            seen: None,
        }
    }

    fn record(&self, step: Option<u64>, pairs: &[(String, f64)]) -> Option<Record> {
        let mut builder = RecordBuilder::new(&self.map);
        for (name, value) in pairs {
            let role = builder.classify(name);
            builder.add(name, role, Num::Float(*value));
        }
        if let Some(s) = step {
            let role = builder.classify("step");
            builder.add("step", role, Num::Int(s));
        }
        builder.finish()
    }

    fn line(&mut self, line: &[u8], out: &mut Batch) {
        let text = String::from_utf8_lossy(line);
        let clean = strip_ansi(&text);
        // Progress bars redraw with `\r` and backspaces: each redraw is a
        // segment, and only the last shows the line's final state.
        let segments: Vec<&str> = clean
            .split(['\r', '\u{8}'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for (i, s) in segments.iter().enumerate() {
            let before = out.records.len();
            self.segment(s, i + 1 == segments.len(), out);
            out.tally.records += (out.records.len() - before) as u64;
        }
    }

    fn segment(&mut self, s: &str, last: bool, out: &mut Batch) {
        if let Some(i) = python_dict_start(s) {
            if let Some(pairs) = python_dict(&s[i..]).filter(|p| is_log_dict(p))
                && let Some(rec) = self.record(None, &pairs)
            {
                self.seen.get_or_insert("Hugging Face printed dicts");
                self.hf.dict(rec, &mut out.records);
            }
            return;
        }
        if let Some((n, total)) = tqdm_bar(s) {
            self.hf.bar(n, total);
            self.hf.release(false, &mut out.records);
            return;
        }
        let found = if let Some((step, pairs)) = megatron(s) {
            Some(("Megatron-LM", Some(step), pairs))
        } else if let Some((step, pairs)) = nanogpt(s) {
            Some(("nanoGPT", Some(step), pairs))
        } else if let Some((step, pairs)) = deepspeed(s) {
            Some(("DeepSpeed", Some(step), pairs))
        } else if let Some((step, pairs)) = torchtune(s) {
            Some(("torchtune", Some(step), pairs))
        } else if let Some((step, pairs)) = colon_pairs(s) {
            Some(("DeepSpeed", Some(step), pairs))
        } else if !last {
            None
        } else {
            match keras(s) {
                Some(KerasLine::Epoch(e)) => {
                    self.keras_epoch = Some(e);
                    None
                }
                Some(KerasLine::Metrics(mut pairs)) => {
                    let epoch = self.keras_epoch;
                    if let Some(e) = epoch {
                        pairs.push(("epoch".into(), e as f64));
                    }
                    Some(("Keras", epoch, pairs))
                }
                None => None,
            }
        };
        if let Some((name, step, pairs)) = found
            && let Some(rec) = self.record(step, &pairs)
        {
            self.seen.get_or_insert(name);
            out.records.push(rec);
        }
    }
}

impl StreamParser for PrintedStream {
    fn feed(&mut self, data: &[u8], out: &mut Batch) {
        let mut complete = Vec::new();
        self.lines.feed(data, |line| {
            if let Line::Complete(bytes) = line {
                complete.push(bytes.to_vec());
            }
        });
        for line in complete {
            self.line(&line, out);
        }
    }

    fn finish(&mut self, out: &mut Batch) {
        if let Some(crate::ingest::lines::Partial::Bytes(rest)) = self.lines.take_partial() {
            self.line(&rest, out);
        }
        let before = out.records.len();
        self.hf.release(true, &mut out.records);
        out.tally.records += (out.records.len() - before) as u64;
    }

    fn reset(&mut self) {
        *self = PrintedStream::new(std::mem::take(&mut self.map));
    }

    fn dialect(&self) -> Option<&'static str> {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Record> {
        let mut p = PrintedStream::new(FieldMap::new());
        let mut batch = Batch::default();
        p.feed(text.as_bytes(), &mut batch);
        p.finish(&mut batch);
        batch.records
    }

    #[test]
    fn every_printed_format() {
        let r = parse(
            " iteration      100/    5000 | consumed samples:         3200 | elapsed time per iteration (ms): 512.3 | learning rate: 1.342E-04 | global batch size:    32 | lm loss: 7.393634E+00 | loss scale: 4096.0 | grad norm: 1.234 | number of skipped iterations:   0 | number of nan iterations:   0 |\n",
        );
        assert_eq!(r[0].step, Some(100));
        assert_eq!(r[0].lr, Some(1.342e-4));
        assert_eq!(r[0].loss, Some(7.393634));
        assert_eq!(r[0].grad_norm, Some(1.234));
        let r = parse(
            "iter 100: loss 2.3100, time 12.3ms, mfu 3.2%\nstep 500: train loss 2.1, val loss 2.2\n",
        );
        assert_eq!((r[0].step, r[0].loss), (Some(100), Some(2.31)));
        assert_eq!(r[0].time, None, "an iteration's duration is not a clock");
        assert_eq!(r[1].get("val loss"), Some(2.2));
        assert_eq!(r[1].get("eval/train_loss"), Some(2.1));
        let r = parse("steps: 10 loss: 9.4372 iter time (s): 0.727 samples/sec: 88.001\n");
        assert_eq!((r[0].step, r[0].loss), (Some(10), Some(9.4372)));
        assert_eq!(r[0].get("iter time (s)"), Some(0.727));
        assert!(
            parse("{'lr': 0.001, 'eps': 1e-08}\n").is_empty(),
            "a printed config is no record"
        );
        let r = parse(
            "[2024-01-01 10:00:00,000] [INFO] [logging.py:96:log_dist] [Rank 0] step=100, skipped=0, lr=[0.0001], mom=[(0.9, 0.999)]\n",
        );
        assert_eq!((r[0].step, r[0].lr), (Some(100), Some(1e-4)));
        let r = parse(
            "Step 100 | loss:2.31 lr:2e-05 tokens_per_second_per_gpu:1234.5\n1|101|Loss: 2.30\n",
        );
        assert_eq!(
            (r[0].step, r[0].loss, r[0].lr),
            (Some(100), Some(2.31), Some(2e-5))
        );
        assert_eq!((r[1].step, r[1].loss), (Some(101), Some(2.30)));
        let r = parse(
            "Epoch 3/10\n100/100 [==============================] - 1s 10ms/step - loss: 0.5100 - accuracy: 0.8000 - val_loss: 0.6000\n",
        );
        assert_eq!((r[0].step, r[0].loss), (Some(3), Some(0.51)));
        assert_eq!(r[0].get("val_loss"), Some(0.6));
        let r = parse("step 24: train_loss=2.0229 eval_loss=2.0165 eval_acc=0.6566\n");
        assert_eq!((r[0].step, r[0].loss), (Some(24), Some(2.0229)));
        assert_eq!(r[0].get("eval_acc"), Some(0.6566));
        assert!(parse("hello world\nstep: 3\nloading model\nstep 3: loading data\n").is_empty());
    }

    #[test]
    fn hf_dicts_get_steps_from_the_epoch_and_the_bar() {
        // 140 steps per epoch, logging every 5: the bar lags behind the dicts.
        let mut text = String::new();
        for k in 1..=30u64 {
            let step = 5 * k;
            let shown = step.saturating_sub(k % 4);
            text.push_str(&format!(
                "\r {:3}%|#   | {shown}/150 [00:00<00:02, 54.95it/s]\r     \r{{'loss': '{}', 'learning_rate': '0.001', 'epoch': '{:.4}'}}\n",
                shown * 100 / 150,
                3.0 - k as f64 / 100.0,
                step as f64 / 140.0
            ));
        }
        text.push_str("\r100%|#####| 150/150 [00:01<00:00, 81.81it/s]\n");
        let r = parse(&text);
        let steps: Vec<u64> = r.iter().filter_map(|r| r.step).collect();
        assert_eq!(steps, (1..=30).map(|k| 5 * k).collect::<Vec<_>>());
    }

    #[test]
    fn ansi_and_python_literals() {
        let r = parse(
            "\u{1b}[32m{'loss': nan, 'grad_norm': inf, 'learning_rate': 4.9e-05, 'epoch': 0.1, 'note': 'x, y', 'done': True}\u{1b}[0m\n",
        );
        assert!(r[0].loss.unwrap().is_nan());
        assert_eq!(r[0].grad_norm, Some(f64::INFINITY));
        assert_eq!(r[0].lr, Some(4.9e-5));
        assert_eq!(
            recognised("{'loss': 1.0}"),
            Some("Hugging Face printed dicts")
        );
        assert_eq!(recognised("nothing here"), None);
    }
}
