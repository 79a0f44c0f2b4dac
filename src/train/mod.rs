//! In-process training with Candle: data, models, optimizers and the trainer loop.
//!
//! The trainer drives a [`Learner`]: one `train_step(lr)` per update with the
//! LR from the policy, `evaluate()` now and then, `snapshot`/`restore` for the
//! LR range test and restarts.

pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod generate;
pub mod learner;
pub mod memory;
pub mod models;
pub mod optim;
pub mod precision;
pub mod process;
pub mod trainer;

pub use data::{DIGITS_ATTRIBUTION, DataKind, Dataset, TaskSpec};
pub use device::{DeviceSpec, OpenedDevice};
pub use error::{Result, TrainError};
pub use eval::EvalStats;
pub use generate::SampleOptions;
pub use learner::{Learner, LearnerConfig, LearnerInfo, Snapshot, StepStats};
pub use models::{LlamaSpec, Model, ModelSpec};
pub use optim::{OptimizerConfig, OptimizerKind};
pub use precision::Precision;
