//! Tags: the named process values the PLC adapters deliver, with their quality.

use crate::DomainError;
use chrono::{DateTime, Utc};
use std::fmt;

/// A tag name `Line/Unit/Signal`, for example `Discharge/Station1/PackVoltage`.
/// Three non-empty parts of letters, digits, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagName(String);

impl TagName {
    pub fn parse(s: &str) -> Result<TagName, DomainError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = parts.len() == 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            });
        if ok {
            Ok(TagName(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "tag name",
                value: s.to_string(),
                why: "expected Line/Unit/Signal with letters, digits, '_' and '-'".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn line(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    pub fn unit(&self) -> &str {
        self.0.split('/').nth(1).unwrap_or_default()
    }

    pub fn signal(&self) -> &str {
        self.0.split('/').nth(2).unwrap_or_default()
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag's value in engineering units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TagValue {
    Float(f64),
    Int(i64),
    Bool(bool),
}

impl TagValue {
    pub fn as_f64(self) -> f64 {
        match self {
            TagValue::Float(v) => v,
            TagValue::Int(v) => v as f64,
            TagValue::Bool(b) => f64::from(u8::from(b)),
        }
    }
}

impl fmt::Display for TagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Float(v) => write!(f, "{v}"),
            TagValue::Int(v) => write!(f, "{v}"),
            TagValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// Why a value is bad, after OPC UA's status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReason {
    /// BadNotConnected: the device link is down.
    NotConnected,
    /// BadCommunicationError: the request failed on the wire.
    CommunicationError(String),
    /// BadTimeout: no answer in time.
    Timeout,
    /// BadDeviceFailure: the device answered with an exception.
    DeviceFailure(String),
    /// BadConfigurationError: the tag's mapping is wrong.
    ConfigurationError(String),
    /// BadWaitingForInitialData: not read yet.
    WaitingForInitialData,
}

impl fmt::Display for BadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadReason::NotConnected => f.write_str("not connected"),
            BadReason::CommunicationError(s) => write!(f, "communication error: {s}"),
            BadReason::Timeout => f.write_str("timeout"),
            BadReason::DeviceFailure(s) => write!(f, "device failure: {s}"),
            BadReason::ConfigurationError(s) => write!(f, "configuration error: {s}"),
            BadReason::WaitingForInitialData => f.write_str("waiting for initial data"),
        }
    }
}

/// The quality of a value. A bad value must never be shown or used as good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quality {
    Good,
    Uncertain(String),
    Bad(BadReason),
}

impl Quality {
    pub fn is_good(&self) -> bool {
        matches!(self, Quality::Good)
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Good => f.write_str("good"),
            Quality::Uncertain(s) => write!(f, "uncertain: {s}"),
            Quality::Bad(r) => write!(f, "bad: {r}"),
        }
    }
}

/// One reading of a tag.
#[derive(Debug, Clone, PartialEq)]
pub struct TagReading {
    pub tag: TagName,
    /// The last value, if any was ever read; with bad quality it is stale.
    pub value: Option<TagValue>,
    pub quality: Quality,
    /// When the device sampled it, where the protocol says.
    pub source_time: Option<DateTime<Utc>>,
    /// When remine received it.
    pub server_time: DateTime<Utc>,
}

impl TagReading {
    /// The value only if it is good: what interlocks and calculations use.
    pub fn good_value(&self) -> Option<TagValue> {
        if self.quality.is_good() {
            self.value
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_have_three_parts() {
        let t = TagName::parse("Discharge/Station1/PackVoltage").unwrap();
        assert_eq!(
            (t.line(), t.unit(), t.signal()),
            ("Discharge", "Station1", "PackVoltage")
        );
        assert!(TagName::parse("Discharge/PackVoltage").is_err());
        assert!(TagName::parse("Discharge//PackVoltage").is_err());
        assert!(TagName::parse("Dis charge/S1/V").is_err());
    }

    #[test]
    fn a_bad_reading_offers_no_good_value() {
        let r = TagReading {
            tag: TagName::parse("A/B/C").unwrap(),
            value: Some(TagValue::Float(1.0)),
            quality: Quality::Bad(BadReason::NotConnected),
            source_time: None,
            server_time: chrono::DateTime::UNIX_EPOCH,
        };
        assert_eq!(r.good_value(), None);
    }
}

/// Whether a tag may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// What the services know of a tag besides its value.
#[derive(Debug, Clone, PartialEq)]
pub struct TagInfo {
    pub name: TagName,
    /// Engineering unit as written in the tag map ("V", "degC", "vol%").
    pub unit: String,
    pub access: Access,
    /// Inclusive limits for writes, in engineering units.
    pub write_limits: Option<(f64, f64)>,
}
