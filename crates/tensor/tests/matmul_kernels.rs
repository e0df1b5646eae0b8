//! The GEMM-crate path (large products) and the simple path (small ones)
//! against a naive triple loop, on row-major, transposed and sliced operands.

use tapegrad_tensor::Tensor;

fn naive(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    // Logical (row-major) copies: the reference does not share the
    // kernels' strided reads.
    let (av, bv) = (a.to_vec(), b.to_vec());
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += av[i * k + p] * bv[p * n + j];
            }
        }
    }
    c
}

fn close(x: &[f64], y: &[f64]) {
    assert_eq!(x.len(), y.len());
    for (i, (a, b)) in x.iter().zip(y).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
            "element {i}: {a} vs {b}"
        );
    }
}

/// (m, k, n) of the products checked: small ones (simple kernel), then
/// ones large enough to run on several threads.
const PRODUCTS: &[(usize, usize, usize)] = &[
    (3, 4, 5),
    (70, 65, 90),
    (128, 33, 7),
    (1, 200, 300),
    (150, 100, 150),
    (151, 100, 149),
    (200, 130, 200),
    (97, 120, 333),
    (40, 60, 1000),
];

#[test]
fn large_and_small_products_match_naive_on_strided_inputs() {
    // From (150, 100, 150) on, the product is cut between the threads,
    // each running the GEMM crate alone: by rows when m ≥ n, else by
    // column blocks (the last one narrower: 333 = 192 + 141).
    for &(m, k, n) in PRODUCTS {
        let a = Tensor::<f64>::randn_seeded(&[m, k], 1);
        let b = Tensor::<f64>::randn_seeded(&[k, n], 2);
        close(&a.matmul(&b).unwrap().to_vec(), &naive(&a, &b));
        // Transposed operands, used in place.
        let at = Tensor::<f64>::randn_seeded(&[k, m], 3).t().unwrap();
        let bt = Tensor::<f64>::randn_seeded(&[n, k], 4).t().unwrap();
        close(&at.matmul(&bt).unwrap().to_vec(), &naive(&at, &bt));
        // A column-sliced operand (row stride larger than its width).
        let wide = Tensor::<f64>::randn_seeded(&[m, k + 5], 5);
        let sliced = wide.narrow(1, 2, k).unwrap();
        close(&sliced.matmul(&b).unwrap().to_vec(), &naive(&sliced, &b));
    }
}

#[test]
fn products_cut_between_three_threads_match_naive() {
    // On a 3-thread rayon pool the cut has three pieces (700 columns:
    // 256 + 256 + 188; 500 rows: 167 + 167 + 166).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    pool.install(|| {
        for &(m, k, n) in &[(64, 100, 700), (500, 40, 120)] {
            let a = Tensor::<f64>::randn_seeded(&[m, k], 6);
            let bt = Tensor::<f64>::randn_seeded(&[n, k], 7).t().unwrap();
            close(&a.matmul(&bt).unwrap().to_vec(), &naive(&a, &bt));
        }
    });
}

#[test]
fn f32_large_product_matches_f64() {
    let a = Tensor::<f64>::randn_seeded(&[64, 300], 1);
    let b = Tensor::<f64>::randn_seeded(&[300, 80], 2);
    let c32 = a.cast::<f32>().matmul(&b.cast::<f32>()).unwrap().to_vec();
    let c64 = naive(&a, &b);
    for (x, y) in c32.iter().zip(&c64) {
        assert!((*x as f64 - y).abs() < 1e-3 * (1.0 + y.abs()));
    }
}

#[test]
fn empty_inner_dimension_gives_zeros() {
    let a = Tensor::<f32>::zeros(&[300, 0]);
    let b = Tensor::<f32>::zeros(&[0, 200]);
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.shape(), &[300, 200]);
    assert!(c.to_vec().iter().all(|&x| x == 0.0));
}
