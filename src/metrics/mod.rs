//! Records, per-run columnar series, smoothing and decimation.

pub mod decimate;
