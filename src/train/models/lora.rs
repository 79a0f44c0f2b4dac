//! LoRA (Hu et al., 2021) as PEFT implements it: a frozen linear layer
//! `W` gains `scale * B A` with `A: (r, in)` drawn like a linear layer's
//! weight, `B: (out, r)` zero (so training starts from the base model) and
//! `scale = alpha / r`. Only `A` and `B` train; the base weights stay as
//! loaded, bit for bit.

use std::fmt;

use candle_core::{Result as CResult, Tensor};

use super::params::ParamBuilder;
use crate::train::error::Result;

/// The Llama modules adapters may be put on, by their Hugging Face names.
pub const MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// `--lora r=8,alpha=16,targets=q_proj,v_proj`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    pub rank: usize,
    pub alpha: f64,
    /// The probability PEFT's `lora_dropout` zeroes an adapter's input
    /// with, in training only.
    pub dropout: f64,
    /// Module names from [`MODULES`], in that order.
    pub targets: Vec<String>,
}

impl Default for LoraSpec {
    /// PEFT's `LoraConfig` defaults: r 8, alpha 8, query and value projections.
    fn default() -> Self {
        LoraSpec {
            rank: 8,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec!["q_proj".into(), "v_proj".into()],
        }
    }
}

impl LoraSpec {
    /// Parses `r=8,alpha=16,dropout=0,targets=q_proj,k_proj` (a word after
    /// `targets=` without `=` is one more target; an empty text keeps the
    /// defaults).
    pub fn parse(text: &str) -> std::result::Result<LoraSpec, String> {
        let mut spec = LoraSpec::default();
        let mut targets: Option<Vec<String>> = None;
        let mut in_targets = false;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                if in_targets {
                    targets.get_or_insert_with(Vec::new).push(part.to_string());
                    continue;
                }
                return Err(format!(
                    "'{part}' is not key=value (keys: r, alpha, dropout, targets)"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            in_targets = key == "targets" || key == "target_modules";
            match key {
                "r" | "rank" => {
                    spec.rank = value
                        .parse()
                        .ok()
                        .filter(|r| (1..=65_536).contains(r))
                        .ok_or_else(|| {
                            format!("r must be an integer from 1 to 65536, found '{value}'")
                        })?
                }
                "alpha" | "lora_alpha" => {
                    spec.alpha = value
                        .parse()
                        .ok()
                        .filter(|a: &f64| a.is_finite() && *a > 0.0)
                        .ok_or_else(|| {
                            format!("alpha must be a positive number, found '{value}'")
                        })?
                }
                "dropout" | "lora_dropout" => {
                    spec.dropout = value
                        .parse()
                        .ok()
                        .filter(|p: &f64| (0.0..1.0).contains(p))
                        .ok_or_else(|| {
                            format!("dropout must be a probability in [0, 1), found '{value}'")
                        })?;
                }
                "targets" | "target_modules" => {
                    targets.get_or_insert_with(Vec::new).push(value.to_string());
                }
                other => {
                    return Err(format!(
                        "LoRA has no option '{other}' (options: r, alpha, dropout, targets)"
                    ));
                }
            }
        }
        if let Some(mut named) = targets {
            for t in &named {
                if !MODULES.contains(&t.as_str()) {
                    return Err(format!(
                        "LoRA target '{t}' is not a Llama module (one of {})",
                        MODULES.join(", ")
                    ));
                }
            }
            named.sort_by_key(|t| MODULES.iter().position(|m| m == t));
            named.dedup();
            spec.targets = named;
        }
        Ok(spec)
    }

    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    pub fn targets(&self, module: &str) -> bool {
        self.targets.iter().any(|t| t == module)
    }
}

impl fmt::Display for LoraSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r={},alpha={}", self.rank, self.alpha)?;
        if self.dropout > 0.0 {
            write!(f, ",dropout={}", self.dropout)?;
        }
        write!(f, ",targets={}", self.targets.join(","))
    }
}

/// The trainable low-rank update of one linear layer.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// `(r, in)`.
    pub a: Tensor,
    /// `(out, r)`.
    pub b: Tensor,
    pub scale: f64,
    /// Dropout on the adapter's input while training (PEFT's order:
    /// `B A dropout(x)`); `None` when the spec's dropout is 0.
    pub dropout: Option<Dropout>,
}

/// Inverted dropout with its own seeded stream, so that a run is repeated
/// exactly from its seed (Candle's CPU random tensors cannot be seeded).
#[derive(Debug, Clone)]
pub struct Dropout {
    pub p: f64,
    rng: std::sync::Arc<std::sync::Mutex<rand_chacha::ChaCha8Rng>>,
}

impl Dropout {
    pub fn new(p: f64, seed: u64) -> Dropout {
        use rand::SeedableRng;
        Dropout {
            p,
            rng: std::sync::Arc::new(std::sync::Mutex::new(
                rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            )),
        }
    }

    /// `x` with each element zeroed with probability `p`, the rest scaled
    /// by `1 / (1 - p)`.
    pub fn apply(&self, x: &Tensor) -> CResult<Tensor> {
        use rand::Rng;
        let keep = 1.0 - self.p;
        let scale = (1.0 / keep) as f32;
        let mask: Vec<f32> = {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (0..x.elem_count())
                .map(|_| {
                    if rng.random::<f64>() < keep {
                        scale
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

impl Adapter {
    /// `lora_A.weight` and `lora_B.weight` under the current scope, drawn
    /// from the builder's seed even when the base comes from a checkpoint.
    pub fn new(
        pb: &mut ParamBuilder,
        inputs: usize,
        outputs: usize,
        spec: &LoraSpec,
    ) -> Result<Adapter> {
        // PEFT: kaiming_uniform_(a=sqrt(5)) for A, i.e. U(±1/sqrt(in)); zeros for B.
        let bound = 1.0 / (inputs as f64).sqrt();
        let a = pb.adapter_uniform("lora_A.weight", (spec.rank, inputs), bound)?;
        let b = pb.adapter_uniform("lora_B.weight", (outputs, spec.rank), 0.0)?;
        let dropout = (spec.dropout > 0.0)
            .then(|| Dropout::new(spec.dropout, pb.stream_seed("lora_dropout")));
        Ok(Adapter {
            a,
            b,
            scale: spec.scale(),
            dropout,
        })
    }

    /// `scale * x A^T B^T` for `x: (rows, in)`, its input dropped out
    /// when `train`.
    pub fn forward(&self, x: &Tensor, train: bool) -> CResult<Tensor> {
        let x = match (&self.dropout, train) {
            (Some(dropout), true) => dropout.apply(x)?,
            _ => x.clone(),
        };
        let (a, b) = (self.a.to_dtype(x.dtype())?, self.b.to_dtype(x.dtype())?);
        x.matmul(&a.t()?)?.matmul(&b.t()?)? * self.scale
    }

    /// The base weight with this update folded in: `W + scale * B A`.
    pub fn merge(&self, weight: &Tensor) -> CResult<Tensor> {
        weight + (self.b.matmul(&self.a)? * self.scale)?
    }
}

/// `x W^T` for a frozen `W` on the CPU, as a custom op whose backward
/// gives `x` its gradient and nothing else: Candle's matmul backward also
/// computes the weight's gradient (a matmul as large as the forward one)
/// even when the weight is not a variable.
pub fn frozen_matmul(x: &Tensor, weight: &Tensor) -> CResult<Tensor> {
    if !x.device().is_cpu() {
        // Mixed precision: the f32 base weight meets bf16/f16 activations.
        return x.matmul(&weight.to_dtype(x.dtype())?.t()?);
    }
    // A transposed view: Candle's CPU matmul reads it without a copy.
    x.apply_op1(FrozenMatmul {
        weight_t: weight.t()?,
    })
}

struct FrozenMatmul {
    /// `(in, out)`.
    weight_t: Tensor,
}

impl candle_core::CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> CResult<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::CpuStorage;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-matmul: the input must be contiguous");
        };
        let device = candle_core::Device::Cpu;
        let shape = layout.shape();
        let x = match storage {
            CpuStorage::F32(v) => Tensor::from_slice(&v[start..end], shape, &device)?,
            CpuStorage::F64(v) => Tensor::from_slice(&v[start..end], shape, &device)?,
            CpuStorage::BF16(v) => Tensor::from_slice(&v[start..end], shape, &device)?,
            CpuStorage::F16(v) => Tensor::from_slice(&v[start..end], shape, &device)?,
            _ => candle_core::bail!("frozen-matmul: float inputs only"),
        };
        let y = x.matmul(&self.weight_t.to_dtype(x.dtype())?)?;
        let shape = y.shape().clone();
        let flat = y.flatten_all()?;
        let out = match storage {
            CpuStorage::F64(_) => CpuStorage::F64(flat.to_vec1()?),
            CpuStorage::BF16(_) => CpuStorage::BF16(flat.to_vec1()?),
            CpuStorage::F16(_) => CpuStorage::F16(flat.to_vec1()?),
            _ => CpuStorage::F32(flat.to_vec1()?),
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> CResult<Option<Tensor>> {
        let weight = self.weight_t.t()?.to_dtype(arg.dtype())?;
        Ok(Some(grad_res.matmul(&weight)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_matmul_equals_the_matmul_and_gives_the_input_its_gradient() {
        let device = candle_core::Device::Cpu;
        let w = Tensor::new(&[[1f32, 2., 3.], [-1., 0.5, 2.]], &device).unwrap();
        let x = candle_core::Var::new(&[[0.5f32, -1., 2.], [3., 1., -2.]], &device).unwrap();
        let plain = x.matmul(&w.t().unwrap()).unwrap();
        let frozen = frozen_matmul(x.as_tensor(), &w).unwrap();
        assert_eq!(
            plain.to_vec2::<f32>().unwrap(),
            frozen.to_vec2::<f32>().unwrap()
        );
        let g = |y: &Tensor| {
            let loss = (y * y).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            grads.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap()
        };
        assert_eq!(g(&plain), g(&frozen));
    }

    #[test]
    fn dropout_zeroes_about_p_and_keeps_the_mean() {
        let device = candle_core::Device::Cpu;
        let x = Tensor::ones(20_000, candle_core::DType::F32, &device).unwrap();
        let y: Vec<f32> = Dropout::new(0.25, 7).apply(&x).unwrap().to_vec1().unwrap();
        let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
        assert!((zeros - 0.25).abs() < 0.02, "{zeros}");
        assert!(
            y.iter()
                .all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6)
        );
        let mean = y.iter().map(|v| f64::from(*v)).sum::<f64>() / y.len() as f64;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        let spec = LoraSpec::parse("r=4,dropout=0.05,targets=q_proj").unwrap();
        assert_eq!(spec.dropout, 0.05);
        assert_eq!(spec.to_string(), "r=4,alpha=8,dropout=0.05,targets=q_proj");
    }

    #[test]
    fn specs_parse_with_peft_defaults_and_clear_errors() {
        assert_eq!(LoraSpec::parse("").unwrap(), LoraSpec::default());
        let spec = LoraSpec::parse("r=4,alpha=16,dropout=0,targets=v_proj,q_proj,o_proj").unwrap();
        assert_eq!(spec.rank, 4);
        assert_eq!(spec.scale(), 4.0);
        assert_eq!(spec.targets, ["q_proj", "v_proj", "o_proj"]);
        assert_eq!(
            spec.to_string(),
            "r=4,alpha=16,targets=q_proj,v_proj,o_proj"
        );
        assert_eq!(LoraSpec::parse(&spec.to_string()).unwrap(), spec);
        for (bad, says) in [
            ("r=0", "r must be"),
            ("alpha=-1", "alpha must be"),
            ("dropout=1", "probability in [0, 1)"),
            ("dropout=-0.1", "probability in [0, 1)"),
            ("targets=qkv", "not a Llama module"),
            ("rank=2,beta=1", "no option 'beta'"),
            ("q_proj", "not key=value"),
        ] {
            let err = LoraSpec::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
