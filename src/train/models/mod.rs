//! The networks: MLP, LeNet-5, CIFAR ResNets and a trainable Llama, their
//! variables, and the fused CPU path for MLPs.

mod batch_norm;
mod channel_bias;
mod conv;
mod conv_direct;
mod cpu_storage;
pub mod fused_mlp;
pub mod hf_export;
mod layers;
pub mod lenet;
pub mod llama;
pub mod llama_config;
pub mod lora;
mod matmul;
mod max_pool;
pub mod mlp;
pub mod params;
mod relu;
pub mod resnet;
mod spec;
mod strided_gemm;

use std::path::Path;

use candle_core::{DType, Device, Result as CResult, Tensor};

pub use llama::Llama;
pub use llama_config::{LlamaShape, RopeScaling};
pub use lora::LoraSpec;
pub use params::{ParamBuilder, ParamStore};
pub use spec::{LlamaSpec, ModelSpec, parse_widths};

use crate::train::data::DataKind;
use crate::train::error::{Result, TrainError};

#[derive(Debug, Clone)]
enum Net {
    Mlp(mlp::Mlp),
    LeNet5(lenet::LeNet5),
    ResNet(resnet::ResNet),
    Llama(Llama),
}

/// A network with its variables.
#[derive(Debug, Clone)]
pub struct Model {
    spec: ModelSpec,
    net: Net,
    params: ParamStore,
}

impl Model {
    /// Builds `spec` for `data`: seeded from `seed` (the same seed gives the
    /// same weights), or, for `llama` with `init`, from a Hugging Face
    /// checkpoint folder (its `config.json` decides the shape).
    pub fn build(
        spec: &ModelSpec,
        data: &DataKind,
        init: Option<&Path>,
        seed: u64,
        device: &Device,
    ) -> Result<Model> {
        Model::build_with_dtype(spec, data, init, seed, device, DType::F32)
    }

    /// [`Model::build`] with variables of another float type (the initial
    /// values are the f32 ones converted); training runs in f32, f64 serves
    /// exact gradient checks.
    pub fn build_with_dtype(
        spec: &ModelSpec,
        data: &DataKind,
        init: Option<&Path>,
        seed: u64,
        device: &Device,
        dtype: DType,
    ) -> Result<Model> {
        let mut params = ParamStore::with_dtype(device, dtype);
        let (net, spec) = match (spec, data) {
            (ModelSpec::Llama(l), DataKind::LanguageModel { vocab, seq_len }) => {
                let (llama, resolved) =
                    build_llama(&mut params, l, *vocab, *seq_len, init, seed, device)?;
                (Net::Llama(llama), resolved)
            }
            (_, DataKind::Classification { .. }) | (ModelSpec::Llama(_), _) if init.is_some() => {
                return Err(TrainError::Model(
                    "--init loads Hugging Face Llama checkpoints: use it with --model llama on a token task".into(),
                ));
            }
            (
                ModelSpec::Mlp { hidden },
                DataKind::Classification {
                    input_shape,
                    classes,
                },
            ) => {
                let mut widths = vec![input_shape.iter().product()];
                widths.extend_from_slice(hidden);
                widths.push(*classes);
                let mut pb = ParamBuilder::new(&mut params, seed);
                (Net::Mlp(mlp::Mlp::new(&mut pb, &widths)?), spec.clone())
            }
            (
                ModelSpec::LeNet5,
                DataKind::Classification {
                    input_shape,
                    classes,
                },
            ) => {
                let mut pb = ParamBuilder::new(&mut params, seed);
                (
                    Net::LeNet5(lenet::LeNet5::new(&mut pb, *input_shape, *classes)?),
                    spec.clone(),
                )
            }
            (
                ModelSpec::ResNet { blocks_per_stage },
                DataKind::Classification {
                    input_shape,
                    classes,
                },
            ) => {
                let mut pb = ParamBuilder::new(&mut params, seed);
                let net = resnet::ResNet::new(&mut pb, *blocks_per_stage, *input_shape, *classes)?;
                (Net::ResNet(net), spec.clone())
            }
            (ModelSpec::Llama(_), DataKind::Classification { .. }) => {
                return Err(TrainError::Model(
                    "llama is a language model: use it with --task tokens=DIR or text=FILE".into(),
                ));
            }
            (other, DataKind::LanguageModel { .. }) => {
                return Err(TrainError::Model(format!(
                    "{} is an image classifier: use --model llama for token tasks",
                    other.name()
                )));
            }
        };
        Ok(Model { spec, net, params })
    }

    /// The spec as built (for `--init`, the checkpoint's shape).
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Logits: images `(n, C, H, W)` give `(n, classes)`; token ids `(n, L)`
    /// give `(n, L, vocab)`. `train` selects batch statistics in batch norm
    /// (and updates the running ones).
    pub fn forward(&self, input: &Tensor, train: bool) -> CResult<Tensor> {
        match &self.net {
            Net::Mlp(m) => m.forward(input),
            Net::LeNet5(m) => m.forward(input),
            Net::ResNet(m) => m.forward(input, train),
            Net::Llama(m) => m.forward_t(input, train),
        }
    }

    /// Mixed precision (`--dtype`): the Llama computes in bf16 or f16 over
    /// its f32 variables; the image models train in f32 only.
    pub fn set_precision(&mut self, precision: crate::train::Precision) -> Result<()> {
        let dtype = precision.compute_dtype();
        match &mut self.net {
            Net::Llama(m) => Ok(m.set_compute_dtype(dtype)?),
            _ if dtype == self.params.dtype() => Ok(()),
            _ => Err(TrainError::Model(format!(
                "--dtype {precision} is for --model llama; {} trains in f32",
                self.spec.name()
            ))),
        }
    }

    pub fn llama(&self) -> Option<&Llama> {
        match &self.net {
            Net::Llama(m) => Some(m),
            _ => None,
        }
    }
}

fn build_llama(
    params: &mut ParamStore,
    spec: &LlamaSpec,
    data_vocab: usize,
    seq_len: usize,
    init: Option<&Path>,
    seed: u64,
    device: &Device,
) -> Result<(Llama, ModelSpec)> {
    match init {
        Some(dir) => {
            let shape = llama_config::read_config(dir)?;
            if data_vocab > shape.vocab {
                return Err(TrainError::Model(format!(
                    "the data has token ids up to {} but the checkpoint's vocab_size is {}",
                    data_vocab - 1,
                    shape.vocab
                )));
            }
            let checkpoint = llama_config::read_weights(dir)?;
            let mut pb = ParamBuilder::from_checkpoint(params, checkpoint, seed);
            let llama = Llama::new(&mut pb, &shape, seq_len, spec.lora.as_ref(), device)?;
            let resolved = ModelSpec::Llama(LlamaSpec {
                dim: shape.dim,
                layers: shape.layers,
                heads: shape.heads,
                kv_heads: shape.kv_heads,
                intermediate: Some(shape.intermediate),
                rope_theta: shape.rope_theta,
                rms_norm_eps: shape.rms_norm_eps,
                tie_embeddings: shape.tie_embeddings,
                lora: spec.lora.clone(),
            });
            Ok((llama, resolved))
        }
        None => {
            if spec.heads == 0 || !spec.dim.is_multiple_of(spec.heads) {
                return Err(TrainError::Model(format!(
                    "llama: dim {} must be divisible by heads {}",
                    spec.dim, spec.heads
                )));
            }
            let shape = LlamaShape {
                vocab: data_vocab,
                dim: spec.dim,
                layers: spec.layers,
                heads: spec.heads,
                kv_heads: spec.kv_heads,
                head_dim: spec.dim / spec.heads,
                intermediate: spec.intermediate_size(),
                rope_theta: spec.rope_theta,
                rope_scaling: None,
                rms_norm_eps: spec.rms_norm_eps,
                tie_embeddings: spec.tie_embeddings,
                max_positions: seq_len,
                family: llama_config::Family::Llama,
                attention_bias: false,
                sliding_window: None,
            };
            let mut pb = ParamBuilder::new(params, seed);
            let llama = Llama::new(&mut pb, &shape, seq_len, spec.lora.as_ref(), device)?;
            Ok((llama, ModelSpec::Llama(spec.clone())))
        }
    }
}
