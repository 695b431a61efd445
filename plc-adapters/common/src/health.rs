//! The health of one link (a Modbus device, an OPC UA server), and its comms-loss alarm.
//!
//! Both adapters count the same way: a link is connected while it answers;
//! every failed attempt since the last answer counts; the last error and its
//! time are kept after recovery; a recovery counts only if the link had
//! answered before (the first connect is not a reconnect).
//!
//! The link is down from its first failure (a refused connect at start-up
//! counts; merely waiting for the first answer does not) until it answers
//! again. The comms-loss alarm is raised once it has been down for the
//! alarm delay, with that moment as its time, and cleared when it answers.

use chrono::{DateTime, Utc};
use std::time::{Duration, SystemTime};

/// What is known about one link. Each adapter copies it into its public
/// status type (`DeviceStatus`, `ServerStatus`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkHealth {
    connected: bool,
    ever_connected: bool,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    reconnects: u64,
    consecutive_failures: u32,
    alarm_delay: Duration,
    down_since: Option<SystemTime>,
    comms_alarm: Option<SystemTime>,
}

impl LinkHealth {
    /// A link whose comms-loss alarm is raised after `alarm_delay` down
    /// (zero: at the first failure).
    pub fn new(alarm_delay: Duration) -> LinkHealth {
        LinkHealth {
            alarm_delay,
            ..LinkHealth::default()
        }
    }

    /// The link answered. True when it was down until now: it came up, or
    /// back. Clears the comms-loss alarm.
    pub fn answered(&mut self) -> bool {
        let came_up = !self.connected;
        if came_up && self.ever_connected {
            self.reconnects += 1;
        }
        self.ever_connected = true;
        self.connected = true;
        self.consecutive_failures = 0;
        self.down_since = None;
        self.comms_alarm = None;
        came_up
    }

    /// A connection attempt or a request failed, or the link broke, at
    /// `now`. True when this is the first failure since the link last
    /// answered.
    pub fn failed_at(&mut self, why: String, now: SystemTime) -> bool {
        let first = self.consecutive_failures == 0;
        self.connected = false;
        self.last_error = Some(why);
        self.last_error_at = Some(DateTime::<Utc>::from(now));
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.down_since.get_or_insert(now);
        first
    }

    /// [`LinkHealth::failed_at`] now.
    pub fn failed(&mut self, why: String) -> bool {
        self.failed_at(why, SystemTime::now())
    }

    /// Raises the comms-loss alarm if the link has been down for the alarm
    /// delay by `now`; returns the alarm's time when it was raised by this call.
    pub fn raise_alarm_if_due(&mut self, now: SystemTime) -> Option<SystemTime> {
        if self.comms_alarm.is_some() {
            return None;
        }
        let due = self.down_since?.checked_add(self.alarm_delay)?;
        if due <= now {
            self.comms_alarm = Some(due);
            Some(due)
        } else {
            None
        }
    }

    /// When the comms-loss alarm was raised (the moment the link had been
    /// down for the alarm delay), while it is raised.
    pub fn comms_alarm(&self) -> Option<SystemTime> {
        self.comms_alarm
    }

    /// Since when the link has been down, while it is.
    pub fn down_since(&self) -> Option<SystemTime> {
        self.down_since
    }

    pub fn alarm_delay(&self) -> Duration {
        self.alarm_delay
    }

    /// The link was closed on purpose (shut down) or dropped without a
    /// failure to report.
    pub fn disconnected(&mut self) {
        self.connected = false;
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The most recent failure, kept after recovery.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn last_error_at(&self) -> Option<DateTime<Utc>> {
        self.last_error_at
    }

    /// Times the link came back after being lost.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Failed attempts since the link last answered.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `events` ('a' answered, 'f' failed, 'd' disconnected) and checks
    /// (connected, reconnects, consecutive failures).
    fn check(events: &str, expected: (bool, u64, u32)) {
        let mut h = LinkHealth::default();
        for (k, e) in events.chars().enumerate() {
            match e {
                'a' => {
                    h.answered();
                }
                'f' => {
                    h.failed(format!("failure {k}"));
                }
                _ => h.disconnected(),
            }
        }
        assert_eq!(
            (h.connected(), h.reconnects(), h.consecutive_failures()),
            expected,
            "{events}"
        );
    }

    #[test]
    fn a_new_link_is_down_and_has_no_history() {
        check("", (false, 0, 0));
    }

    #[test]
    fn the_first_answer_is_not_a_reconnect() {
        check("a", (true, 0, 0));
        check("fffa", (true, 0, 0));
        check("aaa", (true, 0, 0));
    }

    #[test]
    fn failures_count_until_the_next_answer() {
        check("aff", (false, 0, 2));
        check("affa", (true, 1, 0));
        check("affaffa", (true, 2, 0));
    }

    #[test]
    fn answering_again_after_a_disconnect_is_a_reconnect() {
        check("ada", (true, 1, 0));
    }

    /// Fails at t = 0 on a link with `delay_ms`, then asks at each of
    /// `asks_ms` whether the alarm is raised; expects the alarm's time (ms
    /// after the failure) or none at each.
    fn check_alarm(delay_ms: u64, asks_ms: &[u64], expected: &[Option<u64>]) {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ms = Duration::from_millis;
        let mut h = LinkHealth::new(ms(delay_ms));
        h.answered();
        h.failed_at("gone".into(), t0);
        let got: Vec<Option<u64>> = asks_ms
            .iter()
            .map(|&t| {
                h.raise_alarm_if_due(t0 + ms(t));
                h.comms_alarm()
                    .and_then(|a| a.duration_since(t0).ok())
                    .map(|d| d.as_millis() as u64)
            })
            .collect();
        assert_eq!(got, expected, "delay {delay_ms} ms, asked at {asks_ms:?}");
    }

    #[test]
    fn without_a_delay_the_alarm_is_raised_at_the_first_failure() {
        check_alarm(0, &[0, 5], &[Some(0), Some(0)]);
    }

    #[test]
    fn the_alarm_waits_for_the_delay_and_is_dated_when_it_ran_out() {
        check_alarm(
            500,
            &[0, 499, 500, 900],
            &[None, None, Some(500), Some(500)],
        );
        check_alarm(500, &[0, 2000], &[None, Some(500)]);
    }

    #[test]
    fn the_delay_counts_from_the_first_failure_not_the_last() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ms = Duration::from_millis;
        let mut h = LinkHealth::new(ms(300));
        h.failed_at("refused".into(), t0);
        h.failed_at("refused".into(), t0 + ms(200));
        assert_eq!(h.raise_alarm_if_due(t0 + ms(300)), Some(t0 + ms(300)));
        assert_eq!(h.raise_alarm_if_due(t0 + ms(400)), None, "raised once");
        assert_eq!(h.down_since(), Some(t0));
    }

    #[test]
    fn an_answer_clears_the_alarm_and_the_down_time() {
        let mut h = LinkHealth::new(Duration::ZERO);
        h.failed("refused".into());
        assert!(h.raise_alarm_if_due(SystemTime::now()).is_some());
        h.answered();
        assert_eq!((h.comms_alarm(), h.down_since()), (None, None));
        assert_eq!(h.raise_alarm_if_due(SystemTime::now()), None);
    }

    #[test]
    fn a_link_that_never_failed_raises_no_alarm() {
        let mut h = LinkHealth::new(Duration::ZERO);
        assert_eq!(h.raise_alarm_if_due(SystemTime::now()), None);
        h.answered();
        h.disconnected();
        assert_eq!(h.raise_alarm_if_due(SystemTime::now()), None);
    }

    #[test]
    fn only_the_first_failure_in_a_row_is_news_and_the_error_outlives_recovery() {
        let mut h = LinkHealth::default();
        assert!(h.answered(), "came up");
        assert!(!h.answered(), "was already up");
        assert!(h.failed("refused".into()));
        assert!(!h.failed("refused".into()));
        assert!(h.answered(), "came back");
        assert_eq!(h.last_error(), Some("refused"));
        assert!(h.last_error_at().is_some());
    }
}
