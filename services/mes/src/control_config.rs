//! The line-control file: units, derived tags, permissives and alarms, as
//! data a plant engineer writes, parsed at the edge into domain types and
//! checked against the plant's tag catalogue.
//!
//! The format (TOML; every table refuses unknown fields):
//! ```toml
//! [[unit]]                        # an ISA-88 unit the MES commands
//! path = "Mechanical/Shredder"    # Line/Unit
//! area = "Mechanical"             # for alarm floods and the HMI
//! state = "Mechanical/Shredder/State"       # optional, default path/State
//! command = "Mechanical/Shredder/Command"   # optional, default path/Command
//!
//! [[derived]]                     # a value computed from other tags
//! name = "Hydromet/Leach/TemperatureError"
//! difference = ["Hydromet/Leach/Temperature", "Hydromet/Leach/TemperatureSetpoint"]
//! absolute = false                # true: |a - b|
//! # or: bit = 3 with of = "Discharge/Station1/Alarms" (0 or 1)
//!
//! [[permissive]]
//! id = "shredder-start"
//! unit = "Mechanical/Shredder"
//! command = "start"               # start, hold, restart, stop, abort, reset
//! [[permissive.check]]
//! description = "N2 flow setpoint healthy"
//! tag = "Mechanical/Shredder/N2Flow"
//! compare = ">="                  # <, <=, >, >=, ==, !=
//! value = 150.0                   # or value_of = "Line/Unit/Signal"
//! held_for_s = 0                  # optional: how long it must have held
//!
//! [[alarm]]
//! id = "MECH-O2-HI"
//! description = "chamber O2 above the alarm limit"
//! tag = "Mechanical/Shredder/O2"
//! kind = "high"    # high/low (limit), deviation (setpoint, band),
//!                  # rate_of_change (per_minute), discrete (value), comms_loss
//! limit = 2.5
//! priority = "critical"           # low, medium, high, critical
//! deadband = 0.2                  # optional, default 0
//! on_delay_s = 2                  # optional, default 0
//! off_delay_s = 5                 # optional, default 0
//! area = "Mechanical"
//! unit = "Mechanical/Shredder"    # optional: suppressed by design while it is stopped
//! max_shelve_min = 480            # optional, default 480
//! ```
//! A derived tag reads bad when any of its inputs does (fail safe).
//! Errors name the file, the item and the field; [`ControlConfig::lint`]
//! lists every tag the plant does not have.

use crate::MesError;
use chrono::Duration;
use remine_domain::{
    Access, AlarmDef, AlarmKind, Check, Compare, DomainError, Operand, Permissive, Priority,
    Quality, TagInfo, TagName, TagReading, TagValue, UnitCommand,
};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// An ISA-88 unit the MES commands.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitDef {
    /// `Line/Unit`, for example `Discharge/Station1`.
    pub path: String,
    pub area: String,
    pub state: TagName,
    pub command: TagName,
}

/// How a derived tag is computed.
#[derive(Debug, Clone, PartialEq)]
pub enum Derivation {
    /// `a - b`, or `|a - b|` when `absolute`.
    Difference {
        a: TagName,
        b: TagName,
        absolute: bool,
    },
    /// Bit `bit` (0 = least significant) of an integer word: 0 or 1.
    Bit { of: TagName, bit: u8 },
}

/// A value computed from other tags (a deviation from a setpoint held in
/// the PLC, one alarm bit of a status word).
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedTag {
    pub name: TagName,
    pub derivation: Derivation,
}

impl DerivedTag {
    pub fn inputs(&self) -> Vec<&TagName> {
        match &self.derivation {
            Derivation::Difference { a, b, .. } => vec![a, b],
            Derivation::Bit { of, .. } => vec![of],
        }
    }

    /// The derived reading from its inputs' readings; bad when one is.
    pub fn compute(&self, readings: &HashMap<TagName, TagReading>) -> TagReading {
        let now = chrono::Utc::now();
        let inputs: Vec<Option<&TagReading>> =
            self.inputs().into_iter().map(|t| readings.get(t)).collect();
        let quality = inputs
            .iter()
            .map(|r| match r {
                None => Quality::Bad(remine_domain::BadReason::WaitingForInitialData),
                Some(r) => r.quality.clone(),
            })
            .find(|q| !q.is_good())
            .unwrap_or(Quality::Good);
        let values: Vec<Option<f64>> = inputs
            .iter()
            .map(|r| r.and_then(|r| r.value).map(TagValue::as_f64))
            .collect();
        let value = match (&self.derivation, values.as_slice()) {
            (Derivation::Difference { absolute, .. }, [Some(a), Some(b)]) => {
                let d = a - b;
                Some(TagValue::Float(if *absolute { d.abs() } else { d }))
            }
            (Derivation::Bit { bit, .. }, [Some(w)]) => {
                Some(TagValue::Int(((*w as i64) >> bit) & 1))
            }
            _ => None,
        };
        TagReading {
            tag: self.name.clone(),
            value,
            quality,
            source_time: None,
            server_time: now,
        }
    }
}

/// The whole line-control configuration, checked.
#[derive(Debug, Clone, Default)]
pub struct ControlConfig {
    /// Where it came from, for messages.
    pub source: String,
    pub units: Vec<UnitDef>,
    pub derived: Vec<DerivedTag>,
    pub permissives: Vec<Permissive>,
    pub alarms: Vec<AlarmDef>,
    /// What each alarm means, for people, by alarm id.
    pub alarm_descriptions: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDto {
    #[serde(default)]
    unit: Vec<UnitDto>,
    #[serde(default)]
    derived: Vec<DerivedDto>,
    #[serde(default)]
    permissive: Vec<PermissiveDto>,
    #[serde(default)]
    alarm: Vec<AlarmDto>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitDto {
    path: String,
    area: String,
    state: Option<String>,
    command: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DerivedDto {
    name: String,
    difference: Option<[String; 2]>,
    #[serde(default)]
    absolute: bool,
    bit: Option<u8>,
    of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissiveDto {
    id: String,
    unit: String,
    command: String,
    #[serde(default)]
    check: Vec<CheckDto>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckDto {
    description: String,
    tag: String,
    compare: String,
    value: Option<f64>,
    value_of: Option<String>,
    held_for_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmDto {
    id: String,
    #[serde(default)]
    description: String,
    tag: String,
    kind: String,
    limit: Option<f64>,
    setpoint: Option<f64>,
    band: Option<f64>,
    per_minute: Option<f64>,
    value: Option<f64>,
    priority: String,
    #[serde(default)]
    deadband: f64,
    #[serde(default)]
    on_delay_s: f64,
    #[serde(default)]
    off_delay_s: f64,
    area: String,
    unit: Option<String>,
    #[serde(default = "default_max_shelve_min")]
    max_shelve_min: f64,
}

fn default_max_shelve_min() -> f64 {
    480.0
}

/// Builds the error of one item and field.
struct At<'a> {
    source: &'a str,
    item: String,
}

impl At<'_> {
    fn err(&self, field: &str, why: impl std::fmt::Display) -> MesError {
        MesError::Invalid(DomainError::Inconsistent(format!(
            "{}: {}: {field}: {why}",
            self.source, self.item
        )))
    }

    fn tag(&self, field: &str, s: &str) -> Result<TagName, MesError> {
        TagName::parse(s).map_err(|e| self.err(field, e))
    }

    fn seconds(&self, field: &str, s: f64) -> Result<Duration, MesError> {
        if !(s.is_finite() && (0.0..=86_400.0 * 365.0).contains(&s)) {
            return Err(self.err(field, format!("{s} must be 0 or more seconds")));
        }
        Ok(Duration::milliseconds((s * 1000.0).round() as i64))
    }
}

fn need(at: &At<'_>, field: &str, v: Option<f64>, kind: &str) -> Result<f64, MesError> {
    v.ok_or_else(|| at.err(field, format!("a {kind} alarm needs {field}")))
}

impl ControlConfig {
    /// Reads and parses a control file.
    pub fn from_file(path: &std::path::Path) -> Result<ControlConfig, MesError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            MesError::Invalid(DomainError::Inconsistent(format!(
                "cannot read control file {}: {e}",
                path.display()
            )))
        })?;
        ControlConfig::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses a control file's text; `source` names it in errors.
    pub fn from_toml_str(text: &str, source: &str) -> Result<ControlConfig, MesError> {
        let dto: FileDto = toml::from_str(text).map_err(|e| {
            MesError::Invalid(DomainError::Inconsistent(format!(
                "{source}: {}",
                e.to_string().trim().replace('\n', " ")
            )))
        })?;
        let mut config = ControlConfig {
            source: source.to_string(),
            ..ControlConfig::default()
        };
        for (i, u) in dto.unit.into_iter().enumerate() {
            let at = At {
                source,
                item: format!("unit {} ('{}')", i + 1, u.path),
            };
            let path = u.path.trim().trim_end_matches('/').to_string();
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(at.err("path", "expected Line/Unit"));
            }
            if u.area.trim().is_empty() {
                return Err(at.err("area", "must not be empty"));
            }
            if config.units.iter().any(|x| x.path == path) {
                return Err(at.err("path", "is declared twice"));
            }
            let state = u.state.unwrap_or_else(|| format!("{path}/State"));
            let command = u.command.unwrap_or_else(|| format!("{path}/Command"));
            config.units.push(UnitDef {
                state: at.tag("state", &state)?,
                command: at.tag("command", &command)?,
                path,
                area: u.area.trim().to_string(),
            });
        }
        for (i, d) in dto.derived.into_iter().enumerate() {
            let at = At {
                source,
                item: format!("derived {} ('{}')", i + 1, d.name),
            };
            let name = at.tag("name", &d.name)?;
            if config.derived.iter().any(|x| x.name == name) {
                return Err(at.err("name", "is declared twice"));
            }
            let derivation = match (d.difference, d.bit, d.of) {
                (Some([a, b]), None, None) => Derivation::Difference {
                    a: at.tag("difference", &a)?,
                    b: at.tag("difference", &b)?,
                    absolute: d.absolute,
                },
                (None, Some(bit), Some(of)) if bit < 63 => Derivation::Bit {
                    of: at.tag("of", &of)?,
                    bit,
                },
                (None, Some(bit), Some(_)) => {
                    return Err(at.err("bit", format!("{bit} must be 0..=62")));
                }
                _ => {
                    return Err(at.err(
                        "difference",
                        "give either difference = [a, b] or bit = N with of = TAG",
                    ));
                }
            };
            config.derived.push(DerivedTag { name, derivation });
        }
        for (i, p) in dto.permissive.into_iter().enumerate() {
            let at = At {
                source,
                item: format!("permissive {} ('{}')", i + 1, p.id),
            };
            if config.permissives.iter().any(|x| x.id == p.id) {
                return Err(at.err("id", "is declared twice"));
            }
            let command = UnitCommand::from_name(p.command.trim()).ok_or_else(|| {
                at.err(
                    "command",
                    format!(
                        "'{}' is not one of start, hold, restart, stop, abort, reset",
                        p.command
                    ),
                )
            })?;
            let mut checks = Vec::new();
            for (j, c) in p.check.into_iter().enumerate() {
                let at = At {
                    source,
                    item: format!("permissive {} ('{}') check {}", i + 1, p.id, j + 1),
                };
                let operand = match (c.value, c.value_of) {
                    (Some(v), None) => Operand::Value(v),
                    (None, Some(t)) => Operand::Tag(at.tag("value_of", &t)?),
                    _ => return Err(at.err("value", "give exactly one of value and value_of")),
                };
                checks.push(Check {
                    description: c.description.trim().to_string(),
                    tag: at.tag("tag", &c.tag)?,
                    compare: Compare::parse(&c.compare).map_err(|e| at.err("compare", e))?,
                    operand,
                    held_for: c
                        .held_for_s
                        .map(|s| at.seconds("held_for_s", s))
                        .transpose()?,
                });
                if checks.last().is_some_and(|c| c.description.is_empty()) {
                    return Err(at.err("description", "must say what the check means"));
                }
            }
            let permissive = Permissive {
                id: p.id.trim().to_string(),
                unit: p.unit.trim().trim_end_matches('/').to_string(),
                command,
                checks,
            };
            permissive
                .check_definition()
                .map_err(|e| at.err("check", e))?;
            config.permissives.push(permissive);
        }
        for (i, a) in dto.alarm.into_iter().enumerate() {
            let at = At {
                source,
                item: format!("alarm {} ('{}')", i + 1, a.id),
            };
            if config.alarms.iter().any(|x| x.id == a.id) {
                return Err(at.err("id", "is declared twice"));
            }
            let kind = match a.kind.as_str() {
                "high" => AlarmKind::High {
                    limit: need(&at, "limit", a.limit, "high")?,
                },
                "low" => AlarmKind::Low {
                    limit: need(&at, "limit", a.limit, "low")?,
                },
                "deviation" => AlarmKind::Deviation {
                    setpoint: need(&at, "setpoint", a.setpoint, "deviation")?,
                    band: need(&at, "band", a.band, "deviation")?,
                },
                "rate_of_change" => AlarmKind::RateOfChange {
                    per_minute: need(&at, "per_minute", a.per_minute, "rate_of_change")?,
                },
                "discrete" => AlarmKind::Discrete {
                    value: need(&at, "value", a.value, "discrete")?,
                },
                "comms_loss" => AlarmKind::CommsLoss,
                other => {
                    return Err(at.err(
                        "kind",
                        format!(
                            "'{other}' is not one of high, low, deviation, rate_of_change, discrete, comms_loss"
                        ),
                    ));
                }
            };
            if a.area.trim().is_empty() {
                return Err(at.err("area", "must not be empty"));
            }
            if !(a.max_shelve_min.is_finite() && a.max_shelve_min > 0.0) {
                return Err(at.err(
                    "max_shelve_min",
                    format!("{} must be a positive number of minutes", a.max_shelve_min),
                ));
            }
            let def = AlarmDef {
                id: a.id.trim().to_string(),
                tag: at.tag("tag", &a.tag)?,
                kind,
                priority: Priority::parse(a.priority.trim()).map_err(|e| at.err("priority", e))?,
                deadband: a.deadband,
                on_delay: at.seconds("on_delay_s", a.on_delay_s)?,
                off_delay: at.seconds("off_delay_s", a.off_delay_s)?,
                area: a.area.trim().to_string(),
                unit: a.unit.map(|u| u.trim().trim_end_matches('/').to_string()),
                max_shelve: at.seconds("max_shelve_min", a.max_shelve_min * 60.0)?,
            };
            def.check().map_err(|e| at.err("definition", e))?;
            config
                .alarm_descriptions
                .insert(def.id.clone(), a.description.trim().to_string());
            config.alarms.push(def);
        }
        config.check_references()?;
        Ok(config)
    }

    /// Permissives and alarms name declared units.
    fn check_references(&self) -> Result<(), MesError> {
        let units: HashSet<&str> = self.units.iter().map(|u| u.path.as_str()).collect();
        let fail = |item: String, why: String| {
            Err(MesError::Invalid(DomainError::Inconsistent(format!(
                "{}: {item}: unit: {why}",
                self.source
            ))))
        };
        for p in &self.permissives {
            if !units.contains(p.unit.as_str()) {
                return fail(
                    format!("permissive '{}'", p.id),
                    format!("{} is not a declared [[unit]]", p.unit),
                );
            }
        }
        for a in &self.alarms {
            if let Some(u) = &a.unit
                && !units.contains(u.as_str())
            {
                return fail(
                    format!("alarm '{}'", a.id),
                    format!("{u} is not a declared [[unit]]"),
                );
            }
        }
        Ok(())
    }

    /// Everything that does not fit the plant's tag catalogue: unknown
    /// tags, a command tag that cannot be written, a derived tag that
    /// shadows a plant tag. Empty when the file fits.
    pub fn lint(&self, catalogue: &[TagInfo]) -> Vec<String> {
        let known: HashMap<&TagName, &TagInfo> = catalogue.iter().map(|i| (&i.name, i)).collect();
        let derived: HashSet<&TagName> = self.derived.iter().map(|d| &d.name).collect();
        let mut findings = Vec::new();
        let mut need = |item: String, field: &str, tag: &TagName, derived_ok: bool| {
            if !(known.contains_key(tag) || derived_ok && derived.contains(tag)) {
                findings.push(format!(
                    "{}: {item}: {field}: tag {tag} is not in the plant's tag maps",
                    self.source
                ));
            }
        };
        for u in &self.units {
            let item = format!("unit '{}'", u.path);
            need(item.clone(), "state", &u.state, false);
            need(item, "command", &u.command, false);
        }
        for d in &self.derived {
            for t in d.inputs() {
                need(format!("derived '{}'", d.name), "input", t, false);
            }
        }
        for p in &self.permissives {
            for (j, c) in p.checks.iter().enumerate() {
                for t in c.tags() {
                    need(
                        format!("permissive '{}' check {}", p.id, j + 1),
                        "tag",
                        t,
                        true,
                    );
                }
            }
        }
        for a in &self.alarms {
            need(format!("alarm '{}'", a.id), "tag", &a.tag, true);
        }
        for u in &self.units {
            if let Some(info) = known.get(&u.command)
                && info.access != Access::ReadWrite
            {
                findings.push(format!(
                    "{}: unit '{}': command: tag {} is read-only",
                    self.source, u.path, u.command
                ));
            }
        }
        for d in &self.derived {
            if known.contains_key(&d.name) {
                findings.push(format!(
                    "{}: derived '{}': name: the plant has a tag of that name",
                    self.source, d.name
                ));
            }
        }
        findings
    }

    /// [`ControlConfig::lint`] as a result: an error listing every finding.
    pub fn check_against(&self, catalogue: &[TagInfo]) -> Result<(), MesError> {
        let findings = self.lint(catalogue);
        if findings.is_empty() {
            Ok(())
        } else {
            Err(MesError::Invalid(DomainError::Inconsistent(
                findings.join("; "),
            )))
        }
    }

    pub fn unit(&self, path: &str) -> Option<&UnitDef> {
        let path = path.trim().trim_end_matches('/');
        self.units.iter().find(|u| u.path == path)
    }

    /// The plant tags a set of tags needs read (derived tags by their inputs).
    pub fn plant_tags<'a>(&'a self, tags: impl IntoIterator<Item = &'a TagName>) -> Vec<TagName> {
        let mut out: Vec<TagName> = Vec::new();
        for t in tags {
            match self.derived.iter().find(|d| &d.name == t) {
                Some(d) => out.extend(d.inputs().into_iter().cloned()),
                None => out.push(t.clone()),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Readings by tag, with every derived tag computed from them.
    pub fn with_derived(&self, readings: &[TagReading]) -> HashMap<TagName, TagReading> {
        let mut map: HashMap<TagName, TagReading> = readings
            .iter()
            .map(|r| (r.tag.clone(), r.clone()))
            .collect();
        for d in &self.derived {
            let r = d.compute(&map);
            map.insert(d.name.clone(), r);
        }
        map
    }
}
