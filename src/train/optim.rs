//! Optimizers with PyTorch's update rules: SGD (plain, momentum, Nesterov)
//! with coupled weight decay, and AdamW with decoupled decay; the learning
//! rate is given at every step. Optional global gradient-norm clipping as
//! `torch.nn.utils.clip_grad_norm_`. The same rules exist twice: on tensors
//! (any device) and on f32 slices (the fused CPU path); tests hold both to
//! hand-computed values.

use std::fmt;
use std::str::FromStr;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::error::{Result, TrainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Momentum,
    Nesterov,
    AdamW,
}

impl FromStr for OptimizerKind {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<OptimizerKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(OptimizerKind::Sgd),
            "momentum" | "sgdm" => Ok(OptimizerKind::Momentum),
            "nesterov" => Ok(OptimizerKind::Nesterov),
            "adamw" | "adam_w" => Ok(OptimizerKind::AdamW),
            other => Err(TrainError::Config(format!(
                "unknown optimizer '{other}'; expected sgd, momentum, nesterov or adamw"
            ))),
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::AdamW => "adamw",
        })
    }
}

/// Hyperparameters other than the learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    /// SGD family: `wd * param` added to the gradient. AdamW: decoupled,
    /// the parameter shrinks by `lr * wd * param`.
    pub weight_decay: f64,
    /// Momentum factor of `momentum` and `nesterov` (dampening 0).
    pub momentum: f64,
    /// AdamW's (beta1, beta2).
    pub betas: (f64, f64),
    pub eps: f64,
    /// Clip the global L2 norm of all gradients to this value.
    pub clip_grad_norm: Option<f64>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Momentum,
            weight_decay: 0.0,
            momentum: 0.9,
            betas: (0.9, 0.999),
            eps: 1e-8,
            clip_grad_norm: None,
        }
    }
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!(
                "weight decay must be >= 0, found {}",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "momentum must be in [0, 1), found {}",
                self.momentum
            ));
        }
        if !(0.0..1.0).contains(&self.betas.0) || !(0.0..1.0).contains(&self.betas.1) {
            return bad(format!(
                "AdamW betas must be in [0, 1), found {:?}",
                self.betas
            ));
        }
        if let Some(c) = self.clip_grad_norm
            && !(c > 0.0 && c.is_finite())
        {
            return bad(format!("clip-grad-norm must be positive, found {c}"));
        }
        Ok(())
    }

    /// The momentum factor in effect (0 for plain SGD).
    fn sgd_momentum(&self) -> f64 {
        match self.kind {
            OptimizerKind::Sgd | OptimizerKind::AdamW => 0.0,
            OptimizerKind::Momentum | OptimizerKind::Nesterov => self.momentum,
        }
    }
}

/// `clip_grad_norm_`'s factor: `max / (norm + 1e-6)` when below 1.
pub fn clip_scale(norm: f64, max: Option<f64>) -> Option<f64> {
    let max = max?;
    let scale = max / (norm + 1e-6);
    (scale < 1.0).then_some(scale)
}

/// Per-parameter optimizer state on slices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SliceState {
    /// Momentum buffer, or AdamW's first moment.
    pub m: Vec<f32>,
    /// AdamW's second moment.
    pub v: Vec<f32>,
}

/// One update of `p` from gradient `g` (already clipped); `step` counts
/// from 1 and matters to AdamW's bias correction.
pub fn update_slice(
    cfg: &OptimizerConfig,
    lr: f64,
    step: u64,
    p: &mut [f32],
    g: &[f32],
    s: &mut SliceState,
) {
    let wd = cfg.weight_decay as f32;
    let lr32 = lr as f32;
    match cfg.kind {
        OptimizerKind::AdamW => {
            let (b1, b2) = (cfg.betas.0 as f32, cfg.betas.1 as f32);
            if s.m.is_empty() {
                s.m = vec![0.0; p.len()];
                s.v = vec![0.0; p.len()];
            }
            let bc1 = 1.0 - cfg.betas.0.powi(step as i32);
            let bc2 = 1.0 - cfg.betas.1.powi(step as i32);
            let step_size = (lr / bc1) as f32;
            let bc2_sqrt = bc2.sqrt() as f32;
            let eps = cfg.eps as f32;
            let decay = 1.0 - lr32 * wd;
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(s.m.iter_mut()).zip(s.v.iter_mut()) {
                *p *= decay;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step_size * *m / (v.sqrt() / bc2_sqrt + eps);
            }
        }
        _ => {
            let mu = cfg.sgd_momentum() as f32;
            let nesterov = cfg.kind == OptimizerKind::Nesterov;
            if mu == 0.0 {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p -= lr32 * (g + wd * *p);
                }
                return;
            }
            let first = s.m.is_empty();
            if first {
                s.m = vec![0.0; p.len()];
            }
            for (p, (&g, buf)) in p.iter_mut().zip(g.iter().zip(s.m.iter_mut())) {
                let d = g + wd * *p;
                *buf = if first { d } else { mu * *buf + d };
                let dir = if nesterov { d + mu * *buf } else { *buf };
                *p -= lr32 * dir;
            }
        }
    }
}

/// Optimizer state of one parameter on its device.
#[derive(Debug, Clone)]
enum TensorState {
    Empty,
    Momentum(Tensor),
    Adam { m: Tensor, v: Tensor },
}

/// The optimizer over a model's variables.
#[derive(Debug, Clone)]
pub struct Optimizer {
    cfg: OptimizerConfig,
    state: Vec<TensorState>,
    steps: u64,
}

/// Result of one update.
#[derive(Debug, Clone, Copy)]
pub struct UpdateStats {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
}

impl Optimizer {
    pub fn new(cfg: OptimizerConfig, params: usize) -> Result<Optimizer> {
        cfg.validate()?;
        Ok(Optimizer {
            cfg,
            state: vec![TensorState::Empty; params],
            steps: 0,
        })
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.cfg
    }

    /// Updates done so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The global gradient norm over `params` (missing gradients count as zero).
    pub fn grad_norm(params: &[(String, Var)], grads: &GradStore) -> Result<f64> {
        let mut total: Option<Tensor> = None;
        for (_, var) in params {
            if let Some(g) = grads.get(var.as_tensor()) {
                let sq = g.sqr()?.sum_all()?;
                total = Some(match total {
                    Some(t) => (t + sq)?,
                    None => sq,
                });
            }
        }
        match total {
            Some(t) => {
                Ok(f64::from(t.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?).sqrt())
            }
            None => Ok(0.0),
        }
    }

    /// Clips, then updates every variable with a gradient. Variables without
    /// one are left alone, as PyTorch skips parameters whose `grad` is None.
    pub fn step(
        &mut self,
        params: &[(String, Var)],
        grads: &GradStore,
        lr: f64,
    ) -> Result<UpdateStats> {
        let grad_norm = Self::grad_norm(params, grads)?;
        self.step_with_norm(params, grads, lr, grad_norm)
    }

    /// [`Optimizer::step`] with the gradients' global norm already known.
    pub fn step_with_norm(
        &mut self,
        params: &[(String, Var)],
        grads: &GradStore,
        lr: f64,
        grad_norm: f64,
    ) -> Result<UpdateStats> {
        if self.state.len() != params.len() {
            return Err(TrainError::Config(
                "optimizer built for a different model".into(),
            ));
        }
        let scale = clip_scale(grad_norm, self.cfg.clip_grad_norm);
        self.steps += 1;
        for ((_, var), state) in params.iter().zip(self.state.iter_mut()) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = match scale {
                Some(s) => (g * s)?,
                None => g.clone(),
            };
            update_tensor(&self.cfg, lr, self.steps, var, &g, state)?;
        }
        Ok(UpdateStats { grad_norm })
    }

    /// Deep copies of the state, for snapshots.
    pub fn snapshot(&self) -> Result<Optimizer> {
        let copy = |s: &TensorState| -> Result<TensorState> {
            Ok(match s {
                TensorState::Empty => TensorState::Empty,
                TensorState::Momentum(b) => TensorState::Momentum(b.copy()?),
                TensorState::Adam { m, v } => TensorState::Adam {
                    m: m.copy()?,
                    v: v.copy()?,
                },
            })
        };
        Ok(Optimizer {
            cfg: self.cfg,
            state: self.state.iter().map(copy).collect::<Result<_>>()?,
            steps: self.steps,
        })
    }
}

fn update_tensor(
    cfg: &OptimizerConfig,
    lr: f64,
    step: u64,
    var: &Var,
    g: &Tensor,
    state: &mut TensorState,
) -> Result<()> {
    let p = var.as_detached_tensor();
    let wd = cfg.weight_decay;
    match cfg.kind {
        OptimizerKind::AdamW => {
            let (b1, b2) = cfg.betas;
            let (m, v) = match state {
                TensorState::Adam { m, v } => (
                    (m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?,
                    (v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?,
                ),
                _ => (g.affine(1.0 - b1, 0.0)?, g.sqr()?.affine(1.0 - b2, 0.0)?),
            };
            let bc1 = 1.0 - b1.powi(step as i32);
            let bc2 = 1.0 - b2.powi(step as i32);
            let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), cfg.eps)?;
            let decayed = if wd != 0.0 {
                p.affine(1.0 - lr * wd, 0.0)?
            } else {
                p
            };
            let new = (decayed - (m.div(&denom)? * (lr / bc1))?)?;
            var.set(&new)?;
            *state = TensorState::Adam { m, v };
        }
        _ => {
            let mu = cfg.sgd_momentum();
            let d = if wd != 0.0 {
                (g + p.affine(wd, 0.0)?)?
            } else {
                g.clone()
            };
            let dir = if mu == 0.0 {
                d
            } else {
                let buf = match state {
                    TensorState::Momentum(b) => (b.affine(mu, 0.0)? + &d)?,
                    _ => d.copy()?,
                };
                let dir = if cfg.kind == OptimizerKind::Nesterov {
                    (d + buf.affine(mu, 0.0)?)?
                } else {
                    buf.clone()
                };
                *state = TensorState::Momentum(buf);
                dir
            };
            var.set(&(p - dir.affine(lr, 0.0)?)?)?;
        }
    }
    Ok(())
}
