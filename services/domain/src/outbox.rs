//! The transactional outbox: documents the plant must deliver to outside
//! platforms (a traceability platform, a Catena-X connector), their
//! deliveries, the retry policy, and the [`OutboxStore`] port.
//!
//! A [`Document`] is stored together with one [`Delivery`] per target
//! connector in the same transaction that produced it, so a document is
//! never produced without being queued, nor queued without existing. A
//! worker then claims due deliveries under a lease, sends them, and records
//! each attempt's outcome; the [`RetryPolicy`] turns a failed attempt into
//! either a later retry (connect errors, timeouts, 408, 425, 429, 5xx; a
//! `Retry-After` is honoured) or a parked delivery that waits for a person
//! (any other answer, kept with its status and reason).
//!
//! Every document carries an [`IdempotencyKey`] computed from its kind, id
//! and content, so a retry (or a re-send after a crash) is recognised by
//! the receiver as the same document: delivery is at least once on the
//! wire and exactly once at the receiver.

use crate::{AuditEvent, DomainError};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::time::Duration;

use crate::ports::StoreError;

/// Checks an identifier: 1 to `max` characters from `allowed`.
fn identifier(
    what: &'static str,
    s: &str,
    max: usize,
    allowed: fn(char) -> bool,
    rule: &str,
) -> Result<String, DomainError> {
    if !s.is_empty() && s.len() <= max && s.chars().all(allowed) {
        Ok(s.to_string())
    } else {
        Err(DomainError::Malformed {
            what,
            value: s.to_string(),
            why: rule.to_string(),
        })
    }
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

fn name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
}

/// The id of a document, unique in the outbox: 1-128 characters of A-Z,
/// a-z, 0-9, '.', '_', ':', '-', so it can stand in a URL path unescaped
/// (`recovery-2027-final`, `provenance:NISO4-0042`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId(String);

impl DocumentId {
    pub fn parse(s: &str) -> Result<DocumentId, DomainError> {
        identifier(
            "document id",
            s,
            128,
            id_char,
            "1-128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'",
        )
        .map(DocumentId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a document is, for the receiver and for people: 1-64 characters of
/// a-z, 0-9, '_', '-' (`recovery-report`, `provenance-record`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentKind(String);

impl DocumentKind {
    pub fn parse(s: &str) -> Result<DocumentKind, DomainError> {
        identifier(
            "document kind",
            s,
            64,
            name_char,
            "1-64 characters of a-z, 0-9, '_', '-'",
        )
        .map(DocumentKind)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a target connector, as configured: 1-64 characters of a-z,
/// 0-9, '_', '-' (`catenax-edc`, `cn-platform`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectorName(String);

impl ConnectorName {
    pub fn parse(s: &str) -> Result<ConnectorName, DomainError> {
        identifier(
            "connector name",
            s,
            64,
            name_char,
            "1-64 characters of a-z, 0-9, '_', '-'",
        )
        .map(ConnectorName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document's media type, such as `application/ld+json`: a type and a
/// subtype around one '/', printable ASCII, at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentType(String);

impl ContentType {
    pub fn parse(s: &str) -> Result<ContentType, DomainError> {
        let shape = s
            .split_once('/')
            .is_some_and(|(t, sub)| !t.is_empty() && !sub.is_empty() && !sub.contains('/'));
        let printable = s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if shape && printable && s.len() <= 128 {
            Ok(ContentType(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "content type",
                value: s.to_string(),
                why: "expected type/subtype in printable ASCII, at most 128 characters".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document's content: text (JSON, CSV, HTML) or bytes (a PDF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Bytes(Vec<u8>),
}

impl Content {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Content::Text(t) => t.as_bytes(),
            Content::Bytes(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

/// The key by which a receiver recognises a document it has seen: the
/// lowercase hex SHA-256 of the document's kind, id and content, each
/// preceded by its length (so no two different documents share a key by
/// where one field ends and the next begins). The same document always gets
/// the same key, on every machine and every retry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of a document with this kind, id and content.
    pub fn derive(kind: &DocumentKind, id: &DocumentId, content: &Content) -> IdempotencyKey {
        let mut h = Sha256::new();
        for part in [
            kind.as_str().as_bytes(),
            id.as_str().as_bytes(),
            content.as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        IdempotencyKey(hex::encode(h.finalize()))
    }

    /// A stored key back: 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<IdempotencyKey, DomainError> {
        if s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            Ok(IdempotencyKey(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "idempotency key",
                value: s.to_string(),
                why: "expected 64 lowercase hex digits (a SHA-256)".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is needed to build a [`Document`].
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentFields {
    pub id: DocumentId,
    pub kind: DocumentKind,
    pub content_type: ContentType,
    pub content: Content,
    pub created_at: DateTime<Utc>,
}

/// A document to deliver. Its idempotency key is derived from it at
/// construction and cannot disagree with its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    fields: DocumentFields,
    key: IdempotencyKey,
}

/// The largest document the outbox takes: 64 MiB. A yearly report is far
/// smaller; anything this large is a mistake upstream.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

impl Document {
    /// Refuses empty content and content above [`MAX_DOCUMENT_BYTES`].
    pub fn new(fields: DocumentFields) -> Result<Document, DomainError> {
        let len = fields.content.len();
        if len == 0 || len > MAX_DOCUMENT_BYTES {
            return Err(DomainError::OutOfRange {
                what: "document content",
                rule: "1 byte to 64 MiB",
                value: format!("{len} bytes in document {}", fields.id),
            });
        }
        let key = IdempotencyKey::derive(&fields.kind, &fields.id, &fields.content);
        Ok(Document { fields, key })
    }

    pub fn id(&self) -> &DocumentId {
        &self.fields.id
    }

    pub fn kind(&self) -> &DocumentKind {
        &self.fields.kind
    }

    pub fn content_type(&self) -> &ContentType {
        &self.fields.content_type
    }

    pub fn content(&self) -> &Content {
        &self.fields.content
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.fields.created_at
    }

    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.key
    }
}

/// Which delivery: a document to a target connector. A document has at most
/// one delivery per target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryKey {
    pub document: DocumentId,
    pub target: ConnectorName,
}

impl fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.document, self.target)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (the first, or a retry after a
    /// transient failure).
    Pending,
    /// Claimed by a worker that is sending it; if the worker dies, the
    /// delivery becomes due again when the lease ends.
    InFlight {
        worker: String,
        lease_until: DateTime<Utc>,
    },
    /// The receiver accepted it; `receipt` is what it answered (an id, a
    /// status line).
    Delivered { at: DateTime<Utc>, receipt: String },
    /// The receiver refused it for good; a person must look, fix and
    /// requeue. `status` is the HTTP status, when there was one.
    Parked {
        at: DateTime<Utc>,
        reason: String,
        status: Option<u16>,
    },
}

/// The states without their data, to select deliveries and count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateName {
    Pending,
    InFlight,
    Delivered,
    Parked,
}

impl StateName {
    pub const ALL: [StateName; 4] = [
        StateName::Pending,
        StateName::InFlight,
        StateName::Delivered,
        StateName::Parked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StateName::Pending => "pending",
            StateName::InFlight => "in_flight",
            StateName::Delivered => "delivered",
            StateName::Parked => "parked",
        }
    }

    pub fn parse(s: &str) -> Result<StateName, DomainError> {
        StateName::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| DomainError::Malformed {
                what: "delivery state",
                value: s.to_string(),
                why: "expected pending, in_flight, delivered or parked".into(),
            })
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DeliveryState {
    pub fn name(&self) -> StateName {
        match self {
            DeliveryState::Pending => StateName::Pending,
            DeliveryState::InFlight { .. } => StateName::InFlight,
            DeliveryState::Delivered { .. } => StateName::Delivered,
            DeliveryState::Parked { .. } => StateName::Parked,
        }
    }
}

/// One delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub key: DeliveryKey,
    pub idempotency_key: IdempotencyKey,
    pub state: DeliveryState,
    /// Attempts begun since it was enqueued or last requeued (a claim
    /// begins one).
    pub attempts: u32,
    /// When it is due next (for a pending delivery).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed, while it is retried.
    pub last_error: Option<String>,
}

/// A delivery claimed by a worker, with its document: the worker may send
/// it until `lease_until`, and records the outcome under `attempt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub key: DeliveryKey,
    /// The attempt this claim began (1 for the first); recording an
    /// outcome under an older number is refused, so a worker whose lease
    /// ran out cannot overwrite a newer attempt.
    pub attempt: u32,
    pub lease_until: DateTime<Utc>,
    pub document: Document,
}

/// What happened when a worker tried to send a document.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// The receiver accepted it (or already had it).
    Delivered { receipt: String },
    /// No connection could be made (refused, DNS, TLS).
    Unreachable { why: String },
    /// No complete answer within the timeout.
    TimedOut { after: Duration },
    /// The receiver answered with a status that is not success.
    Answered {
        status: u16,
        /// The `Retry-After` the receiver asked for, if any.
        retry_after: Option<Duration>,
        /// What the receiver said, shortened (the body's reason).
        reason: String,
    },
    /// The document cannot be sent as it is (it is not the JSON the
    /// connector needs, say); retrying would not help.
    Unsendable { reason: String },
}

/// What the retry policy makes of an attempt: the delivery's next state.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    Delivered {
        at: DateTime<Utc>,
        receipt: String,
    },
    /// Transient failure: try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Permanent failure: wait for a person.
    Park {
        at: DateTime<Utc>,
        reason: String,
        status: Option<u16>,
    },
}

/// When to retry: capped exponential backoff without jitter, so the
/// schedule is the same on every run (`initial`, 2x, 4x, ... up to `cap`).
/// A receiver's `Retry-After` replaces the backoff, but never beyond
/// `max_retry_after`. Deliveries are retried for as long as it takes (a
/// platform may be down for days); only a permanent refusal parks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    initial: Duration,
    cap: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 1 s doubling to a cap of 10 min; a `Retry-After` of up to 1 h.
    fn default() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            cap: Duration::from_secs(600),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

/// The longest time any policy waits: one day.
const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

impl RetryPolicy {
    /// Needs `0 < initial <= cap`, and `cap` and `max_retry_after` at most a
    /// day.
    pub fn new(
        initial: Duration,
        cap: Duration,
        max_retry_after: Duration,
    ) -> Result<RetryPolicy, DomainError> {
        let bad = |what: &'static str, rule: &'static str, v: Duration| DomainError::OutOfRange {
            what,
            rule,
            value: format!("{v:?}"),
        };
        if initial.is_zero() || initial > cap {
            return Err(bad(
                "retry initial backoff",
                "above zero and at most the cap",
                initial,
            ));
        }
        if cap > LONGEST_WAIT {
            return Err(bad("retry backoff cap", "at most one day", cap));
        }
        if max_retry_after > LONGEST_WAIT {
            return Err(bad(
                "retry max Retry-After",
                "at most one day",
                max_retry_after,
            ));
        }
        Ok(RetryPolicy {
            initial,
            cap,
            max_retry_after,
        })
    }

    pub fn initial(&self) -> Duration {
        self.initial
    }

    pub fn cap(&self) -> Duration {
        self.cap
    }

    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The wait after the `attempt`-th failed attempt (1-based):
    /// `initial * 2^(attempt-1)`, at most `cap`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// Whether an answer with this status is worth retrying: 408 Request
    /// Timeout, 425 Too Early, 429 Too Many Requests and every 5xx.
    pub fn is_transient(status: u16) -> bool {
        matches!(status, 408 | 425 | 429) || (500..=599).contains(&status)
    }

    /// The next state after attempt number `attempt` ended with `outcome`
    /// at `now`.
    pub fn resolve(&self, attempt: u32, outcome: AttemptOutcome, now: DateTime<Utc>) -> Resolution {
        let retry = |wait: Duration, error: String| Resolution::Retry {
            at: now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX),
            error,
        };
        match outcome {
            AttemptOutcome::Delivered { receipt } => Resolution::Delivered { at: now, receipt },
            AttemptOutcome::Unreachable { why } => {
                retry(self.backoff(attempt), format!("unreachable: {why}"))
            }
            AttemptOutcome::TimedOut { after } => retry(
                self.backoff(attempt),
                format!("no answer within {} ms", after.as_millis()),
            ),
            AttemptOutcome::Answered {
                status,
                retry_after,
                reason,
            } if RetryPolicy::is_transient(status) => {
                let wait = match retry_after {
                    Some(asked) => asked.min(self.max_retry_after),
                    None => self.backoff(attempt),
                };
                retry(wait, format!("HTTP {status}: {reason}"))
            }
            AttemptOutcome::Answered { status, reason, .. } => Resolution::Park {
                at: now,
                reason: format!("HTTP {status}: {reason}"),
                status: Some(status),
            },
            AttemptOutcome::Unsendable { reason } => Resolution::Park {
                at: now,
                reason,
                status: None,
            },
        }
    }
}

/// How many deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub parked: u64,
}

impl DeliveryCounts {
    pub fn get(&self, state: StateName) -> u64 {
        match state {
            StateName::Pending => self.pending,
            StateName::InFlight => self.in_flight,
            StateName::Delivered => self.delivered,
            StateName::Parked => self.parked,
        }
    }

    pub fn total(&self) -> u64 {
        self.pending + self.in_flight + self.delivered + self.parked
    }
}

/// The outbox's storage.
///
/// Times come from the caller (`now`), so the store holds no clock of its
/// own and tests can move time. A delivery is *due* when it is pending and
/// its `next_attempt_at` has come, or in flight and its lease has ended
/// (the worker that held it died or hung).
#[async_trait]
pub trait OutboxStore: Send + Sync + fmt::Debug {
    /// Stores `document` and one pending delivery to each of `targets`, due
    /// at once, in one transaction; with `audit`, its event is appended in
    /// the same transaction. Nothing is stored when any part fails.
    /// `Conflict` when a document with this id is stored already (a
    /// document is never replaced: a corrected report is a new document)
    /// or `targets` is empty or names a target twice.
    ///
    /// This is the transaction that produces the document (a report
    /// computed from stored data is produced by being saved here), so no
    /// saved document is ever left unqueued.
    async fn enqueue(
        &self,
        document: &Document,
        targets: &[ConnectorName],
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` due deliveries, oldest due first, for `worker`
    /// until `now + lease`: each becomes in flight and its attempt count
    /// grows by one. Two workers (or processes) claiming at once never get
    /// the same delivery.
    async fn claim_due(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Records how the claim's attempt ended. `Conflict` when the delivery
    /// is no longer in flight under this attempt (its lease ran out and it
    /// was claimed again, or a person acted on it); nothing changes then.
    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        attempt: u32,
        resolution: &Resolution,
    ) -> Result<(), StoreError>;

    /// Deliveries in `state`, by when they are due (`next_attempt_at`),
    /// then by key, at most `limit`: for a person to see what is parked
    /// and why.
    async fn deliveries(&self, state: StateName, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// One delivery, if it exists.
    async fn delivery(&self, key: &DeliveryKey) -> Result<Option<Delivery>, StoreError>;

    /// One stored document, if it exists.
    async fn document(&self, id: &DocumentId) -> Result<Option<Document>, StoreError>;

    /// How many deliveries are in each state.
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError>;

    /// Puts a parked delivery back in the queue, due at `now`, with its
    /// attempt count reset, and appends `audit` in the same transaction.
    /// Requeueing is a person's decision: the caller checks the person's
    /// role (it is the services' job, not the store's) and describes who
    /// and why in `audit`. `NotFound` for an unknown delivery, `Conflict`
    /// for one that is not parked.
    async fn requeue(
        &self,
        key: &DeliveryKey,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
}
