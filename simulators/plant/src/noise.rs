//! Seeded randomness: measurement noise, slow drifts and the draws of a batch.
//!
//! Every line owns one [`Noise`], seeded from the plant seed and the line's
//! own salt, so a line's trajectory does not depend on how much randomness
//! the other lines used.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded source of uniform draws, Gaussian noise and bounded drifts.
#[derive(Debug, Clone)]
pub struct Noise {
    rng: StdRng,
}

impl Noise {
    /// A source seeded by `seed` mixed with a per-line `salt`.
    pub fn new(seed: u64, salt: u64) -> Noise {
        let mixed = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Noise {
            rng: StdRng::seed_from_u64(mixed),
        }
    }

    /// An independent stream seeded from this one: draws that must not
    /// depend on how often the readings were sampled (a batch's yields)
    /// come from a fork taken at construction.
    pub fn fork(&mut self) -> Noise {
        Noise {
            rng: StdRng::seed_from_u64(self.rng.random()),
        }
    }

    /// A draw from the uniform distribution on `[lo, hi)`; `lo` when the
    /// range is empty.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if hi > lo {
            lo + (hi - lo) * self.rng.random::<f64>()
        } else {
            lo
        }
    }

    /// A draw from the normal distribution with mean 0 and standard
    /// deviation `sigma` (Box-Muller).
    pub fn gauss(&mut self, sigma: f64) -> f64 {
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random::<f64>();
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A slow, bounded random drift (an Ornstein-Uhlenbeck process): what makes
/// an idle reading wander a little instead of sitting still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    value: f64,
    sigma: f64,
    tau_s: f64,
}

impl Drift {
    /// A drift with stationary standard deviation `sigma` that forgets its
    /// past over `tau_s` simulated seconds.
    pub fn new(sigma: f64, tau_s: f64) -> Drift {
        Drift {
            value: 0.0,
            sigma,
            tau_s: tau_s.max(1.0),
        }
    }

    /// Advance by `dt` simulated seconds.
    pub fn step(&mut self, dt: f64, noise: &mut Noise) {
        let a = (-dt / self.tau_s).exp();
        let spread = self.sigma * (1.0 - a * a).max(0.0).sqrt();
        self.value = a * self.value + noise.gauss(spread);
    }

    pub fn value(&self) -> f64 {
        self.value
    }
}

/// A first-order lag: `y` moves toward `target` with time constant `tau_s`.
/// Exact for a constant target over the step, so it is stable for any `dt`.
pub fn first_order(y: f64, target: f64, tau_s: f64, dt: f64) -> f64 {
    if tau_s <= 0.0 {
        return target;
    }
    target + (y - target) * (-dt / tau_s).exp()
}
