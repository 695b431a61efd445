//! Material lots and the genealogy that links them.
//!
//! Lots split (one black-mass lot feeds several leach batches) and merge
//! (hundreds of packs make one black-mass lot), so the genealogy is a
//! directed acyclic graph. [`Genealogy::sources`] attributes an element in a
//! lot back to the input units by proportional allocation (ISO 22095 mass
//! balance): through every merge, each input's share is its element mass
//! entering the blend.

use crate::{
    Chemistry, ContentSource, CountryCode, DomainError, Element, ElementMasses, Kilograms,
    PassportId,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// A lot identifier: 1 to 64 characters of letters, digits and `. _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LotId(String);

impl LotId {
    pub fn parse(s: &str) -> Result<LotId, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if ok {
            Ok(LotId(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "lot id",
                value: s.to_string(),
                why: "1-64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product that leaves the plant as a secondary raw material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProductKind {
    NickelSulphate,
    CobaltSulphate,
    LithiumCarbonate,
}

impl ProductKind {
    pub const ALL: [ProductKind; 3] = [
        ProductKind::NickelSulphate,
        ProductKind::CobaltSulphate,
        ProductKind::LithiumCarbonate,
    ];

    pub fn formula(self) -> &'static str {
        match self {
            ProductKind::NickelSulphate => "NiSO4.6H2O",
            ProductKind::CobaltSulphate => "CoSO4.7H2O",
            ProductKind::LithiumCarbonate => "Li2CO3",
        }
    }

    /// The element the product carries and its stoichiometric mass fraction.
    pub fn payable(self) -> (Element, f64) {
        match self {
            ProductKind::NickelSulphate => (Element::Ni, 0.2233),
            ProductKind::CobaltSulphate => (Element::Co, 0.2097),
            ProductKind::LithiumCarbonate => (Element::Li, 0.1879),
        }
    }

    pub fn from_formula(s: &str) -> Option<ProductKind> {
        ProductKind::ALL.into_iter().find(|p| p.formula() == s)
    }
}

/// A side fraction of the mechanical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SideFraction {
    Copper,
    Aluminium,
    Steel,
    Plastics,
}

impl SideFraction {
    pub const ALL: [SideFraction; 4] = [
        SideFraction::Copper,
        SideFraction::Aluminium,
        SideFraction::Steel,
        SideFraction::Plastics,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SideFraction::Copper => "Cu",
            SideFraction::Aluminium => "Al",
            SideFraction::Steel => "steel",
            SideFraction::Plastics => "plastics",
        }
    }
}

/// What a lot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LotKind {
    /// A received pack, module or cell.
    InputUnit,
    /// Units discharged together.
    DischargeBatch,
    /// Black mass, an intermediate labelled with its chemistry.
    BlackMass(Chemistry),
    SideFraction(SideFraction),
    LeachBatch,
    Solution,
    Product(ProductKind),
    Residue,
    Loss,
}

impl LotKind {
    /// The stable text code stored and sent over the API.
    pub fn code(self) -> String {
        match self {
            LotKind::InputUnit => "input-unit".into(),
            LotKind::DischargeBatch => "discharge-batch".into(),
            LotKind::BlackMass(c) => format!("black-mass:{}", c.name()),
            LotKind::SideFraction(s) => format!("side-fraction:{}", s.name()),
            LotKind::LeachBatch => "leach-batch".into(),
            LotKind::Solution => "solution".into(),
            LotKind::Product(p) => format!("product:{}", p.formula()),
            LotKind::Residue => "residue".into(),
            LotKind::Loss => "loss".into(),
        }
    }

    pub fn parse_code(s: &str) -> Result<LotKind, DomainError> {
        let bad = || DomainError::Malformed {
            what: "lot kind",
            value: s.to_string(),
            why: "unknown lot kind".into(),
        };
        let kind = match s.split_once(':') {
            None => match s {
                "input-unit" => LotKind::InputUnit,
                "discharge-batch" => LotKind::DischargeBatch,
                "leach-batch" => LotKind::LeachBatch,
                "solution" => LotKind::Solution,
                "residue" => LotKind::Residue,
                "loss" => LotKind::Loss,
                _ => return Err(bad()),
            },
            Some(("black-mass", c)) => LotKind::BlackMass(c.parse()?),
            Some(("side-fraction", f)) => LotKind::SideFraction(
                SideFraction::ALL
                    .into_iter()
                    .find(|x| x.name() == f)
                    .ok_or_else(bad)?,
            ),
            Some(("product", p)) => LotKind::Product(ProductKind::from_formula(p).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        Ok(kind)
    }

    /// Whether the lot is an output fraction at the recycled-material
    /// calculation point (Del. Reg. 2025/606): the products, and the Cu and Al
    /// fractions sold as secondary raw material. Black mass, solutions,
    /// residues (and the lithium in them) never count.
    pub fn is_output_fraction(self) -> bool {
        matches!(
            self,
            LotKind::Product(_)
                | LotKind::SideFraction(SideFraction::Copper)
                | LotKind::SideFraction(SideFraction::Aluminium)
        )
    }

    /// The element a lot of this kind is made to recover, if any: a
    /// product its payable metal, the copper fraction its copper. Recovery
    /// rates count an element only in the lots that recover it.
    pub fn recovered_element(self) -> Option<Element> {
        match self {
            LotKind::Product(p) => Some(p.payable().0),
            LotKind::SideFraction(SideFraction::Copper) => Some(Element::Cu),
            _ => None,
        }
    }

    /// The label a report shows: black mass carries its chemistry family.
    pub fn label(self) -> String {
        match self {
            LotKind::BlackMass(c) => format!("black mass-{}", c.family()),
            LotKind::Product(p) => p.formula().to_string(),
            other => other.code(),
        }
    }
}

/// A lot: an amount of material with an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Lot {
    id: LotId,
    kind: LotKind,
    mass: Kilograms,
    elements: ElementMasses,
    content_source: ContentSource,
    created_at: DateTime<Utc>,
    passport: Option<PassportId>,
    country_of_collection: Option<CountryCode>,
}

/// The fields of a lot before they are checked.
#[derive(Debug, Clone)]
pub struct LotFields {
    pub id: LotId,
    pub kind: LotKind,
    pub mass: Kilograms,
    pub elements: ElementMasses,
    /// Where the element masses came from; sets their uncertainty.
    pub content_source: ContentSource,
    pub created_at: DateTime<Utc>,
    pub passport: Option<PassportId>,
    pub country_of_collection: Option<CountryCode>,
}

impl Lot {
    /// Refuses element masses that add up to more than the lot (beyond
    /// rounding).
    pub fn new(f: LotFields) -> Result<Lot, DomainError> {
        let total = f.elements.total();
        if total.kg() > f.mass.kg() * (1.0 + 1e-9) + 1e-9 {
            return Err(DomainError::Inconsistent(format!(
                "lot {}: element masses {:.3} kg exceed the lot mass {:.3} kg",
                f.id,
                total.kg(),
                f.mass.kg()
            )));
        }
        Ok(Lot {
            id: f.id,
            kind: f.kind,
            mass: f.mass,
            elements: f.elements,
            content_source: f.content_source,
            created_at: f.created_at,
            passport: f.passport,
            country_of_collection: f.country_of_collection,
        })
    }

    pub fn id(&self) -> &LotId {
        &self.id
    }
    pub fn kind(&self) -> LotKind {
        self.kind
    }
    pub fn mass(&self) -> Kilograms {
        self.mass
    }
    pub fn elements(&self) -> &ElementMasses {
        &self.elements
    }
    pub fn content_source(&self) -> ContentSource {
        self.content_source
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn passport(&self) -> Option<&PassportId> {
        self.passport.as_ref()
    }
    pub fn country_of_collection(&self) -> Option<&CountryCode> {
        self.country_of_collection.as_ref()
    }
}

/// `mass` of lot `from` went into lot `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenealogyEdge {
    pub from: LotId,
    pub to: LotId,
    pub mass: Kilograms,
}

/// The lot graph: edges from inputs to outputs, kept acyclic.
#[derive(Debug, Clone, Default)]
pub struct Genealogy {
    inputs: HashMap<LotId, Vec<GenealogyEdge>>,
    outputs: HashMap<LotId, Vec<LotId>>,
}

impl Genealogy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the graph, refusing any edge that would close a cycle.
    pub fn from_edges(edges: impl IntoIterator<Item = GenealogyEdge>) -> Result<Self, DomainError> {
        let mut g = Genealogy::new();
        for e in edges {
            g.add(e)?;
        }
        Ok(g)
    }

    pub fn add(&mut self, e: GenealogyEdge) -> Result<(), DomainError> {
        if e.from == e.to || self.ancestors(&e.from).contains(&e.to) {
            return Err(DomainError::NotAllowed(format!(
                "edge {} -> {} would make the genealogy cyclic",
                e.from, e.to
            )));
        }
        self.outputs
            .entry(e.from.clone())
            .or_default()
            .push(e.to.clone());
        self.inputs.entry(e.to.clone()).or_default().push(e);
        Ok(())
    }

    /// The edges into `lot`.
    pub fn inputs_of(&self, lot: &LotId) -> &[GenealogyEdge] {
        self.inputs.get(lot).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every lot `lot` was made from, directly or not.
    pub fn ancestors(&self, lot: &LotId) -> HashSet<LotId> {
        self.walk(lot, |id| {
            self.inputs_of(id).iter().map(|e| e.from.clone()).collect()
        })
    }

    /// Every lot made from `lot`, directly or not (the recall impact).
    pub fn descendants(&self, lot: &LotId) -> HashSet<LotId> {
        self.walk(lot, |id| self.outputs.get(id).cloned().unwrap_or_default())
    }

    fn walk(&self, start: &LotId, next: impl Fn(&LotId) -> Vec<LotId>) -> HashSet<LotId> {
        let mut seen = HashSet::new();
        let mut stack = next(start);
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone()) {
                stack.extend(next(&id));
            }
        }
        seen
    }

    /// Attributes `amount` of `element` in `lot` to the lots without inputs
    /// (the received units) by proportional allocation. Each merge splits an
    /// amount among its inputs in proportion to the element mass each input
    /// brought in (edge mass times the input lot's element fraction); where
    /// that is zero for all inputs, in proportion to mass.
    pub fn sources(
        &self,
        lot: &LotId,
        element: Element,
        amount: Kilograms,
        lots: &HashMap<LotId, Lot>,
    ) -> BTreeMap<LotId, Kilograms> {
        let mut out = BTreeMap::new();
        self.allocate(lot, element, amount.kg(), lots, &mut out);
        out.into_iter()
            .filter_map(|(k, v)| Kilograms::new(v).ok().map(|m| (k, m)))
            .collect()
    }

    fn allocate(
        &self,
        lot: &LotId,
        element: Element,
        amount: f64,
        lots: &HashMap<LotId, Lot>,
        out: &mut BTreeMap<LotId, f64>,
    ) {
        let inputs = self.inputs_of(lot);
        if inputs.is_empty() {
            *out.entry(lot.clone()).or_insert(0.0) += amount;
            return;
        }
        let carried = |e: &GenealogyEdge| {
            lots.get(&e.from)
                .and_then(|l| {
                    e.mass
                        .fraction_of(l.mass())
                        .map(|f| l.elements().get(element).kg() * f.value())
                })
                .unwrap_or(0.0)
        };
        let weights: Vec<f64> = inputs.iter().map(carried).collect();
        let total: f64 = weights.iter().sum();
        let (weights, total) = if total > 0.0 {
            (weights, total)
        } else {
            let w: Vec<f64> = inputs.iter().map(|e| e.mass.kg()).collect();
            let t = w.iter().sum();
            (w, t)
        };
        if total <= 0.0 {
            return;
        }
        for (e, w) in inputs.iter().zip(weights) {
            self.allocate(&e.from, element, amount * w / total, lots, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> LotId {
        LotId::parse(s).unwrap()
    }

    fn kg(v: f64) -> Kilograms {
        Kilograms::new(v).unwrap()
    }

    fn edge(from: &str, to: &str, mass: f64) -> GenealogyEdge {
        GenealogyEdge {
            from: id(from),
            to: id(to),
            mass: kg(mass),
        }
    }

    fn lot(name: &str, mass: f64, ni: f64) -> (LotId, Lot) {
        let l = Lot::new(LotFields {
            id: id(name),
            kind: LotKind::InputUnit,
            mass: kg(mass),
            elements: [(Element::Ni, kg(ni))].into_iter().collect(),
            content_source: ContentSource::Declared,
            created_at: DateTime::UNIX_EPOCH,
            passport: None,
            country_of_collection: None,
        })
        .unwrap();
        (id(name), l)
    }

    #[test]
    fn lot_kinds_round_trip_through_their_codes() {
        for k in [
            LotKind::InputUnit,
            LotKind::BlackMass(Chemistry::Nmc811),
            LotKind::SideFraction(SideFraction::Copper),
            LotKind::Product(ProductKind::LithiumCarbonate),
            LotKind::Loss,
        ] {
            assert_eq!(LotKind::parse_code(&k.code()).unwrap(), k);
        }
        assert_eq!(
            LotKind::BlackMass(Chemistry::Nmc622).label(),
            "black mass-NMC"
        );
    }

    #[test]
    fn a_cycle_is_refused() {
        let mut g = Genealogy::from_edges([edge("a", "b", 1.0), edge("b", "c", 1.0)]).unwrap();
        assert!(g.add(edge("c", "a", 1.0)).is_err());
        assert!(g.add(edge("a", "a", 1.0)).is_err());
    }

    #[test]
    fn ancestors_and_descendants_follow_splits_and_merges() {
        let g = Genealogy::from_edges([
            edge("p1", "bm", 100.0),
            edge("p2", "bm", 100.0),
            edge("bm", "leach1", 50.0),
            edge("bm", "leach2", 50.0),
            edge("leach1", "ni", 10.0),
        ])
        .unwrap();
        let anc = g.ancestors(&id("ni"));
        assert!(anc.contains(&id("p1")) && anc.contains(&id("p2")) && anc.contains(&id("bm")));
        let desc = g.descendants(&id("p1"));
        assert_eq!(desc.len(), 4);
    }

    #[test]
    fn an_element_is_allocated_in_proportion_to_what_each_input_brought() {
        // p1 brings 30 kg Ni, p2 brings 10 kg Ni into one blend.
        let lots: HashMap<_, _> = [lot("p1", 300.0, 30.0), lot("p2", 300.0, 10.0)].into();
        let g = Genealogy::from_edges([edge("p1", "bm", 300.0), edge("p2", "bm", 300.0)]).unwrap();
        let s = g.sources(&id("bm"), Element::Ni, kg(20.0), &lots);
        assert!((s[&id("p1")].kg() - 15.0).abs() < 1e-9);
        assert!((s[&id("p2")].kg() - 5.0).abs() < 1e-9);
    }
}
