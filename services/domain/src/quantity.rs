//! Quantities that carry their unit in the type, and values with an uncertainty.
//!
//! A bare `f64` crosses no crate boundary: masses are [`Kilograms`], fractions
//! are [`MassFraction`], temperatures are [`Celsius`]. Constructors refuse
//! NaN, infinities and values outside the physical range.

use crate::DomainError;
use std::fmt;
use std::ops::{Add, Sub};

fn finite(what: &'static str, v: f64) -> Result<f64, DomainError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DomainError::OutOfRange {
            what,
            rule: "a finite number",
            value: v.to_string(),
        })
    }
}

/// A non-negative, finite mass in kilograms.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Kilograms(f64);

impl Kilograms {
    pub const ZERO: Kilograms = Kilograms(0.0);

    /// A mass of `kg` kilograms; refuses negative and non-finite values.
    pub fn new(kg: f64) -> Result<Self, DomainError> {
        let kg = finite("mass", kg)?;
        if kg < 0.0 {
            return Err(DomainError::OutOfRange {
                what: "mass",
                rule: ">= 0 kg",
                value: format!("{kg} kg"),
            });
        }
        Ok(Kilograms(kg))
    }

    pub fn from_grams(g: f64) -> Result<Self, DomainError> {
        Self::new(finite("mass", g)? / 1000.0)
    }

    pub fn from_tonnes(t: f64) -> Result<Self, DomainError> {
        Self::new(finite("mass", t)? * 1000.0)
    }

    pub fn kg(self) -> f64 {
        self.0
    }

    pub fn tonnes(self) -> f64 {
        self.0 / 1000.0
    }

    /// This mass times a fraction (a share of it).
    pub fn share(self, f: MassFraction) -> Kilograms {
        Kilograms(self.0 * f.value())
    }

    /// The fraction `self / whole`, or `None` when `whole` is zero or `self`
    /// exceeds it.
    pub fn fraction_of(self, whole: Kilograms) -> Option<MassFraction> {
        if whole.0 <= 0.0 {
            return None;
        }
        MassFraction::new(self.0 / whole.0).ok()
    }

    /// `self - other`, floored at zero (a loss cannot be negative mass).
    pub fn saturating_sub(self, other: Kilograms) -> Kilograms {
        Kilograms((self.0 - other.0).max(0.0))
    }
}

impl Add for Kilograms {
    type Output = Kilograms;
    fn add(self, rhs: Kilograms) -> Kilograms {
        Kilograms(self.0 + rhs.0)
    }
}

impl Sub for Kilograms {
    type Output = Result<Kilograms, DomainError>;
    fn sub(self, rhs: Kilograms) -> Self::Output {
        Kilograms::new(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Kilograms {
    fn sum<I: Iterator<Item = Kilograms>>(iter: I) -> Kilograms {
        Kilograms(iter.map(|k| k.0).sum())
    }
}

impl fmt::Display for Kilograms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1000.0 {
            write!(f, "{:.3} t", self.0 / 1000.0)
        } else {
            write!(f, "{:.3} kg", self.0)
        }
    }
}

/// A mass fraction between 0 and 1 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct MassFraction(f64);

impl MassFraction {
    pub const ZERO: MassFraction = MassFraction(0.0);

    pub fn new(f: f64) -> Result<Self, DomainError> {
        let f = finite("mass fraction", f)?;
        if !(0.0..=1.0).contains(&f) {
            return Err(DomainError::OutOfRange {
                what: "mass fraction",
                rule: "between 0 and 1",
                value: f.to_string(),
            });
        }
        Ok(MassFraction(f))
    }

    pub fn from_percent(p: f64) -> Result<Self, DomainError> {
        Self::new(finite("mass fraction", p)? / 100.0).map_err(|_| DomainError::OutOfRange {
            what: "mass fraction",
            rule: "between 0 and 100 %",
            value: format!("{p} %"),
        })
    }

    pub fn value(self) -> f64 {
        self.0
    }

    pub fn percent(self) -> f64 {
        self.0 * 100.0
    }
}

impl fmt::Display for MassFraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} %", self.0 * 100.0)
    }
}

/// A temperature in degrees Celsius, at or above absolute zero.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Celsius(f64);

impl Celsius {
    pub fn new(c: f64) -> Result<Self, DomainError> {
        let c = finite("temperature", c)?;
        if c < -273.15 {
            return Err(DomainError::OutOfRange {
                what: "temperature",
                rule: "at or above -273.15 C",
                value: format!("{c} C"),
            });
        }
        Ok(Celsius(c))
    }

    pub fn from_kelvin(k: f64) -> Result<Self, DomainError> {
        Self::new(finite("temperature", k)? - 273.15)
    }

    pub fn value(self) -> f64 {
        self.0
    }

    pub fn kelvin(self) -> f64 {
        self.0 + 273.15
    }
}

impl fmt::Display for Celsius {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} C", self.0)
    }
}

/// A value with its standard deviation (1 sigma), in the same unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uncertain<T> {
    value: T,
    sigma: T,
}

impl Uncertain<Kilograms> {
    /// A mass with a relative standard deviation (0.002 = 0.2 %).
    pub fn relative(value: Kilograms, rel_sigma: f64) -> Result<Self, DomainError> {
        let rel = finite("relative uncertainty", rel_sigma)?;
        if rel < 0.0 {
            return Err(DomainError::OutOfRange {
                what: "relative uncertainty",
                rule: ">= 0",
                value: rel.to_string(),
            });
        }
        Ok(Uncertain {
            value,
            sigma: Kilograms(value.0 * rel),
        })
    }

    /// The relative standard deviation, 0 for a zero mass.
    pub fn relative_sigma(&self) -> f64 {
        if self.value.0 > 0.0 {
            self.sigma.0 / self.value.0
        } else {
            0.0
        }
    }
}

impl<T: Copy> Uncertain<T> {
    pub fn new(value: T, sigma: T) -> Self {
        Uncertain { value, sigma }
    }
    pub fn value(&self) -> T {
        self.value
    }
    pub fn sigma(&self) -> T {
        self.sigma
    }
}

impl Add for Uncertain<Kilograms> {
    type Output = Uncertain<Kilograms>;
    /// Independent errors add in quadrature.
    fn add(self, rhs: Self) -> Self {
        Uncertain {
            value: self.value + rhs.value,
            sigma: Kilograms((self.sigma.0.powi(2) + rhs.sigma.0.powi(2)).sqrt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masses_refuse_negative_and_non_finite_values() {
        assert!(Kilograms::new(-1.0).is_err());
        assert!(Kilograms::new(f64::NAN).is_err());
        assert!(Kilograms::new(f64::INFINITY).is_err());
        assert_eq!(Kilograms::from_grams(2500.0).unwrap().kg(), 2.5);
        assert_eq!(Kilograms::from_tonnes(0.6244).unwrap().kg(), 624.4);
    }

    #[test]
    fn the_error_names_the_value() {
        let e = Kilograms::new(-3.0).unwrap_err().to_string();
        assert_eq!(e, "mass must be >= 0 kg (got -3 kg)");
    }

    #[test]
    fn fractions_stay_between_zero_and_one() {
        assert!(MassFraction::new(1.01).is_err());
        assert!(MassFraction::from_percent(101.0).is_err());
        assert!((MassFraction::from_percent(22.33).unwrap().value() - 0.2233).abs() < 1e-15);
    }

    #[test]
    fn uncertainties_add_in_quadrature() {
        let a = Uncertain::new(Kilograms::new(3.0).unwrap(), Kilograms::new(3.0).unwrap());
        let b = Uncertain::new(Kilograms::new(4.0).unwrap(), Kilograms::new(4.0).unwrap());
        let s = a + b;
        assert_eq!(s.value().kg(), 7.0);
        assert!((s.sigma().kg() - 5.0).abs() < 1e-12);
    }

    #[test]
    fn temperatures_convert_from_kelvin() {
        assert!((Celsius::from_kelvin(348.15).unwrap().value() - 75.0).abs() < 1e-9);
        assert!(Celsius::new(-300.0).is_err());
    }
}
