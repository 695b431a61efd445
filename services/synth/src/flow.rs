//! The flowsheet of the year, unit by unit, as the simulator runs it.
//!
//! Units arrive evenly over the year and wait by process route (layered
//! oxides together, LFP apart, as the simulator's ledger runs campaigns).
//! Every [`UNITS_PER_CAMPAIGN`] units of a route make a shredder campaign:
//! discharge batches of [`UNITS_PER_DISCHARGE_BATCH`], one drawn
//! [`ShredPartition`] applied to each batch, a black-mass lot labelled with
//! the campaign's dominant chemistry, and the side fractions and the dust
//! and condensate collected in containers that close every
//! [`CAMPAIGNS_PER_CONTAINER`] campaigns. Leach batches take black mass
//! first in, first out, about a quarter of a lot each, so that one lot
//! feeds several batches and a batch now and then takes the end of one lot
//! and the start of the next; what is left at year end stays in stock.
//! Each leach batch runs the simulator's [`HydrometTrain`] on its true
//! black mass: its residue goes to a filter-cake lot, its dissolved metal
//! and the reagents' water make a solution lot, whose metal goes on to the
//! product lots (blends of [`LEACH_BATCHES_PER_PRODUCT_LOT`] batches), the
//! Fe/Al/Cu cake and the effluent.
//!
//! The shredder's mechanical loss (the dust its filter catches and the
//! electrolyte its condenser collects, the simulator's last partition
//! fraction) is collected in bins that close with the side-fraction
//! containers; like them, each bin is weighed (the same platform scale) and
//! sampled (ICP, 5 %), so the shredder's element balances close on
//! readings and can check the units' booked contents. The loss lot's
//! truth is the whole partition fraction: nothing escapes unmeasured.
//!
//! Conservation is by construction: every split takes its last part as the
//! remainder, as the simulator's models do, so each tracked element
//! received is, at year end, in exactly one lot's remaining material.
//!
//! Booked masses: every lot is weighed by its instrument with that
//! instrument's noise (and bias), and an edge carries the source's booked
//! mass in proportion to the true share that moved, the last edge out of a
//! lot taking what the lot has left, so the edges out of a lot never exceed
//! it. The edge from a solution to a product carries the product's payable
//! metal (the sulphate, carbonate and water come from reagents), as the
//! MES's production run books it.

use crate::config::{
    CAMPAIGNS_PER_CONTAINER, LEACH_BATCHES_PER_BLACK_MASS_LOT, LEACH_BATCHES_PER_PRODUCT_LOT,
    LEACH_BATCHES_PER_RESIDUE_LOT, UNITS_PER_CAMPAIGN, UNITS_PER_DISCHARGE_BATCH,
};
use crate::population::draw_unit;
use crate::year::{AssayResult, PRODUCTS, SIDES, SynthEdge, SynthLot, Unit, Weighing};
use crate::{Instrument, PlantYear, SynthConfig, SynthError};
use chrono::{DateTime, TimeZone, Utc};
use remine_domain::{
    Chemistry, ContentSource, Element, Kilograms, LotId, LotKind, MOISTURE_SIGMA, PassportForm,
    UnitCommand, UnitState,
};
use remine_sim::Noise;
use remine_sim::model::hydromet::{HydroUnit, HydrometTrain, LeachCharge};
use remine_sim::model::material::{Material, PackMaterial, ShredPartition};
use remine_sim::model::unit::TRANSIENT_S;
use std::collections::VecDeque;

/// Kilograms of leach solution per kilogram of black mass: 120 g/L solids
/// (the leach setpoint) at a solution density of 1.2 kg/L.
const SOLUTION_KG_PER_KG: f64 = 1.2 * 1000.0 / 120.0;
/// The year's units arrive over this many days; the last days run the tail.
const ARRIVAL_DAYS: f64 = 355.0;
/// Elements a solid lot is assayed for (graphite is not).
const SOLID_ASSAY: [Element; 8] = [
    Element::Li,
    Element::Ni,
    Element::Co,
    Element::Mn,
    Element::Cu,
    Element::Al,
    Element::Fe,
    Element::P,
];
/// Below this mass fraction a solid lot's element is not reported.
const SOLID_DETECTION: f64 = 1e-4;
/// Below this mass fraction a solution's element is not reported.
const SOLUTION_DETECTION: f64 = 1e-7;

/// Output lots filled over several batches: the parts that went in and
/// the true material they made.
#[derive(Debug, Default)]
struct Pending {
    /// (source lot, booked kg, true kg) of each edge.
    parts: Vec<(usize, f64, f64)>,
    material: Material,
}

impl Pending {
    fn add(&mut self, from: usize, booked: f64, true_kg: f64, material: &Material) {
        self.parts.push((from, booked, true_kg));
        self.material.add(material);
    }
}

/// A process route: its waiting units, black-mass stock and open lots.
#[derive(Debug, Default)]
struct Route {
    waiting: Vec<usize>,
    campaigns_in_containers: usize,
    sides: [Pending; 4],
    mech_loss: Pending,
    black_mass: VecDeque<usize>,
    black_mass_made_kg: f64,
    black_mass_lots: usize,
    leaches_in_residues: usize,
    residue: Pending,
    cake: Pending,
    effluent: Pending,
    leaches_in_products: usize,
    products: [Pending; 3],
}

/// Lot numbers by kind.
#[derive(Debug, Default)]
struct Counters {
    db: usize,
    bm: usize,
    sf: usize,
    mech_loss: usize,
    lb: usize,
    pls: usize,
    product: usize,
    residue: usize,
    cake: usize,
    effluent: usize,
}

/// How a lot is weighed and assayed when it is made.
#[derive(Debug, Clone, Copy)]
struct Measure {
    scale: Instrument,
    moisture: (f64, f64),
    assay: Option<(Instrument, &'static [Element], f64)>,
}

struct Gen<'a> {
    cfg: &'a SynthConfig,
    prefix: String,
    t0: DateTime<Utc>,
    now_s: i64,
    lots: Vec<SynthLot>,
    edges: Vec<SynthEdge>,
    units: Vec<Unit>,
    packs: Vec<Option<PackMaterial>>,
    population: Noise,
    measure: Noise,
    mech: Noise,
    train: HydrometTrain,
    routes: [Route; 2],
    n: Counters,
}

/// Generates the plant year `config` describes. The same configuration
/// always gives the same year.
#[tracing::instrument(skip_all, fields(units = config.units(), seed = config.seed()))]
pub fn generate(config: &SynthConfig) -> Result<PlantYear, SynthError> {
    let seed = config.seed();
    let t0 = Utc
        .with_ymd_and_hms(config.year(), 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| SynthError::Config {
            setting: "year",
            why: format!("{} has no 1 January", config.year()),
        })?;
    let mut g = Gen {
        cfg: config,
        prefix: format!("s{seed}-"),
        t0,
        now_s: 0,
        lots: Vec::with_capacity(config.units() * 3 / 2),
        edges: Vec::with_capacity(config.units() * 3),
        units: Vec::with_capacity(config.units()),
        packs: Vec::with_capacity(config.units()),
        population: Noise::new(seed, 0x5E_4E01),
        measure: Noise::new(seed, 0x5E_4E02),
        mech: Noise::new(seed, 0x5E_4E03),
        train: HydrometTrain::new(Noise::new(seed, 0x5E_4E04)),
        routes: Default::default(),
        n: Counters::default(),
    };
    let n = config.units();
    for i in 1..=n {
        let arrival = (i as f64 * ARRIVAL_DAYS * 86_400.0 / n as f64) as i64;
        g.now_s = g.now_s.max(arrival);
        let unit = g.receive(i)?;
        let route = g.route_of(unit);
        g.routes[route].waiting.push(unit);
        if g.routes[route].waiting.len() == UNITS_PER_CAMPAIGN {
            g.campaign(route)?;
            g.leach(route)?;
        }
    }
    for route in 0..2 {
        if !g.routes[route].waiting.is_empty() {
            g.campaign(route)?;
        }
        g.close_containers(route)?;
        g.leach(route)?;
        g.close_residues(route)?;
        g.close_products(route)?;
    }
    Ok(PlantYear {
        config: config.clone(),
        units: g.units,
        lots: g.lots,
        edges: g.edges,
    })
}

impl Gen<'_> {
    fn route_of(&self, unit: usize) -> usize {
        usize::from(self.units[unit].doc.chemistry == Chemistry::Lfp)
    }

    fn id(&self, what: &str) -> Result<LotId, SynthError> {
        let s = format!("{}{what}", self.prefix);
        LotId::parse(&s).map_err(SynthError::domain(format!("lot id {s}")))
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.now_s += 1;
        self.t0 + chrono::Duration::seconds(self.now_s)
    }

    /// Weighs `truth` (dry) carrying `moisture` with `instrument`: the
    /// weighing and the booked dry mass.
    fn weigh(&mut self, instrument: Instrument, dry: f64, moisture: f64) -> (Weighing, f64) {
        let sigma = instrument.relative_sigma();
        let bias = self.cfg.bias_of(instrument);
        let wet_true = dry / (1.0 - moisture);
        let wet = (wet_true * (1.0 + bias + self.measure.gauss(sigma))).max(wet_true * 1e-3);
        let measured_moisture = if moisture > 0.0 {
            (moisture + self.measure.gauss(MOISTURE_SIGMA)).clamp(0.0, 0.95)
        } else {
            0.0
        };
        let w = Weighing {
            instrument,
            wet_kg: wet,
            moisture: measured_moisture,
        };
        (w, wet * (1.0 - measured_moisture))
    }

    fn assay(
        &mut self,
        truth: &Material,
        by: Instrument,
        elements: &[Element],
        detection: f64,
    ) -> Vec<AssayResult> {
        let sigma = by.relative_sigma();
        let bias = self.cfg.bias_of(by);
        let mut out = Vec::new();
        for e in elements {
            let f = truth.fraction(*e);
            if f < detection {
                continue;
            }
            let measured = (f * (1.0 + bias + self.measure.gauss(sigma))).clamp(0.0, 1.0);
            out.push(AssayResult {
                element: *e,
                fraction: measured,
                sigma: (sigma * measured).clamp(1e-12, 0.5),
            });
        }
        out
    }

    /// Makes a lot from its true material, weighing and assaying it as
    /// `measure` says; `carried`: booked elements from its inputs, for a
    /// lot that is not assayed.
    fn make(
        &mut self,
        id: LotId,
        kind: LotKind,
        truth: Material,
        measure: Measure,
        carried: ([f64; 9], ContentSource),
        unit: Option<usize>,
    ) -> usize {
        let created_at = self.tick();
        let moisture = if measure.moisture.1 > 0.0 {
            self.measure.uniform(measure.moisture.0, measure.moisture.1)
        } else {
            0.0
        };
        let (weighing, booked_kg) = self.weigh(measure.scale, truth.total(), moisture);
        let (assay_by, assays) = match measure.assay {
            Some((by, elements, detection)) => {
                (Some(by), self.assay(&truth, by, elements, detection))
            }
            None => (None, Vec::new()),
        };
        let (mut booked, source) = if assay_by.is_some() {
            let mut b = [0.0; 9];
            for a in &assays {
                b[a.element as usize] = a.fraction * booked_kg;
            }
            (b, ContentSource::Assayed)
        } else {
            carried
        };
        let total: f64 = booked.iter().sum();
        if total > booked_kg {
            let f = booked_kg / total * (1.0 - 1e-9);
            booked.iter_mut().for_each(|v| *v *= f);
        }
        let country = unit.map(|u| self.units[u].doc.country.clone());
        self.lots.push(SynthLot {
            id,
            kind,
            created_at,
            unit,
            country,
            booked_kg,
            booked,
            source,
            weighing: Some(weighing),
            assay_by,
            assays,
            truth,
            true_moisture: moisture,
            remaining: truth,
            booked_left: booked_kg,
        });
        self.lots.len() - 1
    }

    /// Takes `part` out of lot `from` (`all`: everything it has left) and
    /// returns the booked mass that moved with it.
    fn consume(&mut self, from: usize, part: &Material, all: bool) -> f64 {
        let lot = &mut self.lots[from];
        let booked = if all {
            lot.remaining = Material::NONE;
            lot.booked_left
        } else {
            lot.remaining = lot.remaining.minus(part);
            let share = part.total() / lot.truth.total().max(f64::MIN_POSITIVE);
            (lot.booked_kg * share).min(lot.booked_left)
        };
        lot.booked_left = (lot.booked_left - booked).max(0.0);
        booked.max(0.0)
    }

    fn edge(&mut self, from: usize, to: usize, booked_kg: f64, true_kg: f64) {
        self.edges.push(SynthEdge {
            from,
            to,
            booked_kg,
            true_kg,
        });
    }

    /// Booked elements carried by edges `parts` (source, booked kg) from
    /// their sources' booked elements.
    fn carried(&self, parts: &[(usize, f64)]) -> ([f64; 9], ContentSource) {
        let mut b = [0.0; 9];
        let mut source = ContentSource::Assayed;
        for (from, kg) in parts {
            let lot = &self.lots[*from];
            let share = kg / lot.booked_kg.max(f64::MIN_POSITIVE);
            for (v, s) in b.iter_mut().zip(lot.booked) {
                *v += s * share;
            }
            source = worst(source, lot.source);
        }
        (b, source)
    }

    fn receive(&mut self, index: usize) -> Result<usize, SynthError> {
        let id = self.id(&format!("U-{index:07}"))?;
        let drawn = draw_unit(&mut self.population, index, id.as_str()).ok_or_else(|| {
            SynthError::Config {
                setting: "population",
                why: "a share table is empty".into(),
            }
        })?;
        let unit = self.units.len();
        let scale = if drawn.doc.unit_type == remine_domain::UnitType::Pack {
            Instrument::Weighbridge
        } else {
            Instrument::IntakeScale
        };
        self.units.push(Unit {
            lot: self.lots.len(),
            doc: drawn.doc,
        });
        self.packs.push(Some(drawn.material));
        let truth = drawn.material.material();
        let lot = self.make(
            id,
            LotKind::InputUnit,
            truth,
            Measure {
                scale,
                moisture: (0.0, 0.0),
                assay: None,
            },
            ([0.0; 9], ContentSource::Estimated),
            Some(unit),
        );
        // A unit without a passport is booked as weighed; its content is
        // estimated from the declared chemistry for that mass.
        if self.units[unit].doc.form == PassportForm::Declared {
            self.units[unit].doc.weight = self.lots[lot].booked_kg;
        }
        let passport = self.units[unit].passport()?;
        let mut booked = [0.0; 9];
        let mut source = ContentSource::Estimated;
        if let Some(c) = passport.content() {
            for (e, kg) in c.masses.iter() {
                booked[e as usize] = kg.kg();
            }
            source = c.source;
        }
        let total: f64 = booked.iter().sum();
        let mass = self.lots[lot].booked_kg;
        if total > mass {
            let f = mass / total * (1.0 - 1e-9);
            booked.iter_mut().for_each(|v| *v *= f);
        }
        self.lots[lot].booked = booked;
        self.lots[lot].source = source;
        Ok(unit)
    }

    /// A shredder campaign of the route's waiting units.
    fn campaign(&mut self, route: usize) -> Result<(), SynthError> {
        let units = std::mem::take(&mut self.routes[route].waiting);
        let partition = ShredPartition::draw(&mut self.mech);
        let mut by_chemistry = [0.0; Chemistry::ALL.len()];
        let mut batches = Vec::new();
        for chunk in units.chunks(UNITS_PER_DISCHARGE_BATCH) {
            let mut pack = PackMaterial::default();
            let mut parts = Vec::new();
            for u in chunk {
                let material = self.packs[*u].take().unwrap_or_default();
                pack = pack.plus(&material);
                let chem = self.units[*u].doc.chemistry;
                if let Some(i) = Chemistry::ALL.iter().position(|c| *c == chem) {
                    by_chemistry[i] += material.total();
                }
                let lot = self.units[*u].lot;
                let booked = self.consume(lot, &Material::NONE, true);
                parts.push((lot, booked, material.total()));
            }
            self.n.db += 1;
            let id = self.id(&format!("DB-{:06}", self.n.db))?;
            let carried = self.carried(&parts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
            let db = self.make(
                id,
                LotKind::DischargeBatch,
                pack.material(),
                Measure {
                    scale: Instrument::FeedBelt,
                    moisture: (0.0, 0.0),
                    assay: None,
                },
                carried,
                None,
            );
            for (from, booked, true_kg) in parts {
                self.edge(from, db, booked, true_kg);
            }
            batches.push((db, partition.apply(&pack)));
        }

        let chemistry = Chemistry::ALL
            .iter()
            .zip(by_chemistry)
            .fold((Chemistry::ALL[0], -1.0), |best, (c, kg)| {
                if kg > best.1 { (*c, kg) } else { best }
            })
            .0;
        let black_mass = batches
            .iter()
            .fold(Material::NONE, |a, (_, outs)| a.plus(&outs[0]));
        self.n.bm += 1;
        let id = self.id(&format!("BM-{}-{:05}", chemistry.family(), self.n.bm))?;
        let bm = self.make(
            id,
            LotKind::BlackMass(chemistry),
            black_mass,
            Measure {
                scale: Instrument::BlackMassBelt,
                moisture: (0.005, 0.03),
                assay: Some((Instrument::BlackMassAssay, &SOLID_ASSAY, SOLID_DETECTION)),
            },
            ([0.0; 9], ContentSource::Assayed),
            None,
        );
        for (db, outs) in &batches {
            let booked = self.consume(*db, &outs[0], false);
            self.edge(*db, bm, booked, outs[0].total());
            for (k, out) in outs.iter().enumerate().skip(1) {
                let last = k == outs.len() - 1;
                let booked = self.consume(*db, out, last);
                let r = &mut self.routes[route];
                let pending = if last {
                    &mut r.mech_loss
                } else {
                    &mut r.sides[k - 1]
                };
                pending.add(*db, booked, out.total(), out);
            }
        }
        let r = &mut self.routes[route];
        r.black_mass.push_back(bm);
        r.black_mass_made_kg += black_mass.total();
        r.black_mass_lots += 1;
        r.campaigns_in_containers += 1;
        if r.campaigns_in_containers == CAMPAIGNS_PER_CONTAINER {
            self.close_containers(route)?;
        }
        Ok(())
    }

    /// Makes a lot of what `pending` collected, with its edges.
    fn close(
        &mut self,
        pending: Pending,
        id: LotId,
        kind: LotKind,
        measure: Measure,
    ) -> Result<(), SynthError> {
        if pending.parts.is_empty() || pending.material.total() <= 0.0 {
            return Ok(());
        }
        let carried = ([0.0; 9], ContentSource::Estimated);
        let lot = self.make(id, kind, pending.material, measure, carried, None);
        for (from, booked, true_kg) in pending.parts {
            self.edge(from, lot, booked, true_kg);
        }
        Ok(())
    }

    fn close_containers(&mut self, route: usize) -> Result<(), SynthError> {
        let r = &mut self.routes[route];
        r.campaigns_in_containers = 0;
        let sides = std::mem::take(&mut r.sides);
        let loss = std::mem::take(&mut r.mech_loss);
        for (side, pending) in SIDES.into_iter().zip(sides) {
            if pending.parts.is_empty() {
                continue;
            }
            self.n.sf += 1;
            let id = self.id(&format!("SF-{}-{:04}", side.name(), self.n.sf))?;
            let measure = Measure {
                scale: Instrument::SideScale,
                moisture: (0.0, 0.0),
                assay: Some((Instrument::SideAssay, &SOLID_ASSAY[..7], SOLID_DETECTION)),
            };
            self.close(pending, id, LotKind::SideFraction(side), measure)?;
        }
        if !loss.parts.is_empty() {
            self.n.mech_loss += 1;
            let id = self.id(&format!("LOSS-mech-{:04}", self.n.mech_loss))?;
            // The dust filter's and the condenser's bins are weighed on the
            // side-fraction scale and sampled when emptied.
            let measure = Measure {
                scale: Instrument::SideScale,
                moisture: (0.0, 0.0),
                assay: Some((Instrument::DustAssay, &SOLID_ASSAY[..7], SOLID_DETECTION)),
            };
            self.close(loss, id, LotKind::Loss, measure)?;
        }
        Ok(())
    }

    /// Runs leach batches while the route's black-mass stock holds a batch.
    fn leach(&mut self, route: usize) -> Result<(), SynthError> {
        loop {
            let r = &self.routes[route];
            if r.black_mass_lots == 0 {
                return Ok(());
            }
            let target = r.black_mass_made_kg
                / r.black_mass_lots as f64
                / LEACH_BATCHES_PER_BLACK_MASS_LOT as f64;
            let available: f64 = r
                .black_mass
                .iter()
                .map(|l| self.lots[*l].remaining.total())
                .sum();
            if target <= 0.0 || available < target {
                return Ok(());
            }
            self.leach_batch(route, target)?;
        }
    }

    fn leach_batch(&mut self, route: usize, target: f64) -> Result<(), SynthError> {
        let mut want = target;
        let mut parts = Vec::new();
        let mut charge = Material::NONE;
        let mut wet = 0.0;
        while want > target * 1e-12 {
            let Some(&front) = self.routes[route].black_mass.front() else {
                break;
            };
            let have = self.lots[front].remaining.total();
            let (part, booked) = if have <= want * (1.0 + 1e-12) {
                let part = self.lots[front].remaining;
                self.routes[route].black_mass.pop_front();
                (part, self.consume(front, &part, true))
            } else {
                let part = self.lots[front].remaining.scaled(want / have);
                (part, self.consume(front, &part, false))
            };
            want -= part.total();
            wet += part.total() * self.lots[front].true_moisture;
            charge.add(&part);
            parts.push((front, booked, part.total()));
        }
        let moisture = wet / charge.total().max(f64::MIN_POSITIVE);
        self.n.lb += 1;
        let batch = format!("LB-{:06}", self.n.lb);
        let id = self.id(&batch)?;
        let carried = self.carried(&parts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
        let lb = self.make(
            id,
            LotKind::LeachBatch,
            charge,
            Measure {
                scale: Instrument::LeachFeedScale,
                moisture: (moisture, moisture),
                assay: None,
            },
            carried,
            None,
        );
        for (from, booked, true_kg) in parts {
            self.edge(from, lb, booked, true_kg);
        }

        let outputs = run_train(&mut self.train, &charge, &batch)?;
        let residue = outputs[3];
        let dissolved = charge.minus(&residue);
        let residue_booked = self.consume(lb, &residue, false);
        let dissolved_booked = self.consume(lb, &dissolved, true);
        let water = (charge.total() * SOLUTION_KG_PER_KG - dissolved.total()).max(0.0);
        let solution = dissolved.plus(&Material::of(&[], water));
        self.n.pls += 1;
        let id = self.id(&format!("PLS-{:06}", self.n.pls))?;
        let pls = self.make(
            id,
            LotKind::Solution,
            solution,
            Measure {
                scale: Instrument::SolutionTank,
                moisture: (0.0, 0.0),
                assay: Some((Instrument::SolutionAssay, &SOLID_ASSAY, SOLUTION_DETECTION)),
            },
            ([0.0; 9], ContentSource::Assayed),
            None,
        );
        self.edge(lb, pls, dissolved_booked, dissolved.total());
        self.routes[route]
            .residue
            .add(lb, residue_booked, residue.total(), &residue);

        for (k, product) in outputs.iter().take(3).enumerate() {
            // The product's metal comes from the solution; the rest of its
            // mass (sulphate, carbonate, water) from reagents.
            let metal = product.map(|e, kg| if e.is_some() { kg } else { 0.0 });
            if metal.total() <= 0.0 {
                continue;
            }
            let booked = self.consume(pls, &metal, false);
            self.routes[route].products[k].add(pls, booked, metal.total(), product);
        }
        let cake = outputs[4];
        let booked = self.consume(pls, &cake, false);
        self.routes[route]
            .cake
            .add(pls, booked, cake.total(), &cake);
        let effluent = self.lots[pls].remaining;
        let booked = self.consume(pls, &effluent, true);
        self.routes[route]
            .effluent
            .add(pls, booked, effluent.total(), &effluent);

        let r = &mut self.routes[route];
        r.leaches_in_residues += 1;
        r.leaches_in_products += 1;
        if r.leaches_in_residues == LEACH_BATCHES_PER_RESIDUE_LOT {
            self.close_residues(route)?;
        }
        if self.routes[route].leaches_in_products == LEACH_BATCHES_PER_PRODUCT_LOT {
            self.close_products(route)?;
        }
        Ok(())
    }

    fn close_residues(&mut self, route: usize) -> Result<(), SynthError> {
        let r = &mut self.routes[route];
        r.leaches_in_residues = 0;
        let residue = std::mem::take(&mut r.residue);
        let cake = std::mem::take(&mut r.cake);
        let effluent = std::mem::take(&mut r.effluent);
        let filter_cake = Measure {
            scale: Instrument::ResidueScale,
            moisture: (0.25, 0.35),
            assay: Some((Instrument::ResidueAssay, &SOLID_ASSAY, SOLID_DETECTION)),
        };
        if !residue.parts.is_empty() {
            self.n.residue += 1;
            let id = self.id(&format!("RES-leach-{:05}", self.n.residue))?;
            self.close(residue, id, LotKind::Residue, filter_cake)?;
        }
        if !cake.parts.is_empty() {
            self.n.cake += 1;
            let id = self.id(&format!("RES-cake-{:05}", self.n.cake))?;
            self.close(cake, id, LotKind::Residue, filter_cake)?;
        }
        if !effluent.parts.is_empty() {
            self.n.effluent += 1;
            let id = self.id(&format!("LOSS-effluent-{:05}", self.n.effluent))?;
            let measure = Measure {
                scale: Instrument::EffluentMeter,
                moisture: (0.0, 0.0),
                assay: Some((
                    Instrument::EffluentAssay,
                    &SOLID_ASSAY[..6],
                    SOLUTION_DETECTION,
                )),
            };
            self.close(effluent, id, LotKind::Loss, measure)?;
        }
        Ok(())
    }

    fn close_products(&mut self, route: usize) -> Result<(), SynthError> {
        let r = &mut self.routes[route];
        r.leaches_in_products = 0;
        let products = std::mem::take(&mut r.products);
        for (kind, pending) in PRODUCTS.into_iter().zip(products) {
            if pending.parts.is_empty() {
                continue;
            }
            self.n.product += 1;
            let prefix = match kind {
                remine_domain::ProductKind::NickelSulphate => "NISO4",
                remine_domain::ProductKind::CobaltSulphate => "COSO4",
                remine_domain::ProductKind::LithiumCarbonate => "LI2CO3",
            };
            let id = self.id(&format!("{prefix}-{:05}", self.n.product))?;
            let payable = kind.payable().0;
            let measure = Measure {
                scale: Instrument::ProductScale,
                moisture: (0.0, 0.0),
                assay: Some((Instrument::ProductAssay, payable_list(payable), 0.0)),
            };
            self.close(pending, id, LotKind::Product(kind), measure)?;
        }
        Ok(())
    }
}

fn payable_list(e: Element) -> &'static [Element] {
    match e {
        Element::Ni => &[Element::Ni],
        Element::Co => &[Element::Co],
        _ => &[Element::Li],
    }
}

fn worst(a: ContentSource, b: ContentSource) -> ContentSource {
    let rank = |s: ContentSource| match s {
        ContentSource::Assayed => 0,
        ContentSource::Declared => 1,
        ContentSource::Estimated => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Runs one batch through the simulator's hydromet train and returns its
/// true outputs in `HydroOutput::ALL` order; leaves the train Idle.
fn run_train(
    train: &mut HydrometTrain,
    feed: &Material,
    batch: &str,
) -> Result<[Material; 6], SynthError> {
    let fail = |why: String| SynthError::Model {
        batch: batch.to_string(),
        why,
    };
    let f = |e: Element| feed.fraction(e);
    let charge = LeachCharge {
        mass_kg: feed.total(),
        ni: f(Element::Ni),
        co: f(Element::Co),
        li: f(Element::Li),
        mn: f(Element::Mn),
        cu: f(Element::Cu),
        al: f(Element::Al),
    };
    train
        .set_charge(charge)
        .map_err(|e| fail(format!("charge refused, leach is {:?}", e.0)))?;
    let started = train
        .command(HydroUnit::Leach, UnitCommand::Start.code())
        .map_err(|e| fail(format!("unknown command {}", e.0)))?;
    if !started {
        return Err(fail(format!(
            "start refused with a charge of {}",
            Kilograms::new(charge.mass_kg).map_or_else(|_| "?".into(), |k| k.to_string())
        )));
    }
    train.supply(*feed);
    // One-minute steps while leaching (the leach ends within a minute of
    // X = 0.99, as in the simulator); the later units finish in one step.
    for _ in 0..2000 {
        if train.state(HydroUnit::LiCarbonate) == UnitState::Complete {
            break;
        }
        let dt = if train.state(HydroUnit::Leach) == UnitState::Running {
            60.0
        } else {
            300.0
        };
        train.step(dt);
    }
    if train.state(HydroUnit::LiCarbonate) != UnitState::Complete {
        return Err(fail("the train did not complete".into()));
    }
    let outputs = train.true_outputs();
    train
        .command(HydroUnit::Leach, UnitCommand::Reset.code())
        .map_err(|e| fail(format!("unknown command {}", e.0)))?;
    for _ in 0..10 {
        if HydroUnit::ALL
            .iter()
            .all(|u| train.state(*u) == UnitState::Idle)
        {
            break;
        }
        train.step(TRANSIENT_S);
    }
    train.take_batch_end();
    Ok(outputs)
}
