//! Terminal user interface: charts, the dashboard and its panels, themes.

pub mod chart;
pub mod policy_plot;
pub mod theme;
