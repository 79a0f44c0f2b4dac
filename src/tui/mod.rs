//! Terminal user interface: the dashboard (app state, event loop, one module
//! per panel, layout, theme), charts, and the policy plot viewer.

pub mod app;
pub mod chart;
pub mod event_loop;
pub mod keys;
pub mod layout;
pub mod panels;
pub mod policy_plot;
pub mod range_plot;
pub mod terminal;
pub mod theme;
pub mod train_view;
pub mod tune_view;
