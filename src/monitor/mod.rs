//! The schedule monitor: alert rules and schedule fitting, one engine for attach and train.
