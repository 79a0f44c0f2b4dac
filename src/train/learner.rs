//! The learner: data, model and optimizer behind the few calls the trainer
//! loop makes (one step at a given LR, evaluate, snapshot/restore, save).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::data::{Batch, DataKind, Dataset, EpochSampler, TaskSpec};
use super::device::{DeviceSpec, device_label};
use super::error::{Result, TrainError};
pub use super::eval::EvalStats;
use super::eval::{ClassTally, TokenTally};
use super::generate::{self, SampleOptions};
use super::models::fused_mlp::FusedMlp;
use super::models::{LoraSpec, Model, ModelSpec, hf_export};
use super::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use super::precision::{LossScaler, Precision};

/// Separates the sampler's random stream from the weight initialiser's.
const SAMPLER_SEED_SALT: u64 = 0x5eed_da7a_5eed_da7a;

/// Everything needed to build a learner.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerConfig {
    pub task: TaskSpec,
    pub model: ModelSpec,
    pub optimizer: OptimizerKind,
    pub weight_decay: f64,
    /// Momentum factor for `momentum` and `nesterov`.
    pub momentum: f64,
    pub clip_grad_norm: Option<f64>,
    pub batch_size: usize,
    /// Micro-batches of `batch_size` whose gradients one update averages
    /// (gradient accumulation; 1: none). The LR policy sees updates.
    pub grad_accum: usize,
    /// Tokens per training window and per evaluation block (token tasks).
    pub seq_len: usize,
    /// Seeds the initial weights and the batch order: same seed, same run.
    pub seed: u64,
    pub device: DeviceSpec,
    /// A Hugging Face Llama checkpoint folder to start from.
    pub init: Option<PathBuf>,
    /// `tokenizer.json` for text tasks (None: byte-level).
    pub tokenizer: Option<PathBuf>,
    /// CPU threads for Candle's kernels; `None`: RAYON_NUM_THREADS, else the
    /// physical cores. (The fused MLP is single-threaded.)
    pub threads: Option<usize>,
    /// Evaluate on at most this many test examples (or blocks).
    pub eval_limit: Option<usize>,
    /// Use the fused (hand-written backward) MLP step on the CPU.
    pub fused_cpu_mlp: bool,
    /// AdamW's (beta1, beta2).
    pub adam_betas: (f64, f64),
    /// The float type the model computes in (`--dtype`); variables and
    /// optimizer state stay f32. Llama only.
    pub precision: Precision,
    /// f16: the first loss scale (PyTorch's `init_scale`, 2^16).
    pub initial_loss_scale: f64,
    /// A Llama on the CPU: compute each batch as one share per thread, at
    /// once (data parallelism). Pays only when Candle's own kernels run on
    /// one thread (`CANDLE_NUM_THREADS=1` and `RAYON_NUM_THREADS=1`, which
    /// `lrtop train` sets for such runs): otherwise the shares queue for
    /// Candle's one worker pool.
    pub data_parallel: bool,
}

impl Default for LearnerConfig {
    fn default() -> Self {
        LearnerConfig {
            task: TaskSpec::Digits,
            model: ModelSpec::default(),
            optimizer: OptimizerKind::Momentum,
            weight_decay: 0.0,
            momentum: 0.9,
            clip_grad_norm: None,
            batch_size: 64,
            grad_accum: 1,
            seq_len: 64,
            seed: 0,
            device: DeviceSpec::Auto,
            init: None,
            tokenizer: None,
            threads: None,
            eval_limit: None,
            fused_cpu_mlp: true,
            adam_betas: (0.9, 0.999),
            precision: Precision::F32,
            initial_loss_scale: 65_536.0,
            data_parallel: false,
        }
    }
}

impl LearnerConfig {
    fn optimizer_config(&self) -> OptimizerConfig {
        OptimizerConfig {
            kind: self.optimizer,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            betas: self.adam_betas,
            eps: 1e-8,
            clip_grad_norm: self.clip_grad_norm,
        }
    }
}

/// What one training step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy of the batch (per example, or per token).
    pub loss: f64,
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    /// Samples seen / samples per epoch.
    pub epoch: f64,
    /// Samples in this step's batch (examples, or token windows of
    /// `seq_len` targets each).
    pub samples: usize,
    /// Samples seen since the start (or the restored snapshot's count).
    pub samples_seen: u64,
    /// f16: the loss scale this step's backward pass used.
    pub loss_scale: Option<f64>,
    /// f16: a gradient overflowed, so the update was skipped (and the
    /// scale halved); `grad_norm` is then not finite.
    pub skipped: bool,
}

/// A description of the learner for the UI and the run record.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerInfo {
    pub task: String,
    pub model: String,
    /// Trainable scalars.
    pub params: usize,
    /// Every scalar, frozen ones (a LoRA base) included.
    pub total_params: usize,
    pub device: String,
    /// Set when `auto` fell back to the CPU.
    pub device_notice: Option<String>,
    pub threads: usize,
    /// `fused-cpu-mlp` or `candle-autograd`.
    pub engine: &'static str,
    /// The float type of the forward and backward passes.
    pub precision: Precision,
    /// Shares of each batch computed at once (1: none).
    pub data_parallel: usize,
    pub train_size: usize,
    pub test_size: usize,
    pub classes: Option<usize>,
    pub vocab: Option<usize>,
    pub seq_len: Option<usize>,
}

enum Engine {
    Graph {
        model: Box<Model>,
        optimizer: Optimizer,
    },
    Fused {
        spec: ModelSpec,
        mlp: Box<FusedMlp>,
    },
}

#[derive(Debug, Clone)]
enum EngineState {
    Graph {
        values: Vec<(String, Tensor)>,
        optimizer: Optimizer,
    },
    Fused(Box<FusedMlp>),
}

/// Weights, optimizer state and data position at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    state: EngineState,
    sampler: EpochSampler,
    /// f16's loss scale: a restart begins where the snapshot was, not
    /// at a scale halved by the overflows of the run it replaces.
    scaler: Option<LossScaler>,
}

pub struct Learner {
    data: Dataset,
    device: Device,
    info: LearnerInfo,
    sampler: EpochSampler,
    engine: Engine,
    pool: Option<rayon::ThreadPool>,
    batch_size: usize,
    grad_accum: usize,
    eval_limit: Option<usize>,
    /// The checkpoint the model started from (named in a PEFT adapter).
    init: Option<PathBuf>,
    /// f16's dynamic loss scaling.
    scaler: Option<LossScaler>,
    /// Shares of each batch computed at once on the pool's threads (1: the
    /// batch as one).
    data_parallel: usize,
    indices: Vec<usize>,
    features: Vec<f32>,
    labels: Vec<u32>,
}

impl Learner {
    /// Loads the data and builds the model (seeded: the same seed gives the
    /// same initial weights and batch order).
    pub fn new(cfg: &LearnerConfig) -> Result<Learner> {
        if cfg.batch_size == 0 {
            return Err(TrainError::Config("batch size must be positive".into()));
        }
        if cfg.threads == Some(0) {
            return Err(TrainError::Config("threads must be positive".into()));
        }
        let opened = cfg.device.open()?;
        let device = opened.device;
        let data = Dataset::load_with(&cfg.task, cfg.seq_len, cfg.tokenizer.as_deref())?;
        let mut model = Model::build(
            &cfg.model,
            data.kind(),
            cfg.init.as_deref(),
            cfg.seed,
            &device,
        )?;
        if cfg.precision != Precision::F32 {
            model.set_precision(cfg.precision)?;
        }
        let params = model.params().count();
        let total_params = model.params().total_count();
        let spec = model.spec().to_string();
        let engine = build_engine(cfg, model, data.kind(), &device)?;
        let pool = thread_pool(cfg, &engine, &device)?;
        let data_parallel = data_parallel_shares(cfg, &engine, &device, pool.as_ref());
        let (classes, vocab, seq_len) = match data.kind() {
            DataKind::Classification { classes, .. } => (Some(*classes), None, None),
            DataKind::LanguageModel { vocab, seq_len } => (None, Some(*vocab), Some(*seq_len)),
        };
        let info = LearnerInfo {
            task: cfg.task.to_string(),
            model: spec,
            params,
            total_params,
            device: device_label(&device),
            device_notice: opened.notice,
            threads: pool
                .as_ref()
                .map_or(1, rayon::ThreadPool::current_num_threads),
            engine: match engine {
                Engine::Fused { .. } => "fused-cpu-mlp",
                Engine::Graph { .. } => "candle-autograd",
            },
            precision: cfg.precision,
            data_parallel,
            train_size: data.train_size(),
            test_size: data.test_size(),
            classes,
            vocab,
            seq_len,
        };
        if data.train_size() == 0 {
            return Err(TrainError::Config(format!(
                "task {}: no training samples",
                cfg.task
            )));
        }
        let sampler = EpochSampler::new(data.train_size(), cfg.seed ^ SAMPLER_SEED_SALT);
        Ok(Learner {
            data,
            device,
            info,
            sampler,
            engine,
            pool,
            batch_size: cfg.batch_size,
            grad_accum: cfg.grad_accum.max(1),
            eval_limit: cfg.eval_limit,
            init: cfg.init.clone(),
            scaler: cfg
                .precision
                .needs_loss_scaling()
                .then(|| LossScaler::new(cfg.initial_loss_scale, 2_000)),
            data_parallel,
            indices: Vec::new(),
            features: Vec::new(),
            labels: Vec::new(),
        })
    }

    pub fn info(&self) -> LearnerInfo {
        self.info.clone()
    }

    /// The notice to print when `auto` fell back to the CPU.
    pub fn device_notice(&self) -> Option<String> {
        self.info.device_notice.clone()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Samples the next batch and does one update at learning rate `lr`.
    pub fn train_step(&mut self, lr: f64) -> Result<StepStats> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(TrainError::Config(format!(
                "learning rate must be finite and >= 0, found {lr}"
            )));
        }
        let pool = self.pool.take();
        let out = match &pool {
            Some(p) => p.install(|| self.step_inner(lr)),
            None => self.step_inner(lr),
        };
        self.pool = pool;
        out
    }

    fn step_inner(&mut self, lr: f64) -> Result<StepStats> {
        if self.grad_accum > 1 || self.scaler.is_some() {
            return self.graph_step(lr);
        }
        self.sampler.next_batch(self.batch_size, &mut self.indices);
        let (loss, grad_norm) = match &mut self.engine {
            Engine::Fused { mlp, .. } => {
                let (train, _) = self
                    .data
                    .images()
                    .ok_or_else(|| TrainError::Config("fused MLP without images".into()))?;
                self.features.clear();
                train.features_into(&self.indices, &mut self.features);
                self.labels.clear();
                self.labels
                    .extend(self.indices.iter().map(|&i| train.labels()[i]));
                mlp.train_step(&self.features, &self.labels, lr)?
            }
            Engine::Graph { model, optimizer } => {
                let (value, grads) = loss_and_grads(
                    model,
                    &self.data,
                    &self.indices,
                    &self.device,
                    1.0,
                    self.data_parallel,
                )?;
                let stats = optimizer.step(model.params().params(), &grads, lr)?;
                (value, stats.grad_norm)
            }
        };
        Ok(StepStats {
            loss,
            grad_norm,
            epoch: self.sampler.epoch(),
            samples: self.batch_size,
            samples_seen: self.sampler.samples_seen(),
            loss_scale: None,
            skipped: false,
        })
    }

    /// One update from `grad_accum` micro-batches: each backward pass is of
    /// its loss over `grad_accum`, and the gradients are summed, so the
    /// update is that of their mean (one big batch of the same examples).
    /// Under f16 the losses are scaled up for the backward passes and the
    /// gradients scaled back down; an update whose gradients overflowed is
    /// skipped.
    fn graph_step(&mut self, lr: f64) -> Result<StepStats> {
        let Engine::Graph { model, optimizer } = &mut self.engine else {
            return Err(TrainError::Config(
                "gradient accumulation and f16 need the autograd engine".into(),
            ));
        };
        let n = self.grad_accum;
        let loss_scale = self.scaler.as_ref().map(LossScaler::scale);
        let factor = loss_scale.unwrap_or(1.0) / n as f64;
        let mut total: Option<candle_core::backprop::GradStore> = None;
        let mut loss_sum = 0.0;
        for _ in 0..n {
            self.sampler.next_batch(self.batch_size, &mut self.indices);
            let (value, grads) = loss_and_grads(
                model,
                &self.data,
                &self.indices,
                &self.device,
                factor,
                self.data_parallel,
            )?;
            loss_sum += value;
            total = Some(match total {
                None => grads,
                Some(sum) => add_grads(sum, &grads, model.params().params())?,
            });
        }
        let mut grads = total.ok_or_else(|| TrainError::Config("no micro-batch".into()))?;
        let params = model.params().params();
        if let Some(scale) = loss_scale {
            for (_, var) in params {
                if let Some(g) = grads.remove(var.as_tensor()) {
                    grads.insert(var.as_tensor(), (g * (1.0 / scale))?);
                }
            }
        }
        let grad_norm = Optimizer::grad_norm(params, &grads)?;
        let apply = match &mut self.scaler {
            Some(scaler) => scaler.update(grad_norm.is_finite()),
            None => true,
        };
        if apply {
            optimizer.step_with_norm(params, &grads, lr, grad_norm)?;
        }
        Ok(StepStats {
            loss: loss_sum / n as f64,
            grad_norm,
            epoch: self.sampler.epoch(),
            samples: self.batch_size * n,
            samples_seen: self.sampler.samples_seen(),
            loss_scale,
            skipped: !apply,
        })
    }

    /// Metrics on the test split (evaluation mode, batched, no graph kept).
    pub fn evaluate(&mut self) -> Result<EvalStats> {
        let pool = self.pool.take();
        let out = match &pool {
            Some(p) => p.install(|| self.evaluate_inner()),
            None => self.evaluate_inner(),
        };
        self.pool = pool;
        out
    }

    fn evaluate_inner(&self) -> Result<EvalStats> {
        let total = self
            .eval_limit
            .map_or(self.data.test_size(), |l| l.min(self.data.test_size()));
        if total == 0 {
            return Err(TrainError::Config("the test split is empty".into()));
        }
        let batch = match (self.data.kind(), &self.engine) {
            (DataKind::Classification { .. }, Engine::Fused { .. }) => 500,
            // A Candle model's forward pass keeps every activation of the
            // batch (its weights are variables, so a graph is built): in
            // batches the size of training's, evaluation peaks at a step's
            // memory (ResNet-20 over 256 images in one batch: 1.4 GB).
            (DataKind::Classification { .. }, Engine::Graph { .. }) => {
                self.batch_size.clamp(64, 500)
            }
            // Data parallel: that many batches at once, each a share of
            // one, so evaluation peaks at the memory of one batch.
            (DataKind::LanguageModel { seq_len, .. }, _) => (65_536 / seq_len)
                .clamp(1, self.batch_size.max(8))
                .div_ceil(self.data_parallel.max(1)),
        };
        match (self.data.kind(), &self.engine) {
            (DataKind::Classification { classes, .. }, Engine::Fused { mlp, .. }) => {
                let (_, test) = self
                    .data
                    .images()
                    .ok_or_else(|| TrainError::Config("fused MLP without images".into()))?;
                let mut tally = ClassTally::default();
                let mut features = Vec::new();
                for start in (0..total).step_by(batch) {
                    let idx: Vec<usize> = (start..(start + batch).min(total)).collect();
                    features.clear();
                    test.features_into(&idx, &mut features);
                    let logits = mlp.logits(&features, idx.len())?;
                    let labels: Vec<u32> = idx.iter().map(|&i| test.labels()[i]).collect();
                    tally.add(&logits, *classes, &labels);
                }
                Ok(tally.finish(*classes))
            }
            (DataKind::Classification { classes, .. }, Engine::Graph { model, .. }) => {
                let mut tally = ClassTally::default();
                for start in (0..total).step_by(batch) {
                    let Batch::Images { x, y } = self
                        .data
                        .test_batch(start..(start + batch).min(total), &self.device)?
                    else {
                        return Err(TrainError::Config("expected an image batch".into()));
                    };
                    let logits = model.forward(&x, false)?.detach();
                    let logits: Vec<f32> = logits
                        .flatten_all()?
                        .to_dtype(candle_core::DType::F32)?
                        .to_vec1()?;
                    let labels: Vec<u32> = y.to_vec1()?;
                    tally.add(&logits, *classes, &labels);
                }
                Ok(tally.finish(*classes))
            }
            (DataKind::LanguageModel { .. }, Engine::Graph { model, .. }) => {
                let tally_of = |start: usize| -> Result<TokenTally> {
                    let Batch::Tokens {
                        input,
                        target,
                        weight,
                    } = self
                        .data
                        .test_batch(start..(start + batch).min(total), &self.device)?
                    else {
                        return Err(TrainError::Config("expected a token batch".into()));
                    };
                    let logits = model.forward(&input, false)?.detach();
                    let mut tally = TokenTally::default();
                    tally.add(&logits, &target, weight.as_ref())?;
                    Ok(tally)
                };
                let starts: Vec<usize> = (0..total).step_by(batch).collect();
                // Data parallel: Candle's kernels run on one thread each, so
                // the batches go to the pool's threads instead.
                let tallies: Vec<Result<TokenTally>> = if self.data_parallel > 1 {
                    use rayon::prelude::*;
                    starts.par_iter().map(|&start| tally_of(start)).collect()
                } else {
                    starts.iter().map(|&start| tally_of(start)).collect()
                };
                let mut tally = TokenTally::default();
                for part in tallies {
                    tally.merge(&part?);
                }
                Ok(tally.finish())
            }
            (DataKind::LanguageModel { .. }, Engine::Fused { .. }) => Err(TrainError::Config(
                "the fused MLP does not model tokens".into(),
            )),
        }
    }

    /// A copy of the weights, optimizer state and data position.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let state = match &self.engine {
            Engine::Graph { model, optimizer } => EngineState::Graph {
                values: model.params().values()?,
                optimizer: optimizer.snapshot()?,
            },
            Engine::Fused { mlp, .. } => EngineState::Fused(mlp.clone()),
        };
        Ok(Snapshot {
            state,
            sampler: self.sampler.clone(),
            scaler: self.scaler.clone(),
        })
    }

    /// Returns to a snapshot of this learner: the following steps repeat
    /// exactly what followed the snapshot.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        if snapshot.sampler.len() != self.sampler.len() {
            return Err(TrainError::Config(
                "snapshot of a different data set".into(),
            ));
        }
        match (&mut self.engine, &snapshot.state) {
            (
                Engine::Graph { model, optimizer },
                EngineState::Graph {
                    values,
                    optimizer: saved,
                },
            ) => {
                let map: HashMap<String, Tensor> = values.iter().cloned().collect();
                model.params().set_values(&map, "snapshot")?;
                *optimizer = saved.snapshot()?;
            }
            (Engine::Fused { mlp, .. }, EngineState::Fused(saved)) => {
                if mlp.widths() != saved.widths() {
                    return Err(TrainError::Config("snapshot of a different model".into()));
                }
                *mlp = saved.clone();
            }
            _ => return Err(TrainError::Config("snapshot of a different learner".into())),
        }
        self.sampler = snapshot.sampler.clone();
        self.scaler = snapshot.scaler.clone();
        Ok(())
    }

    /// The weights (and batch-norm statistics) as safetensors. Llama names
    /// follow transformers' `LlamaForCausalLM`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let values: HashMap<String, Tensor> = self.weights()?.into_iter().collect();
        let bytes = safetensors::serialize(&values, None)
            .map_err(|e| TrainError::file(path, format!("cannot write safetensors: {e}")))?;
        // A full disk leaves the previous file at the path as it was.
        crate::write_file::write_whole(path, &bytes).map_err(|e| TrainError::io(path, e))
    }

    /// `--save`: a LoRA run writes its adapters as a PEFT folder at `path`,
    /// any other run its weights as one safetensors file.
    pub fn save_result(&self, path: &Path) -> Result<()> {
        let Some(spec) = self.lora() else {
            return self.save(path);
        };
        let Engine::Graph { model, .. } = &self.engine else {
            return self.save(path);
        };
        // Only the adapters are copied, not the frozen base.
        let adapters = model
            .params()
            .params()
            .iter()
            .filter(|(name, _)| name.contains(".lora_A.") || name.contains(".lora_B."))
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
            .collect::<Result<Vec<_>>>()?;
        hf_export::write_adapter(path, spec, self.init.as_deref(), adapters)
    }

    /// `--save-hf`: a transformers checkpoint folder of this Llama, with
    /// LoRA adapters merged into the weights they adapt.
    pub fn save_hf(&self, dir: &Path, max_shard: u64) -> Result<()> {
        let llama = match &self.engine {
            Engine::Graph { model, .. } => model.llama(),
            Engine::Fused { .. } => None,
        }
        .ok_or_else(|| TrainError::Config("--save-hf writes Llama checkpoints only".into()))?;
        let weights = llama.merged_weights()?;
        hf_export::write_checkpoint(dir, llama.shape(), weights, max_shard)
    }

    /// The adapters' configuration of a LoRA run.
    pub fn lora(&self) -> Option<&LoraSpec> {
        match self.model_spec() {
            ModelSpec::Llama(l) => l.lora.as_ref(),
            _ => None,
        }
    }

    /// Loads weights written by [`Learner::save`] for the same model.
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| TrainError::file(path, format!("not a readable safetensors file: {e}")))?;
        let origin = path.display().to_string();
        match &mut self.engine {
            Engine::Graph { model, .. } => model.params().set_values(&tensors, &origin),
            Engine::Fused { mlp, .. } => {
                let values: Vec<(String, Tensor)> = tensors.into_iter().collect();
                mlp.load(&values)
                    .map_err(|e| TrainError::file(path, e.to_string()))
            }
        }
    }

    /// The current weights by name (deep copies).
    pub fn weights(&self) -> Result<Vec<(String, Tensor)>> {
        match &self.engine {
            Engine::Graph { model, .. } => model.params().values(),
            Engine::Fused { mlp, .. } => mlp.values(),
        }
    }

    /// The spec as built (with `--init`, the checkpoint's shape).
    pub fn model_spec(&self) -> &ModelSpec {
        match &self.engine {
            Engine::Graph { model, .. } => model.spec(),
            Engine::Fused { spec, .. } => spec,
        }
    }

    /// `n` tokens sampled after `prompt` (token models only), temperature
    /// sampling (0: greedy) with a seed.
    pub fn sample_text(
        &self,
        prompt: &[u32],
        n: usize,
        temperature: f64,
        seed: u64,
    ) -> Result<Vec<u32>> {
        self.sample_text_with(
            prompt,
            n,
            &SampleOptions {
                temperature,
                top_p: None,
                seed,
            },
        )
    }

    pub fn sample_text_with(
        &self,
        prompt: &[u32],
        n: usize,
        options: &SampleOptions,
    ) -> Result<Vec<u32>> {
        let llama = match &self.engine {
            Engine::Graph { model, .. } => model.llama(),
            Engine::Fused { .. } => None,
        }
        .ok_or_else(|| {
            TrainError::Config("sampling text needs a language model (--model llama)".into())
        })?;
        let run = || generate::sample(llama, prompt, n, options, &self.device);
        match &self.pool {
            Some(p) => p.install(run),
            None => run(),
        }
    }

    /// The loaded data (sizes, kind, batches).
    pub fn dataset(&self) -> &Dataset {
        &self.data
    }
}

/// The fused MLP step on the CPU when allowed, else Candle's autograd.
fn build_engine(
    cfg: &LearnerConfig,
    model: Model,
    data: &DataKind,
    device: &Device,
) -> Result<Engine> {
    let optimizer_cfg = cfg.optimizer_config();
    if let (
        ModelSpec::Mlp { hidden },
        DataKind::Classification {
            input_shape,
            classes,
        },
        Device::Cpu,
    ) = (model.spec(), data, device)
        && cfg.fused_cpu_mlp
        // The fused step updates from one batch.
        && cfg.grad_accum == 1
    {
        let mut widths = vec![input_shape.iter().product()];
        widths.extend_from_slice(hidden);
        widths.push(*classes);
        let mlp = FusedMlp::from_store(model.params(), &widths, optimizer_cfg)?;
        return Ok(Engine::Fused {
            spec: model.spec().clone(),
            mlp: Box::new(mlp),
        });
    }
    let optimizer = Optimizer::new(optimizer_cfg, model.params().params().len())?;
    Ok(Engine::Graph {
        model: Box::new(model),
        optimizer,
    })
}

/// The rayon pool Candle's CPU kernels run in (none for the single-threaded
/// fused MLP or a GPU). Candle splits its work into `get_num_threads()` jobs
/// (RAYON_NUM_THREADS, else the physical cores) whatever the pool, so by
/// default the pool has that many threads: fewer was measured slower.
fn thread_pool(
    cfg: &LearnerConfig,
    engine: &Engine,
    device: &Device,
) -> Result<Option<rayon::ThreadPool>> {
    if matches!(engine, Engine::Fused { .. }) || !matches!(device, Device::Cpu) {
        return Ok(None);
    }
    let threads = cfg
        .threads
        .unwrap_or_else(candle_core::utils::get_num_threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("lrtop-train-{i}"))
        .build()
        .map(Some)
        .map_err(|e| TrainError::Config(format!("cannot start {threads} CPU threads: {e}")))
}

/// How many shares of a batch to compute at once (`data_parallel`): one
/// per pool thread for a Llama on the CPU, whose steps are many small ops
/// that Candle splits over the threads one by one, with more
/// synchronisation than gain (2 threads ran no faster than 1); whole
/// shares on their own threads keep both busy. Not for LoRA dropout (its
/// seeded stream would be drawn in the threads' order) nor the image
/// models (batch norm needs the whole batch).
fn data_parallel_shares(
    cfg: &LearnerConfig,
    engine: &Engine,
    device: &Device,
    pool: Option<&rayon::ThreadPool>,
) -> usize {
    let threads = pool.map_or(1, rayon::ThreadPool::current_num_threads);
    let Engine::Graph { model, .. } = engine else {
        return 1;
    };
    if cfg.data_parallel
        && device.is_cpu()
        && can_split_batches(model.spec(), cfg.batch_size, threads)
    {
        threads
    } else {
        1
    }
}

/// Whether a model's batches can be computed as one share per thread with
/// the same update: a Llama without LoRA dropout, with at least as many
/// examples as threads (fewer would leave threads idle).
pub fn can_split_batches(model: &ModelSpec, batch_size: usize, threads: usize) -> bool {
    let llama_without_dropout = matches!(model, ModelSpec::Llama(l)
        if !l.lora.as_ref().is_some_and(|lora| lora.dropout > 0.0));
    llama_without_dropout && threads > 1 && batch_size >= threads
}

/// Threads for Candle's element-wise kernels when `kernel_threads` compute
/// the model's batches (gemm, the convolutions' images). A ResNet step is
/// dozens of element-wise ops (batch norm, ReLU, shortcuts) on mid-sized
/// tensors, and between them Candle's pool spins (a fifth of a 2-thread
/// step): on one thread they made the step 1.35x faster at 2 threads, while
/// LeNet-5 was 9% slower so (BENCHMARKS.md, 2026-12-07).
pub fn elementwise_threads(model: &ModelSpec, kernel_threads: usize) -> usize {
    if matches!(model, ModelSpec::ResNet { .. }) {
        1
    } else {
        kernel_threads
    }
}

/// `sum` plus `grads`, variable by variable.
fn add_grads(
    mut sum: candle_core::backprop::GradStore,
    grads: &candle_core::backprop::GradStore,
    params: &[(String, candle_core::Var)],
) -> Result<candle_core::backprop::GradStore> {
    for (_, var) in params {
        if let Some(g) = grads.get(var.as_tensor()) {
            let summed = match sum.remove(var.as_tensor()) {
                Some(s) => (s + g)?,
                None => g.clone(),
            };
            sum.insert(var.as_tensor(), summed);
        }
    }
    Ok(sum)
}

/// The loss of the batch at `indices` and the gradients of `factor` times
/// it: 1 for a whole update, 1/N for one of N micro-batches, times the
/// loss scale under f16. Only the loss's value is kept, not its graph.
/// With `shares` > 1 the batch's examples are split into that many shares
/// computed at once on the current pool's threads, each weighted by its
/// part of the scored targets: the same loss and gradient as the whole
/// batch, up to float rounding.
fn loss_and_grads(
    model: &Model,
    data: &Dataset,
    indices: &[usize],
    device: &Device,
    factor: f64,
    shares: usize,
) -> Result<(f64, candle_core::backprop::GradStore)> {
    if shares > 1 && indices.len() >= shares {
        return shared_loss_and_grads(model, data, indices, device, factor, shares);
    }
    scaled_loss_and_grads(model, &data.train_batch(indices, device)?, factor)
}

/// A batch's loss value and the gradients of `factor` times its loss.
fn scaled_loss_and_grads(
    model: &Model,
    batch: &Batch,
    factor: f64,
) -> Result<(f64, candle_core::backprop::GradStore)> {
    let loss = batch_loss(model, batch)?;
    let value = f64::from(loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?);
    // A whole batch needs no extra op in its graph.
    let grads = if factor == 1.0 {
        loss.backward()?
    } else {
        (loss * factor)?.backward()?
    };
    Ok((value, grads))
}

fn shared_loss_and_grads(
    model: &Model,
    data: &Dataset,
    indices: &[usize],
    device: &Device,
    factor: f64,
    shares: usize,
) -> Result<(f64, candle_core::backprop::GradStore)> {
    use rayon::prelude::*;
    let batches = indices
        .chunks(indices.len().div_ceil(shares))
        .map(|share| data.train_batch(share, device))
        .collect::<Result<Vec<_>>>()?;
    let counts = batches
        .iter()
        .map(scored_targets)
        .collect::<Result<Vec<_>>>()?;
    let total: f64 = counts.iter().sum();
    let parts: Vec<Result<(f64, candle_core::backprop::GradStore)>> = batches
        .par_iter()
        .zip(&counts)
        .map(|(batch, &count)| {
            let weight = if total > 0.0 { count / total } else { 0.0 };
            let (value, grads) = scaled_loss_and_grads(model, batch, factor * weight)?;
            Ok((value * weight, grads))
        })
        .collect();
    let mut loss = 0.0;
    let mut total_grads = None;
    // In share order, so that the sums do not depend on which thread ended first.
    for part in parts {
        let (value, grads) = part?;
        loss += value;
        total_grads = Some(match total_grads {
            None => grads,
            Some(sum) => add_grads(sum, &grads, model.params().params())?,
        });
    }
    let grads = total_grads.ok_or_else(|| TrainError::Config("an empty batch".into()))?;
    Ok((loss, grads))
}

/// The targets a batch's loss averages over: every token, or those its
/// weight scores (an instruction's response).
fn scored_targets(batch: &Batch) -> Result<f64> {
    Ok(match batch {
        Batch::Images { y, .. } => y.elem_count() as f64,
        Batch::Tokens {
            weight: Some(weight),
            ..
        } => f64::from(
            weight
                .sum_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_scalar::<f32>()?,
        ),
        Batch::Tokens { target, .. } => target.elem_count() as f64,
    })
}

/// Mean cross-entropy of a batch, keeping the graph for backward.
fn batch_loss(model: &Model, batch: &Batch) -> Result<Tensor> {
    match batch {
        Batch::Images { x, y } => {
            let logits = model.forward(x, true)?;
            Ok(candle_nn::loss::cross_entropy(&logits, y)?)
        }
        Batch::Tokens {
            input,
            target,
            weight,
        } => {
            let logits = model.forward(input, true)?;
            let (n, len, vocab) = logits.dims3()?;
            let logits = logits.reshape((n * len, vocab))?;
            let target = target.reshape(n * len)?;
            match weight {
                None => Ok(candle_nn::loss::cross_entropy(&logits, &target)?),
                // The mean over the scored targets only (transformers'
                // -100 labels).
                Some(weight) => {
                    let weight = weight.reshape(n * len)?.to_dtype(logits.dtype())?;
                    let log_probs = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
                    let picked = log_probs.gather(&target.unsqueeze(1)?, 1)?.squeeze(1)?;
                    let scored = weight.sum_all()?.to_dtype(candle_core::DType::F32)?;
                    let count = f64::from(scored.to_scalar::<f32>()?).max(1.0);
                    Ok(((picked * weight)?.sum_all()? * (-1.0 / count))?)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_resnet_keeps_candles_element_wise_kernels_on_one_thread() {
        let resnet = ModelSpec::ResNet {
            blocks_per_stage: 3,
        };
        assert_eq!(elementwise_threads(&resnet, 2), 1);
        assert_eq!(elementwise_threads(&ModelSpec::LeNet5, 2), 2);
        assert_eq!(elementwise_threads(&ModelSpec::LeNet5, 1), 1);
    }
}
