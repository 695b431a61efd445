//! The OPC UA node list of the hydromet line: `maps/hydromet.toml`, checked
//! at start-up against the variables the train serves.
//!
//! The file names the namespace URI, the methods every unit folder has, the
//! variables every unit folder has (`[[common]]`) and, per unit folder
//! (`[[unit]]`), its own variables (`[[unit.variable]]`). A variable has a
//! `name` (its browse name), a `type` (UInt16 or Double), an `access` (R or
//! RW), an engineering unit (`eu`, its display name, and `unece`, its UNECE
//! common code, which gives the EngineeringUnits property's unitId), an
//! EURange (`low`, `high`; writes outside are refused), an optional `default`
//! (written at start-up) and a `description`. simulators/README.md
//! documents the file and every node.

use crate::SimError;
use crate::lines::hydromet::{COMMON_VARS, HydroMethod, HydroVar, unit_vars};
use crate::maps::Access;
use crate::model::hydromet::HydroUnit;
use serde::Deserialize;
use std::collections::HashSet;

/// The hydromet line's node list, as shipped.
pub const HYDROMET_NODES: &str = include_str!("../maps/hydromet.toml");

/// The OPC UA data type of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NodeType {
    UInt16,
    Double,
}

/// One variable of one unit folder.
#[derive(Debug, Clone, PartialEq)]
pub struct VarSpec {
    pub var: HydroVar,
    pub data_type: NodeType,
    pub access: Access,
    pub eu: String,
    pub unece: String,
    pub low: f64,
    pub high: f64,
    pub default: Option<f64>,
    pub description: String,
}

impl VarSpec {
    /// The EngineeringUnits unitId: the UNECE common code's characters
    /// packed into an integer (OPC UA Part 8), -1 when there is none.
    pub fn unit_id(&self) -> i32 {
        if self.unece.is_empty() {
            return -1;
        }
        self.unece
            .bytes()
            .fold(0i32, |id, b| (id << 8) | i32::from(b))
    }
}

/// One unit folder and its variables (the common ones first).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitNodes {
    pub unit: HydroUnit,
    pub description: String,
    pub variables: Vec<VarSpec>,
}

/// The checked node list.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeList {
    pub namespace_uri: String,
    pub methods: Vec<HydroMethod>,
    pub units: Vec<UnitNodes>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    namespace_uri: String,
    methods: Vec<String>,
    common: Vec<VarFile>,
    unit: Vec<UnitFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    name: String,
    description: String,
    #[serde(default)]
    variable: Vec<VarFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VarFile {
    name: String,
    #[serde(rename = "type")]
    data_type: NodeType,
    access: Access,
    eu: String,
    unece: String,
    low: f64,
    high: f64,
    default: Option<f64>,
    description: String,
}

impl NodeList {
    /// Parse and check a node list; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<NodeList, SimError> {
        let err = |reason: String| SimError::map(file, reason);
        let raw: NodeFile = toml::from_str(text).map_err(|e| err(format!("TOML: {e}")))?;
        if raw.namespace_uri != crate::HYDROMET_NAMESPACE_URI {
            return Err(err(format!(
                "namespace_uri = \"{}\": the simulator serves \"{}\"",
                raw.namespace_uri,
                crate::HYDROMET_NAMESPACE_URI
            )));
        }
        let mut methods = Vec::new();
        for m in &raw.methods {
            let Some(method) = HydroMethod::ALL.into_iter().find(|x| x.name() == m) else {
                return Err(err(format!(
                    "unknown method '{m}' (known: Start, Hold, Stop)"
                )));
            };
            if methods.contains(&method) {
                return Err(err(format!("method '{m}' is listed twice")));
            }
            methods.push(method);
        }
        if methods.len() != HydroMethod::ALL.len() {
            return Err(err("methods must list Start, Hold and Stop".into()));
        }
        let common = resolve(file, "common", &raw.common, &COMMON_VARS)?;
        let mut units = Vec::new();
        let mut seen = HashSet::new();
        for u in &raw.unit {
            let Some(unit) = HydroUnit::ALL.into_iter().find(|x| x.name() == u.name) else {
                return Err(err(format!("unknown unit '{}'", u.name)));
            };
            if !seen.insert(unit.name()) {
                return Err(err(format!("unit '{}' is listed twice", u.name)));
            }
            let own = resolve(file, unit.name(), &u.variable, unit_vars(unit))?;
            let mut variables = common.clone();
            variables.extend(own);
            units.push(UnitNodes {
                unit,
                description: u.description.clone(),
                variables,
            });
        }
        for unit in HydroUnit::ALL {
            if !seen.contains(unit.name()) {
                return Err(err(format!("unit '{}' is missing", unit.name())));
            }
        }
        Ok(NodeList {
            namespace_uri: raw.namespace_uri,
            methods,
            units,
        })
    }
}

fn resolve(
    file: &str,
    section: &str,
    entries: &[VarFile],
    expected: &[HydroVar],
) -> Result<Vec<VarSpec>, SimError> {
    let err = |reason: String| SimError::map(file, format!("{section}: {reason}"));
    let mut out: Vec<VarSpec> = Vec::new();
    for e in entries {
        let Some(var) = expected.iter().copied().find(|v| v.name() == e.name) else {
            let known: Vec<&str> = expected.iter().map(|v| v.name()).collect();
            return Err(err(format!(
                "unknown variable '{}' (known here: {})",
                e.name,
                known.join(", ")
            )));
        };
        if out.iter().any(|s| s.var == var) {
            return Err(err(format!("variable '{}' is listed twice", e.name)));
        }
        let want = if var.is_code() {
            NodeType::UInt16
        } else {
            NodeType::Double
        };
        if e.data_type != want {
            return Err(err(format!(
                "variable '{}': type {:?} but the simulator serves {want:?}",
                e.name, e.data_type
            )));
        }
        if e.access != var.access() {
            return Err(err(format!(
                "variable '{}': access {} but the simulator serves it as {}",
                e.name,
                e.access,
                var.access()
            )));
        }
        if !(e.low.is_finite() && e.high.is_finite()) || e.low > e.high {
            return Err(err(format!(
                "variable '{}': low = {} and high = {} are not a range",
                e.name, e.low, e.high
            )));
        }
        if !(e.unece.is_empty()
            || (e.unece.len() <= 3
                && e.unece
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())))
        {
            return Err(err(format!(
                "variable '{}': unece = \"{}\" is not a UNECE common code",
                e.name, e.unece
            )));
        }
        if let Some(d) = e.default {
            if e.access != Access::RW {
                return Err(err(format!(
                    "variable '{}': a default is only for RW variables",
                    e.name
                )));
            }
            if !(e.low..=e.high).contains(&d) {
                return Err(err(format!(
                    "variable '{}': default = {d} is outside {} ..= {}",
                    e.name, e.low, e.high
                )));
            }
        }
        out.push(VarSpec {
            var,
            data_type: e.data_type,
            access: e.access,
            eu: e.eu.clone(),
            unece: e.unece.clone(),
            low: e.low,
            high: e.high,
            default: e.default,
            description: e.description.clone(),
        });
    }
    for v in expected {
        if !out.iter().any(|s| s.var == *v) {
            return Err(err(format!("variable '{}' is missing", v.name())));
        }
    }
    Ok(out)
}
