//! Cell chemistries and the composition estimates of domain brief section 2.

use crate::{DomainError, Element, ElementMasses, Kilograms, MassFraction, UnitType};
use std::fmt;
use std::str::FromStr;

/// The cathode chemistry of a battery, canonical names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chemistry {
    Nmc111,
    Nmc532,
    Nmc622,
    Nmc811,
    Nca,
    Lfp,
    Lmo,
}

/// Pack-level mass fractions in wt % (BatPaC 5.2; Cu and Al are the middle
/// of the brief's ranges for the rest of a pack).
struct PackComposition {
    li: f64,
    ni: f64,
    co: f64,
    mn: f64,
    fe: f64,
    p: f64,
    cathode_al: f64,
}

const PACK_CU: f64 = 8.0;
const PACK_AL: f64 = 20.0;

impl Chemistry {
    pub const ALL: [Chemistry; 7] = [
        Chemistry::Nmc111,
        Chemistry::Nmc532,
        Chemistry::Nmc622,
        Chemistry::Nmc811,
        Chemistry::Nca,
        Chemistry::Lfp,
        Chemistry::Lmo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Chemistry::Nmc111 => "NMC111",
            Chemistry::Nmc532 => "NMC532",
            Chemistry::Nmc622 => "NMC622",
            Chemistry::Nmc811 => "NMC811",
            Chemistry::Nca => "NCA",
            Chemistry::Lfp => "LFP",
            Chemistry::Lmo => "LMO",
        }
    }

    /// The family that labels black mass ("black mass-NMC"), as Del. Reg.
    /// 2025/606 asks: intermediate fractions carry their chemistry.
    pub fn family(self) -> &'static str {
        match self {
            Chemistry::Nmc111 | Chemistry::Nmc532 | Chemistry::Nmc622 | Chemistry::Nmc811 => "NMC",
            Chemistry::Nca => "NCA",
            Chemistry::Lfp => "LFP",
            Chemistry::Lmo => "LMO",
        }
    }

    fn pack(self) -> PackComposition {
        let c = |li, ni, co, mn| PackComposition {
            li,
            ni,
            co,
            mn,
            fe: 0.0,
            p: 0.0,
            cathode_al: 0.0,
        };
        match self {
            Chemistry::Nmc111 => c(2.2, 6.1, 6.1, 5.7),
            Chemistry::Nmc532 => c(2.1, 8.8, 3.5, 5.0),
            Chemistry::Nmc622 => c(2.0, 10.2, 3.4, 3.2),
            Chemistry::Nmc811 => c(1.9, 12.5, 1.6, 1.5),
            Chemistry::Nca => PackComposition {
                cathode_al: 0.4,
                ..c(2.0, 13.2, 2.5, 0.0)
            },
            Chemistry::Lfp => PackComposition {
                fe: 10.6,
                p: 5.9,
                ..c(1.3, 0.0, 0.0, 0.0)
            },
            Chemistry::Lmo => c(1.2, 0.0, 0.0, 19.4),
        }
    }

    /// Estimated element masses of a unit of this chemistry and mass, for
    /// arrivals without a declared composition. Modules and cells carry less
    /// housing, so their active elements are a larger share (x1.2, x1.35).
    pub fn estimate_content(self, unit: UnitType, mass: Kilograms) -> ElementMasses {
        let active = match unit {
            UnitType::Pack => 1.0,
            UnitType::Module => 1.2,
            UnitType::Cell => 1.35,
        };
        let p = self.pack();
        let mut out = ElementMasses::new();
        let mut put = |e: Element, pct: f64| {
            if pct > 0.0
                && let Ok(f) = MassFraction::from_percent(pct)
            {
                out.add(e, mass.share(f));
            }
        };
        put(Element::Li, p.li * active);
        put(Element::Ni, p.ni * active);
        put(Element::Co, p.co * active);
        put(Element::Mn, p.mn * active);
        put(Element::Fe, p.fe * active);
        put(Element::P, p.p * active);
        put(Element::Cu, PACK_CU);
        put(Element::Al, PACK_AL + p.cathode_al * active);
        out
    }

    /// The typical black-mass element fractions (dry basis) of this chemistry.
    pub fn black_mass_fraction(self, e: Element) -> MassFraction {
        let pct = match (self, e) {
            (Chemistry::Nmc111, Element::Li) => 4.4,
            (Chemistry::Nmc111, Element::Ni) => 12.4,
            (Chemistry::Nmc111, Element::Co) => 12.5,
            (Chemistry::Nmc111, Element::Mn) => 11.6,
            (Chemistry::Nmc532, Element::Li) => 4.3,
            (Chemistry::Nmc532, Element::Ni) => 18.2,
            (Chemistry::Nmc532, Element::Co) => 7.3,
            (Chemistry::Nmc532, Element::Mn) => 10.2,
            (Chemistry::Nmc622, Element::Li) => 4.2,
            (Chemistry::Nmc622, Element::Ni) => 21.3,
            (Chemistry::Nmc622, Element::Co) => 7.1,
            (Chemistry::Nmc622, Element::Mn) => 6.7,
            (Chemistry::Nmc811, Element::Li) => 4.0,
            (Chemistry::Nmc811, Element::Ni) => 27.3,
            (Chemistry::Nmc811, Element::Co) => 3.4,
            (Chemistry::Nmc811, Element::Mn) => 3.2,
            (Chemistry::Nca, Element::Li) => 4.1,
            (Chemistry::Nca, Element::Ni) => 27.6,
            (Chemistry::Nca, Element::Co) => 5.2,
            (Chemistry::Lfp, Element::Li) => 2.7,
            (Chemistry::Lfp, Element::Fe) => 21.9,
            (Chemistry::Lfp, Element::P) => 12.1,
            (Chemistry::Lmo, Element::Li) => 2.6,
            (Chemistry::Lmo, Element::Mn) => 41.5,
            _ => 0.0,
        };
        MassFraction::from_percent(pct).unwrap_or(MassFraction::ZERO)
    }
}

impl fmt::Display for Chemistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Chemistry {
    type Err = DomainError;

    /// Canonical names, the NCM spellings, cathode formulas and the long
    /// English names passports use ("Lithium iron phosphate").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect::<String>()
            .to_ascii_uppercase();
        let found = match norm.as_str() {
            "NMC111" | "NCM111" | "NMC333" | "LINI0.33MN0.33CO0.33O2" | "LINI13MN13CO13O2" => {
                Some(Chemistry::Nmc111)
            }
            "NMC532" | "NCM523" | "NCM532" | "NMC523" | "LINI0.5MN0.3CO0.2O2" => {
                Some(Chemistry::Nmc532)
            }
            "NMC622" | "NCM622" | "LINI0.6MN0.2CO0.2O2" => Some(Chemistry::Nmc622),
            "NMC811" | "NCM811" | "LINI0.8MN0.1CO0.1O2" => Some(Chemistry::Nmc811),
            "NCA" | "LINI0.8CO0.15AL0.05O2" | "LINICOALO2" => Some(Chemistry::Nca),
            "LFP" | "LIFEPO4" | "LITHIUMIRONPHOSPHATE" => Some(Chemistry::Lfp),
            "LMO" | "LIMN2O4" | "LITHIUMMANGANESEOXIDE" => Some(Chemistry::Lmo),
            _ => None,
        };
        if let Some(c) = found {
            return Ok(c);
        }
        // Long forms such as "Nickel Cobalt Manganese (NCM) 8-1-1".
        let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
        let upper = s.to_ascii_uppercase();
        let is_nmc = upper.contains("NCM")
            || upper.contains("NMC")
            || (upper.contains("NICKEL") && upper.contains("MANGANESE"));
        let from_digits = match (is_nmc, digits.as_str()) {
            (true, "111" | "333") => Some(Chemistry::Nmc111),
            (true, "532" | "523") => Some(Chemistry::Nmc532),
            (true, "622") => Some(Chemistry::Nmc622),
            (true, "811") => Some(Chemistry::Nmc811),
            _ if upper.contains("NICKEL") && upper.contains("ALUMIN") => Some(Chemistry::Nca),
            _ => None,
        };
        from_digits.ok_or_else(|| DomainError::Malformed {
            what: "chemistry",
            value: s.to_string(),
            why: "not one of NMC111, NMC532, NMC622, NMC811, NCA, LFP, LMO".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(written: &str, expected: Chemistry) {
        assert_eq!(written.parse::<Chemistry>().unwrap(), expected, "{written}");
    }

    #[test]
    fn chemistries_parse_from_the_spellings_passports_use() {
        check("NMC811", Chemistry::Nmc811);
        check("NCM523", Chemistry::Nmc532);
        check("LiNi0.8Mn0.1Co0.1O2", Chemistry::Nmc811);
        check("Nickel Cobalt Manganese (NCM) 8-1-1", Chemistry::Nmc811);
        check("Lithium iron phosphate", Chemistry::Lfp);
        check("LiFePO4", Chemistry::Lfp);
        check("nca", Chemistry::Nca);
        assert!("lead acid".parse::<Chemistry>().is_err());
    }

    #[test]
    fn a_pack_estimate_follows_the_batpac_table() {
        let m = Kilograms::new(1000.0).unwrap();
        let e = Chemistry::Nmc622.estimate_content(UnitType::Pack, m);
        assert!((e.get(Element::Ni).kg() - 102.0).abs() < 1e-9);
        assert!((e.get(Element::Li).kg() - 20.0).abs() < 1e-9);
        assert!((e.get(Element::Cu).kg() - 80.0).abs() < 1e-9);
        let lfp = Chemistry::Lfp.estimate_content(UnitType::Pack, m);
        assert_eq!(lfp.get(Element::Ni).kg(), 0.0);
        assert!((lfp.get(Element::Fe).kg() - 106.0).abs() < 1e-9);
    }

    #[test]
    fn cells_carry_more_active_material_than_packs() {
        let m = Kilograms::new(1.0).unwrap();
        let pack = Chemistry::Nmc811.estimate_content(UnitType::Pack, m);
        let cell = Chemistry::Nmc811.estimate_content(UnitType::Cell, m);
        assert!(cell.get(Element::Ni) > pack.get(Element::Ni));
    }

    #[test]
    fn black_mass_is_labelled_by_family() {
        assert_eq!(Chemistry::Nmc532.family(), "NMC");
        assert_eq!(Chemistry::Lfp.family(), "LFP");
    }
}
