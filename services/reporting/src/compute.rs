//! The yearly recovery report, computed from a [`ReportInput`].
//!
//! The year's input fraction is every input unit received in the calendar
//! year. Every other lot is traced back to the input units by
//! proportional allocation ([`LotGraph::backward`]), and the part of it
//! that came from the year's units is booked where the lot belongs:
//! - an output fraction at the recycled-material calculation point
//!   ([`LotKind::is_output_fraction`]) made by the end of year x+2 counts
//!   for rRM, made in the EU or outside it by where its facility is, with
//!   the elements it recovers ([`recovers`]: a product its payable
//!   element, the Cu and Al fractions their metal; nickel on copper foil is
//!   not recovered nickel);
//! - a fraction listed for recycling efficiency counts its mass for rRE
//!   (a product counts the element mass it carries, not the reagents'
//!   sulphate, carbonate and water);
//! - residues (the lithium in them included), losses and other fractions
//!   count for nothing;
//! - an intermediate lot passes the part of it that later lots took to the
//!   next step; the part still in stock is credited to year x by the known
//!   process efficiencies of the facility configuration (the output it will
//!   give in years x+1 and x+2), unless a downstream facility took it;
//! - a downstream facility's outputs are credited to the lots it took, and
//!   through them to the units, in proportion to each element; lithium in
//!   slag never counts.
//!
//! Lot masses are water-free, as remine books them (a weighing's moisture
//! is taken off when the lot is booked).
//!
//! The same bookings are summed twice, by Member State of collection and by
//! process step; the two sums must agree (the per-step masses sum to the
//! totals), or the computation fails rather than print a table that does
//! not add up.

// Element masses are fixed arrays indexed in step by the position in
// REPORT_ELEMENTS, several at once: index loops read best here.
#![allow(clippy::needless_range_loop)]

use crate::model::*;
use crate::{DownstreamData, FractionType, ReportError, ReportInput};
use chrono::{Datelike, SecondsFormat};
use remine_domain::{Element, ElementKg, LotGraph, LotId, LotKind, Target};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The elements a report has rows for: the four with targets, then Mn and Al.
pub const REPORT_ELEMENTS: [Element; 6] = [
    Element::Co,
    Element::Cu,
    Element::Li,
    Element::Ni,
    Element::Mn,
    Element::Al,
];
const N: usize = REPORT_ELEMENTS.len();

/// Every chemistry remine knows is lithium-based.
const STREAM: &str = "lithium-based";

/// Masses below this (kg) are rounding, not material.
const EPS_KG: f64 = 1e-9;

fn tonnes(kg: f64) -> f64 {
    kg / 1000.0
}

fn el_array(e: &ElementKg) -> [f64; N] {
    REPORT_ELEMENTS.map(|x| e.get(x).kg())
}

/// Sums per Member State of collection (`None`: unknown).
#[derive(Debug, Default, Clone)]
struct CountryAcc {
    units: usize,
    input_mass: f64,
    input: [f64; N],
    input_var: [f64; N],
    out_eu: [f64; N],
    out_non_eu: [f64; N],
    credited: [f64; N],
    out_var: [f64; N],
    rre_mass: f64,
}

impl CountryAcc {
    fn add(&mut self, o: &CountryAcc) {
        self.units += o.units;
        self.input_mass += o.input_mass;
        self.rre_mass += o.rre_mass;
        for i in 0..N {
            self.input[i] += o.input[i];
            self.input_var[i] += o.input_var[i];
            self.out_eu[i] += o.out_eu[i];
            self.out_non_eu[i] += o.out_non_eu[i];
            self.credited[i] += o.credited[i];
            self.out_var[i] += o.out_var[i];
        }
    }

    fn book_output(&mut self, eu: bool, el: &[f64; N], rel_sigma: f64) {
        for i in 0..N {
            if eu {
                self.out_eu[i] += el[i];
            } else {
                self.out_non_eu[i] += el[i];
            }
            self.out_var[i] += (el[i] * rel_sigma).powi(2);
        }
    }
}

#[derive(Debug, Default, Clone)]
struct LineAcc {
    label: String,
    lots: BTreeSet<String>,
    mass: f64,
    el: [f64; N],
    at_rm: bool,
    further: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct RowAcc {
    input: f64,
    out_eu: f64,
    out_non_eu: f64,
    credited: f64,
    intermediate: f64,
    other: f64,
    stock: f64,
}

#[derive(Debug, Clone)]
struct StepAcc {
    id: String,
    name: String,
    facility: FacilityDoc,
    inputs: BTreeMap<String, LineAcc>,
    intermediates: BTreeMap<String, LineAcc>,
    outputs: BTreeMap<String, LineAcc>,
    others: BTreeMap<String, LineAcc>,
    stock: BTreeMap<String, LineAcc>,
    rows: [RowAcc; N],
}

impl StepAcc {
    fn new(id: String, name: String, facility: FacilityDoc) -> StepAcc {
        StepAcc {
            id,
            name,
            facility,
            inputs: BTreeMap::new(),
            intermediates: BTreeMap::new(),
            outputs: BTreeMap::new(),
            others: BTreeMap::new(),
            stock: BTreeMap::new(),
            rows: [RowAcc::default(); N],
        }
    }
}

fn book_line(
    map: &mut BTreeMap<String, LineAcc>,
    label: &str,
    lot: &str,
    mass: f64,
    el: &[f64; N],
    at_rm: bool,
    further: Option<String>,
) {
    // One line per label and destination: black mass going to two steps
    // is two lines.
    let key = format!("{label}\u{1f}{}", further.as_deref().unwrap_or(""));
    let l = map.entry(key).or_default();
    l.label = label.to_string();
    l.lots.insert(lot.to_string());
    l.mass += mass;
    for i in 0..N {
        l.el[i] += el[i];
    }
    l.at_rm = at_rm;
    if further.is_some() {
        l.further = further;
    }
}

fn lines(map: &BTreeMap<String, LineAcc>) -> Vec<FractionLine> {
    map.values()
        .map(|l| FractionLine {
            type_label: l.label.clone(),
            lots: l.lots.len(),
            mass_tonnes: tonnes(l.mass),
            elements_tonnes: REPORT_ELEMENTS
                .iter()
                .zip(l.el)
                .map(|(e, kg)| (e.symbol().to_string(), tonnes(kg)))
                .collect(),
            at_rm_calculation_point: l.at_rm,
            further_step: l.further.clone(),
        })
        .collect()
}

/// The part of a lot that came from the year's units, per country.
type Parts = BTreeMap<Option<String>, (f64, [f64; N])>;

fn scaled(el: &[f64; N], f: f64) -> [f64; N] {
    el.map(|v| v * f)
}

/// Stock of one kind of lot and element, and its credit.
#[derive(Debug, Default)]
struct Deferred {
    lots: BTreeSet<String>,
    stock: f64,
    efficiency: Option<f64>,
    credit: f64,
}

/// A downstream lot's part from the year's units per country: the
/// fraction of its mass and of each element.
type UpstreamFractions = BTreeMap<Option<String>, (f64, [f64; N])>;

/// What the computation collects before it writes the document.
struct Books<'a> {
    input: &'a ReportInput,
    countries: BTreeMap<Option<String>, CountryAcc>,
    steps: Vec<StepAcc>,
    flows: BTreeMap<(usize, String, String), f64>,
    deferred: BTreeMap<(String, usize), Deferred>,
    output_lots: Vec<OutputLotLine>,
    warnings: Vec<Warning>,
}

impl Books<'_> {
    fn flow(&mut self, from: &str, to: &str, el: &[f64; N]) {
        for (i, v) in el.iter().enumerate() {
            if *v > EPS_KG {
                *self
                    .flows
                    .entry((i, from.to_string(), to.to_string()))
                    .or_default() += v;
            }
        }
    }

    fn country(&mut self, c: &Option<String>) -> &mut CountryAcc {
        self.countries.entry(c.clone()).or_default()
    }
}

fn facility_doc(f: &crate::Facility) -> FacilityDoc {
    FacilityDoc {
        name: f.name.clone(),
        street: Some(f.street.clone()),
        city: Some(f.city.clone()),
        postal_code: Some(f.postal_code.clone()),
        country: f.country.as_str().to_string(),
        in_eu: f.in_eu(),
        bpnl: f.bpnl.clone(),
        bpna: f.bpna.clone(),
    }
}

/// The step a made lot belongs to: the one consuming the kind of the lot
/// it was made from.
fn step_of(
    input: &ReportInput,
    first_input_kind: &HashMap<&LotId, LotKind>,
    lot: &LotId,
) -> Option<usize> {
    first_input_kind
        .get(lot)
        .and_then(|k| input.facility.step_consuming(*k))
}

/// Computes the report. Fails with [`ReportError::NoData`] when no unit was
/// received in the year, [`ReportError::Genealogy`] when the lots do not
/// make a graph, [`ReportError::Downstream`] when a downstream document
/// names a lot the plant does not know, and [`ReportError::Invariant`]
/// should the per-step sums not match the totals.
pub fn compute(input: &ReportInput) -> Result<RecoveryReport, ReportError> {
    let year = input.year;
    let graph = LotGraph::new(&input.lots, &input.edges).map_err(ReportError::Genealogy)?;
    let cfg = &input.facility;
    let own = facility_doc(cfg.facility());
    let own_eu = cfg.facility().in_eu();

    let year_units: HashMap<&LotId, Option<String>> = input
        .lots
        .iter()
        .filter(|l| l.kind() == LotKind::InputUnit && l.created_at().year() == year)
        .map(|l| {
            (
                l.id(),
                l.country_of_collection().map(|c| c.as_str().to_string()),
            )
        })
        .collect();
    if year_units.is_empty() {
        return Err(ReportError::NoData { year });
    }

    let kinds: HashMap<&LotId, LotKind> = input.lots.iter().map(|l| (l.id(), l.kind())).collect();
    let mut out_mass: HashMap<&LotId, f64> = HashMap::new();
    let mut first_input_kind: HashMap<&LotId, LotKind> = HashMap::new();
    for e in &input.edges {
        *out_mass.entry(&e.from).or_default() += e.mass.kg();
        if let Some(k) = kinds.get(&e.from) {
            first_input_kind.entry(&e.to).or_insert(*k);
        }
    }

    let mut books = Books {
        input,
        countries: BTreeMap::new(),
        steps: cfg
            .steps()
            .iter()
            .map(|s| StepAcc::new(s.id().to_string(), s.name().to_string(), own.clone()))
            .collect(),
        flows: BTreeMap::new(),
        deferred: BTreeMap::new(),
        output_lots: Vec::new(),
        warnings: Vec::new(),
    };

    // Downstream facilities' steps follow the plant's own, renumbered.
    let mut shipped_to: HashMap<LotId, String> = HashMap::new();
    let mut ds_step_index: Vec<HashMap<String, usize>> = Vec::new();
    for d in &input.downstream {
        let mut map = HashMap::new();
        for (local, name) in d.steps() {
            let idx = books.steps.len();
            map.insert(local.clone(), idx);
            books.steps.push(StepAcc::new(
                format!("N_{idx}"),
                format!("{name} ({})", d.facility().name),
                d.facility_doc(),
            ));
        }
        let first = d
            .steps()
            .first()
            .and_then(|(l, _)| map.get(l))
            .map(|i| format!("N_{i}"))
            .unwrap_or_default();
        for o in d.outputs() {
            for s in &o.sources {
                shipped_to
                    .entry(s.upstream_lot.clone())
                    .or_insert(first.clone());
            }
        }
        ds_step_index.push(map);
    }

    let mut unconsumed_kinds: BTreeSet<String> = BTreeSet::new();
    let mut no_credit_kinds: BTreeSet<String> = BTreeSet::new();
    let mut units_without_content = Vec::new();
    let mut overdrawn = Vec::new();
    let mut chemistries = BTreeSet::new();

    for lot in &input.lots {
        let out = out_mass.get(lot.id()).copied().unwrap_or(0.0);
        let mass = lot.mass().kg();
        if out > mass * (1.0 + 1e-6) + EPS_KG {
            overdrawn.push((lot.id().to_string(), out, mass));
        }
    }
    for (id, out, mass) in overdrawn {
        books.warnings.push(
            Warning::new(
                "shares-do-not-sum-to-one",
                format!(
                    "lot {id}: its edges out take {out:.3} kg of its {mass:.3} kg ({:.2} %): \
                     the lots made from it share more than all of it",
                    out / mass.max(EPS_KG) * 100.0
                ),
            )
            .lot(id.clone()),
        );
    }

    // The input fraction, and units still in stock.
    let n0 = books.steps[0].id.clone();
    for lot in &input.lots {
        let Some(country) = year_units.get(lot.id()) else {
            continue;
        };
        let content = lot.elements();
        if content.is_empty() {
            units_without_content.push(lot.id().to_string());
        }
        let el = REPORT_ELEMENTS.map(|e| content.get(e).kg());
        let rel = lot.content_source().relative_sigma();
        let acc = books.country(country);
        acc.units += 1;
        acc.input_mass += lot.mass().kg();
        for i in 0..N {
            acc.input[i] += el[i];
            acc.input_var[i] += (el[i] * rel).powi(2);
        }
        book_line(
            &mut books.steps[0].inputs,
            &format!("waste batteries (EWC {})", cfg.input_ewc_code()),
            lot.id().as_str(),
            lot.mass().kg(),
            &el,
            false,
            None,
        );
        for i in 0..N {
            books.steps[0].rows[i].input += el[i];
        }
        books.flow("input", &n0, &el);

        let mass = lot.mass().kg();
        let out = out_mass.get(lot.id()).copied().unwrap_or(0.0);
        let remaining = if mass > 0.0 {
            ((mass - out) / mass).clamp(0.0, 1.0)
        } else {
            0.0
        };
        if remaining * mass > 1e-6 {
            let mut parts = Parts::new();
            parts.insert(country.clone(), (mass, el));
            book_stock(
                &mut books,
                0,
                lot.kind(),
                lot.id(),
                &parts,
                remaining,
                own_eu,
                &mut no_credit_kinds,
            );
        }
    }

    // Everything made, traced back to the year's units.
    for lot in &input.lots {
        if !first_input_kind.contains_key(lot.id()) {
            continue;
        }
        let trace = graph.backward(lot.id()).map_err(ReportError::Genealogy)?;
        let mut parts = Parts::new();
        for s in &trace.sources {
            if let Some(country) = year_units.get(s.lot.id()) {
                let p = parts.entry(country.clone()).or_insert((0.0, [0.0; N]));
                p.0 += s.mass.kg();
                let el = el_array(&s.elements);
                for i in 0..N {
                    p.1[i] += el[i];
                }
            }
        }
        if parts.is_empty() {
            continue;
        }
        let total_mass: f64 = parts.values().map(|p| p.0).sum();
        let mut total_el = [0.0; N];
        for p in parts.values() {
            for i in 0..N {
                total_el[i] += p.1[i];
            }
        }
        let kind = lot.kind();
        let s = match step_of(input, &first_input_kind, lot.id()) {
            Some(s) => s,
            None => {
                if let Some(k) = first_input_kind.get(lot.id()) {
                    unconsumed_kinds.insert(k.code());
                }
                cfg.steps().len() - 1
            }
        };
        let step_id = books.steps[s].id.clone();
        let label = kind.label();
        let id = lot.id().as_str();
        if let LotKind::BlackMass(c) = kind {
            chemistries.insert(c.family().to_string());
        }
        match kind {
            LotKind::Product(_) | LotKind::SideFraction(_) | LotKind::Residue | LotKind::Loss => {
                let produced = lot.created_at().year();
                let rm = kind.is_output_fraction();
                let rre = cfg.counts_for_rre(kind);
                let late = produced > year + 2;
                if late && (rm || rre) {
                    books.warnings.push(
                        Warning::new(
                            "output-after-x-plus-2",
                            format!(
                                "output lot {id} ({label}) was made in {produced}, after {}: \
                                 its part from {year}'s input is not credited",
                                year + 2
                            ),
                        )
                        .lot(id),
                    );
                }
                let counted_rm = rm && !late;
                let counted_rre = rre && !late;
                // Only the elements the fraction recovers count; the rest
                // of its content (Ni on copper foil) is not recovered.
                let mask = REPORT_ELEMENTS.map(|e| recovers(kind, e));
                let keep = |el: &[f64; N]| {
                    let mut out = *el;
                    for i in 0..N {
                        if !mask[i] {
                            out[i] = 0.0;
                        }
                    }
                    out
                };
                let rest = |el: &[f64; N]| {
                    let mut out = *el;
                    for i in 0..N {
                        if mask[i] {
                            out[i] = 0.0;
                        }
                    }
                    out
                };
                let (total_el, not_recovered) = if counted_rm {
                    (keep(&total_el), rest(&total_el))
                } else {
                    (total_el, [0.0; N])
                };
                if counted_rm && not_recovered.iter().any(|v| *v > EPS_KG) {
                    for i in 0..N {
                        books.steps[s].rows[i].other += not_recovered[i];
                    }
                    books.flow(&step_id, "other", &not_recovered);
                }
                if counted_rm {
                    let rel = lot.content_source().relative_sigma();
                    for (country, (_, el)) in &parts {
                        books.country(country).book_output(own_eu, &keep(el), rel);
                    }
                    for i in 0..N {
                        let row = &mut books.steps[s].rows[i];
                        if own_eu {
                            row.out_eu += total_el[i];
                        } else {
                            row.out_non_eu += total_el[i];
                        }
                    }
                    book_line(
                        &mut books.steps[s].outputs,
                        &label,
                        id,
                        total_mass,
                        &total_el,
                        true,
                        None,
                    );
                    let to = if own_eu { "output-eu" } else { "output-non-eu" };
                    books.flow(&step_id, to, &total_el);
                    if input.assays.get(lot.id()).is_none_or(|a| a.is_empty()) {
                        books.warnings.push(
                            Warning::new(
                                "output-lot-without-assays",
                                format!(
                                    "output lot {id} ({label}) has no assay: its element masses \
                                     are as booked ({}), not measured",
                                    lot.content_source().name()
                                ),
                            )
                            .lot(id),
                        );
                    }
                    books.output_lots.push(OutputLotLine {
                        lot_id: id.to_string(),
                        type_label: label.clone(),
                        facility: own.name.clone(),
                        step_id: step_id.clone(),
                        produced_year: produced,
                        made_in_eu: own_eu,
                        at_rm_calculation_point: true,
                        mass_tonnes: tonnes(lot.mass().kg()),
                        credited_elements_tonnes: REPORT_ELEMENTS
                            .iter()
                            .zip(total_el)
                            .map(|(e, v)| (e.symbol().to_string(), tonnes(v)))
                            .collect(),
                    });
                } else {
                    for i in 0..N {
                        books.steps[s].rows[i].other += total_el[i];
                    }
                    book_line(
                        &mut books.steps[s].others,
                        &label,
                        id,
                        total_mass,
                        &total_el,
                        false,
                        None,
                    );
                    books.flow(&step_id, "other", &total_el);
                }
                if counted_rre {
                    for (country, (m, el)) in &parts {
                        let counted = match kind {
                            // The element mass a product carries, not the
                            // reagents' anions and water of crystallization.
                            LotKind::Product(_) => keep(el).iter().sum::<f64>(),
                            _ => *m,
                        };
                        books.country(country).rre_mass += counted;
                    }
                }
            }
            _ => {
                let mass = lot.mass().kg();
                let out = out_mass.get(lot.id()).copied().unwrap_or(0.0);
                let consumed = if mass > 0.0 {
                    (out / mass).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                let remaining = 1.0 - consumed;
                let next = cfg.step_consuming(kind);
                if let Some(t) = next
                    && t != s
                    && consumed > 0.0
                {
                    let passed = scaled(&total_el, consumed);
                    let t_id = books.steps[t].id.clone();
                    for i in 0..N {
                        books.steps[s].rows[i].intermediate += passed[i];
                        books.steps[t].rows[i].input += passed[i];
                    }
                    book_line(
                        &mut books.steps[s].intermediates,
                        &label,
                        id,
                        total_mass * consumed,
                        &passed,
                        false,
                        Some(t_id.clone()),
                    );
                    book_line(
                        &mut books.steps[t].inputs,
                        &label,
                        id,
                        total_mass * consumed,
                        &passed,
                        false,
                        None,
                    );
                    books.flow(&step_id, &t_id, &passed);
                }
                if next.is_none() && consumed > 0.0 {
                    unconsumed_kinds.insert(kind.code());
                }
                if remaining * mass > 1e-6 {
                    if let Some(ds_first) = shipped_to.get(lot.id()) {
                        let shipped = scaled(&total_el, remaining);
                        let di = books.steps.iter().position(|x| &x.id == ds_first);
                        for i in 0..N {
                            books.steps[s].rows[i].intermediate += shipped[i];
                            if let Some(di) = di {
                                books.steps[di].rows[i].input += shipped[i];
                            }
                        }
                        book_line(
                            &mut books.steps[s].intermediates,
                            &label,
                            id,
                            total_mass * remaining,
                            &shipped,
                            false,
                            Some(ds_first.clone()),
                        );
                        if let Some(di) = di {
                            book_line(
                                &mut books.steps[di].inputs,
                                &label,
                                id,
                                total_mass * remaining,
                                &shipped,
                                false,
                                None,
                            );
                        }
                        books.flow(&step_id, ds_first, &shipped);
                    } else {
                        book_stock(
                            &mut books,
                            s,
                            kind,
                            lot.id(),
                            &parts,
                            remaining,
                            own_eu,
                            &mut no_credit_kinds,
                        );
                    }
                }
            }
        }
    }

    for (di, d) in input.downstream.iter().enumerate() {
        merge_downstream(&mut books, &graph, &year_units, d, &ds_step_index[di], year)?;
    }

    if !unconsumed_kinds.is_empty() {
        books.warnings.push(
            Warning::new(
                "kind-without-step",
                format!(
                    "no process step consumes {}: lots made from them are listed under the last step, \
                     and year-x material in them is not passed on",
                    unconsumed_kinds.into_iter().collect::<Vec<_>>().join(", ")
                ),
            )
            .field("steps[].consumes"),
        );
    }
    for k in no_credit_kinds {
        books.warnings.push(
            Warning::new(
                "no-deferred-efficiency",
                format!(
                    "year-x material is in stock in lots of kind {k}, and the facility configuration \
                     gives no efficiency for it: it is not credited"
                ),
            )
            .field(format!("deferred_credit.{k}")),
        );
    }
    if !units_without_content.is_empty() {
        let n = units_without_content.len();
        let first: Vec<_> = units_without_content.iter().take(5).cloned().collect();
        books.warnings.push(
            Warning::new(
                "input-unit-without-content",
                format!(
                    "{n} input unit(s) have no element content (no passport composition, no chemistry, \
                     no assay), so their elements are missing from the input fraction: {}{}",
                    first.join(", "),
                    if n > 5 { ", ..." } else { "" }
                ),
            )
            .lot(first[0].clone()),
        );
    }

    finish(books, chemistries)
}

/// Whether an output fraction of `kind` recovers `element`: a product
/// its payable element (Ni in NiSO4.6H2O), the Cu and Al fractions their
/// metal. Other elements in them are not recovered as themselves.
pub fn recovers(kind: LotKind, element: Element) -> bool {
    match kind {
        LotKind::Product(p) => p.payable().0 == element,
        LotKind::SideFraction(remine_domain::SideFraction::Copper) => element == Element::Cu,
        LotKind::SideFraction(remine_domain::SideFraction::Aluminium) => element == Element::Al,
        _ => false,
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// Books the part `remaining` of a lot still in stock in step `s`, and its
/// credit by the configured efficiency.
#[allow(clippy::too_many_arguments)]
fn book_stock(
    books: &mut Books<'_>,
    s: usize,
    kind: LotKind,
    lot: &LotId,
    parts: &Parts,
    remaining: f64,
    own_eu: bool,
    no_credit: &mut BTreeSet<String>,
) {
    let cfg = &books.input.facility;
    let stage = kind.code();
    let label = kind.label();
    let step_id = books.steps[s].id.clone();
    if !cfg.has_deferred_credit(kind) {
        no_credit.insert(stage.clone());
    }
    let mut total_stock = [0.0; N];
    let mut total_mass = 0.0;
    let mut total_credit = [0.0; N];
    for (country, (m, el)) in parts {
        let stock = scaled(el, remaining);
        total_mass += m * remaining;
        let mut credit = [0.0; N];
        for (i, e) in REPORT_ELEMENTS.iter().enumerate() {
            total_stock[i] += stock[i];
            credit[i] = stock[i] * cfg.deferred_efficiency(kind, *e).unwrap_or(0.0);
            total_credit[i] += credit[i];
        }
        let acc = books.country(country);
        // A credit is as uncertain as an estimate (the efficiency is one).
        acc.book_output(
            own_eu,
            &credit,
            remine_domain::ContentSource::Estimated.relative_sigma(),
        );
        for i in 0..N {
            acc.credited[i] += credit[i];
        }
        // The credited output counts for rRE as a product does: by the
        // element mass it will carry.
        acc.rre_mass += credit.iter().sum::<f64>();
    }
    for (i, e) in REPORT_ELEMENTS.iter().enumerate() {
        let row = &mut books.steps[s].rows[i];
        row.stock += total_stock[i];
        row.credited += total_credit[i];
        if own_eu {
            row.out_eu += total_credit[i];
        } else {
            row.out_non_eu += total_credit[i];
        }
        if total_stock[i] > EPS_KG {
            let d = books.deferred.entry((stage.clone(), i)).or_default();
            d.efficiency = cfg.deferred_efficiency(kind, *e);
            d.lots.insert(lot.to_string());
            d.stock += total_stock[i];
            d.credit += total_credit[i];
        }
    }
    book_line(
        &mut books.steps[s].stock,
        &label,
        lot.as_str(),
        total_mass,
        &total_stock,
        false,
        None,
    );
    books.flow(&step_id, "stock", &total_stock);
}

/// Credits a downstream facility's outputs to the year's units through the
/// lots it took.
fn merge_downstream(
    books: &mut Books<'_>,
    graph: &LotGraph,
    year_units: &HashMap<&LotId, Option<String>>,
    d: &DownstreamData,
    steps: &HashMap<String, usize>,
    year: i32,
) -> Result<(), ReportError> {
    let eu = d.facility().country.is_eu();
    // A downstream plant takes lots from several suppliers: lots that are
    // not this plant's are someone else's, and are left out with a warning;
    // a document naming none of this plant's lots is not for this plant.
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut first_unknown = None;
    let mut known = 0usize;
    for (oi, o) in d.outputs().iter().enumerate() {
        for (si, src) in o.sources.iter().enumerate() {
            if graph.contains(&src.upstream_lot) {
                known += 1;
            } else {
                unknown.insert(src.upstream_lot.to_string());
                first_unknown.get_or_insert((oi, si, src.upstream_lot.to_string()));
            }
        }
    }
    // A lot this plant used up itself cannot also have gone downstream.
    let mut taken: HashMap<&LotId, f64> = HashMap::new();
    for e in &books.input.edges {
        *taken.entry(&e.from).or_default() += e.mass.kg();
    }
    let mut used_up: BTreeSet<String> = BTreeSet::new();
    for o in d.outputs() {
        for src in &o.sources {
            if let Some(l) = graph.lot(&src.upstream_lot) {
                let left = l.mass().kg() - taken.get(&src.upstream_lot).copied().unwrap_or(0.0);
                if left <= l.mass().kg() * 1e-6 {
                    used_up.insert(src.upstream_lot.to_string());
                }
            }
        }
    }
    if !used_up.is_empty() {
        books.warnings.push(Warning::new(
            "downstream-lot-used-up",
            format!(
                "{} names lots this plant made into other lots itself ({}): what it credits \
                 from them may be counted twice",
                d.origin(),
                used_up.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if let Some((oi, si, lot)) = first_unknown {
        if known == 0 {
            return Err(ReportError::downstream(
                d.origin(),
                format!("outputs[{oi}].sources[{si}].upstreamLotId"),
                format!(
                    "lot '{lot}' is not a lot of this plant, nor is any other the document names"
                ),
            ));
        }
        books.warnings.push(Warning::new(
            "downstream-lot-unknown",
            format!(
                "{} names lots that are not this plant's ({}): their shares are not credited",
                d.origin(),
                unknown.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    // Per upstream lot: per country, the fraction of each element (and of
    // the mass) that came from the year's units.
    let mut fractions: HashMap<LotId, UpstreamFractions> = HashMap::new();
    for (oi, o) in d.outputs().iter().enumerate() {
        let produced = o.produced_at.year();
        let field = |f: &str| format!("outputs[{oi}].{f}");
        let share_sum: f64 = o.sources.iter().map(|s| s.share).sum();
        let norm = if share_sum > 1.0 + 1e-6 {
            books.warnings.push(
                Warning::new(
                    "shares-do-not-sum-to-one",
                    format!(
                        "{}: output lot {} gives source shares summing to {share_sum:.4} (> 1); \
                         they are scaled down to sum to 1",
                        d.origin(),
                        o.lot_id
                    ),
                )
                .lot(o.lot_id.clone())
                .field(field("sources")),
            );
            1.0 / share_sum
        } else {
            if share_sum < 1.0 - 1e-6 {
                books.warnings.push(
                    Warning::new(
                        "shares-do-not-sum-to-one",
                        format!(
                            "{}: output lot {} gives source shares summing to {share_sum:.4} (< 1); \
                             only the shares given are credited",
                            d.origin(),
                            o.lot_id
                        ),
                    )
                    .lot(o.lot_id.clone())
                    .field(field("sources")),
                );
            }
            1.0
        };
        if produced > year + 2 {
            books.warnings.push(
                Warning::new(
                    "output-after-x-plus-2",
                    format!(
                        "{}: output lot {} was made in {produced}, after {}: not credited to {year}",
                        d.origin(),
                        o.lot_id,
                        year + 2
                    ),
                )
                .lot(o.lot_id.clone()),
            );
            continue;
        }
        let s = steps.get(&o.step_id).copied().ok_or_else(|| {
            ReportError::downstream(
                d.origin(),
                field("stepId"),
                format!("unknown step '{}'", o.step_id),
            )
        })?;
        let step_id = books.steps[s].id.clone();
        let out_el = REPORT_ELEMENTS.map(|e| o.elements.get(e).kg());
        let mut credited_total = [0.0; N];
        let mut credited_mass = 0.0;
        let mut li_in_slag = 0.0;
        for (si, src) in o.sources.iter().enumerate() {
            if !graph.contains(&src.upstream_lot) {
                continue;
            }
            if !fractions.contains_key(&src.upstream_lot) {
                let trace = graph.backward(&src.upstream_lot).map_err(|_| {
                    ReportError::downstream(
                        d.origin(),
                        format!("outputs[{oi}].sources[{si}].upstreamLotId"),
                        format!("lot '{}' is not a lot of this plant", src.upstream_lot),
                    )
                })?;
                let content = el_array(trace.lot.content());
                let lot_mass = trace.lot.mass().kg();
                let mut per = UpstreamFractions::new();
                for a in &trace.sources {
                    if let Some(c) = year_units.get(a.lot.id()) {
                        let p = per.entry(c.clone()).or_insert((0.0, [0.0; N]));
                        p.0 += ratio(a.mass.kg(), lot_mass);
                        let el = el_array(&a.elements);
                        for i in 0..N {
                            p.1[i] += ratio(el[i], content[i]);
                        }
                    }
                }
                fractions.insert(src.upstream_lot.clone(), per);
            }
            let share = src.share * norm;
            let per = fractions
                .get(&src.upstream_lot)
                .cloned()
                .unwrap_or_default();
            for (country, (mass_frac, el_frac)) in per {
                let mut el = [0.0; N];
                for i in 0..N {
                    el[i] = out_el[i] * share * el_frac[i];
                }
                if o.fraction_type == FractionType::Slag {
                    let li = REPORT_ELEMENTS
                        .iter()
                        .position(|e| *e == Element::Li)
                        .unwrap_or(0);
                    li_in_slag += el[li];
                    el[li] = 0.0;
                }
                let m = o.mass.kg() * share * mass_frac;
                credited_mass += m;
                if o.at_rm_calculation_point {
                    books.country(&country).book_output(
                        eu,
                        &el,
                        remine_domain::ContentSource::Assayed.relative_sigma(),
                    );
                    if o.fraction_type.counts_for_rre() {
                        let counted = match o.fraction_type {
                            FractionType::Product => el.iter().sum::<f64>(),
                            _ => m,
                        };
                        books.country(&country).rre_mass += counted;
                    }
                }
                for i in 0..N {
                    credited_total[i] += el[i];
                }
            }
        }
        if li_in_slag > EPS_KG {
            books.warnings.push(
                Warning::new(
                    "lithium-in-slag",
                    format!(
                        "{}: {li_in_slag:.3} kg Li in slag lot {} is not counted: lithium in slag never counts",
                        d.origin(),
                        o.lot_id
                    ),
                )
                .lot(o.lot_id.clone()),
            );
        }
        if li_in_slag > EPS_KG {
            let mut li = [0.0; N];
            if let Some(i) = REPORT_ELEMENTS.iter().position(|e| *e == Element::Li) {
                li[i] = li_in_slag;
                books.steps[s].rows[i].other += li_in_slag;
            }
            books.flow(&step_id, "other", &li);
        }
        if credited_total.iter().all(|v| *v <= EPS_KG) && credited_mass <= EPS_KG {
            continue;
        }
        let label = o.label.clone();
        // An output with nothing credited (a slag whose lithium is all it
        // has) is no output of the report.
        let counted = credited_total.iter().any(|v| *v > EPS_KG);
        if o.at_rm_calculation_point && counted {
            for i in 0..N {
                let row = &mut books.steps[s].rows[i];
                if eu {
                    row.out_eu += credited_total[i];
                } else {
                    row.out_non_eu += credited_total[i];
                }
            }
            book_line(
                &mut books.steps[s].outputs,
                &label,
                &o.lot_id,
                credited_mass,
                &credited_total,
                true,
                None,
            );
            books.flow(
                &step_id,
                if eu { "output-eu" } else { "output-non-eu" },
                &credited_total,
            );
            books.output_lots.push(OutputLotLine {
                lot_id: o.lot_id.clone(),
                type_label: label,
                facility: d.facility().name.clone(),
                step_id,
                produced_year: produced,
                made_in_eu: eu,
                at_rm_calculation_point: true,
                mass_tonnes: tonnes(o.mass.kg()),
                credited_elements_tonnes: REPORT_ELEMENTS
                    .iter()
                    .zip(credited_total)
                    .map(|(e, v)| (e.symbol().to_string(), tonnes(v)))
                    .collect(),
            });
        } else {
            for i in 0..N {
                books.steps[s].rows[i].other += credited_total[i];
            }
            book_line(
                &mut books.steps[s].others,
                &label,
                &o.lot_id,
                credited_mass,
                &credited_total,
                false,
                None,
            );
            books.flow(&step_id, "other", &credited_total);
        }
    }
    Ok(())
}

fn row(e: Element, i: usize, acc: &CountryAcc, input: &ReportInput) -> ElementRow {
    let inp = acc.input[i];
    let out = acc.out_eu[i] + acc.out_non_eu[i];
    let rate = (inp > EPS_KG).then(|| out / inp * 100.0);
    let (rel, basis) = match input.uncertainty.get(e) {
        Some(r) => (r, "reconciliation"),
        None => {
            let rel_in = ratio(acc.input_var[i].sqrt(), inp);
            let rel_out = ratio(acc.out_var[i].sqrt(), out);
            ((rel_in.powi(2) + rel_out.powi(2)).sqrt(), "content-sources")
        }
    };
    ElementRow {
        element: e.symbol().to_string(),
        m_input_tonnes: tonnes(inp),
        m_output_eu_tonnes: tonnes(acc.out_eu[i]),
        m_output_non_eu_tonnes: tonnes(acc.out_non_eu[i]),
        m_output_total_tonnes: tonnes(out),
        m_output_credited_tonnes: tonnes(acc.credited[i]),
        r_rm: rate,
        r_rm_sigma: rate.map(|r| r * rel),
        uncertainty_basis: basis.to_string(),
        targets: Target::for_element(e)
            .into_iter()
            .map(|t| TargetCheck {
                by_end_of: t.by_end_of,
                target_pct: t.pct,
                met: rate.is_some_and(|r| r >= t.pct),
            })
            .collect(),
    }
}

fn block(country: Option<String>, acc: &CountryAcc, input: &ReportInput) -> ResultBlock {
    ResultBlock {
        member_state_of_collection: country,
        input_units: acc.units,
        m_input_tonnes: tonnes(acc.input_mass),
        m_output_tonnes: tonnes(acc.rre_mass),
        r_re: (acc.input_mass > EPS_KG).then(|| acc.rre_mass / acc.input_mass * 100.0),
        rows: REPORT_ELEMENTS
            .iter()
            .enumerate()
            .map(|(i, e)| row(*e, i, acc, input))
            .collect(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn finish(
    mut books: Books<'_>,
    chemistries: BTreeSet<String>,
) -> Result<RecoveryReport, ReportError> {
    let input = books.input;
    let mut total = CountryAcc::default();
    for acc in books.countries.values() {
        total.add(acc);
    }

    // The checked invariant: per-step sums equal the totals.
    for (i, e) in REPORT_ELEMENTS.iter().enumerate() {
        let sum =
            |f: &dyn Fn(&RowAcc) -> f64| books.steps.iter().map(|s| f(&s.rows[i])).sum::<f64>();
        let checks = [
            ("output made in the EU", sum(&|r| r.out_eu), total.out_eu[i]),
            (
                "output made outside the EU",
                sum(&|r| r.out_non_eu),
                total.out_non_eu[i],
            ),
            (
                "output credited by efficiency",
                sum(&|r| r.credited),
                total.credited[i],
            ),
            ("input at N_0", books.steps[0].rows[i].input, total.input[i]),
        ];
        for (what, steps, totals) in checks {
            if !close(steps, totals) {
                return Err(ReportError::Invariant(format!(
                    "{e}: {what} is {steps:.6} kg over the steps but {totals:.6} kg in the totals"
                )));
            }
        }
    }

    let rows_total = block(None, &total, input);
    for r in &rows_total.rows {
        if let Some(rate) = r.r_rm
            && rate > 100.0 + 1e-9
        {
            books.warnings.push(
                Warning::new(
                    "rate-above-100",
                    format!(
                        "rRM of {} is {rate:.2} %, above 100 %: the output's assays or the input's \
                         content are off; the rate is shown as computed",
                        r.element
                    ),
                )
                .field(format!("rows.{}", r.element)),
            );
        }
    }
    if books.countries.contains_key(&None) {
        let n = books.countries.get(&None).map_or(0, |a| a.units);
        books.warnings.push(Warning::new(
            "unknown-member-state",
            format!("{n} input unit(s) have no country of collection: they are reported under an unknown Member State"),
        ));
    }
    let mut by_member_state: Vec<ResultBlock> = books
        .countries
        .iter()
        .filter(|(c, _)| c.is_some())
        .map(|(c, acc)| block(c.clone(), acc, input))
        .collect();
    if let Some(acc) = books.countries.get(&None) {
        by_member_state.push(block(None, acc, input));
    }

    let cfg = &input.facility;
    let mut states: BTreeSet<String> = BTreeSet::new();
    states.insert(cfg.facility().country.as_str().to_string());
    for d in &input.downstream {
        states.insert(d.facility().country.as_str().to_string());
    }
    let deferred_credits: Vec<DeferredCredit> = books
        .deferred
        .iter()
        .map(|((stage, i), d)| DeferredCredit {
            stage: stage.clone(),
            element: REPORT_ELEMENTS[*i].symbol().to_string(),
            lots: d.lots.len(),
            in_stock_tonnes: tonnes(d.stock),
            efficiency: d.efficiency,
            credited_tonnes: tonnes(d.credit),
        })
        .collect();
    let year = input.year;
    Ok(RecoveryReport {
        schema_version: REPORT_SCHEMA_VERSION.into(),
        document_type: "remine.recycling-report".into(),
        legal_basis: LegalBasis {
            regulation: "Regulation (EU) 2023/1542".into(),
            methodology: "Delegated Regulation (EU) 2025/606".into(),
            annex_section: "7".into(),
        },
        calendar_year: year,
        status: input.status.name().into(),
        generated_at: input
            .generated_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        first_recycler: facility_doc(cfg.facility()),
        member_states_of_recycling: states.into_iter().collect(),
        downstream_facilities: input.downstream.iter().map(|d| d.facility_doc()).collect(),
        main_treated_chemistries: chemistries.into_iter().collect(),
        streams: vec![StreamResult {
            battery_chemistry: STREAM.into(),
            ewc_code: cfg.input_ewc_code().into(),
            total: rows_total,
            by_member_state,
        }],
        steps: books
            .steps
            .iter()
            .map(|s| StepSummary {
                step_id: s.id.clone(),
                name: s.name.clone(),
                facility: s.facility.clone(),
                inputs: lines(&s.inputs),
                intermediate_fractions: lines(&s.intermediates),
                output_fractions: lines(&s.outputs),
                other_fractions: lines(&s.others),
                in_stock: lines(&s.stock),
                element_rows: REPORT_ELEMENTS
                    .iter()
                    .zip(s.rows)
                    .map(|(e, r)| StepElementRow {
                        element: e.symbol().to_string(),
                        m_input_tonnes: tonnes(r.input),
                        m_output_eu_tonnes: tonnes(r.out_eu),
                        m_output_non_eu_tonnes: tonnes(r.out_non_eu),
                        m_output_credited_tonnes: tonnes(r.credited),
                        m_intermediate_tonnes: tonnes(r.intermediate),
                        m_other_tonnes: tonnes(r.other),
                        m_stock_tonnes: tonnes(r.stock),
                    })
                    .collect(),
            })
            .collect(),
        deferred_output_allocation: DeferredAllocation {
            applied: deferred_credits.iter().any(|c| c.credited_tonnes > 0.0),
            years: vec![year + 1, year + 2],
            basis:
                "year-x input still in stock at report time, times the known process efficiency \
                    of the facility configuration per kind of lot and element"
                    .into(),
            credits: deferred_credits,
        },
        element_flows: books
            .flows
            .iter()
            .map(|((i, from, to), kg)| ElementFlow {
                element: REPORT_ELEMENTS[*i].symbol().to_string(),
                from: from.clone(),
                to: to.clone(),
                tonnes: tonnes(*kg),
            })
            .collect(),
        output_lots: books.output_lots,
        warnings: books.warnings,
    })
}
