//! Reduce a series to what a plot of a given width can show: per x-bucket,
//! the first, minimum, maximum and last points, so spikes survive.

/// Keeps at most ~4 points per bucket over `buckets` equal slices of
/// `[x_min, x_max]`; points outside the range are dropped. `points` must be
/// sorted by x. Non-finite y values are skipped.
pub fn min_max(points: &[(f64, f64)], x_min: f64, x_max: f64, buckets: usize) -> Vec<(f64, f64)> {
    let start = points.partition_point(|p| p.0 < x_min);
    let end = points.partition_point(|p| p.0 <= x_max);
    let visible = &points[start..end.max(start)];
    let buckets = buckets.max(1);
    if visible.len() <= buckets * 2 {
        return visible
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
    }
    let width = (x_max - x_min).max(f64::MIN_POSITIVE);
    let mut out = Vec::with_capacity(buckets * 4);
    let mut i = 0;
    while i < visible.len() {
        let bucket = (((visible[i].0 - x_min) / width) * buckets as f64).floor() as usize;
        let mut j = i;
        let (mut lo, mut hi) = (None::<(f64, f64)>, None::<(f64, f64)>);
        let (mut first, mut last) = (None, None);
        while j < visible.len() {
            let b = (((visible[j].0 - x_min) / width) * buckets as f64).floor() as usize;
            if b != bucket {
                break;
            }
            let p = visible[j];
            if p.1.is_finite() {
                first.get_or_insert(p);
                last = Some(p);
                if lo.is_none_or(|l| p.1 < l.1) {
                    lo = Some(p);
                }
                if hi.is_none_or(|h| p.1 > h.1) {
                    hi = Some(p);
                }
            }
            j += 1;
        }
        let mut picked: Vec<(f64, f64)> = [first, lo, hi, last].into_iter().flatten().collect();
        picked.sort_by(|a, b| a.0.total_cmp(&b.0));
        picked.dedup();
        out.extend(picked);
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spikes_and_bounds_size() {
        let mut points: Vec<(f64, f64)> =
            (0..100_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        points[54_321].1 = 1000.0;
        let out = min_max(&points, 0.0, 99_999.0, 200);
        assert!(out.len() <= 800, "{}", out.len());
        assert!(out.iter().any(|p| p.1 == 1000.0));
        assert_eq!(out.first().unwrap().0, 0.0);
        assert_eq!(out.last().unwrap().0, 99_999.0);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn small_series_unchanged_and_range_respected() {
        let points = vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 4.0)];
        assert_eq!(
            min_max(&points, 0.0, 10.0, 100),
            vec![(0.0, 1.0), (2.0, 3.0), (3.0, 4.0)]
        );
        assert_eq!(min_max(&points, 1.5, 2.5, 100), vec![(2.0, 3.0)]);
        assert!(min_max(&[], 0.0, 1.0, 10).is_empty());
    }
}
