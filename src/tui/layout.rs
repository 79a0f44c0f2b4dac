//! Where each panel goes, for any terminal size.

use ratatui::layout::{Constraint, Layout, Rect};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub lr: Option<Rect>,
    pub loss: Option<Rect>,
    pub third: Option<Rect>,
    pub runs: Option<Rect>,
    pub stats: Option<Rect>,
    pub alerts: Option<Rect>,
    pub status: Option<Rect>,
}

/// Three arrangements: wide (charts left, lists right), standard (a grid that
/// fits 80x24), and tiny (the loss chart alone).
pub fn split(area: Rect, runs: usize) -> Areas {
    if area.width == 0 || area.height == 0 {
        return Areas::default();
    }
    let [body, status] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    let mut out = Areas {
        status: Some(status),
        ..Areas::default()
    };
    if body.height < 10 || body.width < 40 {
        out.loss = (body.height >= 3).then_some(body);
        return out;
    }
    if body.width >= 120 && body.height >= 30 {
        let [charts, side] =
            Layout::horizontal([Constraint::Percentage(68), Constraint::Percentage(32)])
                .areas(body);
        let [lr, loss, third] = Layout::vertical([
            Constraint::Percentage(30),
            Constraint::Percentage(40),
            Constraint::Percentage(30),
        ])
        .areas(charts);
        let runs_height = (runs as u16 + 2).clamp(3, 10);
        let [runs_area, stats, alerts] = Layout::vertical([
            Constraint::Length(runs_height),
            Constraint::Length(12),
            Constraint::Min(5),
        ])
        .areas(side);
        out.lr = Some(lr);
        out.loss = Some(loss);
        out.third = Some(third);
        out.runs = Some(runs_area);
        out.stats = Some(stats);
        out.alerts = Some(alerts);
        return out;
    }
    let alerts_height = if body.height >= 30 {
        6
    } else if body.height >= 20 {
        4
    } else {
        3
    };
    let [top, middle, alerts] = Layout::vertical([
        Constraint::Percentage(48),
        Constraint::Min(6),
        Constraint::Length(alerts_height),
    ])
    .areas(body);
    let [lr, loss] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [third, side] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    let [runs_area, stats] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(side);
    out.lr = Some(lr);
    out.loss = Some(loss);
    out.third = Some(third);
    out.runs = Some(runs_area);
    out.stats = Some(stats);
    out.alerts = Some(alerts);
    out
}

/// A `width` x `height` box in the middle of `area` (clipped to it), for overlays.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_fits_inside_the_screen() {
        for w in 0..130u16 {
            for h in (0..70u16).step_by(3) {
                let area = Rect::new(0, 0, w, h);
                let a = split(area, 3);
                for r in [a.lr, a.loss, a.third, a.runs, a.stats, a.alerts, a.status]
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        r.right() <= area.right() && r.bottom() <= area.bottom(),
                        "{w}x{h}: {r:?}"
                    );
                }
            }
        }
    }
}
