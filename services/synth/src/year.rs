//! The generated plant year: units with their passports, lots with what
//! the plant booked and measured, the genealogy edges, and the truth
//! beside every lot.

use crate::passports::Doc;
use crate::{Instrument, SynthConfig, SynthError};
use chrono::{DateTime, Utc};
use remine_domain::{
    Assay, Chemistry, ContentSource, CountryCode, Element, ElementMasses, GenealogyEdge, Kilograms,
    Lot, LotFields, LotId, LotKind, MassFraction, MeasuredMass, Passport, PassportForm,
    ProductKind, SideFraction, UnitType,
};
use remine_sim::model::material::Material;
use std::collections::BTreeMap;

/// An input unit: its passport document and its input lot.
#[derive(Debug, Clone)]
pub struct Unit {
    pub(crate) lot: usize,
    pub(crate) doc: Doc,
}

impl Unit {
    /// The index of the unit's input lot in [`PlantYear::lots`].
    pub fn lot(&self) -> usize {
        self.lot
    }
    pub fn form(&self) -> PassportForm {
        self.doc.form
    }
    pub fn chemistry(&self) -> Chemistry {
        self.doc.chemistry
    }
    pub fn unit_type(&self) -> UnitType {
        self.doc.unit_type
    }
    pub fn country(&self) -> &CountryCode {
        &self.doc.country
    }
    /// Where the unit's passport is written under `passports/`: its folder
    /// or GB/T intake file; `None` for a unit without a passport (listed in
    /// `intake-declared.csv`).
    pub fn passport_path(&self) -> Option<String> {
        match self.doc.form {
            PassportForm::Declared => None,
            PassportForm::GbtIntake => Some(format!("{}.json", self.doc.id)),
            _ => Some(self.doc.serial.clone()),
        }
    }
    /// The passport the plant keeps for the unit (what `remine_passports`
    /// reads from its file).
    pub fn passport(&self) -> Result<Passport, SynthError> {
        self.doc.passport().map_err(SynthError::domain(format!(
            "passport of unit {}",
            self.doc.id
        )))
    }
}

/// A weighing as the plant recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighing {
    pub instrument: Instrument,
    pub wet_kg: f64,
    pub moisture: f64,
}

/// One assayed element as the lab reported it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssayResult {
    pub element: Element,
    pub fraction: f64,
    /// Absolute standard deviation of the fraction.
    pub sigma: f64,
}

/// A lot of the year: what the plant booked (mass, elements, weighing,
/// assays) and the truth.
#[derive(Debug, Clone)]
pub struct SynthLot {
    pub(crate) id: LotId,
    pub(crate) kind: LotKind,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) unit: Option<usize>,
    pub(crate) country: Option<CountryCode>,
    pub(crate) booked_kg: f64,
    pub(crate) booked: [f64; 9],
    pub(crate) source: ContentSource,
    pub(crate) weighing: Option<Weighing>,
    pub(crate) assay_by: Option<Instrument>,
    pub(crate) assays: Vec<AssayResult>,
    pub(crate) truth: Material,
    pub(crate) true_moisture: f64,
    pub(crate) remaining: Material,
    /// Booked mass not yet given to an edge (generation only).
    pub(crate) booked_left: f64,
}

impl SynthLot {
    pub fn id(&self) -> &LotId {
        &self.id
    }
    pub fn kind(&self) -> LotKind {
        self.kind
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// The index of the unit in [`PlantYear::units`], for an input lot.
    pub fn unit(&self) -> Option<usize> {
        self.unit
    }
    /// The mass the plant booked: the weighing's dry mass.
    pub fn booked_mass(&self) -> f64 {
        self.booked_kg
    }
    pub fn booked_element(&self, e: Element) -> f64 {
        self.booked[e as usize]
    }
    pub fn content_source(&self) -> ContentSource {
        self.source
    }
    pub fn weighing(&self) -> Option<&Weighing> {
        self.weighing.as_ref()
    }
    pub fn assays(&self) -> &[AssayResult] {
        &self.assays
    }
    /// The lab method of the assays.
    pub fn assay_instrument(&self) -> Option<Instrument> {
        self.assay_by
    }
    /// True dry mass when made.
    pub fn true_mass(&self) -> f64 {
        self.truth.total()
    }
    pub fn true_element(&self, e: Element) -> f64 {
        self.truth.element(e)
    }
    /// True untracked rest (oxygen, solvents, polymers, water, sulphate...).
    pub fn true_rest(&self) -> f64 {
        self.truth.rest()
    }
    pub fn true_moisture(&self) -> f64 {
        self.true_moisture
    }
    /// What is left of the lot at the end of the year (true dry mass).
    pub fn true_remaining_mass(&self) -> f64 {
        self.remaining.total()
    }
    pub fn true_remaining_element(&self, e: Element) -> f64 {
        self.remaining.element(e)
    }

    /// The lot as the store keeps it.
    pub fn to_lot(&self, year: &PlantYear) -> Result<Lot, SynthError> {
        let what = || format!("lot {}", self.id);
        let kg = |v: f64| Kilograms::new(v.max(0.0)).map_err(SynthError::domain(what()));
        let mut elements = ElementMasses::new();
        for e in Element::ALL {
            let v = self.booked[e as usize];
            if v > 0.0 {
                elements.add(e, kg(v)?);
            }
        }
        let passport = match self.unit {
            Some(u) => Some(year.units[u].passport()?.id().clone()),
            None => None,
        };
        Lot::new(LotFields {
            id: self.id.clone(),
            kind: self.kind,
            mass: kg(self.booked_kg)?,
            elements,
            content_source: self.source,
            created_at: self.created_at,
            passport,
            country_of_collection: self.country.clone(),
        })
        .map_err(SynthError::domain(what()))
    }

    /// The weighing as the store keeps it.
    pub fn measured_mass(&self) -> Result<Option<MeasuredMass>, SynthError> {
        let Some(w) = self.weighing else {
            return Ok(None);
        };
        let what = || format!("weighing of lot {}", self.id);
        let method = w
            .instrument
            .mass_method()
            .ok_or_else(|| SynthError::Config {
                setting: "instrument",
                why: format!("{} does not weigh", w.instrument.name()),
            })?;
        MeasuredMass::new(
            Kilograms::new(w.wet_kg).map_err(SynthError::domain(what()))?,
            MassFraction::new(w.moisture).map_err(SynthError::domain(what()))?,
            method,
            w.instrument.name(),
            Some(w.instrument.relative_sigma()),
        )
        .map(Some)
        .map_err(SynthError::domain(what()))
    }

    /// The assays as the store keeps them (one sample per lot).
    pub fn domain_assays(&self) -> Result<Vec<Assay>, SynthError> {
        let Some(by) = self.assay_by else {
            return Ok(Vec::new());
        };
        let sample = format!("{}-S1", self.id);
        self.assays
            .iter()
            .map(|a| {
                let what = || format!("assay of {} in lot {}", a.element, self.id);
                Assay::new(
                    self.id.clone(),
                    &sample,
                    a.element,
                    MassFraction::new(a.fraction).map_err(SynthError::domain(what()))?,
                    a.sigma,
                    by.name(),
                    by.lab(),
                )
                .map_err(SynthError::domain(what()))
            })
            .collect()
    }
}

/// `booked_kg` of lot `from` went into lot `to` (indices in
/// [`PlantYear::lots`]); `true_kg` is the true mass that moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthEdge {
    pub from: usize,
    pub to: usize,
    pub booked_kg: f64,
    pub true_kg: f64,
}

/// A whole generated year.
#[derive(Debug, Clone)]
pub struct PlantYear {
    pub(crate) config: SynthConfig,
    pub(crate) units: Vec<Unit>,
    pub(crate) lots: Vec<SynthLot>,
    pub(crate) edges: Vec<SynthEdge>,
}

/// Where the year's tracked elements are at its end, by fate: kg per
/// element in [`Element::ALL`] order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TruthBalance {
    /// Everything received (the input units).
    pub inputs: [f64; 9],
    /// By fate: `products`, `side fractions`, `residues`, `losses`, `stock`
    /// (what intermediate lots still hold).
    pub fates: BTreeMap<&'static str, [f64; 9]>,
}

impl TruthBalance {
    /// The fates together, element by element.
    pub fn accounted(&self) -> [f64; 9] {
        let mut sum = [0.0; 9];
        for f in self.fates.values() {
            for (s, v) in sum.iter_mut().zip(f) {
                *s += v;
            }
        }
        sum
    }
}

impl PlantYear {
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }
    pub fn units(&self) -> &[Unit] {
        &self.units
    }
    /// Every lot, in the order it was made (inputs before what they made).
    pub fn lots(&self) -> &[SynthLot] {
        &self.lots
    }
    /// Every edge, in the order its output lot was made.
    pub fn edges(&self) -> &[SynthEdge] {
        &self.edges
    }
    /// The edges into each lot, by lot index.
    pub fn edges_into(&self) -> Vec<Vec<usize>> {
        let mut into = vec![Vec::new(); self.lots.len()];
        for (i, e) in self.edges.iter().enumerate() {
            into[e.to].push(i);
        }
        into
    }
    pub fn domain_edge(&self, e: &SynthEdge) -> Result<GenealogyEdge, SynthError> {
        Ok(GenealogyEdge {
            from: self.lots[e.from].id.clone(),
            to: self.lots[e.to].id.clone(),
            mass: Kilograms::new(e.booked_kg.max(0.0)).map_err(SynthError::domain(format!(
                "edge into {}",
                self.lots[e.to].id
            )))?,
        })
    }

    /// The truth at the end of the year, by fate.
    pub fn truth_balance(&self) -> TruthBalance {
        let mut b = TruthBalance::default();
        for lot in &self.lots {
            let fate = match lot.kind {
                LotKind::InputUnit => {
                    for e in Element::ALL {
                        b.inputs[e as usize] += lot.truth.element(e);
                    }
                    "stock"
                }
                LotKind::Product(_) => "products",
                LotKind::SideFraction(_) => "side fractions",
                LotKind::Residue => "residues",
                LotKind::Loss => "losses",
                _ => "stock",
            };
            let slot = b.fates.entry(fate).or_insert([0.0; 9]);
            for e in Element::ALL {
                slot[e as usize] += lot.remaining.element(e);
            }
        }
        b
    }

    /// The year's true recovery of `e`: the element in the output fractions
    /// that recover it (the product whose payable metal it is; the Cu and
    /// Al side fractions for Cu and Al) over the element received. Ni that
    /// sticks to the copper foil is not recovered Ni.
    pub fn true_recovery(&self, e: Element) -> Option<f64> {
        let input: f64 = self
            .lots
            .iter()
            .filter(|l| l.kind == LotKind::InputUnit)
            .map(|l| l.truth.element(e))
            .sum();
        let out: f64 = self
            .lots
            .iter()
            .filter(|l| recovers(l.kind, e))
            .map(|l| l.truth.element(e))
            .sum();
        (input > 0.0).then(|| out / input)
    }

    /// A short account of the year: units by form and chemistry, lots by
    /// kind, true masses and recoveries.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        out.push_str(&format!(
            "plant year {} from seed {}: {} input units\n",
            c.year(),
            c.seed(),
            self.units.len()
        ));
        for b in c.biases() {
            out.push_str(&format!(
                "  biased instrument: {} {:+.2} %\n",
                b.instrument.name(),
                b.relative * 100.0
            ));
        }
        let mut forms: BTreeMap<&str, usize> = BTreeMap::new();
        let mut chems: BTreeMap<&str, usize> = BTreeMap::new();
        let mut types: BTreeMap<&str, usize> = BTreeMap::new();
        for u in &self.units {
            *forms.entry(u.doc.form.name()).or_default() += 1;
            *chems.entry(u.doc.chemistry.name()).or_default() += 1;
            *types.entry(u.doc.unit_type.name()).or_default() += 1;
        }
        let line = |m: &BTreeMap<&str, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("units by form: {}\n", line(&forms)));
        out.push_str(&format!("units by chemistry: {}\n", line(&chems)));
        out.push_str(&format!("units by type: {}\n", line(&types)));
        let mut kinds: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        for l in &self.lots {
            let k = kinds.entry(kind_group(l.kind)).or_default();
            k.0 += 1;
            k.1 += l.truth.total();
        }
        out.push_str("lots by kind (count, true t):\n");
        for (k, (n, kg)) in &kinds {
            out.push_str(&format!("  {k:<22} {n:>8} {:>12.3}\n", kg / 1000.0));
        }
        out.push_str(&format!("genealogy edges: {}\n", self.edges.len()));
        let assays: usize = self.lots.iter().map(|l| l.assays.len()).sum();
        let weighings = self.lots.iter().filter(|l| l.weighing.is_some()).count();
        out.push_str(&format!("weighings: {weighings}, assays: {assays}\n"));
        let b = self.truth_balance();
        let stock = b.fates.get("stock").copied().unwrap_or([0.0; 9]);
        out.push_str("true yearly recovery (output fractions / input):");
        for e in [Element::Ni, Element::Co, Element::Li, Element::Cu] {
            match self.true_recovery(e) {
                Some(r) => out.push_str(&format!(" {e} {:.2} %", r * 100.0)),
                None => out.push_str(&format!(" {e} -")),
            }
        }
        out.push('\n');
        out.push_str(&format!(
            "in stock at year end (black mass): Ni {:.1} kg, Co {:.1} kg, Li {:.1} kg\n",
            stock[Element::Ni as usize],
            stock[Element::Co as usize],
            stock[Element::Li as usize]
        ));
        out
    }
}

/// Whether lots of `kind` are an output fraction that recovers `e`.
pub fn recovers(kind: LotKind, e: Element) -> bool {
    match kind {
        LotKind::Product(p) => p.payable().0 == e,
        LotKind::SideFraction(SideFraction::Copper) => e == Element::Cu,
        LotKind::SideFraction(SideFraction::Aluminium) => e == Element::Al,
        _ => false,
    }
}

/// The row a lot kind is counted in by the summary.
fn kind_group(k: LotKind) -> String {
    match k {
        LotKind::BlackMass(c) => format!("black mass-{}", c.family()),
        LotKind::SideFraction(s) => format!("side fraction {}", s.name()),
        LotKind::Product(p) => p.formula().to_string(),
        other => other.code(),
    }
}

/// Products and side fractions a route makes, for the generator.
pub(crate) const PRODUCTS: [ProductKind; 3] = ProductKind::ALL;
pub(crate) const SIDES: [SideFraction; 4] = SideFraction::ALL;
