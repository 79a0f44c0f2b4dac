//! Line charts as SVG (plotters) or PNG (the same SVG rasterised by resvg
//! with an embedded font, so the binary needs no system fonts).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");
const FONT_FAMILY: &str = "DejaVu Sans Mono";

pub struct FigureLine {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub lines: Vec<FigureLine>,
    /// Vertical markers: (x, label).
    pub markers: Vec<(f64, String)>,
    pub log_x: bool,
}

/// Colour-blind-safe palette (Okabe-Ito), shared with the terminal themes.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (0, 0, 0),
];

/// Writes the figure; the format follows the extension (.png or .svg).
pub fn save(fig: &Figure, path: &Path, size: (u32, u32)) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = match ext.as_str() {
        "svg" => to_svg(fig, size)?.into_bytes(),
        "png" => to_png(fig, size)?,
        _ => {
            return Err(crate::error::usage(format!(
                "cannot tell the image format of {}: use a .png or .svg file name",
                path.display()
            )));
        }
    };
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn to_svg(fig: &Figure, size: (u32, u32)) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(fig, &root)?;
        root.present()
            .map_err(|e| anyhow!("drawing the chart: {e:?}"))?;
    }
    Ok(svg)
}

pub fn to_png(fig: &Figure, size: (u32, u32)) -> Result<Vec<u8>> {
    let svg = to_svg(fig, size)?;
    let mut options = resvg::usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        ..Default::default()
    };
    let fonts = options.fontdb_mut();
    fonts.load_font_data(FONT.to_vec());
    fonts.set_sans_serif_family(FONT_FAMILY);
    fonts.set_monospace_family(FONT_FAMILY);
    let tree = resvg::usvg::Tree::from_str(&svg, &options).context("reading back the chart SVG")?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.0, size.1)
        .ok_or_else(|| anyhow!("image size {}x{} is not drawable", size.0, size.1))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("encoding the PNG")
}

fn bounds(fig: &Figure) -> ((f64, f64), (f64, f64)) {
    let pts = || {
        fig.lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| p.1.is_finite())
    };
    let usable = |p: &&(f64, f64)| (!fig.log_y || p.1 > 0.0) && (!fig.log_x || p.0 > 0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in pts().filter(usable) {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y0 = y0.min(p.1);
        y1 = y1.max(p.1);
    }
    if !x0.is_finite() {
        (x0, x1) = if fig.log_x { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if !y0.is_finite() {
        (y0, y1) = if fig.log_y { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    if x1 <= x0 {
        x1 = if fig.log_x { x0 * 10.0 } else { x0 + 1.0 };
    }
    if fig.log_y {
        if y1 <= y0 {
            y1 = y0 * 10.0;
        }
        (y0, y1) = (y0 / 1.2, y1 * 1.2);
    } else {
        let pad = ((y1 - y0) * 0.05).max(y1.abs() * 0.05).max(1e-12);
        y0 = if y0 >= 0.0 && y0 - pad < 0.0 {
            0.0
        } else {
            y0 - pad
        };
        y1 += pad;
    }
    ((x0, x1), (y0, y1))
}

fn draw<DB: DrawingBackend>(fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the chart: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let ((x0, x1), (y0, y1)) = bounds(fig);
    // The legend goes in a corner no curve passes through; where every
    // corner has one, the y range grows at the top to make room for it.
    let (w, h) = root.dim_in_pixel();
    let legend = legend_box(fig, (w.saturating_sub(122), h.saturating_sub(110)));
    let (corner, y1) = legend_place(fig, ((x0, x1), (y0, y1)), legend);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&fig.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(90);
    // plotters' log ranges and linear ranges are different types.
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(&fig.x_label)
                .y_desc(&fig.y_label)
                .axis_desc_style(("sans-serif", 16))
                .label_style(("sans-serif", 13))
                .y_label_formatter(&|y| crate::format::format_tick(*y))
                .x_label_formatter(&|x| crate::format::format_tick(*x))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            for (i, line) in fig.lines.iter().enumerate() {
                let (r, g, b) = PALETTE[i % PALETTE.len()];
                let color = RGBColor(r, g, b);
                let pts = line.points.iter().copied().filter(|p| {
                    p.1.is_finite() && (!fig.log_y || p.1 > 0.0) && (!fig.log_x || p.0 > 0.0)
                });
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(err)?
                    .label(format!("{}   ", line.name))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            for (x, label) in &fig.markers {
                let style = RGBColor(120, 120, 120).stroke_width(1);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(*x, y0), (*x, y1)],
                        style,
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        label.clone(),
                        (*x, y1),
                        ("sans-serif", 13).into_font().color(&BLACK),
                    )))
                    .map_err(err)?;
            }
            if fig.lines.len() > 1 || !fig.lines.first().is_some_and(|l| l.name.is_empty()) {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .label_font(("sans-serif", 13))
                    .position(corner)
                    .draw()
                    .map_err(err)?;
            }
        }};
    }
    match (fig.log_x, fig.log_y) {
        (false, false) => finish!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
        (false, true) => finish!(
            builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(err)?
        ),
        (true, false) => finish!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(err)?
        ),
        (true, true) => finish!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(err)?
        ),
    }
    Ok(())
}

/// The legend's size as fractions of the plot area (`plot`: its pixels).
fn legend_box(fig: &Figure, plot: (u32, u32)) -> (f64, f64) {
    let longest = fig
        .lines
        .iter()
        .map(|l| l.name.chars().count() + 3)
        .max()
        .unwrap_or(0);
    // 13 px text: about 8 px a character, 18 px a row, plus the sample
    // line, padding and plotters' 10 px margin from the corner.
    let w = (longest as f64 * 8.0 + 60.0) / f64::from(plot.0.max(1));
    let h = (fig.lines.len() as f64 * 18.0 + 24.0) / f64::from(plot.1.max(1));
    (w.min(1.0), h.min(0.9))
}

/// Where the legend goes, and the top of the y range that leaves room for
/// it: the first corner (upper right, upper left, lower right, lower left)
/// whose box no curve passes through, else upper right above the curves.
fn legend_place(
    fig: &Figure,
    ((x0, x1), (y0, y1)): ((f64, f64), (f64, f64)),
    (w, h): (f64, f64),
) -> (SeriesLabelPosition, f64) {
    let to_unit = |v: f64, lo: f64, hi: f64, log: bool| {
        if log {
            (v.max(f64::MIN_POSITIVE).ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    // Points along every segment, in plot fractions.
    let mut samples = Vec::new();
    for line in &fig.lines {
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(|p| p.1.is_finite() && (!fig.log_y || p.1 > 0.0) && (!fig.log_x || p.0 > 0.0))
            .map(|p| {
                (
                    to_unit(p.0, x0, x1, fig.log_x),
                    to_unit(p.1, y0, y1, fig.log_y),
                )
            })
            .collect();
        samples.extend(pts.first().copied());
        for pair in pts.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            for k in 1..=8 {
                let t = k as f64 / 8.0;
                samples.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
            }
        }
    }
    let corners = [
        (
            SeriesLabelPosition::UpperRight,
            (1.0 - w, 1.0),
            (1.0 - h, 1.0),
        ),
        (SeriesLabelPosition::UpperLeft, (0.0, w), (1.0 - h, 1.0)),
        (SeriesLabelPosition::LowerRight, (1.0 - w, 1.0), (0.0, h)),
        (SeriesLabelPosition::LowerLeft, (0.0, w), (0.0, h)),
    ];
    for (corner, (xa, xb), (ya, yb)) in corners {
        let hit = samples
            .iter()
            .any(|&(x, y)| x >= xa && x <= xb && y >= ya && y <= yb);
        if !hit {
            return (corner, y1);
        }
    }
    // Every corner is crossed: the curves keep the lower 1 - h of the
    // height and the legend takes the band above them.
    let grow = 1.0 / (1.0 - h).max(0.1);
    let top = if fig.log_y {
        y0 * (y1 / y0).powf(grow)
    } else {
        y0 + (y1 - y0) * grow
    };
    (SeriesLabelPosition::UpperRight, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(lines: Vec<Vec<(f64, f64)>>) -> Figure {
        Figure {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_y: false,
            log_x: false,
            markers: Vec::new(),
            lines: lines
                .into_iter()
                .enumerate()
                .map(|(i, points)| FigureLine {
                    name: format!("policy {i}"),
                    points,
                })
                .collect(),
        }
    }

    #[test]
    fn the_legend_avoids_the_curves() {
        // Warm-up then decay from the upper left to the lower right, and a
        // constant at the top: the upper corners are taken.
        let decay: Vec<(f64, f64)> = (0..=100)
            .map(|t| (t as f64, 1.0 - t as f64 / 100.0))
            .collect();
        let top: Vec<(f64, f64)> = (0..=100).map(|t| (t as f64, 1.0)).collect();
        let fig = figure(vec![decay.clone(), top]);
        let b = ((0.0, 100.0), (0.0, 1.0));
        let (corner, y1) = legend_place(&fig, b, (0.3, 0.2));
        assert!(
            matches!(corner, SeriesLabelPosition::LowerLeft),
            "{corner:?}"
        );
        assert_eq!(y1, 1.0);
        // An empty upper right stays the first choice.
        let fig = figure(vec![decay]);
        let (corner, _) = legend_place(&fig, b, (0.3, 0.2));
        assert!(
            matches!(corner, SeriesLabelPosition::UpperRight),
            "{corner:?}"
        );
        // Curves through every corner: room is made above them.
        let zigzag: Vec<(f64, f64)> = (0..=100)
            .map(|t| (t as f64, if t % 2 == 0 { 0.0 } else { 1.0 }))
            .collect();
        let fig = figure(vec![zigzag]);
        let (corner, y1) = legend_place(&fig, b, (0.3, 0.2));
        assert!(matches!(corner, SeriesLabelPosition::UpperRight));
        assert!((y1 - 1.25).abs() < 1e-9, "{y1}");
    }
}
