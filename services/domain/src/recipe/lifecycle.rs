//! The life cycle of a recipe version and the signatures it needs.
//!
//! Draft -> In review (the author submits and signs "authored") ->
//! Approved (a supervisor who is not the author signs "approved") ->
//! Released (a supervisor signs "released"; the version released before it
//! becomes Superseded). A reviewer may reject back to Draft with a reason;
//! a released version may be made Obsolete. Only a Draft may be edited; a
//! released version never changes again.

use crate::{Action, DomainError, Role, Username};
use std::fmt;

/// Where a recipe version is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipeStatus {
    Draft,
    InReview,
    Approved,
    Released,
    Superseded,
    Obsolete,
}

impl RecipeStatus {
    pub const ALL: [RecipeStatus; 6] = [
        RecipeStatus::Draft,
        RecipeStatus::InReview,
        RecipeStatus::Approved,
        RecipeStatus::Released,
        RecipeStatus::Superseded,
        RecipeStatus::Obsolete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RecipeStatus::Draft => "draft",
            RecipeStatus::InReview => "in_review",
            RecipeStatus::Approved => "approved",
            RecipeStatus::Released => "released",
            RecipeStatus::Superseded => "superseded",
            RecipeStatus::Obsolete => "obsolete",
        }
    }

    pub fn parse(s: &str) -> Result<RecipeStatus, DomainError> {
        RecipeStatus::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| DomainError::Malformed {
                what: "recipe status",
                value: s.to_string(),
                why: "expected draft, in_review, approved, released, superseded or obsolete".into(),
            })
    }

    /// Whether the version's content may still change.
    pub fn is_editable(self) -> bool {
        self == RecipeStatus::Draft
    }
}

impl fmt::Display for RecipeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A step of the life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    Submit,
    Approve,
    Reject,
    Release,
    MakeObsolete,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Submit => "submit",
            Transition::Approve => "approve",
            Transition::Reject => "reject",
            Transition::Release => "release",
            Transition::MakeObsolete => "make obsolete",
        }
    }

    /// What the signer's signature means, recorded with it.
    pub fn meaning(self) -> SignatureMeaning {
        match self {
            Transition::Submit => SignatureMeaning::Authored,
            Transition::Approve => SignatureMeaning::Approved,
            Transition::Reject => SignatureMeaning::Rejected,
            Transition::Release => SignatureMeaning::Released,
            Transition::MakeObsolete => SignatureMeaning::Withdrawn,
        }
    }

    fn action(self) -> Action {
        match self {
            Transition::Submit => Action::Engineer,
            _ => Action::Approve,
        }
    }

    fn endpoints(self) -> (RecipeStatus, RecipeStatus) {
        use RecipeStatus as S;
        match self {
            Transition::Submit => (S::Draft, S::InReview),
            Transition::Approve => (S::InReview, S::Approved),
            Transition::Reject => (S::InReview, S::Draft),
            Transition::Release => (S::Approved, S::Released),
            Transition::MakeObsolete => (S::Released, S::Obsolete),
        }
    }
}

/// The meaning of an electronic signature, recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMeaning {
    Authored,
    Approved,
    Rejected,
    Released,
    Withdrawn,
}

impl SignatureMeaning {
    pub const ALL: [SignatureMeaning; 5] = [
        SignatureMeaning::Authored,
        SignatureMeaning::Approved,
        SignatureMeaning::Rejected,
        SignatureMeaning::Released,
        SignatureMeaning::Withdrawn,
    ];

    pub fn parse(s: &str) -> Result<SignatureMeaning, DomainError> {
        SignatureMeaning::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| DomainError::Malformed {
                what: "signature meaning",
                value: s.to_string(),
                why: "expected authored, approved, rejected, released or withdrawn".into(),
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            SignatureMeaning::Authored => "authored",
            SignatureMeaning::Approved => "approved",
            SignatureMeaning::Rejected => "rejected",
            SignatureMeaning::Released => "released",
            SignatureMeaning::Withdrawn => "withdrawn",
        }
    }
}

/// The state after `transition`, when `signer` (holding `role`) may take it
/// from `status`; `author` is who submitted the version. Approval by the
/// author is refused whatever their role: two persons are needed.
pub fn authorise_transition(
    status: RecipeStatus,
    transition: Transition,
    signer: &Username,
    role: Role,
    author: Option<&Username>,
) -> Result<RecipeStatus, DomainError> {
    let (from, to) = transition.endpoints();
    if status != from {
        return Err(DomainError::NotAllowed(format!(
            "cannot {} a recipe version that is {status}; it must be {from}",
            transition.name()
        )));
    }
    role.authorise(transition.action())?;
    if transition == Transition::Approve && author == Some(signer) {
        return Err(DomainError::NotAllowed(format!(
            "{signer} submitted this version and may not approve it: a second person must"
        )));
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[test]
    fn the_happy_path_needs_an_engineer_and_a_different_supervisor() {
        let eng = user("erin");
        let sup = user("sam");
        let s = authorise_transition(
            RecipeStatus::Draft,
            Transition::Submit,
            &eng,
            Role::Engineer,
            None,
        )
        .unwrap();
        let s = authorise_transition(s, Transition::Approve, &sup, Role::Supervisor, Some(&eng))
            .unwrap();
        let s = authorise_transition(s, Transition::Release, &sup, Role::Supervisor, Some(&eng))
            .unwrap();
        assert_eq!(s, RecipeStatus::Released);
    }

    #[test]
    fn an_author_may_not_approve_their_own_version_even_as_admin() {
        let a = user("ada");
        let e = authorise_transition(
            RecipeStatus::InReview,
            Transition::Approve,
            &a,
            Role::Admin,
            Some(&a),
        )
        .unwrap_err();
        assert!(e.to_string().contains("second person"), "{e}");
    }

    #[test]
    fn an_engineer_may_not_approve() {
        let e = authorise_transition(
            RecipeStatus::InReview,
            Transition::Approve,
            &user("eve"),
            Role::Engineer,
            Some(&user("erin")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("supervisor"), "{e}");
    }

    #[test]
    fn a_released_version_cannot_be_submitted_again() {
        let e = authorise_transition(
            RecipeStatus::Released,
            Transition::Submit,
            &user("erin"),
            Role::Engineer,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("released"), "{e}");
        assert!(!RecipeStatus::Released.is_editable());
    }

    #[test]
    fn statuses_read_back_their_names() {
        for s in RecipeStatus::ALL {
            assert_eq!(RecipeStatus::parse(s.name()).unwrap(), s);
        }
    }
}
