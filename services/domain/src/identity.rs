//! Users, roles, and what each role may do.

use crate::DomainError;
use std::fmt;

/// A role, in increasing order of authority. Each role may do what the
/// roles below it may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Engineer,
    Supervisor,
    Admin,
}

/// Something a user may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read plant values, lots and reports.
    View,
    /// Write a setpoint or command a unit.
    Operate,
    /// Record a lot event (receive, produce, adjust).
    RecordLot,
    /// Edit recipes and tag/alarm configuration.
    Engineer,
    /// Approve recipes, acknowledge on behalf of others.
    Approve,
    /// Add users and change roles.
    ManageUsers,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Engineer,
        Role::Supervisor,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Engineer => "engineer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, DomainError> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| DomainError::Malformed {
                what: "role",
                value: s.to_string(),
                why: "expected viewer, operator, engineer, supervisor or admin".into(),
            })
    }

    /// The least role an action needs.
    fn least_for(action: Action) -> Role {
        match action {
            Action::View => Role::Viewer,
            Action::Operate | Action::RecordLot => Role::Operator,
            Action::Engineer => Role::Engineer,
            Action::Approve => Role::Supervisor,
            Action::ManageUsers => Role::Admin,
        }
    }

    pub fn may(self, action: Action) -> bool {
        self >= Role::least_for(action)
    }

    /// Why `self` may not do `action`, or `Ok` when it may.
    pub fn authorise(self, action: Action) -> Result<(), DomainError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(DomainError::NotAllowed(format!(
                "role {} may not {}; it needs {} or above",
                self.name(),
                action.describe(),
                Role::least_for(action).name()
            )))
        }
    }
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::View => "view the plant",
            Action::Operate => "write setpoints or command units",
            Action::RecordLot => "record lot events",
            Action::Engineer => "change recipes or configuration",
            Action::Approve => "approve",
            Action::ManageUsers => "manage users",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A user name: 1 to 64 characters of lower-case letters, digits and `. _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if ok {
            Ok(Username(s.to_string()))
        } else {
            Err(DomainError::Malformed {
                what: "user name",
                value: s.to_string(),
                why: "1-64 characters of a-z, 0-9, '.', '_', '-'".into(),
            })
        }
    }

    /// The name used for actions the system takes by itself.
    pub fn system() -> Username {
        Username("system".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_roles_may_do_what_lower_roles_may() {
        assert!(Role::Operator.may(Action::Operate));
        assert!(!Role::Viewer.may(Action::Operate));
        assert!(Role::Admin.may(Action::Approve));
        assert!(!Role::Engineer.may(Action::Approve));
    }

    #[test]
    fn a_refusal_says_which_role_is_needed() {
        let e = Role::Viewer
            .authorise(Action::Operate)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "role viewer may not write setpoints or command units; it needs operator or above"
        );
    }

    #[test]
    fn user_names_are_checked() {
        assert!(Username::parse("anna.k").is_ok());
        assert!(Username::parse("Anna").is_err());
        assert!(Username::parse("").is_err());
        assert!(Role::parse("Supervisor").is_ok());
        assert!(Role::parse("boss").is_err());
    }
}
