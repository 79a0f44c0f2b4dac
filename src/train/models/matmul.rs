//! Single-threaded f32 matrix products for the fused CPU MLP: a register-
//! tiled kernel with explicit AVX-512 and AVX2+FMA versions picked at run
//! time, and a portable one. At the MLP's sizes (up to a few hundred per side) one thread
//! with no dispatch overhead beats a threaded gemm; see `scripts/train_bench_mlp.sh`.

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

/// `c` (m x n, row-major, overwritten) = `a` (m x k) times `b` (k x n).
/// `panel` is scratch space, reused between calls.
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    panel: &mut Vec<f32>,
) {
    assert!(c.len() >= m * n, "output too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    assert!(
        a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs,
        "lhs too small"
    );
    assert!(
        b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs,
        "rhs too small"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            unsafe { matmul_avx512(m, n, k, a, b, c, panel) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { matmul_avx2(m, n, k, a, b, c, panel) };
            return;
        }
    }
    portable(m, n, k, a, b, c, panel);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn matmul_avx512(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    panel: &mut Vec<f32>,
) {
    panels::<32>(n, k, b, panel, |panel, j0, cols| {
        let mut i0 = 0;
        while i0 + 6 <= m {
            // SAFETY: AVX-512F is enabled in this function.
            unsafe { x86::tile_avx512::<6>(i0, k, a, panel, c, n, j0, cols) };
            i0 += 6;
        }
        while i0 < m {
            unsafe { x86::tile_avx512::<1>(i0, k, a, panel, c, n, j0, cols) };
            i0 += 1;
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_avx2(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    panel: &mut Vec<f32>,
) {
    panels::<16>(n, k, b, panel, |panel, j0, cols| {
        let mut i0 = 0;
        while i0 + 6 <= m {
            unsafe { x86::tile_avx2::<6>(i0, k, a, panel, c, n, j0, cols) };
            i0 += 6;
        }
        while i0 < m {
            unsafe { x86::tile_avx2::<1>(i0, k, a, panel, c, n, j0, cols) };
            i0 += 1;
        }
    });
}

/// Packs `b` into zero-padded column panels of `NR` and hands each to `f`.
#[inline(always)]
fn panels<const NR: usize>(
    n: usize,
    k: usize,
    b: MatRef,
    panel: &mut Vec<f32>,
    mut f: impl FnMut(&[f32], usize, usize),
) {
    panel.clear();
    panel.resize(k * NR, 0.0);
    for j0 in (0..n).step_by(NR) {
        let cols = NR.min(n - j0);
        if b.cs == 1 {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                let start = p * b.rs + j0;
                row[..cols].copy_from_slice(&b.data[start..start + cols]);
                row[cols..].fill(0.0);
            }
        } else {
            // Column j of the panel is a strided line of `b`: walk it in order.
            if cols < NR {
                panel.fill(0.0);
            }
            for j in 0..cols {
                let column = (j0 + j) * b.cs;
                for p in 0..k {
                    panel[p * NR + j] = b.data[column + p * b.rs];
                }
            }
        }
        f(panel, j0, cols);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::MatRef;
    use std::arch::x86_64::*;

    /// `MR` rows by 32 columns of `c` from a packed panel, sums in 2*MR registers.
    /// Safety: AVX-512F available; `panel` holds k rows of 32; rows i0..i0+MR and
    /// columns 0..k of `a` in bounds (checked by `matmul`).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile_avx512<const MR: usize>(
        i0: usize,
        k: usize,
        a: MatRef,
        panel: &[f32],
        c: &mut [f32],
        n: usize,
        j0: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let pp = panel.as_ptr();
        let ap = a.data.as_ptr();
        for p in 0..k {
            let (b0, b1) = unsafe {
                (
                    _mm512_loadu_ps(pp.add(p * 32)),
                    _mm512_loadu_ps(pp.add(p * 32 + 16)),
                )
            };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(unsafe { *ap.add((i0 + r) * a.rs + p * a.cs) });
                acc_r[0] = _mm512_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm512_fmadd_ps(av, b1, acc_r[1]);
            }
        }
        let mut out = [0f32; 32];
        for (r, acc_r) in acc.iter().enumerate() {
            unsafe {
                _mm512_storeu_ps(out.as_mut_ptr(), acc_r[0]);
                _mm512_storeu_ps(out.as_mut_ptr().add(16), acc_r[1]);
            }
            let start = (i0 + r) * n + j0;
            c[start..start + cols].copy_from_slice(&out[..cols]);
        }
    }

    /// As `tile_avx512` with 16 columns in AVX2 registers.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile_avx2<const MR: usize>(
        i0: usize,
        k: usize,
        a: MatRef,
        panel: &[f32],
        c: &mut [f32],
        n: usize,
        j0: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let pp = panel.as_ptr();
        let ap = a.data.as_ptr();
        for p in 0..k {
            let (b0, b1) = unsafe {
                (
                    _mm256_loadu_ps(pp.add(p * 16)),
                    _mm256_loadu_ps(pp.add(p * 16 + 8)),
                )
            };
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(unsafe { *ap.add((i0 + r) * a.rs + p * a.cs) });
                acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
            }
        }
        let mut out = [0f32; 16];
        for (r, acc_r) in acc.iter().enumerate() {
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), acc_r[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), acc_r[1]);
            }
            let start = (i0 + r) * n + j0;
            c[start..start + cols].copy_from_slice(&out[..cols]);
        }
    }
}

/// The portable kernel: `MR x NR` sums in local arrays.
fn portable(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    panel: &mut Vec<f32>,
) {
    panels::<8>(n, k, b, panel, |panel, j0, cols| {
        let mut i0 = 0;
        while i0 + 4 <= m {
            portable_tile::<4>(i0, k, a, panel, c, n, j0, cols);
            i0 += 4;
        }
        while i0 < m {
            portable_tile::<1>(i0, k, a, panel, c, n, j0, cols);
            i0 += 1;
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn portable_tile<const MR: usize>(
    i0: usize,
    k: usize,
    a: MatRef,
    panel: &[f32],
    c: &mut [f32],
    n: usize,
    j0: usize,
    cols: usize,
) {
    let mut acc = [[0f32; 8]; MR];
    for (p, b_row) in panel.chunks_exact(8).take(k).enumerate() {
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let av = a.data[(i0 + r) * a.rs + p * a.cs];
            for (s, &bv) in acc_row.iter_mut().zip(b_row) {
                *s += av * bv;
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        let start = (i0 + r) * n + j0;
        c[start..start + cols].copy_from_slice(&acc_row[..cols]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: MatRef, b: MatRef) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs])
                    .sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_for_all_layouts_and_edges() {
        let mut panel = Vec::new();
        for (m, n, k) in [
            (1, 1, 1),
            (7, 33, 5),
            (64, 10, 128),
            (13, 70, 64),
            (6, 32, 3),
            (0, 4, 4),
            (3, 3, 0),
        ] {
            let a_data: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
                .collect();
            let b_data: Vec<f32> = (0..k * n)
                .map(|i| ((i * 17 % 13) as f32 - 6.0) / 5.0)
                .collect();
            for (a, b) in [
                (MatRef::rows(&a_data, k), MatRef::rows(&b_data, n)),
                (
                    MatRef::transposed(&a_data, m),
                    MatRef::transposed(&b_data, k),
                ),
            ] {
                let want = naive(m, n, k, a, b);
                let check = |name: &str, got: &[f32]| {
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() < 1e-4, "{name} {m}x{n}x{k}: {g} vs {w}");
                    }
                };
                let mut got = vec![f32::NAN; m * n];
                matmul(m, n, k, a, b, &mut got, &mut panel);
                check("dispatched", &got);
                if m > 0 && n > 0 && k > 0 {
                    // Every kernel this CPU can run, not only the one picked.
                    let mut got = vec![f32::NAN; m * n];
                    portable(m, n, k, a, b, &mut got, &mut panel);
                    check("portable", &got);
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        let mut got = vec![f32::NAN; m * n];
                        // SAFETY: AVX2 and FMA are available (checked above).
                        unsafe { matmul_avx2(m, n, k, a, b, &mut got, &mut panel) };
                        check("avx2", &got);
                    }
                }
            }
        }
    }
}
