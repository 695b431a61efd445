//! The historian's rules: what a stored sample is, which readings of a tag
//! are worth keeping (deadband, maximum interval, quality changes), and the
//! shape of a downsampled bucket.
//!
//! [`Recorder`] is a pure filter: readings go in, the [`Sample`]s to store
//! come out. A reading is kept when it is the tag's first, when its quality
//! differs from the last kept sample's, when its value moved by more than
//! the tag's deadband from the last kept value, or when the tag's maximum
//! interval has passed since the last kept sample. A reading no later than
//! the last kept sample (a cache read twice) is never kept.

use crate::{DomainError, Quality, TagName, TagReading};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// A value's quality as the historian stores it: one small code per
/// reading, after the OPC UA status classes and [`crate::BadReason`]'s
/// kinds. Codes grow with severity, so the largest code of a bucket is its
/// worst quality. The text of an uncertain or bad reason is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SampleQuality {
    Good,
    Uncertain,
    BadWaitingForInitialData,
    BadConfigurationError,
    BadDeviceFailure,
    BadTimeout,
    BadCommunicationError,
    BadNotConnected,
}

impl SampleQuality {
    const ALL: [SampleQuality; 8] = [
        SampleQuality::Good,
        SampleQuality::Uncertain,
        SampleQuality::BadWaitingForInitialData,
        SampleQuality::BadConfigurationError,
        SampleQuality::BadDeviceFailure,
        SampleQuality::BadTimeout,
        SampleQuality::BadCommunicationError,
        SampleQuality::BadNotConnected,
    ];

    /// The stored code: 0 good, 1 uncertain, 2 and up bad.
    pub fn code(self) -> i16 {
        match self {
            SampleQuality::Good => 0,
            SampleQuality::Uncertain => 1,
            SampleQuality::BadWaitingForInitialData => 2,
            SampleQuality::BadConfigurationError => 3,
            SampleQuality::BadDeviceFailure => 4,
            SampleQuality::BadTimeout => 5,
            SampleQuality::BadCommunicationError => 6,
            SampleQuality::BadNotConnected => 7,
        }
    }

    /// A stored code back; `None` for a code no version ever wrote.
    pub fn from_code(code: i16) -> Option<SampleQuality> {
        SampleQuality::ALL.into_iter().find(|q| q.code() == code)
    }

    pub fn is_bad(self) -> bool {
        self.code() >= 2
    }
}

impl From<&Quality> for SampleQuality {
    fn from(q: &Quality) -> SampleQuality {
        use crate::BadReason as B;
        match q {
            Quality::Good => SampleQuality::Good,
            Quality::Uncertain(_) => SampleQuality::Uncertain,
            Quality::Bad(B::WaitingForInitialData) => SampleQuality::BadWaitingForInitialData,
            Quality::Bad(B::ConfigurationError(_)) => SampleQuality::BadConfigurationError,
            Quality::Bad(B::DeviceFailure(_)) => SampleQuality::BadDeviceFailure,
            Quality::Bad(B::Timeout) => SampleQuality::BadTimeout,
            Quality::Bad(B::CommunicationError(_)) => SampleQuality::BadCommunicationError,
            Quality::Bad(B::NotConnected) => SampleQuality::BadNotConnected,
        }
    }
}

/// One stored value of a tag. A bad sample has no value (a bad value must
/// never be shown or used as good), nor has a sample whose reading was not
/// a finite number; times are kept to the microsecond.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    tag: TagName,
    at: DateTime<Utc>,
    value: Option<f64>,
    quality: SampleQuality,
}

impl Sample {
    /// A sample; the value is dropped when the quality is bad or the value
    /// is not finite, and the time is truncated to the microsecond.
    pub fn new(
        tag: TagName,
        at: DateTime<Utc>,
        value: Option<f64>,
        quality: SampleQuality,
    ) -> Sample {
        let value = value.filter(|v| v.is_finite() && !quality.is_bad());
        Sample {
            tag,
            at: truncate_to_micros(at),
            value,
            quality,
        }
    }

    /// The sample of a reading, at its source time (its server time when
    /// the protocol gives none).
    pub fn of_reading(reading: &TagReading) -> Sample {
        Sample::new(
            reading.tag.clone(),
            reading.source_time.unwrap_or(reading.server_time),
            reading.value.map(|v| v.as_f64()),
            SampleQuality::from(&reading.quality),
        )
    }

    pub fn tag(&self) -> &TagName {
        &self.tag
    }

    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }

    pub fn quality(&self) -> SampleQuality {
        self.quality
    }
}

fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// How a tag is historised. Built by [`HistoryPolicy::new`], which checks
/// the figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPolicy {
    deadband: f64,
    max_interval: Duration,
    retention: Duration,
}

impl HistoryPolicy {
    /// `deadband`: the smallest change worth a sample, absolute, in the
    /// tag's unit (0 keeps every change); `max_interval`: a sample is kept
    /// at least this often while readings come; `retention`: how long
    /// samples are kept. Refuses a negative or non-finite deadband and a
    /// zero interval or retention.
    pub fn new(
        deadband: f64,
        max_interval: Duration,
        retention: Duration,
    ) -> Result<HistoryPolicy, DomainError> {
        if !(deadband.is_finite() && deadband >= 0.0) {
            return Err(DomainError::OutOfRange {
                what: "history deadband",
                rule: "a finite number >= 0",
                value: deadband.to_string(),
            });
        }
        for (what, d) in [
            ("history max_interval", max_interval),
            ("history retention", retention),
        ] {
            if d.is_zero() || TimeDelta::from_std(d).is_err() {
                return Err(DomainError::OutOfRange {
                    what,
                    rule: "longer than zero and shorter than 100 years",
                    value: format!("{d:?}"),
                });
            }
        }
        Ok(HistoryPolicy {
            deadband,
            max_interval,
            retention,
        })
    }

    pub fn deadband(&self) -> f64 {
        self.deadband
    }

    pub fn max_interval(&self) -> Duration {
        self.max_interval
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The oldest time still kept at `now`: samples before it may go.
    pub fn retention_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let keep = TimeDelta::from_std(self.retention).unwrap_or(TimeDelta::MAX);
        now.checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

impl Default for HistoryPolicy {
    /// Every change kept, a sample a minute at least, kept for 366 days.
    fn default() -> HistoryPolicy {
        HistoryPolicy {
            deadband: 0.0,
            max_interval: Duration::from_secs(60),
            retention: Duration::from_secs(366 * 86_400),
        }
    }
}

/// Decides, reading by reading, which samples to keep; one per historian.
#[derive(Debug, Clone)]
pub struct Recorder {
    default: HistoryPolicy,
    policies: HashMap<TagName, HistoryPolicy>,
    last: HashMap<TagName, Sample>,
}

impl Recorder {
    /// A recorder applying `default` to every tag without a policy of its own.
    pub fn new(default: HistoryPolicy, policies: HashMap<TagName, HistoryPolicy>) -> Recorder {
        Recorder {
            default,
            policies,
            last: HashMap::new(),
        }
    }

    pub fn policy(&self, tag: &TagName) -> &HistoryPolicy {
        self.policies.get(tag).unwrap_or(&self.default)
    }

    /// The tags with a policy of their own, and the default policy.
    pub fn policies(&self) -> (&HashMap<TagName, HistoryPolicy>, &HistoryPolicy) {
        (&self.policies, &self.default)
    }

    /// The sample to store for `reading`, or `None` when the policy drops it.
    pub fn offer(&mut self, reading: &TagReading) -> Option<Sample> {
        self.offer_sample(Sample::of_reading(reading))
    }

    /// [`Recorder::offer`] for a sample already built.
    pub fn offer_sample(&mut self, sample: Sample) -> Option<Sample> {
        let policy = *self.policy(&sample.tag);
        let keep = match self.last.get(&sample.tag) {
            None => true,
            Some(last) if sample.at <= last.at => false,
            Some(last) => {
                let waited = (sample.at - last.at).to_std().unwrap_or_default();
                sample.quality != last.quality
                    || waited >= policy.max_interval
                    || match (sample.value, last.value) {
                        (Some(v), Some(w)) => (v - w).abs() > policy.deadband,
                        (None, None) => false,
                        _ => true,
                    }
            }
        };
        if keep {
            self.last.insert(sample.tag.clone(), sample.clone());
            Some(sample)
        } else {
            None
        }
    }
}

/// One bucket of a downsampled range: the statistics of the samples with
/// `start <= at < end`. `min`, `max` and `mean` are over the samples that
/// have a value (none when every sample of the bucket is bad); `count`
/// counts every sample; `worst` is the most severe quality.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub count: u64,
    pub worst: SampleQuality,
}

/// The bucket width, in microseconds, that splits `[from, to)` into at most
/// `buckets` buckets: the span divided by the count, rounded up (at least
/// 1 us). `None` for an empty range or zero buckets. Bucket `i` covers
/// `[from + i * width, from + (i + 1) * width)`, cut at `to`.
pub fn bucket_width_us(from: DateTime<Utc>, to: DateTime<Utc>, buckets: u32) -> Option<i64> {
    let span = to.timestamp_micros().checked_sub(from.timestamp_micros())?;
    if span <= 0 || buckets == 0 {
        return None;
    }
    let n = i64::from(buckets);
    Some(((span + n - 1) / n).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BadReason, TagValue};

    fn tag(s: &str) -> TagName {
        TagName::parse(s).unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn reading(t: i64, value: f64, quality: Quality) -> TagReading {
        TagReading {
            tag: tag("Line/Unit/Signal"),
            value: Some(TagValue::Float(value)),
            quality,
            source_time: Some(at(t)),
            server_time: at(t),
        }
    }

    fn policy(deadband: f64, max_interval_s: u64) -> HistoryPolicy {
        HistoryPolicy::new(
            deadband,
            Duration::from_secs(max_interval_s),
            Duration::from_secs(86_400),
        )
        .unwrap()
    }

    /// Offers `(second, value, quality)` readings to a recorder with
    /// `policy` and checks which seconds are kept.
    fn check(policy: HistoryPolicy, readings: &[(i64, f64, Quality)], kept: &[i64]) {
        let mut r = Recorder::new(policy, HashMap::new());
        let got: Vec<i64> = readings
            .iter()
            .filter_map(|(t, v, q)| r.offer(&reading(*t, *v, q.clone())))
            .map(|s| s.at().timestamp() - 1_700_000_000)
            .collect();
        assert_eq!(got, kept);
    }

    const G: Quality = Quality::Good;

    #[test]
    fn the_first_reading_is_kept() {
        check(policy(1.0, 60), &[(0, 5.0, G)], &[0]);
    }

    #[test]
    fn changes_within_the_deadband_are_dropped() {
        check(
            policy(1.0, 60),
            &[(0, 5.0, G), (1, 5.5, G), (2, 6.0, G), (3, 4.0, G)],
            &[0],
        );
    }

    #[test]
    fn changes_beyond_the_deadband_are_kept_measured_from_the_last_kept_value() {
        check(
            policy(1.0, 60),
            &[
                (0, 5.0, G),
                (1, 5.8, G),
                (2, 6.1, G),
                (3, 6.9, G),
                (4, 7.2, G),
            ],
            &[0, 2, 4],
        );
    }

    #[test]
    fn a_zero_deadband_keeps_every_change_but_no_repeat() {
        check(
            policy(0.0, 60),
            &[(0, 5.0, G), (1, 5.0, G), (2, 5.000001, G), (3, 5.000001, G)],
            &[0, 2],
        );
    }

    #[test]
    fn the_max_interval_keeps_an_unchanged_value() {
        check(
            policy(1.0, 10),
            &[
                (0, 5.0, G),
                (5, 5.0, G),
                (9, 5.0, G),
                (10, 5.0, G),
                (19, 5.0, G),
                (20, 5.0, G),
            ],
            &[0, 10, 20],
        );
    }

    #[test]
    fn a_quality_change_is_always_kept() {
        let bad = Quality::Bad(BadReason::NotConnected);
        let unc = Quality::Uncertain("stale".into());
        check(
            policy(100.0, 60),
            &[
                (0, 5.0, G),
                (1, 5.0, bad.clone()),
                (2, 5.0, bad),
                (3, 5.0, G),
                (4, 5.0, unc),
                (5, 5.0, G),
            ],
            &[0, 1, 3, 4, 5],
        );
    }

    #[test]
    fn a_reading_no_later_than_the_last_kept_is_dropped() {
        check(
            policy(0.0, 1),
            &[(5, 1.0, G), (5, 2.0, G), (4, 3.0, G)],
            &[5],
        );
    }

    #[test]
    fn tags_are_filtered_each_by_its_own_policy() {
        let a = tag("L/U/A");
        let mut r = Recorder::new(
            policy(10.0, 60),
            HashMap::from([(a.clone(), policy(0.5, 60))]),
        );
        let mut keep = |name: &TagName, t: i64, v: f64| {
            let mut rd = reading(t, v, G);
            rd.tag = name.clone();
            r.offer(&rd).is_some()
        };
        let b = tag("L/U/B");
        assert!(keep(&a, 0, 1.0) && keep(&b, 0, 1.0));
        assert!(keep(&a, 1, 2.0), "A's own deadband is 0.5");
        assert!(!keep(&b, 1, 2.0), "B has the default deadband of 10");
    }

    #[test]
    fn a_bad_sample_carries_no_value_and_quality_codes_round_trip() {
        let s = Sample::of_reading(&reading(0, 7.0, Quality::Bad(BadReason::Timeout)));
        assert_eq!((s.value(), s.quality()), (None, SampleQuality::BadTimeout));
        let s = Sample::new(tag("A/B/C"), at(0), Some(f64::NAN), SampleQuality::Good);
        assert_eq!(s.value(), None);
        for q in SampleQuality::ALL {
            assert_eq!(SampleQuality::from_code(q.code()), Some(q));
        }
        assert_eq!(SampleQuality::from_code(99), None);
        assert!(SampleQuality::Good < SampleQuality::Uncertain);
        assert!(SampleQuality::Uncertain < SampleQuality::BadWaitingForInitialData);
    }

    #[test]
    fn policies_refuse_nonsense() {
        let day = Duration::from_secs(86_400);
        assert!(HistoryPolicy::new(-1.0, day, day).is_err());
        assert!(HistoryPolicy::new(f64::NAN, day, day).is_err());
        assert!(HistoryPolicy::new(0.0, Duration::ZERO, day).is_err());
        assert!(HistoryPolicy::new(0.0, day, Duration::ZERO).is_err());
        assert_eq!(policy(0.0, 1).retention_cutoff(at(86_400)), at(0));
    }

    #[test]
    fn bucket_widths_cover_the_range_in_at_most_n_buckets() {
        assert_eq!(bucket_width_us(at(0), at(10), 10), Some(1_000_000));
        assert_eq!(bucket_width_us(at(0), at(10), 3), Some(3_333_334));
        assert_eq!(bucket_width_us(at(0), at(0), 3), None);
        assert_eq!(bucket_width_us(at(0), at(1), 0), None);
        assert_eq!(
            bucket_width_us(at(0), at(0) + TimeDelta::microseconds(2), 5),
            Some(1)
        );
    }
}
