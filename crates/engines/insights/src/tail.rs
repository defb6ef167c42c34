//! Upper-tail thresholds of a count under a negative binomial with mean `mean` and
//! variance `mean + overdispersion·mean²` (a Poisson when `overdispersion` is 0).

/// The smallest count `t` with `P(X ≥ t) ≤ tail`.
pub(crate) fn upper_threshold(mean: f64, overdispersion: f64, tail: f64) -> u32 {
    if mean.is_nan() || mean <= 0.0 {
        return 1;
    }
    if mean > 400.0 {
        return normal_threshold(mean, overdispersion, tail);
    }
    // pmf recurrence from 0: P(0), then P(x+1) = P(x)·(x+k)/(x+1)·mean/(k+mean)
    // (Poisson: P(x+1) = P(x)·mean/(x+1)).
    let poisson = overdispersion <= 1e-9;
    let k = if poisson { 0.0 } else { 1.0 / overdispersion };
    let mut pmf = if poisson {
        (-mean).exp()
    } else {
        (-k * (1.0 + mean / k).ln()).exp()
    };
    let ratio = if poisson { 0.0 } else { mean / (k + mean) };
    let mut below = 0.0f64; // P(X < x)
    let mut x = 0u32;
    loop {
        // P(X ≥ x) = 1 − P(X < x)
        if 1.0 - below <= tail {
            return x.max(1);
        }
        below += pmf;
        pmf *= if poisson {
            mean / f64::from(x + 1)
        } else {
            (f64::from(x) + k) / f64::from(x + 1) * ratio
        };
        x += 1;
        if x > 1_000_000 || (pmf == 0.0 && below < 1.0 - tail) {
            // The recurrence underflowed (a huge overdispersion): fall back.
            return normal_threshold(mean, overdispersion, tail).max(x);
        }
    }
}

/// Normal approximation with the Cornish-Fisher skewness term, for large means.
fn normal_threshold(mean: f64, overdispersion: f64, tail: f64) -> u32 {
    let z = normal_upper_quantile(tail);
    let variance = mean + overdispersion * mean * mean;
    let skewness = (1.0 + 2.0 * overdispersion * mean) / variance.sqrt();
    let quantile = mean + variance.sqrt() * (z + (z * z - 1.0) * skewness / 6.0);
    (quantile + 0.5).ceil().min(f64::from(u32::MAX)) as u32
}

/// `z` with `P(Z ≥ z) = tail` for a standard normal (Acklam's rational approximation of
/// the tail, accurate to ~1e-9 relative, plenty for a threshold).
fn normal_upper_quantile(tail: f64) -> f64 {
    let p = tail.clamp(1e-300, 0.5);
    let q = (-2.0 * p.ln()).sqrt();
    let c = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    let d = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let num = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5];
    let den = (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0;
    -(num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_thresholds_match_hand_computed_tails() {
        // λ = 0.0442: P(X≥4) ≈ 1.6e-7, P(X≥5) ≈ 1.4e-9.
        assert_eq!(upper_threshold(0.0442, 0.0, 1e-8), 5);
        assert_eq!(upper_threshold(0.0442, 0.0, 1e-6), 4);
        // λ = 10: P(X≥32) ≈ 2.5e-8, P(X≥33) ≈ 7.4e-9.
        assert_eq!(upper_threshold(10.0, 0.0, 1e-8), 33);
    }

    #[test]
    fn overdispersion_raises_the_threshold() {
        let poisson = upper_threshold(20.0, 0.0, 1e-8);
        let noisy = upper_threshold(20.0, 0.3, 1e-8);
        assert!(noisy > poisson * 2, "{noisy} vs {poisson}");
    }

    #[test]
    fn large_means_use_the_normal_approximation_continuously() {
        let below = upper_threshold(399.0, 0.0, 1e-8);
        let above = upper_threshold(401.0, 0.0, 1e-8);
        assert!(above >= below && above - below < 10, "{below} {above}");
        assert!((normal_upper_quantile(1e-8) - 5.612).abs() < 0.01);
    }
}
