//! Live values: the plant polled at a fixed rate, published as snapshots.

use chrono::{DateTime, Utc};
use remine_domain::ports::TagIo;
use remine_domain::{TagName, TagReading};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Every tag's latest reading at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub seq: u64,
    pub at: Option<DateTime<Utc>>,
    pub readings: Vec<TagReading>,
}

/// Publishes a [`Snapshot`] of all tags every `period`. Subscribers (the
/// HMI streams) get the newest snapshot; a slow subscriber skips snapshots
/// rather than slowing the scan.
#[derive(Debug, Clone)]
pub struct LiveValues {
    rx: watch::Receiver<Arc<Snapshot>>,
}

impl LiveValues {
    /// Starts polling `io` for `tags`; stops when every handle is dropped.
    pub fn start(io: Arc<dyn TagIo>, tags: Vec<TagName>, period: Duration) -> LiveValues {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut seq = 0;
            loop {
                tick.tick().await;
                let readings = io.read(&tags).await;
                seq += 1;
                let snap = Snapshot {
                    seq,
                    at: Some(Utc::now()),
                    readings,
                };
                if tx.send(Arc::new(snap)).is_err() {
                    break;
                }
            }
        });
        LiveValues { rx }
    }

    /// A source that never publishes (no plant connected).
    pub fn none() -> LiveValues {
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        LiveValues { rx }
    }

    pub fn latest(&self) -> Arc<Snapshot> {
        self.rx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }
}
