//! Evaluation metrics: for classifiers mean cross-entropy, accuracy, top-5
//! accuracy and prediction confidence (mean and standard deviation of the
//! largest softmax probability, as LRBench reports); for language models the
//! mean cross-entropy over every predicted token (Hugging Face's convention)
//! and next-token accuracy.

use candle_core::{D, DType, Tensor};

use super::error::Result;

/// Metrics on the test split.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EvalStats {
    /// Mean cross-entropy (nats) per example, or per predicted token.
    pub loss: f64,
    /// Accuracy (classifiers), next-token accuracy (language models).
    pub acc: Option<f64>,
    /// Top-5 accuracy, for classifiers with more than 5 classes.
    pub top5: Option<f64>,
    /// Mean of the largest softmax probability (classifiers).
    pub confidence_mean: Option<f64>,
    /// Population standard deviation of the same.
    pub confidence_std: Option<f64>,
    /// Examples, or predicted tokens, evaluated.
    pub count: usize,
    /// Instruction tasks: the share of validation examples whose whole
    /// response greedy decoding reproduces (every response token the most
    /// likely one given the true tokens before it — the same thing).
    pub exact_match: Option<f64>,
}

/// Running sums over classifier logits.
#[derive(Debug, Clone, Default)]
pub struct ClassTally {
    count: usize,
    loss: f64,
    correct: usize,
    top5: usize,
    confidence: f64,
    confidence_sq: f64,
}

impl ClassTally {
    /// Adds a batch of row-major logits `(n, classes)` with their labels.
    pub fn add(&mut self, logits: &[f32], classes: usize, labels: &[u32]) {
        for (row, &label) in logits.chunks_exact(classes).zip(labels) {
            let label = label as usize;
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
            let log_sum = sum.ln() + f64::from(max);
            self.loss += log_sum - f64::from(row[label]);
            let confidence = 1.0 / sum; // exp(max - log_sum)
            self.confidence += confidence;
            self.confidence_sq += confidence * confidence;
            // Rank of the label: how many classes score strictly higher
            // (ties resolved in the label's favour, as argmax/topk usually do for the first index).
            let higher = row
                .iter()
                .enumerate()
                .filter(|&(c, &v)| v > row[label] || (v == row[label] && c < label))
                .count();
            self.correct += usize::from(higher == 0);
            self.top5 += usize::from(higher < 5);
            self.count += 1;
        }
    }

    pub fn finish(&self, classes: usize) -> EvalStats {
        let n = self.count.max(1) as f64;
        let mean = self.confidence / n;
        EvalStats {
            loss: self.loss / n,
            acc: Some(self.correct as f64 / n),
            top5: (classes > 5).then(|| self.top5 as f64 / n),
            confidence_mean: Some(mean),
            confidence_std: Some((self.confidence_sq / n - mean * mean).max(0.0).sqrt()),
            count: self.count,
            exact_match: None,
        }
    }
}

/// Running sums over language-model batches, computed on the device.
#[derive(Debug, Clone, Default)]
pub struct TokenTally {
    count: usize,
    loss: f64,
    correct: usize,
    /// Weighted rows (examples) seen, and those with every scored target hit.
    rows: usize,
    exact: usize,
}

impl TokenTally {
    /// Adds logits `(n, L, vocab)` against targets `(n, L)`; with
    /// `weight` `(n, L)` (1 scored, 0 ignored), only the scored targets.
    pub fn add(
        &mut self,
        logits: &Tensor,
        targets: &Tensor,
        weight: Option<&Tensor>,
    ) -> Result<()> {
        let (n, len, vocab) = logits.dims3()?;
        let logits = logits.reshape((n * len, vocab))?.to_dtype(DType::F32)?;
        let targets = targets.reshape(n * len)?;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
        let hits = logits
            .argmax(D::Minus1)?
            .eq(&targets)?
            .to_dtype(DType::F32)?;
        let (picked, hits, count) = match weight {
            None => (picked, hits, n * len),
            Some(w) => {
                let w = w.reshape(n * len)?.to_dtype(DType::F32)?;
                let count = w.sum_all()?.to_scalar::<f32>()?.round() as usize;
                let hits = (hits * &w)?;
                let per_row_hits: Vec<f32> = hits.reshape((n, len))?.sum(1)?.to_vec1()?;
                let per_row_scored: Vec<f32> = w.reshape((n, len))?.sum(1)?.to_vec1()?;
                self.rows += n;
                self.exact += per_row_hits
                    .iter()
                    .zip(&per_row_scored)
                    .filter(|(h, s)| (*h - *s).abs() < 0.5)
                    .count();
                ((picked * &w)?, hits, count)
            }
        };
        self.loss -= f64::from(picked.sum_all()?.to_scalar::<f32>()?);
        self.correct += hits.sum_all()?.to_scalar::<f32>()?.round() as usize;
        self.count += count;
        Ok(())
    }

    /// Adds another tally's counts (of other batches): merging per-batch
    /// tallies in batch order gives the same sums as adding the batches
    /// one after the other.
    pub fn merge(&mut self, other: &TokenTally) {
        self.count += other.count;
        self.loss += other.loss;
        self.correct += other.correct;
        self.rows += other.rows;
        self.exact += other.exact;
    }

    pub fn finish(&self) -> EvalStats {
        let n = self.count.max(1) as f64;
        EvalStats {
            loss: self.loss / n,
            acc: Some(self.correct as f64 / n),
            count: self.count,
            exact_match: (self.rows > 0).then(|| self.exact as f64 / self.rows as f64),
            ..EvalStats::default()
        }
    }
}
