//! Matrix products on strided row-major views of slices, for the layers' CPU passes.

/// A matrix view: element (r, c) at `r * row_stride + c * col_stride` of its slice.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub row_stride: usize,
    pub col_stride: usize,
}

/// Row-major with `cols` columns.
pub const fn rows(cols: usize) -> View {
    View { row_stride: cols, col_stride: 1 }
}

/// The transpose of a row-major matrix with `cols` columns.
pub const fn transposed(cols: usize) -> View {
    View { row_stride: 1, col_stride: cols }
}

/// Whether a product may split its output over rayon's threads. Either way every output value
/// is summed in the same order, so results do not depend on the number of threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    One,
    Pool,
}

/// `dst = lhs * rhs`, or `dst += lhs * rhs` with `accumulate`; `(m, n, k)`: lhs is m x k,
/// rhs k x n. Panics when a view reaches outside its slice.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_view: View,
    accumulate: bool,
    lhs: &[f32],
    lhs_view: View,
    rhs: &[f32],
    rhs_view: View,
    threads: Threads,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, v: View| (rows - 1) * v.row_stride + (cols - 1) * v.col_stride;
    assert!(last(m, n, dst_view) < dst.len(), "matmul: dst view out of bounds");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst[r * dst_view.row_stride + c * dst_view.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    assert!(last(m, k, lhs_view) < lhs.len(), "matmul: lhs view out of bounds");
    assert!(last(k, n, rhs_view) < rhs.len(), "matmul: rhs view out of bounds");
    let parallelism = match threads {
        Threads::Pool if rayon::current_num_threads() > 1 && m * n * k >= 1 << 16 => {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        }
        _ => gemm::Parallelism::None,
    };
    // SAFETY: the asserts above keep every element of the three views inside its slice; `dst`
    // is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_view.col_stride as isize,
            dst_view.row_stride as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_view.col_stride as isize,
            lhs_view.row_stride as isize,
            rhs.as_ptr(),
            rhs_view.col_stride as isize,
            rhs_view.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `x W^T` for `x` (rows x in) and a Linear layer's `W` (out x in), row-major: rows x out.
pub fn linear(x: &[f32], weight: &[f32], (rows_n, out, in_dim): (usize, usize, usize), threads: Threads) -> Vec<f32> {
    let mut y = vec![0f32; rows_n * out];
    matmul((rows_n, out, in_dim), &mut y, rows(out), false, x, rows(in_dim), weight, transposed(in_dim), threads);
    y
}

/// The weight gradient of [`linear`]: `d_y^T x`, out x in.
pub fn linear_weight_grad(
    d_y: &[f32],
    x: &[f32],
    (rows_n, out, in_dim): (usize, usize, usize),
    threads: Threads,
) -> Vec<f32> {
    let mut d_w = vec![0f32; out * in_dim];
    matmul((out, in_dim, rows_n), &mut d_w, rows(in_dim), false, d_y, transposed(out), x, rows(in_dim), threads);
    d_w
}

/// The input gradient of [`linear`]: `d_y W`, rows x in.
pub fn linear_input_grad(
    d_y: &[f32],
    weight: &[f32],
    (rows_n, out, in_dim): (usize, usize, usize),
    threads: Threads,
) -> Vec<f32> {
    let mut d_x = vec![0f32; rows_n * in_dim];
    matmul((rows_n, in_dim, out), &mut d_x, rows(in_dim), false, d_y, rows(out), weight, rows(in_dim), threads);
    d_x
}

/// Column sums of a (rows x cols) matrix, accumulated in f64.
pub fn column_sums(values: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0f64; cols];
    for row in values.chunks_exact(cols) {
        for (acc, v) in sums.iter_mut().zip(row) {
            *acc += *v as f64;
        }
    }
    sums.into_iter().map(|s| s as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_products_match_loops() {
        // lhs 3 x 4 transposed view of a 4 x 3 buffer, rhs 4 x 2 row-major.
        let lhs_t: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
        let rhs: Vec<f32> = (0..8).map(|v| 1.0 - v as f32 * 0.25).collect();
        let mut dst = vec![1.0f32; 6];
        matmul((3, 2, 4), &mut dst, rows(2), true, &lhs_t, transposed(3), &rhs, rows(2), Threads::One);
        for r in 0..3 {
            for c in 0..2 {
                let want: f32 = 1.0 + (0..4).map(|k| lhs_t[k * 3 + r] * rhs[k * 2 + c]).sum::<f32>();
                assert!((dst[r * 2 + c] - want).abs() < 1e-5, "({r}, {c}): {} vs {want}", dst[r * 2 + c]);
            }
        }
    }
}
