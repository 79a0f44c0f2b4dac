//! `lrtop policy list|show|eval|plot`.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use super::usage;
use crate::cli::{EvalFormat, ListFormat, PolicyCommand};
use crate::policy::catalog::{self, Family, PolicyInfo};
use crate::policy::params::{Def, Param};
use crate::policy::{Policy, Scheduler};
use crate::tui::policy_plot::{self, PlotInput};
use crate::viz::{self, Figure, FigureLine};

/// Plots hold every point in memory; beyond this, ask for fewer steps.
const MAX_PLOT_STEPS: u64 = 5_000_000;
const DEFAULT_STEPS: u64 = 1000;

pub fn run(command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::List { family, format } => list(family.as_deref(), format),
        PolicyCommand::Show { name } => show(&name),
        PolicyCommand::Eval {
            spec,
            steps,
            format,
            metrics,
        } => eval(&spec, steps, format, metrics.as_deref()),
        PolicyCommand::Plot {
            specs,
            steps,
            log_y,
            png,
            svg,
            size,
            text,
        } => plot(
            &specs,
            steps,
            log_y,
            png.as_deref(),
            svg.as_deref(),
            size,
            text,
        ),
    }
}

fn params_line(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| match p.default {
            Def::Required => p.name.to_string(),
            Def::Optional => format!("[{}]", p.name),
            Def::Value(v) => format!("{}={v}", p.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn param_json(p: &Param) -> serde_json::Value {
    json!({
        "name": p.name,
        "kind": p.kind.describe(),
        "required": p.default == Def::Required,
        "default": match p.default { Def::Value(v) => Some(v), _ => None },
        "doc": p.doc,
    })
}

fn policy_json(info: &PolicyInfo) -> serde_json::Value {
    json!({
        "name": info.name,
        "family": info.family,
        "summary": info.summary,
        "formula": info.formula,
        "stateful": info.stateful,
        "params": info.params.iter().map(param_json).collect::<Vec<_>>(),
        "example": info.example,
    })
}

fn list(family: Option<&str>, format: ListFormat) -> Result<()> {
    let family =
        match family {
            None => None,
            Some(f) => Some(Family::parse(f).ok_or_else(|| {
                usage(format!("unknown family '{f}': use lrbench, pytorch or hf"))
            })?),
        };
    let policies: Vec<&PolicyInfo> = catalog::all()
        .filter(|p| family.is_none_or(|f| p.family == f))
        .collect();
    let mut out = String::new();
    match format {
        ListFormat::Json => {
            let all: Vec<_> = policies.iter().map(|p| policy_json(p)).collect();
            out = serde_json::to_string_pretty(&all)? + "\n";
        }
        ListFormat::Text => {
            for fam in [Family::Lrbench, Family::Pytorch, Family::Hf] {
                let members: Vec<_> = policies.iter().filter(|p| p.family == fam).collect();
                if members.is_empty() {
                    continue;
                }
                writeln!(out, "{} ({} policies)\n", fam.label(), members.len())?;
                for p in members {
                    let tag = if p.stateful { "  [metric-driven]" } else { "" };
                    writeln!(out, "  {:<28}{}{tag}", p.name, p.summary)?;
                    writeln!(out, "  {:<28}params:  {}", "", params_line(p.params))?;
                    writeln!(out, "  {:<28}formula: {}\n", "", p.formula)?;
                }
            }
            writeln!(
                out,
                "Composite: STAGE for N then STAGE ... (each stage sees t from its own start).\n\
                 [x]: optional without a default. `lrtop policy show NAME` for details."
            )?;
        }
    }
    write_stdout(&out)
}

fn show(name: &str) -> Result<()> {
    let info = catalog::find(name).ok_or_else(|| {
        let close = catalog::closest(name, catalog::all().map(|p| p.name), 3);
        let hint = if close.is_empty() {
            "`lrtop policy list` shows every policy".to_string()
        } else {
            format!("closest: {}", close.join(", "))
        };
        usage(format!("unknown policy '{name}' ({hint})"))
    })?;
    let mut out = String::new();
    writeln!(out, "{} ({})", info.name, info.family.label())?;
    writeln!(out, "  {}", info.summary)?;
    if info.stateful {
        writeln!(
            out,
            "  metric-driven: the trainer feeds it eval metrics; `policy eval --metrics FILE` replays a series"
        )?;
    }
    writeln!(
        out,
        "\nformula (t = update index from 0):\n  {}\n",
        info.formula
    )?;
    writeln!(out, "parameters:")?;
    for p in info.params {
        let default = match p.default {
            Def::Required => "required".to_string(),
            Def::Optional => "optional".to_string(),
            Def::Value(v) => format!("default {v}"),
        };
        writeln!(
            out,
            "  {:<18}{:<28}{:<18}{}",
            p.name,
            p.kind.describe(),
            default,
            p.doc
        )?;
    }
    writeln!(out, "\nexample:\n  {}\n", info.example)?;
    let policy =
        Policy::parse(info.example).with_context(|| format!("catalog example {}", info.example))?;
    let steps = policy.horizon().unwrap_or(DEFAULT_STEPS).min(100_000);
    let input = PlotInput {
        labels: vec![info.example.to_string()],
        series: vec![policy.sample(steps)],
    };
    out.push_str(&policy_plot::render_text(&input, false, 78, 16));
    write_stdout(&out)
}

fn parse_spec(spec: &str) -> Result<Policy> {
    Policy::parse(spec)
        .map_err(|e| anyhow::Error::new(e).context(format!("invalid policy spec '{spec}'")))
}

/// The most updates `policy eval` writes (the output is a line each).
const MAX_EVAL_STEPS: u64 = 1_000_000_000;

fn eval(spec: &str, steps: Option<u64>, format: EvalFormat, metrics: Option<&Path>) -> Result<()> {
    let policy = parse_spec(spec)?;
    let steps = steps.unwrap_or_else(|| policy.horizon().unwrap_or(DEFAULT_STEPS));
    if steps > MAX_EVAL_STEPS {
        return Err(usage(format!(
            "--steps {steps} is more than {MAX_EVAL_STEPS} (a billion lines of output); evaluate a shorter span"
        )));
    }
    let observations = match metrics {
        Some(path) => read_metrics(path)?,
        None => Vec::new(),
    };
    if !observations.is_empty() && !policy.is_stateful() {
        eprintln!(
            "note: {} does not depend on metrics; --metrics has no effect",
            policy.short_name()
        );
    }
    let canonical = policy.to_string();
    let mut scheduler = Scheduler::new(policy);
    let mut pending = observations.into_iter().peekable();
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = (|| -> io::Result<()> {
        match format {
            EvalFormat::Csv => writeln!(w, "step,lr")?,
            EvalFormat::Json => write!(
                w,
                "{{\"spec\":{},\"steps\":{steps},\"lr\":[",
                json!(canonical)
            )?,
        }
        for t in 0..steps {
            while let Some(&(step, value)) = pending.peek() {
                if step > t {
                    break;
                }
                if let Some(event) = scheduler.observe(step, value) {
                    eprintln!("{event}");
                }
                pending.next();
            }
            let lr = scheduler.lr(t);
            match format {
                EvalFormat::Csv => writeln!(w, "{t},{}", fmt_f64(lr))?,
                EvalFormat::Json => {
                    if t > 0 {
                        w.write_all(b",")?;
                    }
                    w.write_all(json_f64(lr).as_bytes())?;
                }
            }
        }
        if format == EvalFormat::Json {
            writeln!(w, "]}}")?;
        }
        w.flush()
    })();
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// Shortest text that parses back to the same f64.
fn fmt_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else if x.is_nan() {
        "nan".into()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

fn json_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".into()
    }
}

/// Reads `step,value` CSV or JSONL `{"step":..,"value":..}` observations, sorted by step.
fn read_metrics(path: &Path) -> Result<Vec<(u64, f64)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading metrics file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| usage(format!("{}:{}: {why}: '{line}'", path.display(), i + 1));
        let (step, value) = if line.starts_with('{') {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|_| bad("not a JSON object"))?;
            let step = v
                .get("step")
                .and_then(|s| s.as_f64())
                .ok_or_else(|| bad("no numeric \"step\""))?;
            let value = [
                "value",
                "metric",
                "eval_loss",
                "val_loss",
                "loss",
                "val_acc",
                "eval_accuracy",
            ]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_f64()))
            .ok_or_else(|| bad("no \"value\" field"))?;
            (step, value)
        } else {
            let mut cols = line.split(',').map(str::trim);
            let (Some(a), Some(b)) = (cols.next(), cols.next()) else {
                return Err(bad("expected step,value"));
            };
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(step), Ok(value)) => (step, value),
                _ if i == 0 => continue, // header
                _ => return Err(bad("expected step,value numbers")),
            }
        };
        if !(step >= 0.0 && step.fract() == 0.0) {
            return Err(bad("step must be a whole number >= 0"));
        }
        out.push((step as u64, value));
    }
    out.sort_by_key(|o| o.0);
    Ok(out)
}

fn plot(
    specs: &[String],
    steps: Option<u64>,
    log_y: bool,
    png: Option<&Path>,
    svg: Option<&Path>,
    size: (u32, u32),
    text: Option<(u32, u32)>,
) -> Result<()> {
    let policies: Vec<Policy> = specs.iter().map(|s| parse_spec(s)).collect::<Result<_>>()?;
    let steps = steps.unwrap_or_else(|| {
        policies
            .iter()
            .filter_map(Policy::horizon)
            .max()
            .unwrap_or(DEFAULT_STEPS)
    });
    if steps == 0 {
        return Err(usage("--steps must be at least 1"));
    }
    if steps > MAX_PLOT_STEPS {
        return Err(usage(format!(
            "--steps {steps} is more than a plot can use ({MAX_PLOT_STEPS} at most); `policy eval` streams any length"
        )));
    }
    let labels: Vec<String> = policies
        .iter()
        .map(|p| {
            let full = p.to_string();
            if full.chars().count() <= 70 {
                full
            } else {
                p.short_name()
            }
        })
        .collect();
    let series: Vec<Vec<f64>> = policies.iter().map(|p| p.sample(steps)).collect();
    if png.is_some() || svg.is_some() {
        let figure = Figure {
            title: if policies.len() == 1 {
                format!("{} over {steps} updates", policies[0].short_name())
            } else {
                format!("{} policies over {steps} updates", policies.len())
            },
            x_label: "update t".into(),
            y_label: if log_y {
                "learning rate (log)".into()
            } else {
                "learning rate".into()
            },
            log_y,
            log_x: false,
            lines: labels
                .iter()
                .zip(&series)
                .map(|(name, lrs)| FigureLine {
                    name: name.clone(),
                    points: lrs
                        .iter()
                        .enumerate()
                        .map(|(t, &lr)| (t as f64, lr))
                        .collect(),
                })
                .collect(),
            markers: Vec::new(),
        };
        for path in png.into_iter().chain(svg) {
            viz::save(&figure, path, size)?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let input = PlotInput { labels, series };
    match text {
        Some((w, h)) => write_stdout(&policy_plot::render_text(
            &input,
            log_y,
            w.min(1000) as u16,
            h.min(1000) as u16,
        )),
        None => policy_plot::show(&input, log_y),
    }
}

fn write_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
