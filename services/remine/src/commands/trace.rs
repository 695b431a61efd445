//! `remine trace LOT [--forward] [--json] [--reconciled YEAR]`: a lot's
//! genealogy as a table (lot, kind, passport, country, Ni/Co/Li kg,
//! totals) or as the API's JSON, on recorded element masses or on those
//! the balance of a year reconciled (the basis is said on stderr).

use super::PLANT_DB_FILE;
use crate::cli::TraceArgs;
use crate::storage;
use anyhow::Context;
use chrono::{TimeZone, Utc};
use remine_api::{BackwardDto, ForwardDto};
use remine_domain::ports::Store;
use remine_domain::{Allocated, BackwardTrace, Element, ElementKg, ForwardTrace, LotId};
use remine_mes::{PlantBalance, Tracer};
use remine_store::Db;
use std::process::ExitCode;
use std::sync::Arc;

const SHOWN: [Element; 3] = [Element::Ni, Element::Co, Element::Li];

pub async fn run(args: &TraceArgs) -> anyhow::Result<ExitCode> {
    let lot = LotId::parse(&args.lot)?;
    let store = storage::open(&args.db, PLANT_DB_FILE).await?;
    let tracer = load(&store, args.reconciled).await;
    store.close().await;
    let (tracer, basis) = tracer?;
    eprintln!("element masses: {basis}");
    let text = if args.forward {
        let t = tracer.forward(&lot)?;
        if args.json {
            serde_json::to_string_pretty(&ForwardDto::from(&t))?
        } else {
            forward_table(&t)
        }
    } else {
        let t = tracer.backward(&lot)?;
        if args.json {
            serde_json::to_string_pretty(&BackwardDto::from(&t))?
        } else {
            backward_table(&t)
        }
    };
    super::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The tracer on recorded contents, or on those the balance of `year`
/// reconciled; and a line saying which.
async fn load(store: &Db, year: Option<i32>) -> anyhow::Result<(Tracer, String)> {
    let Some(year) = year else {
        return Ok((Tracer::load(store).await?, "as recorded".into()));
    };
    let start = |y: i32| {
        Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0)
            .single()
            .with_context(|| format!("--reconciled {year}: not a calendar year"))
    };
    let (from, to) = (start(year)?, start(year + 1)?);
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let (balance, contents) = PlantBalance::new(shared)
        .period_with_contents(from, to)
        .await?;
    let tracer = Tracer::load_reconciled(store, &contents).await?;
    let basis = format!(
        "reconciled over {year} ({} lots; chi-square {:.1} on {} dof, global test {})",
        contents.len(),
        balance.chi_square,
        balance.dof,
        if balance.passed { "passed" } else { "failed" }
    );
    Ok((tracer, basis))
}

/// Rows of text cells, the numbers (from column `right_from` on)
/// right-aligned, each column as wide as its widest cell.
struct Table {
    rows: Vec<Vec<String>>,
    right_from: usize,
}

impl Table {
    fn new(header: Vec<String>, right_from: usize) -> Table {
        Table {
            rows: vec![header],
            right_from,
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (s, w))| {
                    if c >= self.right_from {
                        format!("{s:>w$}")
                    } else {
                        format!("{s:<w$}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out.trim_end().to_string()
    }
}

fn kg_cells(e: &ElementKg) -> Vec<String> {
    SHOWN
        .iter()
        .map(|el| format!("{:.3}", e.get(*el).kg()))
        .collect()
}

/// Four columns named `first`, then one per element shown.
fn header(first: [&str; 4]) -> Vec<String> {
    let mut h: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    h.extend(SHOWN.iter().map(|e| format!("{e} kg")));
    h
}

fn lot_row(a: &Allocated<'_>) -> Vec<String> {
    let mut row = vec![
        a.lot.id().to_string(),
        a.lot.kind().label(),
        a.lot.passport().map_or("-".into(), |p| p.to_string()),
        a.lot
            .country()
            .map_or("-".into(), |c| c.as_str().to_string()),
    ];
    row.extend(kg_cells(&a.elements));
    row
}

fn summary_row(what: String, e: &ElementKg) -> Vec<String> {
    let mut row = vec![what, String::new(), String::new(), String::new()];
    row.extend(kg_cells(e));
    row
}

fn backward_table(t: &BackwardTrace<'_>) -> String {
    let lot = t.lot;
    let mut table = Table::new(header(["lot", "kind", "passport", "country"]), 4);
    for s in &t.sources {
        table.row(lot_row(s));
    }
    table.row(summary_row(
        format!("total of {} sources", t.sources.len()),
        &t.total(),
    ));
    table.row(summary_row(
        format!("content of {}", lot.id()),
        lot.content(),
    ));
    let mut text = format!(
        "backward trace of lot {} ({}, {:.3} kg): {} sources, {} lots in between\n\n{}",
        lot.id(),
        lot.kind().label(),
        lot.mass().kg(),
        t.sources.len(),
        t.intermediates.len(),
        table.render()
    );
    if !t.intermediates.is_empty() {
        let mut through = Table::new(header(["through", "kind", "share of lot", "mass kg"]), 2);
        for a in &t.intermediates {
            let mut row = vec![
                a.lot.id().to_string(),
                a.lot.kind().label(),
                format!("{:.2} %", a.share.percent()),
                format!("{:.3}", a.mass.kg()),
            ];
            row.extend(kg_cells(&a.elements));
            through.row(row);
        }
        text.push_str("\n\n");
        text.push_str(&through.render());
    }
    text
}

fn forward_table(t: &ForwardTrace<'_>) -> String {
    let lot = t.lot;
    let mut table = Table::new(header(["lot", "kind", "share of lot", "mass kg"]), 2);
    for a in &t.lots {
        let mut row = vec![
            a.lot.id().to_string(),
            a.lot.kind().label(),
            format!("{:.2} %", a.share.percent()),
            format!("{:.3}", a.mass.kg()),
        ];
        row.extend(kg_cells(&a.elements));
        table.row(row);
    }
    let products = t
        .of_kind(|k| matches!(k, remine_domain::LotKind::Product(_)))
        .fold(ElementKg::default(), |acc, a| acc.plus(&a.elements));
    let mut total = vec![
        "total in products".to_string(),
        String::new(),
        String::new(),
        String::new(),
    ];
    total.extend(kg_cells(&products));
    table.row(total);
    let mut own = vec![
        format!("content of {}", lot.id()),
        String::new(),
        String::new(),
        format!("{:.3}", lot.mass().kg()),
    ];
    own.extend(kg_cells(lot.content()));
    table.row(own);
    format!(
        "forward trace of lot {} ({}, {:.3} kg): {} lots made from it\n\n{}",
        lot.id(),
        lot.kind().label(),
        lot.mass().kg(),
        t.lots.len(),
        table.render()
    )
}
