//! Reading a custom op's CPU input as a plain slice.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Result, Tensor};

/// Whether the CPU loops of lrtop's custom ops can take `x`: f32 on the
/// CPU (anything else goes through Candle's ops).
pub(super) fn on_cpu_f32(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// The largest absolute difference of two tensors' values, for the tests
/// that hold a custom op to the Candle ops it replaces.
#[cfg(test)]
pub(super) fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

/// The f32 values of a contiguous tensor's storage; `what` names it in the
/// error for anything else (the callers make their inputs contiguous f32).
pub(super) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{what}: expected f32, found {:?}", storage.dtype());
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}
