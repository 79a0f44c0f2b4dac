//! `lrtop range-test`: train with a growing LR for a few updates, then
//! suggest LRs (fastai's valley, steep, minimum) and a cyclic range. The
//! learner's weights are put back afterwards.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use serde_json::json;

use super::usage;
use crate::cli::{OutputFormat, RangeTestArgs};
use crate::format::format_tick;
use crate::train::Learner;
use crate::tui::range_plot;
use crate::tune::range_test::{self, RangeTestConfig, RangeTestResult};
use crate::viz::{self, Figure, FigureLine};

pub fn run(args: RangeTestArgs) -> Result<()> {
    let config = RangeTestConfig {
        start: args.start,
        end: args.end,
        iters: args.iters,
        ramp: args.mode,
        beta: args.beta,
        stop_factor: args.stop_factor,
    };
    config.validate().map_err(usage)?;
    for (path, ext) in [(&args.png, "png"), (&args.svg, "svg")] {
        if let Some(path) = path
            && !path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case(ext))
        {
            return Err(usage(format!(
                "--{ext} {}: the file name must end in .{ext}",
                path.display()
            )));
        }
    }
    let learner_config = crate::train::process::prepare(super::train::learner_config(&args.model)?);
    let mut learner = Learner::new(&learner_config).context("building the learner")?;
    if let Some(notice) = learner.device_notice() {
        eprintln!("note: {notice}");
    }
    let result =
        range_test::run_on_learner(&mut learner, &config).context("running the range test")?;
    let title = format!(
        "LR range test · {} · {}",
        learner_config.task, learner_config.model
    );
    for path in [&args.png, &args.svg].into_iter().flatten() {
        viz::save(&figure(&result, &title, config.beta), path, args.size)?;
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(&result)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("config".into(), config_json(&config));
            }
            writeln!(out, "{value}")?;
        }
        OutputFormat::Text => {
            let (w, h) = match args.text {
                Some((w, h)) => (w as u16, h as u16),
                None => text_size(),
            };
            write!(out, "{}", range_plot::render_text(&result, w, h))?;
            for path in [&args.png, &args.svg].into_iter().flatten() {
                writeln!(out, "wrote {}", path.display())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn config_json(c: &RangeTestConfig) -> serde_json::Value {
    json!({
        "start": c.start,
        "end": c.end,
        "iters": c.iters,
        "mode": c.ramp,
        "beta": c.beta,
        "stop_factor": c.stop_factor,
    })
}

/// The terminal's width (at most 140) when stdout is one, else 100 columns.
fn text_size() -> (u16, u16) {
    if std::io::stdout().is_terminal()
        && let Ok((w, _)) = crossterm::terminal::size()
    {
        return (w.clamp(40, 140), 28);
    }
    (100, 28)
}

fn figure(result: &RangeTestResult, title: &str, beta: f64) -> Figure {
    let s = &result.suggestions;
    let mut markers = Vec::new();
    let mut values = vec!["learning rate".to_string()];
    for (name, value) in [
        ("valley", s.valley),
        ("steep", s.steep),
        ("min/10", s.minimum),
    ] {
        if let Some(v) = value {
            // Short labels: markers sit close together; the values go under the axis.
            markers.push((v, name.to_string()));
            values.push(format!("{name} {}", format_tick(v)));
        }
    }
    if let Some([lo, hi]) = s.cyclic {
        values.push(format!("cyclic [{}, {}]", format_tick(lo), format_tick(hi)));
    }
    Figure {
        title: title.to_string(),
        x_label: values.join(" · "),
        y_label: format!("smoothed loss (EMA, beta {beta})"),
        log_y: false,
        // Unnamed: no legend box to cover the markers' labels (the y axis says what it is).
        lines: vec![FigureLine {
            name: String::new(),
            points: result
                .lrs
                .iter()
                .copied()
                .zip(result.losses.iter().copied())
                .collect(),
        }],
        markers,
        log_x: true,
    }
}
