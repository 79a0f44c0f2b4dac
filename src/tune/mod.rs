//! Choosing an LR policy at low cost, as LRBench does: the range test, search
//! spaces, trials run by `lrtop train --headless` (child processes here, or
//! a Slurm job array), the evaluator and ranking, and successive halving.

pub mod board;
pub mod halving;
pub mod local;
pub mod manifest;
pub mod range_test;
pub mod report;
pub mod results;
pub mod slurm;
pub mod slurm_halving;
pub mod slurm_state;
pub mod space;
pub mod trial;
pub mod watch;
