//! A synthetic plant year for tests and the benchmark: lots of the plant
//! flow (discharge, shred, black-mass lot, leach batches, refinery campaign,
//! products) with true element masses conserved, measured with the noise of
//! domain brief section 6.
//!
//! Topology, per black-mass lot `l`: `units_per_lot` input units weighed at
//! intake go through one discharge batch (belt weigher BW-1 into the
//! shredder); the shredder gives the black-mass lot (weighbridge WB-1,
//! assayed), a foil fraction (assayed), steel and plastics (free of the
//! metals) and unweighed volatiles; the lot is split into `batches_per_lot`
//! leach charges (belt weigher BW-3, the lot's assay); each leach batch
//! takes acid (flow meter FM-1) and gives a pregnant leach solution (tank
//! volume, ICP) and a residue. A refinery campaign takes the solutions of
//! `lots_per_campaign` lots and makes one NiSO4, one CoSO4 and one Li2CO3
//! product lot, a Mn cake, a Fe/Al cake and a bleed, with surveyed opening and
//! closing inventories.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use remine_balance::{
    Assay, Balances, Endpoint, Network, NetworkBuilder, Quantity, Reading, Reconciliation,
};
use remine_domain::Element;

pub const METALS: [Element; 4] = [Element::Ni, Element::Co, Element::Li, Element::Mn];
/// The elements whose recovery the tests check, in this order.
pub const REPORTED: [Element; 3] = [Element::Ni, Element::Co, Element::Li];

#[derive(Debug, Clone)]
pub struct PlantConfig {
    pub lots: usize,
    pub lots_per_campaign: usize,
    pub batches_per_lot: usize,
    pub units_per_lot: usize,
    pub seed: u64,
    /// Measurement noise on (else every reading is the truth, with its sigma).
    pub noise: bool,
    /// An instrument whose readings are multiplied by a factor.
    pub bias: Option<(String, f64)>,
}

impl PlantConfig {
    pub fn year(lots: usize, seed: u64) -> PlantConfig {
        PlantConfig {
            lots,
            lots_per_campaign: 3,
            batches_per_lot: 4,
            units_per_lot: 40,
            seed,
            noise: true,
            bias: None,
        }
    }
}

#[derive(Debug)]
pub struct Plant {
    pub network: Network,
    /// True recovery of Ni, Co, Li (product element mass / input element mass).
    pub true_recovery: [f64; 3],
    /// The same from the readings as they are: products over what the
    /// shredder's assayed outputs say entered.
    pub measured_recovery: [f64; 3],
    pub input_streams: Vec<String>,
    pub product_streams: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub units: usize,
    pub lots: usize,
    pub leach_batches: usize,
    pub product_lots: usize,
    pub campaigns: usize,
}

impl Plant {
    /// Ni, Co, Li recovery from reconciled values.
    pub fn reconciled_recovery(&self, r: &Reconciliation) -> [f64; 3] {
        let mut out = [0.0; 3];
        for (k, e) in REPORTED.iter().enumerate() {
            let input: f64 = self
                .input_streams
                .iter()
                .map(|s| r.element_flow(s, *e).unwrap_or(f64::NAN))
                .sum();
            let product: f64 = self
                .product_streams
                .iter()
                .map(|s| r.element_flow(s, *e).unwrap_or(f64::NAN))
                .sum();
            out[k] = product / input;
        }
        out
    }
}

/// (Li, Ni, Co, Mn) mass fractions of packs, domain brief section 2.
const CHEMISTRIES: [[f64; 4]; 4] = [
    [0.022, 0.061, 0.061, 0.057],
    [0.021, 0.088, 0.035, 0.050],
    [0.020, 0.102, 0.034, 0.032],
    [0.019, 0.125, 0.016, 0.015],
];

fn metal_index(e: Element) -> usize {
    match e {
        Element::Ni => 0,
        Element::Co => 1,
        Element::Li => 2,
        _ => 3,
    }
}

struct Meter<'a> {
    rng: StdRng,
    cfg: &'a PlantConfig,
}

impl Meter<'_> {
    fn normal(&mut self) -> f64 {
        // Box-Muller.
        let u1: f64 = self.rng.random::<f64>().max(1e-300);
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.random::<f64>()
    }

    fn read(&mut self, truth: f64, rel: f64, instrument: &str) -> f64 {
        let mut v = truth;
        if self.cfg.noise {
            v *= 1.0 + rel * self.normal();
        }
        if let Some((name, factor)) = &self.cfg.bias
            && name == instrument
        {
            v *= factor;
        }
        v.max(0.0)
    }

    fn mass(
        &mut self,
        truth: f64,
        rel: f64,
        instrument: &str,
    ) -> Option<Reading<remine_domain::Kilograms>> {
        let v = self.read(truth, rel, instrument);
        Some(Reading::kg_relative(v, rel, instrument).expect("valid mass reading"))
    }

    fn assay(&mut self, truth: f64, rel: f64, instrument: &str) -> Assay {
        let v = self.read(truth, rel, instrument).min(1.0);
        Assay::Measured(Reading::fraction_relative(v, rel, instrument).expect("valid assay"))
    }
}

pub fn generate(cfg: &PlantConfig) -> Plant {
    let mut m = Meter {
        rng: StdRng::seed_from_u64(cfg.seed),
        cfg,
    };
    let mut b = NetworkBuilder::new();
    let env = || Endpoint::Environment;
    let node = Endpoint::node;
    let mut input_true = [0.0; 4];
    let mut product_true = [0.0; 4];
    let mut input_measured = [0.0; 4];
    let mut product_measured = [0.0; 4];
    let mut input_streams = Vec::new();
    let mut product_streams = Vec::new();
    let mut counts = Counts::default();
    let campaigns = cfg.lots.div_ceil(cfg.lots_per_campaign);
    counts.campaigns = campaigns;
    for c in 0..campaigns {
        let refinery = format!("refinery R{c}");
        b.node(&refinery, Balances::elements_only(&METALS));
        let mut pls_true = [0.0; 4];
        let mut pls_mass_true = 0.0;
        let first = c * cfg.lots_per_campaign;
        let last = ((c + 1) * cfg.lots_per_campaign).min(cfg.lots);
        for l in first..last {
            counts.lots += 1;
            let chem = CHEMISTRIES[l % CHEMISTRIES.len()];
            // Intake and discharge.
            let discharge = format!("discharge D{l}");
            let shred = format!("shred S{l}");
            let store = format!("store BM{l}");
            b.node(&discharge, Balances::total_only());
            b.node(&shred, Balances::total_and(&METALS));
            b.node(&store, Balances::total_only());
            let mut batch_mass = 0.0;
            let mut batch_el = [0.0; 4];
            for k in 0..cfg.units_per_lot {
                counts.units += 1;
                let mass = m.uniform(150.0, 550.0);
                batch_mass += mass;
                for (i, frac) in [chem[1], chem[2], chem[0], chem[3]].iter().enumerate() {
                    batch_el[i] += mass * frac * (1.0 + 0.05 * m.normal());
                }
                let reading = m.mass(mass, 0.001, "intake scale S-1");
                b.stream(&format!("unit U{l}-{k}"), env(), node(&discharge), reading);
            }
            let batch = format!("batch D{l}");
            let reading = m.mass(batch_mass, 0.005, "belt weigher BW-1");
            b.stream(&batch, node(&discharge), node(&shred), reading);
            for e in METALS {
                b.assay(&batch, e, Assay::Unmeasured);
                input_true[metal_index(e)] += batch_el[metal_index(e)];
            }
            input_streams.push(batch.clone());

            // Shredder.
            let bm_mass = batch_mass * m.uniform(0.38, 0.42);
            let foil_mass = batch_mass * 0.14;
            let steel_mass = batch_mass * 0.12;
            let plastics_mass = batch_mass * 0.10;
            let bm = format!("black mass BM{l}");
            let foil = format!("foil F{l}");
            let reading = m.mass(bm_mass, 0.002, "weighbridge WB-1");
            b.stream(&bm, node(&shred), node(&store), reading.clone());
            let bm_measured_mass = reading.map_or(0.0, |r| r.value().kg());
            let reading = m.mass(foil_mass, 0.002, "scale S-2");
            let foil_measured_mass = reading.as_ref().map_or(0.0, |r| r.value().kg());
            b.stream(&foil, node(&shred), env(), reading);
            let reading = m.mass(steel_mass, 0.002, "scale S-2");
            b.stream(&format!("steel ST{l}"), node(&shred), env(), reading);
            let reading = m.mass(plastics_mass, 0.005, "scale S-2");
            b.stream(&format!("plastics P{l}"), node(&shred), env(), reading);
            // The electrolyte driven off in the dryer, condensed and weighed.
            let volatiles_mass = batch_mass - bm_mass - foil_mass - steel_mass - plastics_mass;
            let reading = m.mass(volatiles_mass, 0.02, "condensate scale S-5");
            b.stream(&format!("volatiles V{l}"), node(&shred), env(), reading);
            let mut bm_el = [0.0; 4];
            for e in METALS {
                let i = metal_index(e);
                bm_el[i] = 0.98 * batch_el[i];
                let bm_assay = m.assay(bm_el[i] / bm_mass, 0.03, &format!("BM lab sample BM{l}"));
                let foil_assay = m.assay(
                    0.02 * batch_el[i] / foil_mass,
                    0.10,
                    &format!("foil lab sample F{l}"),
                );
                if let (Assay::Measured(a), Assay::Measured(f)) = (&bm_assay, &foil_assay) {
                    input_measured[i] += bm_measured_mass * a.value().value()
                        + foil_measured_mass * f.value().value();
                }
                b.assay(&bm, e, bm_assay);
                b.assay(&foil, e, foil_assay);
                for s in [
                    format!("steel ST{l}"),
                    format!("plastics P{l}"),
                    format!("volatiles V{l}"),
                ] {
                    b.assay(&s, e, Assay::Free);
                }
            }

            // Split of the lot into leach charges, and the leach batches.
            let shares: Vec<f64> = (0..cfg.batches_per_lot)
                .map(|_| m.uniform(0.9, 1.1))
                .collect();
            let sum: f64 = shares.iter().sum();
            for (k, share) in shares.iter().enumerate() {
                counts.leach_batches += 1;
                let w = share / sum;
                let charge_mass = bm_mass * w;
                let leach = format!("leach L{l}-{k}");
                b.node(&leach, Balances::total_and(&METALS));
                let charge = format!("charge C{l}-{k}");
                let reading = m.mass(charge_mass, 0.005, "belt weigher BW-3");
                b.stream(&charge, node(&store), node(&leach), reading);
                let acid = format!("acid A{l}-{k}");
                let acid_mass = 7.0 * charge_mass;
                let reading = m.mass(acid_mass, 0.005, "flow meter FM-1");
                b.stream(&acid, env(), node(&leach), reading);
                let residue_mass = 0.5 * charge_mass;
                let pls_mass = charge_mass + acid_mass - residue_mass;
                pls_mass_true += pls_mass;
                let pls = format!("PLS {l}-{k}");
                let residue = format!("residue R{l}-{k}");
                let reading = m.mass(pls_mass, 0.015, "tank volume T-1");
                b.stream(&pls, node(&leach), node(&refinery), reading);
                let reading = m.mass(residue_mass, 0.01, "filter press scale S-3");
                b.stream(&residue, node(&leach), env(), reading);
                for e in METALS {
                    let i = metal_index(e);
                    let el = bm_el[i] * w;
                    let eta = if e == Element::Li {
                        0.99 + 0.002 * m.normal()
                    } else {
                        0.985 + 0.003 * m.normal()
                    };
                    pls_true[i] += el * eta;
                    b.assay(&charge, e, Assay::SameAs(bm.clone()));
                    b.assay(&acid, e, Assay::Free);
                    let a = m.assay(el * eta / pls_mass, 0.02, "ICP lab A");
                    b.assay(&pls, e, a);
                    let a = m.assay(el * (1.0 - eta) / residue_mass, 0.05, "residue lab");
                    b.assay(&residue, e, a);
                }
            }
        }

        // Refinery campaign.
        let products = [
            (Element::Ni, format!("NiSO4 N{c}"), 0.2233, 0.955),
            (Element::Co, format!("CoSO4 K{c}"), 0.2097, 0.96),
            (Element::Li, format!("Li2CO3 Li{c}"), 0.1879, 0.90),
            (Element::Mn, format!("Mn cake MN{c}"), 0.325, 0.90),
        ];
        let cake = format!("Fe/Al cake FA{c}");
        let bleed = format!("bleed B{c}");
        let cake_mass = 0.04 * pls_mass_true;
        let bleed_mass = 0.5 * pls_mass_true;
        let reading = m.mass(cake_mass, 0.01, "scale S-4");
        b.stream(&cake, node(&refinery), env(), reading);
        let reading = m.mass(bleed_mass, 0.02, "tank volume T-9");
        b.stream(&bleed, node(&refinery), env(), reading);
        for (e, name, grade, share) in &products {
            if *e != Element::Mn {
                counts.product_lots += 1;
            }
            let i = metal_index(*e);
            let share = share + 0.003 * m.normal();
            let el = pls_true[i] * share;
            product_true[i] += el;
            let reading = m.mass(el / grade, 0.001, "weighbridge WB-2");
            let mass_measured = reading.as_ref().map_or(0.0, |r| r.value().kg());
            b.stream(name, node(&refinery), env(), reading);
            let a = m.assay(*grade, 0.005, "product lab");
            if let Assay::Measured(r) = &a {
                product_measured[i] += mass_measured * r.value().value();
            }
            for other in METALS {
                b.assay(
                    name,
                    other,
                    if other == *e { a.clone() } else { Assay::Free },
                );
            }
            if *e != Element::Mn {
                product_streams.push(name.clone());
            }
            let cake_share = if matches!(e, Element::Li) {
                0.04
            } else if matches!(e, Element::Mn) {
                0.05
            } else {
                0.02
            };
            let stock_share = (0.004 * m.normal()).clamp(-0.008, 0.008);
            let bleed_share = 1.0 - share - cake_share - stock_share;
            let a = m.assay(pls_true[i] * cake_share / cake_mass, 0.05, "cake lab");
            b.assay(&cake, *e, a);
            let a = m.assay(pls_true[i] * bleed_share / bleed_mass, 0.03, "ICP lab A");
            b.assay(&bleed, *e, a);
            let opening = 0.03 * pls_true[i];
            let closing = opening + stock_share * pls_true[i];
            let o = m.mass(opening, 0.03, "inventory survey");
            let cl = m.mass(closing, 0.03, "inventory survey");
            b.inventory(&refinery, Quantity::Element(*e), o, cl);
        }
    }
    let network = b.build().expect("the synthetic plant is well formed");
    let rec = |num: [f64; 4], den: [f64; 4]| [num[0] / den[0], num[1] / den[1], num[2] / den[2]];
    Plant {
        network,
        true_recovery: rec(product_true, input_true),
        measured_recovery: rec(product_measured, input_measured),
        input_streams,
        product_streams,
        counts,
    }
}
