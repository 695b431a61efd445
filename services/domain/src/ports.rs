//! The ports: traits through which the services reach PLCs and storage.
//!
//! Adapters (remine-modbus, remine-opcua) implement [`TagIo`] and
//! [`DeviceStatsSource`]; the store (remine-store) implements [`LotStore`],
//! [`UserStore`], [`AuditLog`], [`RecipeStore`] and [`AccountingStore`].
//! Every write method of a store takes the [`AuditEvent`] that describes it
//! and appends it in the same transaction, so no write goes unaudited and no
//! audit entry describes a write that did not happen.

use crate::recipe::lifecycle::RecipeStatus;
use crate::recipe::{ControlRecipe, Recipe, RecipeKey, RecipeRecord, RecipeVersion, Signature};
use crate::{
    Assay, AuditEntry, AuditEvent, ChainBreak, GenealogyEdge, Lot, LotId, MeasuredMass, Passport,
    PassportId, Role, StockEvent, TagInfo, TagName, TagReading, TagValue, Username,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;

/// Why a tag could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TagError {
    #[error("unknown tag {0}")]
    UnknownTag(TagName),
    #[error("tag {0} is read-only")]
    ReadOnly(TagName),
    #[error("value {value} for {tag} is outside its limits {min}..{max}")]
    OutOfLimits {
        tag: TagName,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("device for {tag} is not connected")]
    NotConnected { tag: TagName },
    #[error("writing {tag} failed: {why}")]
    Failed { tag: TagName, why: String },
    #[error("read-back of {tag} gave {read}, wrote {written}")]
    ReadBackMismatch {
        tag: TagName,
        written: String,
        read: String,
    },
}

/// Tag I/O towards one device or a set of devices.
#[async_trait]
pub trait TagIo: Send + Sync + fmt::Debug {
    /// The tags served, with their units, access and write limits.
    fn catalogue(&self) -> Vec<TagInfo>;

    /// Current readings, one per requested tag in the same order. Never
    /// fails as a whole: an unreachable device gives bad-quality readings.
    async fn read(&self, tags: &[TagName]) -> Vec<TagReading>;

    /// Writes one value. Callers go through the services' guarded write
    /// path, which checks role and limits, audits, and reads back.
    async fn write(&self, tag: &TagName, value: TagValue) -> Result<(), TagError>;
}

/// The communication figures of one PLC link (a Modbus device, an OPC UA
/// server), as a monitoring system scrapes them. Counters only grow while
/// the adapter runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStats {
    /// The protocol: `"modbus"` or `"opcua"`.
    pub kind: &'static str,
    /// The device or server name from the tag map.
    pub device: String,
    /// The link answers.
    pub connected: bool,
    /// The comms-loss alarm is raised.
    pub comms_alarm: bool,
    /// Times the link came back after being lost.
    pub reconnects: u64,
    /// Requests sent (reads, writes, connects, service calls).
    pub requests: u64,
    /// Failed requests by kind (`timeout`, `exception`, `transport`,
    /// `protocol`), every kind listed, in that order.
    pub errors: Vec<(&'static str, u64)>,
    /// Upper bounds of the round-trip-time buckets, in seconds, ascending.
    pub rtt_bucket_bounds_s: Vec<f64>,
    /// Round trips at or below each bound (cumulative, one per bound); the
    /// implicit `+Inf` bucket is `rtt_count`.
    pub rtt_bucket_counts: Vec<u64>,
    /// Sum of all round-trip times, in seconds.
    pub rtt_sum_s: f64,
    /// Round trips measured (answered requests).
    pub rtt_count: u64,
}

impl DeviceStats {
    /// Failed requests of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }
}

/// Something that reports [`DeviceStats`]: each PLC adapter, for every link.
pub trait DeviceStatsSource: Send + Sync + fmt::Debug {
    /// One entry per device or server, in tag-map order.
    fn device_stats(&self) -> Vec<DeviceStats>;
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicts with what is stored (a duplicate id...).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not parse into domain types.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    /// The same error, its message prefixed with `context` ("write 3 of
    /// 10 (lot BM-1): ...").
    pub fn within(self, context: impl fmt::Display) -> StoreError {
        match self {
            StoreError::NotFound(m) => StoreError::NotFound(format!("{context}: {m}")),
            StoreError::Conflict(m) => StoreError::Conflict(format!("{context}: {m}")),
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{context}: {m}")),
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{context}: {m}")),
            StoreError::Internal(m) => StoreError::Internal(format!("{context}: {m}")),
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: Username,
    pub role: Role,
    /// An argon2 PHC string; never the password.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// Lots, passports and genealogy.
#[async_trait]
pub trait LotStore: Send + Sync {
    /// Records a received unit: the passport copy and its input lot.
    /// Refuses a passport id that is already stored.
    async fn receive(
        &self,
        passport: &Passport,
        lot: &Lot,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Records a production event: a new lot and the edges from the lots it
    /// was made of. Refuses an existing lot id, an unknown input and an edge
    /// that would close a cycle.
    async fn produce(
        &self,
        lot: &Lot,
        inputs: &[GenealogyEdge],
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Records a whole step (a split, a blend, a production of several
    /// lots) in one transaction: every new lot with its edges, or nothing.
    /// Refuses what [`LotStore::produce`] refuses, and inputs the step takes
    /// more of, summed over its outputs, than they have in stock.
    async fn record_step(&self, step: &crate::Step, audit: AuditEvent) -> Result<(), StoreError>;

    async fn lot(&self, id: &LotId) -> Result<Option<Lot>, StoreError>;

    /// All lots, oldest first.
    async fn lots(&self) -> Result<Vec<Lot>, StoreError>;

    /// All genealogy edges.
    async fn edges(&self) -> Result<Vec<GenealogyEdge>, StoreError>;

    async fn passport(&self, id: &PassportId) -> Result<Option<Passport>, StoreError>;

    /// A mark of the genealogy's state: it changes whenever a lot (and with
    /// it, its edges) is added, and only then; 0 without lots. Lets a
    /// reader keep the lot graph until it changes.
    async fn genealogy_mark(&self) -> Result<i64, StoreError>;
}

/// Metal-accounting facts about lots: their weighings, lab assays and
/// stock events. Every write appends its audit event in the same
/// transaction.
#[async_trait]
pub trait AccountingStore: Send + Sync {
    /// Attaches the weighing a lot was made with (wet mass, moisture,
    /// method, instrument, uncertainty). `NotFound` for an unknown lot;
    /// `Conflict` when the lot has one already (a correction is a stock
    /// event, never an overwrite).
    async fn record_measurement(
        &self,
        lot: &LotId,
        mass: &MeasuredMass,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    async fn measurement(&self, lot: &LotId) -> Result<Option<MeasuredMass>, StoreError>;

    /// Records a lab result and returns its sequence number. `NotFound`
    /// for an unknown lot.
    async fn record_assay(&self, assay: &Assay, audit: AuditEvent) -> Result<i64, StoreError>;

    /// Every assay of a lot, oldest first.
    async fn assays(&self, lot: &LotId) -> Result<Vec<Assay>, StoreError>;

    /// Appends a stock event (sample, adjustment, correction) and returns
    /// its sequence number. `NotFound` for an unknown lot or, for a
    /// correction, an unknown corrected event; `Conflict` when the event
    /// would take the lot's stock below zero or corrects another lot's
    /// event. Events are never changed or deleted.
    async fn record_stock_event(
        &self,
        lot: &LotId,
        event: &StockEvent,
        audit: AuditEvent,
    ) -> Result<i64, StoreError>;

    /// A lot's stock events with their sequence numbers, in order.
    async fn stock_events(&self, lot: &LotId) -> Result<Vec<(i64, StockEvent)>, StoreError>;

    /// What remains of a lot, in kg: its mass, less the masses on the
    /// genealogy edges out of it, plus its stock events. `NotFound` for an
    /// unknown lot. [`LotStore::produce`] refuses (`Conflict`) an edge that
    /// takes more from an input than this.
    async fn stock(&self, lot: &LotId) -> Result<f64, StoreError>;

    /// Records many lot writes in one transaction, each with its own audit
    /// entry, in the order given: all of them or, when any is refused,
    /// none (the error names the write's position and what it wrote).
    /// Each write is checked as its single method checks it, seeing the
    /// writes before it. For loading a plant's history (a migration, a
    /// synthetic year) at the speed of one commit per batch.
    async fn record_batch(&self, writes: &[(LotWrite, AuditEvent)]) -> Result<(), StoreError>;
}

/// One write of [`AccountingStore::record_batch`]: what
/// [`LotStore::receive`], [`LotStore::produce`],
/// [`AccountingStore::record_measurement`] or
/// [`AccountingStore::record_assay`] writes.
#[derive(Debug, Clone, PartialEq)]
pub enum LotWrite {
    Receive {
        passport: Passport,
        lot: Lot,
    },
    Produce {
        lot: Lot,
        inputs: Vec<GenealogyEdge>,
    },
    Measure {
        lot: LotId,
        mass: MeasuredMass,
    },
    Assay(Assay),
}

impl LotWrite {
    /// What the write is about, for errors: "unit U-1", "the weighing of
    /// BM-3"...
    pub fn describe(&self) -> String {
        match self {
            LotWrite::Receive { lot, .. } => format!("unit {}", lot.id()),
            LotWrite::Produce { lot, .. } => format!("lot {}", lot.id()),
            LotWrite::Measure { lot, .. } => format!("the weighing of {lot}"),
            LotWrite::Assay(a) => format!("an assay of {}", a.lot()),
        }
    }
}

/// Users and their sessions.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user; refuses an existing name.
    async fn add_user(&self, user: &UserRecord, audit: AuditEvent) -> Result<(), StoreError>;

    async fn user(&self, name: &Username) -> Result<Option<UserRecord>, StoreError>;

    /// Stores a session under the hash of its token (never the token).
    async fn create_session(
        &self,
        token_hash: &str,
        user: &Username,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The user of an unexpired session.
    async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRecord>, StoreError>;

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
}

/// The hash-chained audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event that is not part of a store write (a PLC write, a
    /// refused command) and returns the sealed entry.
    async fn append(&self, event: AuditEvent) -> Result<AuditEntry, StoreError>;

    /// Entries with `seq > after`, in order, at most `limit`.
    async fn entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Checks the whole chain: `Ok(Ok(n))` when all `n` entries hold,
    /// `Ok(Err(b))` naming the first entry that does not (altered, missing,
    /// inserted, unreadable).
    async fn verify(&self) -> Result<Result<u64, ChainBreak>, StoreError>;
}

/// Master recipe versions, their life cycle, and the control recipes of
/// batches. Each write checks the stored state in its own transaction, so
/// two people acting at once cannot both move one version.
#[async_trait]
pub trait RecipeStore: Send + Sync {
    /// Stores `record` (a Draft) as the next version of its key: the
    /// record's version must be one above the highest stored (1 for a new
    /// key), else `Conflict`.
    async fn create_recipe_version(
        &self,
        record: &RecipeRecord,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Replaces the content of a Draft; `Conflict` when the version is not
    /// a Draft (any more), `NotFound` when it does not exist.
    async fn update_recipe_draft(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
        recipe: &Recipe,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Moves a version from `from` to `to` and appends `signature`;
    /// `Conflict` when its stored status is not `from`. Releasing a version
    /// supersedes the key's previously released version in the same
    /// transaction.
    async fn transition_recipe(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
        from: RecipeStatus,
        to: RecipeStatus,
        signature: &Signature,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    async fn recipe_version(
        &self,
        key: RecipeKey,
        version: RecipeVersion,
    ) -> Result<Option<RecipeRecord>, StoreError>;

    /// Every version of every key (or of one key), by key then version.
    async fn recipe_versions(
        &self,
        key: Option<RecipeKey>,
    ) -> Result<Vec<RecipeRecord>, StoreError>;

    /// The key's Released version, if one is.
    async fn released_recipe(&self, key: RecipeKey) -> Result<Option<RecipeRecord>, StoreError>;

    /// Stores the control recipe of a batch; refuses a batch that has one.
    async fn record_control_recipe(
        &self,
        control: &ControlRecipe,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    async fn control_recipe(&self, batch: &LotId) -> Result<Option<ControlRecipe>, StoreError>;
}

/// Everything a store offers.
pub trait Store:
    LotStore + UserStore + AuditLog + RecipeStore + AccountingStore + OutboxStore + fmt::Debug
{
}

impl<T> Store for T where
    T: LotStore + UserStore + AuditLog + RecipeStore + AccountingStore + OutboxStore + fmt::Debug
{
}

pub use crate::outbox::OutboxStore;

/// What an entry of the alarm history records.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmHappening {
    /// An alarm moved in its life cycle.
    Transition {
        from: crate::AlarmStatus,
        to: crate::AlarmStatus,
    },
    /// An area began flooding: `count` activations in the window.
    FloodStarted { count: u32 },
    /// An area's flood ended.
    FloodEnded { count: u32 },
}

/// One entry of the alarm history: a transition of an alarm (with the
/// tag's value then, and who acted and why for an operator's action), or
/// the start or end of a flood in an area (`alarm` is then empty).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRecord {
    pub at: DateTime<Utc>,
    pub alarm: String,
    pub area: String,
    pub priority: Option<crate::Priority>,
    pub happening: AlarmHappening,
    /// The alarm tag's good value at the time, if any.
    pub value: Option<f64>,
    pub by: Option<(Username, String)>,
}

/// Which history entries a query selects; `None` selects all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmQuery {
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
    pub alarm: Option<String>,
    pub area: Option<String>,
    /// This priority and above (floods have none and are left out).
    pub min_priority: Option<crate::Priority>,
    /// At most this many entries, the newest.
    pub limit: u32,
}

/// The alarm history (ISA-18.2 journal), append-only.
#[async_trait]
pub trait AlarmLog: Send + Sync + fmt::Debug {
    /// Appends an entry and returns its sequence number. An operator's
    /// action comes with its audit event, appended in the same transaction.
    async fn append_alarm(
        &self,
        record: &AlarmRecord,
        audit: Option<AuditEvent>,
    ) -> Result<i64, StoreError>;

    /// The entries `query` selects, oldest first, with their sequence numbers.
    async fn alarm_history(
        &self,
        query: &AlarmQuery,
    ) -> Result<Vec<(i64, AlarmRecord)>, StoreError>;
}

/// The historian's storage: samples of every tag, narrow and many.
/// Appending is idempotent: a sample whose tag and time are stored already
/// is ignored (the first write wins), so replaying a batch does no harm.
/// Ranges are half-open, `from <= at < to`.
#[async_trait]
pub trait HistoryStore: Send + Sync + fmt::Debug {
    /// Stores a batch in one transaction and returns how many samples were
    /// new. `Unavailable` when the database cannot be reached: nothing of
    /// the batch is stored then.
    async fn append_samples(&self, samples: &[crate::Sample]) -> Result<u64, StoreError>;

    /// A tag's samples in the range, oldest first, at most `limit`.
    async fn samples(
        &self,
        tag: &TagName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<crate::Sample>, StoreError>;

    /// A tag's range split into at most `buckets` equal buckets (see
    /// [`crate::bucket_width_us`]), each with the statistics of its samples,
    /// computed by the database; buckets without samples are left out.
    async fn downsample(
        &self,
        tag: &TagName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        buckets: u32,
    ) -> Result<Vec<crate::Bucket>, StoreError>;

    /// Deletes a tag's samples older than `before`; returns how many.
    async fn delete_samples_before(
        &self,
        tag: &TagName,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Every tag that ever had a sample stored, by name.
    async fn history_tags(&self) -> Result<Vec<TagName>, StoreError>;
}
