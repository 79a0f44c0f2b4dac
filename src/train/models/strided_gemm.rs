//! gemm on strided views of plain slices, bounds-checked: the matrix
//! products of the direct convolution (`conv_direct`), which reads shifted
//! windows of one padded image and accumulates into its output, two things
//! Candle's `matmul` (fresh output, whole tensors) cannot do.

use candle_core::Result;

/// An `rows x cols` matrix inside a slice: element (i, j) is at
/// `offset + i * rs + j * cs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct View {
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// A row-major matrix at `offset` whose rows are `rs` apart.
    pub fn rows(offset: usize, rows: usize, cols: usize, rs: usize) -> View {
        View {
            offset,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// This matrix's transpose, over the same values.
    pub fn t(self) -> View {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// One past the last index read or written (0 when empty); `None` if
    /// that overflows.
    fn end(&self) -> Option<usize> {
        if self.rows == 0 || self.cols == 0 {
            return Some(0);
        }
        let last_row = (self.rows - 1).checked_mul(self.rs)?;
        let last_col = (self.cols - 1).checked_mul(self.cs)?;
        self.offset
            .checked_add(last_row)?
            .checked_add(last_col)?
            .checked_add(1)
    }

    /// Every index inside a slice of `len` values, and both strides usable
    /// as gemm's `isize` (a stride that is never multiplied, with one row
    /// or column, must fit too).
    fn check(&self, len: usize, what: &str) -> Result<()> {
        let strides_fit = isize::try_from(self.rs).is_ok() && isize::try_from(self.cs).is_ok();
        match self.end() {
            Some(end) if end <= len && strides_fit => Ok(()),
            _ => candle_core::bail!("gemm: {what} {self:?} reaches past its {len} values"),
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, in f32 on
/// the calling thread (the convolution splits images among threads).
pub(super) fn gemm(
    dst: &mut [f32],
    d: View,
    lhs: &[f32],
    l: View,
    rhs: &[f32],
    r: View,
    accumulate: bool,
) -> Result<()> {
    if l.rows != d.rows || r.cols != d.cols || l.cols != r.rows {
        candle_core::bail!("gemm: shapes do not fit: {d:?} = {l:?} x {r:?}");
    }
    d.check(dst.len(), "output")?;
    l.check(lhs.len(), "left operand")?;
    r.check(rhs.len(), "right operand")?;
    if d.rows == 0 || d.cols == 0 {
        return Ok(());
    }
    if l.cols == 0 {
        if !accumulate {
            for i in 0..d.rows {
                for j in 0..d.cols {
                    dst[d.offset + i * d.rs + j * d.cs] = 0.0;
                }
            }
        }
        return Ok(());
    }
    // SAFETY: every index each view reaches is inside its slice, computed
    // without overflow, and every stride fits in isize (checked above);
    // `dst` is borrowed mutably, so it overlaps neither operand.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr().add(d.offset),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr().add(l.offset),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr().add(r.offset),
            r.cs as isize,
            r.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by its definition.
    fn naive(lhs: &[f32], l: View, rhs: &[f32], r: View) -> Vec<f32> {
        let mut out = vec![0f32; l.rows * r.cols];
        for i in 0..l.rows {
            for j in 0..r.cols {
                for p in 0..l.cols {
                    out[i * r.cols + j] +=
                        lhs[l.offset + i * l.rs + p * l.cs] * rhs[r.offset + p * r.rs + j * r.cs];
                }
            }
        }
        out
    }

    #[test]
    fn strided_offset_and_transposed_views_multiply_and_accumulate() -> Result<()> {
        let values: Vec<f32> = (0..400)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 16.0)
            .collect();
        // A 5x7 window of a 20-wide grid at offset 3, times the transpose
        // of a 4x7 row-major block at 150 with row stride 9.
        let l = View::rows(3, 5, 7, 20);
        let r = View::rows(150, 4, 7, 9).t();
        let expected = naive(&values, l, &values, r);
        let d = View::rows(0, 5, 4, 4);
        let mut out = vec![f32::NAN; 20];
        gemm(&mut out, d, &values, l, &values, r, false)?;
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
        assert!(close(&out, &expected), "{out:?} vs {expected:?}");
        gemm(&mut out, d, &values, l, &values, r, true)?;
        let doubled: Vec<f32> = expected.iter().map(|v| 2.0 * v).collect();
        assert!(close(&out, &doubled));
        // Written column-major (transposed storage) it is the same product.
        let mut out_t = vec![0f32; 20];
        gemm(
            &mut out_t,
            View::rows(0, 4, 5, 5).t(),
            &values,
            l,
            &values,
            r,
            false,
        )?;
        for i in 0..5 {
            for j in 0..4 {
                assert!((out_t[j * 5 + i] - expected[i * 4 + j]).abs() < 1e-4);
            }
        }
        Ok(())
    }

    #[test]
    fn a_view_past_its_slice_or_a_shape_mismatch_is_an_error() {
        let values = vec![1f32; 30];
        let mut out = vec![0f32; 4];
        let d = View::rows(0, 2, 2, 2);
        // 2x3 at offset 25, row stride 3: its last value is index 30.
        let past = View::rows(25, 2, 3, 3);
        let fits = View::rows(0, 3, 2, 2);
        assert!(gemm(&mut out, d, &values, past, &values, fits, false).is_err());
        let l = View::rows(0, 2, 3, 3);
        assert!(gemm(&mut out, d, &values, l, &values, fits, false).is_ok());
        assert!(
            gemm(
                &mut out,
                d,
                &values,
                l,
                &values,
                View::rows(0, 2, 2, 2),
                false
            )
            .is_err()
        );
        assert!(gemm(&mut out[..3], d, &values, l, &values, fits, false).is_err());
        // Strides whose products wrap around, or that do not fit in isize.
        let wraps = View::rows(0, 3, 2, 1 << 63);
        assert!(
            gemm(
                &mut out,
                d,
                &values,
                View::rows(0, 2, 3, 3),
                &values,
                wraps,
                false
            )
            .is_err()
        );
        let huge = View {
            rs: usize::MAX,
            ..View::rows(0, 1, 3, 3)
        };
        let one_row = View::rows(0, 1, 2, 2);
        assert!(gemm(&mut out, one_row, &values, huge, &values, fits, false).is_err());
    }
}
