//! Engineering units of recipe parameters, and values that carry them.
//!
//! A recipe file may write a temperature in degC or K, a concentration in
//! g/L or kg/m3, an acid in M or mol/L. Each unit belongs to one
//! [`Dimension`] with one canonical unit; values compare and convert through
//! it, and a conversion between dimensions is refused.

use crate::DomainError;
use std::fmt;

/// What a quantity measures. Units of one dimension convert into each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Temperature,
    Voltage,
    Current,
    Time,
    Pressure,
    /// Mass per volume (solids loading, free acid, Li in the feed).
    MassConcentration,
    /// Amount per volume (acid molarity).
    MolarConcentration,
    /// Gas volume fraction (O2 in the chamber).
    VolumeFraction,
    /// Gas volume flow at normal conditions.
    GasFlow,
    /// Solids mass flow (feed rate).
    MassFlow,
    RotationalSpeed,
    Length,
    Mass,
    Acidity,
    /// A dimensionless ratio (times stoichiometric, O:A phase ratio, a share).
    Ratio,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Temperature => "temperature",
            Dimension::Voltage => "voltage",
            Dimension::Current => "current",
            Dimension::Time => "time",
            Dimension::Pressure => "pressure",
            Dimension::MassConcentration => "mass concentration",
            Dimension::MolarConcentration => "molar concentration",
            Dimension::VolumeFraction => "volume fraction",
            Dimension::GasFlow => "gas flow",
            Dimension::MassFlow => "mass flow",
            Dimension::RotationalSpeed => "rotational speed",
            Dimension::Length => "length",
            Dimension::Mass => "mass",
            Dimension::Acidity => "acidity",
            Dimension::Ratio => "ratio",
        }
    }
}

/// An engineering unit. Each converts to its dimension's canonical unit by
/// `canonical = value * factor + offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Celsius,
    Kelvin,
    Volt,
    Millivolt,
    Ampere,
    Minute,
    Second,
    Hour,
    Millibar,
    Bar,
    Pascal,
    Kilopascal,
    GramPerLitre,
    KilogramPerCubicMetre,
    MolPerLitre,
    VolumePercent,
    NormalCubicMetrePerHour,
    TonnePerHour,
    KilogramPerHour,
    Rpm,
    Millimetre,
    Micrometre,
    Kilogram,
    Tonne,
    Ph,
    /// A bare ratio ("1", "x": times stoichiometric).
    One,
    Percent,
}

/// Every unit, with the spellings a recipe file may use (the first is the
/// canonical symbol).
const SPELLINGS: &[(Unit, &[&str])] = &[
    (Unit::Celsius, &["degC", "°C", "C", "CEL"]),
    (Unit::Kelvin, &["K", "KEL"]),
    (Unit::Volt, &["V"]),
    (Unit::Millivolt, &["mV"]),
    (Unit::Ampere, &["A"]),
    (Unit::Minute, &["min"]),
    (Unit::Second, &["s"]),
    (Unit::Hour, &["h"]),
    (Unit::Millibar, &["mbar"]),
    (Unit::Bar, &["bar"]),
    (Unit::Pascal, &["Pa"]),
    (Unit::Kilopascal, &["kPa"]),
    (Unit::GramPerLitre, &["g/L", "g/l", "GL"]),
    (Unit::KilogramPerCubicMetre, &["kg/m3", "kg/m^3"]),
    (Unit::MolPerLitre, &["mol/L", "M", "mol/l", "C38"]),
    (Unit::VolumePercent, &["vol%", "vol %", "% vol"]),
    (Unit::NormalCubicMetrePerHour, &["Nm3/h"]),
    (Unit::TonnePerHour, &["t/h"]),
    (Unit::KilogramPerHour, &["kg/h"]),
    (Unit::Rpm, &["rpm", "1/min"]),
    (Unit::Millimetre, &["mm"]),
    (Unit::Micrometre, &["um", "µm"]),
    (Unit::Kilogram, &["kg", "KGM"]),
    (Unit::Tonne, &["t"]),
    (Unit::Ph, &["pH"]),
    (Unit::One, &["1", "x", "-", "kg/kg", "C62"]),
    (Unit::Percent, &["%", "P1"]),
];

impl Unit {
    /// Reads a unit symbol as recipe files and tag maps write it.
    pub fn parse(s: &str) -> Result<Unit, DomainError> {
        let t = s.trim();
        SPELLINGS
            .iter()
            .find(|(_, names)| names.contains(&t))
            .map(|(u, _)| *u)
            .ok_or_else(|| DomainError::Malformed {
                what: "unit",
                value: s.to_string(),
                why: format!(
                    "not a known unit; known: {}",
                    SPELLINGS
                        .iter()
                        .map(|(_, n)| n[0])
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The symbol recipe files use.
    pub fn symbol(self) -> &'static str {
        SPELLINGS
            .iter()
            .find(|(u, _)| *u == self)
            .map(|(_, n)| n[0])
            .unwrap_or("?")
    }

    pub fn dimension(self) -> Dimension {
        use Dimension as D;
        match self {
            Unit::Celsius | Unit::Kelvin => D::Temperature,
            Unit::Volt | Unit::Millivolt => D::Voltage,
            Unit::Ampere => D::Current,
            Unit::Minute | Unit::Second | Unit::Hour => D::Time,
            Unit::Millibar | Unit::Bar | Unit::Pascal | Unit::Kilopascal => D::Pressure,
            Unit::GramPerLitre | Unit::KilogramPerCubicMetre => D::MassConcentration,
            Unit::MolPerLitre => D::MolarConcentration,
            Unit::VolumePercent => D::VolumeFraction,
            Unit::NormalCubicMetrePerHour => D::GasFlow,
            Unit::TonnePerHour | Unit::KilogramPerHour => D::MassFlow,
            Unit::Rpm => D::RotationalSpeed,
            Unit::Millimetre | Unit::Micrometre => D::Length,
            Unit::Kilogram | Unit::Tonne => D::Mass,
            Unit::Ph => D::Acidity,
            Unit::One | Unit::Percent => D::Ratio,
        }
    }

    /// The canonical unit of a dimension.
    pub fn canonical_of(d: Dimension) -> Unit {
        use Dimension as D;
        match d {
            D::Temperature => Unit::Celsius,
            D::Voltage => Unit::Volt,
            D::Current => Unit::Ampere,
            D::Time => Unit::Minute,
            D::Pressure => Unit::Millibar,
            D::MassConcentration => Unit::GramPerLitre,
            D::MolarConcentration => Unit::MolPerLitre,
            D::VolumeFraction => Unit::VolumePercent,
            D::GasFlow => Unit::NormalCubicMetrePerHour,
            D::MassFlow => Unit::TonnePerHour,
            D::RotationalSpeed => Unit::Rpm,
            D::Length => Unit::Millimetre,
            D::Mass => Unit::Kilogram,
            D::Acidity => Unit::Ph,
            D::Ratio => Unit::One,
        }
    }

    /// (factor, offset): canonical = value * factor + offset.
    fn to_canonical(self) -> (f64, f64) {
        match self {
            Unit::Kelvin => (1.0, -273.15),
            Unit::Millivolt => (1e-3, 0.0),
            Unit::Second => (1.0 / 60.0, 0.0),
            Unit::Hour => (60.0, 0.0),
            Unit::Bar => (1000.0, 0.0),
            Unit::Pascal => (0.01, 0.0),
            Unit::Kilopascal => (10.0, 0.0),
            Unit::KilogramPerHour => (1e-3, 0.0),
            Unit::Micrometre => (1e-3, 0.0),
            Unit::Tonne => (1000.0, 0.0),
            Unit::Percent => (0.01, 0.0),
            _ => (1.0, 0.0),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A finite number with its engineering unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    value: f64,
    unit: Unit,
}

impl Measure {
    /// Refuses NaN and infinities, and temperatures below absolute zero.
    pub fn new(value: f64, unit: Unit) -> Result<Measure, DomainError> {
        if !value.is_finite() {
            return Err(DomainError::OutOfRange {
                what: "value",
                rule: "a finite number",
                value: value.to_string(),
            });
        }
        let m = Measure { value, unit };
        if unit.dimension() == Dimension::Temperature && m.canonical() < -273.15 {
            return Err(DomainError::OutOfRange {
                what: "temperature",
                rule: "above absolute zero",
                value: m.to_string(),
            });
        }
        Ok(m)
    }

    pub fn value(self) -> f64 {
        self.value
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    pub fn dimension(self) -> Dimension {
        self.unit.dimension()
    }

    /// The value in its dimension's canonical unit.
    pub fn canonical(self) -> f64 {
        let (f, o) = self.unit.to_canonical();
        self.value * f + o
    }

    /// The same quantity in another unit of its dimension.
    pub fn to(self, unit: Unit) -> Result<Measure, DomainError> {
        if unit == self.unit {
            return Ok(self);
        }
        if unit.dimension() != self.dimension() {
            return Err(DomainError::Inconsistent(format!(
                "cannot convert {self} ({}) to {unit} ({})",
                self.dimension().name(),
                unit.dimension().name()
            )));
        }
        let (f, o) = unit.to_canonical();
        Ok(Measure {
            value: (self.canonical() - o) / f,
            unit,
        })
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: f64, u: &str) -> Measure {
        Measure::new(v, Unit::parse(u).unwrap()).unwrap()
    }

    #[test]
    fn kelvin_and_celsius_are_one_temperature() {
        assert!((m(348.15, "K").canonical() - 75.0).abs() < 1e-9);
        assert!((m(75.0, "degC").to(Unit::Kelvin).unwrap().value() - 348.15).abs() < 1e-9);
    }

    #[test]
    fn grams_per_litre_equal_kilograms_per_cubic_metre() {
        assert_eq!(m(120.0, "kg/m3").canonical(), m(120.0, "g/L").canonical());
    }

    #[test]
    fn molar_is_mol_per_litre() {
        assert_eq!(Unit::parse("M").unwrap(), Unit::parse("mol/L").unwrap());
    }

    #[test]
    fn conversion_across_dimensions_is_refused() {
        let e = m(2.0, "M").to(Unit::GramPerLitre).unwrap_err();
        assert!(e.to_string().contains("molar concentration"), "{e}");
    }

    #[test]
    fn unknown_unit_names_itself_and_the_known_ones() {
        let e = Unit::parse("furlong").unwrap_err().to_string();
        assert!(e.contains("furlong") && e.contains("degC"), "{e}");
    }

    #[test]
    fn below_absolute_zero_is_refused() {
        assert!(Measure::new(-300.0, Unit::Celsius).is_err());
        assert!(Measure::new(f64::NAN, Unit::Volt).is_err());
    }

    #[test]
    fn every_unit_round_trips_through_its_symbol() {
        for (u, _) in SPELLINGS {
            assert_eq!(Unit::parse(u.symbol()).unwrap(), *u);
        }
    }
}
