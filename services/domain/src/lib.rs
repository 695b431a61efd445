//! The pure core of remine.
//!
//! Everything a battery-recycling MES reasons about lives here, free of IO:
//! no tokio, no sqlx, no axum, no serde (a test reads `cargo metadata` to keep
//! it so). Other crates parse their input into these types at the edge, and
//! talk to the outside world through the [`ports`].
//!
//! Main types:
//! - quantities that carry their unit: [`Kilograms`], [`MassFraction`],
//!   [`Celsius`], and [`Uncertain`] values with a standard deviation;
//! - [`Element`] and [`ElementMasses`], [`Chemistry`] with its composition
//!   estimates (domain brief section 2);
//! - [`Passport`]: what the plant copies from a battery passport at intake;
//! - [`Lot`], [`LotKind`], [`Genealogy`]: material lots and the DAG that
//!   links them;
//! - [`LotGraph`]: backward and forward traces and recall impact on the lot
//!   graph, by proportional allocation of every element;
//! - [`MeasuredMass`], [`Assay`] and [`StockEvent`]: the metal-accounting
//!   facts (weighed masses with method and uncertainty, lab results combined
//!   by inverse variance, samples, adjustments and corrections);
//! - [`Target`]: the recovery targets of Annex XII part C;
//! - [`UnitState`] and [`UnitCommand`]: the ISA-88 state model;
//! - [`AlarmDef`], [`Condition`], [`AlarmState`], [`FloodDetector`]: alarms
//!   by the ISA-18.2 life cycle; [`Permissive`]s: interlock checks on live
//!   tags, fail safe on bad quality, with why each check is false;
//! - [`recipe`]: master recipes with units, their life cycle and signatures,
//!   and their validation against the equipment's capability;
//! - [`Role`], [`Username`]: identity; [`AuditEvent`] and [`AuditEntry`]: the
//!   hash-chained audit trail;
//! - [`Sample`], [`HistoryPolicy`], [`Recorder`] and [`Bucket`]: the
//!   historian's samples, which readings it keeps, and downsampled buckets;
//! - [`outbox`]: documents to deliver to outside platforms, their
//!   deliveries, the retry policy and the [`outbox::OutboxStore`] port;
//!   [`deadlines`]: the Chinese platform's upload deadlines in working days;
//! - [`TagName`], [`TagReading`], [`Quality`]: what the PLC adapters deliver
//!   (and [`ports::DeviceStats`]: how their links fare).
//!
//! ```
//! use remine_domain::{Chemistry, Element, Kilograms, UnitType};
//! let pack = Kilograms::new(500.0).unwrap();
//! let est = Chemistry::Nmc811.estimate_content(UnitType::Pack, pack);
//! assert!((est.get(Element::Ni).kg() - 62.5).abs() < 1e-9);
//! ```

mod accounting;
mod alarm;
mod audit;
mod chemistry;
pub mod deadlines;
mod element;
mod error;
mod history;
mod identity;
mod interlock;
mod lot;
mod movement;
pub mod outbox;
mod passport;
pub mod ports;
mod quantity;
pub mod recipe;
mod recovery;
mod tag;
mod trace;
mod unit_state;

pub use accounting::{
    Assay, MOISTURE_SIGMA, MassMethod, MeasuredMass, StockEvent, combine_assays, remaining_stock,
};
pub use alarm::{
    AlarmDef, AlarmKind, AlarmState, AlarmStatus, AlarmTransition, Condition, FloodDetector,
    Priority,
};
pub use audit::{AuditEntry, AuditEvent, ChainBreak, Digest, verify_chain};
pub use chemistry::Chemistry;
pub use element::{Element, ElementMasses};
pub use error::DomainError;
pub use history::{Bucket, HistoryPolicy, Recorder, Sample, SampleQuality, bucket_width_us};
pub use identity::{Action, Role, Username};
pub use interlock::{
    Check, CheckResult, Compare, Evaluation, Operand, Permissive, PermissiveState,
};
pub use lot::{
    Genealogy, GenealogyEdge, Lot, LotFields, LotId, LotKind, ProductKind, SideFraction,
};
pub use movement::{Step, StepKind, blend, split};
pub use passport::{
    ContentSource, CountryCode, ElementContent, GbtCode, Passport, PassportFields, PassportForm,
    PassportId, UnitType,
};
pub use quantity::{Celsius, Kilograms, MassFraction, Uncertain};
pub use recovery::Target;
pub use tag::{Access, BadReason, Quality, TagInfo, TagName, TagReading, TagValue};
pub use trace::{
    Allocated, BackwardTrace, ElementKg, ForwardTrace, LotGraph, RecallImpact, TraceLot,
};
pub use unit_state::{UnitCommand, UnitState};
