//! Colours. Series colours follow the Okabe-Ito palette, readable on dark and
//! light backgrounds and by colour-blind users.

use ratatui::style::Color;

use crate::viz::PALETTE;

pub fn series_color(i: usize) -> Color {
    let (r, g, b) = PALETTE[i % (PALETTE.len() - 1)];
    Color::Rgb(r, g, b)
}
