//! Training data: the `--task` spec, loaders for each format, the seeded
//! epoch sampler and batches as tensors.

mod chat_template;
mod cifar;
mod digits;
mod files;
mod idx;
mod images;
pub mod instruct;
mod sampler;
mod task;
mod tokens;

use std::ops::Range;
use std::path::Path;

use candle_core::{Device, Tensor};

pub use digits::ATTRIBUTION as DIGITS_ATTRIBUTION;
pub use images::{ImageSet, PixelNorm};
pub use sampler::{EpochSampler, shuffle};
pub use task::TaskSpec;
pub use tokens::{TokenData, TokenDtype, TokenStream};

use crate::train::error::{Result, TrainError};

/// What the data asks of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKind {
    /// Images `[channels, height, width]` with one of `classes` labels.
    Classification {
        input_shape: [usize; 3],
        classes: usize,
    },
    /// Next-token prediction over `vocab` ids in windows of `seq_len`.
    LanguageModel { vocab: usize, seq_len: usize },
}

impl DataKind {
    /// The window of a language model.
    pub fn seq_len(&self) -> Option<usize> {
        match self {
            DataKind::LanguageModel { seq_len, .. } => Some(*seq_len),
            DataKind::Classification { .. } => None,
        }
    }
}

/// One batch on the training device.
#[derive(Debug, Clone)]
pub enum Batch {
    /// Inputs `(n, C, H, W)` f32, labels `(n,)` u32.
    Images { x: Tensor, y: Tensor },
    /// Token ids `(n, L)` u32 and the ids that follow each, `(n, L)` u32;
    /// `weight` `(n, L)` f32 scores only some targets (1) and ignores the
    /// rest (0: an instruction's prompt, padding), `None` scores all.
    Tokens {
        input: Tensor,
        target: Tensor,
        weight: Option<Tensor>,
    },
}

#[derive(Debug)]
enum Splits {
    Images {
        train: ImageSet,
        test: ImageSet,
    },
    Tokens {
        data: TokenData,
        seq_len: usize,
    },
    /// Instruction examples, one per sequence.
    Instruct {
        data: instruct::InstructData,
        seq_len: usize,
    },
}

/// A loaded data set with a fixed train/test split.
///
/// Classification: a sample is an image. Language modelling: a training
/// sample is the window of `seq_len + 1` tokens at offset `k * seq_len`
/// (inputs and next-token targets, as nanoGPT); the test split is the
/// validation stream cut into consecutive blocks of `seq_len` tokens from
/// offset 0 (the last partial block dropped), tokens `0..L-1` predicting `1..L`.
#[derive(Debug)]
pub struct Dataset {
    task: TaskSpec,
    kind: DataKind,
    splits: Splits,
}

impl Dataset {
    /// Loads `task`; `seq_len` matters only for language modelling.
    pub fn load(task: &TaskSpec, seq_len: usize) -> Result<Dataset> {
        Dataset::load_with(task, seq_len, None)
    }

    /// As [`Dataset::load`]; a text task is tokenized with the
    /// `tokenizer.json` at `tokenizer` when there is one.
    pub fn load_with(task: &TaskSpec, seq_len: usize, tokenizer: Option<&Path>) -> Result<Dataset> {
        let splits = match task {
            TaskSpec::Digits => {
                let (train, test) = digits::load().map_err(TrainError::Config)?;
                Splits::Images { train, test }
            }
            TaskSpec::Mnist(dir) => {
                let (train, test) = idx::load(dir)?;
                Splits::Images { train, test }
            }
            TaskSpec::Cifar10(dir) => {
                let (train, test) = cifar::load(dir)?;
                Splits::Images { train, test }
            }
            TaskSpec::Tokens { dir, vocab, dtype } => {
                let data = tokens::load_bins(dir, *vocab, *dtype)?;
                check_token_lengths(&data, seq_len, &dir.join("train.bin"), &dir.join("val.bin"))?;
                Splits::Tokens { data, seq_len }
            }
            TaskSpec::Text(file) => {
                let data = tokens::load_text(file, tokenizer)?;
                check_token_lengths(&data, seq_len, file, file)?;
                Splits::Tokens { data, seq_len }
            }
            TaskSpec::Instruct { file, val } => {
                if seq_len < 2 {
                    return Err(TrainError::Config(format!(
                        "seq-len must be at least 2, found {seq_len}"
                    )));
                }
                let data = instruct::load_with_val(file, val.as_deref(), tokenizer, seq_len)?;
                Splits::Instruct { data, seq_len }
            }
        };
        let kind = match &splits {
            Splits::Images { train, test } => {
                if train.is_empty() || test.is_empty() {
                    return Err(TrainError::Config(format!(
                        "task {task}: empty train or test split"
                    )));
                }
                let max_label = train
                    .labels()
                    .iter()
                    .chain(test.labels())
                    .copied()
                    .max()
                    .unwrap_or(0);
                DataKind::Classification {
                    input_shape: train.shape(),
                    classes: (max_label as usize + 1).max(2),
                }
            }
            Splits::Tokens { data, seq_len } => DataKind::LanguageModel {
                vocab: data.vocab,
                seq_len: *seq_len,
            },
            Splits::Instruct { data, seq_len } => DataKind::LanguageModel {
                vocab: data.vocab,
                seq_len: *seq_len,
            },
        };
        Ok(Dataset {
            task: task.clone(),
            kind,
            splits,
        })
    }

    pub fn task(&self) -> &TaskSpec {
        &self.task
    }

    pub fn kind(&self) -> &DataKind {
        &self.kind
    }

    /// Samples in one epoch (images, or token windows).
    pub fn train_size(&self) -> usize {
        match &self.splits {
            Splits::Images { train, .. } => train.len(),
            Splits::Tokens { data, seq_len } => (data.train.len() - 1) / seq_len,
            Splits::Instruct { data, .. } => data.train.len(),
        }
    }

    /// Test samples (images, or validation blocks).
    pub fn test_size(&self) -> usize {
        match &self.splits {
            Splits::Images { test, .. } => test.len(),
            Splits::Tokens { data, seq_len } => data.val.len() / seq_len,
            Splits::Instruct { data, .. } => data.val.len(),
        }
    }

    /// The train and test images, for classification tasks.
    pub fn images(&self) -> Option<(&ImageSet, &ImageSet)> {
        match &self.splits {
            Splits::Images { train, test } => Some((train, test)),
            Splits::Tokens { .. } | Splits::Instruct { .. } => None,
        }
    }

    /// The token streams, for language-modelling tasks.
    pub fn tokens(&self) -> Option<&TokenData> {
        match &self.splits {
            Splits::Tokens { data, .. } => Some(data),
            Splits::Images { .. } | Splits::Instruct { .. } => None,
        }
    }

    /// The instruction examples, for instruct tasks.
    pub fn instructions(&self) -> Option<&instruct::InstructData> {
        match &self.splits {
            Splits::Instruct { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The training samples `indices` (each below `train_size()`).
    pub fn train_batch(&self, indices: &[usize], device: &Device) -> Result<Batch> {
        match &self.splits {
            Splits::Images { train, .. } => {
                let (x, y) = train.batch(indices, device)?;
                Ok(Batch::Images { x, y })
            }
            Splits::Tokens { data, seq_len } => {
                let starts = indices.iter().map(|&k| k * seq_len);
                token_batch(&data.train, starts, *seq_len, device)
            }
            Splits::Instruct { data, seq_len } => {
                instruct_batch(indices.iter().map(|&k| &data.train[k]), *seq_len, device)
            }
        }
    }

    /// The test samples in `range` (of `0..test_size()`).
    pub fn test_batch(&self, range: Range<usize>, device: &Device) -> Result<Batch> {
        match &self.splits {
            Splits::Images { test, .. } => {
                let indices: Vec<usize> = range.collect();
                let (x, y) = test.batch(&indices, device)?;
                Ok(Batch::Images { x, y })
            }
            Splits::Tokens { data, seq_len } => {
                let starts = range.map(|k| k * seq_len);
                token_batch(&data.val, starts, seq_len - 1, device)
            }
            Splits::Instruct { data, seq_len } => {
                instruct_batch(data.val[range].iter(), *seq_len, device)
            }
        }
    }
}

/// Inputs `tokens[s..s+len]` and targets `tokens[s+1..s+len+1]` for each start.
fn token_batch(
    stream: &TokenStream,
    starts: impl ExactSizeIterator<Item = usize>,
    len: usize,
    device: &Device,
) -> Result<Batch> {
    let n = starts.len();
    let mut input = Vec::with_capacity(n * len);
    let mut target = Vec::with_capacity(n * len);
    let mut window = Vec::with_capacity(len + 1);
    for start in starts {
        window.clear();
        stream.read_into(start, len + 1, &mut window)?;
        input.extend_from_slice(&window[..len]);
        target.extend_from_slice(&window[1..]);
    }
    Ok(Batch::Tokens {
        input: Tensor::from_vec(input, (n, len), device)?,
        target: Tensor::from_vec(target, (n, len), device)?,
        weight: None,
    })
}

fn instruct_batch<'a>(
    examples: impl ExactSizeIterator<Item = &'a instruct::Example>,
    seq_len: usize,
    device: &Device,
) -> Result<Batch> {
    let n = examples.len();
    let (input, target, weight) = instruct::batch_vectors(examples, seq_len);
    Ok(Batch::Tokens {
        input: Tensor::from_vec(input, (n, seq_len), device)?,
        target: Tensor::from_vec(target, (n, seq_len), device)?,
        weight: Some(Tensor::from_vec(weight, (n, seq_len), device)?),
    })
}

fn check_token_lengths(
    data: &TokenData,
    seq_len: usize,
    train_name: &Path,
    val_name: &Path,
) -> Result<()> {
    if seq_len < 2 {
        return Err(TrainError::Config(format!(
            "seq-len must be at least 2, found {seq_len}"
        )));
    }
    if data.train.len() < seq_len + 1 {
        return Err(TrainError::file(
            train_name,
            format!(
                "{} training tokens, need at least seq-len + 1 = {}",
                data.train.len(),
                seq_len + 1
            ),
        ));
    }
    if data.val.len() < seq_len {
        return Err(TrainError::file(
            val_name,
            format!(
                "{} validation tokens, need at least one block of seq-len = {seq_len}",
                data.val.len()
            ),
        ));
    }
    Ok(())
}
