//! The production run of the demo plant: received units through discharge,
//! shredding under nitrogen and the hydrometallurgical train to product
//! lots, driving the lines through their tags and recording every lot and
//! genealogy edge with masses.
//!
//! The plant does the physics (the simulator, or a real plant with the same
//! tags); the MES decides, writes setpoints and commands through the
//! [`GuardedWriter`] (setpoints as each batch's control recipe, downloaded
//! from the released master recipe by [`Recipes`]), waits for the units' ISA-88 states, reads the weighed
//! outputs, and records lots. The tag names are the demo plant's, defined in
//! its tag maps (services/remine/demo/*.toml).

use crate::{Actor, DownloadRequest, GuardedWriter, MesError, Recipes};
use chrono::Utc;
use remine_domain::ports::{Store, TagIo};
use remine_domain::{
    Assay, AuditEvent, Chemistry, ContentSource, Element, ElementMasses, GenealogyEdge, Kilograms,
    Lot, LotFields, LotId, LotKind, MassFraction, MassMethod, MeasuredMass, ProductKind,
    SideFraction, TagName, TagValue, UnitCommand, UnitState, UnitType,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Share of each element that the mechanical line sends to black mass (E):
/// cathode and electrolyte metals almost all; current-collector metals mostly
/// to their own fractions. The rest goes to the side fractions below or is lost.
fn to_black_mass(e: Element) -> f64 {
    match e {
        Element::Li | Element::Ni | Element::Co | Element::Mn => 0.97,
        Element::Fe | Element::P | Element::Graphite => 0.95,
        Element::Cu => 0.04,
        Element::Al => 0.04,
    }
}

/// Relative uncertainty (1 sigma) of the product lines' analysers (an ICP
/// assay of a solution or salt: 1-3 %, domain brief section 6).
const ANALYSER_RELATIVE_SIGMA: f64 = 0.02;

/// The mechanical line's output tag (`Mechanical/Output/...`) of a side
/// fraction's scale.
fn side_fraction_tag(f: SideFraction) -> &'static str {
    match f {
        SideFraction::Copper => "Copper",
        SideFraction::Aluminium => "Aluminium",
        SideFraction::Steel => "Steel",
        SideFraction::Plastics => "Plastics",
    }
}

/// How to run the demo plant.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Discharge stations available (`Discharge/Station1..N`).
    pub stations: usize,
    /// How often unit states are polled.
    pub poll: Duration,
    /// The longest wall time one step may take before the run gives up.
    pub step_timeout: Duration,
}

/// What the run made.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub discharge_batches: Vec<LotId>,
    pub black_mass: LotId,
    pub leach_batch: LotId,
    pub products: Vec<LotId>,
    pub setpoint_writes: usize,
}

/// The ports and identity a run works through.
#[derive(Debug, Clone)]
pub struct Production {
    io: Arc<dyn TagIo>,
    writer: GuardedWriter,
    store: Arc<dyn Store>,
    recipes: Recipes,
    actor: Actor,
    config: RunConfig,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

fn tag(s: &str) -> Result<TagName, MesError> {
    Ok(TagName::parse(s)?)
}

fn kg(v: f64) -> Result<Kilograms, MesError> {
    Ok(Kilograms::new(v)?)
}

/// The code a PLC's chemistry register takes (simulators/README.md).
pub fn chemistry_code(c: Chemistry) -> i64 {
    match c {
        Chemistry::Nmc111 => 1,
        Chemistry::Nmc532 => 2,
        Chemistry::Nmc622 => 3,
        Chemistry::Nmc811 => 4,
        Chemistry::Nca => 5,
        Chemistry::Lfp => 6,
        Chemistry::Lmo => 7,
    }
}

/// Electrical data of a unit estimated from its chemistry and mass (E):
/// cells in series and capacity in Ah, for a pack of ~400 V nominal.
fn electrical(c: Chemistry, unit: UnitType, mass: Kilograms) -> (i64, f64) {
    let (kg_per_kwh, cell_v) = match c {
        Chemistry::Lfp => (6.7, 3.2),
        Chemistry::Lmo => (7.0, 3.8),
        _ => (5.2, 3.65),
    };
    let series: i64 = match unit {
        UnitType::Pack => (400.0 / cell_v) as i64,
        UnitType::Module => 12,
        UnitType::Cell => 1,
    };
    let kwh = mass.kg() / kg_per_kwh;
    let ah = kwh * 1000.0 / (series as f64 * cell_v);
    (series, ah.max(1.0))
}

impl Production {
    pub fn new(
        io: Arc<dyn TagIo>,
        writer: GuardedWriter,
        store: Arc<dyn Store>,
        recipes: Recipes,
        actor: Actor,
        config: RunConfig,
    ) -> Production {
        Production {
            io,
            writer,
            store,
            recipes,
            actor,
            config,
            writes: Arc::default(),
        }
    }

    async fn set(&self, name: &str, value: TagValue, reason: &str) -> Result<(), MesError> {
        self.writer
            .write(&self.actor, &tag(name)?, value, reason)
            .await?;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Downloads the released recipe for `chemistry` to `unit` as the
    /// control recipe of `batch` (written, read back, verified, stored).
    async fn download(
        &self,
        unit: &str,
        chemistry: Chemistry,
        batch: &LotId,
    ) -> Result<(), MesError> {
        let control = self
            .recipes
            .download(
                &self.writer,
                self.io.as_ref(),
                &self.actor,
                DownloadRequest {
                    unit: unit.to_string(),
                    chemistry,
                    batch: batch.clone(),
                    adjustments: Vec::new(),
                },
            )
            .await?;
        let tagged = control
            .recipe
            .parameters()
            .filter(|(_, p)| {
                self.recipes
                    .catalogue(control.recipe.key().line)
                    .and_then(|c| c.capability(p.name().as_str()))
                    .is_some_and(|c| c.tag_template().is_some())
            })
            .count();
        self.writes
            .fetch_add(tagged, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn read_f64(&self, name: &str) -> Result<f64, MesError> {
        let t = tag(name)?;
        let r = self.io.read(std::slice::from_ref(&t)).await;
        r.first()
            .and_then(|r| r.good_value())
            .map(TagValue::as_f64)
            .ok_or_else(|| {
                let q = r.first().map(|r| r.quality.to_string()).unwrap_or_default();
                MesError::Plant(format!("{name} has no good value ({q})"))
            })
    }

    /// The unit's state; waits out a passing loss of the link (bad quality)
    /// up to the step timeout, since a PLC reconnect is normal.
    async fn state(&self, unit: &str) -> Result<Option<UnitState>, MesError> {
        let deadline = tokio::time::Instant::now() + self.config.step_timeout;
        loop {
            match self.read_f64(&format!("{unit}/State")).await {
                Ok(code) => return Ok(UnitState::from_code(code as u16)),
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(self.config.poll).await,
            }
        }
    }

    async fn command(&self, unit: &str, cmd: UnitCommand, reason: &str) -> Result<(), MesError> {
        let state = self.state(unit).await?;
        if let Some(s) = state {
            s.apply(cmd)
                .map_err(|e| MesError::NotAllowed(format!("{unit}: {e}")))?;
        }
        self.set(
            &format!("{unit}/Command"),
            TagValue::Int(i64::from(cmd.code())),
            reason,
        )
        .await
    }

    /// Polls `unit`'s state until it is `want`; refuses Aborted/Held as a failure.
    async fn wait_state(&self, unit: &str, want: UnitState) -> Result<(), MesError> {
        let deadline = tokio::time::Instant::now() + self.config.step_timeout;
        loop {
            match self.state(unit).await {
                Ok(Some(s)) if s == want => return Ok(()),
                Ok(Some(s @ (UnitState::Aborted | UnitState::Stopped))) => {
                    return Err(MesError::Plant(format!(
                        "{unit} went to {s} while waiting for {want}"
                    )));
                }
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(MesError::Plant(format!(
                    "{unit} did not reach {want} within {:?}",
                    self.config.step_timeout
                )));
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// Brings a unit back to Idle if a previous run left it Complete, Stopped or Aborted.
    async fn ensure_idle(&self, unit: &str) -> Result<(), MesError> {
        match self.state(unit).await? {
            Some(UnitState::Idle) => Ok(()),
            Some(UnitState::Resetting) => self.wait_state(unit, UnitState::Idle).await,
            Some(UnitState::Complete | UnitState::Stopped | UnitState::Aborted) => {
                self.command(unit, UnitCommand::Reset, "reset before a new batch")
                    .await?;
                self.wait_state(unit, UnitState::Idle).await
            }
            other => Err(MesError::Plant(format!(
                "{unit} is {} and cannot take a new batch",
                other.map(|s| s.name()).unwrap_or("in an unknown state")
            ))),
        }
    }

    async fn record(
        &self,
        lot: &Lot,
        inputs: &[GenealogyEdge],
        what: &str,
    ) -> Result<(), MesError> {
        let audit = AuditEvent {
            actor: self.actor.user.clone(),
            action: "lot.produce".into(),
            target: lot.id().to_string(),
            old: None,
            new: Some(format!("{} {}", lot.kind().label(), lot.mass())),
            reason: what.into(),
        };
        self.store.produce(lot, inputs, audit).await?;
        Ok(())
    }

    /// Records what the line's own instruments measured of a lot it made:
    /// its weighing on the scale behind `scale` (dry: the outputs leave the
    /// line dry) and, where the line analyses it, the element's mass
    /// fraction with the analyser's relative uncertainty. These are the
    /// measurements the metal balance reconciles.
    async fn measured(
        &self,
        lot: &LotId,
        mass: Kilograms,
        scale: &str,
        analysed: Option<(Element, f64, &str)>,
    ) -> Result<(), MesError> {
        let audit = |action: &str, new: String| AuditEvent {
            actor: self.actor.user.clone(),
            action: action.into(),
            target: lot.to_string(),
            old: None,
            new: Some(new),
            reason: format!("read from {scale}"),
        };
        let weighing = MeasuredMass::new(
            mass,
            MassFraction::new(0.0)?,
            MassMethod::PlatformScale,
            scale,
            None,
        )?;
        self.store
            .record_measurement(lot, &weighing, audit("lot.weigh", format!("{mass} dry")))
            .await?;
        if let Some((element, fraction, analyser)) = analysed {
            let assay = Assay::new(
                lot.clone(),
                &format!("{lot}-{}", element.symbol()),
                element,
                MassFraction::new(fraction)?,
                fraction * ANALYSER_RELATIVE_SIGMA,
                "online analyser",
                analyser,
            )?;
            self.store
                .record_assay(
                    &assay,
                    audit("lot.assay", format!("{element} {:.4} %", fraction * 100.0)),
                )
                .await?;
        }
        Ok(())
    }

    /// Runs the input units through the whole plant.
    #[tracing::instrument(skip(self, inputs), fields(units = inputs.len()))]
    pub async fn run(
        &self,
        campaign: &str,
        inputs: &[(Lot, Chemistry, UnitType)],
    ) -> Result<RunResult, MesError> {
        if inputs.is_empty() {
            return Err(MesError::NotAllowed("no units to process".into()));
        }
        let mut batches = Vec::new();
        for (wave, chunk) in inputs.chunks(self.config.stations.max(1)).enumerate() {
            batches.push(self.discharge(campaign, wave + 1, chunk).await?);
        }
        let dominant = dominant_chemistry(inputs);
        let black_mass = self.shred(campaign, &batches, dominant).await?;
        let (leach, products) = self.hydromet(campaign, &black_mass).await?;
        Ok(RunResult {
            discharge_batches: batches.iter().map(|b| b.id().clone()).collect(),
            black_mass: black_mass.id().clone(),
            leach_batch: leach,
            products,
            setpoint_writes: self.writes.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    async fn discharge(
        &self,
        campaign: &str,
        wave: usize,
        units: &[(Lot, Chemistry, UnitType)],
    ) -> Result<Lot, MesError> {
        let mut stations = Vec::new();
        for (i, (lot, chem, unit_type)) in units.iter().enumerate() {
            let st = format!("Discharge/Station{}", i + 1);
            self.ensure_idle(&st).await?;
            let why = format!("load {} for discharge", lot.id());
            let (series, ah) = electrical(*chem, *unit_type, lot.mass());
            for (signal, value, reason) in [
                (
                    "Chemistry",
                    TagValue::Int(chemistry_code(*chem)),
                    why.as_str(),
                ),
                ("CellsInSeries", TagValue::Int(series), &why),
                ("CapacityAh", TagValue::Float(ah), &why),
                ("UnitMass", TagValue::Float(lot.mass().kg()), &why),
            ] {
                self.set(&format!("{st}/{signal}"), value, reason).await?;
            }
            // Each unit's discharge is a batch of its own: its control
            // recipe is stored under the unit's lot.
            self.download(&st, *chem, lot.id()).await?;
            self.command(&st, UnitCommand::Start, &format!("discharge {}", lot.id()))
                .await?;
            stations.push(st);
        }
        for st in &stations {
            self.wait_state(st, UnitState::Complete).await?;
        }
        let mut energy = 0.0;
        for st in &stations {
            energy += self.read_f64(&format!("{st}/Energy")).await.unwrap_or(0.0);
            self.command(st, UnitCommand::Reset, "release discharged unit")
                .await?;
        }
        for st in &stations {
            self.wait_state(st, UnitState::Idle).await?;
        }
        let mass: Kilograms = units.iter().map(|(l, _, _)| l.mass()).sum();
        let elements = units.iter().fold(ElementMasses::new(), |acc, (l, _, _)| {
            acc.plus(l.elements())
        });
        let lot = made_lot(
            &format!("DB-{campaign}-{wave}"),
            LotKind::DischargeBatch,
            mass,
            elements,
            worst_source(units.iter().map(|(l, _, _)| l.content_source())),
        )?;
        let edges: Vec<GenealogyEdge> = units
            .iter()
            .map(|(l, _, _)| GenealogyEdge {
                from: l.id().clone(),
                to: lot.id().clone(),
                mass: l.mass(),
            })
            .collect();
        self.record(
            &lot,
            &edges,
            &format!("discharged, {energy:.1} kWh recovered"),
        )
        .await?;
        Ok(lot)
    }

    async fn shred(
        &self,
        campaign: &str,
        batches: &[Lot],
        chem: Chemistry,
    ) -> Result<Lot, MesError> {
        let unit = "Mechanical/Shredder";
        self.ensure_idle(unit).await?;
        let charge: Kilograms = batches.iter().map(|b| b.mass()).sum();
        let why = format!("charge {} discharge batches", batches.len());
        self.set(
            &format!("{unit}/ChargeMass"),
            TagValue::Float(charge.kg()),
            &why,
        )
        .await?;
        self.set(
            &format!("{unit}/ChargeChemistry"),
            TagValue::Int(chemistry_code(chem)),
            &why,
        )
        .await?;
        let bm_id = LotId::parse(&format!("BM-{}-{campaign}", chem.family()))?;
        self.download(unit, chem, &bm_id).await?;
        self.command(unit, UnitCommand::Start, "shred under nitrogen")
            .await?;
        self.wait_state(unit, UnitState::Complete).await?;

        let out =
            |s: &'static str| async move { self.read_f64(&format!("Mechanical/Output/{s}")).await };
        let bm_mass = kg(out("BlackMass").await?)?;
        let mut fractions = Vec::new();
        for f in SideFraction::ALL {
            fractions.push((f, kg(out(side_fraction_tag(f)).await?)?));
        }
        let losses = kg(out("Losses").await?)?;
        let fractions_kg: f64 = fractions.iter().map(|(_, m)| m.kg()).sum();
        self.command(unit, UnitCommand::Reset, "batch recorded")
            .await?;
        self.wait_state(unit, UnitState::Idle).await?;

        let input: ElementMasses = batches
            .iter()
            .fold(ElementMasses::new(), |a, b| a.plus(b.elements()));
        let share =
            |e: Element, f: f64| Kilograms::new(input.get(e).kg() * f).unwrap_or(Kilograms::ZERO);
        let bm_elements = cap(
            input
                .iter()
                .map(|(e, _)| (e, share(e, to_black_mass(e))))
                .collect(),
            bm_mass,
        );
        // Each output takes from each discharge batch in proportion to its mass.
        let produce = |to: LotId, total: Kilograms| -> Vec<GenealogyEdge> {
            batches
                .iter()
                .map(|b| GenealogyEdge {
                    from: b.id().clone(),
                    to: to.clone(),
                    mass: Kilograms::new(total.kg() * b.mass().kg() / charge.kg().max(1e-9))
                        .unwrap_or(Kilograms::ZERO),
                })
                .collect()
        };
        let bm = made_lot(
            bm_id.as_str(),
            LotKind::BlackMass(chem),
            bm_mass,
            bm_elements,
            ContentSource::Estimated,
        )?;
        self.record(
            &bm,
            &produce(bm.id().clone(), bm_mass),
            "shredded, dried and screened",
        )
        .await?;
        self.measured(bm.id(), bm_mass, "Mechanical/Output/BlackMass", None)
            .await?;
        for (fraction, mass) in fractions {
            let elements = match fraction {
                SideFraction::Copper => cap(
                    [(Element::Cu, share(Element::Cu, 0.93))]
                        .into_iter()
                        .collect(),
                    mass,
                ),
                SideFraction::Aluminium => cap(
                    [(Element::Al, share(Element::Al, 0.90))]
                        .into_iter()
                        .collect(),
                    mass,
                ),
                _ => ElementMasses::new(),
            };
            let lot = made_lot(
                &format!("SF-{}-{campaign}", fraction.name()),
                LotKind::SideFraction(fraction),
                mass,
                elements,
                ContentSource::Estimated,
            )?;
            self.record(&lot, &produce(lot.id().clone(), mass), "separated")
                .await?;
            let scale = format!("Mechanical/Output/{}", side_fraction_tag(fraction));
            self.measured(lot.id(), mass, &scale, None).await?;
        }
        // The losses nobody weighs are booked as at most what the weighed
        // outputs leave of the charge: the loss reading is as noisy as the
        // scales, and the outputs together may not take more than the
        // discharge batches hold.
        let weighed: f64 = bm_mass.kg() + fractions_kg;
        let losses = Kilograms::new(losses.kg().min(charge.kg() - weighed).max(0.0))
            .unwrap_or(Kilograms::ZERO);
        let loss = made_lot(
            &format!("LOSS-mech-{campaign}"),
            LotKind::Loss,
            losses,
            ElementMasses::new(),
            ContentSource::Estimated,
        )?;
        self.record(
            &loss,
            &produce(loss.id().clone(), losses),
            "electrolyte and moisture evaporated",
        )
        .await?;
        Ok(bm)
    }

    async fn hydromet(&self, campaign: &str, bm: &Lot) -> Result<(LotId, Vec<LotId>), MesError> {
        let leach = "Hydromet/Leach";
        self.ensure_idle(leach).await?;
        let why = format!("charge {} (lab assay)", bm.id());
        self.set(
            &format!("{leach}/ChargeMass"),
            TagValue::Float(bm.mass().kg()),
            &why,
        )
        .await?;
        for (e, name) in [
            (Element::Ni, "ChargeNi"),
            (Element::Co, "ChargeCo"),
            (Element::Li, "ChargeLi"),
            (Element::Mn, "ChargeMn"),
            (Element::Cu, "ChargeCu"),
            (Element::Al, "ChargeAl"),
        ] {
            let f = bm.elements().get(e).kg() / bm.mass().kg().max(1e-9);
            self.set(&format!("{leach}/{name}"), TagValue::Float(f), &why)
                .await?;
        }
        let chem = match bm.kind() {
            LotKind::BlackMass(c) => c,
            _ => Chemistry::Nmc811,
        };
        self.download(leach, chem, &leach_batch_id(campaign)?)
            .await?;
        self.command(leach, UnitCommand::Start, &format!("leach {}", bm.id()))
            .await?;
        self.wait_state("Hydromet/LiCarbonate", UnitState::Complete)
            .await?;
        // Subscriptions deliver each variable on its own; let the final
        // product weights arrive before reading them.
        tokio::time::sleep(self.config.poll * 4).await;

        let leach_lot = made_lot(
            leach_batch_id(campaign)?.as_str(),
            LotKind::LeachBatch,
            bm.mass(),
            bm.elements().clone(),
            bm.content_source(),
        )?;
        let edge = |from: &Lot, to: &LotId, mass: Kilograms| GenealogyEdge {
            from: from.id().clone(),
            to: to.clone(),
            mass,
        };
        self.record(
            &leach_lot,
            &[edge(bm, leach_lot.id(), bm.mass())],
            "leached",
        )
        .await?;

        let mut products = Vec::new();
        for (product, mass_tag, fraction_tag) in [
            (
                ProductKind::NickelSulphate,
                "Hydromet/NiCrystallizer/ProductMass",
                "Hydromet/NiCrystallizer/ProductNi",
            ),
            (
                ProductKind::CobaltSulphate,
                "Hydromet/CoCrystallizer/ProductMass",
                "Hydromet/CoCrystallizer/ProductCo",
            ),
            (
                ProductKind::LithiumCarbonate,
                "Hydromet/LiCarbonate/ProductMass",
                "Hydromet/LiCarbonate/Purity",
            ),
        ] {
            let mass = kg(self.read_f64(mass_tag).await?)?;
            let (element, stoich) = product.payable();
            let measured = self.read_f64(fraction_tag).await?;
            // Li2CO3 reports purity; the sulphates report their metal fraction.
            let fraction = if product == ProductKind::LithiumCarbonate {
                stoich * measured
            } else {
                measured
            };
            let id = LotId::parse(&format!("{}-{campaign}", product_prefix(product)))?;
            let metal = kg(mass.kg() * fraction)?;
            let lot = made_lot(
                id.as_str(),
                LotKind::Product(product),
                mass,
                [(element, metal)].into_iter().collect(),
                ContentSource::Assayed,
            )?;
            // What the product took from the leach batch is its metal; the
            // sulphate, carbonate and water come from reagents.
            self.record(
                &lot,
                &[edge(&leach_lot, &id, metal)],
                "crystallised and assayed",
            )
            .await?;
            self.measured(&id, mass, mass_tag, Some((element, fraction, fraction_tag)))
                .await?;
            products.push(id);
        }
        let residue_mass = kg(self.read_f64("Hydromet/Leach/ResidueMass").await?)?;
        let residue = made_lot(
            &format!("RES-{campaign}"),
            LotKind::Residue,
            residue_mass,
            ElementMasses::new(),
            ContentSource::Estimated,
        )?;
        self.record(
            &residue,
            &[edge(&leach_lot, residue.id(), residue_mass)],
            "leach residue",
        )
        .await?;
        self.command(leach, UnitCommand::Reset, "batch recorded")
            .await?;
        self.wait_state(leach, UnitState::Idle).await?;
        Ok((leach_lot.id().clone(), products))
    }
}

/// A lot the plant made now (no passport of its own).
/// The lot a campaign's leach batch makes.
fn leach_batch_id(campaign: &str) -> Result<LotId, MesError> {
    Ok(LotId::parse(&format!("LB-{campaign}"))?)
}

fn made_lot(
    id: &str,
    kind: LotKind,
    mass: Kilograms,
    elements: ElementMasses,
    content_source: ContentSource,
) -> Result<Lot, MesError> {
    Ok(Lot::new(LotFields {
        id: LotId::parse(id)?,
        kind,
        mass,
        elements,
        content_source,
        created_at: Utc::now(),
        passport: None,
        country_of_collection: None,
    })?)
}

fn product_prefix(p: ProductKind) -> &'static str {
    match p {
        ProductKind::NickelSulphate => "NISO4",
        ProductKind::CobaltSulphate => "COSO4",
        ProductKind::LithiumCarbonate => "LI2CO3",
    }
}

/// Scales element masses down so they do not exceed the lot's mass.
fn cap(elements: ElementMasses, mass: Kilograms) -> ElementMasses {
    let total = elements.total().kg();
    if total > mass.kg() && total > 0.0 {
        elements.scaled(mass.kg() / total)
    } else {
        elements
    }
}

fn worst_source(sources: impl Iterator<Item = ContentSource>) -> ContentSource {
    sources
        .max_by(|a, b| a.relative_sigma().total_cmp(&b.relative_sigma()))
        .unwrap_or(ContentSource::Estimated)
}

/// The chemistry that brings the most mass: it labels the black mass.
fn dominant_chemistry(inputs: &[(Lot, Chemistry, UnitType)]) -> Chemistry {
    let mut by: HashMap<Chemistry, f64> = HashMap::new();
    for (l, c, _) in inputs {
        *by.entry(*c).or_default() += l.mass().kg();
    }
    by.into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
        .unwrap_or(Chemistry::Nmc811)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_is_estimated_at_about_400_volts() {
        let (series, ah) = electrical(
            Chemistry::Nmc811,
            UnitType::Pack,
            Kilograms::new(520.0).unwrap(),
        );
        assert_eq!(series, 109);
        assert!((ah - 100_000.0 / (109.0 * 3.65)).abs() < 1.0, "{ah}");
    }

    #[test]
    fn element_masses_are_capped_at_the_lot_mass() {
        let e: ElementMasses = [(Element::Ni, Kilograms::new(30.0).unwrap())]
            .into_iter()
            .collect();
        let c = cap(e, Kilograms::new(20.0).unwrap());
        assert!((c.get(Element::Ni).kg() - 20.0).abs() < 1e-9);
    }
}
