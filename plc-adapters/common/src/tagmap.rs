//! The parts of tag-map checking that both adapters share.
//!
//! A tag map is a TOML file of link tables (`[[device]]` for Modbus,
//! `[[server]]` for OPC UA) and `[[tag]]` tables; plc-adapters/README.md
//! documents both formats. Each adapter deserializes its own TOML form and
//! checks what is particular to its protocol; what is the same in both lives
//! here: reading and parsing the file, link and tag names (valid, unique,
//! known), integer and millisecond ranges, the reconnect delays, `access`,
//! and the `min`/`max` write limits. A [`Checker`] names the file, the item
//! (`device 'plc'`, `tag 'Line/Unit/Signal'`, `tag #3`) and the field of
//! every mistake.

use crate::TagMapError;
use remine_domain::{Access, TagName};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

/// Reads a tag-map file.
pub fn read_file(path: &Path) -> Result<String, TagMapError> {
    std::fs::read_to_string(path).map_err(|e| TagMapError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// Parses the TOML form of a tag map; `source` names the text in error
/// messages (usually its path).
pub fn parse_toml<T: DeserializeOwned>(text: &str, source: &str) -> Result<T, TagMapError> {
    toml::from_str(text).map_err(|e| TagMapError::Syntax {
        file: source.to_string(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// Whether `name` is usable as the name of a link (or of anything a tag
/// names, such as a poll group): letters, digits, `_`, `-` and `.`, not empty.
pub fn is_link_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A number field: TOML keeps integers and floats apart, and a scale of `1`
/// or a limit of `90` is as good as `1.0` or `90.0`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn get(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Inclusive write limits in engineering units; `min <= max`, both finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteLimits {
    min: f64,
    max: f64,
}

impl WriteLimits {
    pub fn min(self) -> f64 {
        self.min
    }

    pub fn max(self) -> f64 {
        self.max
    }

    pub fn contains(self, value: f64) -> bool {
        value >= self.min && value <= self.max
    }
}

/// An optional `*_ms` field: the value it takes when absent, and the
/// inclusive bounds of a given value, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis {
    default: i64,
    min: i64,
    max: i64,
}

impl Millis {
    pub const fn new(default: i64, bounds: RangeInclusive<i64>) -> Millis {
        Millis {
            default,
            min: *bounds.start(),
            max: *bounds.end(),
        }
    }
}

/// `reconnect_min_ms`: the first reconnect delay.
const RECONNECT_MIN_MS: Millis = Millis::new(100, 10..=600_000);
/// `reconnect_max_ms`: the cap of the reconnect delay.
const RECONNECT_MAX_MS: Millis = Millis::new(10_000, 10..=600_000);

/// `comms_alarm_delay_ms`: how long a link is down before its comms-loss alarm.
const COMMS_ALARM_DELAY_MS: Millis = Millis::new(0, 0..=3_600_000);

/// Checks the fields of one tag map and names the file, item and field of
/// every mistake. `link` is what the tags are read through: `"device"` or
/// `"server"`, which is also the tag field naming one.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    file: &'a str,
    link: &'static str,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a str, link: &'static str) -> Checker<'a> {
        Checker { file, link }
    }

    /// The error for `field` of `item`.
    pub fn err(&self, item: &str, field: &'static str, message: impl Into<String>) -> TagMapError {
        TagMapError::Invalid {
            file: self.file.to_string(),
            item: item.to_string(),
            field,
            message: message.into(),
        }
    }

    /// `value` if it lies in `min..=max`.
    pub fn int_in(
        &self,
        item: &str,
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, TagMapError> {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.err(item, field, format!("{value} is outside {min}..={max}")))
        }
    }

    /// An optional `*_ms` field, its default when absent, within its bounds.
    pub fn millis(
        &self,
        item: &str,
        field: &'static str,
        value: Option<i64>,
        ms: Millis,
    ) -> Result<Duration, TagMapError> {
        let value = self.int_in(item, field, value.unwrap_or(ms.default), ms.min, ms.max)?;
        Ok(Duration::from_millis(value.unsigned_abs()))
    }

    /// Checks the link tables in order, refusing a name used twice.
    pub fn links<R, L>(
        &self,
        raw: Vec<R>,
        mut check: impl FnMut(R) -> Result<L, TagMapError>,
        name: impl Fn(&L) -> &str,
    ) -> Result<Vec<L>, TagMapError> {
        let mut links: Vec<L> = Vec::with_capacity(raw.len());
        for r in raw {
            let link = check(r)?;
            if links.iter().any(|known| name(known) == name(&link)) {
                return Err(self.err(
                    &format!("{} '{}'", self.link, name(&link)),
                    "name",
                    format!("duplicate {} name", self.link),
                ));
            }
            links.push(link);
        }
        Ok(links)
    }

    /// The item naming a link in messages (`device 'plc'`), once its name is
    /// known to be usable: letters, digits, `_`, `-` and `.`, not empty.
    pub fn link_item(&self, name: &str) -> Result<String, TagMapError> {
        let item = format!("{} '{name}'", self.link);
        if is_link_name(name) {
            Ok(item)
        } else {
            Err(self.err(
                &item,
                "name",
                format!(
                    "a {} name is letters, digits, '_', '-' and '.', not empty",
                    self.link
                ),
            ))
        }
    }

    /// The first reconnect delay and its cap, from the optional
    /// `reconnect_min_ms` and `reconnect_max_ms` of a link (100 ms and 10 s
    /// when absent).
    pub fn reconnect(
        &self,
        item: &str,
        min_ms: Option<i64>,
        max_ms: Option<i64>,
    ) -> Result<(Duration, Duration), TagMapError> {
        let min = self.millis(item, "reconnect_min_ms", min_ms, RECONNECT_MIN_MS)?;
        let max = self.millis(item, "reconnect_max_ms", max_ms, RECONNECT_MAX_MS)?;
        if min > max {
            return Err(self.err(
                item,
                "reconnect_min_ms",
                format!(
                    "{} is above reconnect_max_ms {}",
                    min.as_millis(),
                    max.as_millis()
                ),
            ));
        }
        Ok((min, max))
    }

    /// The optional `comms_alarm_delay_ms` of a link: 0 (raise at the first
    /// failure) when absent, at most an hour.
    pub fn comms_alarm_delay(&self, item: &str, ms: Option<i64>) -> Result<Duration, TagMapError> {
        self.millis(item, "comms_alarm_delay_ms", ms, COMMS_ALARM_DELAY_MS)
    }

    /// Checks the tag tables in order, numbering them from 1, refusing a
    /// name used twice.
    pub fn tags<R, T>(
        &self,
        raw: Vec<R>,
        mut check: impl FnMut(usize, R) -> Result<T, TagMapError>,
        name: impl Fn(&T) -> &TagName,
    ) -> Result<Vec<T>, TagMapError> {
        let mut tags: Vec<T> = Vec::with_capacity(raw.len());
        let mut seen: HashMap<TagName, usize> = HashMap::new();
        for (i, r) in raw.into_iter().enumerate() {
            let tag = check(i + 1, r)?;
            if let Some(first) = seen.get(name(&tag)) {
                return Err(self.err(
                    &format!("tag '{}'", name(&tag)),
                    "name",
                    format!("duplicate tag name (first defined as tag #{first})"),
                ));
            }
            seen.insert(name(&tag).clone(), i + 1);
            tags.push(tag);
        }
        Ok(tags)
    }

    /// The name of tag table `number` and the item naming it in messages
    /// (`tag 'Line/Unit/Signal'`).
    pub fn tag_name(&self, number: usize, name: &str) -> Result<(TagName, String), TagMapError> {
        let name = TagName::parse(name)
            .map_err(|e| self.err(&format!("tag #{number}"), "name", e.to_string()))?;
        let item = format!("tag '{name}'");
        Ok((name, item))
    }

    /// The index of the link a tag names, among the links' `names` in order.
    pub fn link_of<'n>(
        &self,
        item: &str,
        wanted: &str,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<usize, TagMapError> {
        let names: Vec<&str> = names.into_iter().collect();
        names.iter().position(|n| *n == wanted).ok_or_else(|| {
            self.err(
                item,
                self.link,
                format!(
                    "unknown {} '{wanted}' ({}s: {})",
                    self.link,
                    self.link,
                    if names.is_empty() {
                        "none defined".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })
    }

    /// The `access` field: `read` (the default) or `read_write`.
    pub fn access(&self, item: &str, access: Option<&str>) -> Result<Access, TagMapError> {
        match access {
            None | Some("read") => Ok(Access::Read),
            Some("read_write") => Ok(Access::ReadWrite),
            Some(other) => Err(self.err(
                item,
                "access",
                format!("unknown access '{other}' (expected read or read_write)"),
            )),
        }
    }

    /// The `min` and `max` fields: both or neither, only on a writable
    /// numeric tag, finite, `min <= max`.
    pub fn limits(
        &self,
        item: &str,
        min: Option<Number>,
        max: Option<Number>,
        access: Access,
        is_bool: bool,
    ) -> Result<Option<WriteLimits>, TagMapError> {
        let (min, max) = match (min, max) {
            (None, None) => return Ok(None),
            (Some(min), Some(max)) => (min.get(), max.get()),
            (Some(_), None) => return Err(self.err(item, "max", "'min' is given without 'max'")),
            (None, Some(_)) => return Err(self.err(item, "min", "'max' is given without 'min'")),
        };
        if access == Access::Read {
            return Err(self.err(
                item,
                "min",
                "a write limit on a read-only tag: set access = \"read_write\" or remove min/max",
            ));
        }
        if is_bool {
            return Err(self.err(item, "min", "a bool has no write limits"));
        }
        if !min.is_finite() || !max.is_finite() {
            return Err(self.err(item, "min", "write limits must be finite numbers"));
        }
        if min > max {
            return Err(self.err(item, "min", format!("min {min} is above max {max}")));
        }
        Ok(Some(WriteLimits { min, max }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Checker<'static> = Checker {
        file: "plant.toml",
        link: "server",
    };

    /// Expects `result` to be an error whose message is exactly `expected`.
    fn check<T: std::fmt::Debug>(result: Result<T, TagMapError>, expected: &str) {
        match result {
            Ok(v) => panic!("accepted {v:?}, expected: {expected}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }

    #[test]
    fn a_link_name_is_letters_digits_and_a_few_marks() {
        assert_eq!(
            C.link_item("dcs-1.a_b"),
            Ok("server 'dcs-1.a_b'".to_string())
        );
        check(
            C.link_item("dcs 1"),
            "plant.toml: server 'dcs 1': field 'name': a server name is letters, digits, '_', '-' and '.', not empty",
        );
        check(
            C.link_item(""),
            "plant.toml: server '': field 'name': a server name is letters, digits, '_', '-' and '.', not empty",
        );
    }

    #[test]
    fn a_tag_names_its_link_among_those_defined() {
        assert_eq!(C.link_of("tag 'L/U/S'", "b", ["a", "b"]), Ok(1));
        check(
            C.link_of("tag 'L/U/S'", "c", ["a", "b"]),
            "plant.toml: tag 'L/U/S': field 'server': unknown server 'c' (servers: a, b)",
        );
        check(
            C.link_of("tag 'L/U/S'", "c", []),
            "plant.toml: tag 'L/U/S': field 'server': unknown server 'c' (servers: none defined)",
        );
    }

    #[test]
    fn names_are_unique_and_a_duplicate_tag_points_at_the_first() {
        check(
            C.links(vec!["a", "b", "a"], Ok, |s| s),
            "plant.toml: server 'a': field 'name': duplicate server name",
        );
        let names = vec!["L/U/A", "L/U/B", "L/U/A"];
        check(
            C.tags(names, |n, raw| C.tag_name(n, raw).map(|(t, _)| t), |t| t),
            "plant.toml: tag 'L/U/A': field 'name': duplicate tag name (first defined as tag #1)",
        );
        check(
            C.tags(
                vec!["L/U/A", "nonsense"],
                |n, raw| C.tag_name(n, raw),
                |(t, _)| t,
            ),
            "plant.toml: tag #2: field 'name': tag name 'nonsense' is invalid: \
             expected Line/Unit/Signal with letters, digits, '_' and '-'",
        );
    }

    #[test]
    fn reconnect_delays_default_to_100_ms_and_10_s_and_stay_in_order() {
        let ms = Duration::from_millis;
        assert_eq!(C.reconnect("x", None, None), Ok((ms(100), ms(10_000))));
        assert_eq!(
            C.reconnect("x", Some(10), Some(600_000)),
            Ok((ms(10), ms(600_000)))
        );
        check(
            C.reconnect("x", Some(5), None),
            "plant.toml: x: field 'reconnect_min_ms': 5 is outside 10..=600000",
        );
        check(
            C.reconnect("x", Some(500), Some(200)),
            "plant.toml: x: field 'reconnect_min_ms': 500 is above reconnect_max_ms 200",
        );
    }

    #[test]
    fn the_comms_alarm_delay_defaults_to_at_once_and_is_at_most_an_hour() {
        let ms = Duration::from_millis;
        assert_eq!(C.comms_alarm_delay("x", None), Ok(ms(0)));
        assert_eq!(C.comms_alarm_delay("x", Some(3_600_000)), Ok(ms(3_600_000)));
        check(
            C.comms_alarm_delay("x", Some(-1)),
            "plant.toml: x: field 'comms_alarm_delay_ms': -1 is outside 0..=3600000",
        );
    }

    #[test]
    fn access_is_read_unless_read_write() {
        assert_eq!(C.access("x", None), Ok(Access::Read));
        assert_eq!(C.access("x", Some("read")), Ok(Access::Read));
        assert_eq!(C.access("x", Some("read_write")), Ok(Access::ReadWrite));
        check(
            C.access("x", Some("write")),
            "plant.toml: x: field 'access': unknown access 'write' (expected read or read_write)",
        );
    }

    #[test]
    fn write_limits_come_in_pairs_on_writable_numbers() {
        let (rw, int, float) = (Access::ReadWrite, Number::Int, Number::Float);
        let limits = C.limits("x", Some(int(0)), Some(float(2.5)), rw, false);
        let limits = limits.ok().flatten().expect("limits");
        assert_eq!((limits.min(), limits.max()), (0.0, 2.5));
        assert!(limits.contains(2.5) && !limits.contains(2.6));
        assert_eq!(C.limits("x", None, None, Access::Read, true), Ok(None));
        check(
            C.limits("x", Some(int(1)), None, rw, false),
            "plant.toml: x: field 'max': 'min' is given without 'max'",
        );
        check(
            C.limits("x", Some(int(1)), Some(int(2)), Access::Read, false),
            "plant.toml: x: field 'min': a write limit on a read-only tag: set access = \"read_write\" or remove min/max",
        );
        check(
            C.limits("x", Some(int(0)), Some(int(1)), rw, true),
            "plant.toml: x: field 'min': a bool has no write limits",
        );
        check(
            C.limits("x", Some(float(f64::NAN)), Some(int(1)), rw, false),
            "plant.toml: x: field 'min': write limits must be finite numbers",
        );
        check(
            C.limits("x", Some(int(10)), Some(int(5)), rw, false),
            "plant.toml: x: field 'min': min 10 is above max 5",
        );
    }

    #[test]
    fn a_file_that_is_not_toml_or_not_there_names_itself() {
        check(
            parse_toml::<toml::Table>("a = ", "plant.toml"),
            "plant.toml: TOML parse error at line 1, column 5\n  |\n1 | a = \n  |     ^\nstring values must be quoted, expected literal string",
        );
        let missing = Path::new("/nonexistent/remine/plant.toml");
        assert!(
            matches!(read_file(missing), Err(TagMapError::Io { path, .. }) if path == missing.display().to_string())
        );
    }
}
