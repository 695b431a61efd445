//! The one guarded path every write to a PLC takes.
//!
//! Order: role check, tag known and writable, value within the tag's
//! limits, reason given, audit entry (who, old, new, reason), write (the
//! adapter reads back and verifies), and an audit entry for a failure.
//! Nothing reaches the wire before the checks pass and the intent is
//! audited; a refused write is audited too, with why.

use crate::MesError;
use remine_domain::ports::{Store, TagError, TagIo};
use remine_domain::{Access, Action, AuditEvent, Role, TagInfo, TagName, TagValue, Username};
use std::collections::HashMap;
use std::sync::Arc;

/// Who is acting, with the role they hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: Username,
    pub role: Role,
}

impl Actor {
    /// The MES itself, acting for a batch it runs (recipe downloads in the demo).
    pub fn system() -> Actor {
        Actor {
            user: Username::system(),
            role: Role::Supervisor,
        }
    }
}

/// What a successful write did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    pub tag: TagName,
    pub old: Option<TagValue>,
    pub new: TagValue,
    /// The audit entry that records the write.
    pub audit_seq: i64,
}

/// Writes through role, limits and audit. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuardedWriter {
    io: Arc<dyn TagIo>,
    /// The store's audit trail records every write.
    audit: Arc<dyn Store>,
    tags: Arc<HashMap<TagName, TagInfo>>,
}

impl GuardedWriter {
    pub fn new(io: Arc<dyn TagIo>, audit: Arc<dyn Store>) -> GuardedWriter {
        let tags = io
            .catalogue()
            .into_iter()
            .map(|i| (i.name.clone(), i))
            .collect();
        GuardedWriter {
            io,
            audit,
            tags: Arc::new(tags),
        }
    }

    #[tracing::instrument(skip(self, actor), fields(user = %actor.user, tag = %tag))]
    pub async fn write(
        &self,
        actor: &Actor,
        tag: &TagName,
        value: TagValue,
        reason: &str,
    ) -> Result<WriteOutcome, MesError> {
        if let Err(refusal) = self.check(actor, tag, value, reason) {
            self.audit
                .append(event(
                    actor,
                    "tag.write.refused",
                    tag,
                    None,
                    Some(value),
                    &refusal.to_string(),
                ))
                .await?;
            return Err(refusal);
        }
        let old = self
            .io
            .read(std::slice::from_ref(tag))
            .await
            .pop()
            .and_then(|r| r.value);
        let entry = self
            .audit
            .append(event(actor, "tag.write", tag, old, Some(value), reason))
            .await?;
        if let Err(e) = self.io.write(tag, value).await {
            self.audit
                .append(event(
                    actor,
                    "tag.write.failed",
                    tag,
                    old,
                    Some(value),
                    &e.to_string(),
                ))
                .await?;
            return Err(e.into());
        }
        Ok(WriteOutcome {
            tag: tag.clone(),
            old,
            new: value,
            audit_seq: entry.seq,
        })
    }

    fn check(
        &self,
        actor: &Actor,
        tag: &TagName,
        value: TagValue,
        reason: &str,
    ) -> Result<(), MesError> {
        actor
            .role
            .authorise(Action::Operate)
            .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        let info = self
            .tags
            .get(tag)
            .ok_or_else(|| TagError::UnknownTag(tag.clone()))?;
        if info.access != Access::ReadWrite {
            return Err(TagError::ReadOnly(tag.clone()).into());
        }
        let v = value.as_f64();
        if !v.is_finite() {
            return Err(MesError::NotAllowed(format!(
                "value {v} for {tag} is not a number"
            )));
        }
        if let Some((min, max)) = info.write_limits
            && !(min..=max).contains(&v)
        {
            return Err(TagError::OutOfLimits {
                tag: tag.clone(),
                value: v,
                min,
                max,
            }
            .into());
        }
        if reason.trim().is_empty() {
            return Err(MesError::NotAllowed(format!(
                "a write to {tag} needs a reason"
            )));
        }
        Ok(())
    }
}

fn event(
    actor: &Actor,
    action: &str,
    tag: &TagName,
    old: Option<TagValue>,
    new: Option<TagValue>,
    reason: &str,
) -> AuditEvent {
    AuditEvent {
        actor: actor.user.clone(),
        action: action.into(),
        target: tag.to_string(),
        old: old.map(|v| v.to_string()),
        new: new.map(|v| v.to_string()),
        reason: reason.into(),
    }
}
