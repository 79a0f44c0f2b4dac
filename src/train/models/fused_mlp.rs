//! The MLP's training step done by hand on the CPU: forward, softmax
//! cross-entropy, backward and the optimizer update on plain f32 buffers,
//! with a single-threaded register-tiled matmul (`matmul.rs`). It is the same
//! math as the autograd path (tests compare the gradients) without building a
//! graph, allocating per op, running the update as many small tensor ops or
//! splitting small products across threads, which is what makes small models
//! slow under autograd.

use candle_core::{Device, Tensor};

use super::matmul::{MatRef, matmul};
use super::mlp::layer_names;
use super::params::ParamStore;
use super::relu::keep_if;
use crate::train::error::{Result, TrainError};
use crate::train::optim::{OptimizerConfig, SliceState, clip_scale, update_slice};

/// Weights, optimizer state and scratch buffers of a fused MLP.
#[derive(Debug, Clone)]
pub struct FusedMlp {
    /// Layer widths from input to output.
    widths: Vec<usize>,
    /// Per layer: weight `(out, in)` row-major, as PyTorch and the graph MLP.
    weights: Vec<Vec<f32>>,
    biases: Vec<Vec<f32>>,
    optimizer: OptimizerConfig,
    weight_state: Vec<SliceState>,
    bias_state: Vec<SliceState>,
    steps: u64,
}

/// Gradients of one batch, laid out as the parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpGrads {
    pub loss: f64,
    pub weights: Vec<Vec<f32>>,
    pub biases: Vec<Vec<f32>>,
}

impl FusedMlp {
    /// Copies the weights of a graph MLP with these widths.
    pub fn from_store(
        store: &ParamStore,
        widths: &[usize],
        optimizer: OptimizerConfig,
    ) -> Result<FusedMlp> {
        optimizer.validate()?;
        let layers = widths.len() - 1;
        let mut mlp = FusedMlp {
            widths: widths.to_vec(),
            weights: (0..layers)
                .map(|l| vec![0.0; widths[l] * widths[l + 1]])
                .collect(),
            biases: (0..layers).map(|l| vec![0.0; widths[l + 1]]).collect(),
            optimizer,
            weight_state: vec![SliceState::default(); layers],
            bias_state: vec![SliceState::default(); layers],
            steps: 0,
        };
        let values = store.values()?;
        mlp.load(&values)?;
        Ok(mlp)
    }

    /// Overwrites the weights from named tensors (`layers.{i}.weight|bias`).
    pub fn load(&mut self, values: &[(String, Tensor)]) -> Result<()> {
        for l in 0..self.weights.len() {
            let (w_name, b_name) = layer_names(l);
            for (name, dst) in [
                (&w_name, &mut self.weights[l]),
                (&b_name, &mut self.biases[l]),
            ] {
                let t = values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t)
                    .ok_or_else(|| TrainError::Config(format!("missing tensor '{name}'")))?;
                let flat: Vec<f32> = t
                    .flatten_all()?
                    .to_dtype(candle_core::DType::F32)?
                    .to_vec1()?;
                if flat.len() != dst.len() {
                    return Err(TrainError::Config(format!(
                        "tensor '{name}' has {} values, the model expects {}",
                        flat.len(),
                        dst.len()
                    )));
                }
                dst.copy_from_slice(&flat);
            }
        }
        Ok(())
    }

    /// The weights as named CPU tensors.
    pub fn values(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for l in 0..self.weights.len() {
            let (w_name, b_name) = layer_names(l);
            let (inputs, outputs) = (self.widths[l], self.widths[l + 1]);
            out.push((
                w_name,
                Tensor::from_slice(&self.weights[l], (outputs, inputs), &Device::Cpu)?,
            ));
            out.push((
                b_name,
                Tensor::from_slice(&self.biases[l], outputs, &Device::Cpu)?,
            ));
        }
        Ok(out)
    }

    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Logits `(n, classes)` row-major for inputs `(n, in)`.
    pub fn logits(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        self.check_input(x, n)?;
        let mut panel = Vec::new();
        let acts = self.forward(x, n, &mut panel);
        Ok(acts.into_iter().last().unwrap_or_default())
    }

    fn check_input(&self, x: &[f32], n: usize) -> Result<()> {
        if x.len() != n * self.widths[0] {
            return Err(TrainError::Config(format!(
                "MLP input has {} values, expected {n} x {}",
                x.len(),
                self.widths[0]
            )));
        }
        Ok(())
    }

    /// Mean cross-entropy and its gradients for inputs `(n, in)` and labels.
    pub fn gradients(&self, x: &[f32], labels: &[u32]) -> Result<MlpGrads> {
        let n = labels.len();
        self.check_input(x, n)?;
        let mut panel = Vec::new();
        let acts = self.forward(x, n, &mut panel);
        self.backward(x, &acts, labels, &mut panel)
    }

    /// One training step; returns (mean loss, gradient norm before clipping).
    pub fn train_step(&mut self, x: &[f32], labels: &[u32], lr: f64) -> Result<(f64, f64)> {
        let grads = self.gradients(x, labels)?;
        let sq: f64 = grads
            .weights
            .iter()
            .chain(&grads.biases)
            .flat_map(|g| g.iter())
            .map(|&v| f64::from(v) * f64::from(v))
            .sum();
        let norm = sq.sqrt();
        let scale = clip_scale(norm, self.optimizer.clip_grad_norm).map(|s| s as f32);
        self.steps += 1;
        let params = self
            .weights
            .iter_mut()
            .zip(self.weight_state.iter_mut())
            .zip(&grads.weights);
        let biases = self
            .biases
            .iter_mut()
            .zip(self.bias_state.iter_mut())
            .zip(&grads.biases);
        for ((p, state), g) in params.chain(biases) {
            match scale {
                Some(s) => {
                    let clipped: Vec<f32> = g.iter().map(|v| v * s).collect();
                    update_slice(&self.optimizer, lr, self.steps, p, &clipped, state);
                }
                None => update_slice(&self.optimizer, lr, self.steps, p, g, state),
            }
        }
        Ok((grads.loss, norm))
    }

    /// Activations after each layer (ReLU applied to all but the last).
    fn forward(&self, x: &[f32], n: usize, panel: &mut Vec<f32>) -> Vec<Vec<f32>> {
        let layers = self.weights.len();
        let mut acts: Vec<Vec<f32>> = Vec::with_capacity(layers);
        for l in 0..layers {
            let (inputs, outputs) = (self.widths[l], self.widths[l + 1]);
            let input = if l == 0 { x } else { &acts[l - 1] };
            let mut z = vec![0f32; n * outputs];
            let h = MatRef::rows(input, inputs);
            let w_t = MatRef::transposed(&self.weights[l], inputs);
            matmul(n, outputs, inputs, h, w_t, &mut z, panel);
            let bias = &self.biases[l];
            let relu = l + 1 < layers;
            for row in z.chunks_exact_mut(outputs) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
                if relu {
                    // Branch-free: activations' signs are random, and a
                    // mispredicted branch per value cost more than the add.
                    for v in row.iter_mut() {
                        *v = keep_if(*v, *v >= 0.0 || v.is_nan());
                    }
                }
            }
            acts.push(z);
        }
        acts
    }

    fn backward(
        &self,
        x: &[f32],
        acts: &[Vec<f32>],
        labels: &[u32],
        panel: &mut Vec<f32>,
    ) -> Result<MlpGrads> {
        let n = labels.len();
        let layers = self.weights.len();
        let classes = self.widths[layers];
        let logits = &acts[layers - 1];
        let mut dz = vec![0f32; n * classes];
        let mut loss = 0f64;
        for (i, (row, grad)) in logits
            .chunks_exact(classes)
            .zip(dz.chunks_exact_mut(classes))
            .enumerate()
        {
            let label = labels[i] as usize;
            if label >= classes {
                return Err(TrainError::Config(format!(
                    "label {label} out of 0..{classes}"
                )));
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (g, &v) in grad.iter_mut().zip(row) {
                *g = (v - max).exp();
                sum += *g;
            }
            loss += f64::from(sum.ln() + max - row[label]);
            let inv = 1.0 / (sum * n as f32);
            for g in grad.iter_mut() {
                *g *= inv;
            }
            grad[label] -= 1.0 / n as f32;
        }
        let mut grads_w = vec![Vec::new(); layers];
        let mut grads_b = vec![Vec::new(); layers];
        for l in (0..layers).rev() {
            let outputs = self.widths[l + 1];
            let inputs = self.widths[l];
            let mut db = vec![0f32; outputs];
            for row in dz.chunks_exact(outputs) {
                for (d, v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
            let input = if l == 0 { x } else { &acts[l - 1] };
            let mut dw = vec![0f32; outputs * inputs];
            matmul(
                outputs,
                inputs,
                n,
                MatRef::transposed(&dz, outputs),
                MatRef::rows(input, inputs),
                &mut dw,
                panel,
            );
            grads_w[l] = dw;
            grads_b[l] = db;
            if l > 0 {
                let mut dh = vec![0f32; n * inputs];
                matmul(
                    n,
                    inputs,
                    outputs,
                    MatRef::rows(&dz, outputs),
                    MatRef::rows(&self.weights[l], inputs),
                    &mut dh,
                    panel,
                );
                // ReLU's derivative: the activation was positive.
                for (d, &a) in dh.iter_mut().zip(&acts[l - 1]) {
                    *d = keep_if(*d, a > 0.0);
                }
                dz = dh;
            }
        }
        Ok(MlpGrads {
            loss: loss / n as f64,
            weights: grads_w,
            biases: grads_b,
        })
    }
}
