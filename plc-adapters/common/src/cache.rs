//! The reading cache: the last value, quality and timestamps of every tag.
//!
//! The adapters' pollers, subscriptions and write paths fill it and `read`
//! serves from it, so a read never waits for a device. A bad quality keeps
//! the last value (stale). `source_time` stays with the value: when it was
//! fetched (Modbus) or the server's source timestamp (OPC UA).
//! `server_time` is when the entry last changed in remine: for a good value
//! when it was received, for a bad one since when it has been bad.

use chrono::{DateTime, Utc};
use remine_domain::{BadReason, Quality, TagName, TagReading, TagValue};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone)]
struct Entry {
    value: Option<TagValue>,
    quality: Quality,
    source_time: Option<DateTime<Utc>>,
    server_time: DateTime<Utc>,
}

/// The readings of one adapter's tags, addressed by their position in the tag map.
#[derive(Debug)]
pub struct Cache {
    index: HashMap<TagName, usize>,
    entries: Mutex<Vec<Entry>>,
}

impl Cache {
    /// A cache of `tags` (the tag map's names, in order: a tag's position is
    /// its index), all waiting for their first value.
    pub fn new(tags: impl IntoIterator<Item = TagName>) -> Cache {
        let index: HashMap<TagName, usize> = tags
            .into_iter()
            .enumerate()
            .map(|(i, tag)| (tag, i))
            .collect();
        let entry = Entry {
            value: None,
            quality: Quality::Bad(BadReason::WaitingForInitialData),
            source_time: None,
            server_time: Utc::now(),
        };
        Cache {
            entries: Mutex::new(vec![entry; index.len()]),
            index,
        }
    }

    /// The index of a tag, or `None` for a tag this adapter does not serve.
    pub fn index(&self, tag: &TagName) -> Option<usize> {
        self.index.get(tag).copied()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic elsewhere while holding the lock leaves plain data behind;
        // serving it is better than failing every read.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Good values fetched at `at` (a device without timestamps of its own).
    pub fn set_good(&self, values: impl IntoIterator<Item = (usize, TagValue)>, at: DateTime<Utc>) {
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

    /// A value with the quality and source timestamp a server gave it; with
    /// `None` only the quality changes and the last value stays.
    pub fn update(
        &self,
        i: usize,
        value: Option<TagValue>,
        quality: Quality,
        source_time: Option<DateTime<Utc>>,
    ) {
        self.update_all([(i, value, quality, source_time)]);
    }

    /// Several [`Cache::update`]s under one lock, all received now (a
    /// subscription's publish response).
    pub fn update_all(
        &self,
        updates: impl IntoIterator<Item = (usize, Option<TagValue>, Quality, Option<DateTime<Utc>>)>,
    ) {
        let now = Utc::now();
        let mut entries = self.lock();
        for (i, value, quality, source_time) in updates {
            if let Some(e) = entries.get_mut(i) {
                if value.is_some() {
                    e.value = value;
                    e.source_time = source_time;
                }
                e.quality = quality;
                e.server_time = now;
            }
        }
    }

    /// Marks tags bad, keeping their last value as stale. A tag already bad
    /// for the same reason keeps its `server_time` (bad since then).
    pub fn set_bad(&self, tags: impl IntoIterator<Item = usize>, reason: &BadReason) {
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

    /// One reading per requested tag, in order; a tag this adapter does not
    /// serve reads `Bad(ConfigurationError)`.
    pub fn readings(&self, tags: &[TagName]) -> Vec<TagReading> {
        let entries = self.lock();
        let now = Utc::now();
        tags.iter()
            .map(|tag| match self.index(tag).and_then(|i| entries.get(i)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const WAITING: Quality = Quality::Bad(BadReason::WaitingForInitialData);

    fn name(s: &str) -> TagName {
        TagName::parse(s).expect("tag name")
    }

    fn cache() -> Cache {
        Cache::new([name("L/U/A"), name("L/U/B")])
    }

    fn read(cache: &Cache, tag: &str) -> TagReading {
        cache.readings(&[name(tag)]).remove(0)
    }

    /// The value and quality `tag` reads.
    fn check(cache: &Cache, tag: &str, value: Option<TagValue>, quality: Quality) {
        let r = read(cache, tag);
        assert_eq!((r.value, r.quality), (value, quality), "{tag}");
    }

    #[test]
    fn every_tag_waits_for_its_first_value() {
        let c = cache();
        check(&c, "L/U/A", None, WAITING);
        check(&c, "L/U/B", None, WAITING);
    }

    #[test]
    fn a_good_value_carries_the_time_it_was_fetched() {
        let c = cache();
        let at = Utc::now() - TimeDelta::seconds(5);
        c.set_good([(1, TagValue::Int(7))], at);
        check(&c, "L/U/B", Some(TagValue::Int(7)), Quality::Good);
        let r = read(&c, "L/U/B");
        assert_eq!((r.source_time, r.server_time), (Some(at), at));
        check(&c, "L/U/A", None, WAITING);
    }

    #[test]
    fn a_bad_quality_keeps_the_last_value_as_stale() {
        let c = cache();
        let at = Utc::now() - TimeDelta::seconds(5);
        c.set_good([(0, TagValue::Float(1.5))], at);
        c.set_bad([0], &BadReason::NotConnected);
        let r = read(&c, "L/U/A");
        assert_eq!(r.value, Some(TagValue::Float(1.5)));
        assert_eq!(r.quality, Quality::Bad(BadReason::NotConnected));
        assert_eq!(r.good_value(), None);
        assert_eq!(r.source_time, Some(at), "the value keeps its age");
        assert!(r.server_time > at, "bad since now");
    }

    #[test]
    fn the_same_bad_reason_again_keeps_the_time_it_turned_bad() {
        let c = cache();
        c.set_bad([0], &BadReason::Timeout);
        let since = read(&c, "L/U/A").server_time;
        std::thread::sleep(std::time::Duration::from_millis(5));
        c.set_bad([0], &BadReason::Timeout);
        assert_eq!(read(&c, "L/U/A").server_time, since);
        c.set_bad([0], &BadReason::NotConnected);
        assert!(
            read(&c, "L/U/A").server_time > since,
            "a new reason restarts it"
        );
    }

    #[test]
    fn an_update_without_a_value_changes_only_the_quality() {
        let c = cache();
        let source = Utc::now() - TimeDelta::seconds(60);
        c.update(0, Some(TagValue::Int(3)), Quality::Good, Some(source));
        let uncertain = Quality::Uncertain("UncertainLastUsableValue".into());
        c.update(0, None, uncertain.clone(), None);
        let r = read(&c, "L/U/A");
        assert_eq!((r.value, r.quality), (Some(TagValue::Int(3)), uncertain));
        assert_eq!(r.source_time, Some(source));
    }

    #[test]
    fn updates_of_one_response_land_together_and_a_missing_value_keeps_the_last() {
        let c = cache();
        let source = Utc::now() - TimeDelta::seconds(1);
        c.update(1, Some(TagValue::Int(5)), Quality::Good, Some(source));
        let uncertain = Quality::Uncertain("UncertainLastUsableValue".into());
        c.update_all([
            (0, Some(TagValue::Float(2.5)), Quality::Good, Some(source)),
            (1, None, uncertain.clone(), None),
            (7, Some(TagValue::Int(1)), Quality::Good, None),
        ]);
        check(&c, "L/U/A", Some(TagValue::Float(2.5)), Quality::Good);
        check(&c, "L/U/B", Some(TagValue::Int(5)), uncertain);
        let (a, b) = (read(&c, "L/U/A"), read(&c, "L/U/B"));
        assert_eq!(a.server_time, b.server_time, "received together");
        assert_eq!((a.source_time, b.source_time), (Some(source), Some(source)));
    }

    #[test]
    fn readings_follow_the_request_and_name_unknown_tags() {
        let c = cache();
        let readings = c.readings(&[name("L/U/B"), name("L/U/Nowhere"), name("L/U/A")]);
        let tags: Vec<&str> = readings.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(tags, ["L/U/B", "L/U/Nowhere", "L/U/A"]);
        assert_eq!(
            readings[1].quality,
            Quality::Bad(BadReason::ConfigurationError(
                "tag L/U/Nowhere is not in this adapter's tag map".into()
            ))
        );
        assert_eq!(
            (c.index(&name("L/U/A")), c.index(&name("L/U/Nowhere"))),
            (Some(0), None)
        );
    }
}
