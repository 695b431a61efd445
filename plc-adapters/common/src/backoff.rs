//! Capped exponential backoff with jitter, for reconnecting to a device or server.
//!
//! Each delay is drawn between half and all of the current step; the step
//! doubles from `min` up to `max` and returns to `min` after a success. The
//! jitter keeps many adapters from reconnecting to one gateway or server in
//! lockstep. A rejection (an OPC UA server refusing a password or a
//! certificate) can jump straight to the cap: retrying it quickly only fills
//! the server's audit log.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The delays between reconnect attempts of one link.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Starts at `min`; a `max` below `min` is taken as `min`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            step: min,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(unit_random())
    }

    /// After a success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.step = self.min;
    }

    /// Retry slowly from now on, until the next [`Backoff::reset`].
    pub fn slow_down(&mut self) {
        self.step = self.max;
    }
}

/// A number in [0, 1) from the standard library's randomly keyed hasher:
/// good enough for jitter, and no extra dependency.
fn unit_random() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(min_ms: u64, max_ms: u64, steps: &[u64]) {
        let mut b = Backoff::new(Duration::from_millis(min_ms), Duration::from_millis(max_ms));
        for &step in steps {
            let d = b.next_delay();
            let step = Duration::from_millis(step);
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} not within half of {step:?}"
            );
        }
    }

    #[test]
    fn delays_double_from_min_to_the_cap() {
        check(
            100,
            10_000,
            &[100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000],
        );
    }

    #[test]
    fn a_cap_below_the_minimum_is_the_minimum() {
        check(300, 100, &[300, 300, 300]);
    }

    #[test]
    fn reset_starts_again_at_min() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn a_rejection_jumps_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(4000));
        b.slow_down();
        assert!(b.next_delay() >= Duration::from_millis(2000));
    }
}
