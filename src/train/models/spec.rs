//! The `--model` choice and its options, e.g. `mlp`, `mlp(hidden=256,256)`,
//! `resnet20`, `llama(dim=128,layers=4,heads=4,kv_heads=2)`.

use std::fmt;
use std::str::FromStr;

use super::lora::LoraSpec;
use crate::train::error::TrainError;

/// Shape options of the Llama model (ignored with `--init`, where the
/// checkpoint's `config.json` decides).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaSpec {
    pub dim: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// SwiGLU width; `None`: 8/3 of `dim` rounded up to a multiple of 32 (LLaMA's ratio).
    pub intermediate: Option<usize>,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tie_embeddings: bool,
    /// LoRA adapters on a frozen base (`--lora`).
    pub lora: Option<LoraSpec>,
}

impl Default for LlamaSpec {
    fn default() -> Self {
        LlamaSpec {
            dim: 128,
            layers: 4,
            heads: 4,
            kv_heads: 2,
            intermediate: None,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            tie_embeddings: false,
            lora: None,
        }
    }
}

impl LlamaSpec {
    pub fn intermediate_size(&self) -> usize {
        self.intermediate
            .unwrap_or_else(|| (8 * self.dim).div_ceil(3).div_ceil(32) * 32)
    }
}

/// Which network to train.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// ReLU multilayer perceptron with these hidden widths.
    Mlp {
        hidden: Vec<usize>,
    },
    LeNet5,
    /// CIFAR ResNet with `n` basic blocks per stage (depth 6n + 2).
    ResNet {
        blocks_per_stage: usize,
    },
    Llama(LlamaSpec),
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec::Mlp {
            hidden: vec![128, 128],
        }
    }
}

impl ModelSpec {
    /// A short name: `mlp`, `lenet5`, `resnet20`, `llama`.
    pub fn name(&self) -> String {
        match self {
            ModelSpec::Mlp { .. } => "mlp".into(),
            ModelSpec::LeNet5 => "lenet5".into(),
            ModelSpec::ResNet { blocks_per_stage } => format!("resnet{}", 6 * blocks_per_stage + 2),
            ModelSpec::Llama(_) => "llama".into(),
        }
    }

    pub fn is_language_model(&self) -> bool {
        matches!(self, ModelSpec::Llama(_))
    }
}

const NAMES: &str = "mlp, lenet5, resnet20, resnet32 (any resnet 6n+2) or llama";

impl FromStr for ModelSpec {
    type Err = TrainError;

    /// `NAME` or `NAME(key=value,...)`; the keys are `hidden` (mlp: widths
    /// separated by commas) and `dim layers heads kv_heads intermediate
    /// rope_theta rms_norm_eps tied` (llama).
    fn from_str(text: &str) -> Result<ModelSpec, TrainError> {
        let err = |m: String| TrainError::Model(format!("'{text}': {m}"));
        let text_t = text.trim();
        let (name, args) = match text_t.split_once('(') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| err("missing ')'".into()))?;
                (name.trim().to_ascii_lowercase(), Some(inner))
            }
            None => (text_t.to_ascii_lowercase(), None),
        };
        let pairs = parse_pairs(args.unwrap_or("")).map_err(err)?;
        let mut spec = match name.as_str() {
            "mlp" => ModelSpec::default(),
            "lenet5" | "lenet" | "lenet-5" => ModelSpec::LeNet5,
            "llama" => ModelSpec::Llama(LlamaSpec::default()),
            other => match other
                .strip_prefix("resnet")
                .and_then(|d| d.parse::<usize>().ok())
            {
                Some(depth) if depth >= 8 && (depth - 2) % 6 == 0 => ModelSpec::ResNet {
                    blocks_per_stage: (depth - 2) / 6,
                },
                Some(depth) => {
                    return Err(err(format!(
                        "resnet depth {depth} is not 6n+2 (20, 32, 44, 56, 110)"
                    )));
                }
                None => return Err(err(format!("unknown model '{other}'; expected {NAMES}"))),
            },
        };
        for (key, value) in pairs {
            spec.set(&key, &value).map_err(err)?;
        }
        Ok(spec)
    }
}

/// `key=value` pairs; a value may hold commas up to the next `key=`.
fn parse_pairs(args: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match piece.split_once('=') {
            Some((k, v)) => pairs.push((
                k.trim().to_ascii_lowercase().replace('-', "_"),
                v.trim().to_string(),
            )),
            None => match pairs.last_mut() {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(piece);
                }
                None => return Err(format!("expected key=value, found '{piece}'")),
            },
        }
    }
    Ok(pairs)
}

impl ModelSpec {
    /// Sets one option by its command-line name.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let int = || -> Result<usize, String> {
            value
                .parse::<usize>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{key} must be a positive integer, found '{value}'"))
        };
        let float = || -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("{key} must be a positive number, found '{value}'"))
        };
        match (self, key) {
            (ModelSpec::Mlp { hidden }, "hidden") => *hidden = parse_widths(value)?,
            (ModelSpec::Llama(l), "dim") => l.dim = int()?,
            (ModelSpec::Llama(l), "layers") => l.layers = int()?,
            (ModelSpec::Llama(l), "heads") => l.heads = int()?,
            (ModelSpec::Llama(l), "kv_heads") => l.kv_heads = int()?,
            (ModelSpec::Llama(l), "intermediate") => l.intermediate = Some(int()?),
            (ModelSpec::Llama(l), "rope_theta") => l.rope_theta = float()?,
            (ModelSpec::Llama(l), "rms_norm_eps") => l.rms_norm_eps = float()?,
            (ModelSpec::Llama(l), "tied" | "tie_embeddings") => {
                l.tie_embeddings = value
                    .parse()
                    .map_err(|_| format!("{key} must be true or false, found '{value}'"))?
            }
            (spec, k) => return Err(format!("{} has no option '{k}'", spec.name())),
        }
        Ok(())
    }
}

/// Hidden widths like `128,128` (an empty string means no hidden layer).
pub fn parse_widths(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<usize>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("hidden width must be a positive integer, found '{p}'"))
        })
        .collect()
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Mlp { hidden } => {
                let widths: Vec<String> = hidden.iter().map(|w| w.to_string()).collect();
                write!(f, "mlp(hidden={})", widths.join(","))
            }
            ModelSpec::LeNet5 | ModelSpec::ResNet { .. } => f.write_str(&self.name()),
            ModelSpec::Llama(l) => {
                write!(
                    f,
                    "llama(dim={},layers={},heads={},kv_heads={},intermediate={},rope_theta={},rms_norm_eps={},tied={})",
                    l.dim,
                    l.layers,
                    l.heads,
                    l.kv_heads,
                    l.intermediate_size(),
                    l.rope_theta,
                    l.rms_norm_eps,
                    l.tie_embeddings
                )?;
                match &l.lora {
                    Some(lora) => write!(f, " + lora({lora})"),
                    None => Ok(()),
                }
            }
        }
    }
}
