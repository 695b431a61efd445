//! The audit trail: every write leaves an entry, and each entry carries the
//! hash of the one before it, so that a changed, removed or inserted entry is
//! detectable.
//!
//! An entry's hash is SHA-256 over its sequence number, time (microseconds
//! since the epoch), actor, action, target, old and new value, reason and the
//! previous hash, each length-prefixed so no two entries encode alike.

use crate::Username;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The "previous hash" of the first entry.
    pub const GENESIS: Digest = Digest([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Digest> {
        let bytes = hex::decode(s).ok()?;
        Some(Digest(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What happened: who did what to which thing, from what to what, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub actor: Username,
    /// A dotted verb, e.g. `tag.write`, `lot.produce`, `user.add`.
    pub action: String,
    /// What was acted on: a tag name, a lot id, a user name.
    pub target: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
}

/// An event sealed into the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub event: AuditEvent,
    pub prev_hash: Digest,
    pub hash: Digest,
}

impl AuditEntry {
    /// Seals `event` as entry `seq` after the entry whose hash is `prev`.
    /// The time is truncated to microseconds, the precision stores keep.
    pub fn seal(seq: i64, at: DateTime<Utc>, event: AuditEvent, prev: Digest) -> AuditEntry {
        let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
        let hash = digest_of(seq, at, &event, &prev);
        AuditEntry {
            seq,
            at,
            event,
            prev_hash: prev,
            hash,
        }
    }

    /// Whether the stored hash matches the entry's content.
    pub fn is_intact(&self) -> bool {
        digest_of(self.seq, self.at, &self.event, &self.prev_hash) == self.hash
    }
}

fn digest_of(seq: i64, at: DateTime<Utc>, e: &AuditEvent, prev: &Digest) -> Digest {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(&seq.to_be_bytes());
    field(&at.timestamp_micros().to_be_bytes());
    field(e.actor.as_str().as_bytes());
    field(e.action.as_bytes());
    field(e.target.as_bytes());
    for opt in [&e.old, &e.new] {
        match opt {
            None => field(&[0]),
            Some(s) => {
                field(&[1]);
                field(s.as_bytes());
            }
        }
    }
    field(e.reason.as_bytes());
    field(&prev.0);
    Digest(h.finalize().into())
}

/// Where and why a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {why}")]
pub struct ChainBreak {
    pub seq: i64,
    pub why: String,
}

/// Checks entries given in sequence order: consecutive numbers from 1, each
/// one's content matching its hash, each one pointing at its predecessor.
/// Returns how many entries were checked, or the first broken one.
pub fn verify_chain(entries: impl IntoIterator<Item = AuditEntry>) -> Result<u64, ChainBreak> {
    let mut prev = Digest::GENESIS;
    let mut n: u64 = 0;
    for (expected_seq, e) in (1_i64..).zip(entries) {
        if e.seq != expected_seq {
            return Err(ChainBreak {
                seq: e.seq,
                why: format!(
                    "expected entry {expected_seq} here (an entry is missing or was inserted)"
                ),
            });
        }
        if e.prev_hash != prev {
            return Err(ChainBreak {
                seq: e.seq,
                why: "its previous-hash does not match the entry before it".into(),
            });
        }
        if !e.is_intact() {
            return Err(ChainBreak {
                seq: e.seq,
                why: "its content does not match its hash (the entry was altered)".into(),
            });
        }
        prev = e.hash;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(new: &str) -> AuditEvent {
        AuditEvent {
            actor: Username::parse("op1").unwrap(),
            action: "tag.write".into(),
            target: "Discharge/Station1/EndVoltage".into(),
            old: Some("1.0".into()),
            new: Some(new.into()),
            reason: "recipe".into(),
        }
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = vec![];
        for i in 1..=n {
            let prev = out.last().map(|e| e.hash).unwrap_or(Digest::GENESIS);
            out.push(AuditEntry::seal(i, Utc::now(), event(&i.to_string()), prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(chain(5)), Ok(5));
        assert_eq!(verify_chain(vec![]), Ok(0));
    }

    #[test]
    fn an_altered_value_is_found_at_its_entry() {
        let mut c = chain(5);
        c[2].event.new = Some("0.9".into());
        let b = verify_chain(c).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.why.contains("altered"));
    }

    #[test]
    fn a_removed_entry_is_found() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_chain(c).unwrap_err().seq, 3);
    }

    #[test]
    fn a_recomputed_hash_still_breaks_the_link_to_the_next_entry() {
        let mut c = chain(4);
        c[1].event.reason = "forged".into();
        c[1] = AuditEntry::seal(c[1].seq, c[1].at, c[1].event.clone(), c[1].prev_hash);
        assert_eq!(verify_chain(c).unwrap_err().seq, 3);
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = chain(1)[0].hash;
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
    }
}
