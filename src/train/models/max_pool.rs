//! 2x2 max pooling on the CPU, forward and backward, as loops over each
//! window, with the semantics of `lenet::pool2_with_ops`: an odd last row
//! or column is dropped, and tied maxima share the window's gradient
//! evenly. From Candle ops it was about ten ops (two max reductions, a
//! comparison, four sums, a product, a division) and their gradients for
//! every pooling, a fifth of a LeNet-5 step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu_storage::{contiguous_f32, on_cpu_f32};

/// Pools `(n, C, H, W)` to `(n, C, H/2, W/2)`.
pub(super) fn pool2_cpu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2)
}

/// Whether [`pool2_cpu`] takes `x`.
pub(super) fn runs_on_cpu(x: &Tensor) -> bool {
    on_cpu_f32(x) && x.rank() == 4
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    planes: usize,
    h: usize,
    w: usize,
}

impl Dims {
    fn of(dims: &[usize]) -> Result<Dims> {
        let &[n, c, h, w] = dims else {
            candle_core::bail!("max pool: expected (n, C, H, W), found {dims:?}");
        };
        Ok(Dims {
            planes: n * c,
            h,
            w,
        })
    }

    fn out(&self) -> (usize, usize) {
        (self.h / 2, self.w / 2)
    }

    /// The input offsets of the window at (oy, ox) of a plane at `base`.
    fn window(&self, base: usize, oy: usize, ox: usize) -> [usize; 4] {
        let top = base + 2 * oy * self.w + 2 * ox;
        [top, top + 1, top + self.w, top + self.w + 1]
    }
}

/// A window's maximum (NaN if any value is) and how many values equal it.
fn max_and_ties(x: &[f32], at: [usize; 4]) -> (f32, u32) {
    let mut max = x[at[0]];
    for &i in &at[1..] {
        if x[i] > max || x[i].is_nan() {
            max = x[i];
        }
    }
    let ties = at.iter().map(|&i| u32::from(x[i] == max)).sum();
    (max, ties)
}

struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "lrtop-max-pool-2x2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(layout.dims())?;
        let x = contiguous_f32(storage, layout, "max pool input")?;
        let (oh, ow) = d.out();
        let mut y = Vec::with_capacity(d.planes * oh * ow);
        for p in 0..d.planes {
            let base = p * d.h * d.w;
            for oy in 0..oh {
                for ox in 0..ow {
                    let (max, ties) = max_and_ties(x, d.window(base, oy, ox));
                    // A NaN window has no ties: NaN, as the ops give.
                    y.push(if ties == 0 { f32::NAN } else { max });
                }
            }
        }
        let dims = layout.dims();
        Ok((CpuStorage::F32(y), Shape::from((dims[0], dims[1], oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(
            &grad.contiguous()?,
            &MaxPool2Backward,
        )?))
    }
}

/// The input's gradient: each window's gradient split evenly among its
/// maxima, zero elsewhere (and on dropped rows and columns).
struct MaxPool2Backward;

impl CustomOp2 for MaxPool2Backward {
    fn name(&self) -> &'static str {
        "lrtop-max-pool-2x2-backward"
    }

    fn cpu_fwd(
        &self,
        x_s: &CpuStorage,
        x_l: &Layout,
        g_s: &CpuStorage,
        g_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(x_l.dims())?;
        let x = contiguous_f32(x_s, x_l, "max pool input")?;
        let grad = contiguous_f32(g_s, g_l, "max pool gradient")?;
        let (oh, ow) = d.out();
        if grad.len() != d.planes * oh * ow {
            candle_core::bail!(
                "max pool: a gradient of {} values for {oh}x{ow}",
                grad.len()
            );
        }
        let mut gx = vec![0f32; x.len()];
        let mut g = grad.iter();
        for p in 0..d.planes {
            let base = p * d.h * d.w;
            for oy in 0..oh {
                for ox in 0..ow {
                    let at = d.window(base, oy, ox);
                    let (max, ties) = max_and_ties(x, at);
                    let share = g.next().copied().unwrap_or(0.0) / ties as f32;
                    for i in at {
                        gx[i] = if x[i] == max { share } else { share * 0.0 };
                    }
                }
            }
        }
        Ok((CpuStorage::F32(gx), x_l.shape().clone()))
    }
}
