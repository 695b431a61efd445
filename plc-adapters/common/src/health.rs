//! The health of one link (a Modbus device, an OPC UA server), for a comms-loss alarm.
//!
//! Both adapters count the same way: a link is connected while it answers;
//! every failed attempt since the last answer counts; the last error and its
//! time are kept after recovery; a recovery counts only if the link had
//! answered before (the first connect is not a reconnect).

use chrono::{DateTime, Utc};

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
}

impl LinkHealth {
    /// The link answered. True when it was down until now: it came up, or back.
    pub fn answered(&mut self) -> bool {
        let came_up = !self.connected;
        if came_up && self.ever_connected {
            self.reconnects += 1;
        }
        self.ever_connected = true;
        self.connected = true;
        self.consecutive_failures = 0;
        came_up
    }

    /// A connection attempt or a request failed, or the link broke. True when
    /// this is the first failure since the link last answered.
    pub fn failed(&mut self, why: String) -> bool {
        let first = self.consecutive_failures == 0;
        self.connected = false;
        self.last_error = Some(why);
        self.last_error_at = Some(Utc::now());
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        first
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
