//! The integration tests: one binary (each test binary links Candle, and
//! 31 of them made a fresh `cargo test` take 20 minutes), one module per area.

mod architecture;
mod cli_attach;
mod cli_policy;
mod cli_train;
mod fault_follow;
mod fault_train;
mod follow_trackers;
mod ingest_bad_input;
mod ingest_discover;
mod ingest_follow;
mod ingest_formats;
mod ingest_parallel;
mod ingest_perf;
mod ingest_props;
mod ingest_trackers;
mod monitor_api;
mod monitor_declared;
mod monitor_fit;
mod monitor_fit_exact;
mod monitor_perf;
mod monitor_reference;
mod monitor_rules;
mod monitor_support;
mod range_test_cli;
mod session_events;
mod terminal_tmux;
mod train_bench;
mod train_data;
mod train_learner;
mod train_llama;
mod train_models;
mod train_optim;
mod tui_dashboard;
mod tune_cli;
mod tune_tui;
