//! The JSON shapes of the API, converted from domain values at this edge.

use chrono::{DateTime, SecondsFormat, Utc};
use remine_domain::{Access, Lot, Quality, TagInfo, TagReading, TagValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Times on the wire: RFC 3339, UTC, milliseconds.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub user: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    pub value: Value,
    pub reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteResult {
    pub tag: String,
    pub old: Option<Value>,
    pub new: Value,
    pub audit_seq: i64,
}

pub fn value_json(v: TagValue) -> Value {
    match v {
        TagValue::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        TagValue::Int(i) => Value::from(i),
        TagValue::Bool(b) => Value::Bool(b),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadingDto {
    pub tag: String,
    pub value: Option<Value>,
    /// "good", "uncertain" or "bad".
    pub quality: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub source_time: Option<String>,
    pub server_time: String,
}

impl From<&TagReading> for ReadingDto {
    fn from(r: &TagReading) -> Self {
        let (quality, reason) = match &r.quality {
            Quality::Good => ("good", None),
            Quality::Uncertain(s) => ("uncertain", Some(s.clone())),
            Quality::Bad(b) => ("bad", Some(b.to_string())),
        };
        ReadingDto {
            tag: r.tag.to_string(),
            value: r.value.map(value_json),
            quality,
            reason,
            source_time: r.source_time.map(time),
            server_time: time(r.server_time),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagInfoDto {
    pub tag: String,
    pub unit: String,
    pub writable: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl From<&TagInfo> for TagInfoDto {
    fn from(i: &TagInfo) -> Self {
        TagInfoDto {
            tag: i.name.to_string(),
            unit: i.unit.clone(),
            writable: i.access == Access::ReadWrite,
            min: i.write_limits.map(|l| l.0),
            max: i.write_limits.map(|l| l.1),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDto {
    pub seq: u64,
    pub at: Option<String>,
    pub readings: Vec<ReadingDto>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LotDto {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub mass_kg: f64,
    pub elements_kg: BTreeMap<String, f64>,
    pub content_source: &'static str,
    pub created_at: String,
    pub passport: Option<String>,
    pub country_of_collection: Option<String>,
}

impl From<&Lot> for LotDto {
    fn from(l: &Lot) -> Self {
        LotDto {
            id: l.id().to_string(),
            kind: l.kind().code(),
            label: l.kind().label(),
            mass_kg: l.mass().kg(),
            elements_kg: l
                .elements()
                .iter()
                .map(|(e, m)| (e.symbol().to_string(), m.kg()))
                .collect(),
            content_source: l.content_source().name(),
            created_at: time(l.created_at()),
            passport: l.passport().map(|p| p.to_string()),
            country_of_collection: l.country_of_collection().map(|c| c.as_str().to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDto {
    pub from: String,
    pub to: String,
    pub mass_kg: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LotDetailDto {
    pub lot: LotDto,
    pub inputs: Vec<EdgeDto>,
    pub outputs: Vec<EdgeDto>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditDto {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
    pub hash: String,
}
