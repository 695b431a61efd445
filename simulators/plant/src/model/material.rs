//! Material truth: the true masses of the elements the plant accounts for,
//! as the simulator knows them and no instrument does.
//!
//! A [`Material`] is a mass per tracked element (Li, Ni, Co, Mn, Cu, Al, Fe,
//! P, graphite) plus the rest (oxygen of the oxides, electrolyte solvents,
//! polymers). A pack is made of [`Component`]s (active mass, copper,
//! aluminium, steel, plastics, electrolyte), each a material of its own, so
//! that shredding can send each component its own way ([`ShredPartition`]).
//! Every split here conserves each element exactly: the last share of a
//! split is always the remainder, never a rounded product.

use crate::noise::Noise;
use remine_domain::{Chemistry, Element, Kilograms, UnitType};

/// The number of species a material holds: the tracked elements and the rest.
const SPECIES: usize = Element::ALL.len() + 1;
const REST: usize = Element::ALL.len();

/// True masses in kg of each tracked element and of the rest.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Material {
    kg: [f64; SPECIES],
}

fn index(e: Element) -> usize {
    Element::ALL.iter().position(|x| *x == e).unwrap_or(REST)
}

impl Material {
    /// Nothing.
    pub const NONE: Material = Material { kg: [0.0; SPECIES] };

    /// A material of `rest_kg` untracked mass plus the given element masses.
    pub fn of(elements: &[(Element, f64)], rest_kg: f64) -> Material {
        let mut m = Material::NONE;
        for (e, kg) in elements {
            m.kg[index(*e)] += kg.max(0.0);
        }
        m.kg[REST] = rest_kg.max(0.0);
        m
    }

    /// A material of `mass_kg` whose elements have the given mass fractions;
    /// the rest makes up the mass (never below zero).
    pub fn with_fractions(mass_kg: f64, fractions: &[(Element, f64)]) -> Material {
        let elements: Vec<(Element, f64)> =
            fractions.iter().map(|(e, f)| (*e, mass_kg * f)).collect();
        let tracked: f64 = elements.iter().map(|(_, kg)| kg.max(0.0)).sum();
        Material::of(&elements, mass_kg - tracked)
    }

    /// The true mass of one element.
    pub fn element(&self, e: Element) -> f64 {
        self.kg[index(e)]
    }

    /// The untracked rest (oxygen, solvents, polymers, ...).
    pub fn rest(&self) -> f64 {
        self.kg[REST]
    }

    /// The whole mass.
    pub fn total(&self) -> f64 {
        self.kg.iter().sum()
    }

    /// The mass fraction of `e` (0 for an empty material).
    pub fn fraction(&self, e: Element) -> f64 {
        let total = self.total();
        if total > 0.0 {
            self.element(e) / total
        } else {
            0.0
        }
    }

    /// Every species scaled by `factor`.
    pub fn scaled(&self, factor: f64) -> Material {
        Material {
            kg: self.kg.map(|x| x * factor),
        }
    }

    /// The sum of two materials.
    pub fn plus(&self, other: &Material) -> Material {
        let mut m = *self;
        m.add(other);
        m
    }

    /// Add `other` to this material.
    pub fn add(&mut self, other: &Material) {
        for (a, b) in self.kg.iter_mut().zip(other.kg) {
            *a += b;
        }
    }

    /// This material less `other`, species by species (what remains after
    /// taking `other` out of it).
    pub fn minus(&self, other: &Material) -> Material {
        let mut m = *self;
        for (a, b) in m.kg.iter_mut().zip(other.kg) {
            *a -= b;
        }
        m
    }

    /// Each species of this material mapped through `f(element, kg)`; the
    /// rest is passed as `None`.
    pub fn map(&self, f: impl Fn(Option<Element>, f64) -> f64) -> Material {
        let mut m = Material::NONE;
        for (i, e) in Element::ALL.iter().enumerate() {
            m.kg[i] = f(Some(*e), self.kg[i]);
        }
        m.kg[REST] = f(None, self.kg[REST]);
        m
    }

    /// Split by shares (one per part) that sum to 1: every part but the last
    /// gets its share of each species, the last gets what remains, so the
    /// parts always sum to this material exactly.
    pub fn split<const N: usize>(&self, shares: [f64; N]) -> [Material; N] {
        let mut parts = [Material::NONE; N];
        let mut left = *self;
        for (i, share) in shares.iter().enumerate() {
            if i + 1 == N {
                parts[i] = left;
            } else {
                let part = self.scaled(*share);
                left = left.minus(&part);
                parts[i] = part;
            }
        }
        parts
    }
}

/// The parts a pack is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Cathode and anode coatings: what the black mass is made of.
    ActiveMass,
    /// Copper foil, busbars and cables.
    Copper,
    /// Aluminium foil and housings.
    Aluminium,
    /// Steel housings and frames.
    Steel,
    /// Polymers: separators, covers, insulation.
    Plastics,
    /// Electrolyte: carbonate solvents with LiPF6.
    Electrolyte,
}

impl Component {
    pub const ALL: [Component; 6] = [
        Component::ActiveMass,
        Component::Copper,
        Component::Aluminium,
        Component::Steel,
        Component::Plastics,
        Component::Electrolyte,
    ];

    fn index(self) -> usize {
        match self {
            Component::ActiveMass => 0,
            Component::Copper => 1,
            Component::Aluminium => 2,
            Component::Steel => 3,
            Component::Plastics => 4,
            Component::Electrolyte => 5,
        }
    }
}

/// A pack (or a charge of packs) by component.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PackMaterial {
    parts: [Material; 6],
}

impl PackMaterial {
    /// One component's material.
    pub fn component(&self, c: Component) -> &Material {
        &self.parts[c.index()]
    }

    /// All components together.
    pub fn material(&self) -> Material {
        self.parts.iter().fold(Material::NONE, |acc, m| acc.plus(m))
    }

    pub fn total(&self) -> f64 {
        self.parts.iter().map(Material::total).sum()
    }

    pub fn plus(&self, other: &PackMaterial) -> PackMaterial {
        let mut p = *self;
        for (a, b) in p.parts.iter_mut().zip(&other.parts) {
            a.add(b);
        }
        p
    }

    pub fn scaled(&self, factor: f64) -> PackMaterial {
        PackMaterial {
            parts: self.parts.map(|m| m.scaled(factor)),
        }
    }

    /// This charge less `other`, component by component.
    pub fn minus(&self, other: &PackMaterial) -> PackMaterial {
        let mut p = *self;
        for (a, b) in p.parts.iter_mut().zip(&other.parts) {
            *a = a.minus(b);
        }
        p
    }
}

/// Graphite in the black mass, wt % (domain brief section 2).
fn black_mass_graphite_pct(chemistry: Chemistry) -> f64 {
    match chemistry {
        Chemistry::Nmc111 => 31.0,
        Chemistry::Nmc532 => 32.0,
        Chemistry::Nmc622 => 33.0,
        Chemistry::Nmc811 | Chemistry::Nca => 36.0,
        Chemistry::Lfp => 30.0,
        Chemistry::Lmo => 24.0,
    }
}

/// Lithium in the electrolyte (1 M LiPF6 in carbonates), mass fraction.
const ELECTROLYTE_LI: f64 = 0.005;
/// Phosphorus in the electrolyte, mass fraction.
const ELECTROLYTE_P: f64 = 0.022;
/// Aluminium of the NCA cathode in its black mass, mass fraction.
const NCA_BLACK_MASS_AL: f64 = 0.008;

/// Draw the true make-up of a pack of `chemistry` whose declared mass is
/// `mass_kg`: the active mass is the pack's share of black-mass material
/// (pack Li / black-mass Li, section 2) with element fractions from the
/// black-mass table, each varied by a few per cent; the rest of the pack
/// splits into Al 15-25 %, Cu 6-10 %, steel 5-15 %, plastics 5-10 % and
/// electrolyte 8-12 %, scaled to fill it. The parts sum to `mass_kg`.
pub fn draw_pack(chemistry: Chemistry, mass_kg: f64, noise: &mut Noise) -> PackMaterial {
    let mass_kg = mass_kg.max(0.0);
    let pack_li = Kilograms::new(1.0)
        .map(|one| {
            chemistry
                .estimate_content(UnitType::Pack, one)
                .get(Element::Li)
                .kg()
        })
        .unwrap_or(0.02);
    let bm_li = chemistry.black_mass_fraction(Element::Li).value();
    let active_share = if bm_li > 0.0 { pack_li / bm_li } else { 0.47 };
    let active_share = (active_share * (1.0 + noise.gauss(0.03))).clamp(0.30, 0.60);
    let vary = |x: f64, n: &mut Noise| (x * (1.0 + n.gauss(0.03))).max(0.0);
    let mut fractions: Vec<(Element, f64)> = [
        Element::Li,
        Element::Ni,
        Element::Co,
        Element::Mn,
        Element::Fe,
        Element::P,
    ]
    .into_iter()
    .map(|e| (e, vary(chemistry.black_mass_fraction(e).value(), noise)))
    .collect();
    fractions.push((
        Element::Graphite,
        vary(black_mass_graphite_pct(chemistry) / 100.0, noise),
    ));
    if chemistry == Chemistry::Nca {
        fractions.push((Element::Al, vary(NCA_BLACK_MASS_AL, noise)));
    }
    let active = Material::with_fractions(mass_kg * active_share, &fractions);

    let weights = [
        noise.uniform(0.15, 0.25),
        noise.uniform(0.06, 0.10),
        noise.uniform(0.05, 0.15),
        noise.uniform(0.05, 0.10),
        noise.uniform(0.08, 0.12),
    ];
    let sum: f64 = weights.iter().sum();
    let rest_kg = mass_kg - active.total();
    let [al, cu, steel, plastics, _] = weights.map(|w| rest_kg * w / sum);
    // The electrolyte takes the remainder, so the pack weighs exactly `mass_kg`.
    let electrolyte = (mass_kg - active.total() - (al + cu + steel + plastics)).max(0.0);
    let electrolyte = Material::with_fractions(
        electrolyte,
        &[(Element::Li, ELECTROLYTE_LI), (Element::P, ELECTROLYTE_P)],
    );
    let parts = [
        active,
        Material::of(&[(Element::Cu, cu)], 0.0),
        Material::of(&[(Element::Al, al)], 0.0),
        Material::of(&[(Element::Fe, steel)], 0.0),
        Material::of(&[], plastics),
        electrolyte,
    ];
    PackMaterial { parts }
}

/// The outputs of the mechanical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShredOutput {
    BlackMass,
    CuFoil,
    AlFoil,
    Steel,
    Plastics,
    /// Electrolyte and dust taken off by the dryer's condensers and filters.
    Losses,
}

impl ShredOutput {
    pub const ALL: [ShredOutput; 6] = [
        ShredOutput::BlackMass,
        ShredOutput::CuFoil,
        ShredOutput::AlFoil,
        ShredOutput::Steel,
        ShredOutput::Plastics,
        ShredOutput::Losses,
    ];

    /// The output's name in the ground truth.
    pub fn name(self) -> &'static str {
        match self {
            ShredOutput::BlackMass => "black_mass",
            ShredOutput::CuFoil => "cu_foil",
            ShredOutput::AlFoil => "al_foil",
            ShredOutput::Steel => "steel",
            ShredOutput::Plastics => "plastics",
            ShredOutput::Losses => "losses",
        }
    }
}

/// Where each component of a shredded charge goes: one row of shares per
/// component, over the outputs in [`ShredOutput::ALL`] order, each row
/// summing to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShredPartition {
    rows: [[f64; 6]; 6],
}

impl ShredPartition {
    /// Draw a batch's separation efficiencies (E): 76-86 % of the active
    /// mass reaches the black mass (the rest sticks to foils and plastics
    /// or leaves as dust); foils and steel are recovered at 88-99 %, with
    /// 1-2 % of the copper and aluminium reporting to the black mass;
    /// 93-98 % of the electrolyte is evaporated and condensed.
    pub fn draw(noise: &mut Noise) -> ShredPartition {
        let bm = noise.uniform(0.76, 0.86);
        let dust = noise.uniform(0.003, 0.008);
        let stuck = 1.0 - bm - dust;
        let cu = noise.uniform(0.90, 0.95);
        let cu_in_bm = noise.uniform(0.01, 0.02);
        let al = noise.uniform(0.88, 0.94);
        let al_in_bm = noise.uniform(0.01, 0.02);
        let steel = noise.uniform(0.97, 0.99);
        let plastics = noise.uniform(0.92, 0.97);
        let evaporated = noise.uniform(0.93, 0.98);
        let row =
            |b: f64, c: f64, a: f64, s: f64, p: f64| [b, c, a, s, p, 1.0 - (b + c + a + s + p)];
        ShredPartition {
            rows: [
                row(bm, 0.4 * stuck, 0.4 * stuck, 0.0, 0.2 * stuck),
                row(cu_in_bm, cu, 1.0 - cu - cu_in_bm, 0.0, 0.0),
                row(al_in_bm, 0.03, al, 1.0 - al - al_in_bm - 0.03, 0.0),
                row(0.0, 0.0, 0.0, steel, 1.0 - steel),
                row(0.01, 0.0, 0.0, 0.0, plastics),
                row(1.0 - evaporated, 0.0, 0.0, 0.0, 0.0),
            ],
        }
    }

    /// The outputs of `charge`, in [`ShredOutput::ALL`] order; they sum to
    /// the charge exactly, element by element.
    pub fn apply(&self, charge: &PackMaterial) -> [Material; 6] {
        let mut out = [Material::NONE; 6];
        for c in Component::ALL {
            let parts = charge.component(c).split(self.rows[c.index()]);
            for (o, p) in out.iter_mut().zip(parts.iter()) {
                o.add(p);
            }
        }
        out
    }
}
