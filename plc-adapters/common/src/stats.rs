//! The communication counters of one link: requests, errors by kind, and a
//! round-trip-time histogram, cheap enough to update on every request.
//!
//! Counters are atomics. The histogram sits behind a mutex held for a few
//! additions, so a snapshot is always consistent: its buckets add up to its
//! count. Bucket bounds are fixed ([`RTT_BUCKETS_S`], 1 ms to 10 s), so every
//! link of every adapter can be compared and summed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the round-trip-time buckets, in seconds.
pub const RTT_BUCKETS_S: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No answer within the request timeout (or a connect that timed out).
    Timeout,
    /// The device answered with an exception (Modbus) or a bad status code
    /// for the whole request (OPC UA).
    Exception,
    /// The connection could not be opened or broke.
    Transport,
    /// A malformed or short answer.
    Protocol,
}

impl ErrorKind {
    /// Every kind, in the order [`LinkStats::errors`] lists them.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Timeout,
        ErrorKind::Exception,
        ErrorKind::Transport,
        ErrorKind::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Exception => "exception",
            ErrorKind::Transport => "transport",
            ErrorKind::Protocol => "protocol",
        }
    }

    fn index(self) -> usize {
        match self {
            ErrorKind::Timeout => 0,
            ErrorKind::Exception => 1,
            ErrorKind::Transport => 2,
            ErrorKind::Protocol => 3,
        }
    }
}

/// The histogram's state: a count per bucket (not cumulative; the last is
/// above the largest bound), and the sum.
#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; RTT_BUCKETS_S.len() + 1],
    sum_s: f64,
}

/// A consistent copy of a link's round-trip-time histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct RttSnapshot {
    /// Round trips at or below each bound of [`RTT_BUCKETS_S`] (cumulative).
    pub cumulative: Vec<u64>,
    pub sum_s: f64,
    pub count: u64,
}

/// The counters of one link.
#[derive(Debug, Default)]
pub struct LinkStats {
    requests: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    rtt: Mutex<Histogram>,
}

impl LinkStats {
    /// A request was sent (whatever its outcome).
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was answered after `rtt` (an exception is an answer too).
    pub fn answered(&self, rtt: Duration) {
        let s = rtt.as_secs_f64();
        let bucket = RTT_BUCKETS_S
            .iter()
            .position(|&bound| s <= bound)
            .unwrap_or(RTT_BUCKETS_S.len());
        let mut h = self.rtt.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = h.counts.get_mut(bucket) {
            *c += 1;
        }
        h.sum_s += s;
    }

    /// A request failed.
    pub fn error(&self, kind: ErrorKind) {
        if let Some(c) = self.errors.get(kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Failed requests by kind, every kind in [`ErrorKind::ALL`] order.
    pub fn errors(&self) -> Vec<(ErrorKind, u64)> {
        ErrorKind::ALL
            .iter()
            .zip(&self.errors)
            .map(|(&k, c)| (k, c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn rtt(&self) -> RttSnapshot {
        let h = self.rtt.lock().unwrap_or_else(|e| e.into_inner());
        let mut running = 0;
        let mut cumulative: Vec<u64> = h
            .counts
            .iter()
            .map(|c| {
                running += c;
                running
            })
            .collect();
        let count = cumulative.pop().unwrap_or(0);
        RttSnapshot {
            cumulative,
            sum_s: h.sum_s,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records round trips of `ms` and checks the cumulative buckets at
    /// 1 ms, 2.5 ms, 5 ms and 10 ms, and the count.
    fn check(ms: &[f64], first_four: [u64; 4], count: u64) {
        let stats = LinkStats::default();
        for &m in ms {
            stats.answered(Duration::from_secs_f64(m / 1000.0));
        }
        let rtt = stats.rtt();
        assert_eq!(rtt.cumulative.len(), RTT_BUCKETS_S.len());
        assert_eq!(rtt.cumulative.get(..4), Some(&first_four[..]), "{ms:?}");
        assert_eq!(rtt.count, count);
        assert!(rtt.cumulative.windows(2).all(|w| w[0] <= w[1]));
        let total: f64 = ms.iter().sum::<f64>() / 1000.0;
        assert!((rtt.sum_s - total).abs() < 1e-9, "{} vs {total}", rtt.sum_s);
    }

    #[test]
    fn a_round_trip_lands_in_the_first_bucket_at_or_above_it() {
        check(&[0.5], [1, 1, 1, 1], 1);
        check(&[1.0], [1, 1, 1, 1], 1);
        check(&[1.5], [0, 1, 1, 1], 1);
        check(&[7.0], [0, 0, 0, 1], 1);
    }

    #[test]
    fn buckets_are_cumulative_and_the_slowest_only_counts() {
        check(&[0.2, 3.0, 3.0, 20_000.0], [1, 1, 3, 3], 4);
    }

    #[test]
    fn errors_are_counted_by_kind_in_a_fixed_order() {
        let stats = LinkStats::default();
        stats.request();
        stats.request();
        stats.error(ErrorKind::Timeout);
        stats.error(ErrorKind::Transport);
        stats.error(ErrorKind::Transport);
        assert_eq!(stats.requests(), 2);
        assert_eq!(
            stats.errors(),
            vec![
                (ErrorKind::Timeout, 1),
                (ErrorKind::Exception, 0),
                (ErrorKind::Transport, 2),
                (ErrorKind::Protocol, 0),
            ]
        );
    }
}
