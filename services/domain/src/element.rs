//! Chemical elements the plant accounts for, and element masses of a lot.

use crate::{DomainError, Kilograms};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// An element (or, for graphite, a material) that the plant tracks by mass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Li,
    Ni,
    Co,
    Mn,
    Cu,
    Al,
    Fe,
    P,
    /// Graphite (carbon of the anode); a material rather than an element, but
    /// passports declare it alongside them.
    Graphite,
}

impl Element {
    pub const ALL: [Element; 9] = [
        Element::Li,
        Element::Ni,
        Element::Co,
        Element::Mn,
        Element::Cu,
        Element::Al,
        Element::Fe,
        Element::P,
        Element::Graphite,
    ];

    /// The elements whose recovery rates Reg. (EU) 2023/1542 sets targets for.
    pub const REPORTED: [Element; 4] = [Element::Co, Element::Cu, Element::Li, Element::Ni];

    pub fn symbol(self) -> &'static str {
        match self {
            Element::Li => "Li",
            Element::Ni => "Ni",
            Element::Co => "Co",
            Element::Mn => "Mn",
            Element::Cu => "Cu",
            Element::Al => "Al",
            Element::Fe => "Fe",
            Element::P => "P",
            Element::Graphite => "graphite",
        }
    }

    /// The CAS registry number passports use to name the element.
    pub fn cas(self) -> &'static str {
        match self {
            Element::Li => "7439-93-2",
            Element::Ni => "7440-02-0",
            Element::Co => "7440-48-4",
            Element::Mn => "7439-96-5",
            Element::Cu => "7440-50-8",
            Element::Al => "7429-90-5",
            Element::Fe => "7439-89-6",
            Element::P => "7723-14-0",
            Element::Graphite => "7782-42-5",
        }
    }

    pub fn from_cas(cas: &str) -> Option<Element> {
        Element::ALL.into_iter().find(|e| e.cas() == cas.trim())
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl FromStr for Element {
    type Err = DomainError;
    /// Symbols (`Ni`), English names (`Nickel`, any case) and CAS numbers.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Some(e) = Element::from_cas(t) {
            return Ok(e);
        }
        let e = match t.to_ascii_lowercase().as_str() {
            "li" | "lithium" => Element::Li,
            "ni" | "nickel" => Element::Ni,
            "co" | "cobalt" => Element::Co,
            "mn" | "manganese" => Element::Mn,
            "cu" | "copper" => Element::Cu,
            "al" | "aluminium" | "aluminum" => Element::Al,
            "fe" | "iron" => Element::Fe,
            "p" | "phosphorus" => Element::P,
            "c" | "graphite" | "carbon" | "natural graphite" | "synthetic graphite" => {
                Element::Graphite
            }
            _ => {
                return Err(DomainError::Malformed {
                    what: "element",
                    value: s.to_string(),
                    why: "not one of Li, Ni, Co, Mn, Cu, Al, Fe, P, graphite".into(),
                });
            }
        };
        Ok(e)
    }
}

/// Element masses of one battery or lot. Absent elements weigh zero.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ElementMasses(BTreeMap<Element, Kilograms>);

impl ElementMasses {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, e: Element) -> Kilograms {
        self.0.get(&e).copied().unwrap_or(Kilograms::ZERO)
    }

    /// Adds `m` to the mass of `e` (declarations of one element in several
    /// places of a battery add up).
    pub fn add(&mut self, e: Element, m: Kilograms) {
        let cur = self.get(e);
        self.0.insert(e, cur + m);
    }

    pub fn iter(&self) -> impl Iterator<Item = (Element, Kilograms)> + '_ {
        self.0.iter().map(|(e, m)| (*e, *m))
    }

    pub fn contains(&self, e: Element) -> bool {
        self.0.contains_key(&e)
    }

    pub fn total(&self) -> Kilograms {
        self.0.values().copied().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every element scaled by `factor` (a share of a lot), which must be in [0, 1].
    pub fn scaled(&self, factor: f64) -> ElementMasses {
        let f = factor.clamp(0.0, 1.0);
        ElementMasses(
            self.0
                .iter()
                .map(|(e, m)| (*e, Kilograms::new(m.kg() * f).unwrap_or(Kilograms::ZERO)))
                .collect(),
        )
    }

    /// The element-wise sum of two sets.
    pub fn plus(&self, other: &ElementMasses) -> ElementMasses {
        let mut out = self.clone();
        for (e, m) in other.iter() {
            out.add(e, m);
        }
        out
    }
}

impl FromIterator<(Element, Kilograms)> for ElementMasses {
    fn from_iter<I: IntoIterator<Item = (Element, Kilograms)>>(iter: I) -> Self {
        let mut m = ElementMasses::new();
        for (e, k) in iter {
            m.add(e, k);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Element) {
        assert_eq!(input.parse::<Element>().unwrap(), expected, "{input}");
    }

    #[test]
    fn elements_parse_from_symbols_names_and_cas_numbers() {
        check("Ni", Element::Ni);
        check("Nickel", Element::Ni);
        check("7440-48-4", Element::Co);
        check("Aluminum", Element::Al);
        check("graphite", Element::Graphite);
        assert!("Unobtainium".parse::<Element>().is_err());
    }

    #[test]
    fn declarations_of_one_element_add_up() {
        let mut m = ElementMasses::new();
        m.add(Element::Al, Kilograms::new(2.0).unwrap());
        m.add(Element::Al, Kilograms::new(3.0).unwrap());
        assert_eq!(m.get(Element::Al).kg(), 5.0);
        assert_eq!(m.get(Element::Ni).kg(), 0.0);
    }
}
