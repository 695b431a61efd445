//! Recovery rates by the rules of Reg. (EU) 2023/1542 Annex XII and
//! Del. Reg. (EU) 2025/606.
//!
//! rRM(element) = element in output fractions at the recycled-material
//! calculation point / element in the input fraction. Input is the year's
//! received units. Outputs are credited to the year whose input they were
//! made from, through the genealogy by proportional allocation, whenever they
//! were produced: so outputs of years x+1 and x+2 count for year x.

use crate::{Element, Genealogy, Kilograms, Lot, LotId, LotKind};
use chrono::Datelike;
use std::collections::HashMap;

/// A recovery target: the rate an element must reach by the end of a year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub by_end_of: i32,
    pub pct: f64,
}

impl Target {
    /// The Annex XII part C targets for `e`, if it has any.
    pub fn for_element(e: Element) -> Vec<Target> {
        let (t27, t31) = match e {
            Element::Co | Element::Cu | Element::Ni => (90.0, 95.0),
            Element::Li => (50.0, 80.0),
            _ => return vec![],
        };
        vec![
            Target {
                by_end_of: 2027,
                pct: t27,
            },
            Target {
                by_end_of: 2031,
                pct: t31,
            },
        ]
    }
}

/// The recovery of one element in one year.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementRecovery {
    pub element: Element,
    pub input: Kilograms,
    pub output: Kilograms,
    /// rRM in percent; `None` when the input holds none of the element.
    pub rate_pct: Option<f64>,
    /// One standard deviation of the rate, in percentage points.
    pub sigma_pct: Option<f64>,
    pub targets: Vec<(Target, bool)>,
}

/// Recovery rates for a calendar year.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryReport {
    pub year: i32,
    pub input_units: usize,
    pub input_mass: Kilograms,
    pub output_lots: usize,
    pub elements: Vec<ElementRecovery>,
}

impl RecoveryReport {
    /// Computes rRM for Co, Cu, Li and Ni over the lots and their genealogy.
    pub fn compute(year: i32, lots: &HashMap<LotId, Lot>, genealogy: &Genealogy) -> RecoveryReport {
        let inputs: Vec<&Lot> = lots
            .values()
            .filter(|l| l.kind() == LotKind::InputUnit && l.created_at().year() == year)
            .collect();
        let outputs: Vec<&Lot> = lots
            .values()
            .filter(|l| l.kind().is_output_fraction())
            .collect();
        let mut output_lots = 0;
        let mut credited: HashMap<Element, f64> = HashMap::new();
        // Variance of the credited output, from each output lot's own uncertainty.
        let mut output_var: HashMap<Element, f64> = HashMap::new();
        for out in &outputs {
            let mut counted = false;
            for e in Element::REPORTED {
                let amount = out.elements().get(e);
                if amount.kg() <= 0.0 {
                    continue;
                }
                let mut from_this_lot = 0.0;
                for (src, m) in genealogy.sources(out.id(), e, amount, lots) {
                    let from_year = lots.get(&src).is_some_and(|l| {
                        l.kind() == LotKind::InputUnit && l.created_at().year() == year
                    });
                    if from_year {
                        from_this_lot += m.kg();
                        counted = true;
                    }
                }
                *credited.entry(e).or_default() += from_this_lot;
                *output_var.entry(e).or_default() +=
                    (from_this_lot * out.content_source().relative_sigma()).powi(2);
            }
            output_lots += usize::from(counted);
        }
        let elements = Element::REPORTED
            .into_iter()
            .map(|e| {
                let input: Kilograms = inputs.iter().map(|l| l.elements().get(e)).sum();
                // Independent per-unit errors add in quadrature.
                let input_var: f64 = inputs
                    .iter()
                    .map(|l| {
                        (l.elements().get(e).kg() * l.content_source().relative_sigma()).powi(2)
                    })
                    .sum();
                let output = Kilograms::new(credited.get(&e).copied().unwrap_or(0.0))
                    .unwrap_or(Kilograms::ZERO);
                let output_rel = if output.kg() > 0.0 {
                    output_var.get(&e).copied().unwrap_or(0.0).sqrt() / output.kg()
                } else {
                    0.0
                };
                let (rate_pct, sigma_pct) = if input.kg() > 0.0 {
                    let rate = output.kg() / input.kg() * 100.0;
                    let rel_in = input_var.sqrt() / input.kg();
                    (
                        Some(rate),
                        Some(rate * (rel_in.powi(2) + output_rel.powi(2)).sqrt()),
                    )
                } else {
                    (None, None)
                };
                let targets = Target::for_element(e)
                    .into_iter()
                    .map(|t| (t, rate_pct.is_some_and(|r| r >= t.pct)))
                    .collect();
                ElementRecovery {
                    element: e,
                    input,
                    output,
                    rate_pct,
                    sigma_pct,
                    targets,
                }
            })
            .collect();
        RecoveryReport {
            year,
            input_units: inputs.len(),
            input_mass: inputs.iter().map(|l| l.mass()).sum(),
            output_lots,
            elements,
        }
    }

    pub fn element(&self, e: Element) -> Option<&ElementRecovery> {
        self.elements.iter().find(|r| r.element == e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lot::LotFields;
    use crate::{ContentSource, GenealogyEdge, ProductKind};
    use chrono::{TimeZone, Utc};

    fn kg(v: f64) -> Kilograms {
        Kilograms::new(v).unwrap()
    }

    fn lot(id: &str, kind: LotKind, year: i32, mass: f64, els: &[(Element, f64)]) -> Lot {
        Lot::new(LotFields {
            id: LotId::parse(id).unwrap(),
            kind,
            mass: kg(mass),
            elements: els.iter().map(|(e, m)| (*e, kg(*m))).collect(),
            content_source: ContentSource::Declared,
            created_at: Utc.with_ymd_and_hms(year, 6, 1, 0, 0, 0).unwrap(),
            passport: None,
            country_of_collection: None,
        })
        .unwrap()
    }

    fn edge(a: &str, b: &str, m: f64) -> GenealogyEdge {
        GenealogyEdge {
            from: LotId::parse(a).unwrap(),
            to: LotId::parse(b).unwrap(),
            mass: kg(m),
        }
    }

    fn plant(product_year: i32) -> (HashMap<LotId, Lot>, Genealogy) {
        let ls = [
            lot(
                "p1",
                LotKind::InputUnit,
                2026,
                500.0,
                &[(Element::Ni, 60.0), (Element::Li, 10.0)],
            ),
            lot(
                "p2",
                LotKind::InputUnit,
                2026,
                500.0,
                &[(Element::Ni, 40.0), (Element::Li, 10.0)],
            ),
            lot(
                "ni",
                LotKind::Product(ProductKind::NickelSulphate),
                product_year,
                400.0,
                &[(Element::Ni, 90.0)],
            ),
            lot(
                "res",
                LotKind::Residue,
                product_year,
                100.0,
                &[(Element::Li, 5.0)],
            ),
        ];
        let g = Genealogy::from_edges([
            edge("p1", "ni", 500.0),
            edge("p2", "ni", 500.0),
            edge("p1", "res", 1.0),
        ])
        .unwrap();
        (ls.into_iter().map(|l| (l.id().clone(), l)).collect(), g)
    }

    #[test]
    fn the_rate_is_output_over_input_of_the_year() {
        let (lots, g) = plant(2026);
        let r = RecoveryReport::compute(2026, &lots, &g);
        let ni = r.element(Element::Ni).unwrap();
        assert_eq!(ni.input.kg(), 100.0);
        assert!((ni.rate_pct.unwrap() - 90.0).abs() < 1e-9);
        assert_eq!(
            ni.targets[0],
            (
                Target {
                    by_end_of: 2027,
                    pct: 90.0
                },
                true
            )
        );
        assert!(!ni.targets[1].1);
    }

    #[test]
    fn lithium_in_a_residue_never_counts() {
        let (lots, g) = plant(2026);
        let r = RecoveryReport::compute(2026, &lots, &g);
        assert_eq!(r.element(Element::Li).unwrap().rate_pct, Some(0.0));
    }

    #[test]
    fn output_of_the_next_year_is_credited_to_the_input_year() {
        let (lots, g) = plant(2027);
        let r = RecoveryReport::compute(2026, &lots, &g);
        assert!((r.element(Element::Ni).unwrap().rate_pct.unwrap() - 90.0).abs() < 1e-9);
        let next = RecoveryReport::compute(2027, &lots, &g);
        assert_eq!(next.element(Element::Ni).unwrap().rate_pct, None);
    }

    #[test]
    fn the_rate_carries_the_uncertainty_of_inputs_and_outputs() {
        let (lots, g) = plant(2026);
        let r = RecoveryReport::compute(2026, &lots, &g);
        let ni = r.element(Element::Ni).unwrap();
        // Two declared inputs (5 % each) of 60 and 40 kg; one output lot
        // recorded as declared (5 %).
        let rel_in = ((60.0_f64 * 0.05).powi(2) + (40.0_f64 * 0.05).powi(2)).sqrt() / 100.0;
        let expected = 90.0 * (rel_in.powi(2) + 0.05_f64.powi(2)).sqrt();
        assert!(
            (ni.sigma_pct.unwrap() - expected).abs() < 1e-9,
            "{:?}",
            ni.sigma_pct
        );
    }

    #[test]
    fn an_element_absent_from_the_input_has_no_rate() {
        let (lots, g) = plant(2026);
        let r = RecoveryReport::compute(2026, &lots, &g);
        assert_eq!(r.element(Element::Co).unwrap().rate_pct, None);
    }
}
