//! Cheap streaming statistics: an EMA and a rolling window kept sorted, so
//! its median and quartiles cost O(1) and each push O(window).

/// Exponential moving average, seeded with the first value.
#[derive(Debug, Clone)]
pub struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    pub fn new(alpha: f64) -> Self {
        Ema {
            alpha: alpha.clamp(1e-6, 1.0),
            value: None,
        }
    }

    pub fn push(&mut self, x: f64) -> f64 {
        let v = match self.value {
            Some(v) => v + self.alpha * (x - v),
            None => x,
        };
        self.value = Some(v);
        v
    }

    pub fn get(&self) -> Option<f64> {
        self.value
    }
}

/// The last `cap` finite values, in arrival order (a ring) and sorted.
///
/// A lazy window ([`RollingWindow::lazy`]) stops keeping its sorted copy
/// when its quantiles have not been asked for over a whole window, and
/// sorts again when they are ([`RollingWindow::ensure_sorted`]). The spike
/// tests ask for them only for values the median alone cannot rule out
/// ([`RollingWindow::median_outside`]), which in a healthy log is none.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    cap: usize,
    /// Arrival order; once full, `oldest` is where the next value goes.
    ring: Vec<f64>,
    oldest: usize,
    sorted: Vec<f64>,
    /// Whether `sorted` holds the ring's values (always, for an eager window).
    in_step: bool,
    /// A lazy window's pushes since its quantiles were last asked for.
    unasked: Option<usize>,
}

impl RollingWindow {
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        RollingWindow {
            cap,
            ring: Vec::with_capacity(cap),
            oldest: 0,
            sorted: Vec::with_capacity(cap),
            in_step: true,
            unasked: None,
        }
    }

    /// A window whose quantiles are read only after
    /// [`RollingWindow::ensure_sorted`].
    pub fn lazy(cap: usize) -> Self {
        RollingWindow {
            unasked: Some(0),
            ..RollingWindow::new(cap)
        }
    }

    /// Sorts the values again if the sorted copy was not kept; a lazy
    /// window's quantiles are valid from here to its next push.
    pub fn ensure_sorted(&mut self) {
        if let Some(unasked) = &mut self.unasked {
            *unasked = 0;
        }
        if !self.in_step {
            self.sorted.clear();
            self.sorted.extend_from_slice(&self.ring);
            self.sorted.sort_unstable_by(f64::total_cmp);
            self.in_step = true;
        }
    }

    /// True when the median is certainly not in `set`, a set of values
    /// closed downwards (with `v` in it, every smaller value is): fewer
    /// than half the values are in it, so the lower of the two middle
    /// ones is not, nor is the median, which is at least that one. One
    /// branch-free pass over the values, in any order, without sorting.
    pub fn median_outside(&self, set: impl Fn(f64) -> bool) -> bool {
        let n = self.ring.len();
        if n == 0 {
            return false;
        }
        // The index `quantile(0.5)` starts from.
        let lower_middle = (0.5 * (n - 1) as f64) as usize;
        let in_set: usize = self.ring.iter().map(|&v| usize::from(set(v))).sum();
        in_set <= lower_middle
    }

    /// Adds a value (non-finite values are ignored), evicting the oldest.
    ///
    /// A monitor pushes every record of a log through a few windows of 64,
    /// so this is a hot loop: both positions in the sorted copy are counts
    /// over it (branch-free, vectorised) rather than binary searches, whose
    /// branches a noisy series mispredicts half the time.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if let Some(unasked) = &mut self.unasked {
            *unasked += 1;
            if *unasked > self.cap {
                self.in_step = false;
            }
        }
        let evicted = self.enter(x);
        if !self.in_step {
            return;
        }
        let Some(old) = evicted else {
            let at = self.sorted.partition_point(|&v| v < x);
            self.sorted.insert(at, x);
            return;
        };
        // Values are finite, so `<` is a total order here: `old` sits at
        // `removed` (the first of its equals) and `x` belongs at `insert_at`.
        let (mut removed, mut insert_at) = (0, 0);
        for &v in &self.sorted {
            removed += usize::from(v < old);
            insert_at += usize::from(v < x);
        }
        // Replace `old` by `x` with a single shift of the values between.
        if insert_at > removed {
            self.sorted.copy_within(removed + 1..insert_at, removed);
            self.sorted[insert_at - 1] = x;
        } else {
            self.sorted.copy_within(insert_at..removed, insert_at + 1);
            self.sorted[insert_at] = x;
        }
    }

    /// Puts `x` in the ring; returns the value it evicted, once full.
    fn enter(&mut self, x: f64) -> Option<f64> {
        if self.ring.len() < self.cap {
            self.ring.push(x);
            return None;
        }
        let old = std::mem::replace(&mut self.ring[self.oldest], x);
        self.oldest += 1;
        if self.oldest == self.cap {
            self.oldest = 0;
        }
        Some(old)
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Linear-interpolated quantile, q in [0, 1] (of a lazy window: after
    /// [`RollingWindow::ensure_sorted`]).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        debug_assert!(self.in_step, "quantile of a lazy window not sorted");
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        // pos >= 0, so truncation is its floor (`f64::floor` is a libm call
        // on baseline x86-64, and quantiles are taken for every record).
        let lo = pos as usize;
        let hi = (lo + 1).min(n - 1);
        let frac = pos - lo as f64;
        Some(self.sorted[lo] + (self.sorted[hi] - self.sorted[lo]) * frac)
    }

    pub fn median(&self) -> Option<f64> {
        self.quantile(0.5)
    }

    /// A robust standard deviation: the interquartile range / 1.349.
    pub fn robust_sigma(&self) -> Option<f64> {
        Some((self.quantile(0.75)? - self.quantile(0.25)?) / 1.349)
    }
}

/// Least-squares line through (i, y_i), i = 0..n: (slope, t statistic of the
/// slope, residual standard deviation). None for fewer than 3 points.
pub fn trend(ys: impl ExactSizeIterator<Item = f64> + Clone) -> Option<(f64, f64, f64)> {
    let n = ys.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = ys.clone().sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.clone().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    let sse: f64 = ys
        .enumerate()
        .map(|(i, y)| {
            let r = y - mean_y - slope * (i as f64 - mean_x);
            r * r
        })
        .sum();
    let sd = (sse / (nf - 2.0)).sqrt();
    let se = sd / sxx.sqrt();
    let t = if se > 0.0 {
        slope / se
    } else if slope > 0.0 {
        f64::INFINITY
    } else if slope < 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    Some((slope, t, sd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_sorted_order_and_evicts_oldest() {
        let mut w = RollingWindow::new(3);
        for x in [5.0, 1.0, 3.0, f64::NAN, 4.0] {
            w.push(x);
        }
        assert_eq!(w.sorted, vec![1.0, 3.0, 4.0]);
        assert_eq!(w.median(), Some(3.0));
        assert_eq!(w.quantile(0.0), Some(1.0));
        assert_eq!(w.len(), 3);
        w.push(0.5);
        assert_eq!(w.sorted, vec![0.5, 3.0, 4.0], "1.0, the oldest, went");
    }

    #[test]
    fn window_matches_a_sorted_copy_of_its_last_values() {
        let mut w = RollingWindow::new(7);
        let mut x = 0.5f64;
        let mut all = Vec::new();
        for i in 0..500 {
            x = (x * 3.7 * (1.0 - x)).clamp(0.01, 0.99);
            let v = if i % 11 == 0 { 0.5 } else { x };
            w.push(v);
            all.push(v);
            let mut last: Vec<f64> = all.iter().rev().take(7).copied().collect();
            last.sort_by(f64::total_cmp);
            assert_eq!(w.sorted, last);
        }
    }

    #[test]
    fn a_wide_window_matches_a_sorted_copy_with_ties_and_signs() {
        let mut w = RollingWindow::new(64);
        let mut next = crate::test_rng(0x2545_f491_4f6c_dd1d);
        let mut all = Vec::new();
        for i in 0..5000 {
            let state = next();
            // Few distinct values (ties), both signs, runs up and down.
            let v = match i % 3 {
                0 => (state % 17) as f64 - 8.0,
                1 => (state % 1000) as f64 / 7.0 - 70.0,
                _ => i as f64 / 100.0,
            };
            w.push(v);
            all.push(v);
            let mut last: Vec<f64> = all.iter().rev().take(64).copied().collect();
            last.sort_by(f64::total_cmp);
            assert_eq!(w.sorted, last, "after {} values", i + 1);
        }
    }

    #[test]
    fn the_median_is_ruled_out_exactly_when_its_lower_middle_value_is() {
        let mut rng = crate::test_rng(0x2545_f491_4f6c_dd1d);
        let mut next = move || (rng() % 50) as f64;
        for cap in [1, 2, 5, 64] {
            let mut w = RollingWindow::lazy(cap);
            for _ in 0..2000 {
                w.push(next());
                let t = next();
                let below = |v: f64| v < t;
                let outside = w.median_outside(below);
                w.ensure_sorted();
                let lower_middle = w.sorted[(0.5 * (w.len() - 1) as f64) as usize];
                assert_eq!(outside, !below(lower_middle), "cap {cap}, t {t}");
                if outside {
                    assert!(!below(w.median().unwrap()));
                }
            }
        }
    }

    #[test]
    fn a_lazy_window_sorts_only_while_asked() {
        let mut w = RollingWindow::lazy(4);
        for x in [3.0, 1.0, 2.0] {
            w.push(x);
        }
        w.ensure_sorted();
        assert_eq!(w.median(), Some(2.0));
        for x in [9.0, 8.0, 7.0, 6.0, 5.0] {
            w.push(x);
        }
        assert!(!w.in_step, "not asked for a whole window: not kept sorted");
        w.ensure_sorted();
        assert_eq!(w.sorted, vec![5.0, 6.0, 7.0, 8.0]);
        w.push(1.0);
        assert!(w.in_step, "asked lately: kept sorted");
        assert_eq!(w.sorted, vec![1.0, 5.0, 6.0, 7.0]);
    }

    #[test]
    fn trend_of_a_line_is_exact() {
        let ys = [1.0, 3.0, 5.0, 7.0];
        let (slope, t, sd) = trend(ys.iter().copied()).unwrap();
        assert!((slope - 2.0).abs() < 1e-12);
        assert!(t.is_infinite() && sd < 1e-12);
    }
}
