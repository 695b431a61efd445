//! The one simulation clock: a fixed wall tick, a speed factor, and the
//! sub-steps that keep the models' explicit integration stable.

use std::time::Duration;

/// The wall-clock period of one simulation tick.
pub const TICK: Duration = Duration::from_millis(50);

/// The largest step, in simulated seconds, any model is integrated with.
/// The fastest dynamics in the models (the CV loop of a discharge station,
/// time constant about 4 s) stay well resolved at this step.
pub const MAX_STEP_S: f64 = 1.0;

/// Simulated time, advanced tick by tick at `speed` times wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimClock {
    speed: f64,
    now_s: f64,
}

impl SimClock {
    /// A clock at simulated time zero running `speed` times faster than wall time.
    pub fn new(speed: f64) -> SimClock {
        SimClock { speed, now_s: 0.0 }
    }

    /// Simulated seconds since start.
    pub fn now_s(&self) -> f64 {
        self.now_s
    }

    /// Advance by one wall tick; returns the simulated seconds the tick covers.
    pub fn tick(&mut self) -> f64 {
        let dt = TICK.as_secs_f64() * self.speed;
        self.now_s += dt;
        dt
    }
}

/// Split `dt` simulated seconds into equal sub-steps of at most `max_step`.
pub fn substeps(dt: f64, max_step: f64) -> impl Iterator<Item = f64> {
    let n = if dt > 0.0 && max_step > 0.0 {
        (dt / max_step).ceil().max(1.0) as usize
    } else {
        0
    };
    let h = if n > 0 { dt / n as f64 } else { 0.0 };
    std::iter::repeat_n(h, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dt: f64, max: f64, count: usize) {
        let steps: Vec<f64> = substeps(dt, max).collect();
        assert_eq!(steps.len(), count, "{dt} / {max}");
        let sum: f64 = steps.iter().sum();
        assert!((sum - dt).abs() < 1e-9, "{dt}: {sum}");
        assert!(steps.iter().all(|h| *h <= max + 1e-12));
    }

    #[test]
    fn large_ticks_are_split_into_steps_no_longer_than_the_maximum() {
        check(0.05, 1.0, 1);
        check(1.0, 1.0, 1);
        check(30.0, 1.0, 30);
        check(300.5, 1.0, 301);
        check(0.0, 1.0, 0);
    }

    #[test]
    fn the_clock_runs_speed_times_faster_than_the_wall_tick() {
        let mut c = SimClock::new(600.0);
        assert!((c.tick() - 30.0).abs() < 1e-9);
        assert!((c.now_s() - 30.0).abs() < 1e-9);
    }
}
