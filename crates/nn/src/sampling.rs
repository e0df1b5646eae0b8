//! Drawing the next token from a model's logits: temperature and top-k.

use rand::Rng;
use tapegrad_tensor::Element;

/// Draws an index from `softmax(logits / temperature)`, restricted to the
/// `top_k` largest logits when given (ties at the cut-off all stay in).
/// `temperature = 0` returns the index of the largest logit (greedy; the
/// first one on ties).
///
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let logits = [1.0f32, 5.0, 2.0];
/// assert_eq!(tapegrad_nn::sample_token(&logits, 0.0, None, &mut rng)?, 1);
/// // top-1 is greedy at any temperature.
/// assert_eq!(tapegrad_nn::sample_token(&logits, 2.0, Some(1), &mut rng)?, 1);
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
/// A message if `logits` is empty, a logit is NaN, `temperature` is
/// negative or not finite, or `top_k` is `Some(0)`.
pub fn sample_token<T: Element>(
    logits: &[T],
    temperature: f64,
    top_k: Option<usize>,
    rng: &mut impl Rng,
) -> Result<usize, String> {
    if logits.is_empty() {
        return Err("sample_token: no logits".into());
    }
    if !(temperature >= 0.0 && temperature.is_finite()) {
        return Err(format!(
            "sample_token: temperature must be finite and ≥ 0, got {temperature}"
        ));
    }
    if top_k == Some(0) {
        return Err("sample_token: top_k must be at least 1".into());
    }
    let xs: Vec<f64> = logits.iter().map(|v| v.to_f64()).collect();
    if xs.iter().any(|v| v.is_nan()) {
        return Err("sample_token: a logit is NaN".into());
    }
    let argmax = (0..xs.len()).fold(0, |b, i| if xs[i] > xs[b] { i } else { b });
    if temperature == 0.0 {
        return Ok(argmax);
    }
    let cutoff = match top_k {
        Some(k) if k < xs.len() => {
            let mut sorted = xs.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            sorted[k - 1]
        }
        _ => f64::NEG_INFINITY,
    };
    let m = xs[argmax];
    let weights: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x >= cutoff {
                ((x - m) / temperature).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return Ok(i);
        }
        u -= w;
    }
    Ok(argmax)
}

#[cfg(test)]
mod tests {
    use super::sample_token;
    use rand::SeedableRng;

    #[test]
    fn temperature_and_top_k_shape_the_draws() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let logits = [0.0f64, 1.0, 2.0, 3.0];
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[sample_token(&logits, 1.0, Some(2), &mut rng).unwrap()] += 1;
        }
        // Only the top two are drawn, in ratio e:1 ≈ 2.72.
        assert_eq!(counts[0] + counts[1], 0);
        let r = counts[3] as f64 / counts[2] as f64;
        assert!((2.3..3.2).contains(&r), "{counts:?}");
        // A high temperature flattens the distribution.
        let mut hot = [0usize; 4];
        for _ in 0..4000 {
            hot[sample_token(&logits, 100.0, None, &mut rng).unwrap()] += 1;
        }
        assert!(hot.iter().all(|&c| c > 800), "{hot:?}");
        assert!(sample_token(&logits, -1.0, None, &mut rng).is_err());
        assert!(sample_token::<f64>(&[], 1.0, None, &mut rng).is_err());
    }
}
