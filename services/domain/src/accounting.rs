//! Metal accounting facts: measured masses, lab assays, and the stock
//! events (samples, adjustments, corrections) that move mass besides
//! production.
//!
//! A mass is weighed wet and carries its moisture, the method and
//! instrument that weighed it, and its uncertainty (domain brief section 6
//! gives each method's typical one). Several assays of one lot and element
//! combine by inverse-variance weighting. Events are append-only facts: a
//! correction is a new event that names the one it corrects.

use crate::{DomainError, Element, Kilograms, LotId, MassFraction, Uncertain};
use std::fmt;

/// How a mass was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MassMethod {
    Weighbridge,
    PlatformScale,
    BeltWeigher,
    FlowMeter,
    TankVolume,
    /// Stated on a passport or a delivery note, not weighed here.
    Declared,
    /// Computed (a model, a difference), not measured.
    Estimated,
}

impl MassMethod {
    pub const ALL: [MassMethod; 7] = [
        MassMethod::Weighbridge,
        MassMethod::PlatformScale,
        MassMethod::BeltWeigher,
        MassMethod::FlowMeter,
        MassMethod::TankVolume,
        MassMethod::Declared,
        MassMethod::Estimated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MassMethod::Weighbridge => "weighbridge",
            MassMethod::PlatformScale => "platform_scale",
            MassMethod::BeltWeigher => "belt_weigher",
            MassMethod::FlowMeter => "flow_meter",
            MassMethod::TankVolume => "tank_volume",
            MassMethod::Declared => "declared",
            MassMethod::Estimated => "estimated",
        }
    }

    pub fn parse(s: &str) -> Result<MassMethod, DomainError> {
        MassMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| DomainError::Malformed {
                what: "mass method",
                value: s.to_string(),
                why: "expected weighbridge, platform_scale, belt_weigher, flow_meter, tank_volume, declared or estimated".into(),
            })
    }

    /// The typical relative standard deviation (1 sigma) of the method,
    /// from domain brief section 6 (the upper end of each range: a plant's
    /// instruments are rarely at their best).
    pub fn typical_relative_sigma(self) -> f64 {
        match self {
            MassMethod::Weighbridge => 0.002,
            MassMethod::PlatformScale => 0.001,
            MassMethod::BeltWeigher => 0.005,
            MassMethod::FlowMeter => 0.005,
            MassMethod::TankVolume => 0.02,
            MassMethod::Declared => 0.02,
            MassMethod::Estimated => 0.10,
        }
    }
}

impl fmt::Display for MassMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Absolute standard deviation of a moisture determination (section 6: +-0.3 %).
pub const MOISTURE_SIGMA: f64 = 0.003;

/// A weighed mass: wet mass, its moisture, how and with what it was weighed,
/// and its relative uncertainty.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredMass {
    wet: Kilograms,
    moisture: MassFraction,
    method: MassMethod,
    instrument: String,
    relative_sigma: f64,
}

impl MeasuredMass {
    /// `relative_sigma` defaults to the method's typical one. Refuses a
    /// moisture of 100 % (nothing dry is left), a relative sigma outside
    /// (0, 1), and an instrument name longer than 64 characters.
    pub fn new(
        wet: Kilograms,
        moisture: MassFraction,
        method: MassMethod,
        instrument: &str,
        relative_sigma: Option<f64>,
    ) -> Result<MeasuredMass, DomainError> {
        if moisture.value() >= 1.0 {
            return Err(DomainError::OutOfRange {
                what: "moisture",
                rule: "below 100 %",
                value: format!("{} %", moisture.percent()),
            });
        }
        let rel = relative_sigma.unwrap_or_else(|| method.typical_relative_sigma());
        if !(rel.is_finite() && rel > 0.0 && rel < 1.0) {
            return Err(DomainError::OutOfRange {
                what: "relative uncertainty of a mass",
                rule: "above 0 and below 1",
                value: rel.to_string(),
            });
        }
        let instrument = instrument.trim();
        if instrument.chars().count() > 64 {
            return Err(DomainError::Malformed {
                what: "instrument",
                value: instrument.to_string(),
                why: "at most 64 characters".into(),
            });
        }
        Ok(MeasuredMass {
            wet,
            moisture,
            method,
            instrument: instrument.to_string(),
            relative_sigma: rel,
        })
    }

    /// A dry mass weighed by `method` (no moisture).
    pub fn dry(mass: Kilograms, method: MassMethod, instrument: &str) -> Result<Self, DomainError> {
        MeasuredMass::new(mass, MassFraction::ZERO, method, instrument, None)
    }

    pub fn wet(&self) -> Kilograms {
        self.wet
    }

    pub fn moisture(&self) -> MassFraction {
        self.moisture
    }

    pub fn method(&self) -> MassMethod {
        self.method
    }

    pub fn instrument(&self) -> &str {
        &self.instrument
    }

    pub fn relative_sigma(&self) -> f64 {
        self.relative_sigma
    }

    /// The water-free mass with its standard deviation: the weighing's
    /// relative error and the moisture's absolute error, in quadrature.
    pub fn dry_mass(&self) -> Uncertain<Kilograms> {
        let w = self.wet.kg();
        let m = self.moisture.value();
        let dry = w * (1.0 - m);
        let sigma = ((w * self.relative_sigma * (1.0 - m)).powi(2)
            + if m > 0.0 {
                (w * MOISTURE_SIGMA).powi(2)
            } else {
                0.0
            })
        .sqrt();
        Uncertain::new(
            Kilograms::new(dry).unwrap_or(Kilograms::ZERO),
            Kilograms::new(sigma).unwrap_or(Kilograms::ZERO),
        )
    }
}

/// A lab result: one element's mass fraction in a sample of a lot.
#[derive(Debug, Clone, PartialEq)]
pub struct Assay {
    lot: LotId,
    sample: String,
    element: Element,
    fraction: MassFraction,
    sigma: f64,
    method: String,
    lab: String,
}

impl Assay {
    /// `sigma` is the absolute standard deviation of the fraction (0.002
    /// for +-0.2 percentage points); it must be above 0 and below 1.
    /// Sample, method and lab are named (1 to 64 characters).
    pub fn new(
        lot: LotId,
        sample: &str,
        element: Element,
        fraction: MassFraction,
        sigma: f64,
        method: &str,
        lab: &str,
    ) -> Result<Assay, DomainError> {
        if !(sigma.is_finite() && sigma > 0.0 && sigma < 1.0) {
            return Err(DomainError::OutOfRange {
                what: "assay uncertainty",
                rule: "above 0 and below 1 (a mass fraction)",
                value: sigma.to_string(),
            });
        }
        let name = |what: &'static str, s: &str| {
            let t = s.trim();
            if t.is_empty() || t.chars().count() > 64 {
                Err(DomainError::Malformed {
                    what,
                    value: s.to_string(),
                    why: "1 to 64 characters".into(),
                })
            } else {
                Ok(t.to_string())
            }
        };
        Ok(Assay {
            lot,
            sample: name("sample", sample)?,
            element,
            fraction,
            sigma,
            method: name("assay method", method)?,
            lab: name("lab", lab)?,
        })
    }

    pub fn lot(&self) -> &LotId {
        &self.lot
    }

    pub fn sample(&self) -> &str {
        &self.sample
    }

    pub fn element(&self) -> Element {
        self.element
    }

    pub fn fraction(&self) -> MassFraction {
        self.fraction
    }

    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn lab(&self) -> &str {
        &self.lab
    }
}

/// Combines assays of one element by inverse-variance weighting: the
/// weighted mean and its standard deviation `1 / sqrt(sum 1/sigma^2)`.
/// `None` when there are none; an error when they are of different
/// elements or lots.
pub fn combine_assays<'a>(
    assays: impl IntoIterator<Item = &'a Assay>,
) -> Result<Option<Uncertain<MassFraction>>, DomainError> {
    let mut assays = assays.into_iter();
    let Some(first) = assays.next() else {
        return Ok(None);
    };
    let weight = |a: &Assay| 1.0 / (a.sigma * a.sigma);
    let (mut sw, mut swx) = (weight(first), weight(first) * first.fraction.value());
    for a in assays {
        if a.element != first.element || a.lot != first.lot {
            return Err(DomainError::Inconsistent(format!(
                "cannot combine an assay of {} in lot {} with one of {} in lot {}",
                first.element.symbol(),
                first.lot,
                a.element.symbol(),
                a.lot
            )));
        }
        let w = weight(a);
        sw += w;
        swx += w * a.fraction.value();
    }
    let mean = MassFraction::new(swx / sw)?;
    let sigma = MassFraction::new((1.0 / sw).sqrt())?;
    Ok(Some(Uncertain::new(mean, sigma)))
}

/// A stock movement besides production: a sample taken, a stock-take
/// adjustment, or the correction of an earlier event.
#[derive(Debug, Clone, PartialEq)]
pub enum StockEvent {
    /// Mass taken from the lot for the lab.
    Sample { sample: String, mass: Kilograms },
    /// A stock-take found more (positive) or less (negative) than booked.
    Adjustment { delta_kg: f64 },
    /// Replaces the mass of an earlier event (by its sequence number):
    /// `delta_kg` is what the correction changes the lot's stock by.
    Correction { corrects: i64, delta_kg: f64 },
}

impl StockEvent {
    pub fn name(&self) -> &'static str {
        match self {
            StockEvent::Sample { .. } => "sample",
            StockEvent::Adjustment { .. } => "stock_adjustment",
            StockEvent::Correction { .. } => "correction",
        }
    }

    /// How the event changes the lot's stock, in kg (negative: less).
    pub fn stock_change_kg(&self) -> f64 {
        match self {
            StockEvent::Sample { mass, .. } => -mass.kg(),
            StockEvent::Adjustment { delta_kg } | StockEvent::Correction { delta_kg, .. } => {
                *delta_kg
            }
        }
    }

    /// Refuses a non-finite or zero change, and an unnamed sample.
    pub fn check(&self) -> Result<(), DomainError> {
        let d = self.stock_change_kg();
        if !d.is_finite() || d == 0.0 {
            return Err(DomainError::OutOfRange {
                what: "stock change",
                rule: "a finite, non-zero mass",
                value: d.to_string(),
            });
        }
        if let StockEvent::Sample { sample, .. } = self
            && (sample.trim().is_empty() || sample.chars().count() > 64)
        {
            return Err(DomainError::Malformed {
                what: "sample",
                value: sample.clone(),
                why: "1 to 64 characters".into(),
            });
        }
        Ok(())
    }
}

/// A lot's stock: what it was made with, less what was consumed from it,
/// plus stock events. Consuming beyond it is refused.
pub fn remaining_stock(made: Kilograms, consumed: Kilograms, events_kg: f64) -> f64 {
    made.kg() - consumed.kg() + events_kg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot() -> LotId {
        LotId::parse("BM-NMC-1").unwrap()
    }

    fn ni(f: f64, sigma: f64) -> Assay {
        Assay::new(
            lot(),
            "S-1",
            Element::Ni,
            MassFraction::new(f).unwrap(),
            sigma,
            "ICP-OES",
            "lab A",
        )
        .unwrap()
    }

    #[test]
    fn assays_combine_by_inverse_variance() {
        let c = combine_assays(&[ni(0.20, 0.01), ni(0.23, 0.02)])
            .unwrap()
            .unwrap();
        // weights 10000 and 2500: (0.2*10000 + 0.23*2500) / 12500 = 0.206
        assert!((c.value().value() - 0.206).abs() < 1e-12);
        assert!((c.sigma().value() - (1.0f64 / 12500.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn assays_of_different_elements_do_not_combine() {
        let co = Assay::new(
            lot(),
            "S-1",
            Element::Co,
            MassFraction::new(0.1).unwrap(),
            0.01,
            "ICP",
            "A",
        )
        .unwrap();
        let e = combine_assays(&[ni(0.2, 0.01), co]).unwrap_err();
        assert!(e.to_string().contains("Co"), "{e}");
        assert_eq!(combine_assays(&[]).unwrap(), None);
    }

    #[test]
    fn an_assay_needs_a_positive_uncertainty_and_a_lab() {
        let f = MassFraction::new(0.2).unwrap();
        assert!(Assay::new(lot(), "S", Element::Ni, f, 0.0, "ICP", "A").is_err());
        assert!(Assay::new(lot(), "S", Element::Ni, f, 0.01, "ICP", " ").is_err());
    }

    #[test]
    fn dry_mass_takes_off_moisture_and_adds_its_uncertainty() {
        let m = MeasuredMass::new(
            Kilograms::new(1000.0).unwrap(),
            MassFraction::new(0.05).unwrap(),
            MassMethod::Weighbridge,
            "WB-1",
            None,
        )
        .unwrap();
        let d = m.dry_mass();
        assert!((d.value().kg() - 950.0).abs() < 1e-9);
        let expected = ((1000.0f64 * 0.002 * 0.95).powi(2) + 3.0f64.powi(2)).sqrt();
        assert!((d.sigma().kg() - expected).abs() < 1e-9);
    }

    #[test]
    fn a_mass_that_is_all_water_or_without_uncertainty_is_refused() {
        let kg = Kilograms::new(10.0).unwrap();
        assert!(
            MeasuredMass::new(
                kg,
                MassFraction::new(1.0).unwrap(),
                MassMethod::PlatformScale,
                "S1",
                None
            )
            .is_err()
        );
        assert!(
            MeasuredMass::new(
                kg,
                MassFraction::ZERO,
                MassMethod::PlatformScale,
                "S1",
                Some(0.0)
            )
            .is_err()
        );
    }

    #[test]
    fn stock_events_say_how_they_change_stock() {
        let s = StockEvent::Sample {
            sample: "S-9".into(),
            mass: Kilograms::new(2.0).unwrap(),
        };
        assert_eq!(s.stock_change_kg(), -2.0);
        assert!(StockEvent::Adjustment { delta_kg: 0.0 }.check().is_err());
        assert!(
            StockEvent::Adjustment { delta_kg: f64::NAN }
                .check()
                .is_err()
        );
        assert!(s.check().is_ok());
    }
}
