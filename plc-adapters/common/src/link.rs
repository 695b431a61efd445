//! One link of an adapter (a Modbus device, an OPC UA server): its health,
//! its comms-loss alarm, and its counters, shared by the link's task, the
//! write path, `status()` and the metrics.
//!
//! The alarm is raised by whoever notices first that the link has been down
//! for the alarm delay: a failure (delay 0), `status()`/`device_stats()`, or
//! [`watch_alarms`], a task each adapter runs so the warning is logged on
//! time even while nobody asks. Its time is the moment the delay ran out,
//! whoever noticed. It is logged at warn when raised and at info when
//! cleared.

use crate::LinkHealth;
use crate::stats::{LinkStats, RTT_BUCKETS_S};
use remine_domain::ports::DeviceStats;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How often [`watch_alarms`] looks for links whose alarm delay ran out.
const ALARM_TICK: Duration = Duration::from_millis(50);

/// The shared state of one link.
#[derive(Debug)]
pub struct Link {
    kind: &'static str,
    name: String,
    health: Mutex<LinkHealth>,
    stats: LinkStats,
}

impl Link {
    /// `kind` is the protocol (`"modbus"`, `"opcua"`), `name` the device or
    /// server name; the alarm is raised after `alarm_delay` down.
    pub fn new(kind: &'static str, name: &str, alarm_delay: Duration) -> Link {
        Link {
            kind,
            name: name.to_string(),
            health: Mutex::new(LinkHealth::new(alarm_delay)),
            stats: LinkStats::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, LinkHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The link answered: true when it came up (or back). Clears the alarm.
    pub fn answered(&self) -> bool {
        let mut h = self.lock();
        let alarm = h.comms_alarm();
        let came_up = h.answered();
        drop(h);
        if let Some(raised) = alarm {
            let down_s = SystemTime::now()
                .duration_since(raised)
                .unwrap_or_default()
                .as_secs_f64();
            tracing::info!(
                kind = self.kind,
                device = %self.name,
                alarm_for_s = down_s,
                "comms-loss alarm cleared: the link answers again"
            );
        }
        came_up
    }

    /// A connect or request failed, or the link broke: true for the first
    /// failure since the link last answered. Raises the alarm at once when
    /// its delay is zero.
    pub fn failed(&self, why: String) -> bool {
        let mut h = self.lock();
        let first = h.failed(why);
        self.raise_if_due(&mut h);
        first
    }

    /// The link was closed on purpose, or dropped without a failure to report.
    pub fn disconnected(&self) {
        self.lock().disconnected();
    }

    /// Raises the alarm if it is due, and logs it.
    pub fn check_alarm(&self) {
        let mut h = self.lock();
        self.raise_if_due(&mut h);
    }

    fn raise_if_due(&self, h: &mut LinkHealth) {
        if let Some(raised) = h.raise_alarm_if_due(SystemTime::now()) {
            tracing::warn!(
                kind = self.kind,
                device = %self.name,
                delay_ms = h.alarm_delay().as_millis() as u64,
                raised_at = %chrono::DateTime::<chrono::Utc>::from(raised),
                why = h.last_error().unwrap_or(""),
                "comms-loss alarm raised: the link is down"
            );
        }
    }

    /// A copy of the health, with the alarm brought up to date.
    pub fn health(&self) -> LinkHealth {
        let mut h = self.lock();
        self.raise_if_due(&mut h);
        h.clone()
    }

    /// The counters, to count requests, errors and round trips.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// What a monitoring system scrapes of this link.
    pub fn device_stats(&self) -> DeviceStats {
        let health = self.health();
        let rtt = self.stats.rtt();
        DeviceStats {
            kind: self.kind,
            device: self.name.clone(),
            connected: health.connected(),
            comms_alarm: health.comms_alarm().is_some(),
            reconnects: health.reconnects(),
            requests: self.stats.requests(),
            errors: self
                .stats
                .errors()
                .into_iter()
                .map(|(k, n)| (k.as_str(), n))
                .collect(),
            rtt_bucket_bounds_s: RTT_BUCKETS_S.to_vec(),
            rtt_bucket_counts: rtt.cumulative,
            rtt_sum_s: rtt.sum_s,
            rtt_count: rtt.count,
        }
    }
}

/// Raises the alarms of `links` as their delays run out; runs until dropped
/// (each adapter runs it as one of its tasks).
pub async fn watch_alarms(links: &[&Link]) {
    let mut tick = tokio::time::interval(ALARM_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for link in links {
            link.check_alarm();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ErrorKind;

    #[test]
    fn the_stats_carry_the_link_state_and_every_counter() {
        let link = Link::new("modbus", "plc", Duration::ZERO);
        link.stats().request();
        link.stats().answered(Duration::from_millis(3));
        link.stats().request();
        link.stats().error(ErrorKind::Timeout);
        link.failed("no answer".into());
        let s = link.device_stats();
        assert_eq!((s.kind, s.device.as_str()), ("modbus", "plc"));
        assert_eq!((s.connected, s.comms_alarm), (false, true));
        assert_eq!((s.requests, s.errors_total(), s.rtt_count), (2, 1, 1));
        assert_eq!(s.errors.first(), Some(&("timeout", 1)));
        assert_eq!(s.rtt_bucket_bounds_s.len(), s.rtt_bucket_counts.len());
        assert_eq!(s.rtt_bucket_counts.get(..3), Some(&[0, 0, 1][..]));
        link.answered();
        let s = link.device_stats();
        assert_eq!((s.connected, s.comms_alarm), (true, false));
    }

    #[tokio::test]
    async fn the_watcher_raises_an_alarm_when_its_delay_runs_out() {
        let link = Link::new("opcua", "dcs", Duration::from_millis(100));
        link.failed("refused".into());
        assert!(link.lock().comms_alarm().is_none(), "not yet");
        let links = [&link];
        let _ = tokio::time::timeout(Duration::from_millis(300), watch_alarms(&links)).await;
        let h = link.lock().clone();
        let (Some(down), Some(alarm)) = (h.down_since(), h.comms_alarm()) else {
            panic!("no alarm after 300 ms: {h:?}");
        };
        assert_eq!(
            alarm.duration_since(down).ok(),
            Some(Duration::from_millis(100))
        );
    }
}
