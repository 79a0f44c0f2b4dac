//! Records, per-run columnar series, smoothing and decimation.

pub mod decimate;
pub mod record;
pub mod store;

pub use record::{Record, RunId};
pub use store::{Column, RunData, XAxis};
pub mod smooth;
