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

/// Values per block of a [`BlockIndex`].
pub const BLOCK: usize = 64;

/// Position and value of the smallest and largest finite value of a block.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BlockExtremes {
    min: (f64, u32),
    max: (f64, u32),
}

/// Min/max of every block of `BLOCK` consecutive values, kept up to date as
/// values are appended, so a range's extremes cost O(range / BLOCK).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockIndex {
    blocks: Vec<BlockExtremes>,
    len: usize,
}

impl BlockIndex {
    pub fn build(values: &[f64]) -> Self {
        let mut index = BlockIndex::default();
        for &v in values {
            index.push(v);
        }
        index
    }

    /// Records the value appended at position `self.len`.
    pub fn push(&mut self, value: f64) {
        let pos = self.len as u32;
        if self.len.is_multiple_of(BLOCK) {
            self.blocks.push(BlockExtremes {
                min: (f64::INFINITY, pos),
                max: (f64::NEG_INFINITY, pos),
            });
        }
        self.len += 1;
        if value.is_finite()
            && let Some(b) = self.blocks.last_mut()
        {
            if value < b.min.0 {
                b.min = (value, pos);
            }
            if value > b.max.0 {
                b.max = (value, pos);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions of the smallest and largest finite values in `values[start..end]`.
    fn range_extremes(&self, values: &[f64], start: usize, end: usize) -> Option<(usize, usize)> {
        let mut best: Option<((f64, usize), (f64, usize))> = None;
        let mut consider = |lo: (f64, usize), hi: (f64, usize)| {
            if !lo.0.is_finite() && !hi.0.is_finite() {
                return;
            }
            best = Some(match best {
                None => (lo, hi),
                Some((bl, bh)) => (
                    if lo.0 < bl.0 { lo } else { bl },
                    if hi.0 > bh.0 { hi } else { bh },
                ),
            });
        };
        let mut i = start;
        while i < end {
            if i.is_multiple_of(BLOCK) && i + BLOCK <= end && i / BLOCK < self.blocks.len() {
                let b = self.blocks[i / BLOCK];
                consider((b.min.0, b.min.1 as usize), (b.max.0, b.max.1 as usize));
                i += BLOCK;
            } else {
                let v = values[i];
                if v.is_finite() {
                    consider((v, i), (v, i));
                }
                i += 1;
            }
        }
        best.map(|(lo, hi)| (lo.1, hi.1))
    }
}

/// First index in `[lo, hi)` whose x is not below `bound` (x non-decreasing).
fn lower_bound(
    x: &impl Fn(usize) -> f64,
    mut lo: usize,
    mut hi: usize,
    bound: f64,
    inclusive: bool,
) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let v = x(mid);
        let before = if inclusive { v <= bound } else { v < bound };
        if before {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// [`min_max`] for long series whose x is non-decreasing in index order,
/// using a [`BlockIndex`] over `values`: cost grows with the plot width, not
/// with the number of points.
pub fn min_max_indexed(
    x: impl Fn(usize) -> f64,
    values: &[f64],
    index: &BlockIndex,
    x_min: f64,
    x_max: f64,
    buckets: usize,
) -> Vec<(f64, f64)> {
    let n = values.len().min(index.len());
    let start = lower_bound(&x, 0, n, x_min, false);
    let end = lower_bound(&x, start, n, x_max, true);
    let buckets = buckets.max(1);
    if end - start <= buckets * 2 {
        return (start..end)
            .map(|i| (x(i), values[i]))
            .filter(|p| p.1.is_finite())
            .collect();
    }
    let width = (x_max - x_min).max(f64::MIN_POSITIVE);
    let mut out = Vec::with_capacity(buckets * 4);
    let mut s = start;
    for b in 0..buckets {
        if s >= end {
            break;
        }
        let bucket_end_x = x_min + width * (b + 1) as f64 / buckets as f64;
        let e = if b + 1 == buckets {
            end
        } else {
            lower_bound(&x, s, end, bucket_end_x, false)
        };
        if e <= s {
            continue;
        }
        let mut picked: Vec<usize> = vec![s, e - 1];
        if let Some((lo, hi)) = index.range_extremes(values, s, e) {
            picked.push(lo);
            picked.push(hi);
        }
        picked.sort_unstable();
        picked.dedup();
        out.extend(
            picked
                .into_iter()
                .map(|i| (x(i), values[i]))
                .filter(|p| p.1.is_finite()),
        );
        s = e;
    }
    out
}

#[cfg(test)]
mod indexed_tests {
    use super::*;

    #[test]
    fn indexed_matches_plain_decimation_extremes() {
        let values: Vec<f64> = (0..50_000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .collect();
        let index = BlockIndex::build(&values);
        let x = |i: usize| (i / 2) as f64; // duplicated x values
        let points: Vec<(f64, f64)> = (0..values.len()).map(|i| (x(i), values[i])).collect();
        for &(lo, hi, buckets) in &[(0.0, 25_000.0, 300), (1234.5, 4321.0, 50), (0.0, 10.0, 100)] {
            let fast = min_max_indexed(x, &values, &index, lo, hi, buckets);
            let plain = min_max(&points, lo, hi, buckets);
            let range = |v: &[(f64, f64)]| {
                let ys = v.iter().map(|p| p.1);
                (
                    ys.clone().fold(f64::INFINITY, f64::min),
                    ys.fold(f64::NEG_INFINITY, f64::max),
                )
            };
            assert_eq!(range(&fast), range(&plain));
            assert!(fast.len() <= buckets * 4 + 4);
            assert!(fast.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }
}
