//! A model's variables: trainable parameters and non-trainable buffers (batch
//! norm running statistics), in creation order, with seeded initialisation.

use std::collections::HashMap;

use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::train::error::{Result, TrainError};

/// Named variables of one model.
#[derive(Debug, Clone)]
pub struct ParamStore {
    device: Device,
    dtype: DType,
    params: Vec<(String, Var)>,
    buffers: Vec<(String, Var)>,
}

impl ParamStore {
    /// An empty store of f32 variables.
    pub fn new(device: &Device) -> ParamStore {
        ParamStore::with_dtype(device, DType::F32)
    }

    /// An empty store whose variables have `dtype` (f64 serves gradient checks).
    pub fn with_dtype(device: &Device, dtype: DType) -> ParamStore {
        ParamStore {
            device: device.clone(),
            dtype,
            params: Vec::new(),
            buffers: Vec::new(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Trainable variables, in creation order.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Non-trainable state saved with the weights (running statistics).
    pub fn buffers(&self) -> &[(String, Var)] {
        &self.buffers
    }

    /// Number of trainable scalars.
    pub fn count(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Number of scalars, frozen ones and buffers included.
    pub fn total_count(&self) -> usize {
        self.count()
            + self
                .buffers
                .iter()
                .map(|(_, v)| v.elem_count())
                .sum::<usize>()
    }

    /// Deep copies of every parameter and buffer, by name.
    pub fn values(&self) -> Result<Vec<(String, Tensor)>> {
        self.params
            .iter()
            .chain(&self.buffers)
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
            .collect()
    }

    /// Overwrites every parameter and buffer from `values` (all must be present
    /// with the right shapes); `origin` names the source in errors.
    pub fn set_values(&self, values: &HashMap<String, Tensor>, origin: &str) -> Result<()> {
        for (name, var) in self.params.iter().chain(&self.buffers) {
            let value = values
                .get(name)
                .ok_or_else(|| TrainError::Config(format!("{origin}: missing tensor '{name}'")))?;
            if value.dims() != var.dims() {
                return Err(TrainError::Config(format!(
                    "{origin}: tensor '{name}' has shape {:?}, the model expects {:?}",
                    value.dims(),
                    var.dims()
                )));
            }
            var.set(&value.to_dtype(var.dtype())?.to_device(&self.device)?)?;
        }
        Ok(())
    }

    fn push(&mut self, name: &str, value: Tensor, trainable: bool) -> Result<Tensor> {
        let var = Var::from_tensor(&value)?;
        let tensor = var.as_tensor().clone();
        let list = if trainable {
            &mut self.params
        } else {
            &mut self.buffers
        };
        list.push((name.to_string(), var));
        Ok(tensor)
    }
}

/// Creates a model's variables: from a checkpoint when one is given (every
/// variable must then be in it), else from a seeded initialiser.
pub struct ParamBuilder<'a> {
    store: &'a mut ParamStore,
    rng: ChaCha8Rng,
    seed: u64,
    checkpoint: Option<Checkpoint>,
    prefix: String,
    /// Every variable made is a frozen buffer (the base of a LoRA model).
    frozen: bool,
}

/// Tensors read from a checkpoint and where they came from (for errors).
pub struct Checkpoint {
    pub origin: String,
    pub tensors: HashMap<String, Tensor>,
}

impl<'a> ParamBuilder<'a> {
    pub fn new(store: &'a mut ParamStore, seed: u64) -> ParamBuilder<'a> {
        ParamBuilder {
            store,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            checkpoint: None,
            prefix: String::new(),
            frozen: false,
        }
    }

    /// Variables from `checkpoint`; `seed` draws what it cannot hold (adapters).
    pub fn from_checkpoint(
        store: &'a mut ParamStore,
        checkpoint: Checkpoint,
        seed: u64,
    ) -> ParamBuilder<'a> {
        ParamBuilder {
            store,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            checkpoint: Some(checkpoint),
            prefix: String::new(),
            frozen: false,
        }
    }

    /// From now on, variables are made frozen: kept and saved with the
    /// weights, never given to the optimizer.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// A trainable adapter weight drawn from U(-bound, bound) (0: zeros),
    /// never read from the checkpoint and never frozen.
    pub fn adapter_uniform(
        &mut self,
        name: &str,
        shape: impl Into<Shape>,
        bound: f64,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let full = self.full_name(name);
        let values = uniform_values(&mut self.rng, shape.elem_count(), bound);
        let device = self.store.device.clone();
        let value = Tensor::from_vec(values, shape, &device)?.to_dtype(self.store.dtype)?;
        self.store.push(&full, value, true)
    }

    /// A seed for a random stream of the model's own (dropout) named
    /// `name` in the current scope: derived from the run's seed and the
    /// name (FNV-1a), so that it draws nothing from the initialiser's
    /// stream and the weights are the same with or without it.
    pub fn stream_seed(&self, name: &str) -> u64 {
        self.full_name(name)
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325 ^ self.seed, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
    }

    /// Runs `f` with `part.` prepended to the names it creates.
    pub fn scope<T>(&mut self, part: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let saved = self.prefix.clone();
        self.prefix = if saved.is_empty() {
            part.to_string()
        } else {
            format!("{saved}.{part}")
        };
        let out = f(self);
        self.prefix = saved;
        out
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn dtype(&self) -> DType {
        self.store.dtype
    }

    /// A parameter drawn from U(-bound, bound).
    pub fn uniform(&mut self, name: &str, shape: impl Into<Shape>, bound: f64) -> Result<Tensor> {
        let shape = shape.into();
        self.make(name, shape, true, |rng, n| uniform_values(rng, n, bound))
    }

    /// A parameter drawn from N(0, std²).
    pub fn normal(&mut self, name: &str, shape: impl Into<Shape>, std: f64) -> Result<Tensor> {
        let shape = shape.into();
        self.make(name, shape, true, |rng, n| {
            (0..n).map(|_| (gaussian(rng) * std) as f32).collect()
        })
    }

    /// A parameter filled with `value`.
    pub fn constant(&mut self, name: &str, shape: impl Into<Shape>, value: f64) -> Result<Tensor> {
        self.make(name, shape.into(), true, |_, n| vec![value as f32; n])
    }

    /// A non-trainable buffer filled with `value`.
    pub fn buffer(&mut self, name: &str, shape: impl Into<Shape>, value: f64) -> Result<Var> {
        self.make(name, shape.into(), false, |_, n| vec![value as f32; n])?;
        let (_, var) = self
            .store
            .buffers
            .last()
            .ok_or_else(|| TrainError::Model("buffer not stored".into()))?;
        Ok(var.clone())
    }

    fn make(
        &mut self,
        name: &str,
        shape: Shape,
        trainable: bool,
        init: impl FnOnce(&mut ChaCha8Rng, usize) -> Vec<f32>,
    ) -> Result<Tensor> {
        let full = self.full_name(name);
        let device = self.store.device.clone();
        let value = match &self.checkpoint {
            Some(checkpoint) => {
                let t = checkpoint.tensors.get(&full).ok_or_else(|| {
                    TrainError::Config(format!("{}: missing tensor '{full}'", checkpoint.origin))
                })?;
                if t.dims() != shape.dims() {
                    return Err(TrainError::Config(format!(
                        "{}: tensor '{full}' has shape {:?}, expected {:?}",
                        checkpoint.origin,
                        t.dims(),
                        shape.dims()
                    )));
                }
                t.to_dtype(self.store.dtype)?.to_device(&device)?
            }
            None => {
                let values = init(&mut self.rng, shape.elem_count());
                Tensor::from_vec(values, shape, &device)?.to_dtype(self.store.dtype)?
            }
        };
        let tensor = self.store.push(&full, value, trainable && !self.frozen)?;
        // A frozen variable enters the graph as a plain tensor (same
        // storage, so restoring a snapshot still reaches it): nothing that
        // depends only on it is tracked or differentiated.
        Ok(if self.frozen { tensor.detach() } else { tensor })
    }
}

/// `n` draws from U(-bound, bound).
fn uniform_values(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<f32> {
    (0..n)
        .map(|_| ((unit(rng) * 2.0 - 1.0) * bound) as f32)
        .collect()
}

/// A uniform draw in [0, 1) from 53 random bits.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
