//! The reading cache: the last value, quality and timestamps of every tag.
//!
//! Pollers write it, `read` serves from it, so a read never waits for a
//! device. A bad quality keeps the last value (stale); `server_time` is when
//! the entry last changed (for a bad entry: since when it has been bad), and
//! `source_time` is when the value was fetched from the device.

use chrono::{DateTime, Utc};
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone)]
struct Entry {
    value: Option<TagValue>,
    quality: Quality,
    source_time: Option<DateTime<Utc>>,
    server_time: DateTime<Utc>,
}

#[derive(Debug)]
pub(crate) struct Cache {
    entries: Mutex<Vec<Entry>>,
}

impl Cache {
    /// A cache of `n` tags, all waiting for their first value.
    pub(crate) fn new(n: usize) -> Cache {
        let entry = Entry {
            value: None,
            quality: Quality::Bad(BadReason::WaitingForInitialData),
            source_time: None,
            server_time: Utc::now(),
        };
        Cache {
            entries: Mutex::new(vec![entry; n]),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic elsewhere while holding the lock leaves plain data behind;
        // serving it is better than failing every read.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Good values fetched at `at`.
    pub(crate) fn set_good(
        &self,
        values: impl IntoIterator<Item = (usize, TagValue)>,
        at: DateTime<Utc>,
    ) {
        let mut entries = self.lock();
        for (i, value) in values {
            if let Some(e) = entries.get_mut(i) {
                *e = Entry {
                    value: Some(value),
                    quality: Quality::Good,
                    source_time: Some(at),
                    server_time: at,
                };
            }
        }
    }

    /// Marks tags bad, keeping their last value as stale.
    pub(crate) fn set_bad(&self, tags: impl IntoIterator<Item = usize>, reason: &BadReason) {
        let now = Utc::now();
        let quality = Quality::Bad(reason.clone());
        let mut entries = self.lock();
        for i in tags {
            if let Some(e) = entries.get_mut(i)
                && e.quality != quality
            {
                e.quality = quality.clone();
                e.server_time = now;
            }
        }
    }

    /// Readings for tags looked up by index; `None` is a tag this adapter does not serve.
    pub(crate) fn readings(
        &self,
        tags: &[TagName],
        index: impl Fn(&TagName) -> Option<usize>,
    ) -> Vec<TagReading> {
        let entries = self.lock();
        let now = Utc::now();
        tags.iter()
            .map(|tag| match index(tag).and_then(|i| entries.get(i)) {
                Some(e) => TagReading {
                    tag: tag.clone(),
                    value: e.value,
                    quality: e.quality.clone(),
                    source_time: e.source_time,
                    server_time: e.server_time,
                },
                None => TagReading {
                    tag: tag.clone(),
                    value: None,
                    quality: Quality::Bad(BadReason::ConfigurationError(format!(
                        "tag {tag} is not in this adapter's tag map"
                    ))),
                    source_time: None,
                    server_time: now,
                },
            })
            .collect()
    }
}
