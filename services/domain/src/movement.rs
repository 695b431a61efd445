//! Movements of material between lots recorded as one step: a split of a
//! lot into parts, a blend of portions of several lots into one, or any
//! production step that makes several lots at once. A step is stored as a
//! whole or not at all (see [`crate::ports::LotStore::record_step`]).
//!
//! Contents follow the mass by proportional allocation (domain section 6,
//! ISO 22095 mass balance): a part of a split carries the lot's element
//! masses in proportion to its mass; a blend carries the sum of each
//! portion's share of its lot. When a split takes the whole lot, the last
//! part gets what the others leave, so the parts' element masses add up to
//! the lot's exactly.

use crate::{
    ContentSource, CountryCode, DomainError, ElementMasses, GenealogyEdge, Kilograms, Lot,
    LotFields, LotId, LotKind,
};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// What a step is, for its audit entry and the lot's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Split,
    Blend,
    Produce,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Split => "split",
            StepKind::Blend => "blend",
            StepKind::Produce => "produce",
        }
    }
}

/// New lots, each with the edges from the lots it was made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    kind: StepKind,
    outputs: Vec<(Lot, Vec<GenealogyEdge>)>,
}

impl Step {
    /// A step of `outputs`: refuses none, an output listed twice, an edge
    /// that does not end at its output, an input listed twice for one
    /// output, and an output that is also an input of the step.
    pub fn new(
        kind: StepKind,
        outputs: Vec<(Lot, Vec<GenealogyEdge>)>,
    ) -> Result<Step, DomainError> {
        if outputs.is_empty() {
            return Err(DomainError::Inconsistent(
                "a step makes at least one lot".into(),
            ));
        }
        let made: HashSet<&LotId> = outputs.iter().map(|(l, _)| l.id()).collect();
        if made.len() != outputs.len() {
            return Err(DomainError::Inconsistent(
                "a step lists one new lot twice".into(),
            ));
        }
        for (lot, edges) in &outputs {
            let mut from = HashSet::new();
            for e in edges {
                if &e.to != lot.id() {
                    return Err(DomainError::Inconsistent(format!(
                        "edge {} -> {} does not end at lot {}",
                        e.from,
                        e.to,
                        lot.id()
                    )));
                }
                if made.contains(&e.from) {
                    return Err(DomainError::Inconsistent(format!(
                        "lot {} is made by this step and cannot be its input",
                        e.from
                    )));
                }
                if !from.insert(&e.from) {
                    return Err(DomainError::Inconsistent(format!(
                        "input lot {} is listed twice for lot {}",
                        e.from,
                        lot.id()
                    )));
                }
            }
        }
        Ok(Step { kind, outputs })
    }

    pub fn kind(&self) -> StepKind {
        self.kind
    }

    pub fn outputs(&self) -> &[(Lot, Vec<GenealogyEdge>)] {
        &self.outputs
    }

    /// How much the step takes from each input lot, summed over outputs.
    pub fn takes(&self) -> Vec<(LotId, Kilograms)> {
        let mut out: Vec<(LotId, Kilograms)> = Vec::new();
        for e in self.outputs.iter().flat_map(|(_, edges)| edges) {
            match out.iter_mut().find(|(id, _)| *id == e.from) {
                Some((_, m)) => *m = *m + e.mass,
                None => out.push((e.from.clone(), e.mass)),
            }
        }
        out
    }
}

fn positive(what: &LotId, m: Kilograms) -> Result<(), DomainError> {
    if m.kg() > 0.0 {
        Ok(())
    } else {
        Err(DomainError::OutOfRange {
            what: "mass of a part or portion",
            rule: "> 0 kg",
            value: format!("{} kg for {what}", m.kg()),
        })
    }
}

/// Splits `source` into `parts` (new id and mass each; at least two) of the
/// same kind. The parts may leave some of the lot in stock; they may not
/// take more than `available` (what the lot has left).
pub fn split(
    source: &Lot,
    available: Kilograms,
    parts: &[(LotId, Kilograms)],
    at: DateTime<Utc>,
) -> Result<Step, DomainError> {
    if parts.len() < 2 {
        return Err(DomainError::Inconsistent(format!(
            "a split of lot {} needs at least two parts (got {})",
            source.id(),
            parts.len()
        )));
    }
    for (id, m) in parts {
        positive(id, *m)?;
    }
    let total: Kilograms = parts.iter().map(|(_, m)| *m).sum();
    if total.kg() > available.kg() * (1.0 + 1e-9) {
        return Err(DomainError::Inconsistent(format!(
            "the parts of lot {} weigh {} kg; it has {} kg in stock",
            source.id(),
            total.kg(),
            available.kg()
        )));
    }
    let whole = (total.kg() - source.mass().kg()).abs() <= source.mass().kg() * 1e-9;
    let mut given = ElementMasses::new();
    let mut outputs = Vec::with_capacity(parts.len());
    for (i, (id, mass)) in parts.iter().enumerate() {
        let elements = if whole && i + 1 == parts.len() {
            // The rest, so the parts add up to the lot exactly.
            source
                .elements()
                .iter()
                .map(|(e, m)| {
                    let rest = (m.kg() - given.get(e).kg()).max(0.0);
                    (e, Kilograms::new(rest).unwrap_or(Kilograms::ZERO))
                })
                .collect()
        } else {
            source.elements().scaled(mass.kg() / source.mass().kg())
        };
        given = given.plus(&elements);
        let lot = Lot::new(LotFields {
            id: id.clone(),
            kind: source.kind(),
            mass: *mass,
            elements,
            content_source: source.content_source(),
            created_at: at,
            passport: None,
            country_of_collection: source.country_of_collection().cloned(),
        })?;
        let edge = GenealogyEdge {
            from: source.id().clone(),
            to: id.clone(),
            mass: *mass,
        };
        outputs.push((lot, vec![edge]));
    }
    Step::new(StepKind::Split, outputs)
}

/// How well a blend's content is known: as poorly as its worst input.
fn weakest(a: ContentSource, b: ContentSource) -> ContentSource {
    let rank = |s| match s {
        ContentSource::Estimated => 0,
        ContentSource::Declared => 1,
        ContentSource::Assayed => 2,
    };
    if rank(b) < rank(a) { b } else { a }
}

/// Blends `portions` (a lot and the mass taken from it; at least two lots)
/// into a new lot `id` of `kind`. Each portion must be within its lot's
/// `available` stock, given beside it.
pub fn blend(
    id: LotId,
    kind: LotKind,
    portions: &[(&Lot, Kilograms, Kilograms)],
    at: DateTime<Utc>,
) -> Result<Step, DomainError> {
    if portions.len() < 2 {
        return Err(DomainError::Inconsistent(format!(
            "a blend into lot {id} needs portions of at least two lots (got {})",
            portions.len()
        )));
    }
    let mut elements = ElementMasses::new();
    let mut mass = Kilograms::ZERO;
    let mut source = ContentSource::Assayed;
    let mut countries: HashSet<Option<&CountryCode>> = HashSet::new();
    let mut edges = Vec::with_capacity(portions.len());
    for (lot, take, available) in portions {
        positive(lot.id(), *take)?;
        if take.kg() > available.kg() * (1.0 + 1e-9) {
            return Err(DomainError::Inconsistent(format!(
                "the blend into lot {id} takes {} kg of lot {}; it has {} kg in stock",
                take.kg(),
                lot.id(),
                available.kg()
            )));
        }
        elements = elements.plus(&lot.elements().scaled(take.kg() / lot.mass().kg()));
        mass = mass + *take;
        source = weakest(source, lot.content_source());
        countries.insert(lot.country_of_collection());
        edges.push(GenealogyEdge {
            from: lot.id().clone(),
            to: id.clone(),
            mass: *take,
        });
    }
    let country = match countries.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => one.cloned(),
        _ => None,
    };
    let lot = Lot::new(LotFields {
        id,
        kind,
        mass,
        elements,
        content_source: source,
        created_at: at,
        passport: None,
        country_of_collection: country,
    })?;
    Step::new(StepKind::Blend, vec![(lot, edges)])
}
