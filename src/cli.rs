//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lrtop",
    version,
    about = "top for learning rates: train, watch and compare learning-rate policies",
    long_about = "lrtop trains models in-process with Candle or tails the logs of external training jobs, \
                  shows live learning-rate and loss curves, raises schedule-monitor alerts, and holds the \
                  learning-rate policies of LRBench, PyTorch and Hugging Face behind one spec language."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model in-process with live curves and policy switching.
    Train(Box<TrainArgs>),
    /// Follow the logs of external training jobs (JSONL, trainer_state.json, CSV).
    Attach(AttachArgs),
    /// The learning-rate policy database: list, show, evaluate, plot.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// LR range test: ramp the LR and suggest a range.
    RangeTest(Box<RangeTestArgs>),
    /// Evaluate and rank policies over a search space.
    Tune(Box<TuneArgs>),
}

/// Dashboard and monitor options shared by `attach` and `train`.
#[derive(Debug, Args, Clone, Default)]
pub struct DashboardArgs {
    /// No TUI: print alerts as JSON lines and a one-line status periodically.
    #[arg(long)]
    pub headless: bool,
    /// Theme: dark, light, colorblind, mono, or a .toml file.
    #[arg(long)]
    pub theme: Option<String>,
    /// The LR policy the job is supposed to follow; a sustained mismatch with
    /// the logged LR is an alert. The LR logged at step s is compared with
    /// the policy at t = s-1 (Hugging Face's convention) or t = s, whichever
    /// the log shows; an offset-only difference is reported as information.
    #[arg(long, value_name = "SPEC")]
    pub declared: Option<String>,
    /// Alert when a metric reaches a value, e.g. `val_acc>=0.95`, `eval_loss<=1.2`.
    #[arg(long, value_name = "METRIC>=VALUE")]
    pub target: Option<String>,
    /// Run a shell command for each new alert; the alert is in LRTOP_ALERT_* variables.
    /// Hooks run one at a time; one running over 30 s is killed.
    #[arg(long, value_name = "CMD")]
    pub on_alert: Option<String>,
    /// Also run --on-alert for the alerts found in what a log already held
    /// when lrtop started (by default only for alerts raised while following).
    #[arg(long, requires = "on_alert")]
    pub on_alert_history: bool,
    /// When a run that ends (attach --no-follow/--summary, train --headless)
    /// exits non-zero: 3 if an alert of this level or worse was raised, 4 if
    /// training diverged; `never` always exits 0.
    #[arg(long, value_name = "LEVEL", default_value = "critical", value_parser = ["info", "warn", "critical", "never"])]
    pub fail_on: String,
    /// Seconds between status lines in --headless mode.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub interval: f64,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct AttachArgs {
    /// Log files, directories (searched for logs), globs, or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Read what is there and stop instead of following.
    #[arg(long)]
    pub no_follow: bool,
    /// Print one JSON summary per run per line and exit (reads to the current
    /// end). With --headless: follow, and print them when ended by a signal.
    #[arg(long)]
    pub summary: bool,
    /// Field overrides, e.g. `lr=optim/lr,loss=train/loss_avg,step=trainer/step`.
    #[arg(long, value_name = "lr=FIELD,loss=FIELD,step=FIELD")]
    pub map: Option<String>,
    /// Total number of updates, for progress and ETA.
    #[arg(long, value_name = "N")]
    pub total_steps: Option<u64>,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// What to train: task, model, optimizer, and the engine's settings.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// digits (embedded), mnist=DIR, cifar10=DIR, tokens=DIR[,vocab=N][,dtype=u32], text=FILE,
    /// instruct=FILE.jsonl (prompt/completion, Alpaca or chat messages; loss
    /// on the responses only).
    #[arg(long, default_value = "digits")]
    pub task: String,
    /// mlp, lenet5, resnet20, resnet32, llama (or NAME(key=value,...)).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Hidden layer widths of the MLP.
    #[arg(long, value_name = "W,W,...")]
    pub hidden: Option<String>,
    /// Llama: model width.
    #[arg(long)]
    pub dim: Option<usize>,
    /// Llama: number of layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Llama: attention heads.
    #[arg(long)]
    pub heads: Option<usize>,
    /// Llama: key/value heads (grouped-query attention when fewer than --heads).
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// Load a Hugging Face Llama, Mistral or Qwen2 checkpoint (config.json +
    /// model.safetensors) to fine-tune.
    #[arg(long, value_name = "DIR")]
    pub init: Option<PathBuf>,
    /// Hugging Face `tokenizer.json` for `--task text=FILE` or
    /// `instruct=FILE` (default: the
    /// one in the --init folder; without either, byte-level).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Instruction tasks: validate on this JSONL file's examples (the same
    /// shapes) instead of a seeded tenth of the training file; also
    /// `--task instruct=FILE,val=FILE`.
    #[arg(long, value_name = "FILE")]
    pub val: Option<PathBuf>,
    /// Llama: train LoRA adapters on a frozen base, e.g. "r=8,alpha=16,targets=q_proj,v_proj"
    /// ("" for PEFT's defaults: r=8, alpha=8, q_proj and v_proj).
    #[arg(long, value_name = "SPEC")]
    pub lora: Option<String>,
    /// sgd, momentum, nesterov, adamw.
    #[arg(long, default_value = "momentum")]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value.
    #[arg(long, value_name = "MAX_NORM")]
    pub clip_grad_norm: Option<f64>,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Tokens per sequence for token and text tasks.
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto, cpu, cuda:N, metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Llama: the float type of the forward and backward passes, f32, bf16
    /// or f16 (mixed precision: weights and optimizer state stay f32; f16
    /// with dynamic loss scaling).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Micro-batches of --batch-size averaged into each update (gradient
    /// accumulation). `step` in the log and the LR policy count updates.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub grad_accum: usize,
    /// CPU threads for the math (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// LR policy spec (`lrtop policy list`). Default: cosine decay with 5% warmup.
    #[arg(long, value_name = "SPEC")]
    pub policy: Option<String>,
    /// Optimizer updates per run (0: only evaluate). Default: 1000 with
    /// --headless; with the dashboard 300000, about a minute on 2 cores, long
    /// enough to watch it and switch policies.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Evaluate every N updates (0: only at the end). Default: steps/10.
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Report the first evaluation at which test accuracy reaches this.
    #[arg(long, value_name = "ACC")]
    pub target_acc: Option<f64>,
    /// Save the final weights (one safetensors file); with --lora, the
    /// adapters as a PEFT folder (adapter_model.safetensors and
    /// adapter_config.json) that `peft` loads.
    #[arg(long, value_name = "PATH")]
    pub save: Option<PathBuf>,
    /// Llama: also write a transformers checkpoint folder (config.json and
    /// model.safetensors); with --lora, the adapters merged into the base.
    #[arg(long, value_name = "DIR", alias = "merge-lora")]
    pub save_hf: Option<PathBuf>,
    /// With --save-hf: write shards of at most this size (and
    /// model.safetensors.index.json) when the weights are larger, e.g.
    /// 5GB (transformers' default), 500MB, 2GiB.
    #[arg(long, value_name = "SIZE", default_value = "5GB")]
    pub max_shard_size: String,
    /// JSONL log path (default: runs/<time>-<n>-<policy>.jsonl).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Also write the final JSON summary to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_out: Option<PathBuf>,
    /// Keep training after a critical divergence alert (default: the run stops).
    #[arg(long)]
    pub keep_going: bool,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// Text or one JSON document on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct RangeTestArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// First learning rate of the ramp.
    #[arg(long, default_value_t = 1e-7)]
    pub start: f64,
    /// Learning rate the ramp reaches after --iters updates.
    #[arg(long, default_value_t = 10.0)]
    pub end: f64,
    /// Number of updates.
    #[arg(long, default_value_t = 100)]
    pub iters: u64,
    /// exp (geometric, fastai's default) or linear.
    #[arg(long, value_enum, default_value_t = crate::tune::range_test::Ramp::Exp)]
    pub mode: crate::tune::range_test::Ramp,
    /// Smoothing of the (debiased) moving average of the loss.
    #[arg(long, default_value_t = 0.98)]
    pub beta: f64,
    /// Stop when the smoothed loss exceeds this multiple of its best.
    #[arg(long, default_value_t = 4.0)]
    pub stop_factor: f64,
    /// Also write the chart as a PNG image.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Also write the chart as an SVG image.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Image size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "1000x600", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Size of the text chart, COLSxROWS (default: the terminal's width).
    #[arg(long, value_parser = parse_size)]
    pub text: Option<(u32, u32)>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SearchKind {
    Grid,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Executor {
    /// Child processes on this machine.
    #[default]
    Local,
    /// Write a Slurm job array (with --emit DIR) instead of running.
    Slurm,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    allow_negative_numbers = true
)]
pub struct TuneArgs {
    #[command(subcommand)]
    pub command: Option<TuneCommand>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// A policy spec where a value may be a set `{a,b,c}` (grid search) or a
    /// distribution `logu(lo,hi)`, `u(lo,hi)`, `int(lo,hi)` (random search). Repeatable.
    #[arg(long = "policy", value_name = "SPEC")]
    pub policies: Vec<String>,
    /// A TOML search space (see README); adds to --policy.
    #[arg(long, value_name = "FILE")]
    pub space: Option<PathBuf>,
    /// Default: grid when every value is a set, else random.
    #[arg(long, value_enum)]
    pub search: Option<SearchKind>,
    /// Number of random-search trials.
    #[arg(long, value_name = "N")]
    pub trials: Option<usize>,
    /// Seed of the random search (default: --seed).
    #[arg(long, value_name = "N")]
    pub search_seed: Option<u64>,
    /// Optimizer updates per trial.
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Evaluate every N updates (default: steps/10); steps to target are counted at this granularity.
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Test accuracy a trial must reach for steps/time to target.
    #[arg(long, value_name = "ACC")]
    pub target_acc: Option<f64>,
    /// What ranks the trials.
    #[arg(long, value_enum, default_value_t = crate::tune::results::Objective::Acc)]
    pub objective: crate::tune::results::Objective,
    /// Trials run at once (default: the number of cores; with --executor
    /// slurm the array's `%K` limit, default none).
    #[arg(long, value_name = "K")]
    pub jobs: Option<usize>,
    /// Successive halving: keep the best 1/ETA at each rung (grid search).
    #[arg(long, value_name = "ETA")]
    pub halving: Option<usize>,
    /// With --halving: also run the full grid and report whether the winner is the same.
    #[arg(long, requires = "halving")]
    pub halving_verify: bool,
    /// With --halving: the smallest budget, in updates (default: --eval-every).
    #[arg(long, value_name = "N", requires = "halving")]
    pub min_steps: Option<u64>,
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    /// With --executor slurm: the directory to write the job array into.
    #[arg(long, value_name = "DIR")]
    pub emit: Option<PathBuf>,
    /// Where trial logs go (default: runs/tune-<unix millis>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// json implies --headless.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

#[derive(Debug, Subcommand)]
pub enum TuneCommand {
    /// Rank the finished trials of a tune directory (`--emit DIR` or a local tune).
    Collect {
        dir: PathBuf,
        /// Rank by this instead of the tune's objective.
        #[arg(long, value_enum)]
        objective: Option<crate::tune::results::Objective>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Open the tune dashboard over the directory while its trials run
        /// elsewhere: finished ones ranked, running ones followed live
        /// (refreshed every 2 s); the report is printed on quitting.
        #[arg(long)]
        watch: bool,
    },
    /// Slurm successive halving: once a rung has ended, rank it and submit
    /// the next (and the job that runs this again after it). `submit.sh`
    /// starts it; the rungs' dependent jobs run it after that.
    NextRung { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Every policy with its family, parameters (defaults) and formula.
    List {
        /// Only this family: lrbench, pytorch, hf.
        #[arg(long)]
        family: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// One policy in detail.
    Show {
        /// Policy name (case-insensitive), e.g. COS, OneCycleLR, cosine.
        name: String,
    },
    /// The learning rate for t = 0..steps-1.
    Eval {
        /// Policy spec, e.g. "COS(k0=0.001,k1=0.1,l=500)".
        spec: String,
        /// Number of updates (default: the policy's natural length, else 1000).
        #[arg(long)]
        steps: Option<u64>,
        #[arg(long, value_enum, default_value_t = EvalFormat::Csv)]
        format: EvalFormat,
        /// Metric observations for metric-driven policies: CSV `step,value` or
        /// JSONL `{"step":..,"value":..}`; an observation at step s affects t >= s.
        #[arg(long)]
        metrics: Option<PathBuf>,
    },
    /// Draw one or more schedules in the terminal, or as an image.
    Plot {
        /// Policy specs; each becomes one curve.
        #[arg(required = true)]
        specs: Vec<String>,
        /// Number of updates (default: the longest natural length, else 1000).
        #[arg(long)]
        steps: Option<u64>,
        /// Logarithmic y axis.
        #[arg(long)]
        log_y: bool,
        /// Write a PNG image instead of drawing in the terminal.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Write an SVG image instead of drawing in the terminal.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Image size in pixels, WIDTHxHEIGHT.
        #[arg(long, default_value = "1000x600", value_parser = parse_size)]
        size: (u32, u32),
        /// Print the chart as text even on a terminal (COLSxROWS).
        #[arg(long, value_parser = parse_size)]
        text: Option<(u32, u32)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalFormat {
    Csv,
    Json,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got '{s}'"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in '{s}'"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in '{s}'"))?;
    if w == 0 || h == 0 || w > 20_000 || h > 20_000 {
        return Err(format!("size out of range: '{s}'"));
    }
    Ok((w, h))
}

/// The model options as `lrtop train` flags, one `--name=value` token each
/// (so a value that starts with `-` is never taken for a flag). `--threads`
/// is left out: the executor sets it.
pub fn model_flags(m: &ModelArgs) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |name: &str, value: String| out.push(format!("--{name}={value}"));
    push("task", m.task.clone());
    push("model", m.model.clone());
    if let Some(h) = &m.hidden {
        push("hidden", h.clone());
    }
    for (name, value) in [
        ("dim", m.dim),
        ("layers", m.layers),
        ("heads", m.heads),
        ("kv-heads", m.kv_heads),
    ] {
        if let Some(v) = value {
            push(name, v.to_string());
        }
    }
    if let Some(p) = &m.init {
        push("init", p.display().to_string());
    }
    if let Some(t) = &m.tokenizer {
        push("tokenizer", t.display().to_string());
    }
    if let Some(v) = &m.val {
        push("val", v.display().to_string());
    }
    if let Some(l) = &m.lora {
        push("lora", l.clone());
    }
    push("optimizer", m.optimizer.clone());
    push("momentum", m.momentum.to_string());
    push("weight-decay", m.weight_decay.to_string());
    if let Some(c) = m.clip_grad_norm {
        push("clip-grad-norm", c.to_string());
    }
    push("batch-size", m.batch_size.to_string());
    if m.grad_accum != 1 {
        push("grad-accum", m.grad_accum.to_string());
    }
    push("dtype", m.dtype.clone());
    push("seq-len", m.seq_len.to_string());
    push("seed", m.seed.to_string());
    push("device", m.device.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        model: ModelArgs,
    }

    #[test]
    fn model_flags_round_trip_through_the_parser() {
        let original = Wrapper::parse_from([
            "x",
            "--task=digits",
            "--model=mlp",
            "--hidden=128,128",
            "--optimizer=adamw",
            "--momentum=0.8",
            "--weight-decay=1e-4",
            "--clip-grad-norm=1.5",
            "--batch-size=32",
            "--seed=7",
            "--init=/tmp/ckpt dir",
            "--tokenizer=/tmp/tok.json",
            "--val=/tmp/val.jsonl",
            "--lora=r=4",
            "--grad-accum=2",
            "--dtype=bf16",
            "--dim=64",
            "--layers=2",
            "--heads=4",
            "--kv-heads=2",
            "--seq-len=32",
            "--device=cpu",
        ])
        .model;
        let flags = model_flags(&original);
        let again = Wrapper::parse_from(std::iter::once("x".to_string()).chain(flags)).model;
        assert_eq!(format!("{original:?}"), format!("{again:?}"));
    }
}
