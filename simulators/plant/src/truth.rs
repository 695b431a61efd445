//! The ground truth: where every kilogram of every tracked element is, as
//! only the simulator can know it.
//!
//! The [`Ledger`] follows material from the moment a discharge begins on a
//! unit (the unit's true make-up is drawn then, around its declared mass and
//! chemistry) through the pile of discharged packs, the shredder, the
//! black-mass stock and the leach train to the terminal outputs. Lines ask
//! it for material when a batch starts and hand their outputs back when a
//! batch is cleared; a charge the plant holds no material for is fed from
//! outside (packs discharged elsewhere, bought-in black mass) and recorded
//! as such. Every movement is a JSON line, appended to the ground-truth file
//! when one is configured, with the measured values beside the true ones,
//! so the MES's figures can be scored against the truth.
//!
//! Conservation is by construction: the lines' splits give their last part
//! the remainder, so fed = outputs + inventory for every tracked element up
//! to rounding. Across the leach only the tracked elements are conserved
//! (the rest gains acid, water and carbonate).

use crate::model::hydromet::{HydroBatchEnd, HydroOutput, LeachRequest};
use crate::model::material::{Material, PackMaterial, ShredOutput, draw_pack};
use crate::model::mechanical::{FeedRequest, ShredBatchEnd};
use crate::noise::Noise;
use remine_domain::{Chemistry, Element};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A unit (pack, module) the plant holds, with its true make-up.
#[derive(Debug, Clone)]
struct Unit {
    id: String,
    chemistry: Chemistry,
    declared_kg: f64,
    material: PackMaterial,
}

/// A black-mass lot in stock.
#[derive(Debug, Clone)]
struct Lot {
    id: String,
    material: Material,
}

/// Where the plant's material is at one moment, and what went in and out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TruthBalance {
    /// Everything that entered the plant.
    pub fed: Material,
    /// True mass of the packs and modules that entered.
    pub fed_units_kg: f64,
    /// Terminal outputs by name (side fractions, products, residues, losses).
    pub outputs: BTreeMap<String, Material>,
    /// Material still inside, by place (stations, discharged, shredder,
    /// black_mass_stock, leach).
    pub inventory: BTreeMap<String, Material>,
    /// True mass of packs fed to the shredder in cleared batches.
    pub shredded_kg: f64,
    /// All black mass made by the shredder.
    pub black_mass_made: Material,
}

impl TruthBalance {
    /// Outputs plus inventory.
    pub fn accounted(&self) -> Material {
        self.outputs
            .values()
            .chain(self.inventory.values())
            .fold(Material::NONE, |a, m| a.plus(m))
    }

    /// (accounted - fed) / fed for one element: 0 when nothing is lost or
    /// made; `None` when none of it was fed.
    pub fn closure(&self, e: Element) -> Option<f64> {
        let fed = self.fed.element(e);
        (fed > 0.0).then(|| (self.accounted().element(e) - fed) / fed)
    }
}

/// The plant's ground truth and its record.
#[derive(Debug)]
pub struct Ledger {
    noise: Noise,
    now_s: f64,
    seq: u64,
    next_unit: u64,
    next_shred: u64,
    next_leach: u64,
    on_station: BTreeMap<u16, Unit>,
    discharged: VecDeque<Unit>,
    shredding: Option<(String, Chemistry, PackMaterial)>,
    black_mass: VecDeque<Lot>,
    leaching: Option<(String, Material)>,
    fed: Material,
    fed_units_kg: f64,
    outputs: BTreeMap<String, Material>,
    shredded_kg: f64,
    black_mass_made: Material,
    records: Vec<String>,
    file: Option<(PathBuf, BufWriter<File>)>,
}

fn material_json(m: &Material) -> Value {
    let mut map = Map::new();
    map.insert("mass_kg".into(), json!(m.total()));
    for e in Element::ALL {
        map.insert(e.symbol().into(), json!(m.element(e)));
    }
    map.insert("rest".into(), json!(m.rest()));
    Value::Object(map)
}

impl Ledger {
    /// An empty plant. `file`: where the record is appended (created or
    /// truncated now); `None` keeps it in memory only.
    pub fn new(seed: u64, file: Option<&Path>) -> std::io::Result<Ledger> {
        let file = match file {
            Some(path) => Some((path.to_path_buf(), BufWriter::new(File::create(path)?))),
            None => None,
        };
        Ok(Ledger {
            noise: Noise::new(seed, 0x7247_7E11),
            now_s: 0.0,
            seq: 0,
            next_unit: 0,
            next_shred: 0,
            next_leach: 0,
            on_station: BTreeMap::new(),
            discharged: VecDeque::new(),
            shredding: None,
            black_mass: VecDeque::new(),
            leaching: None,
            fed: Material::NONE,
            fed_units_kg: 0.0,
            outputs: BTreeMap::new(),
            shredded_kg: 0.0,
            black_mass_made: Material::NONE,
            records: Vec::new(),
            file,
        })
    }

    /// Advance the ledger's clock (simulated seconds since start).
    pub fn set_time(&mut self, now_s: f64) {
        self.now_s = now_s;
    }

    /// The whole record so far, one JSON object per line, ending with the
    /// present balance.
    pub fn jsonl(&self) -> String {
        let mut out = String::new();
        for r in &self.records {
            out.push_str(r);
            out.push('\n');
        }
        out.push_str(&self.balance_record().to_string());
        out.push('\n');
        out
    }

    /// Where everything is now.
    pub fn balance(&self) -> TruthBalance {
        let mut inventory = BTreeMap::new();
        let units = |it: &mut dyn Iterator<Item = &Unit>| {
            it.fold(Material::NONE, |a, u| a.plus(&u.material.material()))
        };
        inventory.insert("stations".into(), units(&mut self.on_station.values()));
        inventory.insert("discharged".into(), units(&mut self.discharged.iter()));
        inventory.insert(
            "shredder".into(),
            self.shredding
                .as_ref()
                .map_or(Material::NONE, |(_, _, m)| m.material()),
        );
        inventory.insert(
            "black_mass_stock".into(),
            self.black_mass
                .iter()
                .fold(Material::NONE, |a, l| a.plus(&l.material)),
        );
        inventory.insert(
            "leach".into(),
            self.leaching.as_ref().map_or(Material::NONE, |(_, m)| *m),
        );
        TruthBalance {
            fed: self.fed,
            fed_units_kg: self.fed_units_kg,
            outputs: self.outputs.clone(),
            inventory,
            shredded_kg: self.shredded_kg,
            black_mass_made: self.black_mass_made,
        }
    }

    fn balance_record(&self) -> Value {
        let b = self.balance();
        let named = |m: &BTreeMap<String, Material>| {
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), material_json(v)))
                    .collect(),
            )
        };
        json!({
            "seq": self.seq + 1,
            "t_s": self.now_s,
            "event": "balance",
            "fed": material_json(&b.fed),
            "outputs": named(&b.outputs),
            "inventory": named(&b.inventory),
            "accounted": material_json(&b.accounted()),
        })
    }

    fn record(&mut self, event: &str, mut body: Value) {
        self.seq += 1;
        if let Value::Object(map) = &mut body {
            map.insert("seq".into(), json!(self.seq));
            map.insert("t_s".into(), json!(self.now_s));
            map.insert("event".into(), json!(event));
        }
        let line = body.to_string();
        if let Some((path, file)) = &mut self.file {
            let written = writeln!(file, "{line}").and_then(|()| file.flush());
            if let Err(err) = written {
                tracing::warn!(path = %path.display(), %err, "cannot append to the ground-truth file; keeping the truth in memory only");
                self.file = None;
            }
        }
        self.records.push(line);
    }

    fn receive(&mut self, chemistry: Chemistry, declared_kg: f64, origin: &str) -> Unit {
        self.next_unit += 1;
        let unit = Unit {
            id: format!("U-{:06}", self.next_unit),
            chemistry,
            declared_kg,
            material: draw_pack(chemistry, declared_kg, &mut self.noise),
        };
        let m = unit.material.material();
        self.fed.add(&m);
        self.fed_units_kg += m.total();
        self.record(
            "unit_received",
            json!({
                "unit": unit.id,
                "origin": origin,
                "chemistry": chemistry.name(),
                "declared_kg": declared_kg,
                "true": material_json(&m),
            }),
        );
        unit
    }

    /// A discharge began on station `station` with a unit of `chemistry`
    /// declared at `declared_kg`: the unit enters the plant.
    pub fn discharge_started(&mut self, station: u16, chemistry: Chemistry, declared_kg: f64) {
        // Mass entering a second time without leaving first is a unit left
        // on the station by a power cycle: it stays where it is.
        if self.on_station.contains_key(&station) {
            return;
        }
        let unit = self.receive(
            chemistry,
            declared_kg,
            &format!("discharge station {station}"),
        );
        self.on_station.insert(station, unit);
    }

    /// The unit on `station` was released to the pile of discharged units.
    pub fn discharge_released(&mut self, station: u16) {
        if let Some(unit) = self.on_station.remove(&station) {
            self.record(
                "unit_discharged",
                json!({ "unit": unit.id, "station": station }),
            );
            self.discharged.push_back(unit);
        }
    }

    /// The shredder started a batch: take the discharged units that share
    /// its process route (layered oxides together, LFP apart, as plants run
    /// campaigns), oldest first, up to the declared charge; the shortfall (if
    /// any) is fed directly (packs discharged elsewhere).
    pub fn shred_started(&mut self, request: FeedRequest) -> PackMaterial {
        self.next_shred += 1;
        let batch = format!("S-{:05}", self.next_shred);
        let mut taken: Vec<Unit> = Vec::new();
        let mut declared = 0.0;
        let mut kept = VecDeque::new();
        while let Some(unit) = self.discharged.pop_front() {
            let fits = declared + unit.declared_kg <= request.declared_kg * 1.001 + 0.5;
            if same_route(unit.chemistry, request.chemistry) && fits {
                declared += unit.declared_kg;
                taken.push(unit);
            } else {
                kept.push_back(unit);
            }
        }
        self.discharged = kept;
        let shortfall = request.declared_kg - declared;
        if shortfall > 0.5 {
            let direct = self.receive(request.chemistry, shortfall, "direct to the shredder");
            taken.push(direct);
        }
        let charge = taken
            .iter()
            .fold(PackMaterial::default(), |a, u| a.plus(&u.material));
        let ids: Vec<&str> = taken.iter().map(|u| u.id.as_str()).collect();
        self.record(
            "shred_started",
            json!({
                "batch": batch,
                "chemistry": request.chemistry.name(),
                "declared_kg": request.declared_kg,
                "units": ids,
                "true": material_json(&charge.material()),
            }),
        );
        self.shredding = Some((batch, request.chemistry, charge));
        charge
    }

    /// The shredder's batch was cleared: its outputs leave the line, black
    /// mass to stock as a new lot, the unprocessed rest back to the pile.
    pub fn shred_ended(&mut self, end: ShredBatchEnd) {
        let Some((batch, chemistry, charge)) = self.shredding.take() else {
            return;
        };
        let mut outputs = Map::new();
        let mut lot = None;
        for (i, out) in ShredOutput::ALL.iter().enumerate() {
            let truth = end.outputs[i];
            outputs.insert(
                out.name().into(),
                json!({ "true": material_json(&truth), "measured_kg": end.measured_kg[i] }),
            );
            if *out == ShredOutput::BlackMass {
                if truth.total() > 0.0 {
                    let id = format!("BM-{}", &batch[2..]);
                    self.black_mass_made.add(&truth);
                    self.black_mass.push_back(Lot {
                        id: id.clone(),
                        material: truth,
                    });
                    lot = Some(id);
                }
            } else {
                self.outputs
                    .entry(out.name().to_string())
                    .or_default()
                    .add(&truth);
            }
        }
        let fed = charge.minus(&end.unprocessed);
        self.shredded_kg += fed.total();
        if end.unprocessed.total() > 1e-9 {
            self.next_unit += 1;
            let rest = Unit {
                id: format!("U-{:06}", self.next_unit),
                chemistry,
                declared_kg: end.unprocessed.total(),
                material: end.unprocessed,
            };
            self.record(
                "unit_returned",
                json!({ "unit": rest.id, "from_batch": batch, "true": material_json(&rest.material.material()) }),
            );
            self.discharged.push_back(rest);
        }
        self.record(
            "shred_ended",
            json!({
                "batch": batch,
                "true_fed_kg": fed.total(),
                "measured_fed_kg": end.measured_processed_kg,
                "black_mass_lot": lot,
                "outputs": outputs,
            }),
        );
    }

    /// Leach started: take the charge's mass of black mass from stock,
    /// oldest lots first; a shortfall is bought-in black mass of the
    /// written composition.
    pub fn leach_started(&mut self, request: LeachRequest) -> Material {
        self.next_leach += 1;
        let batch = format!("H-{:05}", self.next_leach);
        let mut want = request.charge.mass_kg.max(0.0);
        let mut charge = Material::NONE;
        let mut sources = Vec::new();
        while want > 1e-9 {
            let Some(lot) = self.black_mass.front_mut() else {
                break;
            };
            let have = lot.material.total();
            let take = want.min(have);
            let part = if have > 0.0 {
                lot.material.scaled(take / have)
            } else {
                Material::NONE
            };
            lot.material = lot.material.minus(&part);
            charge.add(&part);
            sources.push(json!({ "lot": lot.id, "kg": take }));
            want -= take;
            if lot.material.total() <= 1e-9 {
                self.black_mass.pop_front();
            }
        }
        if want > 1e-6 {
            let mut bought = request.charge;
            bought.mass_kg = want;
            let m = bought.material();
            self.fed.add(&m);
            self.record(
                "black_mass_received",
                json!({ "origin": "bought in", "for_batch": batch, "true": material_json(&m) }),
            );
            sources.push(json!({ "lot": "bought in", "kg": want }));
            charge.add(&m);
        }
        let c = request.charge;
        self.record(
            "leach_started",
            json!({
                "batch": batch,
                "declared_kg": c.mass_kg,
                "declared_fractions": { "Ni": c.ni, "Co": c.co, "Li": c.li, "Mn": c.mn, "Cu": c.cu, "Al": c.al },
                "sources": sources,
                "true": material_json(&charge),
            }),
        );
        self.leaching = Some((batch, charge));
        charge
    }

    /// The leach train's batch was cleared: its outputs leave the plant.
    pub fn leach_ended(&mut self, end: HydroBatchEnd) {
        let Some((batch, _)) = self.leaching.take() else {
            return;
        };
        let mut outputs = Map::new();
        for (i, out) in HydroOutput::ALL.iter().enumerate() {
            let truth = end.outputs[i];
            let mut entry = json!({ "true": material_json(&truth) });
            if let (Some(kg), Some(assay), Value::Object(map)) = (
                end.measured_kg.get(i),
                end.measured_assay.get(i),
                &mut entry,
            ) {
                map.insert("measured_kg".into(), json!(kg));
                map.insert("measured_assay".into(), json!(assay));
            }
            outputs.insert(out.name().into(), entry);
            // Only the tracked elements are conserved across the leach: the
            // rest of a product is its sulphate, water or carbonate.
            self.outputs
                .entry(out.name().to_string())
                .or_default()
                .add(&truth);
        }
        self.record("leach_ended", json!({ "batch": batch, "outputs": outputs }));
    }
}

/// Whether two chemistries go through the shredder in one campaign: the
/// layered oxides (NMC, NCA, LMO) share a hydromet route; LFP has its own.
fn same_route(a: Chemistry, b: Chemistry) -> bool {
    (a == Chemistry::Lfp) == (b == Chemistry::Lfp)
}
