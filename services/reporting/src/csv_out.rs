//! The report as CSV for spreadsheets: one row per stream, Member State
//! of collection and measure (rRM of an element, or rRE), with the
//! columns of [`CSV_COLUMNS`]. [`read_csv`] reads the rows back (the
//! columns round-trip), and [`warnings_csv`] lists the report's warnings.

use crate::ReportError;
use crate::model::{RecoveryReport, ResultBlock};
use serde::{Deserialize, Serialize};

/// The columns, in order.
pub const CSV_COLUMNS: [&str; 19] = [
    "calendar_year",
    "status",
    "battery_chemistry",
    "member_state",
    "measure",
    "element",
    "input_units",
    "m_input_t",
    "m_output_eu_t",
    "m_output_non_eu_t",
    "m_output_total_t",
    "m_output_credited_t",
    "rate_pct",
    "rate_sigma_pct",
    "uncertainty_basis",
    "target_2027_pct",
    "met_2027",
    "target_2031_pct",
    "met_2031",
];

/// One CSV row. `member_state` is `all` for a stream's total and
/// `unknown` where the country of collection is; `measure` is `rRM` (per
/// element) or `rRE` (mass, no element). Empty cells are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvRow {
    pub calendar_year: i32,
    pub status: String,
    pub battery_chemistry: String,
    pub member_state: String,
    pub measure: String,
    pub element: String,
    pub input_units: usize,
    pub m_input_t: f64,
    pub m_output_eu_t: Option<f64>,
    pub m_output_non_eu_t: Option<f64>,
    pub m_output_total_t: f64,
    pub m_output_credited_t: Option<f64>,
    pub rate_pct: Option<f64>,
    pub rate_sigma_pct: Option<f64>,
    pub uncertainty_basis: String,
    pub target_2027_pct: Option<f64>,
    pub met_2027: Option<bool>,
    pub target_2031_pct: Option<f64>,
    pub met_2031: Option<bool>,
}

fn rows_of(report: &RecoveryReport, stream: &str, b: &ResultBlock, state: &str) -> Vec<CsvRow> {
    let mut out = vec![CsvRow {
        calendar_year: report.calendar_year,
        status: report.status.clone(),
        battery_chemistry: stream.to_string(),
        member_state: state.to_string(),
        measure: "rRE".into(),
        element: String::new(),
        input_units: b.input_units,
        m_input_t: b.m_input_tonnes,
        m_output_eu_t: None,
        m_output_non_eu_t: None,
        m_output_total_t: b.m_output_tonnes,
        m_output_credited_t: None,
        rate_pct: b.r_re,
        rate_sigma_pct: None,
        uncertainty_basis: String::new(),
        target_2027_pct: None,
        met_2027: None,
        target_2031_pct: None,
        met_2031: None,
    }];
    for r in &b.rows {
        let target = |year: i32| r.targets.iter().find(|t| t.by_end_of == year);
        out.push(CsvRow {
            calendar_year: report.calendar_year,
            status: report.status.clone(),
            battery_chemistry: stream.to_string(),
            member_state: state.to_string(),
            measure: "rRM".into(),
            element: r.element.clone(),
            input_units: b.input_units,
            m_input_t: r.m_input_tonnes,
            m_output_eu_t: Some(r.m_output_eu_tonnes),
            m_output_non_eu_t: Some(r.m_output_non_eu_tonnes),
            m_output_total_t: r.m_output_total_tonnes,
            m_output_credited_t: Some(r.m_output_credited_tonnes),
            rate_pct: r.r_rm,
            rate_sigma_pct: r.r_rm_sigma,
            uncertainty_basis: r.uncertainty_basis.clone(),
            target_2027_pct: target(2027).map(|t| t.target_pct),
            met_2027: target(2027).map(|t| t.met),
            target_2031_pct: target(2031).map(|t| t.target_pct),
            met_2031: target(2031).map(|t| t.met),
        });
    }
    out
}

/// The rows of a report, stream totals first, then each Member State.
pub fn csv_rows(report: &RecoveryReport) -> Vec<CsvRow> {
    let mut out = Vec::new();
    for s in &report.streams {
        out.extend(rows_of(report, &s.battery_chemistry, &s.total, "all"));
        for b in &s.by_member_state {
            let state = b.member_state_of_collection.as_deref().unwrap_or("unknown");
            out.extend(rows_of(report, &s.battery_chemistry, b, state));
        }
    }
    out
}

/// The report as CSV, with a header line.
pub fn to_csv(report: &RecoveryReport) -> Result<String, ReportError> {
    let bad = |e: csv::Error| ReportError::Write {
        what: "the recovery report as CSV",
        why: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in csv_rows(report) {
        w.serialize(r).map_err(bad)?;
    }
    let bytes = w.into_inner().map_err(|e| ReportError::Write {
        what: "the recovery report as CSV",
        why: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| ReportError::Write {
        what: "the recovery report as CSV",
        why: e.to_string(),
    })
}

/// Reads rows written by [`to_csv`]; refuses a header that differs from
/// [`CSV_COLUMNS`] and names the line of a bad row.
pub fn read_csv(text: &str) -> Result<Vec<CsvRow>, ReportError> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| ReportError::Csv {
        line: 1,
        why: e.to_string(),
    })?;
    let got: Vec<&str> = header.iter().collect();
    if got != CSV_COLUMNS {
        return Err(ReportError::Csv {
            line: 1,
            why: format!(
                "columns are {}, expected {}",
                got.join(","),
                CSV_COLUMNS.join(",")
            ),
        });
    }
    let mut rows = Vec::new();
    for rec in r.deserialize() {
        let row: CsvRow = rec.map_err(|e| ReportError::Csv {
            line: e.position().map_or(0, |p| p.line()),
            why: e.to_string(),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// The report's warnings as CSV: code, lot, field, message.
pub fn warnings_csv(report: &RecoveryReport) -> Result<String, ReportError> {
    let bad = |e: csv::Error| ReportError::Write {
        what: "the report's warnings as CSV",
        why: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["code", "lot", "field", "message"])
        .map_err(bad)?;
    for x in &report.warnings {
        w.write_record([
            x.code.as_str(),
            x.lot.as_deref().unwrap_or(""),
            x.field.as_deref().unwrap_or(""),
            x.message.as_str(),
        ])
        .map_err(bad)?;
    }
    let bytes = w.into_inner().map_err(|e| ReportError::Write {
        what: "the report's warnings as CSV",
        why: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| ReportError::Write {
        what: "the report's warnings as CSV",
        why: e.to_string(),
    })
}
