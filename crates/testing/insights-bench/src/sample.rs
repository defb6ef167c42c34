//! Samplers the generator needs (Poisson, gamma, negative binomial, normal), written out
//! so the stream for a seed depends only on `rand`'s `StdRng`.

use rand::rngs::StdRng;
use rand::Rng;

pub fn uniform(rng: &mut StdRng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.gen::<f64>()
}

pub fn log_uniform(rng: &mut StdRng, low: f64, high: f64) -> f64 {
    (low.ln() + (high.ln() - low.ln()) * rng.gen::<f64>()).exp()
}

pub fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(1e-300);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut sum = C[0];
    for (index, coefficient) in C.iter().enumerate().skip(1) {
        sum += coefficient / (x + index as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Poisson: Knuth's product method for small means, Hörmann's PTRS above.
pub fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut product: f64 = rng.gen();
        let mut count = 0;
        while product > limit {
            product *= rng.gen::<f64>();
            count += 1;
        }
        return count;
    }
    let sqrt = mean.sqrt();
    let log_mean = mean.ln();
    let b = 0.931 + 2.53 * sqrt;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = rng.gen::<f64>() - 0.5;
        let v: f64 = rng.gen();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln()
            <= -mean + k * log_mean - ln_gamma(k + 1.0)
        {
            return k as u64;
        }
    }
}

/// Gamma(shape, scale 1): Marsaglia and Tsang.
pub fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen::<f64>().max(1e-300);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.gen::<f64>().max(1e-300);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Negative binomial with mean `mean` and shape `k` (variance `mean + mean²/k`).
pub fn negative_binomial(rng: &mut StdRng, mean: f64, k: f64) -> u64 {
    let rate = gamma(rng, k) * mean / k;
    poisson(rng, rate)
}
